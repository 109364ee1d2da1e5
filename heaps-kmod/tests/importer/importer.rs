// SPDX-License-Identifier: GPL-2.0

//! A test-only dma-buf importer: `/dev/dmaheap_test_importer`.
//!
//! One ioctl imports a dma-buf the way a device driver does, for a device whose DMA segments
//! are limited to 4 KiB, 64 KiB, 1 MiB or not limited: it attaches, maps with the DMA direction
//! asked for, checks the mapped segments against the device's limit and their total against the
//! buffer's length, reads the memory through the device's view of it (the DMA addresses turned
//! back into physical memory, mapped with the attributes the DMA API gives the device) and
//! compares it with the pattern user space wrote through mmap, optionally writes a pattern as
//! the device would, runs `dma_buf_begin/end_cpu_access` for the direction, unmaps and detaches.
//! A flag syncs the mapping with the wrong direction on purpose, for DMA-API debugging to catch.
//!
//! Two more devices stand for SoCs: one whose bus sees RAM at an offset (`dma-ranges`), so a
//! DMA address that is a CPU physical address points outside what the device can reach; and one
//! whose segment limit is lowered between attach and map (a driver that learns its hardware's
//! limit late), so an exporter that kept the table it split at attach hands over segments the
//! device cannot take.
//!
//! The devices are root devices (`/sys/devices/dmaheap_test_importer_*`) using the
//! architecture's direct DMA mapping: coherent on x86, non-coherent on arm64, so there the
//! exporters' cache maintenance runs for real.
//!
//! The pattern and the ioctl layout are shared with heaps-kmod/tests/src/importer.rs.

use core::cell::UnsafeCell;
use core::mem::size_of;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use kernel::c_str;
use kernel::ffi::{c_long, c_uint, c_ulong, c_void};
use kernel::prelude::*;
use kernel::types::{AsBytes, FromBytes};
use kernel::uaccess::UserSlice;

mod bindings;
use bindings as b;

module! {
    type: TestImporter,
    name: "dmaheap_test_importer",
    author: "dmaheap-hal developers",
    description: "Test-only dma-buf importer with DMA segment limits, for the heap module's suite",
    license: "GPL",
}

// The dma-buf core exports its API in the DMA_BUF symbol namespace (MODULE_IMPORT_NS(DMA_BUF)).
#[link_section = ".modinfo"]
#[used]
static IMPORT_NS_DMA_BUF: [u8; 18] = *b"import_ns=DMA_BUF\0";

/// `struct dmaheap_test_import`: the ioctl's argument, read and written back.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct ImportArgs {
    /// In: the dma-buf fd.
    fd: i32,
    /// In: `enum dma_data_direction` (0 bidirectional, 1 to device, 2 from device).
    direction: u32,
    /// In: the device's maximum DMA segment size: 4096, 65536, 1048576, or 0 for no limit.
    max_segment: u32,
    /// In: `FLAG_*`.
    flags: u32,
    /// In: seed of the pattern user space wrote (`FLAG_CHECK`).
    check_seed: u64,
    /// In: seed of the pattern the device writes (`FLAG_FILL`).
    fill_seed: u64,
    /// Out: the dma-buf's length.
    size: u64,
    /// Out: the sum of the mapped segments' lengths.
    mapped_bytes: u64,
    /// Out: mapped segments.
    nents: u32,
    /// Out: the longest mapped segment.
    longest_segment: u32,
    /// Out: first byte whose value differs from the pattern (`u64::MAX`: none).
    mismatch_offset: u64,
    /// Out: the pattern's 8-byte word holding `mismatch_offset`.
    expected: u64,
    /// Out: what the device read there.
    found: u64,
    /// Out: 1 if the device is DMA-coherent.
    coherent: u32,
    /// Out: `STAGE_*`, how far the import got (`STAGE_DONE` on success).
    stage: u32,
}

// SAFETY: plain integers without padding (88 bytes, every field naturally aligned): any bit
// pattern is a valid value.
unsafe impl FromBytes for ImportArgs {}
// SAFETY: as above: no padding, so every byte is initialised.
unsafe impl AsBytes for ImportArgs {}

const FLAG_CHECK: u32 = 1 << 0;
const FLAG_FILL: u32 = 1 << 1;
const FLAG_MISUSE_SYNC_DIRECTION: u32 = 1 << 2;
/// Import for the device that sees RAM at `BUS_OFFSET` (no segment limit).
const FLAG_BUS_OFFSET: u32 = 1 << 3;
/// Import for the device whose limit is `max_segment` at attach and `SHRUNK_LIMIT` at map.
const FLAG_SHRINK_LIMIT_AFTER_ATTACH: u32 = 1 << 4;
const FLAGS_KNOWN: u32 = FLAG_CHECK
    | FLAG_FILL
    | FLAG_MISUSE_SYNC_DIRECTION
    | FLAG_BUS_OFFSET
    | FLAG_SHRINK_LIMIT_AFTER_ATTACH;

const STAGE_ARGS: u32 = 1;
const STAGE_GET: u32 = 2;
const STAGE_ATTACH: u32 = 3;
const STAGE_MAP: u32 = 4;
const STAGE_SEGMENTS: u32 = 5;
const STAGE_LENGTH: u32 = 6;
const STAGE_PATTERN: u32 = 7;
const STAGE_DEVICE_VIEW: u32 = 8;
const STAGE_CPU_ACCESS: u32 = 9;
const STAGE_DONE: u32 = 10;

const IOCTL_IMPORT: u32 = kernel::ioctl::_IOWR::<ImportArgs>(b'D' as u32, 0x40);

/// The segment limits of the importer's devices, in the order of `State::devices`; `u32::MAX`
/// is "no limit" (what an IOMMU-backed device declares). The first four are chosen by
/// `max_segment`; the bus-offset device has no limit, and the shrinking one gets its limit per
/// import.
const LIMITS: [u32; DEVICES] = [4096, 65536, 1 << 20, u32::MAX, u32::MAX, u32::MAX];
const DEVICE_NAMES: [&CStr; DEVICES] = [
    c_str!("dmaheap_test_importer_seg4k"),
    c_str!("dmaheap_test_importer_seg64k"),
    c_str!("dmaheap_test_importer_seg1m"),
    c_str!("dmaheap_test_importer_segnone"),
    c_str!("dmaheap_test_importer_busoffset"),
    c_str!("dmaheap_test_importer_shrinking"),
];
const DEVICES: usize = 6;
const LIMITED_DEVICES: usize = 4;
const BUS_OFFSET_DEVICE: usize = 4;
const SHRINKING_DEVICE: usize = 5;

/// Where the bus-offset device sees physical address 0, and how much it sees from there: a
/// terabyte, beyond the physical memory of both test machines, so an address that was not
/// translated falls outside the window.
const BUS_OFFSET: u64 = 1 << 40;
const BUS_WINDOW: u64 = 1 << 40;

/// The shrinking device's limit at map time.
const SHRUNK_LIMIT: u32 = 4096;

/// Held while an import uses the shrinking device (its limit changes during the import).
static SHRINKING_BUSY: AtomicBool = AtomicBool::new(false);

/// Pages mapped at a time for the device's view of a segment.
const WINDOW_PAGES: usize = 32;

/// The pattern's 8-byte word number `index` (little-endian in memory): splitmix64 of
/// `seed + index`, so that every word of every buffer differs from its neighbours and from
/// other seeds' words.
fn pattern_word(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn errno(code: u32) -> Error {
    Error::from_errno(-(code as i32))
}

const MAX_ERRNO: usize = 4095;

fn is_err<T>(p: *const T) -> bool {
    p as usize >= (MAX_ERRNO as isize).wrapping_neg() as usize
}

fn ptr_err<T>(p: *const T) -> Error {
    Error::from_errno(p as isize as i32)
}

/// One of the importer's devices.
struct Device {
    dev: *mut b::device,
    /// The device's `dma_parms` (a root device has none of its own). Only the shrinking device's
    /// limit changes after registration, under `SHRINKING_BUSY`.
    parms: UnsafeCell<b::device_dma_parameters>,
}

impl Device {
    /// The segment limit the DMA API sees now.
    fn limit(&self) -> u32 {
        // SAFETY: a plain read of our own `dma_parms`; only the holder of `SHRINKING_BUSY`
        // writes it, and only for the device it imports through.
        unsafe { (*self.parms.get()).max_segment_size }
    }

    /// # Safety
    /// The caller holds `SHRINKING_BUSY` and this is the shrinking device.
    unsafe fn set_limit(&self, limit: u32) {
        // SAFETY: exclusive by the caller's contract; the DMA API reads the field through the
        // device's `dma_parms` pointer.
        unsafe { (*self.parms.get()).max_segment_size = limit };
    }
}

struct State {
    misc: b::miscdevice,
    fops: b::file_operations,
    devices: [Device; DEVICES],
    /// The bus-offset device's `dma_range_map`: one window and the terminating empty entry.
    bus_map: [b::bus_dma_region; 2],
}

/// The registered state, for the ioctl handler.
static STATE: AtomicPtr<State> = AtomicPtr::new(ptr::null_mut());

struct TestImporter {
    state: *mut State,
}

// SAFETY: `state` is only freed in `drop`, after the misc device is gone; the devices it holds
// are used by the kernel from any thread anyway.
unsafe impl Send for TestImporter {}
// SAFETY: as above; nothing in `State` is written after registration.
unsafe impl Sync for TestImporter {}

fn unregister_devices(state: &mut State) {
    for d in state.devices.iter_mut() {
        if !d.dev.is_null() {
            // SAFETY: registered by `register_devices`; nothing maps through it any more. The
            // core would kfree a `dma_range_map` at release: ours lives in `State`.
            unsafe {
                (*d.dev).dma_parms = ptr::null_mut();
                (*d.dev).dma_range_map = ptr::null();
                b::root_device_unregister(d.dev);
            }
            d.dev = ptr::null_mut();
        }
    }
}

fn register_devices(state: &mut State) -> Result {
    state.bus_map[0] = b::bus_dma_region {
        cpu_start: 0,
        dma_start: BUS_OFFSET,
        size: BUS_WINDOW,
    };
    let bus_map = state.bus_map.as_ptr();
    for (i, d) in state.devices.iter_mut().enumerate() {
        // SAFETY: registers a root device with a static name.
        let dev = unsafe { b::importer_root_device_register(DEVICE_NAMES[i].as_char_ptr()) };
        if is_err(dev) {
            return Err(ptr_err(dev));
        }
        d.dev = dev;
        d.parms.get_mut().max_segment_size = LIMITS[i];
        // SAFETY: `dev` is live; `d.parms` and the bus map live in the boxed state, which
        // outlives the device's use (the pointers are cleared before the device is
        // unregistered).
        let ret = unsafe {
            (*dev).dma_parms = d.parms.get();
            if i == BUS_OFFSET_DEVICE {
                (*dev).dma_range_map = bus_map;
            }
            b::importer_dma_coerce_mask_and_coherent(dev, u64::MAX)
        };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
    }
    Ok(())
}

impl kernel::Module for TestImporter {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let state = KBox::new(
            State {
                misc: b::miscdevice::default(),
                fops: b::file_operations::default(),
                devices: [const {
                    Device {
                        dev: ptr::null_mut(),
                        parms: UnsafeCell::new(b::device_dma_parameters {
                            max_segment_size: 0,
                            min_align_mask: 0,
                            segment_boundary_mask: 0,
                        }),
                    }
                }; DEVICES],
                bus_map: [b::bus_dma_region::default(); 2],
            },
            GFP_KERNEL,
        )?;
        let state = KBox::into_raw(state);
        // SAFETY: just allocated; exclusively ours until the misc device is registered.
        let st = unsafe { &mut *state };
        if let Err(e) = register_devices(st) {
            unregister_devices(st);
            // SAFETY: nothing else knows `state`.
            drop(unsafe { KBox::from_raw(state) });
            return Err(e);
        }
        st.fops.owner = module.as_ptr().cast();
        st.fops.unlocked_ioctl = Some(ioctl);
        st.misc.minor = b::IMPORTER_MISC_DYNAMIC_MINOR;
        st.misc.name = c_str!("dmaheap_test_importer").as_char_ptr();
        st.misc.fops = &st.fops;
        st.misc.mode = 0o600;
        STATE.store(state, Ordering::Release);
        // SAFETY: `misc` is fully set up and lives until `drop` deregisters it.
        let ret = unsafe { b::misc_register(&mut st.misc) };
        if ret != 0 {
            STATE.store(ptr::null_mut(), Ordering::Release);
            unregister_devices(st);
            // SAFETY: the misc device was not registered: nothing else knows `state`.
            drop(unsafe { KBox::from_raw(state) });
            return Err(Error::from_errno(ret));
        }
        Ok(TestImporter { state })
    }
}

impl Drop for TestImporter {
    fn drop(&mut self) {
        // SAFETY: registered in `init`. After `misc_deregister` no new file can be opened, and
        // open files hold a reference on this module (`fops.owner`), so no ioctl is running.
        unsafe {
            b::misc_deregister(&mut (*self.state).misc);
            STATE.store(ptr::null_mut(), Ordering::Release);
            unregister_devices(&mut *self.state);
            drop(KBox::from_raw(self.state));
        }
    }
}

/// `file_operations.unlocked_ioctl`.
///
/// # Safety
/// Called by the VFS for a file of the misc device, with the user's argument.
unsafe extern "C" fn ioctl(_file: *mut b::file, cmd: c_uint, arg: c_ulong) -> c_long {
    if cmd != IOCTL_IMPORT {
        return ENOTTY.to_errno() as c_long;
    }
    let state = STATE.load(Ordering::Acquire);
    if state.is_null() {
        return ENODEV.to_errno() as c_long;
    }
    // SAFETY: the state lives while the misc device (whose file we were called for) exists.
    let state = unsafe { &*state };
    let (mut reader, mut writer) =
        UserSlice::new(arg as usize, size_of::<ImportArgs>()).reader_writer();
    let mut args: ImportArgs = match reader.read() {
        Ok(a) => a,
        Err(e) => return e.to_errno() as c_long,
    };
    let res = import(state, &mut args);
    if let Err(e) = writer.write(&args) {
        return e.to_errno() as c_long;
    }
    match res {
        Ok(()) => 0,
        Err(e) => e.to_errno() as c_long,
    }
}

/// Validates the request; returns the device for its flags and segment limit.
fn device_for<'a>(state: &'a State, args: &ImportArgs) -> Result<&'a Device> {
    let dir = args.direction;
    if dir != b::dma_data_direction_DMA_BIDIRECTIONAL
        && dir != b::dma_data_direction_DMA_TO_DEVICE
        && dir != b::dma_data_direction_DMA_FROM_DEVICE
    {
        return Err(EINVAL);
    }
    if args.flags & !FLAGS_KNOWN != 0 {
        return Err(EINVAL);
    }
    // A device does not write into memory mapped for it to read.
    if args.flags & FLAG_FILL != 0 && dir == b::dma_data_direction_DMA_TO_DEVICE {
        return Err(EINVAL);
    }
    // A bidirectional mapping may be synced either way: there is no misuse to make.
    if args.flags & FLAG_MISUSE_SYNC_DIRECTION != 0
        && dir == b::dma_data_direction_DMA_BIDIRECTIONAL
    {
        return Err(EINVAL);
    }
    let limit = if args.max_segment == 0 {
        u32::MAX
    } else {
        args.max_segment
    };
    match (
        args.flags & FLAG_BUS_OFFSET != 0,
        args.flags & FLAG_SHRINK_LIMIT_AFTER_ATTACH != 0,
    ) {
        (true, true) => Err(EINVAL),
        (true, false) if limit == u32::MAX => Ok(&state.devices[BUS_OFFSET_DEVICE]),
        (true, false) => Err(EINVAL),
        // Shrinking means a real limit above the shrunk one, from those the other devices have
        // ("no limit" is not one: its `max_segment` of 0 is no segment size).
        (false, true)
            if args.max_segment > SHRUNK_LIMIT
                && LIMITS[..LIMITED_DEVICES].contains(&args.max_segment) =>
        {
            Ok(&state.devices[SHRINKING_DEVICE])
        }
        (false, true) => Err(EINVAL),
        (false, false) => {
            let i = LIMITS[..LIMITED_DEVICES]
                .iter()
                .position(|&l| l == limit)
                .ok_or(EINVAL)?;
            Ok(&state.devices[i])
        }
    }
}

/// Holds `SHRINKING_BUSY` until dropped.
struct ShrinkingDeviceClaim;

impl ShrinkingDeviceClaim {
    fn take() -> Result<Self> {
        SHRINKING_BUSY
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .map(|_| ShrinkingDeviceClaim)
            .map_err(|_| EBUSY)
    }
}

impl Drop for ShrinkingDeviceClaim {
    fn drop(&mut self) {
        SHRINKING_BUSY.store(false, Ordering::Release);
    }
}

fn import(state: &State, args: &mut ImportArgs) -> Result {
    args.stage = STAGE_ARGS;
    args.mismatch_offset = u64::MAX;
    let dev = device_for(state, args)?;
    let shrink = args.flags & FLAG_SHRINK_LIMIT_AFTER_ATTACH != 0;
    let _claim = if shrink {
        let claim = ShrinkingDeviceClaim::take()?;
        // SAFETY: we hold the claim and `dev` is the shrinking device.
        unsafe { dev.set_limit(args.max_segment) };
        Some(claim)
    } else {
        None
    };
    // SAFETY: a registered device.
    args.coherent = u32::from(unsafe { b::importer_dev_is_dma_coherent(dev.dev) });
    args.stage = STAGE_GET;
    // SAFETY: takes a reference on the dma-buf behind the fd, if it is one.
    let dmabuf = unsafe { b::dma_buf_get(args.fd) };
    if is_err(dmabuf) {
        return Err(ptr_err(dmabuf));
    }
    // SAFETY: a live dma-buf we hold a reference on.
    args.size = unsafe { (*dmabuf).size } as u64;
    args.stage = STAGE_ATTACH;
    // SAFETY: as above; `dev.dev` is a live device.
    let attach = unsafe { b::dma_buf_attach(dmabuf, dev.dev) };
    let res = if is_err(attach) {
        Err(ptr_err(attach))
    } else {
        if shrink {
            // SAFETY: as above.
            unsafe { dev.set_limit(SHRUNK_LIMIT) };
        }
        let res = map_and_use(dmabuf, attach, dev, args);
        // SAFETY: attached above; unmapped by `map_and_use`.
        unsafe { b::dma_buf_detach(dmabuf, attach) };
        res
    };
    // SAFETY: drops the reference `dma_buf_get` took.
    unsafe { b::dma_buf_put(dmabuf) };
    if res.is_ok() {
        args.stage = STAGE_DONE;
    }
    res
}

fn map_and_use(
    dmabuf: *mut b::dma_buf,
    attach: *mut b::dma_buf_attachment,
    dev: &Device,
    args: &mut ImportArgs,
) -> Result {
    args.stage = STAGE_MAP;
    let dir = args.direction;
    // SAFETY: a live attachment of ours; takes the reservation lock itself.
    let sgt = unsafe { b::dma_buf_map_attachment_unlocked(attach, dir) };
    if is_err(sgt) {
        return Err(ptr_err(sgt));
    }
    let res = use_mapping(dmabuf, sgt, dev, args);
    // SAFETY: mapped above with `dir`.
    unsafe { b::dma_buf_unmap_attachment_unlocked(attach, sgt, dir) };
    res
}

/// The mapped segments as (DMA address, length), in buffer order.
fn for_each_mapped_segment(sgt: *mut b::sg_table, mut f: impl FnMut(u64, u32) -> Result) -> Result {
    // SAFETY: a table mapped for our device; `nents` entries carry DMA addresses. The page links
    // are not used (CONFIG_DMABUF_DEBUG mangles them for importers).
    unsafe {
        let mut sg = (*sgt).sgl;
        for _ in 0..(*sgt).nents {
            f(b::importer_sg_dma_address(sg), b::importer_sg_dma_len(sg))?;
            sg = b::sg_next(sg);
        }
    }
    Ok(())
}

fn use_mapping(
    dmabuf: *mut b::dma_buf,
    sgt: *mut b::sg_table,
    dev: &Device,
    args: &mut ImportArgs,
) -> Result {
    args.stage = STAGE_SEGMENTS;
    let (mut nents, mut total, mut longest) = (0u32, 0u64, 0u32);
    let mut outside_bus_window = false;
    for_each_mapped_segment(sgt, |addr, len| {
        nents += 1;
        total += u64::from(len);
        longest = longest.max(len);
        // SAFETY: translates with the device's own `dma_range_map`: `-1` where no window holds
        // the address (only possible for a device with one).
        outside_bus_window |= unsafe { b::importer_dma_to_phys(dev.dev, addr) } == u64::MAX;
        Ok(())
    })?;
    args.nents = nents;
    args.mapped_bytes = total;
    args.longest_segment = longest;
    if longest > dev.limit() {
        return Err(errno(b::EMSGSIZE));
    }
    // A CPU physical address handed over as a DMA address: the device would reach other memory.
    if outside_bus_window {
        return Err(errno(b::EFAULT));
    }
    args.stage = STAGE_LENGTH;
    if total != args.size {
        return Err(errno(b::EBADMSG));
    }
    if args.flags & FLAG_MISUSE_SYNC_DIRECTION != 0 {
        let wrong = if args.direction == b::dma_data_direction_DMA_TO_DEVICE {
            b::dma_data_direction_DMA_FROM_DEVICE
        } else {
            b::dma_data_direction_DMA_TO_DEVICE
        };
        // SAFETY: the table is mapped for `dev`; syncing it with the other direction is the
        // mistake DMA-API debugging must report (it does no harm to the memory: the CPU wrote
        // nothing since the mapping was made).
        unsafe { b::importer_dma_sync_sgtable_for_cpu(dev.dev, sgt, wrong) };
    }
    let coherent = args.coherent != 0;
    if args.flags & FLAG_CHECK != 0 {
        args.stage = STAGE_PATTERN;
        let seed = args.check_seed;
        let mut offset = 0u64;
        let mut mismatch = None;
        for_each_mapped_segment(sgt, |addr, len| {
            if mismatch.is_none() {
                mismatch = device_view(dev, addr, len, coherent, |va, bytes, at| {
                    // SAFETY: `va` maps `bytes` bytes of the segment for the device's view.
                    unsafe { compare(va, bytes, offset + at, seed) }
                })?;
            }
            offset += u64::from(len);
            Ok(())
        })?;
        if let Some((off, expected, found)) = mismatch {
            args.mismatch_offset = off;
            args.expected = expected;
            args.found = found;
            return Err(errno(b::EILSEQ));
        }
    }
    if args.flags & FLAG_FILL != 0 {
        args.stage = STAGE_DEVICE_VIEW;
        let seed = args.fill_seed;
        let mut offset = 0u64;
        for_each_mapped_segment(sgt, |addr, len| {
            device_view(dev, addr, len, coherent, |va, bytes, at| {
                // SAFETY: as above; the mapping is writable and the device owns the memory.
                unsafe { fill(va, bytes, offset + at, seed) };
                None::<()>
            })?;
            offset += u64::from(len);
            Ok(())
        })?;
    }
    args.stage = STAGE_CPU_ACCESS;
    // SAFETY: a live dma-buf; the exporter syncs our mapping for the CPU and back.
    let ret = unsafe { b::dma_buf_begin_cpu_access(dmabuf, args.direction) };
    if ret != 0 {
        return Err(Error::from_errno(ret));
    }
    // SAFETY: as above, ending the access begun.
    let ret = unsafe { b::dma_buf_end_cpu_access(dmabuf, args.direction) };
    if ret != 0 {
        return Err(Error::from_errno(ret));
    }
    Ok(())
}

/// Maps the segment at DMA address `addr` window by window the way the device sees it and calls
/// `f(va, bytes, offset_in_segment)` for each window until `f` returns something.
fn device_view<T>(
    dev: &Device,
    addr: u64,
    len: u32,
    coherent: bool,
    mut f: impl FnMut(*mut u8, usize, u64) -> Option<T>,
) -> Result<Option<T>> {
    let page_size = b::IMPORTER_PAGE_SIZE as usize;
    // SAFETY: `addr` is a DMA address of our device's direct mapping.
    let phys = unsafe { b::importer_dma_to_phys(dev.dev, addr) };
    let len = len as usize;
    let mut done = 0usize;
    while done < len {
        let start = phys + done as u64;
        let in_page = (start as usize) & (page_size - 1);
        let bytes = (len - done).min(WINDOW_PAGES * page_size - in_page);
        let first_pfn = (start >> b::IMPORTER_PAGE_SHIFT) as usize;
        let npages = (in_page + bytes).div_ceil(page_size);
        // SAFETY: queries the resource tree.
        let ram = unsafe { b::page_is_ram(first_pfn as c_ulong) } == 1;
        let (base, vmapped): (*mut c_void, bool) = if ram {
            let mut pages = [ptr::null_mut::<b::page>(); WINDOW_PAGES];
            for (i, p) in pages.iter_mut().take(npages).enumerate() {
                // SAFETY: the pfn is System RAM mapped for our device: it has a struct page.
                *p = unsafe { b::importer_pfn_to_page((first_pfn + i) as c_ulong) };
            }
            // SAFETY: `npages` valid pages; the mapping is undone below.
            let va = unsafe {
                b::vmap(
                    pages.as_mut_ptr(),
                    npages as c_uint,
                    b::VM_MAP as c_ulong,
                    b::importer_device_pgprot(coherent),
                )
            };
            (va, true)
        } else {
            // Memory without a kernel mapping (a carveout): map it write-combined, as its
            // exporter does.
            // SAFETY: maps a physical range of the buffer; unmapped below.
            let va = unsafe {
                b::memremap(
                    start - in_page as u64,
                    npages * page_size,
                    b::IMPORTER_MEMREMAP_WC,
                )
            };
            (va, false)
        };
        if base.is_null() {
            return Err(ENOMEM);
        }
        // SAFETY: `base` maps `npages` pages from the one holding `start`.
        let va = unsafe { base.cast::<u8>().add(in_page) };
        let out = f(va, bytes, done as u64);
        // SAFETY: mapped above by the matching call.
        unsafe {
            if vmapped {
                b::vunmap(base);
            } else {
                b::memunmap(base);
            }
            b::importer_cond_resched();
        }
        if out.is_some() {
            return Ok(out);
        }
        done += bytes;
    }
    Ok(None)
}

/// Compares `bytes` bytes at `va` (buffer offset `offset`) with the pattern; returns the first
/// differing byte's offset, the expected and the found word (a single byte where the window
/// does not hold the whole word).
///
/// # Safety
/// `va` maps `bytes` readable bytes.
unsafe fn compare(va: *mut u8, bytes: usize, offset: u64, seed: u64) -> Option<(u64, u64, u64)> {
    let mut i = 0;
    while i < bytes {
        let at = offset + i as u64;
        let word = pattern_word(seed, at / 8);
        if at % 8 == 0 && i + 8 <= bytes && (va as usize + i) % 8 == 0 {
            // SAFETY: inside the mapping and 8-byte aligned.
            let found = unsafe { ptr::read_volatile(va.add(i).cast::<u64>()) };
            if found != word {
                let diff = (found ^ word).trailing_zeros() / 8;
                return Some((at + u64::from(diff), word, found));
            }
            i += 8;
        } else {
            // SAFETY: inside the mapping.
            let byte = unsafe { ptr::read_volatile(va.add(i)) };
            if byte != (word >> (8 * (at % 8))) as u8 {
                return Some((at, word, u64::from(byte)));
            }
            i += 1;
        }
    }
    None
}

/// Writes the pattern over `bytes` bytes at `va` (buffer offset `offset`).
///
/// # Safety
/// `va` maps `bytes` writable bytes.
unsafe fn fill(va: *mut u8, bytes: usize, offset: u64, seed: u64) {
    let mut i = 0;
    while i < bytes {
        let at = offset + i as u64;
        let word = pattern_word(seed, at / 8);
        if at % 8 == 0 && i + 8 <= bytes && (va as usize + i) % 8 == 0 {
            // SAFETY: inside the mapping and 8-byte aligned.
            unsafe { ptr::write_volatile(va.add(i).cast::<u64>(), word) };
            i += 8;
        } else {
            // SAFETY: inside the mapping.
            unsafe { ptr::write_volatile(va.add(i), (word >> (8 * (at % 8))) as u8) };
            i += 1;
        }
    }
}
