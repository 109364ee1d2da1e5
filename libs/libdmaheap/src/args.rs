//! Checks on what C hands the library, made before anything else happens.

use std::ffi::{c_char, c_int, c_uint, CStr};

use dmabuf::CpuAccess;
use dmaheap_aidl::consts::MAX_BATCH_COUNT;

use crate::error::{Error, Result};

/// The debug name used when the caller passes NULL. The service records every buffer's owner
/// (uid, pid, domain) for its dump, so buffers stay attributable whatever their name.
pub const DEFAULT_DEBUG_NAME: &str = "libdmaheap";

/// `DMA_BUF_SYNC_READ` / `DMA_BUF_SYNC_WRITE` (linux/dma-buf.h).
pub const SYNC_READ: c_uint = 1;
pub const SYNC_WRITE: c_uint = 2;

/// A NUL-terminated UTF-8 string.
///
/// # Safety
///
/// `ptr` is NULL or points to a NUL-terminated string that stays valid and unchanged for `'a`.
pub unsafe fn utf8<'a>(ptr: *const c_char, what: &str) -> Result<&'a str> {
    if ptr.is_null() {
        return Err(Error::bad_argument(format!("{what} is NULL")));
    }
    // SAFETY: not NULL, and the caller promises a NUL-terminated string valid for 'a.
    let bytes = unsafe { CStr::from_ptr(ptr) };
    bytes
        .to_str()
        .map_err(|e| Error::bad_argument(format!("{what} is not UTF-8 ({e})")))
}

/// A debug name: NULL means [`DEFAULT_DEBUG_NAME`]; anything else must be UTF-8 (the service
/// cleans the rest for the kernel and never fails a call over a name).
///
/// # Safety
///
/// As for [`utf8`].
pub unsafe fn debug_name<'a>(ptr: *const c_char) -> Result<&'a str> {
    if ptr.is_null() {
        return Ok(DEFAULT_DEBUG_NAME);
    }
    // SAFETY: forwarded from the caller.
    unsafe { utf8(ptr, "the debug name") }
}

/// A buffer length: 1..=PTRDIFF_MAX bytes (no mapping can be larger, and it fits the
/// interface's `long`).
pub fn len(len: usize) -> Result<u64> {
    if len == 0 {
        return Err(Error::bad_argument("the length is 0"));
    }
    if len > isize::MAX as usize {
        return Err(Error::bad_argument(format!(
            "the length {len} is above PTRDIFF_MAX"
        )));
    }
    Ok(len as u64)
}

/// A batch count: 1..=MAX_BATCH_COUNT (the service may allow fewer).
pub fn count(count: c_int) -> Result<usize> {
    if !(1..=MAX_BATCH_COUNT).contains(&count) {
        return Err(Error::bad_argument(format!(
            "the count {count} is outside 1..={MAX_BATCH_COUNT}"
        )));
    }
    Ok(count as usize)
}

/// `DMAHEAP_SYNC_READ`, `_WRITE` or both; nothing else.
pub fn sync_access(flags: c_uint) -> Result<CpuAccess> {
    match flags {
        SYNC_READ => Ok(CpuAccess::Read),
        SYNC_WRITE => Ok(CpuAccess::Write),
        f if f == SYNC_READ | SYNC_WRITE => Ok(CpuAccess::ReadWrite),
        f => Err(Error::bad_argument(format!(
            "sync flags {f:#x}: expected DMAHEAP_SYNC_READ, _WRITE or _RW"
        ))),
    }
}

/// A file descriptor number: negative ones are refused with EBADF, as the kernel would.
pub fn fd(fd: c_int) -> Result<c_int> {
    if fd < 0 {
        return Err(Error::Os {
            op: "using a negative fd",
            errno: nix::errno::Errno::EBADF,
        });
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::libc;

    #[test]
    fn strings() {
        // SAFETY: NULL and literals that live for the whole program.
        unsafe {
            assert_eq!(
                utf8(std::ptr::null(), "x").unwrap_err().errno(),
                libc::EINVAL
            );
            assert_eq!(utf8(c"system".as_ptr(), "x").unwrap(), "system");
            let bad = [0xffu8, 0xfe, 0];
            let e = utf8(bad.as_ptr().cast(), "the heap name").unwrap_err();
            assert_eq!(e.errno(), libc::EINVAL);
            assert!(e.to_string().contains("not UTF-8"), "{e}");
            assert_eq!(debug_name(std::ptr::null()).unwrap(), DEFAULT_DEBUG_NAME);
            assert_eq!(debug_name(c"cam".as_ptr()).unwrap(), "cam");
            assert!(debug_name(bad.as_ptr().cast()).is_err());
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(len(0).unwrap_err().errno(), libc::EINVAL);
        assert_eq!(len(1).unwrap(), 1);
        assert_eq!(len(isize::MAX as usize).unwrap(), isize::MAX as u64);
        assert!(len(isize::MAX as usize + 1).is_err());
        assert!(len(usize::MAX).is_err());
    }

    #[test]
    fn counts() {
        for bad in [-1, 0, MAX_BATCH_COUNT + 1, c_int::MAX, c_int::MIN] {
            assert_eq!(count(bad).unwrap_err().errno(), libc::EINVAL, "{bad}");
        }
        assert_eq!(count(1).unwrap(), 1);
        assert_eq!(count(MAX_BATCH_COUNT).unwrap(), 64);
    }

    #[test]
    fn sync_flags_and_fds() {
        assert_eq!(sync_access(1).unwrap(), CpuAccess::Read);
        assert_eq!(sync_access(2).unwrap(), CpuAccess::Write);
        assert_eq!(sync_access(3).unwrap(), CpuAccess::ReadWrite);
        for bad in [0, 4, 5, 7, 0x100, c_uint::MAX] {
            assert_eq!(sync_access(bad).unwrap_err().errno(), libc::EINVAL);
        }
        assert_eq!(fd(-1).unwrap_err().errno(), libc::EBADF);
        assert_eq!(fd(0).unwrap(), 0);
    }
}
