// SPDX-License-Identifier: GPL-2.0

//! Per-heap statistics in sysfs: `/sys/kernel/dmaheap_heaps/<heap>/`, and counters for tests and
//! debugging in debugfs: `/sys/kernel/debug/dmaheap_heaps/<heap>/`.
//!
//! | file                | meaning                                                   |
//! |---------------------|-----------------------------------------------------------|
//! | `buffers`           | live buffers                                              |
//! | `bytes`             | live bytes                                                |
//! | `watermark`         | highest `bytes` seen; writing anything resets it to `bytes` |
//! | `alloc_failures`    | failed allocations (ENOMEM, EINTR, ...)                   |
//! | `pool_bytes`        | bytes held in the page pools                              |
//! | `pool_blocks_1mib`  | pooled 1 MiB blocks (likewise `64kib`, `page`)            |
//! | `pool_limit_bytes`  | pool size limit                                           |
//! | `deferred_bytes`    | released bytes not yet zeroed/returned by the worker      |
//! | `uncached`          | 1 if CPU mappings are write-combined                      |
//! | `contiguous`        | 1 for CMA and carveout heaps (physically contiguous)      |
//! | `carveout`          | 1 for carveout heaps                                      |
//!
//! debugfs, one decimal counter per file: `pages_owned` (base pages the heap holds from the page
//! allocator, its CMA area or carveout, live, pooled or waiting for the worker: 0 once buffers
//! are closed and the pools drained, whatever else the system does), `alloc_interrupted`
//! (allocations abandoned for a fatal
//! signal), `flushes_at_alloc` / `flushes_at_recycle` (cache write-backs of zeroed memory for
//! uncached heaps, at allocation and before pooling), `syncs_for_cpu_<dir>` /
//! `syncs_for_device_<dir>` (syncs of mapped attachments in begin/end_cpu_access, by the
//! direction the attachment was mapped with: `bidirectional`, `to_device`, `from_device`).
//! At the debugfs root, root only: `hold_deferred` (Y/N) keeps the deferred-free worker from
//! taking released buffers, for tests of what reclaim does with them; `watermark_reset_delay_ms`
//! (at most `MAX_TEST_DELAY_MS`) widens the window between a watermark reset's read of the live
//! bytes and its store, for the test that an allocation inside it is not lost;
//! `alloc_zeroing_delay_ms` (likewise) makes the CMA and carveout heaps sleep before zeroing each
//! MiB of an allocation, so that a test can kill the allocating process half-way.

use crate::bindings as b;
use crate::heap::{for_each_heap, Heap};
use crate::kapi::ffi::c_char;
use crate::kapi::prelude::*;
use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering};

const NATTRS: usize = 13;
const NAMES: [&core::ffi::CStr; NATTRS] = [
    c"buffers",
    c"bytes",
    c"watermark",
    c"alloc_failures",
    c"pool_bytes",
    c"pool_blocks_1mib",
    c"pool_blocks_64kib",
    c"pool_blocks_page",
    c"pool_limit_bytes",
    c"deferred_bytes",
    c"uncached",
    c"contiguous",
    c"carveout",
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
static DEBUGFS_ROOT: AtomicPtr<b::dentry> = AtomicPtr::new(ptr::null_mut());

/// The debugfs counters of a heap: file name and counter.
fn debug_counters(h: &Heap) -> [(&'static core::ffi::CStr, &AtomicU64); 10] {
    let s = &h.stats;
    // Indexed by `enum dma_data_direction`: BIDIRECTIONAL, TO_DEVICE, FROM_DEVICE.
    let [cpu_bidi, cpu_to, cpu_from] = &s.syncs_for_cpu;
    let [dev_bidi, dev_to, dev_from] = &s.syncs_for_device;
    [
        (c"pages_owned", &s.owned_pages),
        (c"alloc_interrupted", &s.interrupted),
        (c"flushes_at_alloc", &s.flushes_at_alloc),
        (c"flushes_at_recycle", &s.flushes_at_recycle),
        (c"syncs_for_cpu_bidirectional", cpu_bidi),
        (c"syncs_for_cpu_to_device", cpu_to),
        (c"syncs_for_cpu_from_device", cpu_from),
        (c"syncs_for_device_bidirectional", dev_bidi),
        (c"syncs_for_device_to_device", dev_to),
        (c"syncs_for_device_from_device", dev_from),
    ]
}

fn value(h: &Heap, idx: usize) -> u64 {
    let s = &h.stats;
    match idx {
        0 => s.buffers.load(Ordering::Relaxed),
        1 => s.bytes.load(Ordering::Relaxed),
        2 => s.watermark.load(Ordering::Relaxed),
        3 => s.failures.load(Ordering::Relaxed),
        4 => s.pool_bytes() as u64,
        5..=7 => s
            .pool_pages
            .get(idx.wrapping_sub(5))
            .map_or(0, |n| n.load(Ordering::Relaxed) as u64),
        8 => h.pool_limit as u64,
        9 => s.deferred_bytes.load(Ordering::Relaxed),
        10 => h.uncached as u64,
        11 => !matches!(h.kind, crate::heap::Kind::System) as u64,
        _ => h.carveout().is_some() as u64,
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
unsafe extern "C" fn show(
    kobj: *mut b::kobject,
    attr: *mut b::kobj_attribute,
    buf: *mut c_char,
) -> isize {
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
            h.stats.reset_watermark();
            count as isize
        }
        _ => -(b::EINVAL as isize),
    }
}

/// Behind debugfs `dmaheap_heaps/watermark_reset_delay_ms`; 0 outside tests.
static WATERMARK_RESET_DELAY_MS: AtomicU32 = AtomicU32::new(0);
/// Behind debugfs `dmaheap_heaps/alloc_zeroing_delay_ms`; 0 outside tests.
static ALLOC_ZEROING_DELAY_MS: AtomicU32 = AtomicU32::new(0);
/// A root who writes a huge test delay slows what it delays, but not for days.
const MAX_TEST_DELAY_MS: u32 = 2000;

/// Sleeps interruptibly: a killed process wakes at once (and the zeroing loops then see the
/// signal), and a long delayed allocation never counts as a hung task.
fn test_delay(ms: &AtomicU32) {
    let ms = ms.load(Ordering::Relaxed).min(MAX_TEST_DELAY_MS);
    if ms > 0 {
        // SAFETY: a plain sleep; both callers run in process context without locks.
        unsafe { b::msleep_interruptible(ms) };
    }
}

/// Sleeps for the test delay between a watermark reset's read and its store (sysfs store:
/// process context, no lock held).
pub(crate) fn watermark_reset_test_delay() {
    test_delay(&WATERMARK_RESET_DELAY_MS);
}

/// Sleeps for the test delay before a contiguous heap zeroes one MiB of an allocation (the
/// allocating process's context, no lock held).
pub(crate) fn alloc_zeroing_test_delay() {
    test_delay(&ALLOC_ZEROING_DELAY_MS);
}

/// Creates `/sys/kernel/dmaheap_heaps`.
pub(crate) fn init() -> Result {
    // SAFETY: single-threaded module init: nothing else touches the attribute statics yet.
    unsafe {
        let (attrs_ptr, ptrs_ptr) = (&raw mut ATTRS, &raw mut ATTR_PTRS);
        let (attrs, ptrs) = (&mut *attrs_ptr, &mut *ptrs_ptr);
        // `ptrs` has one more slot than `attrs`: the NULL that ends the group's list.
        let mut idx: usize = 0;
        for ((a, name), slot) in attrs.iter_mut().zip(NAMES.iter()).zip(ptrs.iter_mut()) {
            let writable = idx == WATERMARK;
            a.attr.name = name.as_ptr().cast();
            a.attr.mode = if writable { 0o644 } else { 0o444 };
            a.show = Some(show);
            a.store = if writable { Some(store) } else { None };
            *slot = &mut a.attr;
            idx = idx.wrapping_add(1); // at most NATTRS
        }
        let group_ptr = &raw mut GROUP;
        let group = &mut *group_ptr;
        group.attrs = ptrs.as_mut_ptr();
    }
    // SAFETY: `kernel_kobj` is /sys/kernel, always present.
    let root =
        unsafe { b::kobject_create_and_add(c"dmaheap_heaps".as_ptr().cast(), b::kernel_kobj) };
    if root.is_null() {
        return Err(ENOMEM);
    }
    ROOT.store(root, Ordering::Release);
    // SAFETY: creates a debugfs directory with a static name; failure (or no debugfs) gives an
    // error pointer, which debugfs' functions accept and ignore.
    let droot = unsafe { b::debugfs_create_dir(c"dmaheap_heaps".as_ptr().cast(), ptr::null_mut()) };
    DEBUGFS_ROOT.store(droot, Ordering::Release);
    // SAFETY: the flag is a static that outlives the file (removed with the root at exit);
    // debugfs reads and writes it as a plain bool, which `AtomicBool` is laid out as.
    unsafe {
        b::debugfs_create_bool(
            c"hold_deferred".as_ptr().cast(),
            0o600,
            droot,
            crate::deferred::hold_flag(),
        );
    }
    for (name, delay) in [
        (c"watermark_reset_delay_ms", &WATERMARK_RESET_DELAY_MS),
        (c"alloc_zeroing_delay_ms", &ALLOC_ZEROING_DELAY_MS),
    ] {
        // SAFETY: as above; debugfs reads and writes a plain u32, as `AtomicU32` is laid out.
        unsafe { b::debugfs_create_u32(name.as_ptr().cast(), 0o600, droot, delay.as_ptr()) };
    }
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
        return Err(Error::from_errno(ret));
    }
    h.kobj.store(kobj, Ordering::Release);
    // SAFETY: `h.name` is NUL-terminated; the parent is our debugfs root (or an error pointer).
    let dir = unsafe {
        b::debugfs_create_dir(h.name.as_ptr().cast(), DEBUGFS_ROOT.load(Ordering::Acquire))
    };
    h.debugfs.store(dir, Ordering::Release);
    for (name, counter) in debug_counters(h) {
        // SAFETY: the counter lives as long as the heap; the file is removed with the directory
        // before a heap is ever freed (`remove_heap`). debugfs reads the u64 with a plain load,
        // which is what an `AtomicU64` holds.
        unsafe { b::debugfs_create_u64(name.as_ptr().cast(), 0o444, dir, counter.as_ptr()) };
    }
    Ok(())
}

/// Removes one heap's directory (failed load only).
pub(crate) fn remove_heap(h: &Heap) {
    let dir = h.debugfs.swap(ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: removes the heap's debugfs directory and its files (null and error pointers are
    // ignored).
    unsafe { b::debugfs_remove(dir) };
    let kobj = h.kobj.swap(ptr::null_mut(), Ordering::AcqRel);
    if !kobj.is_null() {
        // SAFETY: drops our reference; the kobject core removes the directory and its files.
        unsafe { b::kobject_put(kobj) };
    }
}

/// Removes `/sys/kernel/dmaheap_heaps` (failed load only).
pub(crate) fn exit() {
    // SAFETY: removes our debugfs root (null and error pointers are ignored).
    unsafe { b::debugfs_remove(DEBUGFS_ROOT.swap(ptr::null_mut(), Ordering::AcqRel)) };
    let root = ROOT.swap(ptr::null_mut(), Ordering::AcqRel);
    if !root.is_null() {
        // SAFETY: drops our reference.
        unsafe { b::kobject_put(root) };
    }
}
