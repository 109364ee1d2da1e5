// SPDX-License-Identifier: GPL-2.0

//! Per-heap statistics in sysfs: `/sys/kernel/dmaheap_heaps/<heap>/`.
//!
//! | file                | meaning                                                   |
//! |---------------------|-----------------------------------------------------------|
//! | `buffers`           | live buffers                                              |
//! | `bytes`             | live bytes                                                |
//! | `watermark`         | highest `bytes` seen; writing anything resets it to `bytes` |
//! | `alloc_failures`    | failed allocations (ENOMEM, EINTR, ...)                   |
//! | `pool_bytes`        | bytes held in the page pools                              |
//! | `pool_pages_order8` | pooled 1 MiB blocks (likewise `order4`, `order0`)         |
//! | `pool_limit_bytes`  | pool size limit                                           |
//! | `deferred_bytes`    | released bytes not yet zeroed/returned by the worker      |
//! | `uncached`          | 1 if CPU mappings are write-combined                      |
//! | `contiguous`        | 1 for CMA and carveout heaps (physically contiguous)      |

use crate::bindings as b;
use crate::heap::{for_each_heap, Heap};
use kernel::ffi::c_char;
use core::ptr;
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::error::code::ENOMEM;
use kernel::prelude::*;

const NATTRS: usize = 12;
const NAMES: [&core::ffi::CStr; NATTRS] = [
    c"buffers",
    c"bytes",
    c"watermark",
    c"alloc_failures",
    c"pool_bytes",
    c"pool_pages_order8",
    c"pool_pages_order4",
    c"pool_pages_order0",
    c"pool_limit_bytes",
    c"deferred_bytes",
    c"uncached",
    c"contiguous",
];
const WATERMARK: usize = 2;

static mut ATTRS: [b::kobj_attribute; NATTRS] = [const {
    // SAFETY: an all-zero `kobj_attribute` is valid (null name and callbacks); it is filled in by
    // `init` before use.
    unsafe { core::mem::zeroed() }
}; NATTRS];
static mut ATTR_PTRS: [*mut b::attribute; NATTRS + 1] = [ptr::null_mut(); NATTRS + 1];
// SAFETY: as for `ATTRS`.
static mut GROUP: b::attribute_group = unsafe { core::mem::zeroed() };

static ROOT: AtomicPtr<b::kobject> = AtomicPtr::new(ptr::null_mut());

fn value(h: &Heap, idx: usize) -> u64 {
    let s = &h.stats;
    match idx {
        0 => s.buffers.load(Ordering::Relaxed),
        1 => s.bytes.load(Ordering::Relaxed),
        2 => s.watermark.load(Ordering::Relaxed),
        3 => s.failures.load(Ordering::Relaxed),
        4 => s.pool_bytes() as u64,
        5..=7 => s.pool_pages[idx - 5].load(Ordering::Relaxed) as u64,
        8 => h.pool_limit as u64,
        9 => s.deferred_bytes.load(Ordering::Relaxed),
        10 => h.uncached as u64,
        _ => !matches!(h.kind, crate::heap::Kind::System) as u64,
    }
}

fn lookup(kobj: *mut b::kobject, attr: *mut b::kobj_attribute) -> Option<(&'static Heap, usize)> {
    let base = (&raw mut ATTRS) as *mut b::kobj_attribute;
    let idx = (0..NATTRS).find(|&i| ptr::eq(base.wrapping_add(i), attr))?;
    let mut found = None;
    for_each_heap(|h| {
        if h.kobj.load(Ordering::Acquire) == kobj {
            found = Some(h);
        }
    });
    found.map(|h| (h, idx))
}

/// `kobj_attribute.show`.
///
/// # Safety
/// Called only by sysfs, for one of our attributes, with a `PAGE_SIZE` buffer.
unsafe extern "C" fn show(kobj: *mut b::kobject, attr: *mut b::kobj_attribute, buf: *mut c_char) -> isize {
    let Some((h, idx)) = lookup(kobj, attr) else {
        return -(b::EINVAL as isize);
    };
    // SAFETY: `buf` is the PAGE_SIZE sysfs buffer; the format takes one u64.
    unsafe { b::sysfs_emit(buf as *mut _, c"%llu\n".as_ptr().cast(), value(h, idx)) as isize }
}

/// `kobj_attribute.store` (the watermark only).
///
/// # Safety
/// Called only by sysfs, for one of our attributes.
unsafe extern "C" fn store(
    kobj: *mut b::kobject,
    attr: *mut b::kobj_attribute,
    _buf: *const c_char,
    count: usize,
) -> isize {
    match lookup(kobj, attr) {
        Some((h, WATERMARK)) => {
            h.stats.watermark.store(h.stats.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
            count as isize
        }
        _ => -(b::EINVAL as isize),
    }
}

/// Creates `/sys/kernel/dmaheap_heaps`.
pub(crate) fn init() -> Result {
    // SAFETY: single-threaded module init: nothing else touches the attribute statics yet.
    unsafe {
        let (attrs_ptr, ptrs_ptr) = (&raw mut ATTRS, &raw mut ATTR_PTRS);
        let (attrs, ptrs) = (&mut *attrs_ptr, &mut *ptrs_ptr);
        for (i, a) in attrs.iter_mut().enumerate() {
            a.attr.name = NAMES[i].as_ptr().cast();
            a.attr.mode = if i == WATERMARK { 0o644 } else { 0o444 };
            a.show = Some(show);
            a.store = if i == WATERMARK { Some(store) } else { None };
            ptrs[i] = &mut a.attr;
        }
        let group_ptr = &raw mut GROUP;
        let group = &mut *group_ptr;
        group.attrs = ptrs.as_mut_ptr();
    }
    // SAFETY: `kernel_kobj` is /sys/kernel, always present.
    let root = unsafe { b::kobject_create_and_add(c"dmaheap_heaps".as_ptr().cast(), b::kernel_kobj) };
    if root.is_null() {
        return Err(ENOMEM);
    }
    ROOT.store(root, Ordering::Release);
    Ok(())
}

/// Creates the directory of one heap.
pub(crate) fn add_heap(h: &Heap) -> Result {
    let root = ROOT.load(Ordering::Acquire);
    // SAFETY: `h.name` is NUL-terminated; `root` is live.
    let kobj = unsafe { b::kobject_create_and_add(h.name.as_ptr(), root) };
    if kobj.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: the group was set up by `init`; `kobj` is live.
    let ret = unsafe { b::sysfs_create_group(kobj, &raw const GROUP) };
    if ret != 0 {
        // SAFETY: drops the only reference.
        unsafe { b::kobject_put(kobj) };
        return Err(kernel::error::Error::from_errno(ret));
    }
    h.kobj.store(kobj, Ordering::Release);
    Ok(())
}

/// Removes one heap's directory (failed load only).
pub(crate) fn remove_heap(h: &Heap) {
    let kobj = h.kobj.swap(ptr::null_mut(), Ordering::AcqRel);
    if !kobj.is_null() {
        // SAFETY: drops our reference; the kobject core removes the directory and its files.
        unsafe { b::kobject_put(kobj) };
    }
}

/// Removes `/sys/kernel/dmaheap_heaps` (failed load only).
pub(crate) fn exit() {
    let root = ROOT.swap(ptr::null_mut(), Ordering::AcqRel);
    if !root.is_null() {
        // SAFETY: drops our reference.
        unsafe { b::kobject_put(root) };
    }
}
