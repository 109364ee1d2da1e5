//! The tool writes the same binding aidl/build.rs writes: every type, stamped with the frozen
//! version and the last hash of its `.hash` file.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn generates_the_versioned_binding() {
    let out = tempfile_dir("versioned");
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

/// One directory per test: the tests of this file run in parallel threads of one process, and
/// one test removing a directory keyed by the pid alone took the other's output with it.
fn tempfile_dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("dmaheap-aidl-gen-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// With `--crate-support`, the tool writes what rsbinder's own build.rs writes into OUT_DIR
/// (async off, as in the device build): byte for byte, for a single-file and a multi-file output.
#[test]
fn crate_support_matches_rsbinders_build_script() {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    // The Cargo build of this workspace ran rsbinder's build.rs (without `async`).
    let mut out_dirs = Vec::new();
    for profile in ["debug", "release"] {
        let Ok(entries) = std::fs::read_dir(target.join(profile).join("build")) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("rsbinder-") && e.path().join("out/fmq.rs").is_file() {
                out_dirs.push(e.path().join("out"));
            }
        }
    }
    assert!(
        !out_dirs.is_empty(),
        "no Cargo build of rsbinder under {}",
        target.display()
    );
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let mut crate_dir = None;
    for reg in std::fs::read_dir(cargo_home.join("registry/src"))
        .unwrap()
        .flatten()
    {
        let d = reg.path().join("rsbinder-0.12.0");
        if d.is_dir() {
            crate_dir = Some(d);
        }
    }
    let crate_dir = crate_dir.expect("rsbinder's sources in Cargo's registry");
    let cases: [(&str, &[&str]); 2] = [
        (
            "service_manager_16.rs",
            &["aidl/16/android/os/IServiceManager.aidl"],
        ),
        (
            "fmq.rs",
            &[
                "aidl/fmq/android/hardware/common/NativeHandle.aidl",
                "aidl/fmq/android/hardware/common/fmq/GrantorDescriptor.aidl",
                "aidl/fmq/android/hardware/common/fmq/MQDescriptor.aidl",
                "aidl/fmq/android/hardware/common/fmq/SynchronizedReadWrite.aidl",
                "aidl/fmq/android/hardware/common/fmq/UnsynchronizedWrite.aidl",
            ],
        ),
    ];
    let out = tempfile_dir("crate-support");
    for (file, inputs) in cases {
        let dest = out.join(file);
        let status = Command::new(env!("CARGO_BIN_EXE_dmaheap-aidl-gen"))
            .arg("--crate-support")
            .arg("--out")
            .arg(&dest)
            .args(inputs.iter().map(|i| crate_dir.join(i)))
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "{}",
            String::from_utf8_lossy(&status.stderr)
        );
        let ours = std::fs::read(&dest).unwrap();
        assert!(
            out_dirs
                .iter()
                .any(|d| std::fs::read(d.join(file)).ok().as_deref() == Some(&ours[..])),
            "{file} differs from rsbinder's build.rs output in {out_dirs:?}"
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}
