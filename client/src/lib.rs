//! Client side of `vendor.dmaheap.IHeapAllocator`: typed calls that hand back owned, mappable
//! dma-bufs, and CPU access brackets (`DMA_BUF_IOCTL_SYNC`) that cannot be forgotten.
//!
//! ```no_run
//! use dmaheap_client::{HeapAllocator, CpuAccess};
//! use dmaheap_aidl::usage;
//!
//! let hal = HeapAllocator::wait()?;
//! let buf = hal.allocate_by_usage(usage::CAMERA_OUTPUT | usage::CPU_READ_OFTEN, 1 << 20, "preview")?;
//! let map = buf.map()?;
//! {
//!     let _sync = buf.cpu_access(CpuAccess::Read)?;
//!     assert_eq!(map.find_byte_not_equal_to(0), None);
//! }
//! # Ok::<(), dmaheap_client::ClientError>(())
//! ```

use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

pub use dmabuf::{name, stats, CpuAccess, DmaBuf, DmaHeap, Mapping};
use dmaheap_aidl::{
    AllocationResult, AllocatorStats, HeapInfo, HeapSelector, IHeapAllocator, IonRequest,
    Resolution,
};
use rsbinder::{ExceptionCode, Interface, Status, StatusCode, Strong};

/// What went wrong talking to the allocator.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service refused the request with one of the interface's `ERROR_*` codes.
    #[error("{name} ({code}): {message}")]
    Service {
        code: i32,
        name: &'static str,
        message: String,
    },
    /// The service answered with a binder exception other than a service-specific error:
    /// `EX_SECURITY` for a caller the policy does not allow, `EX_ILLEGAL_ARGUMENT`, and so on.
    #[error("{exception:?}: {message}")]
    Exception {
        exception: ExceptionCode,
        message: String,
    },
    /// The call did not get through: the service died (`DEAD_OBJECT`), the driver could not
    /// deliver it (`FAILED_TRANSACTION`), and so on.
    #[error("binder transaction failed: {0:?}")]
    Transaction(StatusCode),
    /// Reading the service's dump failed on this side (the service's answer is in `Transaction`).
    #[error("reading the dump: {0}")]
    Dump(String),
    #[error(
        "{} is not registered with the service manager",
        dmaheap_aidl::SERVICE_NAME
    )]
    NotRegistered,
    #[error("the service returned a result without a file descriptor")]
    MissingFd,
    #[error("argument out of range: {0}")]
    OutOfRange(String),
    #[error(transparent)]
    DmaBuf(#[from] dmabuf::Error),
}

impl ClientError {
    /// The service-specific error code, if the service refused the request.
    pub fn service_code(&self) -> Option<i32> {
        match self {
            ClientError::Service { code, .. } => Some(*code),
            _ => None,
        }
    }
}

impl From<Status> for ClientError {
    fn from(status: Status) -> Self {
        if status.exception_code() == ExceptionCode::ServiceSpecific {
            let code = status.service_specific_error();
            ClientError::Service {
                code,
                name: dmaheap_aidl::error_name(code),
                message: status.message().unwrap_or_default().to_owned(),
            }
        } else if status.exception_code() == ExceptionCode::TransactionFailed {
            ClientError::Transaction(status.transaction_error())
        } else {
            ClientError::Exception {
                exception: status.exception_code(),
                message: status.message().unwrap_or_default().to_owned(),
            }
        }
    }
}

pub type Result<T> = std::result::Result<T, ClientError>;

/// A buffer from the allocator: the dma-buf, the heap that served it and its size.
#[derive(Debug)]
pub struct Buffer {
    buf: DmaBuf,
    heap: String,
}

impl Buffer {
    fn from_result(result: AllocationResult) -> Result<Self> {
        let fd = result.fd.ok_or(ClientError::MissingFd)?;
        let buf = DmaBuf::from_fd(fd.into())?;
        Ok(Self {
            buf,
            heap: result.heapName,
        })
    }

    pub fn heap(&self) -> &str {
        &self.heap
    }

    /// Bytes, whole pages.
    pub fn size(&self) -> u64 {
        self.buf.len()
    }

    pub fn dma_buf(&self) -> &DmaBuf {
        &self.buf
    }

    pub fn into_dma_buf(self) -> DmaBuf {
        self.buf
    }

    /// Maps the whole buffer. Reads and writes through it must happen inside
    /// [`Buffer::cpu_access`] for cached heaps to see coherent data.
    pub fn map(&self) -> Result<Mapping> {
        Ok(self.buf.map()?)
    }

    /// Starts CPU access (`DMA_BUF_SYNC_START`); the returned guard ends it when dropped.
    pub fn cpu_access(&self, access: CpuAccess) -> Result<CpuAccessGuard<'_>> {
        self.buf.begin_cpu_access(access)?;
        Ok(CpuAccessGuard {
            buf: &self.buf,
            access: Some(access),
        })
    }
}

impl AsFd for Buffer {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.buf.as_fd()
    }
}

/// An open CPU-access bracket on a buffer.
#[derive(Debug)]
pub struct CpuAccessGuard<'a> {
    buf: &'a DmaBuf,
    access: Option<CpuAccess>,
}

impl CpuAccessGuard<'_> {
    /// Ends the access now and reports whether the kernel accepted it.
    pub fn end(mut self) -> Result<()> {
        match self.access.take() {
            Some(access) => Ok(self.buf.end_cpu_access(access)?),
            None => Ok(()),
        }
    }
}

impl Drop for CpuAccessGuard<'_> {
    fn drop(&mut self) {
        if let Some(access) = self.access.take() {
            // Drop cannot report; `end()` is there for callers that need to know.
            let _ = self.buf.end_cpu_access(access);
        }
    }
}

/// A connection to `vendor.dmaheap.IHeapAllocator/default`.
pub struct HeapAllocator {
    service: Strong<dyn IHeapAllocator>,
}

fn to_i64(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| ClientError::OutOfRange(format!("{what} {value} does not fit the interface")))
}

impl HeapAllocator {
    /// Waits for the service to be registered, like `AServiceManager_waitForService`.
    pub fn wait() -> Result<Self> {
        let service =
            rsbinder::hub::wait_for_interface::<dyn IHeapAllocator>(dmaheap_aidl::SERVICE_NAME)
                .map_err(|_| ClientError::NotRegistered)?;
        Ok(Self { service })
    }

    /// Connects only if the service is registered now.
    pub fn check() -> Result<Self> {
        let service =
            rsbinder::hub::check_interface::<dyn IHeapAllocator>(dmaheap_aidl::SERVICE_NAME)
                .map_err(|_| ClientError::NotRegistered)?;
        Ok(Self { service })
    }

    pub fn from_interface(service: Strong<dyn IHeapAllocator>) -> Self {
        Self { service }
    }

    /// The generated proxy, for calls this wrapper does not type (tests sending bad input).
    pub fn raw(&self) -> &Strong<dyn IHeapAllocator> {
        &self.service
    }

    pub fn allocate_by_usage(&self, usage: u64, size: u64, debug_name: &str) -> Result<Buffer> {
        Buffer::from_result(self.service.allocateByUsage(
            usage as i64,
            to_i64(size, "size")?,
            debug_name,
        )?)
    }

    pub fn allocate_from_heap(&self, heap: &str, size: u64, debug_name: &str) -> Result<Buffer> {
        Buffer::from_result(self.service.allocateFromHeap(
            heap,
            to_i64(size, "size")?,
            debug_name,
        )?)
    }

    /// A legacy ION allocation: heap-id mask, ION flags (`ION_FLAG_CACHED`), alignment.
    pub fn allocate_ion(
        &self,
        heap_id_mask: u32,
        flags: u32,
        alignment: u64,
        size: u64,
        debug_name: &str,
    ) -> Result<Buffer> {
        let request = ion_request(heap_id_mask, flags, alignment)?;
        Buffer::from_result(self.service.allocateIon(
            &request,
            to_i64(size, "size")?,
            debug_name,
        )?)
    }

    /// `count` buffers, all or nothing.
    pub fn allocate_batch(
        &self,
        selector: &HeapSelector,
        size: u64,
        count: u32,
        debug_name: &str,
    ) -> Result<Vec<Buffer>> {
        let count =
            i32::try_from(count).map_err(|_| ClientError::OutOfRange(format!("count {count}")))?;
        self.service
            .allocateBatch(selector, to_i64(size, "size")?, count, debug_name)?
            .into_iter()
            .map(Buffer::from_result)
            .collect()
    }

    pub fn list_heaps(&self) -> Result<Vec<HeapInfo>> {
        Ok(self.service.listHeaps()?)
    }

    pub fn resolve_usage(&self, usage: u64) -> Result<Resolution> {
        Ok(self.service.resolveUsage(usage as i64)?)
    }

    pub fn resolve_ion(&self, heap_id_mask: u32, flags: u32) -> Result<Resolution> {
        Ok(self
            .service
            .resolveIon(&ion_request(heap_id_mask, flags, 0)?)?)
    }

    pub fn stats(&self) -> Result<AllocatorStats> {
        Ok(self.service.getStats()?)
    }

    /// What `dumpsys` shows for the service: policy, heaps, counters.
    pub fn dump(&self) -> Result<String> {
        let binder = self.service.as_binder();
        let proxy = binder
            .as_proxy()
            .ok_or_else(|| ClientError::Dump("the service is not remote".into()))?;
        // A socket pair rather than a pipe: the reader drains it while the service writes, so a
        // long dump cannot fill a buffer and stall the synchronous call.
        let (mut ours, theirs) =
            UnixStream::pair().map_err(|e| ClientError::Dump(format!("socketpair: {e}")))?;
        // A service that kept the fd open would otherwise leave the reader waiting for EOF.
        ours.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .map_err(|e| ClientError::Dump(format!("socket timeout: {e}")))?;
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            ours.read_to_string(&mut text).map(|_| text)
        });
        proxy
            .dump(OwnedFd::from(theirs), &[])
            .map_err(ClientError::Transaction)?;
        reader
            .join()
            .map_err(|_| ClientError::Dump("the reader thread panicked".into()))?
            .map_err(|e| ClientError::Dump(e.to_string()))
    }
}

/// The AIDL request for an ION allocation; mask and flags are bit sets carried as `int`.
pub fn ion_request(heap_id_mask: u32, flags: u32, alignment: u64) -> Result<IonRequest> {
    Ok(IonRequest {
        heapIdMask: heap_id_mask as i32,
        flags: flags as i32,
        alignment: to_i64(alignment, "alignment")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_specific_statuses_become_typed_errors() {
        let status = Status::new_service_specific_error(
            dmaheap_aidl::consts::ERROR_NO_SUCH_HEAP,
            Some("heap \"x\"".into()),
        );
        let err = ClientError::from(status);
        assert_eq!(
            err.service_code(),
            Some(dmaheap_aidl::consts::ERROR_NO_SUCH_HEAP)
        );
        assert_eq!(err.to_string(), "ERROR_NO_SUCH_HEAP (2): heap \"x\"");
        let err = ClientError::from(Status::from(rsbinder::StatusCode::DeadObject));
        assert_eq!(err.service_code(), None);
    }

    /// A caller tells a refusal by policy from a dead service without parsing text.
    #[test]
    fn exceptions_and_transport_failures_keep_their_codes() {
        let refused = ClientError::from(Status::from((
            ExceptionCode::Security,
            "kmod-carveout: not for u:r:hal_camera_default:s0",
        )));
        match &refused {
            ClientError::Exception { exception, message } => {
                assert_eq!(*exception, ExceptionCode::Security);
                assert!(message.contains("kmod-carveout"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            ClientError::from(Status::from(StatusCode::DeadObject)),
            ClientError::Transaction(StatusCode::DeadObject)
        ));
        assert!(matches!(
            ClientError::from(Status::from(StatusCode::FailedTransaction)),
            ClientError::Transaction(StatusCode::FailedTransaction)
        ));
    }

    #[test]
    fn ion_bit_sets_keep_their_high_bit() {
        let r = ion_request(1 << 31, 1, 4096).unwrap();
        assert_eq!(r.heapIdMask as u32, 1 << 31);
        assert!(ion_request(1, 0, u64::MAX).is_err());
    }

    #[test]
    fn a_result_without_fd_is_an_error_and_one_with_an_fd_is_a_buffer() {
        let missing = AllocationResult {
            fd: None,
            heapName: "system".into(),
            size: 4096,
        };
        assert!(matches!(
            Buffer::from_result(missing),
            Err(ClientError::MissingFd)
        ));

        let memfd =
            nix::sys::memfd::memfd_create(c"client-test", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .unwrap();
        nix::unistd::ftruncate(&memfd, 8192).unwrap();
        let result = AllocationResult {
            fd: Some(rsbinder::ParcelFileDescriptor::new(memfd)),
            heapName: "system".into(),
            size: 8192,
        };
        let buf = Buffer::from_result(result).unwrap();
        assert_eq!((buf.heap(), buf.size()), ("system", 8192));
        assert_eq!(buf.map().unwrap().find_byte_not_equal_to(0), None);
    }
}
