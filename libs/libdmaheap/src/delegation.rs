//! Delegated heaps (issue 18 item 1): for a request shape the policy delegates to this process,
//! the service hands over the heap's node once (`IHeapAllocator.delegate`, version 2) and every
//! later buffer of that shape costs one `DMA_HEAP_IOCTL_ALLOC` here, as with libdmabufheap.
//! The policy stays central: the service decides per shape and per caller, and a shape it does
//! not delegate (a contiguous, carveout or secure heap; a version-1 service) goes through the
//! per-call path every time.
//!
//! The answers belong to one service instance: they are dropped when its proxy is (its death
//! notification, or the retry after a dead object), so a restarted service with a new policy is
//! asked again.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dmabuf::DmaHeap;
use dmaheap_aidl::{BufferDescriptor, DelegatedHeap};

use crate::alloc::{Request, Selector};
use crate::error::{Error, Result};
use crate::service;

/// What the service resolves a request by, so what its answer holds for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    usage: u64,
    size: u64,
}

#[derive(Debug)]
enum Answer {
    Delegated(Arc<Delegated>),
    PerCall,
}

/// A heap the service delegated, ready to allocate from.
#[derive(Debug)]
struct Delegated {
    heap: DmaHeap,
    granule: u64,
    heap_flags: u64,
    max_size: u64,
    max_batch_count: usize,
    max_request_bytes: u64,
}

struct Cache {
    generation: u64,
    shapes: HashMap<Shape, Answer>,
}

/// Shapes remembered per service instance; past this the cache starts over, so a caller that
/// asks for ever-new sizes costs a binder call each, never unbounded memory.
const MAX_SHAPES: usize = 64;

static CACHE: Mutex<Option<Cache>> = Mutex::new(None);

/// Counters for `dmaheap_delegation_counters` and the tests.
pub static ASKED: AtomicU64 = AtomicU64::new(0);
pub static LOCAL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
/// Local allocations a delegated node refused (the shape then goes per call).
pub static NODE_REFUSALS: AtomicU64 = AtomicU64::new(0);

fn lock() -> MutexGuard<'static, Option<Cache>> {
    CACHE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The request done in-process, if its shape is delegated; `None` sends it to the service.
pub fn allocate(request: &Request<'_>) -> Option<Result<Vec<OwnedFd>>> {
    let Selector::Usage(usage) = request.selector else {
        return None;
    };
    let shape = Shape {
        usage,
        size: request.len,
    };
    let delegated = match cached(shape) {
        Some(Answer::PerCall) => return None,
        Some(Answer::Delegated(d)) => d,
        None => match ask(shape) {
            Ok(Some(d)) => d,
            Ok(None) => return None,
            Err(e) => return Some(Err(e)),
        },
    };
    // Above the policy's limits the service answers, with its own error and message.
    let len = within_limits(&delegated, request)?;
    match allocate_locally(&delegated, request, len) {
        Ok(fds) => {
            LOCAL_ALLOCATIONS.fetch_add(fds.len() as u64, Ordering::Relaxed);
            Some(Ok(fds))
        }
        Err(e) => {
            // The node may not be usable here (an SELinux policy that does not let this domain
            // ioctl it), or the heap is out of memory: either way the service, with its
            // fallbacks, gets the request. A node that refuses outright is not asked again.
            if matches!(
                e.errno(),
                nix::libc::EACCES | nix::libc::EPERM | nix::libc::ENOTTY
            ) {
                NODE_REFUSALS.fetch_add(1, Ordering::Relaxed);
                remember(shape, Answer::PerCall, None);
            }
            None
        }
    }
}

/// The cached answer for `shape`, if the service that gave it is still the current one.
fn cached(shape: Shape) -> Option<Answer> {
    let cache = lock();
    let cache = cache.as_ref()?;
    if !service::is_current(cache.generation) {
        return None;
    }
    cache.shapes.get(&shape).map(|answer| match answer {
        Answer::Delegated(d) => Answer::Delegated(Arc::clone(d)),
        Answer::PerCall => Answer::PerCall,
    })
}

/// Stores `answer` for `shape`, for the service instance of `generation` (the current one when
/// `None`); answers of an older instance are dropped first.
fn remember(shape: Shape, answer: Answer, generation: Option<u64>) {
    let Some(generation) = generation.or_else(service::current_generation) else {
        return;
    };
    let mut cache = lock();
    let stale = cache
        .as_ref()
        .is_none_or(|c| c.generation != generation || c.shapes.len() >= MAX_SHAPES);
    if stale {
        *cache = Some(Cache {
            generation,
            shapes: HashMap::new(),
        });
    }
    if let Some(c) = cache.as_mut() {
        c.shapes.insert(shape, answer);
    }
}

/// Asks the service whether it delegates `shape`, and remembers the answer.
fn ask(shape: Shape) -> Result<Option<Arc<Delegated>>> {
    ASKED.fetch_add(1, Ordering::Relaxed);
    let descriptor = BufferDescriptor {
        usage: shape.usage as i64,
        size: shape.size as i64,
        ..Default::default()
    };
    match service::call_with_generation(|s| s.delegate(&descriptor)) {
        Ok((Some(heap), generation)) => {
            let delegated = Arc::new(delegated_from(heap)?);
            remember(
                shape,
                Answer::Delegated(Arc::clone(&delegated)),
                Some(generation),
            );
            Ok(Some(delegated))
        }
        Ok((None, generation)) => {
            remember(shape, Answer::PerCall, Some(generation));
            Ok(None)
        }
        // A version-1 service has no delegate(): every call goes to it, as before.
        Err(e) if e.is_unknown_transaction() => {
            remember(shape, Answer::PerCall, None);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

fn delegated_from(heap: DelegatedHeap) -> Result<Delegated> {
    let node = heap
        .heap
        .map(OwnedFd::from)
        .ok_or_else(|| Error::BadReply("a delegated heap without its node".into()))?;
    let positive = |v: i64, what: &str| {
        u64::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| Error::BadReply(format!("a delegated heap with {what} {v}")))
    };
    let granule = positive(heap.granule, "granule")?;
    if !granule.is_power_of_two() {
        return Err(Error::BadReply(format!(
            "a delegated heap with granule {granule}, not a power of two"
        )));
    }
    Ok(Delegated {
        heap: DmaHeap::from_fd(&heap.heapName, node).map_err(|e| Error::BadReply(e.to_string()))?,
        granule,
        heap_flags: u64::try_from(heap.heapFlags).unwrap_or(0),
        max_size: positive(heap.maxSize, "maximum size")?,
        max_batch_count: usize::try_from(positive(
            i64::from(heap.maxBatchCount),
            "maximum batch count",
        )?)
        .unwrap_or(usize::MAX),
        max_request_bytes: positive(heap.maxRequestBytes, "maximum request size")?,
    })
}

/// The size each buffer gets (rounded up to the heap's granule), if the request is within the
/// limits the service gave with the heap.
fn within_limits(d: &Delegated, request: &Request<'_>) -> Option<u64> {
    let len = request
        .len
        .checked_next_multiple_of(d.granule)
        .filter(|&len| len <= d.max_size)?;
    let count = request.count.unwrap_or(1);
    (count <= d.max_batch_count)
        .then(|| len.checked_mul(count as u64))
        .flatten()
        .filter(|&total| total <= d.max_request_bytes)
        .map(|_| len)
}

/// One buffer or a batch (all or nothing) from a delegated heap, named as the service names
/// its buffers.
fn allocate_locally(d: &Delegated, request: &Request<'_>, len: u64) -> Result<Vec<OwnedFd>> {
    let name = dmabuf::name::sanitize(
        request.debug_name,
        dmaheap_aidl::consts::MAX_DEBUG_NAME_BYTES as usize,
    );
    let count = request.count.unwrap_or(1);
    let mut fds = Vec::with_capacity(count);
    for index in 0..count {
        let buf = d.heap.allocate_with_flags(len, d.heap_flags)?;
        let batch_index = request.count.map(|_| index as u32);
        // A name is a debugging aid: a buffer that cannot be named is still handed out.
        let _ = buf.set_name(&dmabuf::name::buffer_label(
            &name,
            d.heap.name(),
            batch_index,
        ));
        fds.push(buf.into_fd());
    }
    Ok(fds)
}
