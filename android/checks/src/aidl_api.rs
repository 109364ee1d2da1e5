//! The `aidl_api/<module>/` snapshots that Soong's `aidl_interface` keeps beside `Android.bp`:
//! one directory per frozen version (`1/`, `2/`, ... each with a `.hash`) and `current/`.
//!
//! The hash is computed the way AOSP's build does it (system/tools/aidl `hash_gen.sh` and the
//! `aidlVerifyHashRule` in `build/aidl_api.go`):
//!
//! ```text
//! cd <version dir> && { find ./ -name "*.aidl" -print0 | LC_ALL=C sort -z | xargs -0 sha1sum
//!                       && echo <previous version>; } | sha1sum
//! ```
//!
//! i.e. SHA-1 over the `sha1sum` lines (`<hex>  ./<path>\n`) of every snapshot file in byte order
//! of their `./`-relative paths, followed by one line naming the *previous* version: the literal
//! string `latest-version` for version 1, `N-1` for version N. The build compares the result with
//! the **last** line of `.hash` (a file may carry older lines from re-freezes).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::aidl::{self, Unit};

/// The string the hash puts after the file list for `version` (`versionForHashGen` in AOSP).
pub fn hash_version_line(version: u32) -> String {
    if version > 1 {
        (version - 1).to_string()
    } else {
        "latest-version".to_owned()
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The hash of the snapshot in `dir` as frozen version `version`.
pub fn compute_hash(dir: &Path, version: u32) -> std::io::Result<String> {
    let mut files = Vec::new();
    aidl::collect_aidl(dir, &mut files)?;
    // `find ./` names files "./a/b.aidl"; `sort -z` under LC_ALL=C orders them bytewise.
    let mut named: Vec<(Vec<u8>, PathBuf)> = files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(dir).expect("below dir").to_owned();
            let name = format!("./{}", rel.to_string_lossy().replace('\\', "/"));
            (name.into_bytes(), f)
        })
        .collect();
    named.sort();
    let mut listing = String::new();
    for (name, path) in &named {
        let digest = Sha1::digest(std::fs::read(path)?);
        let _ = writeln!(
            listing,
            "{}  {}",
            hex(&digest),
            String::from_utf8_lossy(name)
        );
    }
    listing.push_str(&hash_version_line(version));
    listing.push('\n');
    Ok(hex(&Sha1::digest(listing.as_bytes())))
}

/// The hash a `.hash` file records: its last non-empty line.
pub fn recorded_hash(hash_file: &Path) -> std::io::Result<Option<String>> {
    let text = std::fs::read_to_string(hash_file)?;
    Ok(text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_owned))
}

/// The snapshot directories of one module.
#[derive(Debug)]
pub struct Snapshots {
    pub module_dir: PathBuf,
    /// Numbered version directories found, ascending.
    pub versions: Vec<u32>,
    pub has_current: bool,
    /// Entries that are neither a number nor `current`.
    pub strays: Vec<String>,
}

impl Snapshots {
    pub fn scan(module_dir: &Path) -> std::io::Result<Snapshots> {
        let mut versions = Vec::new();
        let mut has_current = false;
        let mut strays = Vec::new();
        for entry in std::fs::read_dir(module_dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "current" && entry.path().is_dir() {
                has_current = true;
            } else if let (Ok(v), true) = (name.parse::<u32>(), entry.path().is_dir()) {
                versions.push(v);
            } else {
                strays.push(name);
            }
        }
        versions.sort_unstable();
        Ok(Snapshots {
            module_dir: module_dir.to_owned(),
            versions,
            has_current,
            strays,
        })
    }

    pub fn dir(&self, version: u32) -> PathBuf {
        self.module_dir.join(version.to_string())
    }

    pub fn current(&self) -> PathBuf {
        self.module_dir.join("current")
    }
}

/// Differences between two APIs, one line each; empty when equal.
pub fn api_diff(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (name, body) in old {
        match new.get(name) {
            None => out.push(format!("removed type {name}")),
            Some(b) if b != body => {
                let old_lines: Vec<&str> = body.lines().collect();
                let new_lines: Vec<&str> = b.lines().collect();
                for l in &old_lines {
                    if !new_lines.contains(l) {
                        out.push(format!("{name}: - {}", l.trim()));
                    }
                }
                for l in &new_lines {
                    if !old_lines.contains(l) {
                        out.push(format!("{name}: + {}", l.trim()));
                    }
                }
                if out.is_empty() {
                    out.push(format!("{name}: members reordered"));
                }
            }
            Some(_) => {}
        }
    }
    for name in new.keys() {
        if !old.contains_key(name) {
            out.push(format!("added type {name}"));
        }
    }
    out
}

/// Checks that a snapshot directory holds exactly one file per declared type, at the path that
/// `aidl --dumpapi` uses, and returns its API.
pub fn load_snapshot(dir: &Path) -> Result<BTreeMap<String, String>, String> {
    let unit = Unit::load(dir).map_err(|e| e.to_string())?;
    for doc in &unit.docs {
        if doc.types.len() != 1 {
            return Err(format!(
                "{}: a snapshot file holds exactly one top-level type",
                doc.path.display()
            ));
        }
        let expected = dir.join(aidl::snapshot_path(&doc.package, &doc.types[0].name));
        if expected != doc.path {
            return Err(format!(
                "{}: should be at {}",
                doc.path.display(),
                expected.display()
            ));
        }
    }
    Ok(unit.api())
}

/// Writes the snapshot of the sources in `src_root` into `dir` (replacing its `.aidl` files).
pub fn write_snapshot(src_root: &Path, dir: &Path) -> Result<(), String> {
    let unit = Unit::load(src_root).map_err(|e| e.to_string())?;
    if dir.exists() {
        let mut old = Vec::new();
        aidl::collect_aidl(dir, &mut old).map_err(|e| e.to_string())?;
        for f in old {
            std::fs::remove_file(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        }
    }
    for doc in &unit.docs {
        for t in &doc.types {
            let path = dir.join(aidl::snapshot_path(&doc.package, &t.name));
            std::fs::create_dir_all(path.parent().expect("has a parent"))
                .map_err(|e| e.to_string())?;
            std::fs::write(&path, aidl::snapshot_file(doc, t))
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
    }
    Ok(())
}

/// Whether a dumped member line declares a constant: `const int X = 1;`, annotated or not
/// (`@JavaPassthrough(annotation="@Foo(1)") const int X = 1;`).
fn is_constant(line: &str) -> bool {
    let mut rest = line.trim_start();
    while let Some(annotation) = rest.strip_prefix('@') {
        let name_end = annotation
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(annotation.len());
        rest = &annotation[name_end..];
        if rest.starts_with('(') {
            // Skip to the matching `)`, not counting brackets inside string literals.
            let (mut depth, mut in_string, mut end) = (0usize, false, rest.len());
            let mut chars = rest.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' if in_string => {
                        chars.next();
                    }
                    '"' => in_string = !in_string,
                    '(' if !in_string => depth += 1,
                    ')' if !in_string => {
                        depth -= 1;
                        if depth == 0 {
                            end = i + 1;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            rest = &rest[end..];
        }
        rest = rest.trim_start();
    }
    rest.starts_with("const ")
}

/// Very small backward-compatibility check between two versions, after the rules of
/// `aidl --checkapi=compatible`: types may be added but not removed; an interface may only append
/// methods; a parcelable may only append fields; constants and enumerators may be added but not
/// changed or removed. (AOSP's check is more thorough; this catches the usual mistakes.)
pub fn compatibility_errors(
    old: &BTreeMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut out = Vec::new();
    for (name, body) in old {
        let Some(nb) = new.get(name) else {
            out.push(format!("type {name} was removed"));
            continue;
        };
        let old_lines: Vec<&str> = body.lines().collect();
        let new_lines: Vec<&str> = nb.lines().collect();
        // Members (everything but the last "}" line), constants may move.
        let members = |lines: &[&'_ str]| -> Vec<String> {
            lines
                .iter()
                .filter(|l| l.starts_with("  ") && !is_constant(l))
                .map(|l| l.to_string())
                .collect()
        };
        let om = members(&old_lines);
        let nm = members(&new_lines);
        if nm.len() < om.len() || nm[..om.len()] != om[..] {
            out.push(format!(
                "type {name}: existing members changed, removed or reordered (only appending is compatible)"
            ));
        }
        for l in old_lines.iter().filter(|l| is_constant(l)) {
            if !new_lines.contains(l) {
                out.push(format!(
                    "type {name}: constant changed or removed: {}",
                    l.trim()
                ));
            }
        }
        let head = |lines: &[&'_ str]| -> Vec<String> {
            lines
                .iter()
                .take_while(|l| !l.starts_with("  "))
                .map(|l| l.to_string())
                .collect()
        };
        if head(&old_lines) != head(&new_lines) {
            out.push(format!("type {name}: declaration or annotations changed"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_line_follows_aosp() {
        assert_eq!(hash_version_line(1), "latest-version");
        assert_eq!(hash_version_line(2), "1");
        assert_eq!(hash_version_line(10), "9");
    }

    #[test]
    fn compatibility_rules() {
        let mut old = BTreeMap::new();
        old.insert(
            "p.I".to_owned(),
            "interface I {\n  void a();\n  const int X = 1;\n}\n".to_owned(),
        );
        let mut appended = old.clone();
        appended.insert(
            "p.I".to_owned(),
            "interface I {\n  void a();\n  void b();\n  const int X = 1;\n  const int Y = 2;\n}\n"
                .to_owned(),
        );
        appended.insert("p.New".to_owned(), "parcelable New {\n}\n".to_owned());
        assert!(compatibility_errors(&old, &appended).is_empty());
        let mut changed = old.clone();
        changed.insert(
            "p.I".to_owned(),
            "interface I {\n  void a(int x);\n  const int X = 2;\n}\n".to_owned(),
        );
        assert_eq!(compatibility_errors(&old, &changed).len(), 2);
        assert_eq!(compatibility_errors(&old, &BTreeMap::new()).len(), 1);
        // An annotated constant is a constant: adding one between members is compatible.
        let annotated = BTreeMap::from([(
            "p.I".to_owned(),
            "interface I {\n  @JavaPassthrough(annotation=\"@A(\\\")\\\")\") const int Z = 3;\n  \
             void a();\n  const int X = 1;\n}\n"
                .to_owned(),
        )]);
        assert_eq!(compatibility_errors(&old, &annotated), Vec::<String>::new());
    }
}

/// What `Android.bp` says about the interface's versions.
#[derive(Debug, Clone)]
pub struct Declared {
    /// `versions_with_info[*].version`, in order.
    pub versions: Vec<u32>,
    /// `frozen: true`: the sources must equal the latest version.
    pub frozen: bool,
}

/// Everything Soong checks about an aidl_interface's snapshots, with its messages:
/// `current/` equals the sources; every declared version has its directory and a `.hash` that
/// matches; each version is compatible with the one before; the sources equal the latest version
/// when the interface is declared frozen (else they must be compatible with it).
/// Returns the problems found; empty when all is well.
pub fn check_module(src_root: &Path, module_dir: &Path, declared: &Declared) -> Vec<String> {
    let mut problems = Vec::new();
    let tot = match Unit::load(src_root) {
        Ok(u) => u.api(),
        Err(e) => return vec![format!("the AIDL sources do not parse: {e}")],
    };
    let snaps = match Snapshots::scan(module_dir) {
        Ok(s) => s,
        Err(e) => return vec![format!("{}: {e}", module_dir.display())],
    };
    for stray in &snaps.strays {
        problems.push(format!(
            "{}: unexpected entry `{stray}` (only version numbers and `current`)",
            module_dir.display()
        ));
    }
    if !snaps.has_current {
        problems.push(format!(
            "{}/current is missing: run `cargo run -p android-checks --bin aidl-api -- update` \
             (Soong: m <module>-update-api)",
            module_dir.display()
        ));
    } else {
        if snaps.current().join(".hash").exists() {
            problems.push("current/ must not have a .hash (only frozen versions do)".into());
        }
        match load_snapshot(&snaps.current()) {
            Ok(cur) => {
                let diff = api_diff(&cur, &tot);
                if !diff.is_empty() {
                    problems.push(format!(
                        "aidl_api current/ is out of date with the sources; run \
                         `cargo run -p android-checks --bin aidl-api -- update`:\n    {}",
                        diff.join("\n    ")
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
    }
    let expected: Vec<u32> = (1..=declared.versions.len() as u32).collect();
    if declared.versions != expected {
        problems.push(format!(
            "versions_with_info must list 1..N in order, found {:?}",
            declared.versions
        ));
    }
    if snaps.versions != declared.versions {
        problems.push(format!(
            "aidl_api has version directories {:?} but Android.bp declares {:?}",
            snaps.versions, declared.versions
        ));
    }
    let mut previous: Option<(u32, BTreeMap<String, String>)> = None;
    for &v in &snaps.versions {
        let dir = snaps.dir(v);
        match (compute_hash(&dir, v), recorded_hash(&dir.join(".hash"))) {
            (Ok(actual), Ok(Some(recorded))) if actual == recorded => {}
            (Ok(actual), Ok(Some(recorded))) => problems.push(format!(
                "version {v}: .hash says {recorded} but the files hash to {actual}: a frozen \
                 version was edited. Restore it; change the sources and freeze a new version instead"
            )),
            (Ok(_), Ok(None)) => problems.push(format!("version {v}: .hash is empty")),
            (_, Err(e)) => problems.push(format!("version {v}: .hash: {e}")),
            (Err(e), _) => problems.push(format!("version {v}: {e}")),
        }
        match load_snapshot(&dir) {
            Ok(api) => {
                if let Some((pv, papi)) = &previous {
                    for e in compatibility_errors(papi, &api) {
                        problems.push(format!("version {v} is not compatible with {pv}: {e}"));
                    }
                }
                previous = Some((v, api));
            }
            Err(e) => problems.push(e),
        }
    }
    match &previous {
        Some((latest, api)) => {
            let diff = api_diff(api, &tot);
            if declared.frozen && !diff.is_empty() {
                problems.push(format!(
                    "the interface changed but version {latest} is frozen (`frozen: true`): \
                     bump the version (`cargo run -p android-checks --bin aidl-api -- freeze`, then \
                     add {{ version: \"{}\", imports: [] }} to versions_with_info) or undo the \
                     change. Only if version {latest} has never shipped: `cargo run -p \
                     android-checks --bin aidl-api -- refreeze-unreleased`.\n    {}",
                    latest + 1,
                    diff.join("\n    ")
                ));
            } else if !declared.frozen {
                for e in compatibility_errors(api, &tot) {
                    problems.push(format!(
                        "the sources are not compatible with version {latest}: {e}"
                    ));
                }
            }
        }
        None if declared.frozen => {
            problems.push("`frozen: true` but no version is frozen".into());
        }
        None => {}
    }
    problems
}
