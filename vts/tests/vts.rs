//! VTS for `vendor.dmaheap.IHeapAllocator/default`: talks to the running service over binder
//! and checks what any conforming implementation must do, whatever the device's policy.
//!
//! Run it with `--test-threads=1`: several tests count the service's open fds.

use std::collections::HashSet;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};

use dmaheap_aidl::consts::*;
use dmaheap_aidl::{usage, HeapInfo, HeapSelector, IHeapAllocator};
use dmaheap_client::{ClientError, CpuAccess, HeapAllocator};
use dmaheap_vts::{connect, open_fds, service_pid};

fn hal() -> HeapAllocator {
    connect().expect("vendor.dmaheap.IHeapAllocator/default is registered")
}

fn code<T>(result: Result<T, ClientError>) -> i32 {
    match result {
        Ok(_) => panic!("the request was accepted"),
        Err(e) => e
            .service_code()
            .unwrap_or_else(|| panic!("not a service-specific error: {e}")),
    }
}

fn raw_code<T>(result: rsbinder::BinderResult<T>) -> i32 {
    code(result.map_err(ClientError::from))
}

fn present_heaps(hal: &HeapAllocator) -> Vec<HeapInfo> {
    hal.list_heaps()
        .unwrap()
        .into_iter()
        .filter(|h| h.present)
        .collect()
}

/// A present heap the CPU can map.
fn plain_heap(hal: &HeapAllocator) -> String {
    present_heaps(hal)
        .into_iter()
        .find(|h| !h.secure)
        .expect("at least one present, non-secure heap")
        .name
}

/// The service's fd count once it has settled (replies may still be in flight briefly).
fn settled_service_fds(baseline: Option<usize>) -> usize {
    let pid = service_pid().expect("the service process is visible in /proc");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let now = open_fds(pid).expect("the service's /proc/<pid>/fd is readable");
        if baseline.is_none_or(|b| now <= b) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn reports_the_latest_frozen_interface_version() {
    assert_eq!(hal().raw().getInterfaceVersion().unwrap(), VERSION);
    assert_eq!(VERSION, 2);
}

#[test]
fn lists_heaps_with_unique_names_and_at_least_one_present() {
    let heaps = hal().list_heaps().unwrap();
    let names: HashSet<_> = heaps.iter().map(|h| h.name.clone()).collect();
    assert_eq!(names.len(), heaps.len(), "duplicate heap names: {heaps:?}");
    assert!(
        heaps.iter().any(|h| h.present),
        "no heap of the policy is present: {heaps:?}"
    );
    for h in &heaps {
        assert!(
            !h.name.is_empty() && !h.name.contains('/'),
            "bad heap name {:?}",
            h.name
        );
        assert!(h.ionHeapIds.iter().all(|id| (0..32).contains(id)), "{h:?}");
        if h.present {
            assert!(
                std::path::Path::new("/dev/dma_heap").join(&h.name).exists(),
                "{} is reported present",
                h.name
            );
        }
    }
}

#[test]
fn every_present_heap_allocates_maps_syncs_and_reads_back_zeroed() {
    let hal = hal();
    for heap in present_heaps(&hal) {
        for size in [4096u64, 65536 + 1, 1 << 20] {
            let buf = hal
                .allocate_from_heap(&heap.name, size, "vts.zeroed")
                .unwrap_or_else(|e| panic!("{}: {e}", heap.name));
            assert_eq!(buf.heap(), heap.name);
            assert!(
                buf.size() >= size && buf.size() % 4096 == 0,
                "{}: size {}",
                heap.name,
                buf.size()
            );
            if heap.secure {
                continue; // protected memory cannot be mapped by the normal world
            }
            let mut map = buf.map().unwrap();
            {
                let _sync = buf.cpu_access(CpuAccess::Read).unwrap();
                assert_eq!(
                    map.find_byte_not_equal_to(0),
                    None,
                    "{}: {size} bytes not zeroed",
                    heap.name
                );
            }
            let sync = buf.cpu_access(CpuAccess::ReadWrite).unwrap();
            map.fill(0xa5);
            assert_eq!(
                map.find_byte_not_equal_to(0xa5),
                None,
                "{}: written pattern",
                heap.name
            );
            sync.end().unwrap();
        }
    }
}

/// The name the kernel keeps for the dma-buf behind `fd`, and its inode, from this process's
/// fdinfo (as `dmabuf_dump` reads them).
fn kernel_name_and_inode(fd: &impl AsFd) -> (String, u64) {
    let fd = fd.as_fd().as_raw_fd();
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap();
    let field = |key: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {key} in the fdinfo:\n{info}"))
    };
    (field("name:"), field("ino:").parse().unwrap())
}

#[test]
fn buffers_carry_the_callers_name_and_dump_shows_their_owner() {
    let hal = hal();
    let heap = plain_heap(&hal);
    let buf = hal.allocate_from_heap(&heap, 4096, "vts.named").unwrap();
    let (name, inode) = kernel_name_and_inode(&buf);
    // The caller's name comes first, whole: the kernel keeps 31 bytes and it has 9.
    assert!(
        name.starts_with("vts.named"),
        "name {name:?} does not start with the debug name"
    );
    assert!(
        name.len() < dmabuf::DMA_BUF_NAME_LEN,
        "{name:?} is longer than the kernel keeps"
    );
    // The owner is in the service's record of recent allocations, under the same inode.
    let dump = hal.dump().unwrap();
    let owner = dump
        .lines()
        .find(|l| l.split_whitespace().next() == Some(inode.to_string().as_str()))
        .unwrap_or_else(|| panic!("no owner line for inode {inode}:\n{dump}"));
    let columns: Vec<&str> = owner.split_whitespace().collect();
    let (uid, pid) = (
        nix::unistd::getuid().to_string(),
        std::process::id().to_string(),
    );
    assert_eq!(columns.get(1), Some(&uid.as_str()), "{owner}");
    assert_eq!(columns.get(2), Some(&pid.as_str()), "{owner}");
    assert!(
        columns.contains(&heap.as_str()) && owner.ends_with("vts.named"),
        "{owner}"
    );
}

#[test]
fn usage_allocations_follow_the_resolution_the_service_reports() {
    let hal = hal();
    let usages = [
        usage::CPU_READ_OFTEN | usage::CPU_WRITE_OFTEN,
        usage::CPU_READ_RARELY,
        usage::GPU_TEXTURE,
        usage::GPU_TEXTURE | usage::GPU_RENDER_TARGET | usage::COMPOSER_OVERLAY,
        usage::COMPOSER_OVERLAY | usage::COMPOSER_CLIENT_TARGET,
        usage::CAMERA_OUTPUT | usage::GPU_TEXTURE,
        usage::CAMERA_OUTPUT | usage::CPU_READ_OFTEN,
        usage::VIDEO_DECODER | usage::GPU_TEXTURE,
        usage::VIDEO_ENCODER | usage::CAMERA_OUTPUT,
        usage::SENSOR_DIRECT_DATA | usage::CPU_READ_RARELY,
        usage::PROTECTED | usage::VIDEO_DECODER | usage::COMPOSER_OVERLAY,
        usage::GPU_DATA_BUFFER | usage::CPU_WRITE_OFTEN,
        usage::FRONT_BUFFER | usage::COMPOSER_OVERLAY,
        1 << 28,
        1 << 63,
    ];
    let heaps = hal.list_heaps().unwrap();
    let mut served = 0;
    for u in usages {
        let described = usage::describe(u);
        match hal.resolve_usage(u) {
            Ok(r) => {
                assert_eq!(
                    r.candidates.first(),
                    Some(&r.heapName),
                    "{described}: {r:?}"
                );
                assert!(
                    !r.rule.is_empty() && !r.reason.is_empty(),
                    "{described}: {r:?}"
                );
                let buf = hal
                    .allocate_by_usage(u, 8192, "vts.usage")
                    .unwrap_or_else(|e| panic!("{described}: {e}"));
                assert!(
                    r.candidates.iter().any(|c| c == buf.heap()),
                    "{described}: served by {} not in {r:?}",
                    buf.heap()
                );
                let info = heaps
                    .iter()
                    .find(|h| h.name == buf.heap())
                    .expect("served from a listed heap");
                assert!(info.present);
                if u & usage::PROTECTED != 0 {
                    assert!(
                        info.secure,
                        "{described}: PROTECTED served from non-secure heap {}",
                        info.name
                    );
                }
                served += 1;
            }
            Err(e) => {
                let resolve_code = e
                    .service_code()
                    .unwrap_or_else(|| panic!("{described}: {e}"));
                let alloc_code = code(hal.allocate_by_usage(u, 8192, "vts.usage"));
                assert_eq!(
                    alloc_code, resolve_code,
                    "{described}: allocate and resolve disagree"
                );
                if u & usage::PROTECTED != 0 {
                    assert_eq!(resolve_code, ERROR_UNSUPPORTED_USAGE, "{described}: {e}");
                }
            }
        }
    }
    assert!(served > 0, "no usage at all could be served");
}

#[test]
fn unknown_usage_bits_are_rejected() {
    let hal = hal();
    let mut bits: Vec<u32> = vec![10, 13, 19, 21];
    bits.extend(33..48);
    for bit in bits {
        let u = usage::CPU_READ_OFTEN | (1u64 << bit);
        assert_eq!(
            code(hal.allocate_by_usage(u, 4096, "vts.bits")),
            ERROR_UNSUPPORTED_USAGE,
            "bit {bit}"
        );
        assert_eq!(
            code(hal.resolve_usage(u)),
            ERROR_UNSUPPORTED_USAGE,
            "bit {bit}"
        );
        let batch = hal.allocate_batch(&HeapSelector::Usage(u as i64), 4096, 2, "vts.bits");
        assert_eq!(code(batch), ERROR_UNSUPPORTED_USAGE, "bit {bit}");
    }
}

#[test]
fn bad_sizes_are_bad_arguments() {
    let hal = hal();
    let heap = plain_heap(&hal);
    let raw = hal.raw();
    for size in [0, -1, -4096, i64::MIN, i64::MAX, i64::MAX - 4094, 1 << 62] {
        assert_eq!(
            raw_code(raw.allocateFromHeap(&heap, size, "vts.size")),
            ERROR_BAD_ARGUMENT,
            "size {size}"
        );
        assert_eq!(
            raw_code(raw.allocateByUsage(usage::CPU_READ_OFTEN as i64, size, "vts.size")),
            ERROR_BAD_ARGUMENT,
            "size {size}"
        );
    }
}

#[test]
fn unknown_heaps_are_no_such_heap() {
    let raw = hal();
    for name in ["vts-no-such-heap", "../system", "", "system/../system", "."] {
        assert_eq!(
            code(raw.allocate_from_heap(name, 4096, "vts.heap")),
            ERROR_NO_SUCH_HEAP,
            "{name:?}"
        );
    }
}

#[test]
fn debug_names_never_fail_an_allocation_and_reach_the_kernel_clean() {
    let hal = hal();
    let heap = plain_heap(&hal);
    let too_long = "v".repeat(MAX_DEBUG_NAME_BYTES as usize + 1);
    let longest = "é".repeat(MAX_DEBUG_NAME_BYTES as usize / 2);
    for (name, kept) in [
        ("", heap.as_str()),
        (too_long.as_str(), &too_long[..31]),
        ("line\nbreak", "line_break"),
        ("nul\0inside", "nul_inside"),
        ("esc\u{1b}[31m", "esc_[31m"),
        ("\u{202e}bidi\u{200b}", "bidi"),
        (longest.as_str(), &longest[..30]),
    ] {
        let buf = hal
            .allocate_from_heap(&heap, 4096, name)
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
        let (got, _) = kernel_name_and_inode(&buf);
        assert!(
            got.starts_with(kept),
            "{name:?} is kept as {got:?}, not starting with {kept:?}"
        );
        assert!(got.len() < dmabuf::DMA_BUF_NAME_LEN, "{got:?}");
        assert!(
            !got.chars().any(|c| c.is_control()
                || ('\u{200b}'..='\u{200f}').contains(&c)
                || ('\u{202a}'..='\u{202e}').contains(&c)),
            "{got:?}"
        );
    }
    // Batches too: every buffer is served.
    let batch = hal
        .allocate_batch(&HeapSelector::HeapName(heap.clone()), 4096, 3, "\u{7}")
        .unwrap();
    assert_eq!(batch.len(), 3);
}

#[test]
fn ion_requests_follow_the_resolution_for_every_heap_id() {
    let hal = hal();
    assert_eq!(
        code(hal.allocate_ion(0, 0, 0, 4096, "vts.ion")),
        ERROR_BAD_ARGUMENT
    );
    assert_eq!(
        code(hal.allocate_ion(1, 0, 3, 4096, "vts.ion")),
        ERROR_BAD_ARGUMENT,
        "alignment 3"
    );
    let negative = dmaheap_aidl::IonRequest {
        heapIdMask: 1,
        flags: 0,
        alignment: -4096,
    };
    assert_eq!(
        raw_code(hal.raw().allocateIon(&negative, 4096, "vts.ion")),
        ERROR_BAD_ARGUMENT,
        "alignment -4096"
    );
    assert_eq!(
        code(hal.allocate_ion(1, 1 << 30, 0, 4096, "vts.ion")),
        ERROR_BAD_ARGUMENT,
        "unknown flag"
    );
    let mut mapped = 0;
    for id in 0..32u32 {
        for flags in [0, ION_FLAG_CACHED as u32] {
            match hal.resolve_ion(1 << id, flags) {
                Ok(r) => {
                    let buf = hal
                        .allocate_ion(1 << id, flags, 4096, 4096, "vts.ion")
                        .unwrap_or_else(|e| panic!("id {id}: {e}"));
                    assert_eq!(buf.heap(), r.heapName, "id {id} flags {flags}");
                    mapped += 1;
                }
                Err(e) => {
                    let c = e.service_code().unwrap_or_else(|| panic!("id {id}: {e}"));
                    assert_eq!(c, ERROR_NO_SUCH_HEAP, "id {id}: {e}");
                    assert_eq!(
                        code(hal.allocate_ion(1 << id, flags, 0, 4096, "vts.ion")),
                        c,
                        "id {id}"
                    );
                }
            }
        }
    }
    assert!(mapped > 0, "no ION heap id is usable on this device");
}

#[test]
fn batches_have_their_count_limited_and_return_distinct_buffers() {
    let hal = hal();
    let sel = HeapSelector::HeapName(plain_heap(&hal));
    for count in [0, -1, MAX_BATCH_COUNT + 1, i32::MAX] {
        assert_eq!(
            raw_code(hal.raw().allocateBatch(&sel, 4096, count, "vts.batch")),
            ERROR_BAD_ARGUMENT,
            "count {count}"
        );
    }
    let buffers = hal.allocate_batch(&sel, 4096, 8, "vts.batch").unwrap();
    assert_eq!(buffers.len(), 8);
    let inodes: HashSet<u64> = buffers
        .iter()
        .map(|b| nix::sys::stat::fstat(b.dma_buf().as_fd()).unwrap().st_ino)
        .collect();
    assert_eq!(inodes.len(), 8, "a batch returned the same buffer twice");
    // size x count above any sane per-call quota, refused before allocating anything.
    let refused = hal
        .raw()
        .allocateBatch(&sel, 256 << 20, MAX_BATCH_COUNT, "vts.batch");
    let c = raw_code(refused);
    assert!(
        c == ERROR_QUOTA_EXCEEDED || c == ERROR_BAD_ARGUMENT,
        "huge batch gave {c}"
    );
}

/// Holds as many `size`-byte buffers from `heap` as fit, until the service says out of memory.
fn fill(hal: &HeapAllocator, heap: &str, size: u64) -> Vec<dmaheap_client::Buffer> {
    let mut held = Vec::new();
    while held.len() < 4096 {
        match hal.allocate_from_heap(heap, size, "vts.fill") {
            Ok(b) => held.push(b),
            Err(e) => {
                assert_eq!(e.service_code(), Some(ERROR_OUT_OF_MEMORY), "{heap}: {e}");
                return held;
            }
        }
    }
    panic!("{heap} never ran out: not a bounded contiguous heap");
}

/// Heaps may free in a deferred worker, so memory comes back shortly after the last close.
fn retry_for<T, E>(what: impl Fn() -> Result<T, E>) -> Result<T, E> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match what() {
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            other => return other,
        }
    }
}

#[test]
fn a_batch_failing_half_way_releases_everything() {
    let hal = hal();
    let fds_before = settled_service_fds(None);
    let contiguous = present_heaps(&hal)
        .into_iter()
        .find(|h| h.contiguous && !h.secure);
    match contiguous {
        Some(heap) => {
            // Size the buffers so that the heap holds about 16 of them: a batch of one more
            // fails on its last allocation, after all the others succeeded.
            let capacity_mib = fill(&hal, &heap.name, 1 << 20).len() as u64;
            assert!(capacity_mib >= 1, "{} holds no 1 MiB buffer", heap.name);
            let size = capacity_mib.div_ceil(16) << 20;
            let fit = retry_for(|| {
                let n = fill(&hal, &heap.name, size).len();
                if n > 0 {
                    Ok(n)
                } else {
                    Err(())
                }
            })
            .unwrap_or_else(|_| panic!("{}: memory of the probe did not come back", heap.name));
            assert!(
                fit < MAX_BATCH_COUNT as usize,
                "{}: {fit} buffers of {size} fit",
                heap.name
            );
            let sel = HeapSelector::HeapName(heap.name.clone());
            let over =
                retry_for(
                    || match hal.allocate_batch(&sel, size, fit as u32 + 1, "vts.half") {
                        Err(e) if e.service_code() == Some(ERROR_OUT_OF_MEMORY) => Ok(()),
                        Err(e) => panic!("{}: {e}", heap.name),
                        Ok(buffers) => Err(buffers.len()),
                    },
                );
            assert_eq!(
                over,
                Ok(()),
                "{}: a batch of {} x {size} did not run out",
                heap.name,
                fit + 1
            );
            // Had the failed batch kept any of its buffers, these would no longer all fit.
            let again = retry_for(|| hal.allocate_batch(&sel, size, fit as u32, "vts.again"));
            assert!(
                again.is_ok(),
                "{}: the failed batch's memory was not released: {:?}",
                heap.name,
                again.err()
            );
        }
        None => {
            // No bounded heap to exhaust here: the per-call limit is the all-or-nothing path.
            let sel = HeapSelector::HeapName(plain_heap(&hal));
            let c = raw_code(
                hal.raw()
                    .allocateBatch(&sel, 256 << 20, MAX_BATCH_COUNT, "vts.half"),
            );
            assert!(
                c == ERROR_QUOTA_EXCEEDED || c == ERROR_BAD_ARGUMENT || c == ERROR_OUT_OF_MEMORY,
                "{c}"
            );
        }
    }
    assert_eq!(
        settled_service_fds(Some(fds_before)),
        fds_before,
        "the service kept fds"
    );
}

#[test]
fn concurrent_clients_get_their_buffers_without_errors_or_service_fd_growth() {
    let hal = hal();
    let heap = plain_heap(&hal);
    drop(hal);
    let fds_before = settled_service_fds(None);
    let clients = 100;
    let per_client = 20;
    let threads: Vec<_> = (0..clients)
        .map(|client| {
            let heap = heap.clone();
            std::thread::spawn(move || -> Result<u64, String> {
                let hal = connect().map_err(|e| e.to_string())?;
                let mut bytes = 0;
                for i in 0..per_client {
                    let size = 4096u64 << (i % 5);
                    let allocate = || {
                        if i % 2 == 0 {
                            hal.allocate_from_heap(&heap, size, &format!("vts.c{client}"))
                        } else {
                            hal.allocate_by_usage(
                                usage::CPU_READ_OFTEN | usage::CPU_WRITE_OFTEN,
                                size,
                                &format!("vts.c{client}"),
                            )
                        }
                    };
                    // All 100 clients are one uid, more than the service serves at once for
                    // one uid: ERROR_BUSY means "try again later", and is the only error
                    // allowed.
                    let mut result = allocate();
                    for _ in 0..50 {
                        match &result {
                            Err(e) if e.service_code() == Some(ERROR_BUSY) => {
                                std::thread::sleep(Duration::from_millis(20));
                                result = allocate();
                            }
                            _ => break,
                        }
                    }
                    let buf = result.map_err(|e| format!("client {client} allocation {i}: {e}"))?;
                    if buf.size() < size {
                        return Err(format!("client {client}: {} bytes for {size}", buf.size()));
                    }
                    bytes += buf.size();
                }
                Ok(bytes)
            })
        })
        .collect();
    let mut errors = Vec::new();
    for t in threads {
        match t.join() {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => errors.push(e),
            Err(_) => errors.push("a client thread panicked".to_owned()),
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {clients} clients failed: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(
        settled_service_fds(Some(fds_before)),
        fds_before,
        "the service's fd table grew"
    );
}

#[test]
fn counters_count_this_client() {
    let hal = hal();
    let heap = plain_heap(&hal);
    let uid = nix::unistd::getuid().as_raw() as i32;
    let before = hal.stats().unwrap();
    let heap_count = |s: &dmaheap_aidl::AllocatorStats| {
        s.heaps
            .iter()
            .find(|h| h.heapName == heap)
            .map_or(0, |h| h.allocations)
    };
    let mine = |s: &dmaheap_aidl::AllocatorStats| {
        s.clients
            .iter()
            .find(|c| c.uid == uid)
            .map_or((0, 0), |c| (c.allocations, c.errors))
    };
    let _kept = hal
        .allocate_batch(&HeapSelector::HeapName(heap.clone()), 4096, 3, "vts.stats")
        .unwrap();
    let _ = hal.allocate_from_heap("vts-no-such-heap", 4096, "vts.stats");
    let after = hal.stats().unwrap();
    assert!(heap_count(&after) >= heap_count(&before) + 3);
    let (a0, e0) = mine(&before);
    let (a1, e1) = mine(&after);
    assert!(
        a1 >= a0 + 3 && e1 > e0,
        "uid {uid}: {:?} -> {:?}",
        (a0, e0),
        (a1, e1)
    );
    assert!(!after.policyPath.is_empty());
}

#[test]
fn dump_shows_policy_heaps_and_this_callers_counters() {
    let hal = hal();
    let heap = plain_heap(&hal);
    hal.allocate_from_heap(&heap, 4096, "vts.dump").unwrap();
    let dump = hal.dump().unwrap();
    let policy = hal.stats().unwrap().policyPath;
    assert!(dump.contains(&format!("policy: {policy}")), "{dump}");
    assert!(dump.contains("rules (first match wins)"), "{dump}");
    assert!(
        dump.lines().any(|l| l.trim_start().starts_with(&heap)),
        "{heap} missing:\n{dump}"
    );
    let uid = nix::unistd::getuid().to_string();
    let section = dump
        .split("counters per calling uid")
        .nth(1)
        .expect("a per-uid section");
    assert!(
        section
            .lines()
            .any(|l| l.split_whitespace().next() == Some(uid.as_str())),
        "{dump}"
    );
}

#[test]
fn a_debug_name_that_is_not_valid_utf16_is_refused_and_the_service_survives() {
    let hal = hal();
    let binder = hal.raw().as_binder();
    let proxy = binder.as_proxy().expect("the service is remote");
    // allocateByUsage(usage, size, debugName) written by hand, because a Rust string cannot
    // hold what a buggy or hostile client may send: a lone UTF-16 high surrogate. The service
    // refuses no name, but this one is no string at all: the parcel reader refuses it
    // (BAD_VALUE) before the service sees the call.
    let mut data = proxy.prepare_transact(true).unwrap();
    data.write(&((usage::CPU_READ_OFTEN) as i64)).unwrap();
    data.write(&4096i64).unwrap();
    data.write(&1i32).unwrap(); // String16 length in units
    data.write(&0x0000_d800i32).unwrap(); // the unit 0xd800, then the terminating NUL unit
    let allocate_by_usage = rsbinder::FIRST_CALL_TRANSACTION;
    match proxy.submit_transact(allocate_by_usage, &data, 0) {
        Err(code) => assert_eq!(code, rsbinder::StatusCode::BadValue),
        Ok(Some(mut reply)) => {
            let status: rsbinder::Status = reply.read().unwrap();
            assert!(!status.is_ok(), "a malformed name was accepted");
        }
        Ok(None) => panic!("no reply to a two-way call"),
    }
    hal.allocate_by_usage(usage::CPU_READ_OFTEN, 4096, "vts.after-bad-name")
        .expect("the service still serves after a malformed parcel");
}
