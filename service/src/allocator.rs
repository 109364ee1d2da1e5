//! The service's logic, independent of binder: validate a request, resolve it through the policy,
//! allocate with fallbacks, name the buffers, count.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dmabuf::DmaBuf;
use dmaheap_aidl::phase_dump;

pub use crate::access::Caller;
use crate::access::RateLimitedLog;
use crate::backend::{BackendError, HeapBackend};
use crate::error::{ErrorKind, HalError, HalResult};
use crate::in_flight::InFlight;
pub use crate::naming::{buffer_label, sanitize_debug_name, KERNEL_NAME_BYTES};
use crate::naming::{inode_of, Owner, RecentOwners};
use crate::phases::{Phase, PhaseTimes};
use crate::policy::limits::OverLimit;
use crate::policy::request::BufferRequest;
use crate::policy::{is_plain_heap_name, Policy, Resolution, MAX_HEAP_NAME_BYTES};
use crate::sched::SchedulingCounters;
use crate::stats::Stats;

/// How long a call over its caller's in-flight limit waits for a slot before `ERROR_BUSY`,
/// unless its caller queues ([`OverLimit::Queue`]).
pub const BUSY_WAIT: Duration = Duration::from_secs(1);

/// How often one kind of failure of one caller is logged (denials: per caller and heap).
pub const LOG_INTERVAL: Duration = Duration::from_secs(60);

/// How a request picks its heap (the AIDL `HeapSelector`, in Rust terms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Usage(u64),
    /// A version-2 descriptor: the rules see its format, dimensions and size too.
    Request(BufferRequest),
    Heap(String),
    Ion {
        heap_id_mask: u32,
        flags: u32,
        /// As the caller sent it: negative values are refused, not reinterpreted.
        alignment: i64,
    },
}

/// A heap handed to a caller to allocate from in its own process.
#[derive(Debug)]
pub struct Delegation {
    pub heap: String,
    /// The heap's node, opened for the caller.
    pub node: std::os::fd::OwnedFd,
    pub granule: u64,
    pub heap_flags: u64,
    pub max_size: u64,
    pub max_batch_count: u32,
    pub max_request_bytes: u64,
    pub rule: String,
}

/// A buffer ready to be handed out.
#[derive(Debug)]
pub struct Allocation {
    pub buf: DmaBuf,
    pub heap: String,
    pub size: u64,
    /// The name given to the dma-buf (what the kernel keeps).
    pub label: String,
    /// The dma-buf's inode: fdinfo's `ino:`, the key of its owner in `dump`.
    pub inode: u64,
    pub batch_index: Option<u32>,
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
    owners: RecentOwners,
    scheduling: SchedulingCounters,
    /// Heaps handed out by `delegate`.
    delegations: AtomicU64,
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
            delegations: AtomicU64::new(0),
            failure_log: RateLimitedLog::new(LOG_INTERVAL, 4096),
            phases: PhaseTimes::default(),
            owners: RecentOwners::default(),
            scheduling: SchedulingCounters::default(),
        }
    }

    /// Bounds every caller's running and waiting calls by the service's binder `threads`, so
    /// that one caller always leaves a thread to the others (see [`crate::in_flight`]).
    pub fn with_binder_threads(mut self, threads: u32) -> Self {
        self.in_flight = InFlight::with_binder_threads(threads);
        self
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
            Selector::Request(request) => self.policy.resolve_request(request, &present, caller),
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
                    heap_flags: 0,
                    granule: self.policy.granule_of(name),
                    delegable: self.policy.delegable(name, caller),
                })
            }
        }
    }

    /// The owners of the last buffers handed out, oldest first.
    pub fn recent_owners(&self) -> Vec<Owner> {
        self.owners.snapshot()
    }

    /// (allocation calls served on a SCHED_FIFO / SCHED_RR thread, all allocation calls).
    pub fn realtime_calls(&self) -> (u64, u64) {
        self.scheduling.realtime_of_all()
    }

    /// One buffer.
    pub fn allocate(
        &self,
        caller: &Caller,
        selector: &Selector,
        size: i64,
        debug_name: &str,
    ) -> HalResult<Allocation> {
        self.allocate_for(caller, None, selector, size, debug_name)
    }

    /// [`Self::allocate`] by `caller` on behalf of `owner` (gralloc for an app): the policy and
    /// the in-flight limits see the caller, the counters and the owner record see the owner.
    pub fn allocate_for(
        &self,
        caller: &Caller,
        owner: Option<&Caller>,
        selector: &Selector,
        size: i64,
        debug_name: &str,
    ) -> HalResult<Allocation> {
        self.serve(caller, owner, debug_name, std::slice::from_ref, |name| {
            self.allocate_checked(caller, selector, size, name)
        })
    }

    /// The heap `selector` resolves to for `caller`, opened for the caller to allocate from
    /// itself, when the policy delegates that heap to it; `None` when the caller must use the
    /// per-call path. Refuses exactly what `allocate` would refuse (`size` included), so that a
    /// caller cannot learn through delegation what it may not allocate.
    pub fn delegate(
        &self,
        caller: &Caller,
        selector: &Selector,
        size: i64,
    ) -> HalResult<Option<Delegation>> {
        self.checked_size(size)?;
        let resolution = self.resolve(caller, selector).inspect_err(|e| {
            self.log_failure(caller, e);
        })?;
        let Some(heap) = resolution.candidates.first() else {
            return Ok(None);
        };
        if !resolution.delegable {
            return Ok(None);
        }
        match self.backend.open_for_client(heap) {
            Ok(node) => {
                self.delegations.fetch_add(1, Ordering::Relaxed);
                Ok(Some(Delegation {
                    heap: heap.clone(),
                    node,
                    granule: resolution.granule.max(self.page_size),
                    heap_flags: resolution.heap_flags,
                    max_size: self.policy.limits.max_allocation_bytes,
                    max_batch_count: self.policy.limits.max_batch_count,
                    max_request_bytes: self.policy.limits.max_request_bytes,
                    rule: resolution.rule,
                }))
            }
            Err(e @ BackendError::HalOnly { .. }) => {
                log::debug!("not delegating to uid {}: {e}", caller.uid);
                Ok(None)
            }
            Err(e) => Err(HalError::new(
                ErrorKind::Internal,
                format!("opening heap {heap} for the caller: {e}"),
            )),
        }
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
        self.allocate_batch_for(caller, None, selector, size, count, debug_name)
    }

    /// [`Self::allocate_batch`] on behalf of `owner`, as in [`Self::allocate_for`].
    pub fn allocate_batch_for(
        &self,
        caller: &Caller,
        owner: Option<&Caller>,
        selector: &Selector,
        size: i64,
        count: i32,
        debug_name: &str,
    ) -> HalResult<Vec<Allocation>> {
        self.serve(caller, owner, debug_name, Vec::as_slice, |name| {
            self.allocate_batch_checked(caller, selector, size, count, name)
        })
    }

    /// What every allocation call does around its `work`: counts it, cleans its name, holds a
    /// slot under its caller's limit while it runs, and records the buffers `handed_out` or the
    /// failure.
    fn serve<T>(
        &self,
        caller: &Caller,
        owner: Option<&Caller>,
        debug_name: &str,
        handed_out: impl Fn(&T) -> &[Allocation],
        work: impl FnOnce(&str) -> HalResult<T>,
    ) -> HalResult<T> {
        self.scheduling.count_current_call();
        let name = sanitize_debug_name(debug_name);
        let limit = self.policy.limits.for_caller(caller);
        let result = self
            .in_flight
            .acquire(&limit, BUSY_WAIT)
            .and_then(|_slot| work(&name));
        self.record(
            owner.unwrap_or(caller),
            &name,
            result.as_ref().map(handed_out),
        );
        result
    }

    fn allocate_checked(
        &self,
        caller: &Caller,
        selector: &Selector,
        size: i64,
        name: &str,
    ) -> HalResult<Allocation> {
        let started = Instant::now();
        let len = self.checked_size(size)?;
        self.check_request_total(len, 1)?;
        let resolution = self.resolve(caller, selector)?;
        let len = self.in_granules(len, &resolution, 1)?;
        self.phases.add(Phase::Policy, started.elapsed());
        self.allocate_resolved(caller, &resolution, len, name, None)
    }

    /// `len` rounded up to the resolved heap's granule (a vendor heap that hands out 2 MiB
    /// blocks, say), still within the limits.
    fn in_granules(&self, len: u64, resolution: &Resolution, count: u32) -> HalResult<u64> {
        let granule = resolution.granule.max(self.page_size);
        let rounded = len.checked_next_multiple_of(granule).ok_or_else(|| {
            HalError::bad_argument(format!("{len} bytes cannot be rounded up to {granule}"))
        })?;
        if rounded != len {
            let max = self.policy.limits.max_allocation_bytes;
            if rounded > max {
                return Err(HalError::bad_argument(format!(
                    "{len} bytes are {rounded} in heap granules of {granule}, above the policy's \
                     limit of {max} bytes"
                )));
            }
            self.check_request_total(rounded, count)?;
        }
        Ok(rounded)
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
        name: &str,
    ) -> HalResult<Vec<Allocation>> {
        let started = Instant::now();
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
        let len = self.in_granules(len, &resolution, count)?;
        self.phases.add(Phase::Policy, started.elapsed());
        let mut buffers = Vec::with_capacity(count as usize);
        for index in 0..count {
            // `?` drops `buffers`, closing every fd made so far: all or nothing.
            buffers.push(self.allocate_resolved(caller, &resolution, len, name, Some(index))?);
        }
        Ok(buffers)
    }

    fn allocate_resolved(
        &self,
        caller: &Caller,
        resolution: &Resolution,
        len: u64,
        name: &str,
        batch_index: Option<u32>,
    ) -> HalResult<Allocation> {
        let mut failures = Vec::new();
        for heap in &resolution.candidates {
            match self.phases.time(Phase::Ioctl, || {
                self.backend
                    .allocate_with_flags(heap, len, resolution.heap_flags)
            }) {
                Ok(buf) => {
                    let named = Instant::now();
                    let label = buffer_label(name, heap, batch_index);
                    // A buffer that cannot be named still works; refusing it would turn a
                    // debugging aid into an outage.
                    if let Err(e) = self.backend.set_name(&buf, &label) {
                        log::warn!("cannot name a buffer from {heap} {label:?}: {e}");
                    }
                    let inode = inode_of(&buf);
                    self.phases.add(Phase::Name, named.elapsed());
                    return Ok(Allocation {
                        buf,
                        heap: heap.clone(),
                        size: len,
                        label,
                        inode,
                        batch_index,
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

    fn record(&self, caller: &Caller, name: &str, result: Result<&[Allocation], &HalError>) {
        match result {
            Ok(allocations) => {
                let name: Arc<str> = name.into();
                for a in allocations {
                    self.stats.allocated(caller.uid, &a.heap, a.size);
                    self.owners.record(Owner {
                        batch_index: a.batch_index,
                        ..Owner::new(caller, Arc::clone(&name), &a.heap, a.size, a.inode)
                    });
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
                ion_ids: self.policy.ion_ids_of_heap(&spec.name),
            })
            .collect()
    }

    /// What `dumpsys` shows: the policy, the heaps, the counters.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let p = &self.policy;
        let _ = writeln!(out, "vendor.dmaheap.IHeapAllocator/default");
        let _ = writeln!(out, "policy: {}", p.origin);
        if let Some(cause) = &p.fallback_cause {
            let _ = writeln!(
                out,
                "FALLBACK: the service runs on its built-in fallback policy (system heaps only, \
                 PROTECTED refused) because the device's policy could not be used: {cause}"
            );
        }
        let _ = writeln!(
            out,
            "limits: max_allocation_bytes={} max_batch_count={} max_request_bytes={}",
            p.limits.max_allocation_bytes, p.limits.max_batch_count, p.limits.max_request_bytes
        );
        self.dump_calls_in_flight(&mut out);
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
        for m in p.ion.iter() {
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
        let (realtime, calls) = self.scheduling.realtime_of_all();
        let _ = writeln!(
            out,
            "\nscheduling: {realtime} of {calls} allocation calls ran on a SCHED_FIFO/SCHED_RR \
             thread (binder lifts a thread to a real-time caller's priority where the kernel \
             supports FLAT_BINDER_FLAG_INHERIT_RT)"
        );
        let _ = writeln!(
            out,
            "delegated: {} heap nodes handed out for in-process allocation (their buffers are \
             not counted here)",
            self.delegations.load(Ordering::Relaxed)
        );
        self.dump_recent_owners(&mut out);
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

    fn dump_calls_in_flight(&self, out: &mut String) {
        let shown = |over_limit: OverLimit| match over_limit {
            OverLimit::Busy => format!("busy (waits {}s, then ERROR_BUSY)", BUSY_WAIT.as_secs()),
            OverLimit::Queue => "queue (waits its turn)".to_owned(),
        };
        let threads = match self.in_flight.binder_threads() {
            Some(threads) => format!("; no caller holds the last of the {threads} binder threads"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "calls in flight per caller (first match wins{threads}):"
        );
        for entry in &self.policy.limits.callers {
            let _ = writeln!(
                out,
                "  {:<40} {:>3} {:<34} {}",
                entry.who.describe(),
                entry.max_calls_in_flight,
                shown(entry.over_limit),
                entry.origin()
            );
        }
        let _ = writeln!(
            out,
            "  {:<40} {:>3} {:<34} max_calls_per_uid",
            "any other caller, per uid",
            self.policy.limits.max_calls_per_uid,
            shown(OverLimit::Busy)
        );
    }

    fn dump_recent_owners(&self, out: &mut String) {
        let owners = self.owners.snapshot();
        let _ = writeln!(
            out,
            "\nrecent allocations (owners of the last {} buffers, newest last; inode as in \
             /proc/<pid>/fdinfo and the dma-buf debugfs):",
            owners.len()
        );
        let _ = writeln!(
            out,
            "  {:<10} {:<10} {:<8} {:<32} {:<20} {:>12} {:>8}  name",
            "inode", "uid", "pid", "domain", "heap", "bytes", "age"
        );
        for o in owners.iter() {
            let index = o.batch_index.map(|i| format!(" #{i}")).unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:<10} {:<10} {:<8} {:<32} {:<20} {:>12} {:>7}s  {}{index}",
                o.inode,
                o.uid,
                o.pid,
                o.domain.as_deref().unwrap_or("<none>"),
                o.heap,
                o.size,
                o.at.elapsed().as_secs(),
                if o.name.is_empty() { "-" } else { &o.name }
            );
        }
    }
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
