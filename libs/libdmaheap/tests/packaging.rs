//! Android.bp parses as Blueprint and agrees with Cargo.toml and the files it names.

use android_bp::{BluePrint, Value};

const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

fn read(name: &str) -> String {
    std::fs::read_to_string(format!("{CRATE_DIR}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => panic!("expected a string, found {other:?}"),
            })
            .collect(),
        None => Vec::new(),
        other => panic!("expected a list, found {other:?}"),
    }
}

#[test]
fn android_bp_parses_and_names_existing_files() {
    let bp = BluePrint::parse(&read("Android.bp")).expect("valid Blueprint");
    let mut names: Vec<&str> = bp
        .modules
        .iter()
        .filter_map(|m| m.get_string("name").map(String::as_str))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "libdmaheap",
            "libdmaheap_c_client",
            "libdmaheap_cpp_client",
            "libdmaheap_defaults",
            "libdmaheap_headers",
        ]
    );
    for m in &bp.modules {
        for key in ["srcs", "include_dirs", "export_include_dirs"] {
            for f in strings(m.get(key)) {
                assert!(
                    std::path::Path::new(&format!("{CRATE_DIR}/{f}")).exists(),
                    "{}: {key} names {f}, which does not exist",
                    m.typ
                );
            }
        }
        match m.typ.as_str() {
            "package" => {}
            // Vendor, through the defaults every user of the library takes.
            "cc_test" => assert_eq!(strings(m.get("defaults")), ["libdmaheap_defaults"]),
            typ => assert_eq!(m.get_bool("vendor"), Some(true), "{typ} is for vendor"),
        }
    }
}

#[test]
fn the_rust_module_matches_cargo_toml() {
    let bp = BluePrint::parse(&read("Android.bp")).unwrap();
    let ffi = bp
        .modules_by_type("rust_ffi_static")
        .next()
        .expect("a rust_ffi_static module");
    let cargo = read("Cargo.toml");
    assert!(cargo.contains("name = \"dmaheap\""), "the [lib] name");
    assert_eq!(ffi.get_string("crate_name").unwrap(), "dmaheap");
    assert_eq!(
        ffi.get_string("cargo_pkg_version").unwrap(),
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(ffi.get_bool("vendor"), Some(true));
    // One rustlib per dependency of [dependencies], named lib<crate>.
    let deps: Vec<String> = cargo
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('.').or_else(|| l.split_once(' ')))
        .map(|(name, _)| format!("lib{}", name.trim().replace('-', "_")))
        .filter(|n| n != "lib")
        .collect();
    let mut rustlibs = strings(ffi.get("rustlibs"));
    rustlibs.sort();
    assert_eq!(rustlibs, deps);
}

#[test]
fn the_documented_programs_exist() {
    for f in [
        "tests/c_client.c",
        "tests/cpp_client.cpp",
        "examples/gralloc_backend.cpp",
        "examples/camera_hal.cpp",
        "examples/codec2_store.cpp",
        "include/dmaheap/dmaheap.h",
        "include/dmaheap/BufferAllocator.h",
    ] {
        assert!(
            read("BUILD-IN-VM.md").contains(f) || read("README.md").contains(f),
            "{f}"
        );
        assert!(
            std::path::Path::new(&format!("{CRATE_DIR}/{f}")).is_file(),
            "{f}"
        );
    }
}
