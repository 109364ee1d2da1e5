//! libdmaheap: the C ABI a vendor C or C++ HAL links to get buffers from
//! `vendor.dmaheap.IHeapAllocator/default`, declared in `include/dmaheap/dmaheap.h`.
//!
//! Every function returns a dma-buf fd (>= 0) or 0 on success and `-errno` on failure, with
//! `errno` set to the same value and a message for [`dmaheap_last_error`]. The errno of each
//! failure comes from one table, [`errno::TABLE`]. No panic crosses the boundary: every entry
//! point runs under `catch_unwind` (and a release build aborts on panic instead of unwinding).

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_uint, CString};
use std::os::fd::IntoRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};

pub mod alloc;
pub mod args;
pub mod delegation;
pub mod errno;
pub mod error;
pub mod service;
pub mod sync;

use alloc::{Request, Selector};
pub use error::{Error, Result};

thread_local! {
    /// The message of the last failed call on this thread; empty after a call that succeeded.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // A message is text for a log: an interior NUL (from a service message) is shown, not cut.
    let text = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // Fails only while the thread is being torn down; there is nobody to tell then.
    let _ = LAST_ERROR.try_with(|e| *e.borrow_mut() = text);
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

/// Runs one entry point: clears the message, catches a panic, turns an error into `-errno`.
fn entry(f: impl FnOnce() -> Result<c_int>) -> c_int {
    set_last_error("");
    let result = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|payload| Err(Error::Panic(panic_message(&*payload))));
    match result {
        Ok(value) => value,
        Err(e) => {
            let errno = e.errno();
            set_last_error(&e.to_string());
            nix::errno::Errno::set_raw(errno);
            -errno
        }
    }
}

fn allocate_single(selector: Selector<'_>, len: u64, debug_name: &str) -> Result<c_int> {
    let fds = alloc::allocate(&Request {
        selector,
        len,
        debug_name,
        count: None,
    })?;
    // `allocate` hands out exactly `count` fds or an error.
    let fd = fds
        .into_iter()
        .next()
        .ok_or_else(|| Error::BadReply("no buffer in the reply".into()))?;
    Ok(fd.into_raw_fd())
}

/// Allocates `len` bytes for a gralloc `BufferUsage`, chosen by the vendor policy.
///
/// # Safety
///
/// `debug_name` is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_alloc_by_usage(
    usage: u64,
    len: usize,
    debug_name: *const c_char,
) -> c_int {
    entry(|| {
        // SAFETY: the caller's promise, forwarded.
        let name = unsafe { args::debug_name(debug_name) }?;
        allocate_single(Selector::Usage(usage), args::len(len)?, name)
    })
}

/// Allocates `len` bytes from the named heap.
///
/// # Safety
///
/// `heap_name` is a NUL-terminated string, `debug_name` NULL or one, both valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_alloc_from_heap(
    heap_name: *const c_char,
    len: usize,
    debug_name: *const c_char,
) -> c_int {
    entry(|| {
        // SAFETY: the caller's promise, forwarded.
        let heap = unsafe { args::utf8(heap_name, "the heap name") }?;
        // SAFETY: as above.
        let name = unsafe { args::debug_name(debug_name) }?;
        allocate_single(Selector::Heap(heap), args::len(len)?, name)
    })
}

/// Allocates `len` bytes the way `ion_alloc_fd` did: heap-id mask, ION flags, alignment.
///
/// # Safety
///
/// `debug_name` is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_alloc_ion(
    heap_id_mask: c_uint,
    flags: c_uint,
    align: usize,
    len: usize,
    debug_name: *const c_char,
) -> c_int {
    entry(|| {
        // SAFETY: the caller's promise, forwarded.
        let name = unsafe { args::debug_name(debug_name) }?;
        let len = args::len(len)?;
        allocate_single(Selector::ion(heap_id_mask, flags, align as u64)?, len, name)
    })
}

/// `struct dmaheap_selector`'s kinds.
pub const DMAHEAP_BY_USAGE: c_int = 1;
pub const DMAHEAP_FROM_HEAP: c_int = 2;
pub const DMAHEAP_ION: c_int = 3;

/// `struct dmaheap_selector` (dmaheap.h).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct DmaheapSelector {
    pub kind: c_int,
    pub usage: u64,
    pub heap_name: *const c_char,
    pub ion_heap_id_mask: c_uint,
    pub ion_flags: c_uint,
    pub ion_align: usize,
}

/// # Safety
///
/// `selector.heap_name` is NULL or a NUL-terminated string valid for `'a` when the kind is
/// `DMAHEAP_FROM_HEAP`.
unsafe fn selector<'a>(s: &DmaheapSelector) -> Result<Selector<'a>> {
    match s.kind {
        DMAHEAP_BY_USAGE => Ok(Selector::Usage(s.usage)),
        // SAFETY: the caller's promise, forwarded.
        DMAHEAP_FROM_HEAP => Ok(Selector::Heap(unsafe {
            args::utf8(s.heap_name, "selector.heap_name")
        }?)),
        DMAHEAP_ION => Selector::ion(s.ion_heap_id_mask, s.ion_flags, s.ion_align as u64),
        kind => Err(Error::bad_argument(format!(
            "selector.kind {kind} is none of DMAHEAP_BY_USAGE, _FROM_HEAP, _ION"
        ))),
    }
}

/// Allocates `count` buffers of `len` bytes, all or nothing, into `fds[0..count]`.
///
/// # Safety
///
/// `sel` points to a valid `struct dmaheap_selector` (with its strings), `debug_name` is NULL
/// or a NUL-terminated string, and `fds` points to `count` writable ints, all valid for the
/// call.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_alloc_batch(
    sel: *const DmaheapSelector,
    len: usize,
    count: c_int,
    debug_name: *const c_char,
    fds: *mut c_int,
) -> c_int {
    entry(|| {
        if sel.is_null() || fds.is_null() {
            return Err(Error::bad_argument("the selector or the fd array is NULL"));
        }
        let count = args::count(count)?;
        // SAFETY: `fds` is not NULL and the caller promises `count` writable ints.
        let out = unsafe { std::slice::from_raw_parts_mut(fds, count) };
        out.fill(-1);
        // SAFETY: not NULL; the caller promises a valid struct for the call.
        let sel = unsafe { &*sel };
        // SAFETY: the caller's promise, forwarded.
        let selector = unsafe { selector(sel) }?;
        // SAFETY: as above.
        let name = unsafe { args::debug_name(debug_name) }?;
        let owned = alloc::allocate(&Request {
            selector,
            len: args::len(len)?,
            debug_name: name,
            count: Some(count),
        })?;
        for (slot, fd) in out.iter_mut().zip(owned) {
            *slot = fd.into_raw_fd();
        }
        Ok(0)
    })
}

/// Starts CPU access: `DMA_BUF_IOCTL_SYNC` with `DMA_BUF_SYNC_START | flags`, restarted on
/// EINTR and EAGAIN.
#[no_mangle]
pub extern "C" fn dmaheap_cpu_sync_start(dmabuf_fd: c_int, flags: c_uint) -> c_int {
    entry(|| {
        let access = args::sync_access(flags)?;
        sync::sync_start(args::fd(dmabuf_fd)?, access).map(|()| 0)
    })
}

/// Ends CPU access: `DMA_BUF_SYNC_END | flags`, restarted on EINTR and EAGAIN.
#[no_mangle]
pub extern "C" fn dmaheap_cpu_sync_end(dmabuf_fd: c_int, flags: c_uint) -> c_int {
    entry(|| {
        let access = args::sync_access(flags)?;
        sync::sync_end(args::fd(dmabuf_fd)?, access).map(|()| 0)
    })
}

/// Names the buffer (`DMA_BUF_SET_NAME`), cut to the kernel's 31 bytes.
///
/// # Safety
///
/// `name` is a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_set_name(dmabuf_fd: c_int, name: *const c_char) -> c_int {
    entry(|| {
        // SAFETY: the caller's promise, forwarded.
        let name = unsafe { args::utf8(name, "the name") }?;
        sync::set_name(args::fd(dmabuf_fd)?, name).map(|()| 0)
    })
}

/// The heaps the service can allocate from on this device (declared by its policy and present),
/// as a NULL-free array of `*count` strings for [`dmaheap_heap_list_free`]. An empty list is
/// `*names == NULL`, `*count == 0`.
///
/// # Safety
///
/// `names` and `count` point to writable storage valid for the call.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_heap_list(
    names: *mut *mut *mut c_char,
    count: *mut usize,
) -> c_int {
    entry(|| {
        if names.is_null() || count.is_null() {
            return Err(Error::bad_argument("names or count is NULL"));
        }
        // SAFETY: both checked non-NULL; the caller promises writable storage.
        unsafe {
            *names = std::ptr::null_mut();
            *count = 0;
        }
        let heaps = service::call(|s| s.listHeaps())?;
        let list: Vec<CString> = heaps
            .into_iter()
            .filter(|h| h.present)
            .map(|h| CString::new(h.name))
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| Error::BadReply("a heap name with a NUL byte".into()))?;
        if list.is_empty() {
            return Ok(0);
        }
        let len = list.len();
        let raw: Box<[*mut c_char]> = list.into_iter().map(CString::into_raw).collect();
        // SAFETY: as above; the array is handed to the caller until dmaheap_heap_list_free.
        unsafe {
            *names = Box::into_raw(raw).cast::<*mut c_char>();
            *count = len;
        }
        Ok(0)
    })
}

/// Frees what [`dmaheap_heap_list`] returned. NULL is accepted and does nothing.
///
/// # Safety
///
/// `names` and `count` are exactly what one `dmaheap_heap_list` call returned, not freed yet.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_heap_list_free(names: *mut *mut c_char, count: usize) {
    if names.is_null() || count == 0 {
        return;
    }
    // SAFETY: `names`/`count` are the boxed slice `dmaheap_heap_list` leaked, freed once here.
    let raw = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(names, count)) };
    for &name in raw.iter() {
        if !name.is_null() {
            // SAFETY: each entry came from CString::into_raw in dmaheap_heap_list.
            drop(unsafe { CString::from_raw(name) });
        }
    }
}

/// Resolves and caches the service now, so that a HAL learns at start-up whether it can
/// allocate (and the first allocation does not pay the look-up).
#[no_mangle]
pub extern "C" fn dmaheap_connect() -> c_int {
    entry(|| service::connect().map(|()| 0))
}

/// How long a look-up waits for the service to be registered: -1 without limit, 0 not at all,
/// else milliseconds. The default is `service::DEFAULT_WAIT_MS`.
#[no_mangle]
pub extern "C" fn dmaheap_set_service_wait_ms(timeout_ms: c_int) -> c_int {
    entry(|| {
        if timeout_ms < -1 {
            return Err(Error::bad_argument(format!(
                "timeout {timeout_ms} ms: expected -1, 0 or a positive number"
            )));
        }
        service::set_wait_ms(i64::from(timeout_ms));
        Ok(0)
    })
}

/// The message of the last failed `dmaheap_*` call on this thread ("" after a success). Valid
/// until the next `dmaheap_*` call on the same thread; never NULL.
#[no_mangle]
pub extern "C" fn dmaheap_last_error() -> *const c_char {
    LAST_ERROR
        .try_with(|e| e.borrow().as_ptr())
        .unwrap_or(c"".as_ptr())
}

/// Counters for tests and debugging: service look-ups made, death notifications received,
/// calls retried after a dead object. Each pointer may be NULL.
///
/// # Safety
///
/// Each pointer is NULL or points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_debug_counters(
    lookups: *mut u64,
    deaths: *mut u64,
    retries: *mut u64,
) {
    use std::sync::atomic::Ordering::Relaxed;
    for (out, counter) in [
        (lookups, &service::LOOKUPS),
        (deaths, &service::DEATHS_SEEN),
        (retries, &service::RETRIES),
    ] {
        if !out.is_null() {
            // SAFETY: not NULL, and the caller promises a writable uint64_t.
            unsafe { *out = counter.load(Relaxed) };
        }
    }
}

/// `dmaheap_delegation_counters`: see the header. Each pointer may be NULL.
///
/// # Safety
///
/// Each pointer is NULL or points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn dmaheap_delegation_counters(asked: *mut u64, local_allocations: *mut u64) {
    use std::sync::atomic::Ordering::Relaxed;
    for (out, counter) in [
        (asked, &delegation::ASKED),
        (local_allocations, &delegation::LOCAL_ALLOCATIONS),
    ] {
        if !out.is_null() {
            // SAFETY: not NULL, and the caller promises a writable uint64_t.
            unsafe { *out = counter.load(Relaxed) };
        }
    }
}

/// The `-errno` this library's table gives a binder status, for HALs that call the NDK backend
/// of `vendor.dmaheap` themselves: `exception_code` from `AStatus_getExceptionCode`, `status`
/// from `AStatus_getServiceSpecificError` (EX_SERVICE_SPECIFIC) or `AStatus_getStatus`
/// (EX_TRANSACTION_FAILED), ignored otherwise. 0 for EX_NONE.
#[no_mangle]
pub extern "C" fn dmaheap_errno_from_binder_status(exception_code: i32, status: i32) -> c_int {
    match errno::cause_of_status(exception_code, status) {
        None => 0,
        Some(cause) => -errno::errno_for(cause),
    }
}

#[cfg(test)]
pub(crate) mod test_fds {
    use std::os::fd::OwnedFd;
    use std::sync::Mutex;

    /// Held by every test that opens fds or counts them, so that the counts are exact.
    pub static FD_LOCK: Mutex<()> = Mutex::new(());

    pub fn count_open_fds() -> usize {
        std::fs::read_dir("/proc/self/fd").unwrap().count()
    }

    pub fn memfd() -> OwnedFd {
        let fd = nix::sys::memfd::memfd_create(
            c"libdmaheap-test",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .unwrap();
        nix::unistd::ftruncate(&fd, 4096).unwrap();
        fd
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc;
    use std::ffi::CStr;
    use std::os::fd::AsRawFd;
    use test_fds::{count_open_fds, memfd, FD_LOCK};

    fn last_error() -> String {
        // SAFETY: dmaheap_last_error never returns NULL and the string lives until this
        // thread's next call.
        unsafe { CStr::from_ptr(dmaheap_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    fn no_binder_here() -> bool {
        !std::path::Path::new(rsbinder::DEFAULT_BINDER_PATH).exists()
            && !std::path::Path::new(rsbinder::LEGACY_BINDER_PATH).exists()
    }

    const BAD_UTF8: &[u8] = &[b'x', 0xc3, 0x28, 0];

    #[test]
    fn null_and_non_utf8_strings_are_einval_before_any_call() {
        let bad = BAD_UTF8.as_ptr().cast::<c_char>();
        // SAFETY: NULL, or NUL-terminated literals.
        unsafe {
            assert_eq!(
                dmaheap_alloc_from_heap(std::ptr::null(), 4096, std::ptr::null()),
                -libc::EINVAL
            );
            assert!(
                last_error().contains("the heap name is NULL"),
                "{}",
                last_error()
            );
            assert_eq!(nix::errno::Errno::last_raw(), libc::EINVAL);
            assert_eq!(
                dmaheap_alloc_from_heap(bad, 4096, std::ptr::null()),
                -libc::EINVAL
            );
            assert!(last_error().contains("not UTF-8"));
            assert_eq!(
                dmaheap_alloc_from_heap(c"system".as_ptr(), 4096, bad),
                -libc::EINVAL
            );
            assert_eq!(dmaheap_alloc_by_usage(0, 4096, bad), -libc::EINVAL);
            assert_eq!(dmaheap_alloc_ion(1, 0, 0, 4096, bad), -libc::EINVAL);
            assert_eq!(dmaheap_set_name(0, std::ptr::null()), -libc::EINVAL);
            assert_eq!(dmaheap_set_name(0, bad), -libc::EINVAL);
        }
    }

    #[test]
    fn lengths_are_checked_before_any_call() {
        // SAFETY: literals.
        unsafe {
            for len in [0, isize::MAX as usize + 1, usize::MAX] {
                assert_eq!(
                    dmaheap_alloc_by_usage(0, len, std::ptr::null()),
                    -libc::EINVAL
                );
                assert_eq!(
                    dmaheap_alloc_from_heap(c"system".as_ptr(), len, c"t".as_ptr()),
                    -libc::EINVAL
                );
                assert_eq!(
                    dmaheap_alloc_ion(1, 0, 0, len, std::ptr::null()),
                    -libc::EINVAL
                );
            }
            assert!(last_error().contains("PTRDIFF_MAX"), "{}", last_error());
            // An alignment the interface's long cannot carry.
            if usize::BITS == 64 {
                assert_eq!(
                    dmaheap_alloc_ion(1, 0, usize::MAX, 4096, std::ptr::null()),
                    -libc::EINVAL
                );
            }
        }
    }

    #[test]
    fn batch_arguments_are_checked_and_the_array_is_cleared() {
        let sel = DmaheapSelector {
            kind: DMAHEAP_BY_USAGE,
            usage: 0,
            heap_name: std::ptr::null(),
            ion_heap_id_mask: 0,
            ion_flags: 0,
            ion_align: 0,
        };
        let mut fds = [7; 4];
        // SAFETY: valid selector and a 4-int array for counts up to 4; NULLs where tested.
        unsafe {
            for count in [-1, 0, c_int::MAX, 65] {
                assert_eq!(
                    dmaheap_alloc_batch(&sel, 4096, count, std::ptr::null(), fds.as_mut_ptr()),
                    -libc::EINVAL,
                    "count {count}"
                );
            }
            assert_eq!(fds, [7; 4], "a refused count writes nothing");
            assert_eq!(
                dmaheap_alloc_batch(
                    std::ptr::null(),
                    4096,
                    2,
                    std::ptr::null(),
                    fds.as_mut_ptr()
                ),
                -libc::EINVAL
            );
            assert_eq!(
                dmaheap_alloc_batch(&sel, 4096, 2, std::ptr::null(), std::ptr::null_mut()),
                -libc::EINVAL
            );
            let bad_kind = DmaheapSelector { kind: 0, ..sel };
            assert_eq!(
                dmaheap_alloc_batch(&bad_kind, 4096, 4, std::ptr::null(), fds.as_mut_ptr()),
                -libc::EINVAL
            );
            assert_eq!(fds, [-1; 4], "a failed batch leaves -1 in every slot");
            assert!(last_error().contains("selector.kind 0"), "{}", last_error());
            let no_heap = DmaheapSelector {
                kind: DMAHEAP_FROM_HEAP,
                ..sel
            };
            assert_eq!(
                dmaheap_alloc_batch(&no_heap, 4096, 2, std::ptr::null(), fds.as_mut_ptr()),
                -libc::EINVAL
            );
            assert_eq!(
                dmaheap_alloc_batch(&sel, 0, 2, std::ptr::null(), fds.as_mut_ptr()),
                -libc::EINVAL
            );
        }
    }

    #[test]
    fn sync_and_name_arguments() {
        let _l = FD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = count_open_fds();
        assert_eq!(dmaheap_cpu_sync_start(-1, 1), -libc::EBADF);
        assert_eq!(dmaheap_cpu_sync_end(-1, 1), -libc::EBADF);
        let fd = memfd();
        assert_eq!(dmaheap_cpu_sync_start(fd.as_raw_fd(), 0), -libc::EINVAL);
        assert_eq!(dmaheap_cpu_sync_start(fd.as_raw_fd(), 4), -libc::EINVAL);
        assert_eq!(dmaheap_cpu_sync_end(fd.as_raw_fd(), 8), -libc::EINVAL);
        assert_eq!(dmaheap_cpu_sync_start(fd.as_raw_fd(), 3), -libc::ENOTTY);
        assert!(
            last_error().contains("DMA_BUF_IOCTL_SYNC"),
            "{}",
            last_error()
        );
        assert_eq!(dmaheap_cpu_sync_end(fd.as_raw_fd(), 1), -libc::ENOTTY);
        // SAFETY: a literal.
        assert_eq!(
            unsafe { dmaheap_set_name(fd.as_raw_fd(), c"n".as_ptr()) },
            -libc::ENOTTY
        );
        drop(fd);
        assert_eq!(count_open_fds(), before);
    }

    #[test]
    fn heap_list_arguments() {
        let mut names: *mut *mut c_char = std::ptr::null_mut();
        let mut count = 0usize;
        // SAFETY: NULL where tested, else valid locals.
        unsafe {
            assert_eq!(
                dmaheap_heap_list(std::ptr::null_mut(), &mut count),
                -libc::EINVAL
            );
            assert_eq!(
                dmaheap_heap_list(&mut names, std::ptr::null_mut()),
                -libc::EINVAL
            );
            dmaheap_heap_list_free(std::ptr::null_mut(), 0);
            dmaheap_heap_list_free(std::ptr::null_mut(), 3);
        }
    }

    #[test]
    fn heap_list_memory_round_trips() {
        // What dmaheap_heap_list hands out, built the same way, freed by the C entry point.
        let list = [c"system".to_owned(), c"kmod-cma".to_owned()];
        let raw: Box<[*mut c_char]> = list.into_iter().map(CString::into_raw).collect();
        let count = raw.len();
        let names = Box::into_raw(raw).cast::<*mut c_char>();
        // SAFETY: built above exactly as dmaheap_heap_list builds its result.
        unsafe {
            assert_eq!(CStr::from_ptr(*names.add(1)), c"kmod-cma");
            dmaheap_heap_list_free(names, count);
        }
    }

    #[test]
    fn without_binder_calls_fail_with_enxio_and_say_why() {
        if !no_binder_here() {
            eprintln!("skipped: this machine has a binder device");
            return;
        }
        let _s = service::tests::SERVICE_LOCK
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _l = FD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let before = count_open_fds();
        // SAFETY: literals.
        unsafe {
            assert_eq!(
                dmaheap_alloc_from_heap(c"system".as_ptr(), 4096, c"t".as_ptr()),
                -libc::ENXIO
            );
        }
        let msg = last_error();
        assert!(msg.contains("cannot use the binder driver"), "{msg}");
        assert_eq!(dmaheap_connect(), -libc::ENXIO);
        let mut names: *mut *mut c_char = std::ptr::null_mut();
        let mut count = 9usize;
        // SAFETY: valid locals.
        assert_eq!(
            unsafe { dmaheap_heap_list(&mut names, &mut count) },
            -libc::ENXIO
        );
        assert!(names.is_null());
        assert_eq!(count, 0);
        assert!(!service::owns_process_state());
        assert_eq!(
            count_open_fds(),
            before,
            "a failed binder set-up leaks nothing"
        );
    }

    #[test]
    fn a_success_clears_the_message() {
        // SAFETY: a literal.
        unsafe { dmaheap_alloc_by_usage(0, 0, c"x".as_ptr()) };
        assert!(!last_error().is_empty());
        assert_eq!(dmaheap_set_service_wait_ms(100), 0);
        assert_eq!(last_error(), "");
        assert_eq!(dmaheap_set_service_wait_ms(-2), -libc::EINVAL);
        assert_eq!(
            dmaheap_set_service_wait_ms(service::DEFAULT_WAIT_MS as c_int),
            0
        );
    }

    #[test]
    fn panics_become_an_errno_and_a_message() {
        // The panic hook opens files (backtraces): keep the fd counts of other tests exact.
        let _l = FD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let r = entry(|| panic!("boom"));
        assert_eq!(r, -libc::ENOTRECOVERABLE);
        assert!(last_error().contains("boom"), "{}", last_error());
    }

    #[test]
    fn debug_counters_accept_null() {
        let mut lookups = u64::MAX;
        // SAFETY: NULL or a valid local.
        unsafe {
            dmaheap_debug_counters(&mut lookups, std::ptr::null_mut(), std::ptr::null_mut());
            dmaheap_debug_counters(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
        }
        assert_ne!(lookups, u64::MAX);
    }

    #[test]
    fn the_ndk_helper_uses_the_table() {
        assert_eq!(dmaheap_errno_from_binder_status(0, 123), 0);
        assert_eq!(
            dmaheap_errno_from_binder_status(-8, dmaheap_aidl::consts::ERROR_QUOTA_EXCEEDED),
            -libc::EDQUOT
        );
        assert_eq!(dmaheap_errno_from_binder_status(-1, 0), -libc::EACCES);
        assert_eq!(
            dmaheap_errno_from_binder_status(-129, -libc::EPIPE),
            -libc::EPIPE
        );
    }

    #[test]
    fn the_selector_layout_is_c_layout() {
        // int, pad, uint64_t, pointer, 2 x unsigned int, size_t.
        if usize::BITS == 64 {
            assert_eq!(std::mem::size_of::<DmaheapSelector>(), 40);
            assert_eq!(std::mem::offset_of!(DmaheapSelector, usage), 8);
            assert_eq!(std::mem::offset_of!(DmaheapSelector, heap_name), 16);
            assert_eq!(std::mem::offset_of!(DmaheapSelector, ion_align), 32);
        }
    }
}
