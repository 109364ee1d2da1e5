// SPDX-License-Identifier: GPL-2.0

//! `pr_err!`, `pr_warn!`, `pr_info!`: printk with C format strings.
//!
//! The format is a string literal checked by nothing but review, as in C: each directive must
//! match the type of its argument (`%d` `c_int`, `%u` `u32`, `%llu`/`%llx` `u64`, `%zu` `usize`,
//! `%.*s` a `kapi::str::precision` and a byte pointer). Variadic calls only take `c_int`-sized or
//! wider integers and pointers, which the compiler enforces.

/// The log prefix, like `pr_fmt` in C.
#[doc(hidden)]
#[macro_export]
macro_rules! __dmaheap_printk {
    ($level:literal, $fmt:literal $(, $arg:expr)* $(,)?) => {
        // SAFETY: the format is a NUL-terminated literal starting with a printk level, and by
        // the module's convention each of its directives matches its argument's type.
        unsafe {
            $crate::bindings::_printk(
                concat!("\x01", $level, "dmaheap_heaps: ", $fmt, "\0").as_ptr(),
                $($arg),*
            )
        }
    };
}

/// `pr_err`.
#[macro_export]
macro_rules! pr_err {
    ($($t:tt)*) => { $crate::__dmaheap_printk!("3", $($t)*) };
}

/// `pr_warn`.
#[macro_export]
macro_rules! pr_warn {
    ($($t:tt)*) => { $crate::__dmaheap_printk!("4", $($t)*) };
}

/// `pr_info`.
#[macro_export]
macro_rules! pr_info {
    ($($t:tt)*) => { $crate::__dmaheap_printk!("6", $($t)*) };
}
