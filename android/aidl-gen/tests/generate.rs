//! The tool writes the same binding aidl/build.rs writes: every type, stamped with the frozen
//! version and the last hash of its `.hash` file.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn generates_the_versioned_binding() {
    let out = tempfile_dir();
    let dest = out.join("dmaheap_aidl.rs");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(root().join("aidl/vendor/dmaheap"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    sources.sort();
    let hash_file = root().join("aidl_api/vendor.dmaheap/1/.hash");
    let status = Command::new(env!("CARGO_BIN_EXE_dmaheap-aidl-gen"))
        .arg("--version")
        .arg("1")
        .arg("--hash-file")
        .arg(&hash_file)
        .arg("--out")
        .arg(&dest)
        .args(&sources)
        .arg(&hash_file) // Soong passes every src in $(in); the tool skips non-.aidl files.
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let text = std::fs::read_to_string(&dest).unwrap();
    let hash = std::fs::read_to_string(&hash_file).unwrap();
    let hash = hash.lines().rfind(|l| !l.trim().is_empty()).unwrap().trim();
    assert!(text.contains("pub const VERSION: i32 = 1;"));
    assert!(text.contains(&format!("pub const HASH: &str = \"{hash}\";")));
    for s in &sources {
        let stem = s.file_stem().unwrap().to_string_lossy();
        assert!(
            text.contains(&format!("pub mod {stem}")),
            "no module for {stem}"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}

#[test]
fn refuses_bad_arguments() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_dmaheap-aidl-gen"))
            .args(args)
            .output()
            .unwrap()
            .status
            .success()
    };
    assert!(!run(&[]));
    assert!(!run(&["--out", "x.rs"]));
    assert!(!run(&["--version", "one", "--out", "x.rs", "a.aidl"]));
    assert!(!run(&["--bogus"]));
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("dmaheap-aidl-gen-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
