//! Per-heap statistics that heap modules publish in sysfs (heaps-kmod's
//! `/sys/kernel/dmaheap_heaps/<heap>/`: live buffers and bytes, watermark, pools, failures).

use std::path::Path;

/// Where heaps-kmod publishes one directory of counters per heap.
pub const HEAP_STATS_DIR: &str = "/sys/kernel/dmaheap_heaps";

/// The numeric counters of `heap` under `dir`, sorted by name; `None` when the heap publishes
/// none (a kernel built-in heap, or a module without statistics).
pub fn heap_stats_in(dir: &Path, heap: &str) -> Option<Vec<(String, u64)>> {
    if heap.is_empty() || heap.contains('/') || heap == "." || heap == ".." {
        return None;
    }
    let mut counters: Vec<(String, u64)> = std::fs::read_dir(dir.join(heap))
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            // Attributes that are not a single number (or not readable) are not counters.
            let value = std::fs::read_to_string(entry.path())
                .ok()?
                .trim()
                .parse()
                .ok()?;
            Some((name, value))
        })
        .collect();
    counters.sort();
    Some(counters)
}

/// [`heap_stats_in`] on [`HEAP_STATS_DIR`].
pub fn heap_stats(heap: &str) -> Option<Vec<(String, u64)>> {
    heap_stats_in(Path::new(HEAP_STATS_DIR), heap)
}

/// The heaps among `heaps` that publish counters, each with its counters as one
/// `name=value name=value ...` line, for dumps and tools.
pub fn counter_lines<'a>(heaps: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, String)> {
    heaps
        .into_iter()
        .filter_map(|heap| Some((heap, format_counters(&heap_stats(heap)?))))
        .collect()
}

fn format_counters(counters: &[(String, u64)]) -> String {
    counters
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_attributes_are_read_and_others_skipped() {
        let dir = std::env::temp_dir().join(format!("dmabuf-stats-{}", std::process::id()));
        let heap = dir.join("kmod-system");
        std::fs::create_dir_all(&heap).unwrap();
        std::fs::write(heap.join("bytes"), "8192\n").unwrap();
        std::fs::write(heap.join("buffers"), "2\n").unwrap();
        std::fs::write(heap.join("note"), "not a number\n").unwrap();
        let stats = heap_stats_in(&dir, "kmod-system");
        let missing = heap_stats_in(&dir, "system");
        let escaping = heap_stats_in(&dir, "../etc");
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            stats.unwrap(),
            [("buffers".to_owned(), 2), ("bytes".to_owned(), 8192)]
        );
        assert_eq!(missing, None);
        assert_eq!(escaping, None);
    }

    #[test]
    fn counters_format_as_one_line() {
        let counters = [("buffers".to_owned(), 2), ("bytes".to_owned(), 8192)];
        assert_eq!(format_counters(&counters), "buffers=2 bytes=8192");
    }
}
