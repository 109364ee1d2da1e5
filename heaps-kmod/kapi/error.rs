// SPDX-License-Identifier: GPL-2.0

//! Kernel error codes (`-errno`) and the `ERR_PTR` convention.

use crate::bindings as b;
use crate::kapi::ffi::c_int;

/// A kernel error: a negative errno between `-MAX_ERRNO` and -1.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Error(c_int);

/// `include/linux/err.h`: the top 4095 addresses are error codes.
const MAX_ERRNO: c_int = 4095;

macro_rules! codes {
    ($($name:ident),* $(,)?) => {
        $(
            #[allow(dead_code)]
            pub(crate) const $name: Error = Error::from_positive(b::$name);
        )*
    };
}

codes!(EINVAL, ENOMEM, EBUSY, EINTR, ENODEV, EEXIST, EAGAIN);

impl Error {
    const fn from_positive(errno: u32) -> Error {
        // The codes above are small positive constants of errno-base.h.
        Error(-(errno as c_int))
    }

    /// An error from a C function's negative return value. Anything that is not a valid errno
    /// (a positive value, 0, below `-MAX_ERRNO`) becomes `EINVAL`, as the `kernel` crate does:
    /// an `Error` is always something `ERR_PTR` and user space understand.
    pub(crate) fn from_errno(errno: c_int) -> Error {
        if (-MAX_ERRNO..0).contains(&errno) {
            Error(errno)
        } else {
            EINVAL
        }
    }

    /// The negative errno, as C callers expect it.
    pub(crate) fn to_errno(self) -> c_int {
        self.0
    }

    /// `ERR_PTR(errno)`.
    pub(crate) fn to_ptr<T>(self) -> *mut T {
        self.0 as isize as *mut T
    }
}

/// The result of a kernel operation.
pub(crate) type Result<T = (), E = Error> = core::result::Result<T, E>;

/// `IS_ERR(ptr)`.
pub(crate) fn is_err<T>(p: *const T) -> bool {
    p as usize >= (MAX_ERRNO as usize).wrapping_neg()
}

/// `PTR_ERR(ptr)` of a pointer for which `is_err` holds.
pub(crate) fn ptr_err<T>(p: *const T) -> Error {
    Error::from_errno(p as isize as c_int)
}

/// `PTR_ERR_OR_ZERO` as a `Result`: the pointer, or the error it encodes.
pub(crate) fn from_err_ptr<T>(p: *mut T) -> Result<*mut T> {
    if is_err(p) {
        Err(ptr_err(p))
    } else {
        Ok(p)
    }
}

/// A C return value that is 0 or a negative errno.
pub(crate) fn to_result(ret: c_int) -> Result {
    if ret == 0 {
        Ok(())
    } else {
        Err(Error::from_errno(ret))
    }
}
