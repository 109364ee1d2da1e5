//! Android.bp: parses with a Blueprint parser, names only files that exist, and agrees with the
//! AIDL package, the Cargo crates, the init script, the VINTF fragment and the policy file.

mod common;

use std::collections::BTreeSet;

use android_checks::bp::{self, Value};
use android_checks::{cargo, names};
use common::*;

/// Module types this file may use (all are Soong built-ins or the aidl_interface plugin).
const KNOWN_TYPES: &[&str] = &[
    "package",
    "license",
    "aidl_interface",
    "rust_library",
    "rust_binary",
    "rust_binary_host",
    "rust_test",
    "genrule",
    "prebuilt_etc",
];

#[test]
fn parses_with_a_blueprint_parser() {
    let bp = android_bp();
    assert!(bp.modules.len() >= 8, "expected the project's modules");
    for m in &bp.modules {
        assert!(
            KNOWN_TYPES.contains(&m.typ.as_str()),
            "unknown module type {}",
            m.typ
        );
    }
}

#[test]
fn parser_rejects_what_blueprint_rejects() {
    assert!(bp::parse("rust_binary { name: \"a\", name: \"b\" }").is_err());
    assert!(bp::parse("rust_binary { name: \"a\" ").is_err());
    assert!(bp::parse("rust_binary { name: \"a\" srcs: [] }").is_err());
    assert!(bp::parse("rust_binary { name: \"a\", srcs: [\"x\",], }").is_ok());
}

#[test]
fn module_names_are_unique() {
    let bp = android_bp();
    let names = bp::module_names(&bp);
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(
        unique.len(),
        names.len(),
        "duplicate module names in {names:?}"
    );
}

#[test]
fn every_named_file_exists() {
    let bp = android_bp();
    let mut checked = 0;
    for m in &bp.modules {
        for f in bp::file_references(m) {
            if f.contains('*') {
                assert!(!glob(&f).is_empty(), "{}: `{f}` matches no file", m.typ);
            } else {
                assert!(root().join(&f).is_file(), "{}: `{f}` does not exist", m.typ);
            }
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} file references found");
    // genrule `$(location x)` must name one of the genrule's srcs or tools.
    for m in bp.modules_by_type("genrule") {
        let cmd = match m.get("cmd") {
            Some(Value::String(s)) => s.clone(),
            other => panic!("genrule cmd must be a string, found {other:?}"),
        };
        let mut known = bp::strings(m.get("srcs"));
        known.extend(bp::strings(m.get("tools")));
        for loc in cmd.split("$(location ").skip(1) {
            let target = loc.split(')').next().unwrap();
            assert!(
                known.iter().any(|k| k == target),
                "genrule: $(location {target}) is not a src or tool"
            );
        }
    }
}

#[test]
fn aidl_interface_matches_the_sources() {
    let bp = android_bp();
    let m = aidl_interface(&bp);
    assert_eq!(m.get_string("stability").map(String::as_str), Some("vintf"));
    assert_eq!(
        m.get_bool("vendor_available"),
        Some(true),
        "vendor HALs link the ndk/cpp backends"
    );
    let include = m
        .get_string("local_include_dir")
        .expect("local_include_dir");
    assert_eq!(include, names::AIDL_ROOT);
    // Vendor C++ reaches a /dev/binder HAL only through the ndk backend (libbinder on vendor
    // speaks vndbinder), so the cpp backend stays off.
    for (backend, enabled) in [
        ("cpp", false),
        ("ndk", true),
        ("rust", true),
        ("java", false),
    ] {
        let v = bp::path(m, &["backend", backend, "enabled"]);
        assert_eq!(
            v,
            Some(&Value::Boolean(enabled)),
            "backend.{backend}.enabled"
        );
    }
    let srcs = bp::strings(m.get("srcs"));
    let mut files = Vec::new();
    for s in &srcs {
        files.extend(glob(s));
    }
    assert!(!files.is_empty());
    for f in &files {
        // aidl requires a file's path under the include dir to spell its package.
        let rel = f
            .strip_prefix(&format!("{include}/"))
            .expect("src under local_include_dir");
        let package_path = rel.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        assert_eq!(package_path.replace('/', "."), names::AIDL_PACKAGE, "{f}");
        let text = read(f);
        assert!(
            text.contains(&format!("package {};", names::AIDL_PACKAGE)),
            "{f} is not in package {}",
            names::AIDL_PACKAGE
        );
        assert!(
            text.contains("@VintfStability"),
            "{f}: every type of a vintf interface needs @VintfStability"
        );
    }
    // Every .aidl file of the package is compiled (nothing left out of srcs).
    let all = glob(&format!("{include}/**/*.aidl"));
    assert_eq!(all, files, "srcs must cover every .aidl under {include}/");
}

#[test]
fn the_service_installs_where_init_and_sepolicy_expect_it() {
    let bp = android_bp();
    let m = module(&bp, "rust_binary", names::SERVICE_MODULE);
    assert_eq!(m.get_bool("vendor"), Some(true));
    assert_eq!(installed_path(m), names::SERVICE_PATH);
    assert_eq!(bp::strings(m.get("init_rc")), [names::INIT_RC]);
    assert_eq!(
        bp::strings(m.get("vintf_fragments")),
        [names::VINTF_MANIFEST]
    );
    // The policy file the service reads by default is installed by a required prebuilt_etc.
    let required = bp::strings(m.get("required"));
    let etc: Vec<_> = bp.modules_by_type("prebuilt_etc").collect();
    assert_eq!(etc.len(), 1);
    let policy = etc[0];
    assert!(
        required.contains(policy.get_string("name").unwrap()),
        "service must require the policy file"
    );
    assert_eq!(policy.get_bool("vendor"), Some(true));
    let installed = installed_path(policy);
    assert_eq!(installed, "/vendor/etc/dmaheap/policy.toml");
    let service_src = read("service/src/policy/mod.rs");
    assert!(
        service_src.contains(&format!("\"{installed}\"")),
        "service/src/policy/mod.rs must default to {installed}"
    );
    let src = policy.get_string("src").unwrap();
    assert!(src.ends_with(".toml"), "{src}");
}

#[test]
fn vendor_test_is_in_a_vendor_suite() {
    let bp = android_bp();
    let tests: Vec<_> = bp.modules_by_type("rust_test").collect();
    assert_eq!(tests.len(), 1);
    let t = tests[0];
    // `vts` is the suite of AOSP's HALs; a vendor HAL's test runs from general-tests.
    assert_eq!(bp::strings(t.get("test_suites")), ["general-tests"]);
    let config = t.get_string("test_config").expect("test_config");
    let xml = read(config);
    let doc = roxmltree::Document::parse(&xml).expect("test config is well-formed XML");
    let name = t.get_string("name").unwrap();
    let module_name = doc
        .descendants()
        .find(|n| n.attribute("name") == Some("module-name"))
        .and_then(|n| n.attribute("value"))
        .expect("RustBinaryTest module-name");
    assert_eq!(module_name, name);
    assert!(xml.contains("com.android.tradefed.testtype.rust.RustBinaryTest"));
    assert!(
        xml.contains(&format!("/data/local/tmp/{name}")),
        "pushes the binary it runs"
    );
}

/// Vendor binaries link their Rust crates statically; otherwise Soong installs the crates as
/// dylibs, and libstd.so with them, into /vendor/lib64.
#[test]
fn vendor_binaries_prefer_rlibs() {
    let bp = android_bp();
    let mut checked = 0;
    for m in bp.modules_by_type("rust_binary") {
        if m.get_bool("vendor") == Some(true) {
            assert_eq!(
                m.get_bool("prefer_rlib"),
                Some(true),
                "{}: prefer_rlib",
                m.get_string("name").unwrap()
            );
            checked += 1;
        }
    }
    assert!(checked >= 2, "the service and dmaheapctl");
}

/// Userspace is Apache-2.0 with its text and NOTICE; the kernel module is declared GPL-2.0.
#[test]
fn licences_are_declared_with_their_texts() {
    let bp = android_bp();
    let pkg: Vec<_> = bp.modules_by_type("package").collect();
    let default = bp::strings(pkg[0].get("default_applicable_licenses"));
    assert_eq!(default.len(), 1);
    let userspace = module(&bp, "license", &default[0]);
    assert_eq!(
        bp::strings(userspace.get("license_kinds")),
        ["SPDX-license-identifier-Apache-2.0"]
    );
    let texts = bp::strings(userspace.get("license_text"));
    assert!(texts.contains(&"LICENSE".to_owned()) && texts.contains(&"NOTICE".to_owned()));
    assert!(read("LICENSE").contains("Apache License"));
    let kmod = bp
        .modules_by_type("license")
        .find(|m| bp::strings(m.get("license_kinds")) == ["SPDX-license-identifier-GPL-2.0-only"])
        .expect("a GPL-2.0-only license module for heaps-kmod");
    for t in bp::strings(kmod.get("license_text")) {
        assert!(t.starts_with("heaps-kmod/"), "{t}");
        assert!(read(&t).contains("GNU GENERAL PUBLIC LICENSE"));
    }
    // Every source file of the module says so too.
    for f in glob("heaps-kmod/*.rs")
        .into_iter()
        .chain(glob("heaps-kmod/*.c"))
    {
        assert!(read(&f).contains("SPDX-License-Identifier: GPL-2.0"), "{f}");
    }
}

/// dmaheapctl is a debugging tool: installed through PRODUCT_PACKAGES_DEBUG, never pulled in
/// by the service.
#[test]
fn dmaheapctl_is_debug_only() {
    let bp = android_bp();
    let svc = module(&bp, "rust_binary", names::SERVICE_MODULE);
    assert!(!bp::strings(svc.get("required")).contains(&"dmaheapctl".to_owned()));
    for doc in ["Android.bp", "README.md"] {
        let text = read(doc);
        for line in text.lines().filter(|l| l.contains("PRODUCT_PACKAGES")) {
            if line.contains("dmaheapctl") {
                assert!(
                    line.contains("PRODUCT_PACKAGES_DEBUG"),
                    "{doc}: `{}` installs dmaheapctl on user builds",
                    line.trim()
                );
            }
        }
        assert!(
            text.contains("PRODUCT_PACKAGES_DEBUG += dmaheapctl"),
            "{doc}"
        );
    }
}

/// Each Rust module builds a crate of the Cargo workspace with the same crate name and version.
/// (Its dependencies are checked by the resolver: tests/dependencies.rs.)
#[test]
fn rust_modules_agree_with_cargo() {
    let bp = android_bp();
    let mut checked = 0;
    for m in bp.modules.iter().filter(|m| m.typ.starts_with("rust_")) {
        let name = m.get_string("name").unwrap();
        let srcs = bp::strings(m.get("srcs"));
        let crate_root = srcs
            .iter()
            .find(|s| s.ends_with(".rs"))
            .expect("a .rs crate root");
        let crate_dir = crate_root
            .split_once("/src/")
            .or_else(|| crate_root.split_once("/tests/"))
            .map(|(dir, _)| dir)
            .unwrap_or_else(|| {
                panic!(
                    "{name}: crate root {crate_root} is not under <crate>/src/ or <crate>/tests/"
                )
            });
        let manifest = cargo::read_manifest(&root().join(crate_dir).join("Cargo.toml"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let is_lib = m.typ == "rust_library";
        let expected_crate = if is_lib {
            manifest.package.replace('-', "_")
        } else {
            // A binary's crate is named after its file (src/bin/x.rs) or the package (src/main.rs).
            let stem = std::path::Path::new(crate_root)
                .file_stem()
                .unwrap()
                .to_string_lossy();
            if stem == "main" {
                manifest.package.replace('-', "_")
            } else {
                stem.replace('-', "_")
            }
        };
        assert_eq!(
            m.get_string("crate_name"),
            Some(&expected_crate),
            "{name}: crate_name"
        );
        // Soong sets CARGO_PKG_VERSION & co. (clap's `version`, env!) only when asked to.
        assert_eq!(
            m.get_bool("cargo_env_compat"),
            Some(true),
            "{name}: cargo_env_compat"
        );
        let version = manifest.version.clone().unwrap_or_else(|| {
            let ws = cargo::read_workspace_version(&root().join("Cargo.toml"));
            ws.unwrap_or_else(|e| panic!("{name}: {e}"))
        });
        assert_eq!(
            m.get_string("cargo_pkg_version"),
            Some(&version),
            "{name}: cargo_pkg_version must be {crate_dir}/Cargo.toml's version"
        );
        if is_lib {
            let lib_name = format!("lib{expected_crate}");
            assert_eq!(name, &lib_name, "Soong names a library lib<crate_name>");
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} Rust modules checked");
}

/// Libraries that the (system-side) VTS test and the vendor service both link must have both
/// variants.
#[test]
fn shared_libraries_are_vendor_available() {
    let bp = android_bp();
    for lib in ["libdmaheap_aidl", "libdmabuf", "libdmaheap_client"] {
        let m = module(&bp, "rust_library", lib);
        assert_eq!(m.get_bool("vendor_available"), Some(true), "{lib}");
    }
    let svc = module(&bp, "rust_library", "libdmaheap_service");
    assert_eq!(svc.get_bool("vendor"), Some(true));
}

/// Blueprint refuses a property a module type does not have ("unrecognized property"); a typo
/// like `relative_instal_path` would otherwise only show on a device build. These are the
/// properties Soong's module types (and the aidl_interface plugin) accept, for the types used.
#[test]
fn properties_are_known_to_soong() {
    const COMMON: &[&str] = &[
        "name",
        "enabled",
        "visibility",
        "required",
        "host_required",
        "target_required",
        "init_rc",
        "vintf_fragments",
        "licenses",
        "owner",
        "vendor",
        "soc_specific",
        "device_specific",
        "product_specific",
        "system_ext_specific",
        "proprietary",
        "arch",
        "target",
        "multilib",
        "compile_multilib",
        "defaults",
        "dist",
        "dists",
        "apex_available",
        "min_sdk_version",
    ];
    const RUST: &[&str] = &[
        "crate_name",
        "cargo_env_compat",
        "cargo_pkg_version",
        "srcs",
        "crate_root",
        "edition",
        "rustlibs",
        "rlibs",
        "dylibs",
        "proc_macros",
        "shared_libs",
        "static_libs",
        "whole_static_libs",
        "features",
        "cfgs",
        "flags",
        "ld_flags",
        "lints",
        "clippy_lints",
        "relative_install_path",
        "vendor_available",
        "product_available",
        "recovery_available",
        "ramdisk_available",
        "vendor_ramdisk_available",
        "host_supported",
        "device_supported",
        "prefer_rlib",
        "stem",
        "suffix",
        "installable",
        "double_loadable",
        "sanitize",
        "no_stdlibs",
        "stdlibs",
        "aliases",
    ];
    const RUST_TEST: &[&str] = &[
        "test_suites",
        "test_config",
        "test_config_template",
        "auto_gen_config",
        "data",
        "data_libs",
        "data_bins",
        "test_options",
        "require_root",
        "test_harness",
    ];
    const AIDL: &[&str] = &[
        "srcs",
        "local_include_dir",
        "include_dirs",
        "stability",
        "vendor_available",
        "odm_available",
        "product_available",
        "host_supported",
        "double_loadable",
        "backend",
        "versions_with_info",
        "versions",
        "frozen",
        "imports",
        "unstable",
        "flags",
        "dumpapi",
        "gen_trace",
        "headers",
        "vndk",
    ];
    const AIDL_BACKEND: &[&str] = &[
        "enabled",
        "apex_available",
        "min_sdk_version",
        "platform_apis",
        "sdk_version",
        "srcs_available",
        "gen_log",
        "additional_shared_libraries",
        "additional_rustlibs",
        "lint",
    ];
    const GENRULE: &[&str] = &[
        "srcs",
        "exclude_srcs",
        "out",
        "cmd",
        "tools",
        "tool_files",
        "export_include_dirs",
    ];
    const PREBUILT_ETC: &[&str] = &[
        "src",
        "srcs",
        "sub_dir",
        "relative_install_path",
        "filename",
        "filename_from_src",
        "installable",
        "recovery_available",
        "ramdisk_available",
        "vendor_ramdisk_available",
    ];
    const LICENSE: &[&str] = &[
        "license_kinds",
        "license_text",
        "copyright_notice",
        "package_name",
    ];
    const PACKAGE: &[&str] = &[
        "default_applicable_licenses",
        "default_visibility",
        "default_team",
    ];
    let bp = android_bp();
    for m in &bp.modules {
        let specific: Vec<&[&str]> = match m.typ.as_str() {
            "rust_library" | "rust_binary" | "rust_binary_host" => vec![RUST],
            "rust_test" => vec![RUST, RUST_TEST],
            "aidl_interface" => vec![AIDL],
            "genrule" => vec![GENRULE],
            "prebuilt_etc" => vec![PREBUILT_ETC],
            "license" => vec![LICENSE],
            "package" => vec![PACKAGE],
            other => panic!("no property list for {other}"),
        };
        let name = m
            .get_string("name")
            .cloned()
            .unwrap_or_else(|| m.typ.clone());
        for key in m.entries.keys() {
            let known = COMMON.contains(&key.as_str())
                || specific.iter().any(|list| list.contains(&key.as_str()));
            assert!(known, "{} {name}: unrecognized property `{key}`", m.typ);
        }
        if m.typ == "aidl_interface" {
            let Some(Value::Map(backends)) = m.get("backend") else {
                panic!("aidl_interface needs a backend map");
            };
            for (backend, props) in backends.iter() {
                assert!(
                    ["cpp", "ndk", "rust", "java"].contains(&backend.as_str()),
                    "unknown AIDL backend {backend}"
                );
                let Value::Map(props) = props else {
                    panic!("backend.{backend} must be a map");
                };
                for key in props.keys() {
                    assert!(
                        AIDL_BACKEND.contains(&key.as_str()),
                        "backend.{backend}: unrecognized property `{key}`"
                    );
                }
            }
        }
    }
}
