//! The device build resolves: every Rust module's dependencies exist for the variant it is built
//! in, at a version and with the features its crate needs, against AOSP's snapshot
//! (android/crates/aosp.toml) and the crates this project ships (android/crates/shipped.toml).
//! Each negative case breaks one thing and must fail for that reason.

use android_checks::deps::{self, Shipped, World};
use android_checks::repo_root;

fn world() -> World {
    World::load(&repo_root()).unwrap_or_else(|e| panic!("{e}"))
}

fn assert_fails(world: &World, needle: &str) {
    let problems = world.resolve();
    assert!(
        problems.iter().any(|p| p.contains(needle)),
        "expected a problem containing `{needle}`, got:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_real_tree_resolves() {
    let w = world();
    let problems = w.resolve();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // It looked at what matters: the vendor service, the host tool, rsbinder's own crates.
    for name in [
        "vendor.dmaheap-service",
        "dmaheap-aidl-gen",
        "librsbinder",
        "libdmaheap_toml",
    ] {
        assert!(
            w.modules.iter().any(|m| m.name == name),
            "{name} not checked"
        );
    }
}

#[test]
fn generated_crate_modules_are_current() {
    let w = world();
    for (path, text) in deps::generate(&w).unwrap_or_else(|e| panic!("{e}")) {
        let committed = std::fs::read_to_string(repo_root().join(&path)).unwrap();
        assert!(
            committed == text,
            "{path} is stale: run `cargo run -p android-checks --bin android-crates -- generate`"
        );
    }
}

#[test]
fn an_rsbinder_without_a_release_dialect_fails() {
    for dialect in deps::SERVICE_MANAGER_DIALECTS {
        let mut w = world();
        let m = w
            .modules
            .iter_mut()
            .find(|m| m.name == deps::RSBINDER_MODULE)
            .expect("librsbinder is a module");
        m.features.remove(*dialect);
        assert_fails(&w, &format!("lacks feature `{dialect}`"));
    }
}

#[test]
fn a_host_only_crate_in_a_vendor_module_fails() {
    // The policy parser as AOSP has it: libtoml, rust_library_host.
    let mut w = world();
    w.shipped.crates.retain(|c| c.name != "toml");
    let bp = std::fs::read_to_string(repo_root().join("Android.bp"))
        .unwrap()
        .replace("\"libdmaheap_toml\"", "\"libtoml\"");
    w.add_bp_text("Android.bp", &bp).unwrap();
    assert_fails(
        &w,
        "`libtoml` (toml 1.1.6+spec-1.1.0) has no Vendor variant (only Host) in AOSP",
    );
}

#[test]
fn a_crate_nobody_provides_fails() {
    let mut w = world();
    w.shipped.crates.retain(|c| c.name != "rsproperties");
    w.modules.retain(|m| m.name != "librsproperties");
    assert_fails(
        &w,
        "needs `rsproperties`: AOSP does not have it and we do not ship it",
    );
}

#[test]
fn a_missing_or_extra_rustlib_fails() {
    let mut w = world();
    let bp = std::fs::read_to_string(repo_root().join("Android.bp")).unwrap();
    let dropped = bp.replacen("        \"libthiserror\",\n", "", 1);
    assert_ne!(bp, dropped);
    w.add_bp_text("Android.bp", &dropped).unwrap();
    assert_fails(
        &w,
        "depends on thiserror but `libthiserror` is not in rustlibs",
    );
    let extra = bp.replacen(
        "rustlibs: [\"librsbinder\"]",
        "rustlibs: [\"librsbinder\", \"libnix\"]",
        1,
    );
    assert_ne!(bp, extra);
    w.add_bp_text("Android.bp", &extra).unwrap();
    assert_fails(
        &w,
        "`libnix` is listed but crate dmaheap-aidl does not depend on it",
    );
}

#[test]
fn an_older_aosp_version_fails() {
    // android16's libnix: the code needs nix 0.31 (MFdFlags).
    let mut w = world();
    let nix = w
        .snapshot
        .crates
        .iter_mut()
        .find(|c| c.name == "nix")
        .unwrap();
    nix.version = "0.29.0".into();
    assert_fails(&w, "requires nix ^0.31; `libnix` is 0.29.0");
    assert_fails(&w, "Cargo.lock has nix 0.31.3, AOSP's `libnix` is 0.29.0");
}

#[test]
fn a_lock_file_newer_than_aosp_fails() {
    let mut w = world();
    let clap = w
        .snapshot
        .crates
        .iter_mut()
        .find(|c| c.name == "clap")
        .unwrap();
    clap.version = "4.5.0".into();
    assert_fails(&w, "Cargo.lock has clap 4.6.1, AOSP's `libclap` is 4.5.0");
}

#[test]
fn a_feature_aosp_does_not_enable_fails() {
    // rsbinder's fast message queue needs rustix's `thread` (futex).
    let mut w = world();
    let rustix = w
        .snapshot
        .crates
        .iter_mut()
        .find(|c| c.name == "rustix")
        .unwrap();
    assert!(rustix.features.remove("thread"));
    assert_fails(&w, "needs features [\"thread\"] of rustix");
}

#[test]
fn waivers_are_the_only_exception() {
    let mut w = world();
    w.shipped.waivers.retain(|x| x.dependency != "miette");
    assert_fails(&w, "crate rsbinder-aidl needs features [\"fancy\"");
}

#[test]
fn shipping_a_crate_aosp_has_fails() {
    // A second librustix (or any crate AOSP has for the vendor) is a duplicate.
    let mut w = world();
    let mut dup = w.shipped.crates[0].clone();
    dup.name = "rustix".into();
    dup.module = "librustix".into();
    dup.build_outputs.clear();
    w.shipped.crates.push(dup);
    assert_fails(
        &w,
        "shipped crate `rustix` is in AOSP for Vendor as `librustix` 1.1.4: reuse it",
    );
    w.add_bp_text(
        "android/crates/rustix.bp",
        "rust_library { name: \"librustix\", crate_root: \"src/lib.rs\", vendor_available: true }",
    )
    .unwrap();
    assert_fails(&w, "module `librustix` duplicates AOSP's");
}

#[test]
fn rsbinder_build_outputs_must_cover_its_out_dir_includes() {
    let mut w = world();
    let rsb = w
        .shipped
        .crates
        .iter_mut()
        .find(|c| c.name == "rsbinder")
        .unwrap();
    rsb.build_outputs.remove("fmq.rs");
    let e = deps::generate(&w).unwrap_err();
    assert!(e.contains("fmq.rs"), "{e}");
}

#[test]
fn shipped_crates_are_absent_from_aosp_or_host_only_there() {
    let w = world();
    for c in &w.shipped.crates {
        let absent = w.snapshot.absent.iter().any(|a| a.name == c.name);
        let host_only = w.snapshot.by_crate(&c.name).is_some_and(|a| !a.vendor);
        assert!(absent || host_only, "{} is shipped but AOSP has it", c.name);
        assert!(repo_root().join(Shipped::bp_path(c)).is_file());
    }
}
