// SPDX-License-Identifier: GPL-2.0

//! The module's own kernel API: small safe types over C functions that a GKI kernel exports to
//! vendor modules (its KMI), in the shape of the kernel's `kernel` crate.
//!
//! Why not the `kernel` crate itself: a GKI kernel exports none of its symbols (nor `core`'s,
//! nor the `rust_helper_*` forwarders) to vendor modules, and ACK's `kernel` crate is not the one
//! a module is developed against. So nothing here calls out of line into `kernel` or `core`:
//! every function is compiled into this module and calls only exported C functions, or the
//! module's own `helpers.c` where the kernel API is a macro or a static inline. `cargo xtask test`
//! fails on any import of a Rust-crate symbol (heaps-kmod/kmi_symbols.txt lists what it imports).
//!
//! The same rule binds the heap code: no indexing or slicing that can panic, no arithmetic that
//! can overflow (GKI builds with `CONFIG_RUST_OVERFLOW_CHECKS=y`, whose panics are `core`
//! functions), no `unwrap`, no `core::fmt`.

pub(crate) mod alloc;
pub(crate) mod error;
pub(crate) mod print;
pub(crate) mod str;
pub(crate) mod sync;

/// C types as the kernel's bindgen parameters name them (`--ctypes-prefix ffi`), with the
/// kernel's own mapping (its `ffi` crate): `char` is `u8` (`-funsigned-char`) and `long` is
/// pointer-sized on every kernel architecture.
#[allow(non_camel_case_types, dead_code)]
pub(crate) mod ffi {
    pub(crate) use core::ffi::c_void;
    pub(crate) type c_char = u8;
    pub(crate) type c_schar = i8;
    pub(crate) type c_uchar = u8;
    pub(crate) type c_short = i16;
    pub(crate) type c_ushort = u16;
    pub(crate) type c_int = i32;
    pub(crate) type c_uint = u32;
    pub(crate) type c_long = isize;
    pub(crate) type c_ulong = usize;
    pub(crate) type c_longlong = i64;
    pub(crate) type c_ulonglong = u64;
}

/// What the heap code uses everywhere.
pub(crate) mod prelude {
    pub(crate) use super::alloc::{KBox, KVec, GFP_KERNEL};
    pub(crate) use super::error::{
        Error, Result, EAGAIN, EBUSY, EEXIST, EINTR, EINVAL, ENODEV, ENOMEM,
    };
    #[allow(unused_imports)]
    pub(crate) use crate::{lock_class_key, pr_err, pr_info, pr_warn};
}

/// A `.modinfo` entry (`MODULE_LICENSE`, `MODULE_PARM_DESC`, ...): `modinfo!(NAME, b"key=value\0")`.
#[macro_export]
macro_rules! modinfo {
    ($name:ident, $text:literal) => {
        #[link_section = ".modinfo"]
        #[used]
        static $name: [u8; $text.len()] = *$text;
    };
}
