// SPDX-License-Identifier: GPL-2.0

//! dma-buf heaps in Rust: a cached and a write-combined system-memory heap with per-order page
//! pools, deferred free and a shrinker, contiguous heaps on named CMA areas, and carveout heaps on
//! boot-reserved physical ranges managed by genalloc.
//!
//! The module registers its heaps with the kernel's dma-heap core, so they appear as
//! `/dev/dma_heap/<name>`. The dma-heap core cannot remove a heap and buffers outlive their
//! exporter's module, so after a successful load the module pins itself: it never unloads.

use core::sync::atomic::Ordering;
use kernel::prelude::*;
use kernel::str::BStr;

mod bindings;
mod buffer;
mod deferred;
mod heap;
mod params;
mod stats;

use bindings as b;
use heap::{Heap, Kind, HEAPS, MAX_HEAPS, NAME_LEN};

module! {
    type: DmaHeapModule,
    name: "dmaheap_heaps",
    author: "dmaheap-hal developers",
    description: "dma-buf heaps (system, system-uncached, CMA, carveout) in Rust",
    license: "GPL",
}

// The dma-buf core exports its API in the DMA_BUF symbol namespace (MODULE_IMPORT_NS(DMA_BUF)).
#[link_section = ".modinfo"]
#[used]
static IMPORT_NS_DMA_BUF: [u8; 18] = *b"import_ns=DMA_BUF\0";

/// `ERR_PTR` / `IS_ERR` / `PTR_ERR`.
pub(crate) mod errno {
    use kernel::error::Error;

    const MAX_ERRNO: usize = 4095;

    pub(crate) fn err_ptr<T>(e: Error) -> *mut T {
        e.to_errno() as isize as *mut T
    }

    pub(crate) fn is_err<T>(p: *const T) -> bool {
        p as usize >= (MAX_ERRNO as isize).wrapping_neg() as usize
    }

    pub(crate) fn ptr_err<T>(p: *const T) -> Error {
        Error::from_errno(p as isize as i32)
    }
}

/// The device used to write back CPU caches for uncached heaps (`dma_map` + `dma_unmap`): the
/// same thing Android's system heap does with its heap device.
#[derive(Clone, Copy)]
pub(crate) struct DmaDev(*mut b::device);

impl DmaDev {
    fn new() -> Result<Self> {
        // SAFETY: registers a new root device with a static name.
        let dev = unsafe { b::dmaheap_root_device_register(c"dmaheap_heaps".as_ptr().cast()) };
        if errno::is_err(dev) {
            return Err(errno::ptr_err(dev));
        }
        // SAFETY: `dev` is the live device just registered.
        let ret = unsafe { b::dmaheap_dma_coerce_mask_and_coherent(dev, u64::MAX) };
        if ret != 0 {
            // SAFETY: as above.
            unsafe { b::root_device_unregister(dev) };
            return Err(kernel::error::Error::from_errno(ret));
        }
        Ok(DmaDev(dev))
    }

    fn unregister(self) {
        // SAFETY: the device was registered by `new` and nothing uses it any more.
        unsafe { b::root_device_unregister(self.0) };
    }

    /// Writes back CPU caches for `bytes` bytes at `page`, so that write-combined mappings see
    /// what the CPU wrote through the cached kernel mapping. Returns false if mapping failed.
    pub(crate) fn flush(&self, page: *mut b::page, bytes: usize) -> bool {
        // SAFETY: `page` starts `bytes` bytes of memory owned by the caller; the device has a
        // 64-bit DMA mask.
        unsafe {
            let addr = b::dma_map_page_attrs(
                self.0,
                page,
                0,
                bytes,
                b::dma_data_direction_DMA_TO_DEVICE,
                0,
            );
            if b::dmaheap_dma_mapping_error(self.0, addr) != 0 {
                return false;
            }
            b::dma_unmap_page_attrs(self.0, addr, bytes, b::dma_data_direction_DMA_TO_DEVICE, 0);
        }
        true
    }
}

/// Is a dma-heap of this name registered already? Looks up /sys/class/dma_heap/<name> in sysfs'
/// kernfs tree directly (sysfs need not be mounted). `dma_heap_add` refuses duplicate names, but
/// only after earlier heaps of this module were registered, which cannot be undone.
fn heap_name_taken(name: &[u8; NAME_LEN]) -> bool {
    // SAFETY: `kernel_kobj` (/sys/kernel) is created at boot and never freed; its kernfs node's
    // parent is the sysfs root. The lookups take references that are dropped below.
    unsafe {
        let kk = b::kernel_kobj;
        if kk.is_null() || (*kk).sd.is_null() {
            return false;
        }
        let mut node = (*(*kk).sd).parent;
        let path: [*const u8; 3] = [
            c"class".as_ptr().cast(),
            c"dma_heap".as_ptr().cast(),
            name.as_ptr(),
        ];
        let mut held: [*mut b::kernfs_node; 3] = [core::ptr::null_mut(); 3];
        let mut found = true;
        for (i, comp) in path.iter().enumerate() {
            let next = b::kernfs_find_and_get_ns(node, *comp, core::ptr::null());
            if next.is_null() {
                found = false;
                break;
            }
            held[i] = next;
            node = next;
        }
        for kn in held.iter().rev() {
            if !kn.is_null() {
                b::kernfs_put(*kn);
            }
        }
        found
    }
}

struct Finder<'a> {
    name: &'a [u8],
    found: *mut b::cma,
}

/// `cma_for_each_area` callback.
///
/// # Safety
/// `data` is the `Finder` that `lookup_cma` passes.
unsafe extern "C" fn find_cma(cma: *mut b::cma, data: *mut core::ffi::c_void) -> core::ffi::c_int {
    // SAFETY: `data` is the `Finder` passed by `lookup_cma`; `cma` is a live area.
    let (f, name) = unsafe { (&mut *(data as *mut Finder<'_>), b::cma_get_name(cma)) };
    // SAFETY: CMA area names are NUL-terminated strings.
    if !name.is_null() && unsafe { kernel::str::CStr::from_char_ptr(name) }.as_bytes() == f.name {
        f.found = cma;
        return 1;
    }
    0
}

fn lookup_cma(area: &[u8]) -> *mut b::cma {
    if area == b"default" {
        // SAFETY: set once at boot.
        return unsafe { b::dma_contiguous_default_area };
    }
    let mut f = Finder {
        name: area,
        found: core::ptr::null_mut(),
    };
    // SAFETY: `find_cma` only uses `f` during the call.
    unsafe { b::cma_for_each_area(Some(find_cma), &mut f as *mut Finder<'_> as *mut _) };
    f.found
}

/// What a heap is made of, as the parameters say.
enum SpecKind {
    System,
    Cma(*mut b::cma),
    Carveout { base: u64, size: usize },
}

struct Spec {
    name: &'static [u8],
    uncached: bool,
    kind: SpecKind,
}

/// Parses `0x...` or decimal, with an optional K/M/G suffix.
fn parse_size(s: &[u8]) -> Option<u64> {
    let (digits, shift) = match s.last()? {
        b'K' | b'k' => (&s[..s.len() - 1], 10),
        b'M' | b'm' => (&s[..s.len() - 1], 20),
        b'G' | b'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let (digits, radix) = match digits {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        _ => (digits, 10),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        let x = (d as char).to_digit(radix)? as u64;
        v = v.checked_mul(radix as u64)?.checked_add(x)?;
    }
    v.checked_mul(1 << shift)
}

fn collect_specs() -> Result<KVec<Spec>> {
    let mut specs = KVec::new();
    if !params::system_name().is_empty() {
        specs.push(
            Spec {
                name: params::system_name(),
                uncached: false,
                kind: SpecKind::System,
            },
            GFP_KERNEL,
        )?;
    }
    if !params::system_uncached_name().is_empty() {
        specs.push(
            Spec {
                name: params::system_uncached_name(),
                uncached: true,
                kind: SpecKind::System,
            },
            GFP_KERNEL,
        )?;
    }
    for item in params::cma_heaps()
        .split(|&c| c == b',')
        .filter(|s| !s.is_empty())
    {
        let mut parts = item.split(|&c| c == b':');
        let name = parts.next().unwrap_or(b"");
        let area = parts.next().unwrap_or(b"");
        let uncached = match parts.next() {
            None => false,
            Some(b"uncached") => true,
            Some(other) => {
                pr_err!(
                    "cma_heaps: unknown option '{}' (only 'uncached')\n",
                    BStr::from_bytes(other)
                );
                return Err(EINVAL);
            }
        };
        if name.is_empty() || area.is_empty() || parts.next().is_some() {
            pr_err!(
                "cma_heaps: '{}' is not NAME:AREA[:uncached]\n",
                BStr::from_bytes(item)
            );
            return Err(EINVAL);
        }
        let cma = lookup_cma(area);
        if cma.is_null() {
            pr_err!(
                "cma_heaps: no CMA area named '{}'\n",
                BStr::from_bytes(area)
            );
            return Err(ENODEV);
        }
        specs.push(
            Spec {
                name,
                uncached,
                kind: SpecKind::Cma(cma),
            },
            GFP_KERNEL,
        )?;
    }
    for item in params::carveout_heaps()
        .split(|&c| c == b',')
        .filter(|s| !s.is_empty())
    {
        let mut parts = item.split(|&c| c == b':');
        let (name, base, size) = (
            parts.next(),
            parts.next().and_then(parse_size),
            parts.next().and_then(parse_size),
        );
        let (Some(name), Some(base), Some(size), None) = (name, base, size, parts.next()) else {
            pr_err!(
                "carveout_heaps: '{}' is not NAME:BASE:SIZE\n",
                BStr::from_bytes(item)
            );
            return Err(EINVAL);
        };
        let Ok(size) = usize::try_from(size) else {
            return Err(EINVAL);
        };
        // Memory without a kernel mapping can only be mapped uncached.
        specs.push(
            Spec {
                name,
                uncached: true,
                kind: SpecKind::Carveout { base, size },
            },
            GFP_KERNEL,
        )?;
    }
    if specs.is_empty() {
        pr_err!("no heap to register (all heap names are empty)\n");
        return Err(EINVAL);
    }
    if specs.len() > MAX_HEAPS {
        pr_err!("at most {} heaps\n", MAX_HEAPS);
        return Err(EINVAL);
    }
    Ok(specs)
}

/// `shrinker.count_objects`: pages in the pools and pages released but not yet processed by the
/// deferred-free worker.
///
/// # Safety
/// Called only by the shrinker core.
unsafe extern "C" fn shrink_count(
    _s: *mut b::shrinker,
    _sc: *mut b::shrink_control,
) -> kernel::ffi::c_ulong {
    let mut n = 0;
    heap::for_each_heap(|h| {
        n += h.pool_count()
            + (h.stats.deferred_bytes.load(Ordering::Relaxed) >> b::DMAHEAP_PAGE_SHIFT) as usize
    });
    if n == 0 {
        b::DMAHEAP_SHRINK_EMPTY as _
    } else {
        n
    }
}

/// `shrinker.scan_objects`: frees released buffers the worker has not processed yet (they would
/// only be zeroed into the pools), then pool blocks. Called from memory reclaim, it also stops
/// pooling for a while (`heap::under_pressure`).
///
/// # Safety
/// Called only by the shrinker core, with a valid `shrink_control`.
unsafe extern "C" fn shrink_scan(
    _s: *mut b::shrinker,
    sc: *mut b::shrink_control,
) -> kernel::ffi::c_ulong {
    // SAFETY: the shrinker core passes a valid control structure.
    let nr = unsafe { (*sc).nr_to_scan };
    // kswapd and direct reclaim run with PF_MEMALLOC; a scan through debugfs or drop_caches does
    // not, and is no sign of memory pressure.
    // SAFETY: reads the current task's flags.
    if unsafe { b::dmaheap_current_is_reclaiming() } {
        heap::note_reclaim();
    }
    let mut freed = deferred::reclaim(nr);
    heap::for_each_heap(|h| {
        if freed < nr {
            freed += h.pool_shrink(nr - freed);
        }
    });
    // Pages freed outside the LRU count as reclaim progress only when reported; without this,
    // direct reclaim that was satisfied by emptying the pools could still end in the OOM killer.
    // SAFETY: adds to the current task's reclaim state, if it is reclaiming.
    unsafe { b::dmaheap_mm_account_reclaimed_pages(freed) };
    if freed == 0 {
        b::DMAHEAP_SHRINK_STOP as _
    } else {
        freed
    }
}

/// Everything set up before the first heap is registered; torn down again if that fails.
struct Setup {
    dev: DmaDev,
    deferred: bool,
    stats: bool,
    nheaps: usize,
    shrinker: *mut b::shrinker,
}

impl Setup {
    fn teardown(self) {
        if !self.shrinker.is_null() {
            // SAFETY: registered by us, no heap holds pages any more after this.
            unsafe { b::shrinker_free(self.shrinker) };
        }
        for slot in HEAPS.iter().take(self.nheaps) {
            let p = slot.swap(core::ptr::null_mut(), Ordering::AcqRel);
            if p.is_null() {
                continue;
            }
            // SAFETY: `p` is a leaked heap box that was never registered, so nothing else uses it.
            let h = unsafe { KBox::from_raw(p) };
            stats::remove_heap(&h);
            h.pool_shrink(usize::MAX);
            drop(h);
        }
        if self.stats {
            stats::exit();
        }
        if self.deferred {
            deferred::stop();
        }
        self.dev.unregister();
    }
}

struct DmaHeapModule;

fn setup(specs: &[Spec], st: &mut Setup) -> Result {
    deferred::start()?;
    st.deferred = true;
    stats::init()?;
    st.stats = true;
    for (i, s) in specs.iter().enumerate() {
        let limit = params::pool_limit_bytes();
        let kind = match s.kind {
            SpecKind::System => Kind::System,
            SpecKind::Cma(c) => Kind::Cma(c),
            SpecKind::Carveout { base, size } => {
                Kind::Carveout(heap::Carveout::new(s.name, base, size)?)
            }
        };
        let h = Heap::new(s.name, s.uncached, kind, limit, st.dev)?;
        // SAFETY: the heap is never moved out of its box; it is leaked (or freed by `teardown`).
        let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(h) });
        HEAPS[i].store(raw, Ordering::Release);
        st.nheaps = i + 1;
        // SAFETY: just stored; alive until `teardown`.
        stats::add_heap(unsafe { &*raw })?;
    }
    // SAFETY: allocates a shrinker with a static name.
    let shrinker = unsafe { b::shrinker_alloc(0, c"dmaheap-pool".as_ptr().cast()) };
    if shrinker.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: a freshly allocated shrinker, not yet registered.
    unsafe {
        (*shrinker).count_objects = Some(shrink_count);
        (*shrinker).scan_objects = Some(shrink_scan);
        (*shrinker).seeks = 2; // DEFAULT_SEEKS
        b::shrinker_register(shrinker);
    }
    st.shrinker = shrinker;
    Ok(())
}

impl kernel::Module for DmaHeapModule {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let specs = collect_specs()?;
        for (i, s) in specs.iter().enumerate() {
            heap::check_name(s.name)?;
            let mut n = [0u8; NAME_LEN];
            n[..s.name.len()].copy_from_slice(s.name);
            if specs[..i].iter().any(|o| o.name == s.name) {
                pr_err!("heap name '{}' given twice\n", BStr::from_bytes(s.name));
                return Err(EINVAL);
            }
            if heap_name_taken(&n) {
                pr_err!(
                    "a dma-heap named '{}' is already registered; choose another name with the module parameters\n",
                    BStr::from_bytes(s.name)
                );
                return Err(EEXIST);
            }
        }

        let mut st = Setup {
            dev: DmaDev::new()?,
            deferred: false,
            stats: false,
            nheaps: 0,
            shrinker: core::ptr::null_mut(),
        };
        if let Err(e) = setup(&specs, &mut st) {
            st.teardown();
            return Err(e);
        }

        let mut registered = 0;
        for slot in HEAPS.iter().take(st.nheaps) {
            let h = slot.load(Ordering::Acquire);
            // SAFETY: a heap created by `setup`.
            let heap = unsafe { &*h };
            let info = b::dma_heap_export_info {
                name: heap.name.as_ptr(),
                ops: &heap::HEAP_OPS,
                priv_: h as *mut core::ffi::c_void,
            };
            let dh = if params::fail_heap_add() == heap.name() {
                pr_info!(
                    "fail_heap_add: failing the registration of '{}'\n",
                    BStr::from_bytes(heap.name())
                );
                errno::err_ptr(ENOMEM)
            } else {
                // SAFETY: `info` is valid; the name and the private data live forever once this
                // succeeds (the module pins itself below).
                unsafe { b::dma_heap_add(&info) }
            };
            if errno::is_err(dh) {
                let e = errno::ptr_err(dh);
                pr_err!(
                    "registering heap '{}' failed ({:?})\n",
                    BStr::from_bytes(heap.name()),
                    e
                );
                if registered == 0 {
                    st.teardown();
                    return Err(e);
                }
                // Earlier heaps are live and cannot be removed: stay loaded with them, and free
                // this one (its pools are empty, nobody saw it; a carveout gives its range back).
                slot.store(core::ptr::null_mut(), Ordering::Release);
                stats::remove_heap(heap);
                // SAFETY: `h` is a leaked heap box that the dma-heap core refused, so nothing
                // else refers to it; it was just removed from `HEAPS` and sysfs.
                drop(unsafe { KBox::from_raw(h) });
                continue;
            }
            heap.dma_heap.store(dh, Ordering::Release);
            registered += 1;
            pr_info!("registered heap '{}'\n", BStr::from_bytes(heap.name()));
        }
        // Never unload: the dma-heap core cannot remove a heap, and buffers outlive their heap.
        // SAFETY: takes a reference on THIS_MODULE, which is live (we are in its init).
        unsafe { b::dmaheap_module_get() };
        Ok(DmaHeapModule)
    }
}
