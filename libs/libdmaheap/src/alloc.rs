//! Allocation: one buffer or a batch, from a usage, a heap name or an ION request, handed out
//! as owned fds. Nothing here leaks: an fd that is not handed out is closed when dropped.

use std::os::fd::OwnedFd;

use dmaheap_aidl::{AllocationResult, HeapSelector, IHeapAllocator, IonRequest};
use rsbinder::BinderResult;

use crate::error::{Error, Result};
use crate::service;

/// What to allocate from.
#[derive(Debug, Clone, Copy)]
pub enum Selector<'a> {
    Usage(u64),
    Heap(&'a str),
    /// Mask and flags as the interface carries them (bit sets in an `int`), alignment checked to
    /// fit its `long`.
    Ion {
        heap_id_mask: i32,
        flags: i32,
        alignment: i64,
    },
}

impl Selector<'_> {
    /// The ION request; alignment must fit the interface's `long`.
    pub fn ion(heap_id_mask: u32, flags: u32, align: u64) -> Result<Selector<'static>> {
        let r = dmaheap_client::ion_request(heap_id_mask, flags, align)
            .map_err(|e| Error::bad_argument(e.to_string()))?;
        Ok(Selector::Ion {
            heap_id_mask: r.heapIdMask,
            flags: r.flags,
            alignment: r.alignment,
        })
    }

    fn ion_request(heap_id_mask: i32, flags: i32, alignment: i64) -> IonRequest {
        IonRequest {
            heapIdMask: heap_id_mask,
            flags,
            alignment,
        }
    }

    fn to_aidl(self) -> HeapSelector {
        match self {
            Selector::Usage(usage) => HeapSelector::Usage(usage as i64),
            Selector::Heap(name) => HeapSelector::HeapName(name.to_owned()),
            Selector::Ion {
                heap_id_mask,
                flags,
                alignment,
            } => HeapSelector::Ion(Self::ion_request(heap_id_mask, flags, alignment)),
        }
    }
}

/// One request, as the delegated path (issue 18) would see it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub selector: Selector<'a>,
    /// Bytes, already checked to be 1..=PTRDIFF_MAX.
    pub len: u64,
    pub debug_name: &'a str,
    /// `None` for one buffer (the single-buffer calls), `Some(n)` for a batch of n (named
    /// "<debug_name>#<index>" by the service).
    pub count: Option<usize>,
}

/// The in-process path for shapes the service delegated ([`crate::delegation`]); `None` sends
/// the request to the service.
fn delegated(request: &Request<'_>) -> Option<Result<Vec<OwnedFd>>> {
    crate::delegation::allocate(request)
}

/// The fd of one result; a result without one is a broken reply.
fn fd_of(result: AllocationResult) -> Result<OwnedFd> {
    result
        .fd
        .map(OwnedFd::from)
        .ok_or_else(|| Error::BadReply("an allocation result without a file descriptor".into()))
}

/// The fds of a batch: exactly `count` of them, each present, or none at all (every fd received
/// is closed on the way out).
pub fn fds_of(results: Vec<AllocationResult>, count: usize) -> Result<Vec<OwnedFd>> {
    if results.len() != count {
        return Err(Error::BadReply(format!(
            "{} buffers for a batch of {count}",
            results.len()
        )));
    }
    results.into_iter().map(fd_of).collect()
}

/// The single-buffer call for `request`, with the binder status kept whole.
fn call_one(service: &dyn IHeapAllocator, request: &Request<'_>) -> BinderResult<AllocationResult> {
    let len = request.len as i64;
    let name = request.debug_name;
    match &request.selector {
        Selector::Usage(usage) => service.allocateByUsage(*usage as i64, len, name),
        Selector::Heap(heap) => service.allocateFromHeap(heap, len, name),
        Selector::Ion {
            heap_id_mask,
            flags,
            alignment,
        } => service.allocateIon(
            &Selector::ion_request(*heap_id_mask, *flags, *alignment),
            len,
            name,
        ),
    }
}

/// Allocates one buffer (`count` None) or a batch, as owned fds.
pub fn allocate(request: &Request<'_>) -> Result<Vec<OwnedFd>> {
    if let Some(done) = delegated(request) {
        return done;
    }
    let Some(count) = request.count else {
        // `service::call` sees the whole status (and retries a dead service); the reply is
        // checked after, on the one that counts.
        let result = service::call(|s| call_one(s, request))?;
        return Ok(vec![fd_of(result)?]);
    };
    let selector = request.selector.to_aidl();
    let results = service::call(|s| {
        s.allocateBatch(
            &selector,
            request.len as i64,
            count as i32,
            request.debug_name,
        )
    })?;
    fds_of(results, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_fds::{count_open_fds, memfd, FD_LOCK};
    use rsbinder::ParcelFileDescriptor;

    fn with_fd(size: i64) -> AllocationResult {
        AllocationResult {
            fd: Some(ParcelFileDescriptor::new(memfd())),
            heapName: "system".into(),
            size,
        }
    }

    fn without_fd() -> AllocationResult {
        AllocationResult {
            fd: None,
            heapName: "system".into(),
            size: 4096,
        }
    }

    #[test]
    fn a_whole_batch_is_handed_out() {
        let _l = FD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = count_open_fds();
        let fds = fds_of(vec![with_fd(4096), with_fd(4096), with_fd(4096)], 3).unwrap();
        assert_eq!(fds.len(), 3);
        assert_eq!(count_open_fds(), before + 3);
        drop(fds);
        assert_eq!(count_open_fds(), before);
    }

    #[test]
    fn a_broken_batch_hands_out_nothing_and_leaks_nothing() {
        let _l = FD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = count_open_fds();
        // A missing fd in the middle: the ones before and after it are closed.
        let e = fds_of(vec![with_fd(4096), without_fd(), with_fd(4096)], 3).unwrap_err();
        assert_eq!(e.errno(), nix::libc::EBADMSG);
        assert_eq!(count_open_fds(), before);
        // Fewer or more buffers than asked for.
        let e = fds_of(vec![with_fd(4096), with_fd(4096)], 3).unwrap_err();
        assert!(e.to_string().contains("2 buffers for a batch of 3"), "{e}");
        assert!(fds_of(vec![with_fd(1), with_fd(1), with_fd(1)], 2).is_err());
        assert_eq!(count_open_fds(), before);
    }

    #[test]
    fn ion_requests_keep_their_bits_and_refuse_huge_alignments() {
        match Selector::ion(1 << 31, 1, 4096).unwrap() {
            Selector::Ion {
                heap_id_mask,
                flags,
                alignment,
            } => {
                assert_eq!(heap_id_mask as u32, 1 << 31);
                assert_eq!((flags, alignment), (1, 4096));
            }
            other => panic!("{other:?}"),
        }
        let e = Selector::ion(1, 0, u64::MAX).unwrap_err();
        assert_eq!(e.errno(), nix::libc::EINVAL);
    }

    #[test]
    fn selectors_become_the_aidl_union() {
        assert!(matches!(
            Selector::Usage(1 << 63).to_aidl(),
            HeapSelector::Usage(u) if u as u64 == 1 << 63
        ));
        assert!(matches!(
            Selector::Heap("system").to_aidl(),
            HeapSelector::HeapName(n) if n == "system"
        ));
    }
}
