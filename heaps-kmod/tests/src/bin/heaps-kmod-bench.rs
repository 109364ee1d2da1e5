//! Allocation latency of the module's heaps against the kernel's built-in ones, printed side by
//! side, in two patterns:
//! - **warm burst**: the module's cached system heap against the built-in `system` heap, cold
//!   (pools empty) and warm (pools filled), p50/p99 per size, each timed allocation after a pause;
//! - **loop**: 100 back-to-back allocate + close per size (the churn of a codec), p50 of the
//!   allocation, for `system` vs the module's cached system heap and, when both exist, the
//!   kernel's CMA heap vs the module's CMA heap.
//!
//! Usage: heaps-kmod-bench [--builtin system] [--kmod kmod-system] [--builtin-cma reserved]
//! [--kmod-cma kmod-cma] [--loops N] [--scale N] [--tight N SIZE]
//! (`--scale` multiplies the iteration counts of the warm burst.)

use std::time::{Duration, Instant};

use dmabuf::DmaHeap;
use heaps_kmod_tests::{drain_pools, stat, wait_deferred};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;

fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

struct Stats {
    p50: Duration,
    p99: Duration,
}

fn summarize(mut v: Vec<Duration>) -> Stats {
    v.sort();
    Stats {
        p50: percentile(&v, 0.50),
        p99: percentile(&v, 0.99),
    }
}

fn time_alloc(heap: &DmaHeap, size: u64) -> Result<Duration, String> {
    // Let background work (the module's worker, the previous buffer's release) go idle first.
    std::thread::sleep(Duration::from_millis(2));
    let t = Instant::now();
    let buf = heap.allocate(size).map_err(|e| e.to_string())?;
    let d = t.elapsed();
    drop(buf);
    Ok(d)
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn human(size: u64) -> String {
    if size >= MIB {
        format!("{} MiB", size / MIB)
    } else {
        format!("{} KiB", size / KIB)
    }
}

/// `--tight N SIZE`: N back-to-back allocate+close per heap, no pauses; mean per pair and the
/// allocation p50, for looking at per-call overhead rather than at pools.
fn tight(builtin: &DmaHeap, kmod: &DmaHeap, n: usize, size: u64) -> Result<(), String> {
    for heap in [builtin, kmod, builtin, kmod] {
        let t = Instant::now();
        let mut v = Vec::with_capacity(n);
        let mut c = Vec::with_capacity(n);
        for _ in 0..n {
            let t1 = Instant::now();
            let b = heap.allocate(size).map_err(|e| e.to_string())?;
            v.push(t1.elapsed());
            let t2 = Instant::now();
            drop(b);
            c.push(t2.elapsed());
        }
        let total = t.elapsed();
        let close_total: Duration = c.iter().sum();
        let (s, cs) = (summarize(v), summarize(c));
        println!(
            "{:>22}: {n} x {} alloc+close: {:.1} us per pair, alloc p50 {:.1} us p99 {:.1} us, close p50 {:.1} us p99 {:.1} us mean {:.1} us",
            heap.name(),
            human(size),
            us(total) / n as f64,
            us(s.p50),
            us(s.p99),
            us(cs.p50),
            us(cs.p99),
            us(close_total) / n as f64
        );
    }
    Ok(())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let builtin_name = arg(&args, "--builtin", "system");
    let kmod_name = arg(&args, "--kmod", "kmod-system");
    let scale: usize = arg(&args, "--scale", "1")
        .parse()
        .map_err(|_| "bad --scale")?;
    let builtin = DmaHeap::open(&builtin_name).map_err(|e| e.to_string())?;
    let kmod = DmaHeap::open(&kmod_name).map_err(|e| e.to_string())?;
    let limit = stat(&kmod_name, "pool_limit_bytes");
    if let Some(i) = args.iter().position(|a| a == "--tight") {
        let n = args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .ok_or("--tight N SIZE")?;
        let size = args
            .get(i + 2)
            .and_then(|v| v.parse().ok())
            .ok_or("--tight N SIZE")?;
        return tight(&builtin, &kmod, n, size);
    }

    let sizes: [(u64, usize); 5] = [
        (4 * KIB, 200),
        (64 * KIB, 150),
        (MIB, 60),
        (8 * MIB, 20),
        (32 * MIB, 10),
    ];
    println!(
        "pattern: warm burst; allocation latency, microseconds: built-in '{builtin_name}' vs module '{kmod_name}' (pool limit {} MiB)",
        limit / MIB
    );
    println!(
        "{:>7} | {:>21} | {:>21} | {:>21} | {:>13} | {:>13}",
        "size",
        "built-in p50 / p99",
        "kmod cold p50 / p99",
        "kmod warm p50 / p99",
        "speedup cold",
        "speedup warm"
    );
    for (size, n) in sizes {
        let n = n * scale;
        // One untimed allocation from each first.
        let _ = time_alloc(&builtin, size)?;
        let _ = time_alloc(&kmod, size)?;
        // The three measurements are interleaved, and every timed allocation follows the same
        // untimed steps (the module's worker idle, a 2 ms pause), so that host noise and
        // background work hit all columns alike.
        let warm_possible = size <= limit;
        let (mut b, mut cold, mut warm) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            // Built-in heap: no pools, every allocation zeroes fresh pages.
            if !wait_deferred(&kmod_name) {
                return Err("deferred free did not finish".into());
            }
            b.push(time_alloc(&builtin, size)?);
            // Module, cold: pools emptied through the shrinker first.
            if !drain_pools() || !wait_deferred(&kmod_name) {
                return Err("pools did not drain".into());
            }
            cold.push(time_alloc(&kmod, size)?);
            // Module, warm: the buffer just freed went back to the pools.
            if warm_possible {
                if !wait_deferred(&kmod_name) {
                    return Err("deferred free did not finish".into());
                }
                warm.push(time_alloc(&kmod, size)?);
            }
        }
        let (b, c) = (summarize(b), summarize(cold));
        let w = (!warm.is_empty()).then(|| summarize(warm));
        let fmt = |s: &Stats| format!("{:>9.1} / {:>9.1}", us(s.p50), us(s.p99));
        println!(
            "{:>7} | {} | {} | {} | {:>12.2}x | {:>12}",
            human(size),
            fmt(&b),
            fmt(&c),
            w.as_ref()
                .map(fmt)
                .unwrap_or_else(|| format!("{:>21}", "(above pool limit)")),
            us(b.p50) / us(c.p50),
            w.as_ref()
                .map(|w| format!("{:.2}x", us(b.p50) / us(w.p50)))
                .unwrap_or_else(|| "-".into()),
        );
    }
    println!("speedup = built-in p50 / module p50 (higher is better for the module)");

    let loops: usize = arg(&args, "--loops", "100")
        .parse()
        .map_err(|_| "bad --loops")?;
    let mut pairs = vec![(builtin_name.clone(), kmod_name.clone())];
    let (builtin_cma, kmod_cma) = (
        arg(&args, "--builtin-cma", "reserved"),
        arg(&args, "--kmod-cma", "kmod-cma"),
    );
    if DmaHeap::open(&builtin_cma).is_ok() && DmaHeap::open(&kmod_cma).is_ok() {
        pairs.push((builtin_cma, kmod_cma));
    }
    println!();
    println!(
        "pattern: loop ({loops} x allocate + close back to back per size, in halves A B B A; allocation p50, microseconds)"
    );
    println!(
        "{:>7} | {:>24} | {:>24} | {:>9}",
        "size", "built-in heap p50", "module heap p50", "speedup"
    );
    for (size, _) in sizes {
        for (b_name, k_name) in &pairs {
            let builtin = DmaHeap::open(b_name).map_err(|e| e.to_string())?;
            let module = DmaHeap::open(k_name).map_err(|e| e.to_string())?;
            // Half of each loop before and half after the other heap's (A B B A), so that
            // whatever the first loop leaves behind (pages to migrate out of a CMA area, a
            // worker still zeroing) weighs on both heaps alike.
            let first_half = loops / 2;
            let mut b = loop_times(&builtin, size, first_half)?;
            let mut k = loop_times(&module, size, first_half)?;
            k.extend(loop_times(&module, size, loops - first_half)?);
            b.extend(loop_times(&builtin, size, loops - first_half)?);
            let (b, k) = (summarize(b).p50, summarize(k).p50);
            println!(
                "{:>7} | {:>13} {:>10.1} | {:>13} {:>10.1} | {:>8.2}x",
                human(size),
                b_name,
                us(b),
                k_name,
                us(k),
                us(b) / us(k)
            );
        }
    }
    Ok(())
}

/// `n` back-to-back allocate + close of `size` bytes on `heap` (no pauses: whatever the heap
/// defers to the background competes with the next allocation); the allocations' times.
fn loop_times(heap: &DmaHeap, size: u64, n: usize) -> Result<Vec<Duration>, String> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let b = heap
            .allocate(size)
            .map_err(|e| format!("{}: {e}", heap.name()))?;
        v.push(t.elapsed());
        drop(b);
    }
    Ok(v)
}

fn main() {
    if let Err(e) = run() {
        eprintln!("heaps-kmod-bench: {e}");
        std::process::exit(1);
    }
}
