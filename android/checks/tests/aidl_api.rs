//! The frozen AIDL API: `aidl_api/vendor.dmaheap/` matches the sources, hashes the way AOSP's
//! aidl_interface hashes, and changing the interface without a new version fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use android_checks::aidl::Unit;
use android_checks::aidl_api::{self, check_module, compute_hash, Declared};
use android_checks::{bp, names};
use common::*;

fn declared() -> Declared {
    let bp = android_bp();
    let m = aidl_interface(&bp);
    Declared {
        versions: declared_versions(m),
        frozen: m.get_bool("frozen").unwrap_or(false),
    }
}

fn module_dir() -> PathBuf {
    root().join("aidl_api").join(names::AIDL_MODULE)
}

fn src_root() -> PathBuf {
    root().join(names::AIDL_ROOT)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn snapshots_match_sources_and_hashes() {
    let problems = check_module(&src_root(), &module_dir(), &declared());
    assert!(
        problems.is_empty(),
        "aidl_api problems:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn interface_is_frozen_at_version_1_or_later() {
    let d = declared();
    assert!(
        d.frozen,
        "the interface ships frozen: `frozen: true` in Android.bp"
    );
    assert!(!d.versions.is_empty());
    // The Cargo build stamps the same hash into getInterfaceHash() (aidl/build.rs).
    let latest = *d.versions.last().unwrap();
    let build_rs = read("aidl/build.rs");
    // It reads the hash of the version it stamps (checked just below).
    assert!(
        build_rs.contains(&format!(
            "aidl_api/{}/{{VERSION}}/.hash",
            names::AIDL_MODULE
        )),
        "aidl/build.rs must read the hash of the version it stamps"
    );
    assert!(
        build_rs.contains(&format!("const VERSION: i32 = {latest};")),
        "aidl/build.rs must stamp version {latest}"
    );
}

/// The Rust hash equals the shell pipeline AOSP's build runs, on the real snapshot.
#[test]
fn hash_equals_the_aosp_shell_pipeline() {
    for v in declared().versions {
        let dir = module_dir().join(v.to_string());
        let ours = compute_hash(&dir, v).unwrap();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "cd '{}' && {{ find ./ -name \"*.aidl\" -print0 | LC_ALL=C sort -z | xargs -0 sha1sum && echo {}; }} | sha1sum | cut -d ' ' -f 1",
                dir.display(),
                aidl_api::hash_version_line(v)
            ))
            .output()
            .expect("bash, find, sort, xargs and sha1sum (coreutils, findutils) are needed");
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            ours,
            "version {v}"
        );
    }
}

/// Freezing the sources again reproduces the latest frozen version byte for byte: the dumper
/// writes what was frozen, so the recorded `.hash` comes out identical.
#[test]
fn refreezing_the_sources_reproduces_the_recorded_hash() {
    let latest = *declared().versions.last().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(latest.to_string());
    aidl_api::write_snapshot(&src_root(), &dir).unwrap();
    let frozen = module_dir().join(latest.to_string());
    let recorded = aidl_api::recorded_hash(&frozen.join(".hash")).unwrap();
    assert_eq!(Some(compute_hash(&dir, latest).unwrap()), recorded);
}

/// A frozen interface whose sources change, without a new version, fails.
#[test]
fn changing_the_interface_without_a_new_version_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("aidl");
    copy_tree(&src_root(), &src);
    let iface = src.join("vendor/dmaheap/IHeapAllocator.aidl");
    let text = std::fs::read_to_string(&iface).unwrap();
    let pos = text.rfind('}').unwrap();
    let changed = format!(
        "{}    void addedWithoutBump();\n{}",
        &text[..pos],
        &text[pos..]
    );
    std::fs::write(&iface, changed).unwrap();
    let problems = check_module(&src, &module_dir(), &declared());
    assert!(
        problems.iter().any(|p| p.contains("but version")
            && p.contains("is frozen")
            && p.contains("addedWithoutBump")),
        "{problems:?}"
    );
    // current/ is stale too.
    assert!(
        problems
            .iter()
            .any(|p| p.contains("current/ is out of date")),
        "{problems:?}"
    );
}

/// Editing a comment is not an API change.
#[test]
fn comments_are_not_api_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("aidl");
    copy_tree(&src_root(), &src);
    let iface = src.join("vendor/dmaheap/IHeapAllocator.aidl");
    let text = std::fs::read_to_string(&iface).unwrap();
    std::fs::write(&iface, text.replace("/**", "/** Reworded.\n *")).unwrap();
    let problems = check_module(&src, &module_dir(), &declared());
    assert!(problems.is_empty(), "{problems:?}");
}

/// Editing a frozen snapshot breaks its hash.
#[test]
fn editing_a_frozen_version_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let snaps = tmp.path().join("snap");
    copy_tree(&module_dir(), &snaps);
    let f = snaps.join("1/vendor/dmaheap/IHeapAllocator.aidl");
    let text = std::fs::read_to_string(&f).unwrap();
    std::fs::write(&f, format!("{text}\n")).unwrap();
    let problems = check_module(&src_root(), &snaps, &declared());
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a frozen version was edited")),
        "{problems:?}"
    );
}

/// Freezing a compatible change as version 2 (what `aidl-api freeze` does) passes once
/// Android.bp declares it, and fails while it does not.
#[test]
fn bumping_the_version_passes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("aidl");
    copy_tree(&src_root(), &src);
    let snaps = tmp.path().join("snap");
    copy_tree(&module_dir(), &snaps);
    let iface = src.join("vendor/dmaheap/IHeapAllocator.aidl");
    let text = std::fs::read_to_string(&iface).unwrap();
    let pos = text.rfind('}').unwrap();
    std::fs::write(
        &iface,
        format!("{}    void appendedInV2();\n{}", &text[..pos], &text[pos..]),
    )
    .unwrap();
    let latest = *declared().versions.last().unwrap();
    let next = latest + 1;
    aidl_api::write_snapshot(&src, &snaps.join("current")).unwrap();
    aidl_api::write_snapshot(&src, &snaps.join(next.to_string())).unwrap();
    let hash = compute_hash(&snaps.join(next.to_string()), next).unwrap();
    std::fs::write(snaps.join(format!("{next}/.hash")), format!("{hash}\n")).unwrap();
    let mut d = declared();
    let stale = check_module(&src, &snaps, &d);
    assert!(
        stale.iter().any(|p| p.contains("but Android.bp declares")),
        "{stale:?}"
    );
    d.versions.push(next);
    let problems = check_module(&src, &snaps, &d);
    assert!(problems.is_empty(), "{problems:?}");
    // An incompatible version (a method removed) is refused.
    let v2 = snaps.join(format!("{next}/vendor/dmaheap/IHeapAllocator.aidl"));
    let t = std::fs::read_to_string(&v2).unwrap();
    let without = t
        .lines()
        .filter(|l| !l.contains("getStats"))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&v2, without).unwrap();
    let hash = compute_hash(&snaps.join(next.to_string()), next).unwrap();
    std::fs::write(snaps.join(format!("{next}/.hash")), format!("{hash}\n")).unwrap();
    let problems = check_module(&src, &snaps, &d);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("is not compatible with")),
        "{problems:?}"
    );
}

/// The dump files sit where `aidl --dumpapi` puts them and name the package Android.bp builds.
#[test]
fn snapshot_layout() {
    let bp = android_bp();
    let m = aidl_interface(&bp);
    assert_eq!(bp::strings(m.get("srcs")), ["aidl/vendor/dmaheap/*.aidl"]);
    let unit = Unit::load(&module_dir().join("current")).unwrap();
    for d in &unit.docs {
        assert_eq!(d.package, names::AIDL_PACKAGE);
    }
    let declared = unit.declared();
    assert!(declared.contains(&format!("{}.{}", names::AIDL_PACKAGE, names::INTERFACE)));
}
