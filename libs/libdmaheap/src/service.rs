//! The process-wide connection to `vendor.dmaheap.IHeapAllocator/default`: binder set-up, the
//! cached proxy, its death link, and the one retry after the service died.
//!
//! Locks: [`CACHE`] is held only to read or swap the cached entry, never across a binder call
//! (a death notification takes it from a binder thread, and on a thread that is a binder looper
//! an obituary can be delivered inside that thread's own transaction). [`LOOKUP`] serialises
//! look-ups so that a restart does not send every calling thread to the service manager; the
//! death recipient never takes it.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use dmaheap_aidl::IHeapAllocator;
use dmaheap_client::HeapAllocator;
use rsbinder::{BinderResult, DeathRecipient, ProcessState, Strong, WIBinder};

use crate::error::{Error, Result};

/// The environment variable naming the binder device when the library sets binder up itself.
/// For the test bed (a VM whose binderfs is mounted elsewhere); devices never set it.
pub const BINDER_DEVICE_ENV: &str = "DMAHEAP_BINDER_DEVICE";

/// How long a look-up waits for the service to be registered, by default.
pub const DEFAULT_WAIT_MS: i64 = 5000;

/// `dmaheap_set_service_wait_ms`: -1 waits without limit, 0 checks once.
static WAIT_MS: AtomicI64 = AtomicI64::new(DEFAULT_WAIT_MS);

/// The cached proxy. `None` before the first call and after the service died.
static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

/// Held across a look-up (see the module doc).
static LOOKUP: Mutex<()> = Mutex::new(());

/// Serialises the library's own `ProcessState` set-up.
static INIT: Mutex<()> = Mutex::new(());

/// Bumped for each proxy the library caches, so that an invalidation aimed at an old proxy
/// never drops a newer one.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// Whether this library initialised rsbinder's `ProcessState` (and started its looper).
static OWNS_PROCESS_STATE: AtomicBool = AtomicBool::new(false);

/// Counters the tests and `dmaheap_debug_counters` read.
pub static LOOKUPS: AtomicU64 = AtomicU64::new(0);
pub static DEATHS_SEEN: AtomicU64 = AtomicU64::new(0);
pub static RETRIES: AtomicU64 = AtomicU64::new(0);

struct Cached {
    service: Strong<dyn IHeapAllocator>,
    generation: u64,
    /// Kept alive here: the death link holds only a weak reference to it.
    _watch: Arc<DeathWatch>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these locks leaves plain data behind: keep using it.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Drops the cached proxy when it dies, so that the next call looks the service up at once
/// instead of failing first.
struct DeathWatch {
    generation: u64,
}

impl DeathRecipient for DeathWatch {
    fn binder_died(&self, _who: &WIBinder) {
        DEATHS_SEEN.fetch_add(1, Ordering::Relaxed);
        invalidate(self.generation);
    }
}

/// Forgets the cached proxy if it is still the one of `generation`.
fn invalidate(generation: u64) {
    let old = {
        let mut cache = lock(&CACHE);
        if cache.as_ref().is_some_and(|c| c.generation == generation) {
            cache.take()
        } else {
            None
        }
    };
    // Dropped with no lock held: a proxy's drop talks to rsbinder.
    drop(old);
}

pub fn set_wait_ms(ms: i64) {
    WAIT_MS.store(ms, Ordering::Relaxed);
}

pub fn wait_ms() -> i64 {
    WAIT_MS.load(Ordering::Relaxed)
}

/// The binder device the library opens when it sets binder up itself.
pub fn binder_device() -> String {
    match std::env::var(BINDER_DEVICE_ENV) {
        Ok(dev) if !dev.is_empty() => dev,
        _ => {
            if std::path::Path::new(rsbinder::DEFAULT_BINDER_PATH).exists() {
                rsbinder::DEFAULT_BINDER_PATH.to_owned()
            } else {
                rsbinder::LEGACY_BINDER_PATH.to_owned()
            }
        }
    }
}

/// Sets up rsbinder's `ProcessState` unless the process (a Rust HAL on rsbinder, or an earlier
/// call) did. Idempotent; a failure is not remembered, so a later call tries again.
///
/// When the library does it, it asks the kernel for no extra binder threads and starts exactly
/// one looper thread: a client receives nothing but death notifications, and those are only
/// delivered to a looper.
pub fn ensure_binder() -> Result<()> {
    if ProcessState::is_initialized() {
        return Ok(());
    }
    let _init = lock(&INIT);
    if ProcessState::is_initialized() {
        return Ok(());
    }
    let device = binder_device();
    ProcessState::init(&device, 0).map_err(|e| Error::NoBinder {
        device: device.clone(),
        reason: e.to_string().trim_end().to_owned(),
    })?;
    OWNS_PROCESS_STATE.store(true, Ordering::Relaxed);
    ProcessState::start_thread_pool();
    Ok(())
}

pub fn owns_process_state() -> bool {
    OWNS_PROCESS_STATE.load(Ordering::Relaxed)
}

/// Looks the service up, waiting up to the configured time for it to be registered and alive.
fn lookup() -> Result<Strong<dyn IHeapAllocator>> {
    LOOKUPS.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let limit = match wait_ms() {
        ms if ms < 0 => None,
        ms => Some(Duration::from_millis(ms as u64)),
    };
    let mut pause = Duration::from_millis(5);
    loop {
        if let Ok(hal) = HeapAllocator::check() {
            let service = hal.raw().clone();
            // Right after a death the service manager can still hand out the dead binder.
            if service.as_binder().ping_binder().is_ok() {
                return Ok(service);
            }
        }
        let waited = started.elapsed();
        if limit.is_some_and(|limit| waited >= limit) {
            return Err(Error::NotRegistered {
                waited_ms: waited.as_millis() as u64,
            });
        }
        let left = limit.map_or(pause, |limit| limit.saturating_sub(waited));
        std::thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The cached proxy and its generation, looking the service up when there is none.
fn current() -> Result<(Strong<dyn IHeapAllocator>, u64)> {
    if let Some(c) = lock(&CACHE).as_ref() {
        return Ok((c.service.clone(), c.generation));
    }
    let _lookup = lock(&LOOKUP);
    // Another thread may have looked it up while this one waited for the lock.
    if let Some(c) = lock(&CACHE).as_ref() {
        return Ok((c.service.clone(), c.generation));
    }
    ensure_binder()?;
    let service = lookup()?;
    let generation = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
    let watch = Arc::new(DeathWatch { generation });
    // Without a link (a service in this process, an odd binder) the retry below still
    // recovers from a death, one failed call later.
    let _ = service.as_binder().link_to_death_arc(&watch);
    let old = lock(&CACHE).replace(Cached {
        service: service.clone(),
        generation,
        _watch: watch,
    });
    drop(old);
    Ok((service, generation))
}

/// Resolves and caches the service now (`dmaheap_connect`).
pub fn connect() -> Result<()> {
    current().map(|_| ())
}

/// Runs `call` against the service. After a dead-object failure the cache is dropped and the
/// call is made once more against a freshly looked-up service: a call that failed handed out
/// nothing, so making it again is safe.
pub fn call<T>(call: impl Fn(&dyn IHeapAllocator) -> BinderResult<T>) -> Result<T> {
    call_with_generation(call).map(|(answer, _)| answer)
}

/// [`call`], with the generation of the proxy that answered: what the answer holds for, as
/// long as [`is_current`] says so (a delegated heap belongs to one service instance).
pub fn call_with_generation<T>(
    call: impl Fn(&dyn IHeapAllocator) -> BinderResult<T>,
) -> Result<(T, u64)> {
    call_via(current, invalidate, |s: &Strong<dyn IHeapAllocator>| {
        call(&**s)
    })
}

/// The generation of the cached proxy, if there is one.
pub fn current_generation() -> Option<u64> {
    lock(&CACHE).as_ref().map(|c| c.generation)
}

/// Whether the proxy of `generation` is still the cached one: false once its service died (the
/// death notification, or a dead-object retry, dropped it).
pub fn is_current(generation: u64) -> bool {
    lock(&CACHE)
        .as_ref()
        .is_some_and(|c| c.generation == generation)
}

/// [`call`] with the cache's two operations as parameters, so that the retry rule is tested
/// without a binder driver.
fn call_via<S, T>(
    current: impl Fn() -> Result<(S, u64)>,
    invalidate: impl Fn(u64),
    call: impl Fn(&S) -> BinderResult<T>,
) -> Result<(T, u64)> {
    let (service, generation) = current()?;
    match call(&service).map_err(Error::from) {
        Err(e) if e.is_dead_object() => {
            RETRIES.fetch_add(1, Ordering::Relaxed);
            drop(service);
            invalidate(generation);
            let (service, generation) = current()?;
            call(&service)
                .map_err(Error::from)
                .map(|answer| (answer, generation))
        }
        other => other.map(|answer| (answer, generation)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::test_fds::{memfd, FD_LOCK};
    use dmaheap_aidl::{
        AllocationResult, AllocatorStats, BnHeapAllocator, BufferDescriptor, DelegatedHeap,
        HeapInfo, HeapSelector, IonRequest, Resolution,
    };
    use nix::libc;
    use rsbinder::{ExceptionCode, Interface, ParcelFileDescriptor, SIBinder, Status, StatusCode};
    use std::cell::{Cell, RefCell};
    use std::ffi::{c_char, CStr};
    use std::os::fd::FromRawFd;

    /// Held by every test that uses the process-wide cache (or expects it empty).
    pub static SERVICE_LOCK: Mutex<()> = Mutex::new(());

    /// How the local stand-in service answers every call.
    #[derive(Clone, Copy)]
    enum Answer {
        Buffers,
        /// Buffers, and delegate() hands out a "node" (a memfd) that refuses DMA_HEAP_IOCTL_ALLOC,
        /// as a node this domain may not ioctl would.
        BuffersAndAnUnusableNode,
        NoSuchHeap,
        Denied,
        Dead,
    }

    struct Local(Answer);

    impl Interface for Local {}

    impl Local {
        fn one(&self) -> BinderResult<AllocationResult> {
            match self.0 {
                Answer::Buffers | Answer::BuffersAndAnUnusableNode => Ok(AllocationResult {
                    fd: Some(ParcelFileDescriptor::new(memfd())),
                    heapName: "system".into(),
                    size: 4096,
                }),
                Answer::NoSuchHeap => Err(Status::new_service_specific_error(
                    dmaheap_aidl::consts::ERROR_NO_SUCH_HEAP,
                    Some("heap \"x\" is not declared".into()),
                )),
                Answer::Denied => Err(Status::from((
                    ExceptionCode::Security,
                    "heap kmod-cma is not for u:r:test:s0",
                ))),
                Answer::Dead => Err(Status::from(StatusCode::DeadObject)),
            }
        }
    }

    impl IHeapAllocator for Local {
        fn allocateByUsage(&self, _: i64, _: i64, _: &str) -> BinderResult<AllocationResult> {
            self.one()
        }
        fn allocateFromHeap(&self, _: &str, _: i64, _: &str) -> BinderResult<AllocationResult> {
            self.one()
        }
        fn allocateIon(&self, _: &IonRequest, _: i64, _: &str) -> BinderResult<AllocationResult> {
            self.one()
        }
        fn allocateBatch(
            &self,
            _: &HeapSelector,
            _: i64,
            count: i32,
            _: &str,
        ) -> BinderResult<Vec<AllocationResult>> {
            (0..count).map(|_| self.one()).collect()
        }
        fn listHeaps(&self) -> BinderResult<Vec<HeapInfo>> {
            self.one()?;
            let heap = |name: &str, present| HeapInfo {
                name: name.into(),
                present,
                ..Default::default()
            };
            Ok(vec![
                heap("system", true),
                heap("absent", false),
                heap("kmod-cma", true),
            ])
        }
        fn resolveUsage(&self, _: i64) -> BinderResult<Resolution> {
            Err(StatusCode::UnknownTransaction.into())
        }
        fn resolveIon(&self, _: &IonRequest) -> BinderResult<Resolution> {
            Err(StatusCode::UnknownTransaction.into())
        }
        fn getStats(&self) -> BinderResult<AllocatorStats> {
            Err(StatusCode::UnknownTransaction.into())
        }
        fn allocate(&self, _: &BufferDescriptor, _: &str) -> BinderResult<AllocationResult> {
            self.one()
        }
        fn allocateBatchFor(
            &self,
            _: &BufferDescriptor,
            count: i32,
            _: &str,
        ) -> BinderResult<Vec<AllocationResult>> {
            (0..count).map(|_| self.one()).collect()
        }
        fn resolve(&self, _: &BufferDescriptor) -> BinderResult<Resolution> {
            Err(StatusCode::UnknownTransaction.into())
        }
        fn delegate(&self, _: &BufferDescriptor) -> BinderResult<Option<DelegatedHeap>> {
            self.one()?;
            if !matches!(self.0, Answer::BuffersAndAnUnusableNode) {
                return Ok(None);
            }
            Ok(Some(DelegatedHeap {
                heap: Some(ParcelFileDescriptor::new(memfd())),
                heapName: "system".into(),
                granule: 4096,
                heapFlags: 0,
                maxSize: 1 << 20,
                maxBatchCount: 8,
                maxRequestBytes: 1 << 22,
                rule: "default".into(),
            }))
        }
    }

    /// Puts a local service in the cache, as a look-up would; returns its generation and binder.
    fn cache_local(answer: Answer) -> (u64, SIBinder) {
        let service = BnHeapAllocator::new_binder(Local(answer));
        let binder = service.as_binder();
        let generation = GENERATION.fetch_add(1, Ordering::Relaxed) + 1;
        let old = lock(&CACHE).replace(Cached {
            service,
            generation,
            _watch: Arc::new(DeathWatch { generation }),
        });
        drop(old);
        (generation, binder)
    }

    fn cached_generation() -> Option<u64> {
        lock(&CACHE).as_ref().map(|c| c.generation)
    }

    fn last_error() -> String {
        // SAFETY: never NULL, valid until this thread's next call.
        unsafe { CStr::from_ptr(crate::dmaheap_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    #[test]
    fn the_c_calls_go_through_the_cached_service() {
        let _s = lock(&SERVICE_LOCK);
        let _f = lock(&FD_LOCK);
        let (generation, _binder) = cache_local(Answer::Buffers);
        // SAFETY: literals and a local array of the right size.
        unsafe {
            let fd = crate::dmaheap_alloc_by_usage(3, 4096, c"t".as_ptr());
            assert!(fd >= 0, "{fd}: {}", last_error());
            let owned = std::os::fd::OwnedFd::from_raw_fd(fd);
            assert_eq!(
                nix::unistd::lseek(&owned, 0, nix::unistd::Whence::SeekEnd),
                Ok(4096)
            );
            let fd = crate::dmaheap_alloc_from_heap(c"system".as_ptr(), 4096, std::ptr::null());
            assert!(fd >= 0);
            drop(std::os::fd::OwnedFd::from_raw_fd(fd));
            let fd = crate::dmaheap_alloc_ion(1, 1, 0, 4096, std::ptr::null());
            assert!(fd >= 0);
            drop(std::os::fd::OwnedFd::from_raw_fd(fd));

            let sel = crate::DmaheapSelector {
                kind: crate::DMAHEAP_ION,
                usage: 0,
                heap_name: std::ptr::null(),
                ion_heap_id_mask: 1,
                ion_flags: 0,
                ion_align: 0,
            };
            let mut fds = [-7; 3];
            assert_eq!(
                crate::dmaheap_alloc_batch(&sel, 4096, 3, std::ptr::null(), fds.as_mut_ptr()),
                0
            );
            assert!(fds.iter().all(|&fd| fd >= 0), "{fds:?}");
            for fd in fds {
                drop(std::os::fd::OwnedFd::from_raw_fd(fd));
            }

            let mut names: *mut *mut c_char = std::ptr::null_mut();
            let mut count = 0;
            assert_eq!(crate::dmaheap_heap_list(&mut names, &mut count), 0);
            let got: Vec<String> = (0..count)
                .map(|i| CStr::from_ptr(*names.add(i)).to_string_lossy().into_owned())
                .collect();
            assert_eq!(got, ["system", "kmod-cma"], "present heaps only");
            crate::dmaheap_heap_list_free(names, count);
            assert_eq!(crate::dmaheap_connect(), 0);
        }
        assert_eq!(cached_generation(), Some(generation));
        invalidate(generation);
        assert_eq!(cached_generation(), None);
    }

    /// (asked, local allocations) of the delegation counters.
    fn delegation_counters() -> (u64, u64) {
        let (mut asked, mut local) = (0, 0);
        // SAFETY: two writable u64s.
        unsafe { crate::dmaheap_delegation_counters(&mut asked, &mut local) };
        (asked, local)
    }

    fn alloc_by_usage(usage: u64, len: usize) -> std::ffi::c_int {
        // SAFETY: a literal name.
        let fd = unsafe { crate::dmaheap_alloc_by_usage(usage, len, c"t".as_ptr()) };
        if fd >= 0 {
            // SAFETY: the library handed this fd over.
            drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
        }
        fd
    }

    #[test]
    fn a_delegated_node_that_refuses_the_ioctl_sends_its_shape_per_call_and_is_not_asked_again() {
        let _s = lock(&SERVICE_LOCK);
        let _f = lock(&FD_LOCK);
        let (generation, _binder) = cache_local(Answer::BuffersAndAnUnusableNode);
        let (asked, local) = delegation_counters();
        let refusals = || crate::delegation::NODE_REFUSALS.load(Ordering::Relaxed);
        let refused = refusals();
        assert!(alloc_by_usage(0x33, 4096) >= 0, "{}", last_error());
        assert!(alloc_by_usage(0x33, 4096) >= 0, "{}", last_error());
        assert_eq!(
            delegation_counters(),
            (asked + 1, local),
            "asked once, both buffers from the service"
        );
        assert_eq!(refusals(), refused + 1, "the node is not tried again");
        // Another shape is asked about on its own.
        assert!(alloc_by_usage(0x33, 8192) >= 0);
        assert_eq!(delegation_counters(), (asked + 2, local));
        // A new service instance is asked again: the old answers died with the old proxy.
        invalidate(generation);
        let (generation, _binder) = cache_local(Answer::BuffersAndAnUnusableNode);
        assert!(alloc_by_usage(0x33, 4096) >= 0);
        assert_eq!(delegation_counters(), (asked + 3, local));
        invalidate(generation);
    }

    #[test]
    fn a_service_that_delegates_nothing_is_asked_once_per_shape() {
        let _s = lock(&SERVICE_LOCK);
        let _f = lock(&FD_LOCK);
        let (generation, _binder) = cache_local(Answer::Buffers);
        let (asked, local) = delegation_counters();
        for _ in 0..3 {
            assert!(alloc_by_usage(0x3, 4096) >= 0, "{}", last_error());
        }
        assert_eq!(delegation_counters(), (asked + 1, local));
        invalidate(generation);
    }

    #[test]
    fn service_errors_reach_c_with_their_errno_and_message() {
        let _s = lock(&SERVICE_LOCK);
        cache_local(Answer::NoSuchHeap);
        // SAFETY: literals.
        let r = unsafe { crate::dmaheap_alloc_from_heap(c"x".as_ptr(), 4096, c"t".as_ptr()) };
        assert_eq!(r, -libc::ENOENT);
        assert_eq!(nix::errno::Errno::last_raw(), libc::ENOENT);
        assert_eq!(
            last_error(),
            "ERROR_NO_SUCH_HEAP (2): heap \"x\" is not declared"
        );
        cache_local(Answer::Denied);
        let mut fds = [0; 2];
        let sel = crate::DmaheapSelector {
            kind: crate::DMAHEAP_FROM_HEAP,
            usage: 0,
            heap_name: c"kmod-cma".as_ptr(),
            ion_heap_id_mask: 0,
            ion_flags: 0,
            ion_align: 0,
        };
        // SAFETY: a valid selector and array.
        let r =
            unsafe { crate::dmaheap_alloc_batch(&sel, 4096, 2, c"t".as_ptr(), fds.as_mut_ptr()) };
        assert_eq!(r, -libc::EACCES);
        assert_eq!(fds, [-1, -1]);
        assert!(
            last_error().contains("not for u:r:test:s0"),
            "{}",
            last_error()
        );
        let old = lock(&CACHE).take();
        drop(old);
    }

    #[test]
    fn a_death_notification_drops_only_its_own_proxy() {
        let _s = lock(&SERVICE_LOCK);
        let (old_generation, old_binder) = cache_local(Answer::Buffers);
        let (generation, binder) = cache_local(Answer::Buffers);
        let deaths = DEATHS_SEEN.load(Ordering::Relaxed);
        // A late notification for the proxy this one replaced changes nothing.
        DeathWatch {
            generation: old_generation,
        }
        .binder_died(&SIBinder::downgrade(&old_binder));
        assert_eq!(cached_generation(), Some(generation));
        DeathWatch { generation }.binder_died(&SIBinder::downgrade(&binder));
        assert_eq!(cached_generation(), None);
        assert_eq!(DEATHS_SEEN.load(Ordering::Relaxed), deaths + 2);
    }

    #[test]
    fn a_dead_object_is_retried_once_against_a_fresh_look_up() {
        // Retries count in the process-wide RETRIES, which other tests read: one at a time.
        let _s = lock(&SERVICE_LOCK);
        // The rule itself, with counting stand-ins for the cache.
        let lookups = Cell::new(0);
        let invalidated = RefCell::new(Vec::new());
        let attempts = Cell::new(0);
        let current = || {
            lookups.set(lookups.get() + 1);
            Ok(((), 10 + lookups.get()))
        };
        let invalidate = |g| invalidated.borrow_mut().push(g);
        let dead_then_fine = |_: &()| {
            attempts.set(attempts.get() + 1);
            if attempts.get() == 1 {
                Err(Status::from(StatusCode::DeadObject))
            } else {
                Ok(42)
            }
        };
        // The answer comes with the generation of the proxy that gave it: the second one.
        assert_eq!(
            call_via(current, invalidate, dead_then_fine).unwrap(),
            (42, 12)
        );
        assert_eq!((lookups.get(), attempts.get()), (2, 2));
        assert_eq!(*invalidated.borrow(), [11]);

        // Dead twice: the second failure is the answer, there is no third attempt.
        attempts.set(0);
        let always_dead = |_: &()| -> BinderResult<i32> {
            attempts.set(attempts.get() + 1);
            Err(Status::from(StatusCode::DeadObject))
        };
        let e = call_via(current, invalidate, always_dead).unwrap_err();
        assert_eq!(e.errno(), libc::EPIPE);
        assert_eq!(attempts.get(), 2);

        // Any other failure is not retried.
        attempts.set(0);
        let refused = |_: &()| -> BinderResult<i32> {
            attempts.set(attempts.get() + 1);
            Err(Status::from(StatusCode::FailedTransaction))
        };
        assert_eq!(
            call_via(current, invalidate, refused).unwrap_err().errno(),
            libc::EIO
        );
        assert_eq!(attempts.get(), 1);

        // A look-up that fails after the death is what the caller gets.
        let once = Cell::new(false);
        let current_then_gone = || {
            if once.replace(true) {
                Err(Error::NotRegistered { waited_ms: 5 })
            } else {
                Ok(((), 1))
            }
        };
        let e = call_via(current_then_gone, |_| {}, always_dead).unwrap_err();
        assert_eq!(e.errno(), libc::ENODEV);
    }

    #[test]
    fn a_dead_cached_service_is_dropped_and_looked_up_again() {
        if std::path::Path::new(rsbinder::DEFAULT_BINDER_PATH).exists()
            || std::path::Path::new(rsbinder::LEGACY_BINDER_PATH).exists()
        {
            return; // the look-up below would reach a real binder
        }
        let _s = lock(&SERVICE_LOCK);
        cache_local(Answer::Dead);
        let retries = RETRIES.load(Ordering::Relaxed);
        // SAFETY: a literal.
        let r = unsafe { crate::dmaheap_alloc_by_usage(3, 4096, c"t".as_ptr()) };
        // Dropped, then the fresh look-up needs binder, which this host lacks.
        assert_eq!(r, -libc::ENXIO, "{}", last_error());
        assert_eq!(cached_generation(), None);
        assert_eq!(RETRIES.load(Ordering::Relaxed), retries + 1);
    }

    #[test]
    fn the_binder_device_comes_from_the_environment_when_set() {
        // Only this test touches the variable.
        std::env::set_var(BINDER_DEVICE_ENV, "/dev/binderfs/testbed");
        assert_eq!(binder_device(), "/dev/binderfs/testbed");
        std::env::set_var(BINDER_DEVICE_ENV, "");
        assert!(binder_device().ends_with("binder"), "{}", binder_device());
        std::env::remove_var(BINDER_DEVICE_ENV);
    }
}
