//! The binder face of the allocator: `IHeapAllocator` over rsbinder.

use std::sync::{Arc, Mutex, Once};

use dmaheap_aidl::{
    AllocationResult, AllocatorStats, BufferDescriptor, ClientStats, DelegatedHeap, HeapInfo,
    HeapSelector, HeapStats, IHeapAllocator, IonRequest, Resolution,
};
use rsbinder::{
    Binder, ExceptionCode, Interface, Parcel, ParcelFileDescriptor, Remotable, SIBinder, Stability,
    Status, StatusCode, TransactionCode, FIRST_CALL_TRANSACTION, FLAG_ONEWAY,
    SHELL_COMMAND_TRANSACTION,
};

use crate::allocator::{Allocation, Allocator, Caller, Selector};
use crate::backend::HeapBackend;
use crate::dump::{write_with_deadline, DUMP_DEADLINE};
use crate::error::{ErrorKind, HalError};
use crate::policy::request::BufferRequest;

/// PixelFormat has no 0; BufferDescriptor.format 0 means "not an image".
const FORMAT_UNSPECIFIED: i32 = 0;
use crate::phases::Phase;

pub struct HeapAllocatorService<B> {
    allocator: Arc<Allocator<B>>,
    /// One dump at a time: each may hold its binder thread up to [`DUMP_DEADLINE`].
    dumping: Mutex<()>,
}

impl<B: HeapBackend> HeapAllocatorService<B> {
    pub fn new(allocator: Arc<Allocator<B>>) -> Self {
        Self {
            allocator,
            dumping: Mutex::new(()),
        }
    }
}

/// The binder features the service registers with: the caller's SELinux context with every
/// call (rsbinder sets `FLAT_BINDER_FLAG_TXN_SECURITY_CTX` only where SELinux is on), and
/// `FLAT_BINDER_FLAG_INHERIT_RT`: a SCHED_FIFO camera or display thread's call is served at its
/// priority instead of being demoted to SCHED_NORMAL while it waits for its buffer (a binder
/// driver without the flag, such as upstream Linux's, ignores it).
pub fn binder_features() -> rsbinder::BinderFeatures {
    let mut features = rsbinder::BinderFeatures::default();
    features.set_requesting_sid = true;
    features.inherit_rt = true;
    features
}

/// The binder the service registers: the generated `IHeapAllocator` stub for every transaction
/// but SHELL_COMMAND_TRANSACTION, which rsbinder refuses with INVALID_OPERATION where libbinder's
/// `BBinder::onTransact` answers NO_ERROR and sends INVALID_OPERATION to the caller's result
/// receiver (`adb shell cmd` waits on that receiver, and prints "No shell command
/// implementation." from it).
pub fn hal_binder<B: HeapBackend + 'static>(service: HeapAllocatorService<B>) -> SIBinder {
    let stub = dmaheap_aidl::BnHeapAllocator::new_binder_with_features(service, binder_features());
    Binder::new_with_stability_and_features(
        HalBinder {
            stub: stub.as_binder(),
        },
        Stability::Vintf,
        binder_features(),
    )
    .as_binder()
}

struct HalBinder {
    stub: SIBinder,
}

/// `struct flat_binder_object` on a 64-bit kernel: what each of the three fds takes.
const FLAT_OBJECT_BYTES: usize = 24;
/// `IResultReceiver`'s descriptor and its one method (frameworks/native IResultReceiver.cpp).
const RESULT_RECEIVER: &str = "com.android.internal.os.IResultReceiver";
/// Parcel.cpp's STRICT_MODE_PENALTY_GATHER and `kHeader` ('SYST'), the interface token's words.
const STRICT_MODE_PENALTY_GATHER: i32 = i32::MIN;
const SYST: u32 = u32::from_be_bytes(*b"SYST");
const UNSET_WORK_SOURCE: i32 = -1;
/// `INVALID_OPERATION` (utils/Errors.h: -ENOSYS), the result libbinder sends.
const INVALID_OPERATION: i32 = -libc::ENOSYS;

/// libbinder's answer to a shell command: read the fds, the args and the two binders, tell the
/// result receiver INVALID_OPERATION in a one-way call, reply NO_ERROR.
fn answer_shell_command(reader: &mut Parcel) -> rsbinder::Result<()> {
    // The in, out and err fds are not used (as in BBinder::onTransact); the kernel installed
    // them in this process and the received parcel closes them when it is freed.
    let after_fds = reader
        .data_position()
        .checked_add(3 * FLAT_OBJECT_BYTES)
        .filter(|&end| end <= reader.data_size())
        .ok_or(StatusCode::BadValue)?;
    reader.set_data_position(after_fds);
    let argc: i32 = reader.read()?;
    for _ in 0..argc.max(0) {
        if reader.data_avail() == 0 {
            break;
        }
        let _arg: String = reader.read()?;
    }
    let _shell_callback: Option<SIBinder> = reader.read()?;
    let result_receiver: Option<SIBinder> = reader.read()?;
    if let Some(proxy) = result_receiver.as_ref().and_then(|r| r.as_proxy()) {
        let mut data = Parcel::new();
        data.write(&STRICT_MODE_PENALTY_GATHER)?;
        data.write(&UNSET_WORK_SOURCE)?;
        data.write(&SYST)?;
        data.write(RESULT_RECEIVER)?;
        data.write(&INVALID_OPERATION)?;
        proxy.submit_transact(FIRST_CALL_TRANSACTION, &data, FLAG_ONEWAY)?;
    }
    Ok(())
}

impl Remotable for HalBinder {
    fn descriptor() -> &'static str {
        dmaheap_aidl::DESCRIPTOR
    }

    fn on_transact(
        &self,
        code: TransactionCode,
        reader: &mut Parcel,
        reply: &mut Parcel,
    ) -> rsbinder::Result<()> {
        if code == SHELL_COMMAND_TRANSACTION {
            return answer_shell_command(reader);
        }
        self.stub
            .as_transactable()
            .ok_or(StatusCode::InvalidOperation)?
            .transact(code, reader, reply)
    }

    /// Never reached: DUMP_TRANSACTION goes to the stub with everything else.
    fn on_dump(&self, _writer: &mut dyn std::io::Write, _args: &[String]) -> rsbinder::Result<()> {
        Err(StatusCode::UnknownTransaction)
    }
}

/// Who is calling: uid and pid from the transaction, the domain from the SELinux context the
/// kernel attached to it.
fn caller() -> Caller {
    let sid = rsbinder::get_calling_sid();
    if sid.is_none() {
        report_missing_context();
    }
    Caller::with_context(
        rsbinder::get_calling_uid(),
        rsbinder::get_calling_pid(),
        sid.as_deref().and_then(|s| s.to_str().ok()),
    )
}

/// Under SELinux every call should carry the caller's context; without it no rule by domain can
/// match and callers that are listed only by domain are refused. Said once, at error level,
/// because it is a device configuration fault, not a client's.
fn report_missing_context() {
    // Whether SELinux is on is decided once, as rsbinder decides it once per process.
    static REPORTED: Once = Once::new();
    REPORTED.call_once(|| {
        if std::path::Path::new("/sys/fs/selinux/enforce").exists() {
            log::error!(
                "no caller context: SELinux is on but a binder call carried no caller context, so \
                 rules by domain match nothing (a kernel without CONFIG_CROSS_MEMORY_ATTACH: \
                 rsbinder reads the context with process_vm_readv)"
            )
        }
    });
}

fn status(e: HalError) -> Status {
    match e.code() {
        Some(code) => Status::new_service_specific_error(code, Some(e.message)),
        None => Status::from((ExceptionCode::Security, e.message.as_str())),
    }
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
    /// Only root, system, shell and dumpstate may dump; the write gives up at a deadline, so a
    /// pipe nobody reads cannot hold a binder thread.
    fn dump(&self, writer: &mut dyn std::io::Write, _args: &[String]) -> rsbinder::Result<()> {
        let caller = caller();
        if !caller.is_privileged() {
            log::warn!(
                "dump refused to uid {} (domain {})",
                caller.uid,
                caller.domain_shown()
            );
            return Err(StatusCode::PermissionDenied);
        }
        let Ok(_one_at_a_time) = self.dumping.try_lock() else {
            return Err(StatusCode::WouldBlock);
        };
        write_with_deadline(writer, self.allocator.dump().as_bytes(), DUMP_DEADLINE).map_err(|e| {
            log::warn!("dump for uid {} abandoned: {e}", caller.uid);
            StatusCode::TimedOut
        })
    }
}

impl<B: HeapBackend> HeapAllocatorService<B> {
    /// A version-2 descriptor as the allocator takes it: the request the rules see, and whom the
    /// buffers are for when the caller allocates on another process's behalf (only the domains
    /// the policy lists may; gralloc's by default).
    fn described(
        &self,
        caller: &Caller,
        d: &BufferDescriptor,
    ) -> Result<(Selector, Option<Caller>), HalError> {
        let dimension = |v: i32, what: &str| {
            u32::try_from(v).map_err(|_| HalError::bad_argument(format!("{what} {v} is negative")))
        };
        let request = BufferRequest {
            usage: d.usage as u64,
            format: (d.format != FORMAT_UNSPECIFIED).then_some(d.format),
            width: dimension(d.width, "width")?,
            height: dimension(d.height, "height")?,
            layer_count: dimension(d.layerCount, "layer count")?,
            // A size the allocator refuses (0, negative) is refused there, with its message.
            size: u64::try_from(d.size).ok(),
        };
        let owner = match (d.onBehalfOfPid, d.onBehalfOfUid) {
            (-1, -1) => None,
            (pid, uid) if pid > 0 && uid >= 0 => {
                if !self.allocator.policy().may_act_on_behalf(caller) {
                    return Err(HalError::new(
                        ErrorKind::Denied,
                        format!(
                            "uid {} (domain {}) may not allocate on behalf of another process: \
                             the policy's on_behalf_domains do not list it",
                            caller.uid,
                            caller.domain_shown()
                        ),
                    ));
                }
                Some(Caller::new(uid as u32, pid))
            }
            (pid, uid) => {
                return Err(HalError::bad_argument(format!(
                    "onBehalfOfPid {pid} and onBehalfOfUid {uid}: both -1, or a pid and a uid"
                )))
            }
        };
        Ok((Selector::Request(request), owner))
    }

    /// An allocation call: the caller's identity, the call, its time per phase.
    fn handle<T>(
        &self,
        call: impl FnOnce(&Caller) -> Result<T, HalError>,
    ) -> rsbinder::BinderResult<T> {
        let phases = self.allocator.phases();
        phases.time(Phase::Handler, || {
            let caller = phases.time(Phase::Caller, caller);
            call(&caller).map_err(status)
        })
    }

    fn resolve_selector(&self, selector: &Selector) -> rsbinder::BinderResult<Resolution> {
        let caller = caller();
        self.allocator
            .resolve(&caller, selector)
            .map(to_resolution)
            .map_err(|e| {
                self.allocator.log_failure(&caller, &e);
                status(e)
            })
    }
}

impl<B: HeapBackend + 'static> IHeapAllocator for HeapAllocatorService<B> {
    fn allocateByUsage(
        &self,
        usage: i64,
        size: i64,
        debug_name: &str,
    ) -> rsbinder::BinderResult<AllocationResult> {
        self.handle(|caller| {
            self.allocator
                .allocate(caller, &Selector::Usage(usage as u64), size, debug_name)
                .map(to_result)
        })
    }

    fn allocateFromHeap(
        &self,
        heap: &str,
        size: i64,
        debug_name: &str,
    ) -> rsbinder::BinderResult<AllocationResult> {
        self.handle(|caller| {
            self.allocator
                .allocate(caller, &Selector::Heap(heap.to_owned()), size, debug_name)
                .map(to_result)
        })
    }

    fn allocateIon(
        &self,
        request: &IonRequest,
        size: i64,
        debug_name: &str,
    ) -> rsbinder::BinderResult<AllocationResult> {
        self.handle(|caller| {
            self.allocator
                .allocate(caller, &ion_selector(request), size, debug_name)
                .map(to_result)
        })
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
        self.handle(|caller| {
            self.allocator
                .allocate_batch(caller, &selector, size, count, debug_name)
                .map(|all| all.into_iter().map(to_result).collect())
        })
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
        self.resolve_selector(&Selector::Usage(usage as u64))
    }

    fn resolveIon(&self, request: &IonRequest) -> rsbinder::BinderResult<Resolution> {
        self.resolve_selector(&ion_selector(request))
    }

    fn allocate(
        &self,
        descriptor: &BufferDescriptor,
        debug_name: &str,
    ) -> rsbinder::BinderResult<AllocationResult> {
        self.handle(|caller| {
            let (selector, owner) = self.described(caller, descriptor)?;
            self.allocator
                .allocate_for(
                    caller,
                    owner.as_ref(),
                    &selector,
                    descriptor.size,
                    debug_name,
                )
                .map(to_result)
        })
    }

    fn allocateBatchFor(
        &self,
        descriptor: &BufferDescriptor,
        count: i32,
        debug_name: &str,
    ) -> rsbinder::BinderResult<Vec<AllocationResult>> {
        self.handle(|caller| {
            let (selector, owner) = self.described(caller, descriptor)?;
            self.allocator
                .allocate_batch_for(
                    caller,
                    owner.as_ref(),
                    &selector,
                    descriptor.size,
                    count,
                    debug_name,
                )
                .map(|all| all.into_iter().map(to_result).collect())
        })
    }

    fn resolve(&self, descriptor: &BufferDescriptor) -> rsbinder::BinderResult<Resolution> {
        let caller = caller();
        self.described(&caller, descriptor)
            .and_then(|(selector, _)| self.allocator.resolve(&caller, &selector))
            .map(to_resolution)
            .map_err(|e| {
                self.allocator.log_failure(&caller, &e);
                status(e)
            })
    }

    fn delegate(
        &self,
        descriptor: &BufferDescriptor,
    ) -> rsbinder::BinderResult<Option<DelegatedHeap>> {
        let caller = caller();
        let saturate = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        self.described(&caller, descriptor)
            .and_then(|(selector, _)| self.allocator.delegate(&caller, &selector, descriptor.size))
            .map(|delegation| {
                delegation.map(|d| DelegatedHeap {
                    heap: Some(ParcelFileDescriptor::new(d.node)),
                    heapName: d.heap,
                    granule: saturate(d.granule),
                    heapFlags: saturate(d.heap_flags),
                    maxSize: saturate(d.max_size),
                    maxBatchCount: i32::try_from(d.max_batch_count).unwrap_or(i32::MAX),
                    maxRequestBytes: saturate(d.max_request_bytes),
                    rule: d.rule,
                })
            })
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
        // Other uids' counters say who allocates what: only privileged callers see them.
        let caller = caller();
        let privileged = caller.is_privileged();
        let clients = snapshot
            .clients
            .iter()
            .filter(|(uid, _)| privileged || **uid == caller.uid)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_asks_for_real_time_priority_inheritance_and_the_callers_context() {
        let features = binder_features();
        assert!(
            features.inherit_rt,
            "FLAT_BINDER_FLAG_INHERIT_RT is not set"
        );
        assert!(features.set_requesting_sid);
    }
}
