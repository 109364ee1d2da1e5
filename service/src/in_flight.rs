//! Calls being served per caller (a `[[limits.caller]]` entry or a uid), so that one client can
//! never hold every binder thread.
//!
//! A call over its caller's cap waits its turn in arrival order (a waiter is never overtaken by
//! later calls of the same caller): for at most [`crate::allocator::BUSY_WAIT`] under
//! [`OverLimit::Busy`], as long as it takes under [`OverLimit::Queue`]. A waiting call still
//! holds its binder thread, so the cap alone does not keep a thread free for others: a caller
//! whose running and waiting calls already hold all but one of the service's binder threads
//! gets `ERROR_BUSY` at once, whatever its mode. That one thread is what lets every other
//! caller through while one caller's allocations are stuck in a slow heap.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::error::{HalError, HalResult};
use crate::policy::limits::{CallLimit, LimitKey, OverLimit};

#[derive(Debug, Default)]
pub struct InFlight {
    state: Mutex<InFlightState>,
    freed: Condvar,
    /// The binder threads of the service; `None` where the allocator runs without binder (host
    /// tests), where no thread can be exhausted.
    binder_threads: Option<u32>,
}

#[derive(Debug, Default)]
struct InFlightState {
    by_key: HashMap<LimitKey, KeyCalls>,
    next_ticket: u64,
}

#[derive(Debug, Default)]
struct KeyCalls {
    running: u32,
    /// Tickets of the calls waiting for a slot, oldest first.
    waiting: VecDeque<u64>,
}

impl KeyCalls {
    /// Binder threads this caller's calls occupy, running or waiting.
    fn threads_held(&self) -> u32 {
        self.running + self.waiting.len() as u32
    }
}

/// A slot of [`InFlight`], given back on drop.
pub struct Slot<'a> {
    in_flight: &'a InFlight,
    key: LimitKey,
}

impl InFlight {
    pub fn with_binder_threads(threads: u32) -> Self {
        Self {
            binder_threads: Some(threads),
            ..Self::default()
        }
    }

    pub fn binder_threads(&self) -> Option<u32> {
        self.binder_threads
    }

    /// A slot under `limit`, waiting for one as its mode says; `busy_wait` bounds the wait of
    /// [`OverLimit::Busy`].
    pub fn acquire(&self, limit: &CallLimit<'_>, busy_wait: Duration) -> HalResult<Slot<'_>> {
        let deadline = Instant::now() + busy_wait;
        let cap = limit.max_calls_in_flight;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let calls = state.by_key.entry(limit.key).or_default();
        if calls.running < cap && calls.waiting.is_empty() {
            calls.running += 1;
            return Ok(self.slot(limit.key));
        }
        // This call would wait on its binder thread: never on the last one left to others.
        if let Some(threads) = self.binder_threads {
            if calls.threads_held() + 1 >= threads {
                return Err(HalError::busy(format!(
                    "{} already holds {} of the service's {threads} binder threads; the last one \
                     is kept for other callers",
                    limit.describe(),
                    calls.threads_held()
                )));
            }
        }
        calls.waiting.push_back(ticket);
        loop {
            state = match limit.over_limit {
                OverLimit::Queue => self.freed.wait(state).unwrap_or_else(|p| p.into_inner()),
                OverLimit::Busy => {
                    let now = Instant::now();
                    if now < deadline {
                        self.freed
                            .wait_timeout(state, deadline - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    } else {
                        state
                    }
                }
            };
            let calls = state.by_key.entry(limit.key).or_default();
            if calls.waiting.front() == Some(&ticket) && calls.running < cap {
                calls.waiting.pop_front();
                calls.running += 1;
                // The next in line may fit too.
                self.freed.notify_all();
                return Ok(self.slot(limit.key));
            }
            if limit.over_limit == OverLimit::Busy && Instant::now() >= deadline {
                calls.waiting.retain(|&t| t != ticket);
                if calls.running == 0 && calls.waiting.is_empty() {
                    state.by_key.remove(&limit.key);
                }
                // Whoever was behind this call may be first in line now.
                self.freed.notify_all();
                return Err(HalError::busy(format!(
                    "{} already has {cap} calls in flight",
                    limit.describe()
                )));
            }
        }
    }

    fn slot(&self, key: LimitKey) -> Slot<'_> {
        Slot {
            in_flight: self,
            key,
        }
    }

    /// Calls running and waiting for `key` now.
    pub fn calls_of(&self, key: LimitKey) -> (u32, u32) {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .by_key
            .get(&key)
            .map_or((0, 0), |calls| (calls.running, calls.waiting.len() as u32))
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut state = self
            .in_flight
            .state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut wake = false;
        if let Some(calls) = state.by_key.get_mut(&self.key) {
            calls.running -= 1;
            // Only this caller's waiters want this slot. A notification costs a futex system
            // call even when nobody waits, and this runs once per allocation call.
            wake = !calls.waiting.is_empty();
            if calls.running == 0 && !wake {
                state.by_key.remove(&self.key);
            }
        }
        drop(state);
        if wake {
            self.in_flight.freed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::limits::{CallerLimit, CallerMatch};

    const UID: u32 = 10123;

    fn per_uid(uid: u32, cap: u32) -> CallLimit<'static> {
        CallLimit {
            key: LimitKey::Uid(uid),
            max_calls_in_flight: cap,
            over_limit: OverLimit::Busy,
            entry: None,
            uid,
        }
    }

    /// A call of `UID` that arrived earlier and still waits for a slot (its thread not yet woken).
    fn earlier_waiter(in_flight: &InFlight) {
        let mut state = in_flight.state.lock().unwrap();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state
            .by_key
            .entry(LimitKey::Uid(UID))
            .or_default()
            .waiting
            .push_back(ticket);
    }

    #[test]
    fn a_new_call_never_overtakes_a_waiting_one() {
        let in_flight = InFlight::default();
        earlier_waiter(&in_flight);
        // A slot is free, but the earlier call is first in line: no slot at once...
        let now = in_flight.acquire(&per_uid(UID, 1), Duration::ZERO);
        assert_eq!(now.err().map(|e| e.kind), Some(crate::ErrorKind::Busy));
        // ...nor after waiting, since the earlier call keeps its turn.
        let later = in_flight.acquire(&per_uid(UID, 1), Duration::from_millis(50));
        assert_eq!(later.err().map(|e| e.kind), Some(crate::ErrorKind::Busy));
        // The queue holds only the earlier call again: the refused ones left it.
        assert_eq!(in_flight.calls_of(LimitKey::Uid(UID)), (0, 1));
    }

    #[test]
    fn another_uid_is_not_held_up_by_a_waiting_call() {
        let in_flight = InFlight::default();
        earlier_waiter(&in_flight);
        let slot = in_flight.acquire(&per_uid(UID + 1, 1), Duration::ZERO);
        assert!(slot.is_ok());
    }

    #[test]
    fn a_queueing_caller_never_waits_on_the_last_binder_thread() {
        let entry = CallerLimit {
            who: CallerMatch::Domain("hal_graphics_allocator_default".into()),
            max_calls_in_flight: 1,
            over_limit: OverLimit::Queue,
            line: 0,
        };
        let limit = CallLimit {
            key: LimitKey::Entry(0),
            max_calls_in_flight: 1,
            over_limit: OverLimit::Queue,
            entry: Some(&entry),
            uid: 1000,
        };
        // Two threads: the caller runs on one; waiting on the other would leave none.
        let in_flight = InFlight::with_binder_threads(2);
        let running = in_flight.acquire(&limit, Duration::ZERO).unwrap();
        let (done, outcome) = std::sync::mpsc::channel();
        let (shared, limit) = (&in_flight, &limit);
        let second = std::thread::scope(|s| {
            s.spawn(move || {
                let _ = done.send(shared.acquire(limit, Duration::ZERO).map(drop));
            });
            let outcome = outcome.recv_timeout(Duration::from_secs(5));
            // Also lets a stuck second call go, so that the scope can end.
            drop(running);
            outcome
        });
        let e = second
            .expect("the second call waited on the last binder thread")
            .expect_err("no wait on the last thread");
        assert!(e.message.contains("binder threads"), "{}", e.message);
        assert_eq!(in_flight.calls_of(LimitKey::Entry(0)), (0, 0));
    }
}
