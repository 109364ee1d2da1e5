//! The binder face of the allocator: `IHeapAllocator` over rsbinder.

use std::sync::Arc;

use dmaheap_aidl::{
    AllocationResult, AllocatorStats, ClientStats, HeapInfo, HeapSelector, HeapStats,
    IHeapAllocator, IonRequest, Resolution,
};
use rsbinder::{ParcelFileDescriptor, Status};

use crate::allocator::{Allocation, Allocator, Caller, Selector};
use crate::backend::HeapBackend;
use crate::error::HalError;

pub struct HeapAllocatorService<B> {
    allocator: Arc<Allocator<B>>,
}

impl<B: HeapBackend> HeapAllocatorService<B> {
    pub fn new(allocator: Arc<Allocator<B>>) -> Self {
        Self { allocator }
    }
}

fn caller() -> Caller {
    Caller {
        uid: rsbinder::get_calling_uid(),
        pid: rsbinder::get_calling_pid(),
    }
}

fn status(e: HalError) -> Status {
    Status::new_service_specific_error(e.code(), Some(e.message))
}

fn ion_selector(request: &IonRequest) -> Selector {
    Selector::Ion {
        // The mask and flags are bit sets that AIDL can only carry as signed ints.
        heap_id_mask: request.heapIdMask as u32,
        flags: request.flags as u32,
        alignment: request.alignment,
    }
}

fn to_result(a: Allocation) -> AllocationResult {
    AllocationResult {
        size: a.size as i64,
        heapName: a.heap,
        fd: Some(ParcelFileDescriptor::new(a.buf.into_fd())),
    }
}

fn to_resolution(r: crate::policy::Resolution) -> Resolution {
    Resolution {
        heapName: r.candidates.first().cloned().unwrap_or_default(),
        candidates: r.candidates,
        rule: r.rule,
        reason: r.reason,
    }
}

impl<B: HeapBackend> rsbinder::Interface for HeapAllocatorService<B> {
    fn dump(&self, writer: &mut dyn std::io::Write, _args: &[String]) -> rsbinder::Result<()> {
        writer
            .write_all(self.allocator.dump().as_bytes())
            .map_err(|_| rsbinder::StatusCode::Unknown)?;
        Ok(())
    }
}

impl<B: HeapBackend + 'static> IHeapAllocator for HeapAllocatorService<B> {
    fn allocateByUsage(
        &self,
        usage: i64,
        size: i64,
        debug_name: &str,
    ) -> rsbinder::BinderResult<AllocationResult> {
        self.allocator
            .allocate(caller(), &Selector::Usage(usage as u64), size, debug_name)
            .map(to_result)
            .map_err(status)
    }

    fn allocateFromHeap(
        &self,
        heap: &str,
        size: i64,
        debug_name: &str,
    ) -> rsbinder::BinderResult<AllocationResult> {
        self.allocator
            .allocate(caller(), &Selector::Heap(heap.to_owned()), size, debug_name)
            .map(to_result)
            .map_err(status)
    }

    fn allocateIon(
        &self,
        request: &IonRequest,
        size: i64,
        debug_name: &str,
    ) -> rsbinder::BinderResult<AllocationResult> {
        self.allocator
            .allocate(caller(), &ion_selector(request), size, debug_name)
            .map(to_result)
            .map_err(status)
    }

    fn allocateBatch(
        &self,
        selector: &HeapSelector,
        size: i64,
        count: i32,
        debug_name: &str,
    ) -> rsbinder::BinderResult<Vec<AllocationResult>> {
        let selector = match selector {
            HeapSelector::Usage(usage) => Selector::Usage(*usage as u64),
            HeapSelector::HeapName(name) => Selector::Heap(name.clone()),
            HeapSelector::Ion(request) => ion_selector(request),
        };
        self.allocator
            .allocate_batch(caller(), &selector, size, count, debug_name)
            .map(|all| all.into_iter().map(to_result).collect())
            .map_err(status)
    }

    fn listHeaps(&self) -> rsbinder::BinderResult<Vec<HeapInfo>> {
        Ok(self
            .allocator
            .heaps()
            .into_iter()
            .map(|h| HeapInfo {
                name: h.spec.name,
                present: h.present,
                cached: h.spec.cached,
                contiguous: h.spec.contiguous,
                secure: h.spec.secure,
                ionHeapIds: h.ion_ids.into_iter().map(|id| id as i32).collect(),
                description: h.spec.description,
            })
            .collect())
    }

    fn resolveUsage(&self, usage: i64) -> rsbinder::BinderResult<Resolution> {
        self.allocator
            .resolve(&Selector::Usage(usage as u64))
            .map(to_resolution)
            .map_err(status)
    }

    fn resolveIon(&self, request: &IonRequest) -> rsbinder::BinderResult<Resolution> {
        self.allocator
            .resolve(&ion_selector(request))
            .map(to_resolution)
            .map_err(status)
    }

    fn getStats(&self) -> rsbinder::BinderResult<AllocatorStats> {
        let snapshot = self.allocator.stats().snapshot();
        let saturate = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let mut heaps: Vec<HeapStats> = self
            .allocator
            .policy()
            .heaps
            .iter()
            .map(|h| {
                let c = snapshot.heaps.get(&h.name).copied().unwrap_or_default();
                HeapStats {
                    heapName: h.name.clone(),
                    allocations: saturate(c.allocations),
                    bytes: saturate(c.bytes),
                    failures: saturate(c.failures),
                }
            })
            .collect();
        heaps.sort_by(|a, b| a.heapName.cmp(&b.heapName));
        let clients = snapshot
            .clients
            .iter()
            .map(|(uid, c)| ClientStats {
                uid: *uid as i32,
                allocations: saturate(c.allocations),
                bytes: saturate(c.bytes),
                errors: saturate(c.errors),
            })
            .collect();
        Ok(AllocatorStats {
            heaps,
            clients,
            policyPath: self.allocator.policy().origin.clone(),
        })
    }
}
