//! Whether calls are served at their callers' real-time priority.
//!
//! The service registers with `FLAT_BINDER_FLAG_INHERIT_RT` (see
//! [`crate::service::binder_features`]): a binder driver that implements it (Android's common
//! kernel) runs the call on a thread lifted to a SCHED_FIFO / SCHED_RR caller's policy and
//! priority, so a camera or display thread is not served at normal priority. Counting the calls
//! that ran on a real-time thread shows on a device, in `dump`, that the lift happens.

use std::sync::atomic::{AtomicU64, Ordering};

/// Whether the calling thread runs under SCHED_FIFO or SCHED_RR.
pub fn current_thread_is_realtime() -> bool {
    // SAFETY: no pointer arguments; pid 0 is the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) };
    // The kernel reports SCHED_RESET_ON_FORK in the same word (minigbm's gralloc sets it).
    policy >= 0
        && matches!(
            policy & !libc::SCHED_RESET_ON_FORK,
            libc::SCHED_FIFO | libc::SCHED_RR
        )
}

/// Allocation calls served, and how many of them on a real-time thread.
#[derive(Debug, Default)]
pub struct SchedulingCounters {
    calls: AtomicU64,
    realtime: AtomicU64,
}

impl SchedulingCounters {
    /// Counts one call, served on the current thread.
    pub fn count_current_call(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if current_thread_is_realtime() {
            self.realtime.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (calls served on a real-time thread, all calls).
    pub fn realtime_of_all(&self) -> (u64, u64) {
        (
            self.realtime.load(Ordering::Relaxed),
            self.calls.load(Ordering::Relaxed),
        )
    }
}
