// SPDX-License-Identifier: GPL-2.0

//! A registered heap: its backing memory (system pages with pools, or a CMA area), its
//! statistics and the allocation strategy.

use crate::bindings as b;
use crate::buffer::{Buffer, Chunk, Chunks};
use crate::kapi::prelude::*;
use crate::kapi::str::precision;
use crate::kapi::sync::SpinLock;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Block sizes of the system heaps, largest first: 1 MiB, 64 KiB and one page, the sizes IOMMUs
/// map efficiently. The sizes are fixed in bytes; the page orders follow from the page size
/// (8, 4, 0 with 4 KiB pages; 6, 2, 0 with 16 KiB pages; 4, 0, 0 with 64 KiB pages, where the
/// 64 KiB class is the page class and the last pool stays empty).
pub(crate) const BLOCK_BYTES: [usize; 3] = [1 << 20, 1 << 16, PAGE_SIZE];
/// The page order of each block size.
pub(crate) const ORDERS: [u32; 3] = [order_of(BLOCK_BYTES[0]), order_of(BLOCK_BYTES[1]), 0];
pub(crate) const NUM_ORDERS: usize = ORDERS.len();

const PAGE_SIZE: usize = b::DMAHEAP_PAGE_SIZE as usize;
const PAGE_SHIFT: u32 = b::DMAHEAP_PAGE_SHIFT;

/// The page order of a power-of-two block of `bytes` (0 for a page or less).
const fn order_of(bytes: usize) -> u32 {
    if bytes <= PAGE_SIZE {
        0
    } else {
        bytes.trailing_zeros().saturating_sub(PAGE_SHIFT)
    }
}

/// The smallest order whose block holds `pages` pages (the kernel's `get_order`, in pages):
/// no shift that can overflow, whatever `pages` is.
pub(crate) fn order_for_pages(pages: usize) -> u32 {
    if pages <= 1 {
        0
    } else {
        usize::BITS.wrapping_sub(pages.wrapping_sub(1).leading_zeros())
    }
}

/// Bytes of a block of pool `idx`.
pub(crate) fn block_bytes(idx: usize) -> usize {
    POOL_BLOCK_BYTES.get(idx).copied().unwrap_or(PAGE_SIZE)
}

/// Bytes of a block of each pool, at compile time: `BLOCK_BYTES` as the page size allows it
/// (the 64 KiB class is one page with 64 KiB pages).
const POOL_BLOCK_BYTES: [usize; NUM_ORDERS] = [
    PAGE_SIZE << ORDERS[0],
    PAGE_SIZE << ORDERS[1],
    PAGE_SIZE << ORDERS[2],
];

/// Pages in a block of `order`; orders are below 64 by construction (at most `ORDERS[0]`, or
/// `order_for_pages` of a page count).
pub(crate) fn pages_of_order(order: u32) -> usize {
    1usize.wrapping_shl(order)
}

/// The page order of pool `idx`'s blocks.
fn order_of_pool(idx: usize) -> u32 {
    ORDERS.get(idx).copied().unwrap_or(0)
}

/// The pool index of a block order (the first class of that order).
fn pool_index(order: u32) -> Option<usize> {
    ORDERS.iter().position(|&o| o == order)
}

/// Maximum number of heaps this module registers.
pub(crate) const MAX_HEAPS: usize = 8;
/// Maximum heap name length, including the NUL.
pub(crate) const NAME_LEN: usize = 64;

/// Every heap this module created and did not destroy; heaps are never removed once registered.
pub(crate) static HEAPS: [AtomicPtr<Heap>; MAX_HEAPS] =
    [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_HEAPS];

/// Iterates over the live heaps.
pub(crate) fn for_each_heap(mut f: impl FnMut(&'static Heap)) {
    for slot in HEAPS.iter() {
        let p = slot.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: heaps in `HEAPS` are leaked boxes that stay alive as long as they are
            // listed, and are only removed (during a failed load) before any user could see them.
            f(unsafe { &*p });
        }
    }
}

/// Checks a heap name: 1 to `NAME_LEN - 1` bytes, no NUL, no '/' (it names a device node and a
/// sysfs directory) and no '%': the 6.12 dma-heap core passes the name to `device_create` as
/// its format string, so `%n` or `%s` in a name would be interpreted there.
pub(crate) fn check_name(name: &[u8]) -> Result {
    if name.is_empty()
        || name.len() >= NAME_LEN
        || name.iter().any(|&c| matches!(c, 0 | b'/' | b'%'))
    {
        pr_err!(
            "invalid heap name '%.*s': 1 to %zu characters, none of '/', '%%'\n",
            precision(name),
            name.as_ptr(),
            NAME_LEN - 1
        );
        return Err(EINVAL);
    }
    Ok(())
}

/// `name` with a NUL after it, as the dma-heap core and sysfs take it; `check_name` has made
/// sure it fits.
pub(crate) fn nul_terminated(name: &[u8]) -> [u8; NAME_LEN] {
    let mut n = [0u8; NAME_LEN];
    for (dst, &src) in n.iter_mut().take(NAME_LEN - 1).zip(name) {
        *dst = src;
    }
    n
}

/// Counts a pooled block as reclaimable kernel memory (`KReclaimable` in /proc/meminfo), as
/// Android's page pools do: the shrinker gives it back on demand, so MemAvailable includes it.
fn account_pooled(page: PagePtr, order: u32, pooled: bool) {
    let pages = pages_of_order(order) as isize;
    // SAFETY: `page` is a block this module owns; the counter update is interrupt-safe.
    unsafe {
        b::dmaheap_mod_reclaimable(
            page.0,
            if pooled { pages } else { pages.wrapping_neg() } as _,
        )
    };
}

fn gfp_for_order(order: u32) -> b::gfp_t {
    if order > 0 {
        // High orders: no direct reclaim, no retries, no warnings; fall back to a smaller order.
        ((b::DMAHEAP_GFP_HIGHUSER
            | b::DMAHEAP_GFP_ZERO
            | b::DMAHEAP_GFP_NOWARN
            | b::DMAHEAP_GFP_NORETRY)
            & !b::DMAHEAP_GFP_RECLAIM)
            | b::DMAHEAP_GFP_COMP
    } else {
        // Failure is reported to the caller as ENOMEM and counted in `alloc_failures`.
        b::DMAHEAP_GFP_HIGHUSER | b::DMAHEAP_GFP_ZERO | b::DMAHEAP_GFP_NOWARN
    }
}

/// A page (or high-order block) owned by this module.
#[derive(Clone, Copy)]
pub(crate) struct PagePtr(pub(crate) *mut b::page);

// SAFETY: a `PagePtr` is just the identity of a page the module owns; pages may be handed over
// between threads.
unsafe impl Send for PagePtr {}

/// Pooled, zeroed (and for uncached heaps, flushed) blocks per order.
pub(crate) struct PoolLists {
    lists: [KVec<PagePtr>; NUM_ORDERS],
}

/// What backs a heap.
pub(crate) enum Kind {
    /// System memory with page pools.
    System,
    /// A CMA area.
    Cma(*mut b::cma),
    /// A physical range reserved at boot, managed by genalloc.
    Carveout(Carveout),
}

/// A carveout: a physical range reserved at boot (`memmap=`, a `no-map` reserved-memory node).
/// It has no kernel linear mapping and possibly no `struct page`, so it is only ever mapped
/// write-combined (the module's own `memremap` for zeroing and vmap, user mappings through
/// `remap_pfn_range`), and importers get DMA addresses from `dma_map_resource`, no pages.
pub(crate) struct Carveout {
    pub(crate) pool: *mut b::gen_pool,
    pub(crate) base: u64,
    pub(crate) size: usize,
    pub(crate) va: *mut u8,
}

impl Carveout {
    /// Claims `[base, base + size)` and puts it under genalloc.
    pub(crate) fn new(name: &[u8], base: u64, size: usize) -> Result<Carveout> {
        let page = PAGE_SIZE as u64;
        if size == 0
            || base == 0
            || base % page != 0
            || size as u64 % page != 0
            || base.checked_add(size as u64).is_none()
        {
            pr_err!(
                "carveout %.*s: base and size must be non-zero multiples of the page size\n",
                precision(name),
                name.as_ptr()
            );
            return Err(EINVAL);
        }
        // SAFETY: trivial query.
        if !unsafe { b::dmaheap_have_genalloc() } {
            pr_err!("carveout heaps need a kernel with CONFIG_GENERIC_ALLOCATOR\n");
            return Err(ENODEV);
        }
        // System RAM cannot be a carveout: the kernel owns it, and `memremap` refuses (with a
        // warning) to map it write-combined. Say so clearly before anything is claimed.
        if overlaps_system_ram(base, size) {
            pr_err!(
                "carveout %.*s: %#llx+%#llx overlaps System RAM; reserve it at boot (memmap=SIZE$BASE, a no-map reserved-memory node)\n",
                precision(name),
                name.as_ptr(),
                base,
                size as u64
            );
            return Err(EINVAL);
        }
        // SAFETY: claims the range in the iomem tree with a static name.
        let res = unsafe {
            b::dmaheap_request_mem_region(base, size as u64, c"dmaheap carveout".as_ptr().cast())
        };
        if res.is_null() {
            pr_err!(
                "carveout %.*s: %#llx+%#llx is in use\n",
                precision(name),
                name.as_ptr(),
                base,
                size as u64
            );
            return Err(EBUSY);
        }
        // SAFETY: maps the range we just claimed, write-combined.
        let va = unsafe { b::memremap(base, size, b::MEMREMAP_WC as _) } as *mut u8;
        if va.is_null() {
            // SAFETY: releases the claim made above.
            unsafe { b::dmaheap_release_mem_region(base, size as u64) };
            return Err(ENOMEM);
        }
        let mut c = Carveout {
            pool: core::ptr::null_mut(),
            base,
            size,
            va,
        };
        // SAFETY: creates an empty pool.
        c.pool = unsafe { b::dmaheap_gen_pool_create(PAGE_SHIFT as i32, b::DMAHEAP_NUMA_NO_NODE) };
        if c.pool.is_null() {
            return Err(ENOMEM); // `c` releases the mapping and the region.
        }
        // SAFETY: adds the claimed range to our pool.
        let ret =
            unsafe { b::dmaheap_gen_pool_add(c.pool, base as _, size, b::DMAHEAP_NUMA_NO_NODE) };
        crate::kapi::error::to_result(ret)?;
        Ok(c)
    }
}

/// Does `[base, base + size)` (page-aligned, checked not to wrap) hold a page of System RAM?
/// Asks the resource tree page by page (`page_is_ram`), at load time only.
fn overlaps_system_ram(base: u64, size: usize) -> bool {
    let first = base >> PAGE_SHIFT;
    let pages = (size as u64) >> PAGE_SHIFT;
    (0..pages).any(|i| {
        // SAFETY: a read-only walk of the resource tree for one pfn.
        unsafe { b::page_is_ram(first.wrapping_add(i) as _) != 0 }
    })
}

impl Drop for Carveout {
    fn drop(&mut self) {
        // Only reached when loading fails, before any allocation: the pool is empty.
        // SAFETY: the pool, mapping and region were set up by `new` and are unused.
        unsafe {
            if !self.pool.is_null() {
                b::dmaheap_gen_pool_destroy(self.pool);
            }
            b::memunmap(self.va.cast());
            b::dmaheap_release_mem_region(self.base, self.size as u64);
        }
    }
}

/// Per-heap statistics (exported in sysfs and debugfs by `stats.rs`).
pub(crate) struct Stats {
    pub(crate) buffers: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) watermark: AtomicU64,
    pub(crate) failures: AtomicU64,
    pub(crate) deferred_bytes: AtomicU64,
    pub(crate) pool_pages: [AtomicUsize; NUM_ORDERS],
    /// Base pages this heap holds from the page allocator, its CMA area or its carveout: in live
    /// buffers, pools and buffers waiting for the worker (debugfs `pages_owned`). Counted where
    /// a block is taken and where it is given back, so a leak shows exactly, at any noise level.
    pub(crate) owned_pages: AtomicU64,
    /// Allocations abandoned because the caller got a fatal signal (debugfs).
    pub(crate) interrupted: AtomicU64,
    /// Cache write-backs of freshly zeroed memory at allocation (uncached heaps; debugfs).
    pub(crate) flushes_at_alloc: AtomicU64,
    /// Cache write-backs of blocks zeroed by the worker before they enter a pool (debugfs).
    pub(crate) flushes_at_recycle: AtomicU64,
    /// `dma_sync_*_for_cpu` calls in `begin_cpu_access`, by mapping direction (debugfs).
    pub(crate) syncs_for_cpu: [AtomicU64; 3],
    /// `dma_sync_*_for_device` calls in `end_cpu_access`, by mapping direction (debugfs).
    pub(crate) syncs_for_device: [AtomicU64; 3],
}

impl Stats {
    const fn new() -> Self {
        Stats {
            buffers: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            watermark: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            deferred_bytes: AtomicU64::new(0),
            pool_pages: [const { AtomicUsize::new(0) }; NUM_ORDERS],
            owned_pages: AtomicU64::new(0),
            interrupted: AtomicU64::new(0),
            flushes_at_alloc: AtomicU64::new(0),
            flushes_at_recycle: AtomicU64::new(0),
            syncs_for_cpu: [const { AtomicU64::new(0) }; 3],
            syncs_for_device: [const { AtomicU64::new(0) }; 3],
        }
    }

    fn take_pages(&self, pages: usize) {
        self.owned_pages.fetch_add(pages as u64, Ordering::Relaxed);
    }

    fn give_back_pages(&self, pages: usize) {
        self.owned_pages.fetch_sub(pages as u64, Ordering::Relaxed);
    }

    /// Counts `len` more live bytes and raises the watermark to the new total.
    pub(crate) fn add_bytes(&self, len: u64) {
        let now = self
            .bytes
            .fetch_add(len, Ordering::SeqCst)
            .wrapping_add(len);
        self.watermark.fetch_max(now, Ordering::SeqCst);
    }

    /// Resets the watermark to the live bytes. The second `fetch_max` covers an allocation that
    /// raised the watermark between our read of `bytes` and our store: its `fetch_add` came
    /// before its `fetch_max`, which came before our store, so our second read sees it. Without
    /// it the store could leave `watermark < bytes` until the next allocation.
    pub(crate) fn reset_watermark(&self) {
        let live = self.bytes.load(Ordering::SeqCst);
        crate::stats::watermark_reset_test_delay();
        self.watermark.store(live, Ordering::SeqCst);
        self.watermark
            .fetch_max(self.bytes.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    /// Pool size in bytes.
    pub(crate) fn pool_bytes(&self) -> usize {
        let mut total: usize = 0;
        for (n, &block) in self.pool_pages.iter().zip(POOL_BLOCK_BYTES.iter()) {
            total = total.saturating_add(n.load(Ordering::Relaxed).saturating_mul(block));
        }
        total
    }
}

/// One heap registered with the dma-heap core.
pub(crate) struct Heap {
    /// NUL-terminated; the dma-heap core keeps a pointer to it, so it lives as long as the heap.
    pub(crate) name: [u8; NAME_LEN],
    pub(crate) uncached: bool,
    pub(crate) kind: Kind,
    pub(crate) stats: Stats,
    pub(crate) pool_limit: usize,
    pool: SpinLock<PoolLists>,
    pub(crate) dma_heap: AtomicPtr<b::dma_heap>,
    pub(crate) kobj: AtomicPtr<b::kobject>,
    /// The heap's debugfs directory.
    pub(crate) debugfs: AtomicPtr<b::dentry>,
    /// The heap's own device (`dma_heap_get_dev`), set once registered with a 64-bit DMA mask:
    /// uncached heaps write back CPU caches through it, as ACK's system heap does.
    dev: AtomicPtr<b::device>,
}

// SAFETY: All mutable state is behind atomics or the pool spinlock; `kind` (a CMA area pointer,
// or a carveout's pool and mapping, which genalloc locks internally) and `dev` are immutable after
// creation and refer to kernel objects that outlive the module. `dev` is set once.
unsafe impl Sync for Heap {}
// SAFETY: see above.
unsafe impl Send for Heap {}

impl Heap {
    /// Creates (but does not register) a heap.
    pub(crate) fn new(
        name: &[u8],
        uncached: bool,
        kind: Kind,
        pool_limit: usize,
    ) -> Result<KBox<Heap>> {
        check_name(name)?;
        // Reserve the pool vectors up front so that refilling the pools never allocates.
        let limit = if matches!(kind, Kind::System) {
            pool_limit
        } else {
            0
        };
        let cap = |idx: usize| limit.checked_div(block_bytes(idx)).unwrap_or(0);
        let lists = [
            KVec::with_capacity(cap(0), GFP_KERNEL)?,
            KVec::with_capacity(cap(1), GFP_KERNEL)?,
            KVec::with_capacity(cap(2), GFP_KERNEL)?,
        ];
        let heap = KBox::new(
            Heap {
                name: nul_terminated(name),
                uncached,
                kind,
                stats: Stats::new(),
                pool_limit: limit,
                pool: SpinLock::new(PoolLists { lists }),
                dma_heap: AtomicPtr::new(core::ptr::null_mut()),
                kobj: AtomicPtr::new(core::ptr::null_mut()),
                debugfs: AtomicPtr::new(core::ptr::null_mut()),
                dev: AtomicPtr::new(core::ptr::null_mut()),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the heap stays in this box until it is freed (the box is leaked into `HEAPS`
        // or dropped whole), and nothing has used the lock yet.
        unsafe { heap.pool.init(c"dmaheap_pool", lock_class_key!()) };
        Ok(heap)
    }

    /// Called once the dma-heap core registered the heap as `dh`: gives its device the 64-bit
    /// DMA mask its cache write-backs need, then makes it the write-back device. ACK's uncached
    /// system heap does the same; until then an uncached allocation gets `EAGAIN`, as there.
    pub(crate) fn registered(&self, dh: *mut b::dma_heap) {
        self.dma_heap.store(dh, Ordering::Release);
        // SAFETY: `dh` is the live heap just registered; its device lives as long as the heap.
        let dev = unsafe { b::dma_heap_get_dev(dh) };
        // SAFETY: as above.
        if dev.is_null() || unsafe { b::dmaheap_dma_coerce_mask_and_coherent(dev, u64::MAX) } != 0 {
            pr_err!(
                "heap '%.*s': its device takes no 64-bit DMA mask; uncached allocations will fail\n",
                precision(self.name()),
                self.name().as_ptr()
            );
            return;
        }
        self.dev.store(dev, Ordering::Release);
    }

    /// The heap name without the NUL.
    pub(crate) fn name(&self) -> &[u8] {
        let len = self.name.iter().position(|&c| c == 0).unwrap_or(NAME_LEN);
        self.name.get(..len).unwrap_or(&[])
    }

    fn pool_pop(&self, idx: usize) -> Option<PagePtr> {
        let mut pool = self.pool.lock();
        let p = pool.lists.get_mut(idx)?.pop()?;
        if let Some(n) = self.stats.pool_pages.get(idx) {
            n.fetch_sub(1, Ordering::Relaxed);
        }
        drop(pool);
        account_pooled(p, order_of_pool(idx), false);
        Some(p)
    }

    /// Puts a zeroed (and, for uncached heaps, flushed) block into its pool; gives it back if the
    /// pool is full.
    fn pool_push(&self, idx: usize, page: PagePtr) -> core::result::Result<(), PagePtr> {
        let bytes = block_bytes(idx);
        let mut pool = self.pool.lock();
        if self.stats.pool_bytes().saturating_add(bytes) > self.pool_limit {
            return Err(page);
        }
        let (Some(list), Some(n)) = (pool.lists.get_mut(idx), self.stats.pool_pages.get(idx))
        else {
            return Err(page);
        };
        // The capacity was reserved for the pool limit: no allocation under the spinlock.
        list.push_within_capacity(page)?;
        n.fetch_add(1, Ordering::Relaxed);
        drop(pool);
        account_pooled(page, order_of_pool(idx), true);
        Ok(())
    }

    /// Frees up to `nr` base pages from the pools (shrinker); returns how many were freed.
    pub(crate) fn pool_shrink(&self, nr: usize) -> usize {
        let mut freed = 0;
        for (idx, &order) in ORDERS.iter().enumerate() {
            while freed < nr {
                let Some(p) = self.pool_pop(idx) else { break };
                // SAFETY: the block came from `alloc_pages` with this order and is owned by the
                // pool, which just gave it up.
                unsafe { b::__free_pages(p.0, order) };
                self.stats.give_back_pages(pages_of_order(order));
                freed = freed.saturating_add(pages_of_order(order));
            }
        }
        freed
    }

    /// Would the pools take `len` more bytes, counting what the worker has not processed yet?
    pub(crate) fn wants_recycle(&self, len: usize) -> bool {
        matches!(self.kind, Kind::System)
            && !under_pressure()
            && (self.stats.pool_bytes() as u64)
                .saturating_add(self.stats.deferred_bytes.load(Ordering::Relaxed))
                .saturating_add(len as u64)
                <= self.pool_limit as u64
    }

    /// Number of base pages held in the pools.
    pub(crate) fn pool_count(&self) -> usize {
        self.stats.pool_bytes() >> PAGE_SHIFT
    }

    /// Allocates `len` (page-aligned, non-zero) bytes of zeroed memory.
    pub(crate) fn alloc_chunks(&self, len: usize) -> Result<Chunks> {
        match &self.kind {
            Kind::System => self.alloc_system(len),
            Kind::Cma(cma) => self.alloc_cma(*cma, len),
            Kind::Carveout(c) => self.alloc_carveout(c, len),
        }
    }

    /// Is this a carveout heap (memory without `struct page` use)?
    pub(crate) fn carveout(&self) -> Option<&Carveout> {
        match &self.kind {
            Kind::Carveout(c) => Some(c),
            _ => None,
        }
    }

    fn alloc_carveout(&self, c: &Carveout, len: usize) -> Result<Chunks> {
        let mut chunks = Chunks::with_capacity(1)?;
        // SAFETY: `c.pool` is our live pool.
        let phys = unsafe { b::dmaheap_gen_pool_alloc(c.pool, len) } as u64;
        if phys == 0 {
            return Err(ENOMEM);
        }
        self.stats.take_pages(len >> PAGE_SHIFT);
        let chunk = Chunk {
            page: core::ptr::null_mut(),
            phys,
            order: u32::MAX,
            npages: len >> PAGE_SHIFT,
        };
        // genalloc hands out blocks of the range it was given: `phys >= c.base`.
        let off = phys.wrapping_sub(c.base) as usize;
        let step = 1usize << 20;
        let mut done: usize = 0;
        while done < len {
            crate::stats::alloc_zeroing_test_delay();
            // SAFETY: process context.
            if unsafe { b::dmaheap_fatal_signal_pending() } {
                self.free_chunks(&[chunk]);
                return Err(EINTR);
            }
            // `done < len` and the block `[off, off + len)` lies inside the carveout: no overflow.
            let n = step.min(len.wrapping_sub(done));
            // SAFETY: `[off + done, off + done + n)` lies inside the block genalloc gave us, which
            // lies inside the carveout mapped at `c.va`; nobody else uses it yet. The mapping is
            // write-combined: the zeroes reach memory without cache maintenance.
            unsafe { core::ptr::write_bytes(c.va.add(off.wrapping_add(done)), 0, n) };
            done = done.wrapping_add(n);
            // SAFETY: process context, no locks held.
            unsafe { b::dmaheap_cond_resched() };
        }
        chunks
            .push(chunk)
            .inspect_err(|_| self.free_chunks(&[chunk]))?;
        Ok(chunks)
    }

    fn alloc_system(&self, len: usize) -> Result<Chunks> {
        // Room for the greedy split (what happens unless high orders run out): one allocation.
        let mut estimate: usize = 0;
        let mut rest = len;
        for &block in POOL_BLOCK_BYTES.iter() {
            // Blocks are at least a page: the divisions never fail.
            estimate = estimate.saturating_add(rest.checked_div(block).unwrap_or(0));
            rest = rest.checked_rem(block).unwrap_or(rest);
        }
        let mut chunks = Chunks::with_capacity(estimate)?;
        let mut remaining = len;
        let mut max_order = order_of_pool(0);
        while remaining > 0 {
            // SAFETY: called in process context (the heap ioctl).
            if unsafe { b::dmaheap_fatal_signal_pending() } {
                self.free_chunks(&chunks);
                return Err(EINTR);
            }
            let Some(chunk) = self.alloc_largest(remaining, max_order) else {
                self.free_chunks(&chunks);
                return Err(ENOMEM);
            };
            if let Err(e) = chunks.push(chunk) {
                self.free_chunks(&[chunk]);
                self.free_chunks(&chunks);
                return Err(e);
            }
            remaining = remaining.saturating_sub(chunk.bytes());
            max_order = chunk.order;
        }
        Ok(chunks)
    }

    fn alloc_largest(&self, remaining: usize, max_order: u32) -> Option<Chunk> {
        for (idx, &order) in ORDERS.iter().enumerate() {
            let bytes = block_bytes(idx);
            if remaining < bytes || order > max_order {
                continue;
            }
            if let Some(p) = self.pool_pop(idx) {
                return Some(Chunk {
                    page: p.0,
                    phys: 0,
                    order,
                    npages: pages_of_order(order),
                });
            }
            // SAFETY: plain page allocation; `__GFP_ZERO` zeroes it.
            let page = unsafe { b::dmaheap_alloc_pages(gfp_for_order(order), order) };
            if page.is_null() {
                continue;
            }
            self.stats.take_pages(pages_of_order(order));
            let chunk = Chunk {
                page,
                phys: 0,
                order,
                npages: pages_of_order(order),
            };
            // Zeroing went through the cached kernel mapping: write it back before the pages are
            // handed out for write-combined mappings.
            if self.uncached && !self.flush(page, bytes, &self.stats.flushes_at_alloc) {
                // SAFETY: the block was just allocated with this order and is not shared.
                unsafe { b::__free_pages(page, order) };
                self.stats.give_back_pages(pages_of_order(order));
                continue;
            }
            return Some(chunk);
        }
        None
    }

    /// Writes `bytes` at `page` back from the CPU caches and counts it in `counter`.
    /// Fails if the heap has no write-back device yet (see `registered`) or mapping failed.
    fn flush(&self, page: *mut b::page, bytes: usize, counter: &AtomicU64) -> bool {
        let dev = self.dev.load(Ordering::Acquire);
        if dev.is_null() {
            return false;
        }
        // SAFETY: `page` starts `bytes` bytes of memory owned by the caller; `dev` is the heap's
        // live device, with a 64-bit DMA mask. Mapping for the device writes the CPU caches
        // back; the mapping itself is not used.
        unsafe {
            let addr =
                b::dma_map_page_attrs(dev, page, 0, bytes, b::dma_data_direction_DMA_TO_DEVICE, 0);
            if b::dmaheap_dma_mapping_error(dev, addr) != 0 {
                return false;
            }
            b::dma_unmap_page_attrs(dev, addr, bytes, b::dma_data_direction_DMA_TO_DEVICE, 0);
        }
        counter.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn alloc_cma(&self, cma: *mut b::cma, len: usize) -> Result<Chunks> {
        // `len` is at most `max_len()`, so the count and the order are small.
        let count = len >> PAGE_SHIFT;
        let align = order_for_pages(count).min(b::DMAHEAP_CMA_ALIGNMENT);
        // SAFETY: `cma` is a CMA area found through `cma_for_each_area`; areas are never freed.
        let page = unsafe { b::cma_alloc(cma, count, align, true) };
        if page.is_null() {
            return Err(ENOMEM);
        }
        self.stats.take_pages(count);
        let chunk = Chunk {
            page,
            phys: 0,
            order: u32::MAX,
            npages: count,
        };
        // SAFETY: the range is ours (just allocated), and this is process context.
        let zeroed = unsafe {
            zero_pages(page, count, || {
                crate::stats::alloc_zeroing_test_delay();
                b::dmaheap_fatal_signal_pending()
            })
        };
        if !zeroed {
            self.free_chunks(&[chunk]);
            return Err(EINTR);
        }
        if self.uncached && !self.flush(page, len, &self.stats.flushes_at_alloc) {
            self.free_chunks(&[chunk]);
            return Err(ENOMEM);
        }
        let mut chunks = Chunks::with_capacity(1).inspect_err(|_| self.free_chunks(&[chunk]))?;
        chunks
            .push(chunk)
            .inspect_err(|_| self.free_chunks(&[chunk]))?;
        Ok(chunks)
    }

    /// Gives blocks straight back to the page allocator or the CMA area, without pooling.
    pub(crate) fn free_chunks(&self, chunks: &[Chunk]) {
        for c in chunks {
            match &self.kind {
                // SAFETY: the block was allocated with `alloc_pages(.., c.order)` and is owned
                // by the caller, which gives it up.
                Kind::System => unsafe { b::__free_pages(c.page, c.order) },
                Kind::Cma(cma) => {
                    // SAFETY: the range came from `cma_alloc` on this area with this count.
                    unsafe { b::cma_release(*cma, c.page, c.npages) };
                }
                Kind::Carveout(co) => {
                    // SAFETY: the block came from `gen_pool_alloc` on this pool with this size.
                    unsafe { b::dmaheap_gen_pool_free(co.pool, c.phys as _, c.bytes()) };
                }
            }
            self.stats.give_back_pages(c.npages);
        }
    }

    /// Deferred-free path (worker thread): zeroes blocks and refills the pools; frees what does
    /// not fit, and everything while the system is short of memory.
    pub(crate) fn recycle_chunks(&self, chunks: &[Chunk]) {
        if !matches!(self.kind, Kind::System) || under_pressure() {
            self.free_chunks(chunks);
            return;
        }
        for c in chunks {
            let idx = pool_index(c.order);
            let bytes = c.bytes();
            if let Some(idx) =
                idx.filter(|_| self.stats.pool_bytes().saturating_add(bytes) <= self.pool_limit)
            {
                // SAFETY: the block is ours: nobody references it any more (the dma-buf was
                // released). Worker thread, no locks held.
                unsafe { zero_pages(c.page, c.npages, || false) };
                if (!self.uncached || self.flush(c.page, bytes, &self.stats.flushes_at_recycle))
                    && self.pool_push(idx, PagePtr(c.page)).is_ok()
                {
                    // SAFETY: worker thread, no locks held.
                    unsafe { b::dmaheap_cond_resched() };
                    continue;
                }
            }
            // SAFETY: as in `free_chunks`.
            unsafe { b::__free_pages(c.page, c.order) };
            self.stats.give_back_pages(c.npages);
        }
        // SAFETY: worker thread, no locks held.
        unsafe { b::dmaheap_cond_resched() };
    }

    /// The longest buffer this heap could ever hold: more is refused before anything is
    /// allocated. System heaps: all RAM. CMA heaps: all RAM too (the area's size is private to
    /// mm/, and `cma_alloc` refuses more than the area at its first check, before any work).
    /// Carveouts: their size.
    fn max_len(&self) -> usize {
        match &self.kind {
            Kind::Carveout(c) => c.size,
            // SAFETY: reads a counter.
            Kind::System | Kind::Cma(_) => {
                unsafe { b::dmaheap_totalram_pages() }.saturating_mul(PAGE_SIZE)
            }
        }
    }

    /// The `allocate` callback's body.
    pub(crate) fn allocate(
        &'static self,
        heap: *mut b::dma_heap,
        len: usize,
        fd_flags: u32,
    ) -> *mut b::dma_buf {
        // Lengths no allocation could satisfy never reach the allocator: no order arithmetic or
        // bookkeeping array is ever sized from them.
        let res = if len > self.max_len() {
            Err(ENOMEM)
        } else if self.uncached && self.dev.load(Ordering::Acquire).is_null() {
            // Registered, but its device has no DMA mask yet (`registered` runs right after
            // `dma_heap_add`): nothing to write the caches back with.
            Err(EAGAIN)
        } else {
            Buffer::create(self, heap, len, fd_flags)
        };
        match res {
            Ok(dmabuf) => {
                self.stats.buffers.fetch_add(1, Ordering::Relaxed);
                self.stats.add_bytes(len as u64);
                dmabuf
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                if e == EINTR {
                    self.stats.interrupted.fetch_add(1, Ordering::Relaxed);
                }
                e.to_ptr()
            }
        }
    }
}

/// Zeroes `npages` physically contiguous pages from `page`, in steps of 1 MiB: one `memset` of
/// the kernel's linear mapping per step, as the kernel's own CMA heap does (`clear_page` per page
/// costs several times more where `rep stosb` is slow, as under TCG), page by page where a page
/// has no permanent mapping (highmem). Asks `stop` before each step and gives up when it says so;
/// returns whether everything was zeroed.
///
/// # Safety
/// The pages are owned by the caller and used by nobody else; process context, no locks held.
unsafe fn zero_pages(page: *mut b::page, npages: usize, mut stop: impl FnMut() -> bool) -> bool {
    let step = (1usize << 20) / PAGE_SIZE;
    let mut done: usize = 0;
    while done < npages {
        if stop() {
            return false;
        }
        let n = step.min(npages.wrapping_sub(done)); // `done < npages`
                                                     // SAFETY: `done < npages`: a page of the caller's range.
        let first = unsafe { b::dmaheap_nth_page(page, done) };
        // SAFETY: a plain query of `first`'s kernel mapping.
        let addr = unsafe { b::dmaheap_page_address(first) };
        if !addr.is_null() {
            // SAFETY: lowmem pages of one physically contiguous range are contiguous in the
            // linear mapping; the `n` pages from `first` belong to the caller.
            // `n * PAGE_SIZE` is at most 1 MiB.
            unsafe { core::ptr::write_bytes(addr.cast::<u8>(), 0, n.wrapping_mul(PAGE_SIZE)) };
        } else {
            for i in 0..n {
                // SAFETY: `done + i < npages`: a page of the caller's range.
                unsafe { b::dmaheap_clear_highpage(b::dmaheap_nth_page(first, i)) };
            }
        }
        done = done.wrapping_add(n);
        // SAFETY: process context, no locks held (the caller's contract).
        unsafe { b::dmaheap_cond_resched() };
    }
    true
}

/// When the shrinker last ran from memory reclaim (jiffies), and whether it ever did.
static RECLAIM_AT: AtomicUsize = AtomicUsize::new(0);
static RECLAIM_SEEN: AtomicBool = AtomicBool::new(false);
/// How long after reclaim asked for memory the heaps stop pooling released pages.
const PRESSURE_SECS: usize = 5;

fn jiffies() -> usize {
    // SAFETY: `jiffies` is a kernel variable that is always readable; a volatile read as C does.
    unsafe { core::ptr::read_volatile(&raw const b::jiffies) as usize }
}

/// Records that memory reclaim (kswapd or direct reclaim) called the shrinker.
pub(crate) fn note_reclaim() {
    RECLAIM_AT.store(jiffies(), Ordering::Relaxed);
    RECLAIM_SEEN.store(true, Ordering::Release);
}

/// Was memory short recently? Then released pages go straight back to the page allocator
/// instead of into the pools, where reclaim would only have to find them again.
pub(crate) fn under_pressure() -> bool {
    RECLAIM_SEEN.load(Ordering::Acquire)
        && jiffies().wrapping_sub(RECLAIM_AT.load(Ordering::Relaxed))
            < PRESSURE_SECS * b::DMAHEAP_HZ as usize
}

/// `dma_heap_ops.allocate`.
///
/// # Safety
/// Called only by the dma-heap core, for a heap registered with a `Heap` as private data.
unsafe extern "C" fn heap_allocate(
    heap: *mut b::dma_heap,
    len: crate::kapi::ffi::c_ulong,
    fd_flags: u32,
    _heap_flags: u64,
) -> *mut b::dma_buf {
    // SAFETY: the heap was registered with a pointer to a leaked `Heap` as its private data.
    let h = unsafe { &*(b::dma_heap_get_drvdata(heap) as *const Heap) };
    // `unsigned long` is `usize` on every kernel architecture.
    h.allocate(heap, len as usize, fd_flags)
}

/// `dma_heap_ops.get_pool_size` (ACK): bytes held in this heap's pools, which the dma-heap core
/// sums into /sys/kernel/dma_heap/total_pools_kb (Android's "DMA-BUF heap pools").
///
/// # Safety
/// Called only by the dma-heap core, for a heap registered with a `Heap` as private data.
unsafe extern "C" fn heap_get_pool_size(heap: *mut b::dma_heap) -> crate::kapi::ffi::c_long {
    // SAFETY: as in `heap_allocate`.
    let h = unsafe { &*(b::dma_heap_get_drvdata(heap) as *const Heap) };
    crate::kapi::ffi::c_long::try_from(h.stats.pool_bytes())
        .unwrap_or(crate::kapi::ffi::c_long::MAX)
}

/// The operations shared by all heaps of this module.
pub(crate) static HEAP_OPS: b::dma_heap_ops = b::dma_heap_ops {
    allocate: Some(heap_allocate),
    get_pool_size: Some(heap_get_pool_size),
};
