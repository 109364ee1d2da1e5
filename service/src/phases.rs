//! Where the service's time goes, per phase of an allocation call: cumulative nanoseconds and
//! counts, lock-free, shown by `dump` so that the fixed cost of the HAL can be measured inside
//! the service and compared with the client's round trip (`cargo xtask bench`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The phases of one allocation call, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Who is calling: uid, pid, SELinux context (the binder layer).
    Caller,
    /// Validation, the policy's resolution and the access check.
    Policy,
    /// `DMA_HEAP_IOCTL_ALLOC` (the heap devices are opened once, at start-up).
    Ioctl,
    /// Building the name, `DMA_BUF_SET_NAME`, and the `fstat` that gives the owner record its
    /// inode.
    Name,
    /// The whole handler, from the first to the last line of the binder method; the parcel
    /// (fd and result) is written by the generated code after it.
    Handler,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Caller,
        Phase::Policy,
        Phase::Ioctl,
        Phase::Name,
        Phase::Handler,
    ];

    fn name(self) -> &'static str {
        match self {
            Phase::Caller => "caller identity",
            Phase::Policy => "validation, policy, access",
            Phase::Ioctl => "allocation ioctl",
            Phase::Name => "name + SET_NAME",
            Phase::Handler => "whole handler",
        }
    }
}

#[derive(Debug, Default)]
pub struct PhaseTimes {
    nanos: [AtomicU64; 5],
    counts: [AtomicU64; 5],
}

impl PhaseTimes {
    pub fn add(&self, phase: Phase, elapsed: Duration) {
        let i = phase as usize;
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.nanos[i].fetch_add(nanos, Ordering::Relaxed);
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Runs `f`, adding its time to `phase`.
    pub fn time<R>(&self, phase: Phase, f: impl FnOnce() -> R) -> R {
        let start = Instant::now();
        let result = f();
        self.add(phase, start.elapsed());
        result
    }

    /// (phase name, count, total time) for each phase that ran.
    pub fn totals(&self) -> Vec<(&'static str, u64, Duration)> {
        Phase::ALL
            .iter()
            .filter_map(|&p| {
                let count = self.counts[p as usize].load(Ordering::Relaxed);
                let nanos = self.nanos[p as usize].load(Ordering::Relaxed);
                (count > 0).then(|| (p.name(), count, Duration::from_nanos(nanos)))
            })
            .collect()
    }
}
