//! No error path leaks a file descriptor. Alone in its own test binary, so that no other test
//! opens or closes fds while the process's fd table is being counted.

use dmaheap_aidl::usage::*;
use dmaheap_service::backend::MemfdBackend;
use dmaheap_service::{Allocator, Caller, Policy, Selector};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn failed_and_successful_requests_leave_no_fds_behind() {
    let a = Allocator::new(
        Policy::builtin_default(),
        MemfdBackend::with_heaps(["system", "system-uncached"]),
    );
    let caller = Caller::new(1000, 1);
    let sel = Selector::Usage(CPU_READ_OFTEN);
    let before = open_fds();

    for round in 0..20 {
        // A batch that fails half-way, at a different point each round.
        a.backend()
            .fail_after("system", round % 8, nix::Error::ENOMEM);
        assert!(a.allocate_batch(&caller, &sel, 4096, 8, "leak").is_err());
        // Refused before allocating, and failing in the backend.
        assert!(a.allocate(&caller, &sel, 0, "leak").is_err());
        assert!(a.allocate(&caller, &sel, 4096, "leak").is_err());
    }
    a.backend()
        .fail_after("system", u64::MAX, nix::Error::ENOMEM);
    let held = a.allocate_batch(&caller, &sel, 4096, 16, "held").unwrap();
    assert_eq!(
        open_fds(),
        before + 16,
        "a successful batch holds exactly its buffers"
    );
    drop(held);
    assert_eq!(open_fds(), before);
}
