//! The kernel symbols the heap module imports, kept in `heaps-kmod/kmi_symbols.txt` as a section
//! of an Android KMI symbol list for device makers, and checked against the freshly built `.ko`.
//!
//! The list describes the module built for arm64 (every GKI phone) against the test bed's kernel
//! *without* debugging options: the checked kernel's KASAN, UBSAN, lockdep and DMA-API debugging
//! add imports (`__asan_*`, `__might_resched`, `debug_dma_mapping_error`, ...) that a GKI kernel
//! does not export. What the module imports is what `llvm-nm -u` reads from the `.ko`: the
//! undefined symbols the kernel resolves at load time (modpost checks the same set against the
//! kernel's exports).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::kernel::{self, Arch, Variant};
use crate::{cmd, guest, paths, progress};

/// The committed list, relative to the repository.
pub const LIST: &str = "heaps-kmod/kmi_symbols.txt";
const MODULE_DIR: &str = "heaps-kmod";
const MODULE: &str = "dmaheap_heaps.ko";
/// The kernel the list is taken from: arm64, without the checked kernel's instrumentation.
pub const ARCH: Arch = Arch::Arm64;
const VARIANT: Variant = Variant::Bench;

const SECTION: &str = "[abi_symbol_list]";

/// The undefined symbols of a module: what the kernel must export for it to load.
pub fn imported_symbols(ko: &Path, arch: Arch) -> Result<Vec<String>> {
    let nm = format!("{}llvm-nm", arch.llvm().prefix());
    let listing = cmd::output(Command::new(&nm).args(["-u", "-j"]).arg(ko))
        .with_context(|| format!("listing the imports of {}", ko.display()))?;
    let mut symbols: Vec<String> = listing
        .lines()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    symbols.sort();
    symbols.dedup();
    Ok(symbols)
}

/// The list file for `symbols`: a header saying where it comes from, then one
/// `[abi_symbol_list]` section, C symbols first, then the kernel's Rust crates' symbols.
pub fn render(symbols: &[String]) -> String {
    let mut text = format!(
        "# Kernel symbols that {MODULE} ({MODULE_DIR}/) imports, for a device's KMI symbol list:\n\
         # `llvm-nm -u` of the module built for {arch} against the test bed's Linux 6.12 without\n\
         # debugging options (`cargo xtask kernel --arch {arch} --bench`). Add the section to your\n\
         # partner symbol list (gki/aarch64/symbols/<partner> on android16-6.12,\n\
         # android/abi_gki_aarch64_<partner> on older branches).\n\
         # C symbols only: no GKI exports a symbol of the kernel's Rust crates (core, kernel)\n\
         # or a rust_helper_* forwarder to vendor modules, and `cargo xtask test` fails on one.\n\
         # Regenerate with `cargo xtask kmi-symbols --write`; `cargo xtask test` fails while this\n\
         # file differs from what the freshly built module imports.\n\
         \n\
         {SECTION}\n",
        arch = ARCH.name()
    );
    let (rust, c): (Vec<&String>, Vec<&String>) = symbols.iter().partition(|s| is_rust(s));
    for (group, members) in [("", c), (" (the kernel's Rust crates)", rust)] {
        if members.is_empty() {
            continue;
        }
        text.push_str(&format!("# required by {MODULE}{group}\n"));
        for symbol in members {
            text.push_str(&format!("  {symbol}\n"));
        }
    }
    text
}

/// A Rust v0-mangled symbol.
fn is_rust(symbol: &str) -> bool {
    symbol.starts_with("_R")
}

/// Imports no GKI kernel exports to a vendor module whatever its symbol lists say: the kernel's
/// Rust crates (`_R...`, v0-mangled) and their C forwarders (`rust_helper_*`). Sorted.
pub fn never_in_kmi(imported: &[String]) -> Vec<String> {
    imported
        .iter()
        .filter(|s| is_rust(s) || s.starts_with("rust_helper_"))
        .cloned()
        .collect()
}

/// The symbols of the list's `[abi_symbol_list]` section(s), sorted. Blank lines and `#`
/// comments are skipped; a name outside that section, or a second name on a line, is an error,
/// so a hand edit that the KMI tools would misread fails here first.
pub fn listed_symbols(text: &str) -> Result<Vec<String>> {
    let mut in_section = false;
    let mut symbols = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed.starts_with('[') {
            in_section = trimmed == SECTION;
            continue;
        }
        if !in_section || trimmed.contains(char::is_whitespace) {
            bail!(
                "line {}: `{trimmed}` is not one symbol inside {SECTION}",
                number + 1
            );
        }
        symbols.push(trimmed.to_owned());
    }
    if !in_section && symbols.is_empty() {
        bail!("no {SECTION} section");
    }
    symbols.sort();
    symbols.dedup();
    Ok(symbols)
}

/// What the list lacks (the module imports it) and what it has too many (the module no longer
/// imports it), each sorted.
pub fn differences(listed: &[String], imported: &[String]) -> (Vec<String>, Vec<String>) {
    let missing = imported
        .iter()
        .filter(|s| !listed.contains(s))
        .cloned()
        .collect();
    let stale = listed
        .iter()
        .filter(|s| !imported.contains(s))
        .cloned()
        .collect();
    (missing, stale)
}

/// Builds the module against the list's kernel and returns its imports.
fn build_and_list() -> Result<Vec<String>> {
    let kernel = kernel::ensure(ARCH, VARIANT)?;
    let ko = guest::build_module(MODULE_DIR, MODULE, &kernel)?;
    imported_symbols(&ko, ARCH)
}

fn list_path() -> PathBuf {
    paths::repo().join(LIST)
}

/// Compares the committed list with the freshly built module; prints what differs and how to
/// regenerate. `Ok(false)` when they differ.
pub fn check() -> Result<bool> {
    let imported = build_and_list()?;
    let step = progress::step(format!("kmi: {LIST} against {MODULE} ({})", ARCH.name()));
    let text = std::fs::read_to_string(list_path()).with_context(|| {
        format!("reading {LIST} (generate it: cargo xtask kmi-symbols --write)")
    })?;
    let listed = listed_symbols(&text).with_context(|| LIST.to_owned())?;
    let rust = never_in_kmi(&imported);
    if !rust.is_empty() {
        step.done("FAILED");
        eprintln!(
            "{MODULE} imports {} symbols that no GKI kernel exports to vendor modules:",
            rust.len()
        );
        for symbol in &rust {
            eprintln!("  {symbol}");
        }
        return Ok(false);
    }
    let (missing, stale) = differences(&listed, &imported);
    if missing.is_empty() && stale.is_empty() {
        step.done(&format!("{} symbols, as listed", imported.len()));
        return Ok(true);
    }
    step.done("FAILED");
    eprintln!("{LIST} differs from what {MODULE} imports:");
    for symbol in &missing {
        eprintln!("  + {symbol}   (imported, not listed)");
    }
    for symbol in &stale {
        eprintln!("  - {symbol}   (listed, no longer imported)");
    }
    eprintln!("Regenerate it with `cargo xtask kmi-symbols --write` and commit it.");
    Ok(false)
}

/// Writes the list from the freshly built module.
pub fn write() -> Result<()> {
    let imported = build_and_list()?;
    std::fs::write(list_path(), render(&imported))?;
    println!("wrote {LIST}: {} symbols", imported.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn rendered_list_reads_back_as_the_same_symbols() {
        let symbols = names(&[
            "_RNvNtCs1EKtwoKEMO2_6kernel5print11call_printk",
            "dma_buf_export",
            "dma_heap_add",
        ]);
        let text = render(&symbols);
        assert!(text.contains("\n[abi_symbol_list]\n# required by dmaheap_heaps.ko\n  dma_buf_export\n  dma_heap_add\n# required by dmaheap_heaps.ko (the kernel's Rust crates)\n  _RNv"));
        assert_eq!(listed_symbols(&text).unwrap(), symbols);
    }

    #[test]
    fn rust_crate_symbols_and_rust_helpers_are_never_in_the_kmi() {
        let imported = names(&[
            "_RNvNtNtCs1peUGmbrgHn_4core9panicking11panic_const24panic_const_add_overflow",
            "dma_buf_export",
            "my_R_symbol",
            "rust_helper_krealloc",
        ]);
        assert_eq!(
            never_in_kmi(&imported),
            names(&[
                "_RNvNtNtCs1peUGmbrgHn_4core9panicking11panic_const24panic_const_add_overflow",
                "rust_helper_krealloc"
            ])
        );
        assert!(never_in_kmi(&names(&["_printk", "mutex_lock"])).is_empty());
    }

    #[test]
    fn a_symbol_added_or_dropped_is_a_difference() {
        let listed = names(&["dma_buf_export", "dma_heap_add", "vmap"]);
        let imported = names(&["dma_buf_export", "dma_heap_add", "vunmap"]);
        assert_eq!(
            differences(&listed, &imported),
            (names(&["vunmap"]), names(&["vmap"]))
        );
        assert_eq!(differences(&imported, &imported), (Vec::new(), Vec::new()));
    }

    #[test]
    fn a_list_the_kmi_tools_would_misread_is_refused() {
        assert!(listed_symbols("  dma_heap_add\n").is_err(), "no section");
        assert!(
            listed_symbols("[abi_symbol_list]\n  a b\n").is_err(),
            "two names"
        );
        assert!(
            listed_symbols("[abi_whitelist]\n  a\n").is_err(),
            "unknown section"
        );
        assert!(listed_symbols("").is_err(), "empty");
    }

    /// The committed list is well formed and carries the dma-heap core the module cannot load
    /// without; whether it is complete is checked against the built module by `check`.
    #[test]
    fn committed_list_names_the_dma_heap_core() {
        let text = std::fs::read_to_string(list_path()).unwrap();
        let listed = listed_symbols(&text).unwrap();
        for symbol in ["dma_buf_export", "dma_heap_add", "dma_heap_get_drvdata"] {
            assert!(listed.contains(&symbol.to_owned()), "{symbol}");
        }
        assert_eq!(
            text,
            render(&listed),
            "{LIST} is not in the generated layout"
        );
    }
}
