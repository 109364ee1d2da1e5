// SPDX-License-Identifier: GPL-2.0

//! C strings.

use crate::bindings as b;
use crate::kapi::ffi::{c_char, c_int};

/// The bytes of a NUL-terminated C string, without the NUL.
///
/// # Safety
/// `s` points to a NUL-terminated string that lives, unchanged, for `'a`.
pub(crate) unsafe fn from_char_ptr<'a>(s: *const c_char) -> &'a [u8] {
    // SAFETY: by the function's contract, `strlen(s)` bytes from `s` are readable.
    unsafe { core::slice::from_raw_parts(s, b::strlen(s.cast())) }
}

/// The precision argument of `%.*s` for `s`: printk reads at most this many bytes, so a byte
/// string needs no NUL.
pub(crate) fn precision(s: &[u8]) -> c_int {
    c_int::try_from(s.len()).unwrap_or(c_int::MAX)
}
