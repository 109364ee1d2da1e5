//! The service's logic, independent of binder: validate a request, resolve it through the policy,
//! allocate with fallbacks, name the buffers, count.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use dmabuf::DmaBuf;
use dmaheap_aidl::consts::MAX_DEBUG_NAME_BYTES;
use dmaheap_aidl::phase_dump;

pub use crate::access::Caller;
use crate::access::RateLimitedLog;
use crate::backend::{BackendError, HeapBackend};
use crate::error::{ErrorKind, HalError, HalResult};
use crate::phases::{Phase, PhaseTimes};
use crate::policy::{is_plain_heap_name, Policy, Resolution, MAX_HEAP_NAME_BYTES};
use crate::stats::Stats;

/// How long a call over its uid's in-flight limit waits for a slot before `ERROR_BUSY`.
pub const BUSY_WAIT: Duration = Duration::from_secs(1);

/// How often one kind of failure of one caller is logged (denials: per caller and heap).
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// The kernel keeps this many bytes of a dma-buf name (DMA_BUF_NAME_LEN 32, with the NUL).
pub const KERNEL_NAME_BYTES: usize = 31;

/// How a request picks its heap (the AIDL `HeapSelector`, in Rust terms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Usage(u64),
    Heap(String),
    Ion {
        heap_id_mask: u32,
        flags: u32,
        /// As the caller sent it: negative values are refused, not reinterpreted.
        alignment: i64,
    },
}

/// A buffer ready to be handed out.
#[derive(Debug)]
pub struct Allocation {
    pub buf: DmaBuf,
    pub heap: String,
    pub size: u64,
}

/// A heap as `listHeaps` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapStatus {
    pub spec: crate::policy::HeapSpec,
    pub present: bool,
    pub ion_ids: Vec<u32>,
}

pub struct Allocator<B> {
    policy: Policy,
    backend: B,
    stats: Stats,
    page_size: u64,
    in_flight: InFlight,
    failure_log: RateLimitedLog,
    phases: PhaseTimes,
}

/// Calls being served per uid, so that one client can never hold every binder thread. Calls over
/// the limit wait their turn in arrival order (a waiter is never overtaken by later calls of the
/// same uid), for at most [`BUSY_WAIT`].
#[derive(Debug, Default)]
struct InFlight {
    state: Mutex<InFlightState>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct InFlightState {
    by_uid: HashMap<u32, UidCalls>,
    next_ticket: u64,
}

#[derive(Debug, Default)]
struct UidCalls {
    running: u32,
    /// Tickets of the calls waiting for a slot, oldest first.
    waiting: std::collections::VecDeque<u64>,
}

/// A slot of [`InFlight`], given back on drop.
struct Slot<'a> {
    in_flight: &'a InFlight,
    uid: u32,
}

impl InFlight {
    fn acquire(&self, uid: u32, limit: u32, wait: Duration) -> HalResult<Slot<'_>> {
        let deadline = Instant::now() + wait;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        let calls = state.by_uid.entry(uid).or_default();
        if calls.running < limit && calls.waiting.is_empty() {
            calls.running += 1;
            return Ok(Slot {
                in_flight: self,
                uid,
            });
        }
        calls.waiting.push_back(ticket);
        loop {
            let now = Instant::now();
            let timed_out = now >= deadline;
            if !timed_out {
                state = self
                    .freed
                    .wait_timeout(state, deadline - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            let calls = state.by_uid.entry(uid).or_default();
            if calls.waiting.front() == Some(&ticket) && calls.running < limit {
                calls.waiting.pop_front();
                calls.running += 1;
                // The next in line may fit too.
                self.freed.notify_all();
                return Ok(Slot {
                    in_flight: self,
                    uid,
                });
            }
            if timed_out || Instant::now() >= deadline {
                calls.waiting.retain(|&t| t != ticket);
                // Whoever was behind this call may be first in line now.
                self.freed.notify_all();
                return Err(HalError::busy(format!(
                    "uid {uid} already has {limit} calls in flight (the policy's max_calls_per_uid)"
                )));
            }
        }
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
        if let Some(calls) = state.by_uid.get_mut(&self.uid) {
            calls.running -= 1;
            // Only this uid's waiters want this slot. A notification costs a futex system call
            // even when nobody waits, and this runs once per allocation call.
            wake = !calls.waiting.is_empty();
            if calls.running == 0 && !wake {
                state.by_uid.remove(&self.uid);
            }
        }
        drop(state);
        if wake {
            self.in_flight.freed.notify_all();
        }
    }
}

impl<B: HeapBackend> Allocator<B> {
    pub fn new(policy: Policy, backend: B) -> Self {
        let page_size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|p| u64::try_from(p).ok())
            .filter(|p| p.is_power_of_two())
            .unwrap_or(4096);
        Self {
            policy,
            backend,
            stats: Stats::default(),
            page_size,
            in_flight: InFlight::default(),
            failure_log: RateLimitedLog::new(LOG_INTERVAL, 4096),
            phases: PhaseTimes::default(),
        }
    }

    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Time spent per phase of the allocation calls so far.
    pub fn phases(&self) -> &PhaseTimes {
        &self.phases
    }

    /// Which heaps `selector` would use for `caller`, without allocating.
    pub fn resolve(&self, caller: &Caller, selector: &Selector) -> HalResult<Resolution> {
        let present = |heap: &str| self.backend.is_present(heap);
        match selector {
            Selector::Usage(usage) => self.policy.resolve_usage(*usage, &present, caller),
            Selector::Ion {
                heap_id_mask,
                flags,
                alignment,
            } => {
                if *alignment < 0 || (*alignment != 0 && !(*alignment as u64).is_power_of_two()) {
                    return Err(HalError::bad_argument(format!(
                        "ION alignment {alignment} is neither 0 nor a power of two"
                    )));
                }
                self.policy
                    .resolve_ion(*heap_id_mask, *flags, &present, caller)
            }
            Selector::Heap(name) => {
                // Length first: a hostile name is never formatted into a message or a log.
                if name.len() > MAX_HEAP_NAME_BYTES || !is_plain_heap_name(name) {
                    return Err(HalError::no_such_heap(format!(
                        "the heap name ({} bytes) is not a heap name: at most {MAX_HEAP_NAME_BYTES} \
                         printable ASCII bytes without '/'",
                        name.len()
                    )));
                }
                self.policy.check_heap_access(name, caller)?;
                if !present(name) {
                    return Err(HalError::no_such_heap(format!(
                        "heap {name:?} is not present on this device"
                    )));
                }
                Ok(Resolution {
                    rule: "named".to_owned(),
                    candidates: vec![name.clone()],
                    fallback_on_error: false,
                    reason: format!("heap {name:?} requested by name"),
                })
            }
        }
    }

    /// One buffer.
    pub fn allocate(
        &self,
        caller: &Caller,
        selector: &Selector,
        size: i64,
        debug_name: &str,
    ) -> HalResult<Allocation> {
        let result = self
            .in_flight
            .acquire(caller.uid, self.policy.limits.max_calls_per_uid, BUSY_WAIT)
            .and_then(|_slot| self.allocate_checked(caller, selector, size, debug_name));
        self.record(caller, result.as_ref().map(std::slice::from_ref));
        result
    }

    /// `count` buffers, all or nothing: on failure the ones already made are dropped (closed)
    /// before the error is returned, so nothing is leaked and the caller gets none.
    pub fn allocate_batch(
        &self,
        caller: &Caller,
        selector: &Selector,
        size: i64,
        count: i32,
        debug_name: &str,
    ) -> HalResult<Vec<Allocation>> {
        let result = self
            .in_flight
            .acquire(caller.uid, self.policy.limits.max_calls_per_uid, BUSY_WAIT)
            .and_then(|_slot| {
                self.allocate_batch_checked(caller, selector, size, count, debug_name)
            });
        self.record(caller, result.as_deref());
        result
    }

    fn allocate_checked(
        &self,
        caller: &Caller,
        selector: &Selector,
        size: i64,
        debug_name: &str,
    ) -> HalResult<Allocation> {
        let started = Instant::now();
        validate_debug_name(debug_name)?;
        let len = self.checked_size(size)?;
        self.check_request_total(len, 1)?;
        let resolution = self.resolve(caller, selector)?;
        self.phases.add(Phase::Policy, started.elapsed());
        self.allocate_resolved(caller, &resolution, len, debug_name, None)
    }

    /// The per-call limit on size times count, for single buffers and batches alike.
    fn check_request_total(&self, len: u64, count: u32) -> HalResult<()> {
        let limit = self.policy.limits.max_request_bytes;
        match len.checked_mul(u64::from(count)) {
            Some(total) if total <= limit => Ok(()),
            _ => Err(HalError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "{count} buffer(s) of {len} bytes exceed the per-call limit of {limit} bytes"
                ),
            )),
        }
    }

    fn allocate_batch_checked(
        &self,
        caller: &Caller,
        selector: &Selector,
        size: i64,
        count: i32,
        debug_name: &str,
    ) -> HalResult<Vec<Allocation>> {
        let started = Instant::now();
        validate_debug_name(debug_name)?;
        let limit = self.policy.limits.max_batch_count;
        let count = u32::try_from(count)
            .ok()
            .filter(|c| (1..=limit).contains(c))
            .ok_or_else(|| {
                HalError::bad_argument(format!("batch count {count} is outside 1..={limit}"))
            })?;
        let len = self.checked_size(size)?;
        self.check_request_total(len, count)?;
        let resolution = self.resolve(caller, selector)?;
        self.phases.add(Phase::Policy, started.elapsed());
        let mut buffers = Vec::with_capacity(count as usize);
        for index in 0..count {
            // `?` drops `buffers`, closing every fd made so far: all or nothing.
            buffers.push(self.allocate_resolved(
                caller,
                &resolution,
                len,
                debug_name,
                Some(index),
            )?);
        }
        Ok(buffers)
    }

    fn allocate_resolved(
        &self,
        caller: &Caller,
        resolution: &Resolution,
        len: u64,
        debug_name: &str,
        batch_index: Option<u32>,
    ) -> HalResult<Allocation> {
        let mut failures = Vec::new();
        for heap in &resolution.candidates {
            match self
                .phases
                .time(Phase::Ioctl, || self.backend.allocate(heap, len))
            {
                Ok(buf) => {
                    let named = Instant::now();
                    let label = buffer_label(caller, heap, debug_name, batch_index);
                    // A buffer that cannot be named still works; refusing it would turn a
                    // debugging aid into an outage.
                    if let Err(e) = self.backend.set_name(&buf, &label) {
                        log::warn!("cannot name a buffer from {heap} {label:?}: {e}");
                    }
                    self.phases.add(Phase::Name, named.elapsed());
                    return Ok(Allocation {
                        buf,
                        heap: heap.clone(),
                        size: len,
                    });
                }
                Err(e) => {
                    self.stats.heap_failure(heap);
                    log::debug!(
                        "{heap}: allocating {len} bytes for uid {} failed: {e}",
                        caller.uid
                    );
                    let retry =
                        resolution.fallback_on_error || matches!(e, BackendError::Absent(_));
                    failures.push((heap.clone(), e));
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(error_from_failures(len, failures))
    }

    /// The byte count a request gets: `size` rounded up to whole pages, within the limits.
    fn checked_size(&self, size: i64) -> HalResult<u64> {
        if size <= 0 {
            return Err(HalError::bad_argument(format!(
                "size {size} is not positive"
            )));
        }
        let size = size as u64;
        let mask = self.page_size - 1;
        let aligned = size
            .checked_add(mask)
            .map(|s| s & !mask)
            .filter(|s| i64::try_from(*s).is_ok())
            .ok_or_else(|| {
                HalError::bad_argument(format!(
                    "size {size} overflows when rounded up to whole pages"
                ))
            })?;
        let max = self.policy.limits.max_allocation_bytes;
        if aligned > max {
            return Err(HalError::bad_argument(format!(
                "size {size} is above the policy's limit of {max} bytes"
            )));
        }
        Ok(aligned)
    }

    fn record(&self, caller: &Caller, result: Result<&[Allocation], &HalError>) {
        match result {
            Ok(allocations) => {
                for a in allocations {
                    self.stats.allocated(caller.uid, &a.heap, a.size);
                }
            }
            Err(e) => {
                self.stats.error(caller.uid);
                self.log_failure(caller, e);
            }
        }
    }

    /// One line per (caller, heap) for a denial and per (uid, error kind) otherwise, at most
    /// once per [`LOG_INTERVAL`]: a client that fails on purpose cannot flood the log.
    pub fn log_failure(&self, caller: &Caller, e: &HalError) {
        let key = match &e.denied_heap {
            Some(heap) => format!("{}\0{}\0{heap}", caller.uid, caller.domain_shown()),
            None => format!("{}\0{:?}", caller.uid, e.kind),
        };
        let Some(held_back) = self.failure_log.admit(&key) else {
            return;
        };
        let more = if held_back > 0 {
            format!(" ({held_back} more like it not logged)")
        } else {
            String::new()
        };
        if e.kind == ErrorKind::Denied {
            log::warn!("denied pid {}: {}{more}", caller.pid, e.message);
        } else {
            log::info!(
                "uid {} pid {}: {} ({}){more}",
                caller.uid,
                caller.pid,
                e,
                e.kind.name()
            );
        }
    }

    /// Every heap the policy declares, with whether this device has it.
    pub fn heaps(&self) -> Vec<HeapStatus> {
        self.policy
            .heaps
            .iter()
            .map(|spec| HeapStatus {
                spec: spec.clone(),
                present: self.backend.is_present(&spec.name),
                ion_ids: self
                    .policy
                    .ion
                    .values()
                    .filter(|m| m.heaps.contains(&spec.name) || m.cached_heaps.contains(&spec.name))
                    .map(|m| m.id)
                    .collect(),
            })
            .collect()
    }

    /// What `dumpsys` shows: the policy, the heaps, the counters.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let p = &self.policy;
        let _ = writeln!(out, "vendor.dmaheap.IHeapAllocator/default");
        let _ = writeln!(out, "policy: {}", p.origin);
        let _ = writeln!(
            out,
            "limits: max_allocation_bytes={} max_batch_count={} max_request_bytes={}",
            p.limits.max_allocation_bytes, p.limits.max_batch_count, p.limits.max_request_bytes
        );
        let _ = writeln!(out, "\nheaps:");
        let _ = writeln!(
            out,
            "  {:<20} {:<8} {:<7} {:<10} {:<6} ion-ids",
            "name", "present", "cached", "contiguous", "secure"
        );
        for h in self.heaps() {
            let ids = h
                .ion_ids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let _ = writeln!(
                out,
                "  {:<20} {:<8} {:<7} {:<10} {:<6} {}",
                h.spec.name, h.present, h.spec.cached, h.spec.contiguous, h.spec.secure, ids
            );
        }
        let _ = writeln!(out, "\nrules (first match wins):");
        for r in &p.rules {
            let m = &r.matcher;
            let mut cond = Vec::new();
            if let Some(e) = m.exact {
                cond.push(format!("exact={}", dmaheap_aidl::usage::describe(e)));
            }
            for (label, bits) in [
                ("all_of", m.all_of),
                ("any_of", m.any_of),
                ("none_of", m.none_of),
            ] {
                if bits != 0 {
                    cond.push(format!("{label}={}", dmaheap_aidl::usage::describe(bits)));
                }
            }
            let action = match &r.action {
                crate::policy::Action::Heaps(list) => format!("-> {}", list.join(" > ")),
                crate::policy::Action::Reject(why) => format!("reject: {why}"),
            };
            let cond = if cond.is_empty() {
                "always".to_owned()
            } else {
                cond.join(" ")
            };
            let _ = writeln!(out, "  {:<18} line {:<4} {cond} {action}", r.name, r.line);
        }
        let _ = writeln!(out, "\nion table:");
        for m in p.ion.values() {
            let _ = writeln!(
                out,
                "  id {:<3} {:<28} uncached -> {:<28} cached -> {}",
                m.id,
                m.name,
                m.heaps.join(" > "),
                m.cached_heaps.join(" > ")
            );
        }
        let snapshot = self.stats.snapshot();
        let _ = writeln!(out, "\ncounters per heap:");
        let _ = writeln!(
            out,
            "  {:<20} {:>12} {:>16} {:>9}",
            "heap", "allocations", "bytes", "failures"
        );
        for (heap, c) in &snapshot.heaps {
            let _ = writeln!(
                out,
                "  {:<20} {:>12} {:>16} {:>9}",
                heap, c.allocations, c.bytes, c.failures
            );
        }
        let published = dmabuf::stats::counter_lines(p.heaps.iter().map(|h| h.name.as_str()));
        if !published.is_empty() {
            let _ = writeln!(
                out,
                "\nkernel statistics (live memory, from {}):",
                dmabuf::stats::HEAP_STATS_DIR
            );
            for (heap, line) in published {
                let _ = writeln!(out, "  {heap:<20} {line}");
            }
        }
        let _ = writeln!(out, "\n{}", phase_dump::HEADING);
        for (phase, count, total) in self.phases.totals() {
            let _ = writeln!(out, "{}", phase_dump::format_line(phase, count, total));
        }
        let _ = writeln!(out, "\ncounters per calling uid:");
        let _ = writeln!(
            out,
            "  {:<10} {:>12} {:>16} {:>9}",
            "uid", "allocations", "bytes", "errors"
        );
        for (uid, c) in &snapshot.clients {
            let _ = writeln!(
                out,
                "  {:<10} {:>12} {:>16} {:>9}",
                uid, c.allocations, c.bytes, c.errors
            );
        }
        out
    }
}

/// The dma-buf name, within the [`KERNEL_NAME_BYTES`] the kernel keeps:
/// `u<uid>:p<pid>:<debug name>[#<batch index>]@<heap>`. The uid, the batch index and the `@`
/// always stay (the index is what tells a batch's buffers apart); then the heap name, then the
/// pid; the debug name gets what is left, cut at a character boundary.
pub fn buffer_label(
    caller: &Caller,
    heap: &str,
    debug_name: &str,
    batch_index: Option<u32>,
) -> String {
    let uid = format!("u{}:", caller.uid);
    let index = batch_index.map(|i| format!("#{i}")).unwrap_or_default();
    let mut room = KERNEL_NAME_BYTES.saturating_sub(uid.len() + index.len() + 1);
    // Heap names are ASCII (validated), so any byte count is a character boundary.
    let heap = &heap[..heap.len().min(room)];
    room -= heap.len();
    let pid = format!("p{}:", caller.pid);
    let pid = if pid.len() <= room {
        pid
    } else {
        String::new()
    };
    room -= pid.len();
    let name = truncate_at_char(debug_name, room);
    format!("{uid}{pid}{name}{index}@{heap}")
}

fn truncate_at_char(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut end = max_bytes;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Whether a character may not appear in a debug name: control characters (Unicode Cc), line
/// and paragraph separators (Zl, Zp), and format characters (Cf): bidirectional overrides and
/// isolates, zero-width spaces and joiners, the BOM, invisible operators, tags. They end up in
/// kernel debug output and logs, where they hide or reorder what a reader sees.
pub fn is_forbidden_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') || is_format_char(c)
}

/// Unicode general category Cf (format), from the Unicode Character Database's
/// `extracted/DerivedGeneralCategory.txt` (Unicode 15.1).
const FORMAT_CHARS: &[(char, char)] = &[
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

fn is_format_char(c: char) -> bool {
    FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Debug names must be short, printable text: they end up in kernel debug output and logs.
/// The length is checked first, so a hostile name is never scanned or formatted in full.
pub fn validate_debug_name(name: &str) -> HalResult<()> {
    if name.is_empty() {
        return Err(HalError::bad_argument("the debug name is empty"));
    }
    if name.len() > MAX_DEBUG_NAME_BYTES as usize {
        return Err(HalError::bad_argument(format!(
            "the debug name is {} bytes long, more than MAX_DEBUG_NAME_BYTES ({MAX_DEBUG_NAME_BYTES})",
            name.len()
        )));
    }
    if let Some(c) = name.chars().find(|&c| is_forbidden_in_name(c)) {
        return Err(HalError::bad_argument(format!(
            "the debug name contains U+{:04X}, a control, separator or format character",
            c as u32
        )));
    }
    Ok(())
}

fn error_from_failures(len: u64, failures: Vec<(String, BackendError)>) -> HalError {
    let tried = failures
        .iter()
        .map(|(heap, e)| format!("{heap}: {e}"))
        .collect::<Vec<_>>()
        .join("; ");
    let all_absent = failures
        .iter()
        .all(|(_, e)| matches!(e, BackendError::Absent(_)));
    let any_oom = failures.iter().any(|(_, e)| e.is_out_of_memory());
    let kind = if all_absent {
        ErrorKind::NoSuchHeap
    } else if any_oom {
        ErrorKind::OutOfMemory
    } else {
        ErrorKind::Internal
    };
    HalError::new(kind, format!("allocating {len} bytes failed: {tried}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: u32 = 10123;

    /// A call of `UID` that arrived earlier and still waits for a slot (its thread not yet woken).
    fn earlier_waiter(in_flight: &InFlight) {
        let mut state = in_flight.state.lock().unwrap();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state
            .by_uid
            .entry(UID)
            .or_default()
            .waiting
            .push_back(ticket);
    }

    #[test]
    fn a_new_call_never_overtakes_a_waiting_one() {
        let in_flight = InFlight::default();
        earlier_waiter(&in_flight);
        // A slot is free, but the earlier call is first in line: no slot at once...
        let now = in_flight.acquire(UID, 1, Duration::ZERO);
        assert_eq!(now.err().map(|e| e.kind), Some(ErrorKind::Busy));
        // ...nor after waiting, since the earlier call keeps its turn.
        let later = in_flight.acquire(UID, 1, Duration::from_millis(50));
        assert_eq!(later.err().map(|e| e.kind), Some(ErrorKind::Busy));
        // The queue holds only the earlier call again: the refused ones left it.
        let state = in_flight.state.lock().unwrap();
        assert_eq!(state.by_uid[&UID].waiting.len(), 1);
        assert_eq!(state.by_uid[&UID].running, 0);
    }

    #[test]
    fn another_uid_is_not_held_up_by_a_waiting_call() {
        let in_flight = InFlight::default();
        earlier_waiter(&in_flight);
        let slot = in_flight.acquire(UID + 1, 1, Duration::ZERO);
        assert!(slot.is_ok());
    }
}
