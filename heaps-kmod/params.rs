// SPDX-License-Identifier: GPL-2.0

//! Module parameters.
//!
//! The 6.12 `module!` macro has no parameter support, so the `struct kernel_param` entries are
//! emitted by hand into the `__param` section, exactly as `module_param_named()` does in C.

use crate::bindings as b;
use crate::kapi::ffi::c_char;
use crate::modinfo;
use core::ffi::c_void;

#[allow(improper_ctypes)]
extern "C" {
    static __this_module: b::module;
}

/// A `struct kernel_param` that may live in a `static`.
#[repr(transparent)]
struct Param(b::kernel_param);

// SAFETY: The descriptor is immutable; the pointers it holds refer to statics that live as long
// as the module, and the parameter core serialises access to the values they point at.
unsafe impl Sync for Param {}

macro_rules! param {
    ($desc:ident, $name:literal, $ops:ident, $perm:expr, $var:ident) => {
        #[link_section = "__param"]
        #[used]
        static $desc: Param = Param(b::kernel_param {
            name: concat!($name, "\0").as_ptr(),
            mod_: (&raw const __this_module) as *mut b::module,
            ops: &raw const b::$ops,
            perm: $perm,
            level: -1,
            flags: 0,
            __bindgen_anon_1: b::kernel_param__bindgen_ty_1 {
                arg: (&raw mut $var) as *mut c_void,
            },
        });
    };
}

static mut SYSTEM_NAME: *mut c_char = c"system".as_ptr() as *mut c_char;
static mut SYSTEM_UNCACHED_NAME: *mut c_char = c"system-uncached".as_ptr() as *mut c_char;
static mut CMA_HEAPS: *mut c_char = c"".as_ptr() as *mut c_char;
static mut CARVEOUT_HEAPS: *mut c_char = c"".as_ptr() as *mut c_char;
static mut POOL_LIMIT_MB: u32 = 64;
static mut FAIL_HEAP_ADD: *mut c_char = c"".as_ptr() as *mut c_char;
static mut STOP_DELAY_MS: u32 = 0;

param!(
    PARAM_SYSTEM_NAME,
    "system_name",
    param_ops_charp,
    0o444,
    SYSTEM_NAME
);
param!(
    PARAM_SYSTEM_UNCACHED_NAME,
    "system_uncached_name",
    param_ops_charp,
    0o444,
    SYSTEM_UNCACHED_NAME
);
param!(
    PARAM_CMA_HEAPS,
    "cma_heaps",
    param_ops_charp,
    0o444,
    CMA_HEAPS
);
param!(
    PARAM_CARVEOUT_HEAPS,
    "carveout_heaps",
    param_ops_charp,
    0o444,
    CARVEOUT_HEAPS
);
param!(
    PARAM_POOL_LIMIT_MB,
    "pool_limit_mb",
    param_ops_uint,
    0o444,
    POOL_LIMIT_MB
);
param!(
    PARAM_FAIL_HEAP_ADD,
    "fail_heap_add",
    param_ops_charp,
    0o444,
    FAIL_HEAP_ADD
);
param!(
    PARAM_STOP_DELAY_MS,
    "stop_delay_ms",
    param_ops_uint,
    0o444,
    STOP_DELAY_MS
);

modinfo!(PARMTYPE_SYSTEM_NAME, b"parmtype=system_name:charp\0");
modinfo!(
    PARM_SYSTEM_NAME,
    b"parm=system_name:name of the cached system heap, empty to disable (default: system)\0"
);
modinfo!(
    PARMTYPE_SYSTEM_UNCACHED_NAME,
    b"parmtype=system_uncached_name:charp\0"
);
modinfo!(PARM_SYSTEM_UNCACHED_NAME, b"parm=system_uncached_name:name of the write-combined system heap, empty to disable (default: system-uncached)\0");
modinfo!(PARMTYPE_CMA_HEAPS, b"parmtype=cma_heaps:charp\0");
modinfo!(PARM_CMA_HEAPS, b"parm=cma_heaps:comma-separated NAME:AREA[:uncached] CMA heaps; AREA is a CMA area name or 'default' (default: none)\0");
modinfo!(PARMTYPE_CARVEOUT_HEAPS, b"parmtype=carveout_heaps:charp\0");
modinfo!(PARM_CARVEOUT_HEAPS, b"parm=carveout_heaps:comma-separated NAME:BASE:SIZE carveout heaps on boot-reserved physical ranges, e.g. carveout:0x30000000:32M; always write-combined (default: none)\0");
modinfo!(PARMTYPE_POOL_LIMIT_MB, b"parmtype=pool_limit_mb:uint\0");
modinfo!(
    PARM_POOL_LIMIT_MB,
    b"parm=pool_limit_mb:page pool limit per system heap in MiB (default: 64)\0"
);
modinfo!(PARMTYPE_FAIL_HEAP_ADD, b"parmtype=fail_heap_add:charp\0");
modinfo!(PARM_FAIL_HEAP_ADD, b"parm=fail_heap_add:fault injection for tests: registering the heap of this name fails with ENOMEM (default: none)\0");
modinfo!(PARMTYPE_STOP_DELAY_MS, b"parmtype=stop_delay_ms:uint\0");
modinfo!(PARM_STOP_DELAY_MS, b"parm=stop_delay_ms:for tests: on a failed load, wait this long between telling the deferred-free worker to stop and kthread_stop (default: 0)\0");

/// Reads a `charp` parameter as bytes (without the NUL).
fn charp(p: *const *mut c_char) -> &'static [u8] {
    // SAFETY: `p` points at one of the `charp` statics above. Parameters are only written by the
    // parameter core while the module is being loaded (before `init`) or through sysfs, and all
    // of them are read-only (0444) in sysfs; the string they point at is never freed while the
    // module is live.
    let s = unsafe { p.read_volatile() };
    if s.is_null() {
        return b"";
    }
    // SAFETY: `s` is a NUL-terminated string, see above.
    unsafe { crate::kapi::str::from_char_ptr(s) }
}

/// Name of the cached system heap; empty means "not registered".
pub(crate) fn system_name() -> &'static [u8] {
    charp(&raw const SYSTEM_NAME)
}

/// Name of the uncached (write-combined) system heap; empty means "not registered".
pub(crate) fn system_uncached_name() -> &'static [u8] {
    charp(&raw const SYSTEM_UNCACHED_NAME)
}

/// The `cma_heaps` specification.
pub(crate) fn cma_heaps() -> &'static [u8] {
    charp(&raw const CMA_HEAPS)
}

/// The `carveout_heaps` specification.
pub(crate) fn carveout_heaps() -> &'static [u8] {
    charp(&raw const CARVEOUT_HEAPS)
}

/// Fault injection for tests: the name of the heap whose registration is made to fail.
pub(crate) fn fail_heap_add() -> &'static [u8] {
    charp(&raw const FAIL_HEAP_ADD)
}

/// For tests: milliseconds between telling the worker to stop and `kthread_stop` on a failed
/// load, which gives a worker that returned early time to exit and be freed (KASAN then sees
/// `kthread_stop` touch it).
pub(crate) fn stop_delay_ms() -> u32 {
    // SAFETY: a plain integer parameter, read-only after load.
    unsafe { (&raw const STOP_DELAY_MS).read_volatile() }
}

/// Pool limit per system heap, in bytes.
pub(crate) fn pool_limit_bytes() -> usize {
    // SAFETY: a plain integer parameter, read-only after load.
    let mb = unsafe { (&raw const POOL_LIMIT_MB).read_volatile() };
    (mb as usize).saturating_mul(1 << 20)
}
