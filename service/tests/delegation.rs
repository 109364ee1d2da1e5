//! Delegated heaps and version-2 descriptors (issue 18 items 1 and 2), on memfd-backed heaps:
//! what is delegated to whom, that delegation refuses what allocation refuses, and who may
//! allocate on another process's behalf.

use std::sync::Arc;

use dmaheap_aidl::usage::*;
use dmaheap_aidl::{BufferDescriptor, IHeapAllocator};
use dmaheap_service::backend::MemfdBackend;
use dmaheap_service::policy::request::BufferRequest;
use dmaheap_service::service::HeapAllocatorService;
use dmaheap_service::{Allocator, Caller, ErrorKind, Policy, Selector};

const POLICY: &str = r#"
[[heap]]
name = "system"

[[heap]]
name = "cma"
contiguous = true
allow_domains = ["hal_camera_default"]

[[heap]]
name = "blocks"
granule = "2M"

[[rule]]
name = "camera"
all_of = "CAMERA_OUTPUT"
heaps = ["cma"]

[[rule]]
name = "texture"
all_of = "GPU_TEXTURE"
heaps = ["blocks"]

[[rule]]
name = "default"
heaps = ["system"]
"#;

fn allocator() -> Allocator<MemfdBackend> {
    Allocator::new(
        Policy::parse(POLICY, "delegation.toml").unwrap(),
        MemfdBackend::with_heaps(["system", "cma", "blocks"]),
    )
}

fn camera() -> Caller {
    Caller::with_context(1047, 10, Some("u:r:hal_camera_default:s0"))
}

fn codec() -> Caller {
    Caller::with_context(1046, 11, Some("u:r:mediacodec:s0"))
}

fn usage(bits: u64, size: u64) -> Selector {
    Selector::Request(BufferRequest::of_size(bits, size))
}

#[test]
fn a_plain_heap_is_delegated_with_its_limits_and_a_restricted_one_is_not() {
    let a = allocator();
    let d = a
        .delegate(&codec(), &usage(CPU_READ_OFTEN, 4096), 4096)
        .unwrap()
        .expect("the plain system heap is delegated");
    assert_eq!((d.heap.as_str(), d.rule.as_str()), ("system", "default"));
    assert_eq!(d.granule, a.page_size());
    assert_eq!(d.max_size, a.policy().limits.max_allocation_bytes);
    // A contiguous heap with an allow list stays with the service, even for a caller it admits.
    assert!(a
        .delegate(&camera(), &usage(CAMERA_OUTPUT, 4096), 4096)
        .unwrap()
        .is_none());
    // Delegation counts show in the dump.
    assert!(a.dump().contains("delegated: 1 heap nodes"), "{}", a.dump());
}

#[test]
fn delegation_refuses_what_allocation_refuses() {
    let a = allocator();
    // A caller the heap does not admit: the same EX_SECURITY as allocate, and no node.
    let e = a
        .delegate(&codec(), &usage(CAMERA_OUTPUT, 4096), 4096)
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Denied);
    let e = a
        .allocate(&codec(), &usage(CAMERA_OUTPUT, 4096), 4096, "x")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Denied);
    for size in [0, -1, i64::MAX] {
        let e = a
            .delegate(&codec(), &usage(CPU_READ_OFTEN, 4096), size)
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadArgument, "size {size}");
    }
    assert_eq!(
        a.delegate(&codec(), &usage(1 << 10, 4096), 4096)
            .unwrap_err()
            .kind,
        ErrorKind::UnsupportedUsage
    );
}

#[test]
fn a_heap_granule_rounds_sizes_up_within_the_limits() {
    let a = allocator();
    let got = a
        .allocate(&codec(), &usage(GPU_TEXTURE, 4096), 4096, "tex")
        .unwrap();
    assert_eq!((got.heap.as_str(), got.size), ("blocks", 2 << 20));
    let d = a
        .delegate(&codec(), &usage(GPU_TEXTURE, 4096), 4096)
        .unwrap()
        .unwrap();
    assert_eq!(d.granule, 2 << 20);
}

fn service() -> HeapAllocatorService<MemfdBackend> {
    HeapAllocatorService::new(Arc::new(allocator()))
}

fn descriptor(pid: i32, uid: i32) -> BufferDescriptor {
    BufferDescriptor {
        usage: CPU_READ_OFTEN as i64,
        size: 4096,
        onBehalfOfPid: pid,
        onBehalfOfUid: uid,
        ..Default::default()
    }
}

/// Outside a binder call the caller is this process, with no SELinux domain: not gralloc.
#[test]
fn only_the_policys_domains_may_allocate_on_behalf_of_another_process() {
    let s = service();
    assert!(s.allocate(&descriptor(-1, -1), "self").is_ok());
    let e = s
        .allocate(&descriptor(4321, 10123), "for-an-app")
        .unwrap_err();
    assert_eq!(e.exception_code(), rsbinder::ExceptionCode::Security, "{e}");
    assert!(e.to_string().contains("on behalf"), "{e}");
    let e = s
        .allocateBatchFor(&descriptor(4321, 10123), 2, "for-an-app")
        .unwrap_err();
    assert_eq!(e.exception_code(), rsbinder::ExceptionCode::Security, "{e}");
    // Half an identity is a bad argument, not a guess.
    for (pid, uid) in [(4321, -1), (-1, 10123), (0, 0), (-5, 10123)] {
        let e = s.allocate(&descriptor(pid, uid), "half").unwrap_err();
        assert_eq!(
            e.service_specific_error(),
            dmaheap_aidl::consts::ERROR_BAD_ARGUMENT,
            "pid {pid} uid {uid}: {e}"
        );
    }
}

#[test]
fn negative_dimensions_are_bad_arguments() {
    let s = service();
    for (w, h, layers) in [(-1, 1, 1), (1, -1, 1), (1, 1, -1), (i32::MIN, 0, 0)] {
        let d = BufferDescriptor {
            width: w,
            height: h,
            layerCount: layers,
            ..descriptor(-1, -1)
        };
        let e = s.allocate(&d, "dims").unwrap_err();
        assert_eq!(
            e.service_specific_error(),
            dmaheap_aidl::consts::ERROR_BAD_ARGUMENT,
            "{w}x{h}x{layers}: {e}"
        );
        assert!(s.delegate(&d).is_err());
    }
}
