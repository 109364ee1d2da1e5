//! A gralloc-like client: allocates buffers for typical Android use cases through the HAL and
//! shows which heap served each, or why it was refused.

use std::os::fd::{AsFd, AsRawFd};

use anyhow::{anyhow, Result};
use dmaheap_aidl::{usage, HeapSelector};
use dmaheap_client::{CpuAccess, HeapAllocator};

struct UseCase {
    name: &'static str,
    usage: u64,
    /// One buffer's bytes, as gralloc would compute them for the format and size given.
    bytes: u64,
    format: &'static str,
    count: u32,
}

const CASES: &[UseCase] = &[
    UseCase {
        name: "camera output (preview)",
        usage: usage::CAMERA_OUTPUT | usage::GPU_TEXTURE | usage::COMPOSER_OVERLAY,
        bytes: 1920 * 1080 * 3 / 2,
        format: "1080p NV21",
        count: 4,
    },
    UseCase {
        name: "camera output (still, CPU)",
        usage: usage::CAMERA_OUTPUT | usage::CPU_READ_OFTEN,
        bytes: 4000 * 3000 * 3 / 2,
        format: "12 MP YUV_420_888",
        count: 2,
    },
    UseCase {
        name: "video decoder",
        usage: usage::VIDEO_DECODER | usage::GPU_TEXTURE,
        bytes: 3840 * 2160 * 3 / 2,
        format: "4K YUV 4:2:0",
        count: 6,
    },
    UseCase {
        name: "composer overlay",
        usage: usage::COMPOSER_OVERLAY | usage::GPU_RENDER_TARGET,
        bytes: 1280 * 720 * 4,
        format: "720p RGBA_8888",
        count: 3,
    },
    UseCase {
        name: "CPU read often",
        usage: usage::CPU_READ_OFTEN | usage::CPU_WRITE_OFTEN,
        bytes: 1 << 20,
        format: "1 MiB BLOB",
        count: 1,
    },
    UseCase {
        name: "protected video",
        usage: usage::PROTECTED | usage::VIDEO_DECODER | usage::COMPOSER_OVERLAY,
        bytes: 3840 * 2160 * 3 / 2,
        format: "4K YUV 4:2:0",
        count: 4,
    },
];

/// The name the kernel keeps for a dma-buf, as `dmabuf_dump` and fdinfo show it.
fn kernel_name(buf: &dmaheap_client::Buffer) -> Option<String> {
    let fd = buf.as_fd().as_raw_fd();
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("name:"))
        .map(|n| n.trim().to_owned())
}

fn main() -> Result<()> {
    rsbinder::ProcessState::init_default()
        .map_err(|e| anyhow!("cannot open the binder device: {e}"))?;
    let hal = HeapAllocator::wait()?;
    println!("gralloc-like client of {}", dmaheap_aidl::SERVICE_NAME);
    println!(
        "{:<27} {:<18} {:>10} {:>5}  {:<20} {:<16} result",
        "use case", "format", "bytes", "count", "heap", "rule"
    );
    let mut served = 0;
    let mut names = Vec::new();
    for case in CASES {
        let rule = match hal.resolve_usage(case.usage) {
            Ok(r) => r.rule,
            Err(_) => "-".to_owned(),
        };
        let prefix = format!(
            "{:<27} {:<18} {:>10} {:>5}",
            case.name, case.format, case.bytes, case.count
        );
        match hal.allocate_batch(
            &HeapSelector::Usage(case.usage as i64),
            case.bytes,
            case.count,
            case.name,
        ) {
            Ok(buffers) => {
                let heap = buffers[0].heap().to_owned();
                let check = if case.usage & usage::PROTECTED != 0 {
                    "protected, not mapped".to_owned()
                } else {
                    let first = &buffers[0];
                    let map = first.map()?;
                    let sync = first.cpu_access(CpuAccess::Read)?;
                    let zeroed = map.find_byte_not_equal_to(0).is_none();
                    sync.end()?;
                    if zeroed {
                        "ok, zeroed".to_owned()
                    } else {
                        "NOT ZEROED".to_owned()
                    }
                };
                println!("{prefix}  {heap:<20} {rule:<16} {check}");
                if let Some(name) = kernel_name(&buffers[0]) {
                    names.push(name);
                }
                served += 1;
            }
            Err(e) => println!("{prefix}  {:<20} {rule:<16} refused: {e}", "-"),
        }
    }
    let legacy = hal.allocate_ion(
        0b1_0001,
        dmaheap_aidl::consts::ION_FLAG_CACHED as u32,
        4096,
        1 << 20,
        "legacy.ion",
    );
    match legacy {
        Ok(b) => println!(
            "legacy ION caller (mask 0x11, ION_FLAG_CACHED) got {} bytes from {}",
            b.size(),
            b.heap()
        ),
        Err(e) => println!("legacy ION caller (mask 0x11, ION_FLAG_CACHED) refused: {e}"),
    }
    println!("{served} of {} use cases served", CASES.len());
    // What debugging tools see: the client's debug name first, then the batch index and the
    // heap where they fit in the 31 bytes the kernel keeps (the owner is in the service's dump).
    println!("dma-buf names the kernel keeps for them (first buffer of each batch):");
    for name in names {
        println!("  {name}");
    }
    Ok(())
}
