//! Counters since start-up, per heap and per calling uid.
//!
//! Buffers leave the service with the reply, so it never learns when they are freed: these are
//! totals handed out. Memory in use is the kernel's to report (dma-buf sysfs stats).

use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapCounters {
    pub allocations: u64,
    pub bytes: u64,
    /// Attempts the backend refused, including ones a fallback rescued.
    pub failures: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCounters {
    pub allocations: u64,
    pub bytes: u64,
    /// Requests that ended in an error.
    pub errors: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub heaps: BTreeMap<String, HeapCounters>,
    pub clients: BTreeMap<u32, ClientCounters>,
}

/// One lock for both maps: a call updates them together, and a dump sees a consistent pair.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Snapshot>,
}

impl Stats {
    fn with<R>(&self, f: impl FnOnce(&mut Snapshot) -> R) -> R {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn allocated(&self, uid: u32, heap: &str, bytes: u64) {
        self.with(|s| {
            // Look up before inserting: the heap's key is allocated once, not per buffer.
            if !s.heaps.contains_key(heap) {
                s.heaps.insert(heap.to_owned(), HeapCounters::default());
            }
            let h = s.heaps.get_mut(heap).expect("inserted above");
            h.allocations += 1;
            h.bytes += bytes;
            let c = s.clients.entry(uid).or_default();
            c.allocations += 1;
            c.bytes += bytes;
        });
    }

    pub fn heap_failure(&self, heap: &str) {
        self.with(|s| s.heaps.entry(heap.to_owned()).or_default().failures += 1);
    }

    pub fn error(&self, uid: u32) {
        self.with(|s| s.clients.entry(uid).or_default().errors += 1);
    }

    pub fn snapshot(&self) -> Snapshot {
        self.with(|s| s.clone())
    }
}
