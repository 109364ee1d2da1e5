//! Shared helpers for the dmaheap_heaps guest test suite and benchmark: the module's sysfs
//! statistics, pool draining through the shrinker, and a raw allocation ioctl that does not
//! allocate in user space (for fault-injection runs).

use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub mod importer;
pub mod importer_tests;

/// Where the module publishes one directory of statistics per heap.
pub const STATS_DIR: &str = "/sys/kernel/dmaheap_heaps";
/// Where the module publishes one directory of debugging counters per heap (debugfs).
pub const DEBUG_DIR: &str = "/sys/kernel/debug/dmaheap_heaps";

/// The kernel's page size (4 KiB on x86_64; 4, 16 or 64 KiB on arm64).
pub fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .and_then(|v| u64::try_from(v).ok())
            .expect("sysconf(_SC_PAGESIZE)")
    })
}

/// The block sizes of the system heaps' pools, largest first, and their statistics files:
/// 1 MiB, 64 KiB and one page, whatever the page size (with 64 KiB pages the 64 KiB class is
/// the page class).
pub fn pool_classes() -> [(u64, &'static str); 3] {
    [
        (1 << 20, "pool_blocks_1mib"),
        ((1u64 << 16).max(page_size()), "pool_blocks_64kib"),
        (page_size(), "pool_blocks_page"),
    ]
}

/// One debugfs counter of one heap (`u64::MAX` when unreadable, which no check accepts).
pub fn debug_stat(heap: &str, file: &str) -> u64 {
    fs::read_to_string(Path::new(DEBUG_DIR).join(heap).join(file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX)
}
/// The module's name as the kernel knows it.
pub const MODULE_NAME: &str = "dmaheap_heaps";

/// A heap registered by the module.
#[derive(Debug, Clone)]
pub struct KmodHeap {
    pub name: String,
    pub uncached: bool,
    pub contiguous: bool,
    /// A carveout heap (boot-reserved range, write-combined through the module's own mapping).
    pub carveout: bool,
}

/// The module's heaps, sorted by name (empty if the module is not loaded).
pub fn kmod_heaps() -> Vec<KmodHeap> {
    let mut heaps = Vec::new();
    if let Ok(dir) = fs::read_dir(STATS_DIR) {
        for entry in dir.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            heaps.push(KmodHeap {
                uncached: stat(&name, "uncached") == 1,
                contiguous: stat(&name, "contiguous") == 1,
                carveout: stat(&name, "carveout") == 1,
                name,
            });
        }
    }
    heaps.sort_by(|a, b| a.name.cmp(&b.name));
    heaps
}

fn stat_path(heap: &str, file: &str) -> PathBuf {
    Path::new(STATS_DIR).join(heap).join(file)
}

/// One statistic of one heap (`u64::MAX` when unreadable, which no check accepts).
pub fn stat(heap: &str, file: &str) -> u64 {
    fs::read_to_string(stat_path(heap, file))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

/// Bytes held in the pools of `heaps`, together.
pub fn pool_bytes(heaps: &[KmodHeap]) -> u64 {
    heaps.iter().map(|h| stat(&h.name, "pool_bytes")).sum()
}

/// Resets the watermark of a heap to its current live bytes.
pub fn reset_watermark(heap: &str) -> std::io::Result<()> {
    fs::write(stat_path(heap, "watermark"), "0\n")
}

/// Waits until the deferred-free worker has processed everything released so far.
pub fn wait_deferred(heap: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if stat(heap, "deferred_bytes") == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// Waits for the deferred-free worker on every heap of the module.
pub fn wait_all_deferred() -> bool {
    kmod_heaps().iter().all(|h| wait_deferred(&h.name))
}

/// The module's shrinker directories in debugfs (CONFIG_SHRINKER_DEBUG).
pub fn shrinker_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(rd) = fs::read_dir("/sys/kernel/debug/shrinker") {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("dmaheap-pool") {
                dirs.push(e.path());
            }
        }
    }
    dirs
}

/// What the module's shrinkers report they could free, in pages (SHRINKER_DEBUG's `count` file:
/// `<memcg inode> <objects>` per line).
pub fn shrinker_count_pages() -> std::io::Result<u64> {
    let mut pages = 0;
    for d in shrinker_dirs() {
        let count = fs::read_to_string(d.join("count"))?;
        pages += count
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum::<u64>();
    }
    Ok(pages)
}

/// A file at the module's debugfs root set to a value until dropped, then back to `off`.
struct DebugfsSetting {
    file: &'static str,
    off: &'static str,
}

impl DebugfsSetting {
    fn set(file: &'static str, value: &str, off: &'static str) -> std::io::Result<Self> {
        fs::write(Path::new(DEBUG_DIR).join(file), value)?;
        Ok(Self { file, off })
    }
}

impl Drop for DebugfsSetting {
    fn drop(&mut self) {
        let _ = fs::write(Path::new(DEBUG_DIR).join(self.file), self.off);
    }
}

/// Keeps the module's deferred-free worker from taking released buffers (debugfs
/// `hold_deferred`) until dropped.
pub struct HoldDeferred {
    _setting: DebugfsSetting,
}

impl HoldDeferred {
    pub fn on() -> std::io::Result<Self> {
        DebugfsSetting::set("hold_deferred", "Y\n", "N\n").map(|_setting| Self { _setting })
    }
}

/// One of the module's test delays in debugfs, set until dropped.
pub struct TestDelay {
    _setting: DebugfsSetting,
}

impl TestDelay {
    /// Every watermark reset sleeps between its read of the live bytes and its store.
    pub const WATERMARK_RESET: &'static str = "watermark_reset_delay_ms";
    /// CMA and carveout allocations sleep before zeroing each MiB.
    pub const ALLOC_ZEROING: &'static str = "alloc_zeroing_delay_ms";

    pub fn set(knob: &'static str, delay: Duration) -> std::io::Result<Self> {
        DebugfsSetting::set(knob, &format!("{}\n", delay.as_millis()), "0\n")
            .map(|_setting| Self { _setting })
    }
}

/// Asks the module's shrinker, through SHRINKER_DEBUG's `scan` file, to free up to `pages`.
pub fn shrinker_scan(pages: u64) -> std::io::Result<()> {
    let dirs = shrinker_dirs();
    if dirs.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no dmaheap-pool shrinker in /sys/kernel/debug/shrinker",
        ));
    }
    for d in dirs {
        // "<memcg inode> <NUMA node> <objects to scan>"
        fs::write(d.join("scan"), format!("0 0 {pages}\n"))?;
    }
    Ok(())
}

/// Empties every pool of the module (after the worker finished refilling them).
pub fn drain_pools() -> bool {
    if !wait_all_deferred() {
        return false;
    }
    for _ in 0..8 {
        if shrinker_scan(1 << 30).is_err() {
            let _ = fs::write("/proc/sys/vm/drop_caches", "2\n");
        }
        if kmod_heaps()
            .iter()
            .all(|h| stat(&h.name, "pool_bytes") == 0)
        {
            return true;
        }
    }
    false
}

/// Base pages a heap holds from its backing allocator (page allocator, CMA area or carveout):
/// in live buffers, in its pools and in buffers waiting for the deferred-free worker (debugfs
/// `pages_owned`). The module counts it where it takes a block and where it gives one back, so
/// it is exact whatever else the system does, unlike free memory.
pub fn pages_owned(heap: &str) -> Result<u64, String> {
    let path = Path::new(DEBUG_DIR).join(heap).join("pages_owned");
    let text = fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}: the module must export the base pages each heap owns (live + pooled + deferred)",
            path.display()
        )
    })?;
    text.trim()
        .parse()
        .map_err(|e| format!("{}: {text:?}: {e}", path.display()))
}

/// What the module holds for one heap, by its own counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapHoldings {
    pub heap: String,
    pub buffers: u64,
    pub bytes: u64,
    pub pool_bytes: u64,
    pub deferred_bytes: u64,
    pub pages_owned: u64,
}

impl HeapHoldings {
    /// The counters of `heap` now. An unreadable file is an error, never a value that might match.
    pub fn of(heap: &str) -> Result<HeapHoldings, String> {
        let read = |file: &str| match stat(heap, file) {
            u64::MAX => Err(format!("{heap}: {STATS_DIR}/{heap}/{file} is unreadable")),
            v => Ok(v),
        };
        Ok(HeapHoldings {
            heap: heap.to_owned(),
            buffers: read("buffers")?,
            bytes: read("bytes")?,
            pool_bytes: read("pool_bytes")?,
            deferred_bytes: read("deferred_bytes")?,
            pages_owned: pages_owned(heap)?,
        })
    }

    /// The counters of every heap in `heaps`.
    pub fn of_all(heaps: &[KmodHeap]) -> Result<Vec<HeapHoldings>, String> {
        heaps.iter().map(|h| HeapHoldings::of(&h.name)).collect()
    }

    /// Every page the heap owns is in a live buffer, a pool or a buffer waiting for the worker,
    /// and nowhere else: `pages_owned` pages are exactly `bytes + pool_bytes + deferred_bytes`
    /// (read with no allocation or release in flight).
    pub fn consistent(&self) -> Result<(), String> {
        let accounted = self.bytes + self.pool_bytes + self.deferred_bytes;
        if self.pages_owned * page_size() == accounted {
            Ok(())
        } else {
            Err(format!(
                "{}: owns {} pages ({} bytes), but live {} + pooled {} + deferred {} = {accounted} bytes",
                self.heap,
                self.pages_owned,
                self.pages_owned * page_size(),
                self.bytes,
                self.pool_bytes,
                self.deferred_bytes
            ))
        }
    }
}

/// The exact leak verdict: with the pools drained and the worker idle, every heap's counters
/// (buffers, bytes, pool and deferred bytes, pages owned) are what they were in `before` (taken
/// the same way), and each heap's pages are exactly its buffers, pools and deferred buffers.
pub fn holdings_back_to(before: &[HeapHoldings]) -> Result<(), String> {
    if !drain_pools() {
        return Err("pools did not drain".into());
    }
    let mut wrong = Vec::new();
    for b in before {
        let now = HeapHoldings::of(&b.heap)?;
        if let Err(e) = now.consistent() {
            wrong.push(e);
        }
        if now != *b {
            wrong.push(format!("{}: {b:?} -> {now:?}", b.heap));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("\n"))
    }
}

/// Drains the pools, then takes every heap's counters, for [`holdings_back_to`].
pub fn drained_holdings(heaps: &[KmodHeap]) -> Result<Vec<HeapHoldings>, String> {
    if !drain_pools() {
        return Err("pools did not drain".into());
    }
    let before = HeapHoldings::of_all(heaps)?;
    for h in &before {
        h.consistent()?;
    }
    Ok(before)
}

/// kmemleak's debugfs file (CONFIG_DEBUG_KMEMLEAK; the checked test kernel has it, with automatic
/// scans off).
pub const KMEMLEAK: &str = "/sys/kernel/debug/kmemleak";

/// An explicit kmemleak scan: `Ok(None)` when the kernel has no kmemleak, `Ok(Some(report))`
/// otherwise, the report empty when no object is unreferenced. kmemleak reports only objects
/// older than 5 s, so this waits 6 s first (what the tests before it allocated is then old
/// enough), and scans twice, as the test plan's final check does. A kmemleak that is there but
/// refuses to scan (it turns itself off after an internal error) is an error, not a pass.
pub fn kmemleak_scan() -> Result<Option<String>, String> {
    if !Path::new(KMEMLEAK).exists() {
        return Ok(None);
    }
    std::thread::sleep(Duration::from_secs(6));
    for _ in 0..2 {
        fs::write(KMEMLEAK, "scan\n").map_err(|e| format!("{KMEMLEAK}: scan: {e}"))?;
    }
    fs::read_to_string(KMEMLEAK)
        .map(|report| Some(report.trim().to_owned()))
        .map_err(|e| format!("{KMEMLEAK}: {e}"))
}

/// [`kmemleak_scan`] as a verdict: no unreferenced kernel object (the report is printed when
/// there is one); a kernel without kmemleak passes with a note.
pub fn kmemleak_clean() -> Result<(), String> {
    match kmemleak_scan()? {
        None => {
            println!("# no kmemleak in this kernel ({KMEMLEAK}): nothing to scan");
            Ok(())
        }
        Some(report) if report.is_empty() => Ok(()),
        Some(report) => {
            let objects = report.matches("unreferenced object").count();
            Err(format!(
                "kmemleak reports {objects} unreferenced object(s):\n{}",
                report.lines().take(120).collect::<Vec<_>>().join("\n")
            ))
        }
    }
}

/// `struct dma_heap_allocation_data`.
#[repr(C)]
#[derive(Default)]
pub struct AllocData {
    pub len: u64,
    pub fd: u32,
    pub fd_flags: u32,
    pub heap_flags: u64,
}

nix::ioctl_readwrite!(dma_heap_alloc, b'H', 0, AllocData);

/// Allocates through the raw ioctl: no allocation in user space on the way (the fault-injection
/// test runs this with page allocation failing for the calling thread).
pub fn raw_alloc(heap_fd: &OwnedFd, len: u64) -> Result<OwnedFd, nix::Error> {
    let mut data = AllocData {
        len,
        fd_flags: (libc_o_rdwr() | libc_o_cloexec()) as u32,
        ..Default::default()
    };
    // SAFETY: `heap_fd` is an open dma-heap device; `data` is a live allocation_data the kernel
    // reads and writes during the call only.
    unsafe { dma_heap_alloc(heap_fd.as_raw_fd(), &mut data) }?;
    // SAFETY: on success the kernel installed a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(data.fd as i32) })
}

fn libc_o_rdwr() -> i32 {
    nix::fcntl::OFlag::O_RDWR.bits()
}

fn libc_o_cloexec() -> i32 {
    nix::fcntl::OFlag::O_CLOEXEC.bits()
}

/// Opens /dev/dma_heap/<name> read-only.
pub fn open_heap(name: &str) -> Result<OwnedFd, nix::Error> {
    nix::fcntl::open(
        &Path::new(dmabuf::DMA_HEAP_DIR).join(name),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
}

/// `MemFree` from /proc/meminfo, in KiB.
pub fn mem_free_kib() -> u64 {
    meminfo("MemFree:")
}

/// Pages on the per-CPU free lists, in KiB: freed, but not counted in `MemFree`; how many there
/// are changes with whatever ran last on each CPU.
pub fn per_cpu_free_kib() -> u64 {
    let pages: u64 = fs::read_to_string("/proc/zoneinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().strip_prefix("count:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum();
    pages * page_size() / 1024
}

/// Free memory in KiB: `MemFree` plus the per-CPU free lists.
pub fn free_kib() -> u64 {
    mem_free_kib() + per_cpu_free_kib()
}

/// A /proc/meminfo field in KiB.
pub fn meminfo(field: &str) -> u64 {
    fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A TAP producer: `ok N - name` / `not ok N - name`, the plan at the end.
#[derive(Default)]
pub struct Tap {
    n: usize,
    failed: usize,
}

impl Tap {
    pub fn result(&mut self, name: &str, res: Result<(), String>) {
        self.n += 1;
        match res {
            Ok(()) => println!("ok {} - {name}", self.n),
            Err(why) => {
                self.failed += 1;
                println!("not ok {} - {name}", self.n);
                for line in why.lines() {
                    println!("# {line}");
                }
            }
        }
    }

    pub fn finish(self) -> i32 {
        println!("1..{}", self.n);
        i32::from(self.failed > 0)
    }
}

/// `struct drm_prime_handle`.
#[repr(C)]
#[derive(Default)]
pub struct DrmPrimeHandle {
    pub handle: u32,
    pub flags: u32,
    pub fd: i32,
}

/// `struct drm_gem_close`.
#[repr(C)]
#[derive(Default)]
pub struct DrmGemClose {
    pub handle: u32,
    pub pad: u32,
}

nix::ioctl_readwrite!(drm_prime_fd_to_handle, b'd', 0x2e, DrmPrimeHandle);
nix::ioctl_write_ptr!(drm_gem_close, b'd', 0x09, DrmGemClose);

/// A DRM device that imports dma-bufs (vgem in the test VM): importing attaches and maps.
pub struct Importer {
    fd: OwnedFd,
}

impl Importer {
    /// The first /dev/dri/card* that opens.
    pub fn open() -> Option<Importer> {
        let mut cards: Vec<_> = fs::read_dir("/dev/dri")
            .ok()?
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("card"))
            })
            .collect();
        cards.sort();
        cards.into_iter().find_map(|p| {
            nix::fcntl::open(
                &p,
                nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .ok()
            .map(|fd| Importer { fd })
        })
    }

    /// Imports a dma-buf (attach + map in the exporter); returns the GEM handle.
    pub fn import(&self, buf: &impl std::os::fd::AsRawFd) -> Result<u32, nix::Error> {
        let mut arg = DrmPrimeHandle {
            fd: buf.as_raw_fd(),
            ..Default::default()
        };
        // SAFETY: `self.fd` is an open DRM device; `arg` is a live drm_prime_handle.
        unsafe { drm_prime_fd_to_handle(self.fd.as_raw_fd(), &mut arg) }?;
        Ok(arg.handle)
    }

    /// Drops the import (detach happens when the GEM object goes).
    pub fn close(&self, handle: u32) -> Result<(), nix::Error> {
        let arg = DrmGemClose { handle, pad: 0 };
        // SAFETY: `self.fd` is an open DRM device; `arg` is a live drm_gem_close.
        unsafe { drm_gem_close(self.fd.as_raw_fd(), &arg) }?;
        Ok(())
    }
}
