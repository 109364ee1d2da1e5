//! The test importer (`dmaheap_test_importer.ko`, heaps-kmod/tests/importer/): a dma-buf
//! importer with a chosen DMA direction and segment limit, and DMA-API debugging's counters.
//!
//! The ioctl layout, flags and pattern here mirror heaps-kmod/tests/importer/importer.rs.

use std::fs;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// The importer's device node.
pub const DEVICE: &str = "/dev/dmaheap_test_importer";
/// The importer module as installed in the test guest.
pub const MODULE_PATH: &str = "/lib/modules/dmaheap_test_importer.ko";

/// DMA direction of the mapping (`enum dma_data_direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Bidirectional = 0,
    ToDevice = 1,
    FromDevice = 2,
}

impl Direction {
    pub const ALL: [Direction; 3] = [
        Direction::ToDevice,
        Direction::FromDevice,
        Direction::Bidirectional,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Direction::Bidirectional => "BIDIRECTIONAL",
            Direction::ToDevice => "TO_DEVICE",
            Direction::FromDevice => "FROM_DEVICE",
        }
    }
}

/// The importer's devices' maximum DMA segment sizes; 0 is "no limit".
pub const SEGMENT_LIMITS: [u32; 4] = [4096, 64 * 1024, 1024 * 1024, 0];

pub fn limit_name(limit: u32) -> String {
    match limit {
        0 => "no segment limit".into(),
        l if l >= 1 << 20 => format!("{} MiB segments", l >> 20),
        l => format!("{} KiB segments", l >> 10),
    }
}

/// The device reads the buffer and compares it with the pattern of `check_seed`.
pub const FLAG_CHECK: u32 = 1 << 0;
/// The device writes the pattern of `fill_seed` (not with `ToDevice`).
pub const FLAG_FILL: u32 = 1 << 1;
/// The importer syncs its mapping for the CPU with the other direction: a DMA-API mistake.
pub const FLAG_MISUSE_SYNC_DIRECTION: u32 = 1 << 2;
/// Import through the device whose bus sees RAM at an offset (`dma-ranges`); no segment limit.
pub const FLAG_BUS_OFFSET: u32 = 1 << 3;
/// Import through the device whose limit is `max_segment` at attach and `SHRUNK_LIMIT` at map.
pub const FLAG_SHRINK_LIMIT_AFTER_ATTACH: u32 = 1 << 4;
/// The shrinking device's segment limit at map time.
pub const SHRUNK_LIMIT: u32 = 4096;

/// `stage` of an import that went through.
pub const STAGE_DONE: u32 = 10;

/// `struct dmaheap_test_import`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportArgs {
    pub fd: i32,
    pub direction: u32,
    pub max_segment: u32,
    pub flags: u32,
    pub check_seed: u64,
    pub fill_seed: u64,
    pub size: u64,
    pub mapped_bytes: u64,
    pub nents: u32,
    pub longest_segment: u32,
    pub mismatch_offset: u64,
    pub expected: u64,
    pub found: u64,
    pub coherent: u32,
    pub stage: u32,
}

nix::ioctl_readwrite!(test_import, b'D', 0x40, ImportArgs);

/// The pattern's 8-byte word number `index` (splitmix64 of `seed + index * golden ratio`).
pub fn pattern_word(seed: u64, index: u64) -> u64 {
    let mut z = seed.wrapping_add(index.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// An import that failed: the errno and what the importer reported.
#[derive(Debug)]
pub struct ImportError {
    pub errno: nix::Error,
    pub report: ImportArgs,
}

impl std::fmt::Display for ImportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.report;
        write!(
            f,
            "import failed with {} at stage {} (size {}, {} segments, longest {}, mapped {} bytes",
            self.errno, r.stage, r.size, r.nents, r.longest_segment, r.mapped_bytes
        )?;
        if r.mismatch_offset != u64::MAX {
            write!(
                f,
                ", first wrong byte at {} (word {:#018x}, expected {:#018x})",
                r.mismatch_offset, r.found, r.expected
            )?;
        }
        write!(f, ")")
    }
}

/// An open test importer.
pub struct TestImporter {
    fd: OwnedFd,
}

impl TestImporter {
    pub fn open() -> Result<TestImporter, String> {
        nix::fcntl::open(
            Path::new(DEVICE),
            nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(|fd| TestImporter { fd })
        .map_err(|e| format!("{DEVICE}: {e} (is dmaheap_test_importer.ko loaded?)"))
    }

    /// Imports `buf` once (attach, map, checks, CPU access, unmap, detach).
    pub fn import(&self, mut args: ImportArgs) -> Result<ImportArgs, ImportError> {
        // SAFETY: `self.fd` is the importer's device; `args` is a live ImportArgs the kernel
        // reads and writes during the call only.
        match unsafe { test_import(self.fd.as_raw_fd(), &mut args) } {
            Ok(_) => Ok(args),
            Err(errno) => Err(ImportError {
                errno,
                report: args,
            }),
        }
    }

    /// Sends a raw ioctl command with `args` (for the unknown-command check).
    pub fn raw_ioctl(&self, cmd: u64, args: &mut ImportArgs) -> nix::Result<i32> {
        // SAFETY: the argument points to a live ImportArgs; the importer reads at most its size.
        let ret = unsafe {
            nix::libc::ioctl(
                self.fd.as_raw_fd(),
                cmd as _,
                args as *mut ImportArgs as *mut nix::libc::c_void,
            )
        };
        nix::errno::Errno::result(ret)
    }
}

/// The request for one import of `buf`.
pub fn request(buf: BorrowedFd<'_>, dir: Direction, max_segment: u32, flags: u32) -> ImportArgs {
    ImportArgs {
        fd: buf.as_raw_fd(),
        direction: dir as u32,
        max_segment,
        flags,
        ..Default::default()
    }
}

/// A shared mapping of a whole dma-buf, for writing and checking patterns as words.
pub struct WordMap {
    ptr: std::ptr::NonNull<std::ffi::c_void>,
    len: usize,
}

impl WordMap {
    pub fn new(buf: BorrowedFd<'_>, len: usize) -> nix::Result<WordMap> {
        use nix::sys::mman::{mmap, MapFlags, ProtFlags};
        // SAFETY: a new shared mapping of the dma-buf; nothing else is mapped at the address the
        // kernel picks.
        let ptr = unsafe {
            mmap(
                None,
                std::num::NonZeroUsize::new(len).ok_or(nix::Error::EINVAL)?,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_SHARED,
                buf,
                0,
            )
        }?;
        Ok(WordMap { ptr, len })
    }

    fn words(&self) -> *mut u64 {
        self.ptr.as_ptr().cast()
    }

    /// Writes the pattern of `seed` over the whole buffer.
    pub fn write_pattern(&mut self, seed: u64) {
        for i in 0..self.len / 8 {
            // SAFETY: inside the mapping, which is page-aligned.
            unsafe {
                self.words()
                    .add(i)
                    .write_volatile(pattern_word(seed, i as u64))
            };
        }
    }

    /// The first byte that differs from the pattern of `seed`.
    pub fn find_pattern_mismatch(&self, seed: u64) -> Option<(usize, u64, u64)> {
        for i in 0..self.len / 8 {
            // SAFETY: inside the mapping.
            let found = unsafe { self.words().add(i).read_volatile() };
            let expected = pattern_word(seed, i as u64);
            if found != expected {
                let byte = (found ^ expected).trailing_zeros() as usize / 8;
                return Some((i * 8 + byte, expected, found));
            }
        }
        None
    }
}

impl Drop for WordMap {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `new`.
        let _ = unsafe { nix::sys::mman::munmap(self.ptr, self.len) };
    }
}

const DMA_API_DIR: &str = "/sys/kernel/debug/dma-api";

fn dma_api_read(file: &str) -> Result<u64, String> {
    let path = format!("{DMA_API_DIR}/{file}");
    fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e} (the checked kernel has CONFIG_DMA_API_DEBUG)"))?
        .trim()
        .parse()
        .map_err(|e| format!("{path}: {e}"))
}

/// DMA-API debugging's count of the errors it found since boot.
pub fn dma_api_error_count() -> Result<u64, String> {
    dma_api_read("error_count")
}

/// DMA-API debugging is on and has not switched itself off (it does on internal errors).
pub fn dma_api_debug_active() -> Result<(), String> {
    let path = format!("{DMA_API_DIR}/disabled");
    match fs::read_to_string(&path)
        .map_err(|e| format!("{path}: {e}"))?
        .trim()
    {
        "N" => Ok(()),
        other => Err(format!(
            "DMA-API debugging disabled itself ({path}: {other})"
        )),
    }
}

/// Entries DMA-API debugging has allocated (it grows its pool in pages it never gives back).
pub fn dma_api_total_entries() -> u64 {
    dma_api_read("nr_total_entries").unwrap_or(0)
}

/// Where the suite records the DMA-API errors it caused on purpose, for the plan's final check
/// that DMA-API debugging counted nothing else.
pub const DELIBERATE_ERRORS_FILE: &str = "/tmp/dma-api-deliberate-errors";

/// Adds `n` to the deliberate-error record.
pub fn record_deliberate_errors(n: u64) -> Result<(), String> {
    let now: u64 = fs::read_to_string(DELIBERATE_ERRORS_FILE)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    fs::write(DELIBERATE_ERRORS_FILE, format!("{}\n", now + n))
        .map_err(|e| format!("{DELIBERATE_ERRORS_FILE}: {e}"))
}

/// While alive, DMA-API debugging reports errors only for a driver that does not exist: it
/// still counts every error (`error_count`) but prints none, so an error made on purpose leaves
/// no WARNING in the kernel log. Dropping it switches the filter off and restores how many
/// errors DMA-API debugging prints (each printed error uses up one of `num_errors`, also while
/// filtered), so later mistakes of anyone still show up as warnings.
pub struct DmaApiReportsMuted {
    num_errors: String,
}

impl DmaApiReportsMuted {
    pub const FILTER: &'static str = "dmaheap-test-expected-only";

    pub fn new() -> Result<DmaApiReportsMuted, String> {
        let num_errors = fs::read_to_string(format!("{DMA_API_DIR}/num_errors"))
            .map_err(|e| format!("dma-api/num_errors: {e}"))?;
        fs::write(
            format!("{DMA_API_DIR}/driver_filter"),
            format!("{}\n", Self::FILTER),
        )
        .map_err(|e| format!("dma-api/driver_filter: {e}"))?;
        Ok(DmaApiReportsMuted { num_errors })
    }
}

impl Drop for DmaApiReportsMuted {
    fn drop(&mut self) {
        let _ = fs::write(format!("{DMA_API_DIR}/driver_filter"), "\n");
        let _ = fs::write(format!("{DMA_API_DIR}/num_errors"), &self.num_errors);
    }
}
