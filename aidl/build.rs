//! Generates the Rust binding of the AIDL interface from `vendor/dmaheap/*.aidl`, the same files
//! that Soong's `aidl_interface` compiles on a device (srcs relative to `aidl/`).

use std::path::PathBuf;

const INTERFACE: &str = "IHeapAllocator";
/// The latest frozen version (`aidl_api/vendor.dmaheap/<VERSION>`), which the service speaks.
const VERSION: i32 = 2;

/// The hash Soong recorded when VERSION was frozen (`aidl_api/vendor.dmaheap/<VERSION>/.hash`
/// beside the `aidl_interface` module), so that getInterfaceHash() agrees with the device's
/// backends.
fn frozen_hash() -> Option<String> {
    let relative = format!("aidl_api/vendor.dmaheap/{VERSION}/.hash");
    let candidates = [
        PathBuf::from("..").join(&relative),
        PathBuf::from(&relative),
    ];
    for path in &candidates {
        if let Ok(text) = std::fs::read_to_string(path) {
            println!("cargo:rerun-if-changed={}", path.display());
            // The file may list several hashes (one per re-freeze); the last one is current.
            if let Some(hash) = text.lines().map(str::trim).rfind(|l| !l.is_empty()) {
                return Some(hash.to_owned());
            }
        }
    }
    None
}

fn main() {
    let dir = PathBuf::from("vendor/dmaheap");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the AIDL directory vendor/dmaheap is part of this crate")
        .map(|entry| entry.expect("readable AIDL directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "aidl"))
        .collect();
    // Stable order keeps the generated file, and therefore rebuilds, deterministic.
    files.sort();
    let mut builder = rsbinder_aidl::Builder::new();
    for file in files {
        println!("cargo:rerun-if-changed={}", file.display());
        let is_interface = file.file_stem().is_some_and(|stem| stem == INTERFACE);
        builder = builder.source(&file);
        if is_interface {
            // The frozen version: the generated code answers getInterfaceVersion() like the
            // NDK/C++ backends built by Soong from the same files.
            builder = builder.version(VERSION);
            if let Some(hash) = frozen_hash() {
                builder = builder.hash(hash);
            }
        }
    }
    builder
        .output(PathBuf::from("dmaheap_aidl.rs"))
        .generate()
        .expect("the AIDL files compile with rsbinder-aidl");
}
