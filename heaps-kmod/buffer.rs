// SPDX-License-Identifier: GPL-2.0

//! Buffers and their `dma_buf_ops`.

use crate::bindings as b;
use crate::deferred;
use crate::heap::Heap;
use crate::kapi::error::{self, to_result};
use crate::kapi::prelude::*;
use crate::kapi::sync::Mutex;
use core::ffi::{c_int, c_void};
use core::ptr;
use core::sync::atomic::Ordering;

const PAGE_SIZE: usize = b::DMAHEAP_PAGE_SIZE as usize;
const PAGE_SHIFT: u32 = b::DMAHEAP_PAGE_SHIFT;

/// A physically contiguous block of a buffer.
#[derive(Clone, Copy)]
pub(crate) struct Chunk {
    /// First page (null for carveout memory, which is not handled through `struct page`).
    pub(crate) page: *mut b::page,
    /// Physical address of carveout memory (0 otherwise).
    pub(crate) phys: u64,
    /// Allocation order for system heaps (`u32::MAX` for CMA ranges).
    pub(crate) order: u32,
    pub(crate) npages: usize,
}

impl Chunk {
    pub(crate) fn bytes(&self) -> usize {
        self.npages << PAGE_SHIFT
    }

    /// Physical address of the block.
    pub(crate) fn phys_addr(&self) -> u64 {
        if self.page.is_null() {
            self.phys
        } else {
            // SAFETY: plain computation on a page this buffer owns.
            (unsafe { b::dmaheap_page_to_pfn(self.page) } as u64) << PAGE_SHIFT
        }
    }
}

/// The blocks of a buffer. Buffers of up to `INLINE` blocks (a single page, 64 KiB or 1 MiB
/// block, up to 4 MiB in 1 MiB blocks, and every CMA and carveout buffer) keep them inline: no
/// allocation beside the buffer itself.
pub(crate) struct Chunks {
    inline: [Chunk; Chunks::INLINE],
    len: usize,
    spill: Option<KVec<Chunk>>,
}

impl Chunks {
    const INLINE: usize = 4;
    const EMPTY: Chunk = Chunk {
        page: ptr::null_mut(),
        phys: 0,
        order: 0,
        npages: 0,
    };

    /// No blocks.
    pub(crate) const fn new() -> Chunks {
        Chunks {
            inline: [Self::EMPTY; Self::INLINE],
            len: 0,
            spill: None,
        }
    }

    /// Room for `n` blocks.
    pub(crate) fn with_capacity(n: usize) -> Result<Chunks> {
        let mut c = Self::new();
        if n > Self::INLINE {
            c.spill = Some(KVec::with_capacity(n, GFP_KERNEL)?);
        }
        Ok(c)
    }

    /// Appends a block; fails only if growing past the capacity cannot allocate.
    pub(crate) fn push(&mut self, c: Chunk) -> Result {
        if let Some(v) = &mut self.spill {
            return Ok(v.push(c, GFP_KERNEL)?);
        }
        if let Some(slot) = self.inline.get_mut(self.len) {
            *slot = c;
            self.len = self.len.wrapping_add(1); // `len < INLINE`
            return Ok(());
        }
        let mut v = KVec::with_capacity(2 * Self::INLINE, GFP_KERNEL)?;
        v.extend_from_slice(&self.inline, GFP_KERNEL)?;
        v.push(c, GFP_KERNEL)?;
        self.spill = Some(v);
        Ok(())
    }
}

impl core::ops::Deref for Chunks {
    type Target = [Chunk];

    fn deref(&self) -> &[Chunk] {
        match &self.spill {
            Some(v) => v,
            None => self.inline.get(..self.len).unwrap_or(&[]),
        }
    }
}

/// One importer's view of a buffer: its own copy of the scatter list, mapped for its device.
struct Attachment {
    dev: *mut b::device,
    /// The segment limits `table` was split for. A device's limits may change after attach (a
    /// driver lowers `max_seg_size` once it knows its hardware): `op_map` then splits a new table
    /// for the limits of the moment, and the carveout walks the table with these, never with
    /// limits read again (the table has exactly their entries).
    limits: SegLimits,
    table: b::sg_table,
    mapped: bool,
    dir: b::dma_data_direction,
}

struct Inner {
    attachments: KVec<*mut Attachment>,
    vmap_cnt: usize,
    vaddr: *mut c_void,
}

/// A buffer handed out as a dma-buf.
pub(crate) struct Buffer {
    pub(crate) heap: &'static Heap,
    pub(crate) len: usize,
    pub(crate) chunks: Chunks,
    inner: Mutex<Inner>,
    /// Link in the deferred-free list.
    pub(crate) next: *mut Buffer,
}

/// A device's DMA segment limits: longest segment in bytes, and the boundary mask no segment
/// may cross.
#[derive(Clone, Copy, PartialEq, Eq)]
struct SegLimits {
    max_seg: usize,
    boundary: usize,
}

impl SegLimits {
    /// The limits of an importer's device.
    fn of(dev: *mut b::device) -> SegLimits {
        // SAFETY: `dev` is the importer's live device.
        unsafe {
            SegLimits {
                max_seg: b::dmaheap_dma_get_max_seg_size(dev) as usize,
                boundary: b::dmaheap_dma_get_seg_boundary(dev),
            }
        }
    }
}

/// Splits the chunks into segments a device accepts: at most `max_seg` bytes, not crossing a
/// `boundary + 1` aligned boundary. Limits below the page size (a 4 KiB segment limit on a
/// kernel with 16 KiB pages) give segments inside a page, with an offset. Calls
/// `f(chunk, byte_offset, len)` per segment.
fn for_each_segment(chunks: &[Chunk], limits: SegLimits, mut f: impl FnMut(&Chunk, usize, usize)) {
    let max_seg = limits.max_seg.clamp(1, u32::MAX as usize);
    let boundary = limits.boundary;
    for c in chunks {
        let phys = c.phys_addr() as usize;
        let total = c.bytes();
        let mut off: usize = 0;
        // `off < total` and a block's physical range does not wrap: `phys + off` and
        // `off + len <= total` do not overflow; `here & boundary <= boundary < usize::MAX`.
        while off < total {
            let here = phys.wrapping_add(off);
            let to_boundary = if boundary == usize::MAX {
                usize::MAX
            } else {
                boundary.wrapping_sub(here & boundary).wrapping_add(1)
            };
            let len = total.wrapping_sub(off).min(max_seg).min(to_boundary);
            f(c, off, len);
            off = off.wrapping_add(len);
        }
    }
}

/// Allocates `table` with one entry per segment `limits` allow and, for page-backed memory,
/// fills in the pages. Carveout entries get their DMA addresses when mapped (`op_map`).
fn build_table(chunks: &[Chunk], limits: SegLimits, table: &mut b::sg_table) -> Result {
    let mut nents = 0usize;
    for_each_segment(chunks, limits, |_, _, _| nents = nents.saturating_add(1));
    let nents = u32::try_from(nents).map_err(|_| EINVAL)?;
    // SAFETY: `table` is a valid, empty `sg_table` owned by the caller.
    let ret = unsafe { b::sg_alloc_table(table, nents, b::DMAHEAP_GFP_KERNEL) };
    if ret != 0 {
        return Err(ENOMEM);
    }
    let mut sg = table.sgl;
    for_each_segment(chunks, limits, |c, off, len| {
        // SAFETY: `sg_alloc_table` gave exactly `nents` entries and this closure runs `nents`
        // times, walking them in order; `off` bytes into the block are still inside it, and
        // `len <= max_seg <= u32::MAX`.
        unsafe {
            if !c.page.is_null() {
                let page = b::dmaheap_nth_page(c.page, off >> PAGE_SHIFT);
                b::dmaheap_sg_set_page(sg, page, len as u32, (off & (PAGE_SIZE - 1)) as u32);
            }
            sg = b::sg_next(sg);
        }
    });
    Ok(())
}

impl Buffer {
    /// Allocates memory, wraps it into a dma-buf and returns the dma-buf.
    pub(crate) fn create(
        heap: &'static Heap,
        dma_heap: *mut b::dma_heap,
        len: usize,
        fd_flags: u32,
    ) -> Result<*mut b::dma_buf> {
        if len == 0 || len & (PAGE_SIZE - 1) != 0 {
            return Err(EINVAL);
        }
        let buf = KBox::new(
            Buffer {
                heap,
                len,
                chunks: Chunks::new(),
                inner: Mutex::new(Inner {
                    attachments: KVec::new(),
                    vmap_cnt: 0,
                    vaddr: ptr::null_mut(),
                }),
                next: ptr::null_mut(),
            },
            GFP_KERNEL,
        )?;
        // SAFETY: the buffer stays in its box until `destroy` frees it, and nobody has seen it.
        unsafe { buf.inner.init(c"dmaheap_buffer", lock_class_key!()) };
        // The buffer is only used through this raw pointer from now on; `destroy` frees it.
        let raw = KBox::into_raw(buf);
        match heap.alloc_chunks(len) {
            // SAFETY: `raw` is exclusively ours; nothing else has seen the buffer yet.
            Ok(chunks) => unsafe { (*raw).chunks = chunks },
            Err(e) => {
                // SAFETY: `raw` is exclusively ours and holds no memory yet.
                unsafe { Self::destroy(raw, false) };
                return Err(e);
            }
        }

        let exp = b::dma_buf_export_info {
            // SAFETY: `dma_heap` is the live heap the core called us for.
            exp_name: unsafe { b::dma_heap_get_name(dma_heap) },
            // SAFETY: trivial accessor for `THIS_MODULE`.
            owner: unsafe { b::dmaheap_this_module() },
            ops: &BUF_OPS,
            size: len,
            flags: fd_flags as c_int,
            priv_: raw as *mut c_void,
            ..Default::default()
        };
        // SAFETY: `exp` is fully initialised; on success the dma-buf owns `raw` until `release`.
        let dmabuf = unsafe { b::dma_buf_export(&exp) };
        if error::is_err(dmabuf) {
            // SAFETY: the export failed, so nobody else knows `raw`.
            unsafe { Self::destroy(raw, false) };
            return Err(error::ptr_err(dmabuf));
        }
        Ok(dmabuf)
    }

    /// Frees a buffer: its pages go back to the heap (pooled if `recycle`), then the buffer.
    ///
    /// # Safety
    /// `raw` came from `create` and is not referenced any more.
    pub(crate) unsafe fn destroy(raw: *mut Buffer, recycle: bool) {
        // SAFETY: by the function's contract.
        let buf = unsafe { KBox::from_raw(raw) };
        if recycle {
            buf.heap.recycle_chunks(&buf.chunks);
        } else {
            buf.heap.free_chunks(&buf.chunks);
        }
        drop(buf);
    }

    fn vmap_locked(&self, inner: &mut Inner) -> Result<*mut c_void> {
        if inner.vmap_cnt > 0 {
            inner.vmap_cnt = inner.vmap_cnt.checked_add(1).ok_or(EBUSY)?;
            return Ok(inner.vaddr);
        }
        if let Some(co) = self.heap.carveout() {
            // The carveout's own write-combined mapping covers the (single, contiguous) block,
            // which genalloc carved out of it: `phys >= base`.
            let first = self.chunks.first().ok_or(EINVAL)?;
            let off = first.phys.wrapping_sub(co.base) as usize;
            // SAFETY: the block lies inside the carveout mapped at `co.va`.
            inner.vaddr = unsafe { co.va.add(off) }.cast();
            inner.vmap_cnt = 1;
            return Ok(inner.vaddr);
        }
        let npages = self.len >> PAGE_SHIFT;
        let mut pages: KVec<*mut b::page> = KVec::with_capacity(npages, GFP_KERNEL)?;
        for c in self.chunks.iter() {
            for i in 0..c.npages {
                // SAFETY: `i < npages` of the block.
                pages.push(unsafe { b::dmaheap_nth_page(c.page, i) }, GFP_KERNEL)?;
            }
        }
        // SAFETY: `pages` holds `npages` valid pages owned by this buffer.
        let vaddr = unsafe {
            b::vmap(
                pages.as_mut_ptr(),
                npages as u32,
                b::VM_MAP as _,
                b::dmaheap_page_kernel(self.heap.uncached),
            )
        };
        if vaddr.is_null() {
            return Err(ENOMEM);
        }
        inner.vaddr = vaddr;
        inner.vmap_cnt = 1;
        Ok(vaddr)
    }
}

/// # Safety
/// `dmabuf` is one of ours.
unsafe fn buffer<'a>(dmabuf: *mut b::dma_buf) -> &'a Buffer {
    // SAFETY: `priv_` was set to a live `Buffer` in `create` and stays valid until `release`.
    unsafe { &*((*dmabuf).priv_ as *const Buffer) }
}

/// `dma_buf_ops.attach`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_attach(
    dmabuf: *mut b::dma_buf,
    attachment: *mut b::dma_buf_attachment,
) -> c_int {
    // SAFETY: the dma-buf core calls us with a live dma-buf of ours and a live attachment.
    let (buf, att) = unsafe { (buffer(dmabuf), &mut *attachment) };
    let limits = SegLimits::of(att.dev);
    let a = match KBox::new(
        Attachment {
            dev: att.dev,
            limits,
            table: b::sg_table::default(),
            mapped: false,
            dir: b::dma_data_direction_DMA_NONE,
        },
        GFP_KERNEL,
    ) {
        Ok(a) => a,
        Err(_) => return ENOMEM.to_errno(),
    };
    let a = KBox::into_raw(a);
    // SAFETY: `a` was just allocated and is exclusively ours.
    if let Err(e) = build_table(&buf.chunks, limits, unsafe { &mut (*a).table }) {
        // SAFETY: as above; the table was not allocated.
        drop(unsafe { KBox::from_raw(a) });
        return e.to_errno();
    }
    let mut inner = buf.inner.lock();
    if inner.attachments.push(a, GFP_KERNEL).is_err() {
        drop(inner);
        // SAFETY: `a` is still exclusively ours and its table was allocated.
        unsafe {
            b::sg_free_table(&mut (*a).table);
            drop(KBox::from_raw(a));
        }
        return ENOMEM.to_errno();
    }
    att.priv_ = a as *mut c_void;
    0
}

/// `dma_buf_ops.detach`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_detach(dmabuf: *mut b::dma_buf, attachment: *mut b::dma_buf_attachment) {
    // SAFETY: as in `op_attach`; `priv_` is the `Attachment` `op_attach` stored.
    let (buf, a) = unsafe { (buffer(dmabuf), (*attachment).priv_ as *mut Attachment) };
    let mut inner = buf.inner.lock();
    if let Some(i) = inner.attachments.iter().position(|&x| x == a) {
        inner.attachments.swap_remove(i);
    }
    drop(inner);
    // SAFETY: detached: nobody else references `a` any more; its table was allocated in attach.
    unsafe {
        b::sg_free_table(&mut (*a).table);
        drop(KBox::from_raw(a));
    }
}

fn dma_attrs(buf: &Buffer) -> FfiUlong {
    if buf.heap.uncached {
        b::DMAHEAP_DMA_ATTR_SKIP_CPU_SYNC as FfiUlong
    } else {
        0
    }
}

type FfiUlong = crate::kapi::ffi::c_ulong;

/// `dma_buf_ops.map_dma_buf`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_map(
    attachment: *mut b::dma_buf_attachment,
    dir: b::dma_data_direction,
) -> *mut b::sg_table {
    // SAFETY: the core passes an attachment made by `op_attach` of a live dma-buf of ours.
    let (buf, a) = unsafe {
        (
            buffer((*attachment).dmabuf),
            (*attachment).priv_ as *mut Attachment,
        )
    };
    let _guard = buf.inner.lock();
    // SAFETY: `a` is live while attached; its fields are only changed under the buffer lock.
    let a = unsafe { &mut *a };
    if a.mapped {
        // One mapping per attachment: the table is the mapping.
        return EBUSY.to_ptr();
    }
    let limits = SegLimits::of(a.dev);
    if limits != a.limits {
        let mut table = b::sg_table::default();
        if let Err(e) = build_table(&buf.chunks, limits, &mut table) {
            return e.to_ptr();
        }
        // SAFETY: the old table is unmapped (`!a.mapped`) and only this attachment uses it.
        unsafe { b::sg_free_table(&mut a.table) };
        a.table = table;
        a.limits = limits;
    }
    if buf.heap.carveout().is_some() {
        if let Err(e) = map_carveout(buf, a, dir) {
            return e.to_ptr();
        }
    } else {
        // SAFETY: `a.table` holds this buffer's pages; `a.dev` is the importer's device.
        let ret = unsafe { b::dma_map_sgtable(a.dev, &mut a.table, dir, dma_attrs(buf)) };
        if let Err(e) = to_result(ret) {
            return e.to_ptr();
        }
    }
    a.mapped = true;
    a.dir = dir;
    &mut a.table
}

/// Maps a carveout buffer's segments for `a.dev` with `dma_map_resource`: the memory may have
/// no `struct page`, so the table carries DMA addresses only (importers must not use
/// `sg_page()`, which `CONFIG_DMABUF_DEBUG` enforces by mangling the page links).
fn map_carveout(buf: &Buffer, a: &mut Attachment, dir: b::dma_data_direction) -> Result {
    let attrs = dma_attrs(buf);
    let mut sg = a.table.sgl;
    let mut mapped = 0usize;
    let mut failed = false;
    let dev = a.dev;
    // Without an IOMMU or DMA ops, `dma_map_resource` takes the address it is given as the bus
    // address (it is meant for MMIO). Carveout memory is RAM: on a SoC whose `dma-ranges` offset
    // RAM on the bus, the device must see `phys_to_dma()` of it, which we hand over instead.
    // SAFETY: queries on the importer's live device.
    let direct = unsafe { !b::dmaheap_use_dma_iommu(dev) && !b::dmaheap_has_dma_ops(dev) };
    // The limits the table was split for: the same segments, the same count.
    for_each_segment(&buf.chunks, a.limits, |c, off, len| {
        if failed {
            return;
        }
        let phys = c.phys.wrapping_add(off as u64); // inside the carveout
                                                    // SAFETY: maps a range of our carveout for the importer's device; `sg` walks the
                                                    // entries `build_table` allocated for exactly these segments.
        unsafe {
            let addr = if direct {
                b::dmaheap_phys_to_dma(dev, phys)
            } else {
                phys
            };
            let addr = b::dma_map_resource(dev, addr, len, dir, attrs);
            if b::dmaheap_dma_mapping_error(dev, addr) != 0 {
                failed = true;
                return;
            }
            b::dmaheap_sg_set_dma(sg, addr, len as u32);
            sg = b::sg_next(sg);
        }
        mapped = mapped.saturating_add(1);
    });
    a.dir = dir;
    if failed {
        unmap_resources(a, mapped, attrs);
        return Err(ENOMEM);
    }
    a.table.nents = mapped as u32;
    Ok(())
}

/// Unmaps the first `n` entries mapped by `map_carveout`.
fn unmap_resources(a: &mut Attachment, n: usize, attrs: FfiUlong) {
    let mut sg = a.table.sgl;
    for _ in 0..n {
        // SAFETY: the first `n` entries hold mappings made by `map_carveout` for `a.dev` with
        // direction `a.dir`.
        unsafe {
            b::dma_unmap_resource(
                a.dev,
                b::dmaheap_sg_dma_address(sg),
                b::dmaheap_sg_dma_len(sg) as usize,
                a.dir,
                attrs,
            );
            sg = b::sg_next(sg);
        }
    }
}

/// `dma_buf_ops.unmap_dma_buf`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_unmap(
    attachment: *mut b::dma_buf_attachment,
    table: *mut b::sg_table,
    _dir: b::dma_data_direction,
) {
    // SAFETY: as in `op_map`.
    let (buf, a) = unsafe {
        (
            buffer((*attachment).dmabuf),
            (*attachment).priv_ as *mut Attachment,
        )
    };
    let _guard = buf.inner.lock();
    // SAFETY: as in `op_map`.
    let a = unsafe { &mut *a };
    if !a.mapped || !ptr::eq(table, &a.table) {
        return;
    }
    // Unmap with the direction the table was mapped with: the DMA API requires it.
    if buf.heap.carveout().is_some() {
        unmap_resources(a, a.table.nents as usize, dma_attrs(buf));
    } else {
        // SAFETY: the table was mapped for `a.dev` by `op_map`.
        unsafe { b::dmaheap_dma_unmap_sgtable(a.dev, &mut a.table, a.dir, dma_attrs(buf)) };
    }
    a.mapped = false;
}

/// Calls `f` on `[vaddr, vaddr + len)` in pieces an `int` length can express: the kernel's vmap
/// range maintenance takes an `int`, and a buffer may be 2 GiB or more.
fn for_each_vmap_piece(vaddr: *mut c_void, len: usize, mut f: impl FnMut(*mut c_void, c_int)) {
    const PIECE: usize = 1 << 30;
    let mut off: usize = 0;
    while off < len {
        let n = len.wrapping_sub(off).min(PIECE); // `off < len`
        f(vaddr.wrapping_byte_add(off), n as c_int);
        off = off.wrapping_add(n);
    }
}

/// Counts one sync of an attachment mapped with `dir` (indexed by `enum dma_data_direction`).
fn count_sync(counters: &[core::sync::atomic::AtomicU64; 3], dir: b::dma_data_direction) {
    if let Some(c) = counters.get(dir as usize) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

/// `dma_buf_ops.begin_cpu_access`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_begin_cpu_access(
    dmabuf: *mut b::dma_buf,
    _dir: b::dma_data_direction,
) -> c_int {
    // SAFETY: a live dma-buf of ours.
    let buf = unsafe { buffer(dmabuf) };
    if buf.heap.uncached {
        // Write-combined CPU mappings need no cache maintenance.
        return 0;
    }
    let inner = buf.inner.lock();
    if inner.vmap_cnt > 0 {
        for_each_vmap_piece(inner.vaddr, buf.len, |p, n| {
            // SAFETY: `[p, p + n)` lies in the `len` bytes `vaddr` maps while `vmap_cnt > 0`.
            unsafe { b::dmaheap_invalidate_kernel_vmap_range(p, n) }
        });
    }
    for &a in inner.attachments.iter() {
        // SAFETY: attachments in the list are live; fields are protected by the lock we hold.
        let a = unsafe { &mut *a };
        if a.mapped {
            // SAFETY: the table is mapped for `a.dev` with `a.dir`.
            unsafe { b::dmaheap_dma_sync_sgtable_for_cpu(a.dev, &mut a.table, a.dir) };
            count_sync(&buf.heap.stats.syncs_for_cpu, a.dir);
        }
    }
    0
}

/// `dma_buf_ops.end_cpu_access`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_end_cpu_access(
    dmabuf: *mut b::dma_buf,
    _dir: b::dma_data_direction,
) -> c_int {
    // SAFETY: a live dma-buf of ours.
    let buf = unsafe { buffer(dmabuf) };
    if buf.heap.uncached {
        return 0;
    }
    let inner = buf.inner.lock();
    if inner.vmap_cnt > 0 {
        for_each_vmap_piece(inner.vaddr, buf.len, |p, n| {
            // SAFETY: `[p, p + n)` lies in the `len` bytes `vaddr` maps while `vmap_cnt > 0`.
            unsafe { b::dmaheap_flush_kernel_vmap_range(p, n) }
        });
    }
    for &a in inner.attachments.iter() {
        // SAFETY: as in `op_begin_cpu_access`.
        let a = unsafe { &mut *a };
        if a.mapped {
            // SAFETY: the table is mapped for `a.dev` with `a.dir`.
            unsafe { b::dmaheap_dma_sync_sgtable_for_device(a.dev, &mut a.table, a.dir) };
            count_sync(&buf.heap.stats.syncs_for_device, a.dir);
        }
    }
    0
}

/// `dma_buf_ops.mmap`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_mmap(dmabuf: *mut b::dma_buf, vma: *mut b::vm_area_struct) -> c_int {
    // SAFETY: a live dma-buf of ours and the vma being set up for it (mmap lock held).
    let (buf, vma) = unsafe { (buffer(dmabuf), &mut *vma) };
    if buf.heap.uncached {
        // SAFETY: plain computation on a pgprot value.
        vma.vm_page_prot = unsafe { b::dmaheap_pgprot_writecombine(vma.vm_page_prot) };
    }
    // SAFETY: reading the bounds of the vma we were given.
    let (start, end) = unsafe {
        (
            vma.__bindgen_anon_1.__bindgen_anon_1.vm_start,
            vma.__bindgen_anon_1.__bindgen_anon_1.vm_end,
        )
    };
    let mut skip = vma.vm_pgoff; // in pages
    let mut addr = start;
    for c in buf.chunks.iter() {
        if addr >= end {
            break;
        }
        if skip >= c.npages {
            skip = skip.wrapping_sub(c.npages);
            continue;
        }
        // `skip < npages`, and `addr < end`: no overflow below.
        let pfn = ((c.phys_addr() >> PAGE_SHIFT) as usize).wrapping_add(skip);
        let size = (c.npages.wrapping_sub(skip) << PAGE_SHIFT).min(end.wrapping_sub(addr));
        skip = 0;
        // SAFETY: maps pages this buffer owns into the vma, within its bounds; the dma-buf core
        // holds a reference on the dma-buf for as long as the vma exists.
        let ret = unsafe { b::remap_pfn_range(vma, addr, pfn, size, vma.vm_page_prot) };
        if ret != 0 {
            return ret;
        }
        addr = addr.wrapping_add(size);
    }
    0
}

/// `dma_buf_ops.vmap`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_vmap(dmabuf: *mut b::dma_buf, map: *mut b::iosys_map) -> c_int {
    // SAFETY: a live dma-buf of ours.
    let buf = unsafe { buffer(dmabuf) };
    let mut inner = buf.inner.lock();
    match buf.vmap_locked(&mut inner) {
        Ok(vaddr) => {
            // SAFETY: `map` is the caller's output structure.
            unsafe { b::dmaheap_iosys_map_set_vaddr(map, vaddr) };
            0
        }
        Err(e) => e.to_errno(),
    }
}

/// `dma_buf_ops.vunmap`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_vunmap(dmabuf: *mut b::dma_buf, map: *mut b::iosys_map) {
    // SAFETY: a live dma-buf of ours.
    let buf = unsafe { buffer(dmabuf) };
    let mut inner = buf.inner.lock();
    if inner.vmap_cnt > 0 {
        inner.vmap_cnt = inner.vmap_cnt.wrapping_sub(1); // `> 0`
        if inner.vmap_cnt == 0 {
            if buf.heap.carveout().is_none() {
                // SAFETY: `vaddr` came from `vmap` and its last user just went away.
                unsafe { b::vunmap(inner.vaddr) };
            }
            inner.vaddr = ptr::null_mut();
        }
    }
    drop(inner);
    // SAFETY: `map` is the caller's structure.
    unsafe { b::dmaheap_iosys_map_clear(map) };
}

/// `dma_buf_ops.release`.
///
/// # Safety
/// Called only by the dma-buf core, on a dma-buf exported by `Buffer::create` (and its
/// attachments made by `op_attach`), with the locking the core documents for this callback.
unsafe extern "C" fn op_release(dmabuf: *mut b::dma_buf) {
    // SAFETY: the last reference to the dma-buf is gone: we own the buffer again.
    let raw = unsafe { (*dmabuf).priv_ as *mut Buffer };
    // SAFETY: as above.
    let buf = unsafe { &*raw };
    let stats = &buf.heap.stats;
    stats.buffers.fetch_sub(1, Ordering::Relaxed);
    stats.bytes.fetch_sub(buf.len as u64, Ordering::Relaxed);
    // Defer (zero + pool) only what the pools can take: everything else is freed right here,
    // which needs no zeroing. This bounds the memory waiting for the worker by the pool limit.
    if buf.heap.wants_recycle(buf.len) {
        // SAFETY: `raw` is unreferenced; the deferred-free worker takes it over.
        unsafe { deferred::queue(raw) };
    } else {
        // SAFETY: `raw` is unreferenced.
        unsafe { Buffer::destroy(raw, false) };
    }
}

/// The dma-buf operations of every buffer of this module.
pub(crate) static BUF_OPS: b::dma_buf_ops = b::dma_buf_ops {
    cache_sgt_mapping: false,
    attach: Some(op_attach),
    detach: Some(op_detach),
    pin: None,
    unpin: None,
    map_dma_buf: Some(op_map),
    unmap_dma_buf: Some(op_unmap),
    release: Some(op_release),
    begin_cpu_access: Some(op_begin_cpu_access),
    end_cpu_access: Some(op_end_cpu_access),
    mmap: Some(op_mmap),
    vmap: Some(op_vmap),
    vunmap: Some(op_vunmap),
};
