//! `dmaheapctl`: ask the allocator HAL what it has, what it would do, and try it.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use dmaheap_aidl::{usage, HeapSelector, Resolution};
use dmaheap_client::{CpuAccess, HeapAllocator};
use serde_json::json;

#[derive(Parser)]
#[command(version, about = "Inspect and exercise vendor.dmaheap.IHeapAllocator")]
struct Cli {
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the heaps the policy declares and whether this device has them.
    Heaps,
    /// Show which heap and rule a request resolves to, without allocating.
    Explain(Target),
    /// Allocate test buffers, check they are zeroed, and release them.
    Alloc {
        #[command(flatten)]
        target: Target,
        /// Size of each buffer: bytes, or with a K/M/G suffix.
        #[arg(long, value_parser = parse_size, default_value = "4K")]
        size: u64,
        /// Allocate this many buffers in one all-or-nothing batch.
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// The debug name given to the buffers.
        #[arg(long, default_value = "dmaheapctl")]
        name: String,
    },
    /// Show the service's counters per heap and per calling uid.
    Stats,
    /// Print the service's dump (what `dumpsys` shows): policy, heaps, counters.
    Dump,
    /// List the gralloc usage names this tool understands.
    UsageNames,
}

#[derive(Args)]
struct Target {
    #[command(flatten)]
    which: Which,
    /// With --ion-mask: ask for ION_FLAG_CACHED.
    #[arg(long)]
    cached: bool,
}

#[derive(Args)]
#[group(required = true, multiple = false)]
struct Which {
    /// Gralloc usage, e.g. "GPU_TEXTURE|CPU_READ_OFTEN" or 0x103.
    #[arg(long, value_parser = usage::parse)]
    usage: Option<u64>,
    /// A heap by name.
    #[arg(long)]
    heap: Option<String>,
    /// A legacy ION heap-id mask, e.g. 0x2000001.
    #[arg(long, value_parser = parse_u32)]
    ion_mask: Option<u32>,
}

impl Target {
    fn selector(&self) -> Result<HeapSelector> {
        if self.cached && self.which.ion_mask.is_none() {
            bail!("--cached is an ION flag: it goes with --ion-mask");
        }
        Ok(
            match (self.which.usage, &self.which.heap, self.which.ion_mask) {
                (Some(u), _, _) => HeapSelector::Usage(u as i64),
                (_, Some(h), _) => HeapSelector::HeapName(h.clone()),
                (_, _, Some(mask)) => {
                    HeapSelector::Ion(dmaheap_client::ion_request(mask, self.ion_flags(), 0)?)
                }
                _ => bail!("give --usage, --heap or --ion-mask"),
            },
        )
    }

    fn ion_flags(&self) -> u32 {
        if self.cached {
            dmaheap_aidl::consts::ION_FLAG_CACHED as u32
        } else {
            0
        }
    }
}

fn parse_u32(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let parsed = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    };
    parsed.map_err(|e| format!("{s:?}: {e}"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("{s:?} is not a size"))?;
    let shift = match unit.to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

fn connect() -> Result<HeapAllocator> {
    rsbinder::ProcessState::init_default()
        .map_err(|e| anyhow!("cannot open the binder device: {e}"))?;
    HeapAllocator::check().context("is the HAL service running?")
}

fn resolution_json(r: &Resolution) -> serde_json::Value {
    json!({"heap": r.heapName, "candidates": r.candidates, "rule": r.rule, "reason": r.reason})
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Command::UsageNames = cli.command {
        if cli.json {
            let map: serde_json::Map<_, _> = usage::NAMES
                .iter()
                .map(|(n, v)| (n.to_string(), json!(v)))
                .collect();
            println!("{}", serde_json::Value::Object(map));
        } else {
            for (name, value) in usage::NAMES {
                println!("{name:<24} {value:#x}");
            }
        }
        return Ok(());
    }
    let hal = connect()?;
    match cli.command {
        Command::Heaps => {
            let heaps = hal.list_heaps()?;
            if cli.json {
                let list: Vec<_> = heaps
                    .iter()
                    .map(|h| {
                        json!({"name": h.name, "present": h.present, "cached": h.cached, "contiguous": h.contiguous,
                               "secure": h.secure, "ion_heap_ids": h.ionHeapIds, "description": h.description})
                    })
                    .collect();
                println!("{}", json!(list));
            } else {
                println!(
                    "{:<22} {:<8} {:<7} {:<11} {:<7} {:<10} description",
                    "heap", "present", "cached", "contiguous", "secure", "ion-ids"
                );
                for h in heaps {
                    let ids = h
                        .ionHeapIds
                        .iter()
                        .map(i32::to_string)
                        .collect::<Vec<_>>()
                        .join(",");
                    let yes = |b: bool| if b { "yes" } else { "no" };
                    println!(
                        "{:<22} {:<8} {:<7} {:<11} {:<7} {:<10} {}",
                        h.name,
                        yes(h.present),
                        yes(h.cached),
                        yes(h.contiguous),
                        yes(h.secure),
                        if ids.is_empty() { "-".to_owned() } else { ids },
                        h.description
                    );
                }
            }
        }
        Command::Explain(target) => {
            let resolution = match target.selector()? {
                HeapSelector::Usage(u) => hal.resolve_usage(u as u64)?,
                HeapSelector::Ion(_) => {
                    hal.resolve_ion(target.which.ion_mask.unwrap_or(0), target.ion_flags())?
                }
                HeapSelector::HeapName(name) => {
                    let heaps = hal.list_heaps()?;
                    let heap = heaps
                        .iter()
                        .find(|h| h.name == name)
                        .ok_or_else(|| anyhow!("heap {name:?} is not declared by the policy"))?;
                    Resolution {
                        heapName: name.clone(),
                        candidates: if heap.present {
                            vec![name.clone()]
                        } else {
                            vec![]
                        },
                        rule: "named".into(),
                        reason: format!(
                            "heap {name:?} requested by name; present: {}",
                            heap.present
                        ),
                    }
                }
            };
            if cli.json {
                println!("{}", resolution_json(&resolution));
            } else {
                println!("heap:       {}", resolution.heapName);
                println!("fallbacks:  {}", resolution.candidates.join(" > "));
                println!("rule:       {}", resolution.rule);
                println!("reason:     {}", resolution.reason);
            }
        }
        Command::Alloc {
            target,
            size,
            count,
            name,
        } => {
            let buffers = hal.allocate_batch(&target.selector()?, size, count, &name)?;
            let mut rows = Vec::new();
            for (index, buf) in buffers.iter().enumerate() {
                let map = buf.map()?;
                let sync = buf.cpu_access(CpuAccess::Read)?;
                let dirty = map.find_byte_not_equal_to(0);
                sync.end()?;
                rows.push(json!({"index": index, "heap": buf.heap(), "size": buf.size(), "zeroed": dirty.is_none()}));
                if let Some(offset) = dirty {
                    bail!(
                        "buffer {index} from {} is not zeroed at offset {offset}",
                        buf.heap()
                    );
                }
            }
            if cli.json {
                println!("{}", json!(rows));
            } else {
                println!("{:<6} {:<22} {:>12} zeroed", "index", "heap", "bytes");
                for r in rows {
                    println!(
                        "{:<6} {:<22} {:>12} {}",
                        r["index"],
                        r["heap"].as_str().unwrap_or(""),
                        r["size"],
                        r["zeroed"]
                    );
                }
            }
        }
        Command::Stats => {
            let stats = hal.stats()?;
            if cli.json {
                let heaps: Vec<_> = stats
                    .heaps
                    .iter()
                    .map(|h| json!({"heap": h.heapName, "allocations": h.allocations, "bytes": h.bytes, "failures": h.failures}))
                    .collect();
                let clients: Vec<_> = stats
                    .clients
                    .iter()
                    .map(|c| json!({"uid": c.uid, "allocations": c.allocations, "bytes": c.bytes, "errors": c.errors}))
                    .collect();
                // What heap modules publish about live memory; the service only counts hand-outs.
                let kernel: serde_json::Map<_, _> = stats
                    .heaps
                    .iter()
                    .filter_map(|h| {
                        let counters = dmaheap_client::stats::heap_stats(&h.heapName)?;
                        let map: serde_json::Map<_, _> =
                            counters.into_iter().map(|(k, v)| (k, json!(v))).collect();
                        Some((h.heapName.clone(), serde_json::Value::Object(map)))
                    })
                    .collect();
                println!(
                    "{}",
                    json!({"policy": stats.policyPath, "heaps": heaps, "clients": clients, "kernel": kernel})
                );
            } else {
                println!("policy: {}\n", stats.policyPath);
                println!(
                    "{:<22} {:>12} {:>16} {:>9}",
                    "heap", "allocations", "bytes", "failures"
                );
                for h in &stats.heaps {
                    println!(
                        "{:<22} {:>12} {:>16} {:>9}",
                        h.heapName, h.allocations, h.bytes, h.failures
                    );
                }
                let published = dmaheap_client::stats::counter_lines(
                    stats.heaps.iter().map(|h| h.heapName.as_str()),
                );
                if !published.is_empty() {
                    println!(
                        "\nlive memory, from {}:",
                        dmaheap_client::stats::HEAP_STATS_DIR
                    );
                    for (heap, line) in published {
                        println!("{heap:<22} {line}");
                    }
                }
                println!(
                    "\n{:<10} {:>12} {:>16} {:>9}",
                    "uid", "allocations", "bytes", "errors"
                );
                for c in &stats.clients {
                    println!(
                        "{:<10} {:>12} {:>16} {:>9}",
                        c.uid, c.allocations, c.bytes, c.errors
                    );
                }
            }
        }
        Command::Dump => {
            let text = hal.dump()?;
            if cli.json {
                println!("{}", json!({ "dump": text }));
            } else {
                print!("{text}");
            }
        }
        Command::UsageNames => unreachable!("handled before connecting"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("4K").unwrap(), 4096);
        assert_eq!(parse_size("64kib").unwrap(), 65536);
        assert_eq!(parse_size("32M").unwrap(), 32 << 20);
        assert!(parse_size("1T").is_err());
        assert!(parse_size("K").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn masks_take_hex_or_decimal() {
        assert_eq!(parse_u32("0x2000001").unwrap(), 0x2000001);
        assert_eq!(parse_u32("17").unwrap(), 17);
        assert!(parse_u32("0x1_0000_0000").is_err());
    }

    #[test]
    fn exactly_one_target_is_required() {
        assert!(Cli::try_parse_from(["dmaheapctl", "explain"]).is_err());
        assert!(Cli::try_parse_from([
            "dmaheapctl",
            "explain",
            "--usage",
            "GPU_TEXTURE",
            "--heap",
            "system"
        ])
        .is_err());
        let cached_heap = ["dmaheapctl", "explain", "--heap", "system", "--cached"];
        match Cli::try_parse_from(cached_heap).unwrap().command {
            Command::Explain(target) => assert!(target.selector().is_err()),
            _ => panic!("parsed the wrong command"),
        }
        let cli = Cli::try_parse_from([
            "dmaheapctl",
            "--json",
            "alloc",
            "--ion-mask",
            "0x11",
            "--cached",
            "--size",
            "1M",
        ])
        .unwrap();
        match cli.command {
            Command::Alloc { target, size, .. } => {
                assert_eq!(size, 1 << 20);
                assert_eq!(target.ion_flags(), 1);
            }
            _ => panic!("parsed the wrong command"),
        }
    }
}
