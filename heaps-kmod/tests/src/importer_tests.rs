//! The heap module's buffers imported by a device: the test importer (see `importer`) maps them
//! for devices with DMA segment limits of 4 KiB, 64 KiB, 1 MiB and none, in every direction,
//! checks the segments and the total length, reads what user space wrote through mmap the way
//! the device sees memory, writes as the device would and runs the CPU-access syncs; DMA-API
//! debugging must count no error. A deliberate direction mistake must be counted. Two devices
//! stand for SoCs: one whose bus sees RAM at an offset, and one whose segment limit is lowered
//! between attach and map.
//!
//! The kernel's own heaps are imported too, for comparison, without a segment limit only: they
//! do not split their scatter lists for a device's limit, and DMA-API debugging would report that.

use std::os::fd::AsFd;

use dmabuf::{CpuAccess, DmaBuf, DmaHeap};

use crate::importer::*;
use crate::{KmodHeap, Tap};

type R = Result<(), String>;

fn page_size() -> u64 {
    // SAFETY: sysconf reads a constant of the system.
    let size = unsafe { nix::libc::sysconf(nix::libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// Requested lengths: one page, then lengths that are no power of two and not page multiples,
/// below and above 1 MiB (the largest block of the system heaps).
fn request_lengths() -> Vec<u64> {
    let p = page_size();
    vec![
        p,
        100 * 1024 + 1,
        (1 << 20) + 3 * p + 1,
        (4 << 20) + 100 * 1024 + 7,
    ]
}

/// A heap under test and whether it promises to honour a device's segment limit.
struct Subject {
    name: String,
    module: bool,
}

fn subjects(heaps: &[KmodHeap]) -> Vec<Subject> {
    let mut all: Vec<Subject> = heaps
        .iter()
        .map(|h| Subject {
            name: h.name.clone(),
            module: true,
        })
        .collect();
    for name in DmaHeap::list().unwrap_or_default() {
        if !heaps.iter().any(|h| h.name == name) {
            all.push(Subject {
                name,
                module: false,
            });
        }
    }
    all
}

/// The seed of the n-th pattern of the run: different for every import, so no import can pass
/// on what an earlier one left behind.
fn next_seed(counter: &mut u64) -> u64 {
    *counter += 1;
    pattern_word(0x5eed_0f00_1a40_0000, *counter)
}

fn sync(buf: &DmaBuf, access: CpuAccess, start: bool) -> R {
    let res = if start {
        buf.begin_cpu_access(access)
    } else {
        buf.end_cpu_access(access)
    };
    res.map_err(|e| format!("DMA_BUF_IOCTL_SYNC: {e}"))
}

/// Which of the importer's devices an import goes through.
#[derive(Clone, Copy)]
enum Through {
    /// The device limited to this many bytes per segment (0: no limit).
    Limit(u32),
    /// The device whose bus sees RAM at an offset (no segment limit).
    BusOffset,
    /// The device limited to `from` bytes at attach and `SHRUNK_LIMIT` at map.
    Shrinking { from: u32 },
}

impl Through {
    fn max_segment_and_flags(self) -> (u32, u32) {
        match self {
            Through::Limit(limit) => (limit, 0),
            Through::BusOffset => (0, FLAG_BUS_OFFSET),
            Through::Shrinking { from } => (from, FLAG_SHRINK_LIMIT_AFTER_ATTACH),
        }
    }

    /// The segment limit the mapping must keep (0: none).
    fn limit_at_map(self) -> u32 {
        match self {
            Through::Limit(limit) => limit,
            Through::BusOffset => 0,
            Through::Shrinking { .. } => SHRUNK_LIMIT,
        }
    }
}

/// One import of `buf` through `device`, in `dir`.
fn import_once(
    importer: &TestImporter,
    buf: &DmaBuf,
    dir: Direction,
    device: Through,
    seeds: &mut u64,
) -> R {
    // The buffer is whole pages; `len()` is what was asked for.
    let len = buf.len().div_ceil(page_size()) as usize * page_size() as usize;
    let mut map = WordMap::new(buf.as_fd(), len).map_err(|e| format!("mmap: {e}"))?;
    let check_seed = next_seed(seeds);
    sync(buf, CpuAccess::Write, true)?;
    map.write_pattern(check_seed);
    sync(buf, CpuAccess::Write, false)?;

    let fill = dir != Direction::ToDevice;
    let (max_segment, device_flags) = device.max_segment_and_flags();
    let mut args = request(
        buf.as_fd(),
        dir,
        max_segment,
        device_flags | FLAG_CHECK | if fill { FLAG_FILL } else { 0 },
    );
    args.check_seed = check_seed;
    args.fill_seed = next_seed(seeds);
    let errors_before = dma_api_error_count()?;
    let result = importer.import(args);
    let errors_after = dma_api_error_count()?;
    if errors_after != errors_before {
        return Err(format!(
            "DMA-API debugging counted {} error(s) during the import (see the kernel log)",
            errors_after - errors_before
        ));
    }
    let report = result.map_err(|e| e.to_string())?;
    if report.stage != STAGE_DONE || report.size != len as u64 || report.mapped_bytes != len as u64
    {
        return Err(format!(
            "inconsistent report for a {len}-byte buffer: {report:?}"
        ));
    }
    let limit = device.limit_at_map();
    if limit != 0 && report.longest_segment > limit {
        return Err(format!(
            "segment of {} bytes passed a {limit}-byte limit",
            report.longest_segment
        ));
    }
    if fill {
        sync(buf, CpuAccess::Read, true)?;
        let bad = map.find_pattern_mismatch(args.fill_seed);
        sync(buf, CpuAccess::Read, false)?;
        if let Some((off, expected, found)) = bad {
            return Err(format!(
                "what the device wrote is not what user space reads: byte {off} (word {found:#018x}, expected {expected:#018x})"
            ));
        }
    }
    Ok(())
}

/// One buffer of each of `request_lengths()` from `heap`.
fn request_buffers(heap: &str) -> Result<Vec<DmaBuf>, String> {
    DmaHeap::open(heap)
        .map_err(|e| e.to_string())
        .and_then(|heap| {
            request_lengths()
                .into_iter()
                .map(|len| {
                    heap.allocate(len)
                        .map_err(|e| format!("allocating {len} bytes: {e}"))
                })
                .collect()
        })
}

/// Each buffer of `bufs` imported once through `device` in each of `dirs`.
fn import_each(
    importer: &TestImporter,
    bufs: &Result<Vec<DmaBuf>, String>,
    dirs: &[Direction],
    device: Through,
    seeds: &mut u64,
) -> R {
    let bufs = bufs.as_ref().map_err(|e| e.clone())?;
    dirs.iter().try_for_each(|&dir| {
        bufs.iter().try_for_each(|b| {
            import_once(importer, b, dir, device, seeds)
                .map_err(|e| format!("{}, {} bytes asked for: {e}", dir.name(), b.len()))
        })
    })
}

/// Every heap × segment limit × direction, with buffers of `request_lengths()`.
fn imports(tap: &mut Tap, importer: &TestImporter, subjects: &[Subject], seeds: &mut u64) {
    for s in subjects {
        let bufs = request_buffers(&s.name);
        let limits: &[u32] = if s.module { &SEGMENT_LIMITS } else { &[0] };
        for &limit in limits {
            for dir in Direction::ALL {
                let name = format!(
                    "{}: imported {}, {}, {} buffers of {:?} bytes",
                    s.name,
                    dir.name(),
                    limit_name(limit),
                    request_lengths().len(),
                    request_lengths()
                );
                let res = import_each(importer, &bufs, &[dir], Through::Limit(limit), seeds);
                tap.result(&name, res);
            }
        }
        if !s.module {
            println!(
                "# {}: the kernel's heap is imported without a segment limit only (it does not split for one)",
                s.name
            );
        }
    }
}

/// The module's heaps imported through the two SoC-like devices: one whose bus sees RAM at an
/// offset (the DMA addresses must be `phys_to_dma()` of the memory, or the device reads other
/// memory: the importer refuses addresses outside its window), and one whose segment limit drops
/// from 1 MiB to `SHRUNK_LIMIT` between attach and map (the mapping must keep the new limit).
fn soc_devices(tap: &mut Tap, importer: &TestImporter, heaps: &[KmodHeap], seeds: &mut u64) {
    let lengths = request_lengths();
    for h in heaps {
        let bufs = request_buffers(&h.name);
        tap.result(
            &format!(
                "{}: imported through a device that sees RAM at a bus offset (dma-ranges), every direction, {} buffers of {lengths:?} bytes",
                h.name,
                lengths.len()
            ),
            import_each(importer, &bufs, &Direction::ALL, Through::BusOffset, seeds),
        );
        tap.result(
            &format!(
                "{}: a segment limit lowered from 1 MiB to {} KiB between attach and map holds at map, {} buffers of {lengths:?} bytes",
                h.name,
                SHRUNK_LIMIT / 1024,
                lengths.len()
            ),
            import_each(
                importer,
                &bufs,
                &[Direction::Bidirectional],
                Through::Shrinking { from: 1 << 20 },
                seeds,
            ),
        );
    }
}

/// A mapping synced with the wrong direction is counted by DMA-API debugging, exactly once per
/// mapped segment and rule broken; the report is muted (see `DmaApiReportsMuted`), so the kernel
/// log stays free of warnings.
fn misuse(importer: &TestImporter, heap: &str, dir: Direction) -> R {
    dma_api_debug_active()?;
    let buf = DmaHeap::open(heap)
        .and_then(|h| h.allocate(3 * (1 << 20) / 2))
        .map_err(|e| e.to_string())?;
    let args = request(buf.as_fd(), dir, 64 * 1024, FLAG_MISUSE_SYNC_DIRECTION);
    let muted = DmaApiReportsMuted::new()?;
    let before = dma_api_error_count()?;
    let result = importer.import(args);
    let after = dma_api_error_count()?;
    drop(muted);
    let report = result.map_err(|e| e.to_string())?;
    // Syncing a TO_DEVICE mapping for the CPU as FROM_DEVICE breaks two rules (direction, and
    // reading device-read-only memory back); FROM_DEVICE synced as TO_DEVICE breaks one.
    let per_segment = if dir == Direction::ToDevice { 2 } else { 1 };
    let expected = u64::from(report.nents) * per_segment;
    record_deliberate_errors(after - before)?;
    if after - before != expected {
        return Err(format!(
            "DMA-API error count {before} -> {after}, expected +{expected} ({} segments × {per_segment})",
            report.nents
        ));
    }
    Ok(())
}

/// Requests the importer must refuse, each with its errno, before touching anything.
fn bad_requests(importer: &TestImporter, any_heap: &str) -> R {
    let buf = DmaHeap::open(any_heap)
        .and_then(|h| h.allocate(page_size()))
        .map_err(|e| e.to_string())?;
    let null = std::fs::File::open("/dev/null").map_err(|e| e.to_string())?;
    let ok = request(buf.as_fd(), Direction::Bidirectional, 0, 0);
    let cases: Vec<(&str, ImportArgs, nix::Error)> = vec![
        ("fd -1", ImportArgs { fd: -1, ..ok }, nix::Error::EBADF),
        (
            "an fd that is no dma-buf",
            ImportArgs {
                fd: std::os::fd::AsRawFd::as_raw_fd(&null),
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "direction 3 (DMA_NONE)",
            ImportArgs { direction: 3, ..ok },
            nix::Error::EINVAL,
        ),
        (
            "direction u32::MAX",
            ImportArgs {
                direction: u32::MAX,
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "segment limit 12345",
            ImportArgs {
                max_segment: 12345,
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "unknown flag",
            ImportArgs {
                flags: 1 << 31,
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "device writes into a TO_DEVICE mapping",
            ImportArgs {
                direction: Direction::ToDevice as u32,
                flags: FLAG_FILL,
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "misuse of a BIDIRECTIONAL mapping (nothing to misuse)",
            ImportArgs {
                flags: FLAG_MISUSE_SYNC_DIRECTION,
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "bus-offset device with a segment limit (it has none)",
            ImportArgs {
                flags: FLAG_BUS_OFFSET,
                max_segment: 4096,
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "bus-offset and shrinking device at once",
            ImportArgs {
                flags: FLAG_BUS_OFFSET | FLAG_SHRINK_LIMIT_AFTER_ATTACH,
                max_segment: 1 << 20,
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "shrinking device without a limit to shrink",
            ImportArgs {
                flags: FLAG_SHRINK_LIMIT_AFTER_ATTACH,
                ..ok
            },
            nix::Error::EINVAL,
        ),
        (
            "shrinking device from the shrunk limit itself",
            ImportArgs {
                flags: FLAG_SHRINK_LIMIT_AFTER_ATTACH,
                max_segment: SHRUNK_LIMIT,
                ..ok
            },
            nix::Error::EINVAL,
        ),
    ];
    for (what, args, errno) in cases {
        match importer.import(args) {
            Err(e) if e.errno == errno => {}
            Err(e) => return Err(format!("{what}: {e}, expected {errno}")),
            Ok(_) => return Err(format!("{what}: accepted, expected {errno}")),
        }
    }
    importer
        .import(ok)
        .map_err(|e| format!("valid request: {e}"))?;
    let mut args = ok;
    let wrong_cmd = nix::request_code_readwrite!(b'D', 0x41, std::mem::size_of::<ImportArgs>());
    match importer.raw_ioctl(wrong_cmd as u64, &mut args) {
        Err(nix::Error::ENOTTY) => Ok(()),
        other => Err(format!("unknown ioctl command: {other:?}, expected ENOTTY")),
    }
}

/// The importer's devices are DMA-coherent where the architecture is (x86) and not on arm64,
/// where every mapping and sync then runs the real cache maintenance.
fn coherence(importer: &TestImporter, any_heap: &str) -> R {
    let buf = DmaHeap::open(any_heap)
        .and_then(|h| h.allocate(page_size()))
        .map_err(|e| e.to_string())?;
    let report = importer
        .import(request(buf.as_fd(), Direction::Bidirectional, 0, 0))
        .map_err(|e| e.to_string())?;
    let expected = std::env::consts::ARCH == "x86_64";
    if (report.coherent == 1) != expected {
        return Err(format!(
            "device coherent = {}, expected {expected} on {}",
            report.coherent,
            std::env::consts::ARCH
        ));
    }
    Ok(())
}

/// All importer tests of the suite.
pub fn run(tap: &mut Tap, heaps: &[KmodHeap]) {
    let importer = match TestImporter::open() {
        Ok(i) => i,
        Err(e) => {
            tap.result("test importer present", Err(e));
            return;
        }
    };
    let Some(first) = heaps.first() else {
        tap.result(
            "test importer: a heap of the module to import",
            Err("none".into()),
        );
        return;
    };
    tap.result(
        "test importer refuses bad requests with typed errnos",
        bad_requests(&importer, &first.name),
    );
    tap.result(
        &format!(
            "test importer's devices are {} on {}",
            if std::env::consts::ARCH == "x86_64" {
                "DMA-coherent"
            } else {
                "not DMA-coherent"
            },
            std::env::consts::ARCH
        ),
        coherence(&importer, &first.name),
    );
    let mut seeds = 0;
    imports(tap, &importer, &subjects(heaps), &mut seeds);
    soc_devices(tap, &importer, heaps, &mut seeds);
    // Carveout memory has no kernel mapping: a CPU sync of it (what the misuse does) would have
    // the CPU clean caches of a range it cannot address. Only page-backed heaps are misused.
    for h in heaps.iter().filter(|h| !h.name.contains("carveout")) {
        for dir in [Direction::ToDevice, Direction::FromDevice] {
            tap.result(
                &format!(
                    "{}: a {} mapping synced the other way is counted by DMA-API debugging",
                    h.name,
                    dir.name()
                ),
                misuse(&importer, &h.name, dir),
            );
        }
    }
}
