//! Calls served on a real-time thread are counted and shown in `dump`: on a device whose binder
//! driver lifts the service's thread to a SCHED_FIFO caller's priority (FLAT_BINDER_FLAG_INHERIT_RT),
//! this is where the lift shows. Here the test makes its own thread SCHED_FIFO, as the driver
//! would.

use dmaheap_service::backend::MemfdBackend;
use dmaheap_service::{Allocator, Caller, Policy, Selector};

/// Makes the calling thread SCHED_FIFO at the lowest real-time priority; false where the test
/// may not (without CAP_SYS_NICE and with RLIMIT_RTPRIO 0).
fn become_realtime() -> bool {
    let param = libc::sched_param { sched_priority: 1 };
    // SAFETY: `param` is a valid sched_param for the duration of the call; 0 is this thread.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
}

#[test]
fn calls_served_on_a_realtime_thread_are_counted_and_dumped() {
    let a = Allocator::new(
        Policy::builtin_default(),
        MemfdBackend::with_heaps(["system"]),
    );
    let caller = Caller::new(1047, 1);
    let system = Selector::Heap("system".into());
    a.allocate(&caller, &system, 4096, "normal").unwrap();
    assert_eq!(a.realtime_calls(), (0, 1));

    let realtime = std::thread::scope(|s| {
        s.spawn(|| {
            if !become_realtime() {
                return false;
            }
            a.allocate(&caller, &system, 4096, "camera").unwrap();
            a.allocate_batch(&caller, &system, 4096, 2, "camera")
                .unwrap();
            true
        })
        .join()
        .unwrap()
    });
    // The test runs as root (CI, the VM); a failure here is an environment that cannot show it.
    assert!(
        realtime,
        "this process may not use SCHED_FIFO (needs CAP_SYS_NICE or an RLIMIT_RTPRIO above 0)"
    );
    assert_eq!(a.realtime_calls(), (2, 3));
    let dump = a.dump();
    assert!(
        dump.contains("scheduling: 2 of 3 allocation calls ran on a SCHED_FIFO/SCHED_RR thread"),
        "{dump}"
    );
}
