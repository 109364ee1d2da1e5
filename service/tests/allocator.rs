//! The whole request path (validation, policy, fallbacks, naming, batches, error codes,
//! counters) on memfd-backed heaps.

use dmaheap_aidl::consts;
use dmaheap_aidl::usage::*;
use dmaheap_service::backend::MemfdBackend;
use dmaheap_service::{Allocator, Caller, ErrorKind, Policy, Selector};

const CALLER: Caller = Caller {
    uid: 1047,
    pid: 321,
    domain: None,
};

fn allocator(heaps: &[&str]) -> Allocator<MemfdBackend> {
    Allocator::new(
        Policy::builtin_default(),
        MemfdBackend::with_heaps(heaps.iter().copied()),
    )
}

fn kind<T: std::fmt::Debug>(r: Result<T, dmaheap_service::HalError>) -> ErrorKind {
    r.expect_err("request should fail").kind
}

#[test]
fn usage_allocations_come_from_the_resolved_heap_zeroed_and_page_rounded() {
    let a = allocator(&["system", "system-uncached"]);
    let page = a.page_size();
    let got = a
        .allocate(&CALLER, &Selector::Usage(GPU_TEXTURE), 1, "tex")
        .unwrap();
    assert_eq!(got.heap, "system-uncached");
    assert_eq!(got.size, page);
    assert_eq!(got.buf.len(), page);
    let map = got.buf.map().unwrap();
    assert_eq!(map.find_byte_not_equal_to(0), None);

    let got = a
        .allocate(
            &CALLER,
            &Selector::Usage(CPU_READ_OFTEN),
            page as i64 + 1,
            "cpu",
        )
        .unwrap();
    assert_eq!((got.heap.as_str(), got.size), ("system", 2 * page));
}

#[test]
fn buffers_are_named_by_the_caller_and_their_owner_is_kept_for_dump() {
    let a = allocator(&["system"]);
    let got = a
        .allocate(
            &CALLER,
            &Selector::Heap("system".into()),
            4096,
            "camera.preview",
        )
        .unwrap();
    // The caller's name first, then the heap while it fits in the 31 bytes the kernel keeps.
    assert_eq!(a.backend().names(), ["camera.preview@system"]);
    assert_eq!(got.label, "camera.preview@system");
    // The owner is in the record, under the inode fdinfo shows for the fd.
    let inode = nix::sys::stat::fstat(&got.buf).unwrap().st_ino;
    assert_eq!(got.inode, inode);
    let owners = a.recent_owners();
    assert_eq!(owners.len(), 1);
    let owner = &owners[0];
    assert_eq!(
        (
            owner.inode,
            owner.uid,
            owner.pid,
            owner.heap.as_str(),
            owner.size
        ),
        (inode, 1047, 321, "system", 4096)
    );
    assert_eq!(&*owner.name, "camera.preview");
    let dump = a.dump();
    let line = dump
        .lines()
        .find(|l| l.trim_start().starts_with(&inode.to_string()))
        .unwrap_or_else(|| panic!("no owner line for inode {inode}:\n{dump}"));
    for column in ["1047", "321", "system", "4096", "camera.preview"] {
        assert!(line.contains(column), "{column} missing: {line}");
    }
}

#[test]
fn a_refused_request_leaves_no_owner_behind() {
    let a = allocator(&["system"]);
    a.allocate(&CALLER, &Selector::Heap("system".into()), 0, "refused")
        .unwrap_err();
    assert!(a.recent_owners().is_empty());
}

#[test]
fn bad_sizes_are_bad_arguments() {
    let a = allocator(&["system"]);
    let sel = Selector::Heap("system".into());
    for size in [0, -1, i64::MIN, i64::MAX, (512 << 20) + 1] {
        assert_eq!(
            kind(a.allocate(&CALLER, &sel, size, "x")),
            ErrorKind::BadArgument,
            "size {size}"
        );
    }
    let err = a.allocate(&CALLER, &sel, i64::MAX - 1, "x").unwrap_err();
    assert!(err.message.contains("overflows"), "{}", err.message);
    assert!(
        a.allocate(&CALLER, &sel, 512 << 20, "x").is_ok(),
        "the limit itself is allowed"
    );
    assert_eq!(
        a.backend().allocations(),
        1,
        "nothing was allocated for a refused request"
    );
}

#[test]
fn debug_names_never_fail_an_allocation() {
    let a = allocator(&["system"]);
    let sel = Selector::Heap("system".into());
    let long = "n".repeat(consts::MAX_DEBUG_NAME_BYTES as usize + 1);
    let names = ["", long.as_str(), "tab\there", "nul\0byte", "bell\u{7}"];
    for name in names {
        a.allocate(&CALLER, &sel, 4096, name)
            .unwrap_or_else(|e| panic!("{name:?}: {e}"));
    }
    let kernel_names = a.backend().names();
    assert_eq!(
        kernel_names,
        [
            "system".to_owned(),
            "n".repeat(31),
            "tab_here@system".to_owned(),
            "nul_byte@system".to_owned(),
            "bell_@system".to_owned()
        ]
    );
    let batch = a.allocate_batch(&CALLER, &sel, 4096, 2, "").unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(a.backend().names()[5..], ["system#0", "system#1"]);
}

#[test]
fn named_heaps_must_be_declared_and_present() {
    let a = allocator(&["system"]);
    assert_eq!(
        kind(a.allocate(&CALLER, &Selector::Heap("nope".into()), 4096, "x")),
        ErrorKind::NoSuchHeap
    );
    assert_eq!(
        kind(a.allocate(&CALLER, &Selector::Heap("reserved".into()), 4096, "x")),
        ErrorKind::NoSuchHeap
    );
    assert_eq!(
        kind(a.allocate(&CALLER, &Selector::Heap("../system".into()), 4096, "x")),
        ErrorKind::NoSuchHeap
    );
}

#[test]
fn unknown_and_protected_usage_is_unsupported() {
    let a = allocator(&["system", "system-uncached"]);
    assert_eq!(
        kind(a.allocate(&CALLER, &Selector::Usage(1 << 33), 4096, "x")),
        ErrorKind::UnsupportedUsage
    );
    assert_eq!(
        kind(a.allocate(&CALLER, &Selector::Usage(PROTECTED), 4096, "x")),
        ErrorKind::UnsupportedUsage
    );
}

#[test]
fn ion_requests_try_heaps_in_priority_order_until_one_succeeds() {
    let a = allocator(&["system", "system-uncached", "reserved"]);
    // id 4 (DMA -> reserved) outranks id 0 (system).
    let ion = |mask, flags| Selector::Ion {
        heap_id_mask: mask,
        flags,
        alignment: 0,
    };
    assert_eq!(
        a.allocate(&CALLER, &ion(0b10001, 0), 4096, "x")
            .unwrap()
            .heap,
        "reserved"
    );
    // CMA exhausted: ION moves on to the next id.
    a.backend().fail_after("reserved", 0, nix::Error::ENOMEM);
    assert_eq!(
        a.allocate(&CALLER, &ion(0b10001, 0), 4096, "x")
            .unwrap()
            .heap,
        "system-uncached"
    );
    assert_eq!(
        a.allocate(&CALLER, &ion(0b10001, 1), 4096, "x")
            .unwrap()
            .heap,
        "system"
    );
    // Only the exhausted heap: out of memory.
    assert_eq!(
        kind(a.allocate(&CALLER, &ion(0b10000, 0), 4096, "x")),
        ErrorKind::OutOfMemory
    );
    assert_eq!(
        kind(a.allocate(&CALLER, &ion(0, 0), 4096, "x")),
        ErrorKind::BadArgument
    );
    assert_eq!(
        kind(a.allocate(&CALLER, &ion(1 << 9, 0), 4096, "x")),
        ErrorKind::NoSuchHeap
    );
    let odd_alignment = Selector::Ion {
        heap_id_mask: 1,
        flags: 0,
        alignment: 3,
    };
    assert_eq!(
        kind(a.allocate(&CALLER, &odd_alignment, 4096, "x")),
        ErrorKind::BadArgument
    );
    let negative_alignment = Selector::Ion {
        heap_id_mask: 1,
        flags: 0,
        alignment: i64::MIN,
    };
    assert_eq!(
        kind(a.allocate(&CALLER, &negative_alignment, 4096, "x")),
        ErrorKind::BadArgument
    );
    let big_alignment = Selector::Ion {
        heap_id_mask: 1,
        flags: 0,
        alignment: 1 << 20,
    };
    assert!(
        a.allocate(&CALLER, &big_alignment, 4096, "x").is_ok(),
        "alignment is accepted and ignored"
    );
}

#[test]
fn usage_rules_do_not_fall_back_on_failure_unless_asked() {
    let a = allocator(&["system", "system-uncached"]);
    a.backend()
        .fail_after("system-uncached", 0, nix::Error::ENOMEM);
    assert_eq!(
        kind(a.allocate(&CALLER, &Selector::Usage(GPU_TEXTURE), 4096, "x")),
        ErrorKind::OutOfMemory
    );

    let policy = Policy::parse(
        "[[heap]]\nname = \"a\"\n[[heap]]\nname = \"b\"\n[[rule]]\nname = \"r\"\nheaps = [\"a\", \"b\"]\nfallback_on_failure = true\n",
        "t",
    )
    .unwrap();
    let a = Allocator::new(policy, MemfdBackend::with_heaps(["a", "b"]));
    a.backend().fail_after("a", 0, nix::Error::ENOMEM);
    assert_eq!(
        a.allocate(&CALLER, &Selector::Usage(0), 4096, "x")
            .unwrap()
            .heap,
        "b"
    );
    assert_eq!(a.stats().snapshot().heaps["a"].failures, 1);
}

#[test]
fn kernel_errors_other_than_enomem_are_internal() {
    let a = allocator(&["system"]);
    a.backend().fail_after("system", 0, nix::Error::EIO);
    let err = a
        .allocate(&CALLER, &Selector::Usage(CPU_READ_OFTEN), 4096, "x")
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Internal);
    assert!(err.message.contains("EIO"), "{}", err.message);
}

#[test]
fn batches_are_all_or_nothing() {
    let a = allocator(&["system"]);
    let sel = Selector::Usage(CPU_READ_OFTEN);
    let ok = a.allocate_batch(&CALLER, &sel, 4096, 3, "gralloc").unwrap();
    assert_eq!(ok.len(), 3);
    assert!(ok.iter().all(|b| b.heap == "system" && b.size == 4096));
    assert_eq!(a.backend().names()[2], "gralloc#2@system");

    // The third allocation fails: the two made before it are released and none is returned.
    a.backend().fail_after("system", 2, nix::Error::ENOMEM);
    assert_eq!(
        kind(a.allocate_batch(&CALLER, &sel, 4096, 3, "gralloc")),
        ErrorKind::OutOfMemory
    );
    let snap = a.stats().snapshot();
    assert_eq!(
        snap.heaps["system"].allocations, 3,
        "a failed batch hands out nothing"
    );
    assert_eq!(snap.clients[&1047].errors, 1);
}

#[test]
fn batch_counts_and_totals_are_limited() {
    let a = allocator(&["system"]);
    let sel = Selector::Usage(CPU_READ_OFTEN);
    for count in [0, -1, 65, i32::MAX] {
        assert_eq!(
            kind(a.allocate_batch(&CALLER, &sel, 4096, count, "x")),
            ErrorKind::BadArgument,
            "count {count}"
        );
    }
    // 64 x 32 MiB = 2 GiB, above the 1 GiB per-call quota.
    assert_eq!(
        kind(a.allocate_batch(&CALLER, &sel, 32 << 20, 64, "x")),
        ErrorKind::QuotaExceeded
    );
    assert_eq!(a.backend().allocations(), 0);
    assert_eq!(
        a.allocate_batch(&CALLER, &sel, 4096, 64, "x")
            .unwrap()
            .len(),
        64
    );
}

#[test]
fn counters_follow_heaps_and_uids() {
    let a = allocator(&["system", "system-uncached"]);
    let other = Caller::new(1013, 9);
    a.allocate(&CALLER, &Selector::Usage(CPU_READ_OFTEN), 8192, "a")
        .unwrap();
    a.allocate(&other, &Selector::Usage(GPU_TEXTURE), 4096, "b")
        .unwrap();
    a.allocate(&other, &Selector::Usage(1 << 40), 4096, "c")
        .unwrap_err();
    let snap = a.stats().snapshot();
    assert_eq!(
        (snap.heaps["system"].allocations, snap.heaps["system"].bytes),
        (1, 8192)
    );
    assert_eq!(snap.heaps["system-uncached"].allocations, 1);
    assert_eq!(
        (snap.clients[&1047].allocations, snap.clients[&1047].errors),
        (1, 0)
    );
    assert_eq!(
        (snap.clients[&1013].allocations, snap.clients[&1013].errors),
        (1, 1)
    );
    let dump = a.dump();
    assert!(
        dump.contains("no-cpu-access") && dump.contains("1013"),
        "{dump}"
    );
}

#[test]
fn heaps_list_presence_and_ion_ids() {
    let a = allocator(&["system", "reserved"]);
    let heaps = a.heaps();
    let by_name = |n: &str| heaps.iter().find(|h| h.spec.name == n).unwrap().clone();
    assert!(by_name("system").present);
    assert!(!by_name("system-uncached").present);
    assert_eq!(by_name("system").ion_ids, [0]);
    assert_eq!(by_name("reserved").ion_ids, [1, 3, 4]);
    assert!(by_name("reserved").spec.contiguous);
    // Heaps that appear later (a module loaded after start-up) are seen.
    a.backend().set_present("system-uncached", true);
    assert!(a
        .heaps()
        .iter()
        .any(|h| h.spec.name == "system-uncached" && h.present));
}
