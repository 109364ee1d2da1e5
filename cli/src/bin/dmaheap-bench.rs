//! Allocation latency through the HAL against a direct `DMA_HEAP_IOCTL_ALLOC` on the same heap,
//! p50/p99 per size, with the ratios side by side; and the delegated path (version 2), where the
//! service hands the heap over once and each buffer is what libdmaheap's in-process path does:
//! one `DMA_HEAP_IOCTL_ALLOC` on the delegated node and one `DMA_BUF_SET_NAME`, each timed
//! alone too. Not a test: it prints numbers for people.

use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use clap::Parser;
use dmaheap_aidl::usage::CPU_READ_OFTEN;
use dmaheap_aidl::{phase_dump, BufferDescriptor, HeapSelector};
use dmaheap_client::{DmaHeap, HeapAllocator};

#[derive(Parser)]
#[command(about = "HAL vs direct dma-heap allocation latency")]
struct Args {
    /// The heap both paths allocate from.
    #[arg(long, default_value = "system")]
    heap: String,
    /// Allocations per path and size (halved for 8 MiB and up, where each one takes long).
    #[arg(long, default_value_t = 200)]
    iterations: usize,
    /// p50 in microseconds of a bare binder round trip that passes one fd, measured just before
    /// in the same VM (`binder-smoke bench-fd`): the 4 KiB HAL allocation is compared with it.
    #[arg(long)]
    bare_fd_us: Option<f64>,
}

/// Buffers per `allocateBatch` call in the batch column.
const BATCH: u32 = 4;

const SIZES: [(u64, &str); 5] = [
    (4 << 10, "4 KiB"),
    (64 << 10, "64 KiB"),
    (1 << 20, "1 MiB"),
    (8 << 20, "8 MiB"),
    (32 << 20, "32 MiB"),
];

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() -> Result<()> {
    let args = Args::parse();
    rsbinder::ProcessState::init_default()
        .map_err(|e| anyhow!("cannot open the binder device: {e}"))?;
    let hal = HeapAllocator::wait()?;
    let heap = DmaHeap::open(&args.heap)?;
    println!(
        "allocation latency on heap {:?}: HAL (binder + policy) vs direct ioctl, {} runs",
        args.heap, args.iterations
    );
    // The fixed cost of going through the service at all: a call through the policy that
    // allocates nothing.
    let floor = timed(args.iterations, || {
        hal.resolve_usage(CPU_READ_OFTEN)
            .map(drop)
            .map_err(Into::into)
    })?;
    println!(
        "binder round trip through the policy, no allocation (resolveUsage): p50 {:.1}us, p99 {:.1}us",
        us(percentile(&floor, 0.5)),
        us(percentile(&floor, 0.99))
    );
    println!(
        "{:>8} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9} {:>13} {:>14} {:>9} {:>12} {:>9} {:>9}",
        "size",
        "direct p50",
        "direct p99",
        "HAL p50",
        "HAL p99",
        "p50 x",
        "p99 x",
        "HAL-direct",
        "batch/buf p50",
        "batch x",
        "deleg p50",
        "deleg x",
        "named x"
    );
    let mut hal_4k_p50 = None;
    let mut hal_4k_phases = Vec::new();
    let mut worst_large = 0.0f64;
    let mut worst_batch_large = 0.0f64;
    let mut delegated_4k = None;
    let mut not_delegated = None;
    for (size, label) in SIZES {
        let runs = if size >= 8 << 20 {
            args.iterations.div_ceil(2)
        } else {
            args.iterations
        };
        let mut direct = Vec::with_capacity(runs);
        let mut via_hal = Vec::with_capacity(runs);
        // Warm both paths (page pools, binder buffers, first-touch of code) before measuring.
        drop(heap.allocate(size)?);
        drop(hal.allocate_from_heap(&args.heap, size, "bench")?);
        let phases_before = phase_dump::parse(&hal.dump()?);
        for _ in 0..runs {
            // Interleaved so that drift in the machine's state hits both paths alike; each
            // buffer is freed outside the timed region.
            let t = Instant::now();
            let buf = heap.allocate(size)?;
            direct.push(t.elapsed());
            drop(buf);
            let t = Instant::now();
            let buf = hal.allocate_from_heap(&args.heap, size, "bench")?;
            via_hal.push(t.elapsed());
            drop(buf);
        }
        let phases = phase_dump::difference(&phases_before, &phase_dump::parse(&hal.dump()?));
        let delegated = delegated_runs(&hal, &heap, &args.heap, size, runs)?;
        // gralloc asks for a BufferQueue's buffers in one call: the per-call cost is shared.
        let mut batched = Vec::with_capacity(runs.div_ceil(BATCH as usize));
        for _ in 0..runs.div_ceil(BATCH as usize) {
            let t = Instant::now();
            let bufs = hal.allocate_batch(
                &HeapSelector::HeapName(args.heap.clone()),
                size,
                BATCH,
                "bench",
            )?;
            batched.push(t.elapsed() / BATCH);
            drop(bufs);
        }
        direct.sort();
        via_hal.sort();
        batched.sort();
        let b50 = percentile(&batched, 0.5);
        let rb50 = us(b50) / us(percentile(&direct, 0.5));
        let (d50, d99) = (percentile(&direct, 0.5), percentile(&direct, 0.99));
        let (h50, h99) = (percentile(&via_hal, 0.5), percentile(&via_hal, 0.99));
        if size == 4 << 10 {
            hal_4k_p50 = Some(us(h50));
            hal_4k_phases = phases;
        }
        let r50 = us(h50) / us(d50);
        let r99 = us(h99) / us(d99);
        if size >= 1 << 20 {
            worst_large = worst_large.max(r50);
            worst_batch_large = worst_batch_large.max(rb50);
        }
        let (deleg50, deleg_x, named_x) = match delegated {
            Delegated::Runs(runs) => {
                let columns = (
                    format!("{:.1}us", runs.unnamed_p50()),
                    format!("{:.2}x", runs.unnamed_ratio()),
                    format!("{:.2}x", runs.named_ratio()),
                );
                if size == 4 << 10 {
                    delegated_4k = Some(runs);
                }
                columns
            }
            Delegated::Not(why) => {
                not_delegated = Some(why);
                ("-".to_owned(), "-".to_owned(), "-".to_owned())
            }
        };
        println!(
            "{label:>8} {:>10.1}us {:>10.1}us {:>10.1}us {:>10.1}us {r50:>8.2}x {r99:>8.2}x {:>+11.1}us {:>12.1}us {rb50:>8.2}x {deleg50:>12} {deleg_x:>9} {named_x:>9}",
            us(d50),
            us(d99),
            us(h50),
            us(h99),
            us(h50) - us(d50),
            us(b50)
        );
    }
    if delegated_4k.is_some() {
        println!(
            "deleg: the ioctl on the delegated node alone, named: with libdmaheap's name; both x against \
             the direct ioctl measured in turn with them, not the direct column (which alternates \
             with HAL calls)"
        );
    }
    match (delegated_4k, not_delegated) {
        (Some(runs), _) => {
            let ratio = runs.unnamed_ratio();
            println!(
                "delegated path at 4 KiB, interleaved with the direct ioctl: p50 {:.1}us against \
                 {:.1}us, {ratio:.2}x ({} the 1.10x target); named as libdmaheap names it (one \
                 more ioctl, DMA_BUF_SET_NAME) {:.1}us, {:.2}x",
                runs.unnamed_p50(),
                runs.direct_p50(),
                if ratio <= 1.10 { "within" } else { "above" },
                runs.named_p50(),
                runs.named_ratio()
            );
        }
        (None, Some(why)) => println!("no delegated column: {why}"),
        (None, None) => {}
    }
    let verdict = |ratio: f64| if ratio <= 1.10 { "within" } else { "above" };
    println!(
        "sizes >= 1 MiB, worst p50 ratio: {worst_large:.2}x one buffer per call ({} the 1.10x target), \
         {worst_batch_large:.2}x per buffer in batches of {BATCH} ({})",
        verdict(worst_large),
        verdict(worst_batch_large)
    );
    if let (Some(bare), Some(hal_4k)) = (args.bare_fd_us, hal_4k_p50) {
        let ratio = hal_4k / bare;
        println!(
            "4 KiB from {:?} through the HAL, p50 {hal_4k:.1}us, against a bare binder round trip \
             passing one fd, p50 {bare:.1}us: {ratio:.2}x ({} the 1.20x target)",
            args.heap,
            if ratio <= 1.20 { "within" } else { "above" }
        );
    }
    // Where the 4 KiB calls' time went inside the service (access checks on), from the
    // service's dumps around the single-buffer calls above. Means, so a few stalls of the
    // emulator weigh in; a dump between every two calls would leave each call colder than the
    // ones measured above.
    println!(
        "inside the service, 4 KiB from {:?}, mean per call of the HAL column:",
        args.heap
    );
    for p in &hal_4k_phases {
        let Some(mean) = p.total.checked_div(u32::try_from(p.count).unwrap_or(0)) else {
            continue;
        };
        match args.bare_fd_us {
            Some(bare) => println!(
                "  {:<28} {:>8.1}us  ({:.2}x the bare round trip)",
                p.phase,
                us(mean),
                us(mean) / bare
            ),
            None => println!("  {:<28} {:>8.1}us", p.phase, us(mean)),
        }
    }
    Ok(())
}

enum Delegated {
    Runs(DelegatedRuns),
    /// Why there is no column.
    Not(String),
}

/// Sorted times of the three ways to get a buffer in-process, measured in turn in one loop so
/// that the emulator's state (a binder call before flushes TCG's software TLB) weighs on each
/// alike: the direct ioctl on a node the caller opened, the ioctl on the delegated node, and
/// that ioctl with the name libdmaheap sets.
struct DelegatedRuns {
    direct: Vec<Duration>,
    unnamed: Vec<Duration>,
    named: Vec<Duration>,
}

impl DelegatedRuns {
    fn direct_p50(&self) -> f64 {
        us(percentile(&self.direct, 0.5))
    }
    fn unnamed_p50(&self) -> f64 {
        us(percentile(&self.unnamed, 0.5))
    }
    fn named_p50(&self) -> f64 {
        us(percentile(&self.named, 0.5))
    }
    fn unnamed_ratio(&self) -> f64 {
        self.unnamed_p50() / self.direct_p50()
    }
    fn named_ratio(&self) -> f64 {
        self.named_p50() / self.direct_p50()
    }
}

/// The delegated path for a CPU buffer of `size`: one `delegate()` (not timed: libdmaheap asks
/// once per shape), then `runs` buffers as libdmaheap makes them in-process.
fn delegated_runs(
    hal: &HeapAllocator,
    direct: &DmaHeap,
    heap: &str,
    size: u64,
    runs: usize,
) -> Result<Delegated> {
    let descriptor = BufferDescriptor {
        usage: CPU_READ_OFTEN as i64,
        size: size as i64,
        ..Default::default()
    };
    let Some(delegated) = hal
        .raw()
        .delegate(&descriptor)
        .map_err(|e| anyhow!("delegate: {e}"))?
    else {
        return Ok(Delegated::Not(
            "the policy does not delegate CPU_READ_OFTEN buffers to this caller".to_owned(),
        ));
    };
    if delegated.heapName != heap {
        return Ok(Delegated::Not(format!(
            "the policy delegates CPU_READ_OFTEN buffers from {:?}, not {heap:?}",
            delegated.heapName
        )));
    }
    let node = delegated
        .heap
        .map(std::os::fd::OwnedFd::from)
        .ok_or_else(|| anyhow!("a delegated heap without its node"))?;
    let node = DmaHeap::from_fd(&delegated.heapName, node)?;
    let label = dmaheap_client::name::buffer_label("bench", heap, None);
    let flags = delegated.heapFlags as u64;
    drop(node.allocate(size)?);
    let mut times = DelegatedRuns {
        direct: Vec::with_capacity(runs),
        unnamed: Vec::with_capacity(runs),
        named: Vec::with_capacity(runs),
    };
    for _ in 0..runs {
        let t = Instant::now();
        let buf = direct.allocate(size)?;
        times.direct.push(t.elapsed());
        drop(buf);
        let t = Instant::now();
        let buf = node.allocate_with_flags(size, flags)?;
        times.unnamed.push(t.elapsed());
        drop(buf);
        let t = Instant::now();
        let buf = node.allocate_with_flags(size, flags)?;
        let _ = buf.set_name(&label);
        times.named.push(t.elapsed());
        drop(buf);
    }
    for column in [&mut times.direct, &mut times.unnamed, &mut times.named] {
        column.sort();
    }
    Ok(Delegated::Runs(times))
}

/// `n` timed calls of `call`, sorted.
fn timed(n: usize, mut call: impl FnMut() -> Result<()>) -> Result<Vec<Duration>> {
    let mut times = (0..n)
        .map(|_| {
            let t = Instant::now();
            call().map(|()| t.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    times.sort();
    Ok(times)
}
