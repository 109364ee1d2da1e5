// SPDX-License-Identifier: GPL-2.0

//! dma-buf heaps in Rust: a cached and a write-combined system-memory heap with per-order page
//! pools, deferred free and a shrinker, contiguous heaps on named CMA areas, and carveout heaps on
//! boot-reserved physical ranges managed by genalloc.
//!
//! The module registers its heaps with the kernel's dma-heap core, so they appear as
//! `/dev/dma_heap/<name>`. The dma-heap core cannot remove a heap and buffers outlive their
//! exporter's module, so after a successful load the module pins itself: it never unloads.

use core::ffi::c_int;
use core::sync::atomic::Ordering;

mod bindings;
mod buffer;
mod deferred;
mod heap;
mod kapi;
mod params;
mod stats;

use bindings as b;
use heap::{Heap, Kind, HEAPS, MAX_HEAPS, NAME_LEN};
use kapi::error::from_err_ptr;
use kapi::prelude::*;
use kapi::str::precision;

modinfo!(MODINFO_LICENSE, b"license=GPL\0");
modinfo!(MODINFO_AUTHOR, b"author=dmaheap-hal developers\0");
modinfo!(
    MODINFO_DESCRIPTION,
    b"description=dma-buf heaps (system, system-uncached, CMA, carveout) in Rust\0"
);
// The dma-buf core exports its API in the DMA_BUF symbol namespace (MODULE_IMPORT_NS(DMA_BUF)).
modinfo!(MODINFO_IMPORT_NS_DMA_BUF, b"import_ns=DMA_BUF\0");

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
        for (comp, slot) in path.iter().zip(held.iter_mut()) {
            let next = b::kernfs_find_and_get_ns(node, *comp, core::ptr::null());
            if next.is_null() {
                found = false;
                break;
            }
            *slot = next;
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
unsafe extern "C" fn find_cma(cma: *mut b::cma, data: *mut core::ffi::c_void) -> c_int {
    // SAFETY: `data` is the `Finder` passed by `lookup_cma`; `cma` is a live area.
    let (f, name) = unsafe { (&mut *(data as *mut Finder<'_>), b::cma_get_name(cma)) };
    // SAFETY: CMA area names are NUL-terminated strings that live as long as the area.
    if !name.is_null() && unsafe { kapi::str::from_char_ptr(name) } == f.name {
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
#[derive(Clone, Copy)]
enum SpecKind {
    System,
    Cma(*mut b::cma),
    Carveout { base: u64, size: usize },
}

#[derive(Clone, Copy)]
struct Spec {
    name: &'static [u8],
    uncached: bool,
    kind: SpecKind,
}

/// The value of an ASCII digit in `radix` (10 or 16).
fn digit(c: u8, radix: u64) -> Option<u64> {
    let v = match c {
        b'0'..=b'9' => c.wrapping_sub(b'0'),
        b'a'..=b'f' => c.wrapping_sub(b'a').wrapping_add(10),
        b'A'..=b'F' => c.wrapping_sub(b'A').wrapping_add(10),
        _ => return None,
    };
    (u64::from(v) < radix).then_some(u64::from(v))
}

/// Parses `0x...` or decimal, with an optional K/M/G suffix.
fn parse_size(s: &[u8]) -> Option<u64> {
    let (&last, head) = s.split_last()?;
    let (digits, shift) = match last {
        b'K' | b'k' => (head, 10),
        b'M' | b'm' => (head, 20),
        b'G' | b'g' => (head, 30),
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
        v = v.checked_mul(radix)?.checked_add(digit(d, radix)?)?;
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
                    "cma_heaps: unknown option '%.*s' (only 'uncached')\n",
                    precision(other),
                    other.as_ptr()
                );
                return Err(EINVAL);
            }
        };
        if name.is_empty() || area.is_empty() || parts.next().is_some() {
            pr_err!(
                "cma_heaps: '%.*s' is not NAME:AREA[:uncached]\n",
                precision(item),
                item.as_ptr()
            );
            return Err(EINVAL);
        }
        let cma = lookup_cma(area);
        if cma.is_null() {
            pr_err!(
                "cma_heaps: no CMA area named '%.*s'\n",
                precision(area),
                area.as_ptr()
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
                "carveout_heaps: '%.*s' is not NAME:BASE:SIZE\n",
                precision(item),
                item.as_ptr()
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
        pr_err!("at most %zu heaps\n", MAX_HEAPS);
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
) -> crate::kapi::ffi::c_ulong {
    let mut n: usize = 0;
    heap::for_each_heap(|h| {
        let deferred = h.stats.deferred_bytes.load(Ordering::Relaxed) >> b::DMAHEAP_PAGE_SHIFT;
        n = n
            .saturating_add(h.pool_count())
            .saturating_add(usize::try_from(deferred).unwrap_or(usize::MAX));
    });
    if n == 0 {
        b::DMAHEAP_SHRINK_EMPTY as _
    } else {
        n as _
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
) -> crate::kapi::ffi::c_ulong {
    // SAFETY: the shrinker core passes a valid control structure.
    let nr = unsafe { (*sc).nr_to_scan } as usize;
    // kswapd and direct reclaim run with PF_MEMALLOC; a scan through debugfs or drop_caches does
    // not, and is no sign of memory pressure.
    // SAFETY: reads the current task's flags.
    if unsafe { b::dmaheap_current_is_reclaiming() } {
        heap::note_reclaim();
    }
    let mut freed = deferred::reclaim(nr);
    heap::for_each_heap(|h| {
        if freed < nr {
            freed = freed.saturating_add(h.pool_shrink(nr.saturating_sub(freed)));
        }
    });
    // Pages freed outside the LRU count as reclaim progress only when reported; without this,
    // direct reclaim that was satisfied by emptying the pools could still end in the OOM killer.
    // SAFETY: adds to the current task's reclaim state, if it is reclaiming.
    unsafe { b::dmaheap_mm_account_reclaimed_pages(freed as _) };
    if freed == 0 {
        b::DMAHEAP_SHRINK_STOP as _
    } else {
        freed as _
    }
}

/// Everything set up before the first heap is registered; torn down again if that fails.
struct Setup {
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
    }
}

fn setup(specs: &[Spec], st: &mut Setup) -> Result {
    deferred::start()?;
    st.deferred = true;
    stats::init()?;
    st.stats = true;
    for (s, slot) in specs.iter().zip(HEAPS.iter()) {
        let limit = params::pool_limit_bytes();
        let kind = match s.kind {
            SpecKind::System => Kind::System,
            SpecKind::Cma(c) => Kind::Cma(c),
            SpecKind::Carveout { base, size } => {
                Kind::Carveout(heap::Carveout::new(s.name, base, size)?)
            }
        };
        let raw = KBox::into_raw(Heap::new(s.name, s.uncached, kind, limit)?);
        slot.store(raw, Ordering::Release);
        st.nheaps = st.nheaps.saturating_add(1);
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

/// Checks the heap names before anything is set up: each valid, none twice, none taken.
fn check_names(specs: &[Spec]) -> Result {
    for (i, s) in specs.iter().enumerate() {
        heap::check_name(s.name)?;
        let earlier = specs.get(..i).unwrap_or(&[]);
        if earlier.iter().any(|o| o.name == s.name) {
            pr_err!(
                "heap name '%.*s' given twice\n",
                precision(s.name),
                s.name.as_ptr()
            );
            return Err(EINVAL);
        }
        if heap_name_taken(&heap::nul_terminated(s.name)) {
            pr_err!(
                "a dma-heap named '%.*s' is already registered; choose another name with the module parameters\n",
                precision(s.name),
                s.name.as_ptr()
            );
            return Err(EEXIST);
        }
    }
    Ok(())
}

/// Registers the heaps that `setup` created. Fails, with nothing registered, if the first
/// registration fails; a later failure only drops that heap.
fn register_heaps(nheaps: usize) -> Result {
    let mut registered: usize = 0;
    for slot in HEAPS.iter().take(nheaps) {
        let h = slot.load(Ordering::Acquire);
        // SAFETY: a heap created by `setup`.
        let heap = unsafe { &*h };
        let info = b::dma_heap_export_info {
            name: heap.name.as_ptr(),
            ops: &heap::HEAP_OPS,
            priv_: h as *mut core::ffi::c_void,
        };
        let added = if params::fail_heap_add() == heap.name() {
            pr_info!(
                "fail_heap_add: failing the registration of '%.*s'\n",
                precision(heap.name()),
                heap.name().as_ptr()
            );
            Err(ENOMEM)
        } else {
            // SAFETY: `info` is valid; the name and the private data live forever once this
            // succeeds (the module pins itself).
            from_err_ptr(unsafe { b::dma_heap_add(&info) })
        };
        let dh = match added {
            Ok(dh) => dh,
            Err(e) => {
                pr_err!(
                    "registering heap '%.*s' failed (%d)\n",
                    precision(heap.name()),
                    heap.name().as_ptr(),
                    e.to_errno()
                );
                if registered == 0 {
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
        };
        heap.registered(dh);
        registered = registered.saturating_add(1);
        pr_info!(
            "registered heap '%.*s'\n",
            precision(heap.name()),
            heap.name().as_ptr()
        );
    }
    Ok(())
}

fn init() -> Result {
    let specs = collect_specs()?;
    check_names(&specs)?;
    let mut st = Setup {
        deferred: false,
        stats: false,
        nheaps: 0,
        shrinker: core::ptr::null_mut(),
    };
    if let Err(e) = setup(&specs, &mut st) {
        st.teardown();
        return Err(e);
    }
    if let Err(e) = register_heaps(st.nheaps) {
        // Nothing is visible yet, so everything can go.
        st.teardown();
        return Err(e);
    }
    // Never unload: the dma-heap core cannot remove a heap, and buffers outlive their heap.
    // SAFETY: takes a reference on THIS_MODULE, which is live (we are in its init).
    unsafe { b::dmaheap_module_get() };
    Ok(())
}

/// The module's init function (`module_init`). There is no exit function: the module pins
/// itself once a heap is registered, so the kernel refuses to unload it.
#[no_mangle]
pub extern "C" fn init_module() -> c_int {
    match init() {
        Ok(()) => 0,
        Err(e) => e.to_errno(),
    }
}

/// C's `module_init` marks the init function as taken by address (`___ADDRESSABLE`): the kernel
/// calls it through a pointer, so on x86 with IBT objtool must keep its ENDBR landing pad.
#[allow(non_upper_case_globals)]
#[link_section = ".init.data"]
#[used]
static __UNIQUE_ID___addressable_init_module: extern "C" fn() -> c_int = init_module;
