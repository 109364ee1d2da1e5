//! The kernel symbols the heap module imports, kept in `heaps-kmod/kmi_symbols.txt` as a section
//! of an Android KMI symbol list for device makers, and checked against the freshly built `.ko`
//! and against the GKI kernel's KMI.
//!
//! The list describes the module built for arm64 (every GKI phone) against the test bed's kernel
//! *without* debugging options: the checked kernel's KASAN, UBSAN, lockdep and DMA-API debugging
//! add imports (`__asan_*`, `__might_resched`, `debug_dma_mapping_error`, ...) that a GKI kernel
//! does not export. What the module imports is what `llvm-nm -u` reads from the `.ko`: the
//! undefined symbols the kernel resolves at load time (modpost checks the same set against the
//! kernel's exports).
//!
//! A GKI kernel is built with `trim_nonlisted_kmi`: it exports only the KMI, the union of the
//! symbol lists under `gki/aarch64/symbols/` of its branch, and `modprobe` refuses a module that
//! imports anything else ("Unknown symbol"). The lists of android16-6.12, the first GKI branch
//! with Rust, are kept as data in `heaps-kmod/kmi/android16-6.12/` (where they were read:
//! `SOURCE.toml` there), and every import must be in their union. None of them carries a symbol
//! of the kernel's Rust crates or a `rust_helper_*` forwarder: Rust Binder and Ashmem are built
//! into GKI itself, so nothing Rust is promised to vendor modules.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::kernel::{self, Arch, Variant};
use crate::{cmd, guest, paths, progress};

/// The committed list, relative to the repository.
pub const LIST: &str = "heaps-kmod/kmi_symbols.txt";
const MODULE_DIR: &str = "heaps-kmod";
const MODULE: &str = "dmaheap_heaps.ko";
/// The kernel the list is taken from: arm64, without the checked kernel's instrumentation.
pub const ARCH: Arch = Arch::Arm64;
const VARIANT: Variant = Variant::Bench;

/// The GKI branch whose KMI the module must stay inside, relative to the repository; its lists
/// are in `symbols/`, one file per list as the branch names them.
pub const SNAPSHOT: &str = "heaps-kmod/kmi/android16-6.12";
const SNAPSHOT_LISTS: &str = "symbols";
/// GKI's own list (`kmi_symbol_list` of the branch); every other one is a partner's.
const CORE_LIST: &str = "base";
/// A symbol that only this many partner lists carry is worth naming them: a vendor's kernel
/// team will look there first, and such a symbol is the likeliest to be questioned.
const FEW_LISTS: usize = 2;
/// The module's objects when the build leaves no `.mod` file naming them (see `Kbuild`).
const OBJECTS: &[&str] = &["dmaheap_rs.o", "helpers.o"];

const SECTION: &str = "[abi_symbol_list]";

/// The undefined symbols of a module or object file: what the kernel must export for it to load.
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

/// A line of a symbol list that the KMI tools would misread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListError {
    /// 1-based; 0 when the whole file is wrong.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

impl std::error::Error for ListError {}

/// The symbols of the list's `[abi_symbol_list]` section(s), sorted. Blank lines and `#`
/// comments are skipped; a name outside that section, or a second word on a line, is an error,
/// so a hand edit that the KMI tools would misread fails here first. Kleaf reads the lists with
/// Python's `configparser`, which strips no comment that follows a name: `name  # note: x` would
/// be one key `name  # note` with the value `x`.
pub fn listed_symbols(text: &str) -> Result<Vec<String>, ListError> {
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
            return Err(ListError {
                line: number + 1,
                message: format!("`{trimmed}` is not one symbol inside {SECTION}"),
            });
        }
        symbols.push(trimmed.to_owned());
    }
    if !in_section && symbols.is_empty() {
        return Err(ListError {
            line: 0,
            message: format!("no {SECTION} section"),
        });
    }
    symbols.sort();
    symbols.dedup();
    Ok(symbols)
}

/// Why the KMI snapshot could not be read.
#[derive(Debug)]
pub enum SnapshotError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    List {
        list: String,
        error: ListError,
    },
    /// No list at all: a missing checkout of the data must not pass as "nothing is exported".
    Empty {
        dir: PathBuf,
    },
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Read { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            SnapshotError::List { list, error } => write!(f, "symbol list {list}: {error}"),
            SnapshotError::Empty { dir } => write!(f, "no symbol list in {}", dir.display()),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Read { error, .. } => Some(error),
            SnapshotError::List { error, .. } => Some(error),
            SnapshotError::Empty { .. } => None,
        }
    }
}

/// A GKI branch's KMI: the union of its symbol lists, and for each symbol the lists that carry
/// it (which tells a vendor whether it leans on one other vendor's list).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Symbol -> the names of the lists carrying it, sorted.
    carriers: BTreeMap<String, Vec<String>>,
    /// List name -> how many symbols it carries.
    lists: BTreeMap<String, usize>,
}

impl Snapshot {
    /// Reads every file of `dir` as one list named after the file.
    pub fn load(dir: &Path) -> Result<Snapshot, SnapshotError> {
        let read_error = |path: &Path, error| SnapshotError::Read {
            path: path.to_owned(),
            error,
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| read_error(dir, e))? {
            let path = entry.map_err(|e| read_error(dir, e))?.path();
            if path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut lists = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| read_error(&path, e))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            lists.push((name, text));
        }
        if lists.is_empty() {
            return Err(SnapshotError::Empty {
                dir: dir.to_owned(),
            });
        }
        Snapshot::from_lists(lists.iter().map(|(n, t)| (n.as_str(), t.as_str())))
    }

    /// The snapshot of `(list name, list text)` pairs.
    pub fn from_lists<'a>(
        lists: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Snapshot, SnapshotError> {
        let mut snapshot = Snapshot::default();
        for (name, text) in lists {
            let symbols = listed_symbols(text).map_err(|error| SnapshotError::List {
                list: name.to_owned(),
                error,
            })?;
            snapshot.lists.insert(name.to_owned(), symbols.len());
            for symbol in symbols {
                let carriers = snapshot.carriers.entry(symbol).or_default();
                carriers.push(name.to_owned());
                carriers.sort();
            }
        }
        Ok(snapshot)
    }

    /// How many symbols the KMI holds (each once, whichever lists carry it).
    pub fn len(&self) -> usize {
        self.carriers.len()
    }

    pub fn contains(&self, symbol: &str) -> bool {
        self.carriers.contains_key(symbol)
    }

    /// The lists that carry `symbol`, sorted; empty when it is outside the KMI.
    pub fn carriers(&self, symbol: &str) -> &[String] {
        self.carriers.get(symbol).map_or(&[], Vec::as_slice)
    }

    /// Each list's name with the number of symbols it carries, by name.
    pub fn lists(&self) -> impl Iterator<Item = (&str, usize)> {
        self.lists
            .iter()
            .map(|(name, &count)| (name.as_str(), count))
    }

    /// The partner lists, when only one or two carry `symbol` and GKI's own list does not; a
    /// symbol in many lists, or in none, gets `None`.
    pub fn few_carriers(&self, symbol: &str) -> Option<&[String]> {
        let carriers = self.carriers(symbol);
        let few = !carriers.is_empty()
            && carriers.len() <= FEW_LISTS
            && !carriers.iter().any(|list| list == CORE_LIST);
        few.then_some(carriers)
    }
}

/// Why an import is outside the KMI. The two Rust kinds are told apart from a plain missing C
/// export because their fix differs: they come from code of the kernel's own crates (or its
/// helpers) that the module calls instead of a KMI C function, not from a C call to replace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outside {
    /// A v0-mangled symbol (`_R...`) of the kernel's `core`/`kernel` crates.
    KernelRust,
    /// One of the kernel's `rust_helper_*` forwarders to static-inline C.
    RustHelper,
    /// A C symbol that no list of the branch carries.
    NotExported,
}

impl Outside {
    pub fn of(symbol: &str) -> Outside {
        if is_rust(symbol) {
            Outside::KernelRust
        } else if symbol.starts_with("rust_helper_") {
            Outside::RustHelper
        } else {
            Outside::NotExported
        }
    }
}

impl fmt::Display for Outside {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Outside::KernelRust => "Rust-mangled symbol of the kernel's own crates",
            Outside::RustHelper => "the kernel's Rust helper",
            Outside::NotExported => "not exported by GKI",
        })
    }
}

/// An import outside the KMI, and which of the module's objects import it (empty when that
/// could not be told).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub symbol: String,
    pub reason: Outside,
    pub imported_by: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.symbol, self.reason)?;
        if !self.imported_by.is_empty() {
            write!(f, ", imported by {}", self.imported_by.join(", "))?;
        }
        Ok(())
    }
}

/// Undefined symbol -> the object files (by file name) whose `llvm-nm -u` lists it.
pub type Importers = BTreeMap<String, Vec<String>>;

/// Which of `objects` import each symbol. Attribution only: the `.ko` decides what is imported.
pub fn importers(objects: &[PathBuf], arch: Arch) -> Result<Importers> {
    let mut listings = Vec::new();
    for object in objects {
        let name = object
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| object.display().to_string());
        listings.push((name, imported_symbols(object, arch)?));
    }
    Ok(importers_of(listings))
}

fn importers_of(listings: impl IntoIterator<Item = (String, Vec<String>)>) -> Importers {
    let mut importers = Importers::new();
    for (object, symbols) in listings {
        for symbol in symbols {
            let objects = importers.entry(symbol).or_default();
            if !objects.contains(&object) {
                objects.push(object.clone());
            }
        }
    }
    importers
}

/// Every import that the KMI lacks, with why, in `imported`'s order.
pub fn outside_kmi(
    imported: &[String],
    snapshot: &Snapshot,
    importers: Option<&Importers>,
) -> Vec<Violation> {
    imported
        .iter()
        .filter(|symbol| !snapshot.contains(symbol))
        .map(|symbol| Violation {
            symbol: symbol.clone(),
            reason: Outside::of(symbol),
            imported_by: importers
                .and_then(|i| i.get(symbol))
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
}

/// The list file for `symbols`: a header saying where it comes from, then one
/// `[abi_symbol_list]` section, C symbols first, then any of the kernel's Rust crates' symbols
/// (which the KMI check rejects, but the list stays exact). A symbol that one or two partner
/// lists carry, or none, gets a comment line of its own above it: Kleaf's parser keeps a comment
/// after a name as part of the name.
pub fn render(symbols: &[String], snapshot: &Snapshot) -> String {
    let mut text = format!(
        "# Kernel symbols that {MODULE} ({MODULE_DIR}/) imports, for a device's KMI symbol list:\n\
         # `llvm-nm -u` of the module built for {arch} against the test bed's Linux 6.12 without\n\
         # debugging options (`cargo xtask kernel --arch {arch} --bench`). Add the section to your\n\
         # partner symbol list (gki/aarch64/symbols/<partner> on android16-6.12).\n\
         # `cargo xtask test` checks every one against the GKI KMI of android16-6.12 (the union of\n\
         # its symbol lists, kept in {SNAPSHOT}): the module imports no Rust symbol of\n\
         # the kernel (`_R...`, `rust_helper_*`), which no GKI list carries. A symbol that only one\n\
         # or two partner lists carry is named with them.\n\
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
            if !snapshot.contains(symbol) {
                text.push_str(&format!("  # {symbol}: outside the KMI\n"));
            } else if let Some(lists) = snapshot.few_carriers(symbol) {
                text.push_str(&format!("  # {symbol}: only in {}\n", lists.join(", ")));
            }
            text.push_str(&format!("  {symbol}\n"));
        }
    }
    text
}

/// A Rust v0-mangled symbol: `_R`, an optional encoding version (digits), then a path, which
/// opens with an uppercase tag (`C` crate root, `N` nested, `M`/`X`/`Y` impls, `I` generic
/// arguments, `B` back-reference). A C name that merely starts with `_R` is not one.
fn is_rust(symbol: &str) -> bool {
    symbol
        .strip_prefix("_R")
        .map(|rest| rest.trim_start_matches(|c: char| c.is_ascii_digit()))
        .and_then(|path| path.chars().next())
        .is_some_and(|tag| "CNMXYIB".contains(tag))
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

fn snapshot_path() -> PathBuf {
    paths::repo().join(SNAPSHOT).join(SNAPSHOT_LISTS)
}

/// The committed KMI snapshot.
pub fn load_snapshot() -> Result<Snapshot> {
    Snapshot::load(&snapshot_path()).with_context(|| format!("the KMI snapshot in {SNAPSHOT}"))
}

/// The objects the module is linked from: Kbuild names them in `<module>.mod` (paths as the
/// build saw them), so a new object in `Kbuild` is covered without a change here.
fn module_objects(build: &Path) -> Vec<PathBuf> {
    let listed = Path::new(MODULE).with_extension("mod");
    let names: Vec<String> = match std::fs::read_to_string(build.join(listed)) {
        Ok(text) => text.split_whitespace().map(str::to_owned).collect(),
        Err(_) => OBJECTS.iter().map(|s| s.to_string()).collect(),
    };
    names
        .iter()
        .map(|name| {
            let path = Path::new(name);
            if path.is_absolute() && path.exists() {
                path.to_owned()
            } else {
                build.join(path.file_name().unwrap_or(path.as_os_str()))
            }
        })
        .filter(|path| path.exists())
        .collect()
}

/// Builds the module against the list's kernel; returns the `.ko`.
fn build() -> Result<PathBuf> {
    let kernel = kernel::ensure(ARCH, VARIANT)?;
    guest::build_module(MODULE_DIR, MODULE, &kernel)
}

fn list_path() -> PathBuf {
    paths::repo().join(LIST)
}

/// Checks the freshly built module against the KMI snapshot (every import must be in it) and the
/// committed list against the module (the same symbols, all in the KMI); prints what fails and
/// how to fix it. `Ok(false)` when anything fails.
pub fn check() -> Result<bool> {
    // The data first: a broken snapshot should not cost a module build to find out.
    let snapshot = load_snapshot()?;
    let ko = build()?;
    let imported = imported_symbols(&ko, ARCH)?;
    let step = progress::step(format!(
        "kmi: {MODULE} ({}) against {SNAPSHOT} and {LIST}",
        ARCH.name()
    ));
    let mut violations = outside_kmi(&imported, &snapshot, None);
    if !violations.is_empty() {
        let objects = ko.parent().map(module_objects).unwrap_or_default();
        match importers(&objects, ARCH) {
            Ok(importers) => violations = outside_kmi(&imported, &snapshot, Some(&importers)),
            Err(error) => eprintln!("(cannot tell which object imports what: {error:#})"),
        }
    }
    let text = std::fs::read_to_string(list_path()).with_context(|| {
        format!("reading {LIST} (generate it: cargo xtask kmi-symbols --write)")
    })?;
    let listed = listed_symbols(&text).with_context(|| LIST.to_owned())?;
    let (missing, stale) = differences(&listed, &imported);
    let listed_outside: Vec<&String> = listed.iter().filter(|s| !snapshot.contains(s)).collect();
    if violations.is_empty() && missing.is_empty() && stale.is_empty() && listed_outside.is_empty()
    {
        step.done(&format!(
            "{} symbols, as listed, all in the KMI ({} symbols in {} lists)",
            imported.len(),
            snapshot.len(),
            snapshot.lists().count()
        ));
        return Ok(true);
    }
    step.done("FAILED");
    if !violations.is_empty() {
        eprintln!(
            "{MODULE} imports {} symbols outside the KMI of {SNAPSHOT} (a GKI kernel refuses to \
             load it):",
            violations.len()
        );
        for violation in &violations {
            eprintln!("  {violation}");
        }
    }
    if !missing.is_empty() || !stale.is_empty() {
        eprintln!("{LIST} differs from what {MODULE} imports:");
        for symbol in &missing {
            eprintln!("  + {symbol}   (imported, not listed)");
        }
        for symbol in &stale {
            eprintln!("  - {symbol}   (listed, no longer imported)");
        }
    }
    // An outside symbol that is also imported is named above already.
    for symbol in listed_outside.iter().filter(|s| !imported.contains(s)) {
        eprintln!("{LIST} lists {symbol}, which is outside the KMI");
    }
    if !missing.is_empty() || !stale.is_empty() {
        eprintln!("Regenerate it with `cargo xtask kmi-symbols --write` and commit it.");
    }
    Ok(false)
}

/// Writes the list from the freshly built module.
pub fn write() -> Result<()> {
    let snapshot = load_snapshot()?;
    let ko = build()?;
    let imported = imported_symbols(&ko, ARCH)?;
    std::fs::write(list_path(), render(&imported, &snapshot))?;
    println!("wrote {LIST}: {} symbols", imported.len());
    let outside = outside_kmi(&imported, &snapshot, None);
    if !outside.is_empty() {
        println!(
            "{} of them are outside the KMI ({SNAPSHOT}); `cargo xtask test` fails on them",
            outside.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn snapshot(lists: &[(&str, &str)]) -> Snapshot {
        Snapshot::from_lists(lists.iter().copied()).unwrap()
    }

    /// Three lists in the shape of the real ones: `base` small, one symbol in a single partner
    /// list, one in two, the rest in all three partners.
    fn small_snapshot() -> Snapshot {
        snapshot(&[
            ("base", "[abi_symbol_list]\n# commonly used symbols\n  module_layout\n"),
            (
                "mtk",
                "[abi_symbol_list]\n  __root_device_register\n  dma_buf_export\n  dma_heap_add\n  kfree\n",
            ),
            (
                "pixel",
                "[abi_symbol_list]\n# required by a.ko\n  dma_buf_export\n  dma_heap_add\n  kfree\n  vmap\n",
            ),
            ("qcom", "[abi_symbol_list]\n  dma_buf_export\n  dma_heap_add\n  kfree\n  vmap\n"),
            ("xiaomi", "[abi_symbol_list]\n  kfree\n"),
        ])
    }

    #[test]
    fn rendered_list_reads_back_as_the_same_symbols() {
        let symbols = names(&[
            "_RNvNtCs1EKtwoKEMO2_6kernel5print11call_printk",
            "dma_buf_export",
            "dma_heap_add",
        ]);
        let text = render(&symbols, &small_snapshot());
        assert!(text.contains("\n[abi_symbol_list]\n# required by dmaheap_heaps.ko\n  dma_buf_export\n  dma_heap_add\n# required by dmaheap_heaps.ko (the kernel's Rust crates)\n  # _RNv"));
        assert!(text.contains("heaps-kmod/kmi/android16-6.12"));
        assert!(!text.contains("take those from your GKI build"));
        assert_eq!(listed_symbols(&text).unwrap(), symbols);
    }

    /// The note for a symbol in few lists is a comment line of its own: Kleaf would read a
    /// trailing one as part of the name.
    #[test]
    fn a_symbol_in_one_or_two_partner_lists_is_named_with_them() {
        let snapshot = small_snapshot();
        let symbols = names(&["__root_device_register", "kfree", "module_layout", "vmap"]);
        let text = render(&symbols, &snapshot);
        assert!(
            text.contains("  # __root_device_register: only in mtk\n  __root_device_register\n"),
            "{text}"
        );
        assert!(
            text.contains("  # vmap: only in pixel, qcom\n  vmap\n"),
            "{text}"
        );
        assert!(!text.contains("# kfree:"), "in four lists");
        assert!(!text.contains("# module_layout:"), "in GKI's own list");
        assert_eq!(listed_symbols(&text).unwrap(), symbols);
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
        assert_eq!(
            listed_symbols("[abi_symbol_list]\n  a  # only in: mtk\n")
                .unwrap_err()
                .line,
            2,
            "a comment after a name"
        );
        assert!(
            listed_symbols("[abi_whitelist]\n  a\n").is_err(),
            "unknown section"
        );
        assert!(listed_symbols("").is_err(), "empty");
    }

    #[test]
    fn a_snapshot_records_which_lists_carry_each_symbol() {
        let snapshot = small_snapshot();
        assert_eq!(snapshot.len(), 6);
        assert_eq!(snapshot.carriers("vmap"), names(&["pixel", "qcom"]));
        assert_eq!(snapshot.carriers("region_intersects"), [] as [String; 0]);
        assert_eq!(
            snapshot.lists().collect::<Vec<_>>(),
            [
                ("base", 1),
                ("mtk", 4),
                ("pixel", 4),
                ("qcom", 4),
                ("xiaomi", 1)
            ]
        );
        let error = Snapshot::from_lists([("bad", "[abi_symbol_list]\n  a b\n")]).unwrap_err();
        assert!(error.to_string().contains("bad"), "{error}");
    }

    /// The negative test: each kind of import outside the KMI is named with its reason and the
    /// object that imports it.
    #[test]
    fn imports_outside_the_kmi_are_each_named_with_why() {
        let rust = "_RNvMs_NtCs1EKtwoKEMO2_6kernel4syncINtB4_9LockClassKey3new";
        let imported = names(&[
            rust,
            "dma_buf_export",
            "kfree",
            "region_intersects",
            "rust_helper_krealloc",
        ]);
        let importers = importers_of([
            (
                "dmaheap_rs.o".to_owned(),
                names(&[rust, "dma_buf_export", "region_intersects"]),
            ),
            (
                "helpers.o".to_owned(),
                names(&["kfree", "rust_helper_krealloc"]),
            ),
        ]);
        let outside = outside_kmi(&imported, &small_snapshot(), Some(&importers));
        assert_eq!(
            outside,
            [
                Violation {
                    symbol: rust.to_owned(),
                    reason: Outside::KernelRust,
                    imported_by: names(&["dmaheap_rs.o"]),
                },
                Violation {
                    symbol: "region_intersects".to_owned(),
                    reason: Outside::NotExported,
                    imported_by: names(&["dmaheap_rs.o"]),
                },
                Violation {
                    symbol: "rust_helper_krealloc".to_owned(),
                    reason: Outside::RustHelper,
                    imported_by: names(&["helpers.o"]),
                },
            ]
        );
        assert_eq!(
            outside[1].to_string(),
            "region_intersects (not exported by GKI), imported by dmaheap_rs.o"
        );
        let unattributed = outside_kmi(&imported, &small_snapshot(), None);
        assert!(unattributed.iter().all(|v| v.imported_by.is_empty()));
        assert_eq!(unattributed.len(), 3);
    }

    #[test]
    fn only_a_v0_mangled_name_counts_as_rust() {
        for rust in [
            "_RNvNtCs1EKtwoKEMO2_6kernel5print11call_printk",
            "_RINvNtCs1_4core3ptr13drop_in_placeE",
            "_RMs_NtCs1_6kernel5errorNtB4_5Error",
            "_R0NvC1a1b",
        ] {
            assert_eq!(Outside::of(rust), Outside::KernelRust, "{rust}");
        }
        for c in [
            "__RCU_lockdep_warn",
            "dma_R_helper",
            "io_R",
            "_Rabbit",
            "_R",
            "R_Nv",
        ] {
            assert_eq!(Outside::of(c), Outside::NotExported, "{c}");
        }
        assert_eq!(Outside::of("rust_helper_init_wait"), Outside::RustHelper);
    }

    fn real_snapshot() -> Snapshot {
        load_snapshot().unwrap()
    }

    /// `union = N` and each list's `symbols = N` as `SOURCE.toml` states them.
    fn manifest_counts() -> (usize, Vec<(String, usize)>) {
        let text =
            std::fs::read_to_string(paths::repo().join(SNAPSHOT).join("SOURCE.toml")).unwrap();
        let value = |line: &str, key: &str| {
            line.strip_prefix(key)
                .and_then(|rest| rest.trim_start().strip_prefix('='))
                .map(|v| v.trim().trim_matches('"').to_owned())
        };
        let mut union = None;
        let mut lists = Vec::new();
        let mut name = None;
        for line in text.lines().map(str::trim) {
            if let Some(v) = value(line, "union") {
                union = Some(v.parse().unwrap());
            } else if let Some(v) = value(line, "name") {
                name = Some(v);
            } else if let Some(v) = value(line, "symbols") {
                lists.push((name.take().unwrap(), v.parse().unwrap()));
            }
        }
        (union.unwrap(), lists)
    }

    #[test]
    fn the_committed_snapshot_is_what_its_manifest_says() {
        let snapshot = real_snapshot();
        // The manifest keeps the build's order (base first); the snapshot goes by name.
        let (union, mut lists) = manifest_counts();
        lists.sort();
        assert_eq!(snapshot.len(), union);
        assert_eq!(
            snapshot
                .lists()
                .map(|(n, c)| (n.to_owned(), c))
                .collect::<Vec<_>>(),
            lists
        );
        // 6.12.23-android16-5 (SOURCE.toml): a change of the data must be a deliberate one.
        assert_eq!((snapshot.len(), snapshot.lists().count()), (8722, 24));
        assert!(snapshot
            .carriers("module_layout")
            .contains(&CORE_LIST.to_owned()));
    }

    #[test]
    fn the_committed_snapshot_holds_no_rust_symbol() {
        let snapshot = real_snapshot();
        let rust: Vec<&String> = snapshot
            .carriers
            .keys()
            .filter(|s| Outside::of(s) != Outside::NotExported)
            .collect();
        assert!(rust.is_empty(), "{rust:?}");
    }

    #[test]
    fn kmi_c_functions_pass_the_real_snapshot() {
        let imported = names(&["_printk", "dma_buf_export", "dma_heap_add", "mutex_lock"]);
        assert_eq!(outside_kmi(&imported, &real_snapshot(), None), []);
    }

    #[test]
    fn rust_symbols_and_missing_exports_fail_the_real_snapshot() {
        let imported = names(&[
            "_RNvNtCs1EKtwoKEMO2_6kernel5print11call_printk",
            "_printk",
            "region_intersects",
            "rust_helper_krealloc",
        ]);
        let outside: Vec<(String, Outside)> = outside_kmi(&imported, &real_snapshot(), None)
            .into_iter()
            .map(|v| (v.symbol, v.reason))
            .collect();
        assert_eq!(
            outside,
            [
                (imported[0].clone(), Outside::KernelRust),
                ("region_intersects".to_owned(), Outside::NotExported),
                ("rust_helper_krealloc".to_owned(), Outside::RustHelper),
            ]
        );
    }

    #[test]
    fn root_devices_are_only_in_the_mtk_list() {
        let snapshot = real_snapshot();
        for symbol in ["__root_device_register", "root_device_unregister"] {
            assert_eq!(snapshot.carriers(symbol), names(&["mtk"]), "{symbol}");
            assert_eq!(snapshot.few_carriers(symbol), Some(&names(&["mtk"])[..]));
        }
        assert!(snapshot.carriers("dma_buf_export").len() > FEW_LISTS);
        assert_eq!(snapshot.few_carriers("dma_buf_export"), None);
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
            render(&listed, &real_snapshot()),
            "{LIST} is not in the generated layout"
        );
    }
}
