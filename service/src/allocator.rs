//! The service's logic, independent of binder: validate a request, resolve it through the policy,
//! allocate with fallbacks, name the buffers, count.

use std::fmt::Write as _;

use dmabuf::DmaBuf;
use dmaheap_aidl::consts::MAX_DEBUG_NAME_BYTES;

use crate::backend::{BackendError, HeapBackend};
use crate::error::{ErrorKind, HalError, HalResult};
use crate::policy::{Policy, Resolution};
use crate::stats::Stats;

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

/// Who is asking, from the binder transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub pid: i32,
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

    /// Which heaps `selector` would use, without allocating.
    pub fn resolve(&self, selector: &Selector) -> HalResult<Resolution> {
        let present = |heap: &str| self.backend.is_present(heap);
        match selector {
            Selector::Usage(usage) => self.policy.resolve_usage(*usage, &present),
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
                self.policy.resolve_ion(*heap_id_mask, *flags, &present)
            }
            Selector::Heap(name) => {
                if self.policy.heap(name).is_none() {
                    return Err(HalError::no_such_heap(format!(
                        "heap {name:?} is not declared by the policy ({})",
                        self.policy.origin
                    )));
                }
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
        caller: Caller,
        selector: &Selector,
        size: i64,
        debug_name: &str,
    ) -> HalResult<Allocation> {
        let result = self.allocate_checked(caller, selector, size, debug_name);
        self.record(caller, result.as_ref().map(std::slice::from_ref));
        result
    }

    /// `count` buffers, all or nothing: on failure the ones already made are dropped (closed)
    /// before the error is returned, so nothing is leaked and the caller gets none.
    pub fn allocate_batch(
        &self,
        caller: Caller,
        selector: &Selector,
        size: i64,
        count: i32,
        debug_name: &str,
    ) -> HalResult<Vec<Allocation>> {
        let result = self.allocate_batch_checked(caller, selector, size, count, debug_name);
        self.record(caller, result.as_deref());
        result
    }

    fn allocate_checked(
        &self,
        caller: Caller,
        selector: &Selector,
        size: i64,
        debug_name: &str,
    ) -> HalResult<Allocation> {
        validate_debug_name(debug_name)?;
        let len = self.checked_size(size)?;
        let resolution = self.resolve(selector)?;
        self.allocate_resolved(caller, &resolution, len, debug_name)
    }

    fn allocate_batch_checked(
        &self,
        caller: Caller,
        selector: &Selector,
        size: i64,
        count: i32,
        debug_name: &str,
    ) -> HalResult<Vec<Allocation>> {
        validate_debug_name(debug_name)?;
        let limit = self.policy.limits.max_batch_count;
        let count = u32::try_from(count)
            .ok()
            .filter(|c| (1..=limit).contains(c))
            .ok_or_else(|| {
                HalError::bad_argument(format!("batch count {count} is outside 1..={limit}"))
            })?;
        let len = self.checked_size(size)?;
        let total = len
            .checked_mul(u64::from(count))
            .filter(|t| *t <= self.policy.limits.max_request_bytes);
        if total.is_none() {
            return Err(HalError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "{count} buffers of {len} bytes exceed the per-call limit of {} bytes",
                    self.policy.limits.max_request_bytes
                ),
            ));
        }
        let resolution = self.resolve(selector)?;
        let mut buffers = Vec::with_capacity(count as usize);
        for index in 0..count {
            let name = format!("{debug_name}#{index}");
            // `?` drops `buffers`, closing every fd made so far: all or nothing.
            buffers.push(self.allocate_resolved(caller, &resolution, len, &name)?);
        }
        Ok(buffers)
    }

    fn allocate_resolved(
        &self,
        caller: Caller,
        resolution: &Resolution,
        len: u64,
        debug_name: &str,
    ) -> HalResult<Allocation> {
        let mut failures = Vec::new();
        for heap in &resolution.candidates {
            match self.backend.allocate(heap, len) {
                Ok(buf) => {
                    let label = buffer_label(caller, heap, debug_name);
                    // A buffer that cannot be named still works; refusing it would turn a
                    // debugging aid into an outage.
                    if let Err(e) = self.backend.set_name(&buf, &label) {
                        log::warn!("cannot name a buffer from {heap} {label:?}: {e}");
                    }
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

    fn record(&self, caller: Caller, result: Result<&[Allocation], &HalError>) {
        match result {
            Ok(allocations) => {
                for a in allocations {
                    self.stats.allocated(caller.uid, &a.heap, a.size);
                }
            }
            Err(e) => {
                log::info!(
                    "uid {} pid {}: {} ({})",
                    caller.uid,
                    caller.pid,
                    e,
                    dmaheap_aidl::error_name(e.code())
                );
                self.stats.error(caller.uid);
            }
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

/// The dma-buf name: owner first, because the kernel keeps only 31 bytes and the heap is also
/// visible as the exporter name.
pub fn buffer_label(caller: Caller, heap: &str, debug_name: &str) -> String {
    format!("u{}:p{}:{debug_name}@{heap}", caller.uid, caller.pid)
}

/// Debug names must be short, printable text: they end up in kernel debug output and logs.
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
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(HalError::bad_argument(format!(
            "the debug name contains control character {c:?}"
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
