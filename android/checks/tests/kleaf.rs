//! heaps-kmod/BUILD.bazel, the Kleaf build of the module, as far as it can be checked without
//! Kleaf: it parses, it builds the module Kbuild builds from the same crate root, it names only
//! files that exist and every file the crate and its C helpers use.

mod common;

use std::collections::BTreeSet;

use android_checks::names;
use android_checks::starlark::{self, Call};
use common::*;

fn build_file() -> starlark::File {
    starlark::parse(&read("heaps-kmod/BUILD.bazel"))
        .unwrap_or_else(|e| panic!("heaps-kmod/BUILD.bazel: {e}"))
}

fn rule<'a>(f: &'a starlark::File, function: &str) -> &'a Call {
    let found: Vec<&Call> = f.calls.iter().filter(|c| c.function == function).collect();
    assert_eq!(found.len(), 1, "one {function}");
    found[0]
}

#[test]
fn ddk_module_builds_the_rust_crate() {
    let f = build_file();
    let load = rule(&f, "load");
    assert!(load
        .positional
        .contains(&starlark::Value::Str("ddk_module".into())));
    let m = rule(&f, "ddk_module");
    let object = names::KMOD.trim_end_matches(".ko");
    assert_eq!(m.string("name"), Some(object));
    assert_eq!(m.string("out"), Some(names::KMOD));
    let root = m.string("crate_root").expect("crate_root");
    let srcs: BTreeSet<String> = m.strings("srcs").into_iter().collect();
    assert!(srcs.contains(root));
    assert!(m.string("kernel_build").is_some());
    // The same crate root and C objects as Kbuild.
    let kbuild = read("heaps-kmod/Kbuild");
    let stem = root.trim_end_matches(".rs");
    assert!(
        kbuild.contains(&format!("{object}-y := {stem}.o helpers.o")),
        "{kbuild}"
    );
    // Every listed file exists; labels name rules of this file.
    let genrules: Vec<String> = f
        .calls
        .iter()
        .filter(|c| c.function == "genrule")
        .filter_map(|c| c.string("name").map(str::to_owned))
        .collect();
    for s in &srcs {
        match s.strip_prefix(':') {
            Some(label) => assert!(genrules.contains(&label.to_owned()), "{s} is no rule here"),
            None => assert!(root_file(s).is_file(), "heaps-kmod/{s} does not exist"),
        }
    }
    // Every module of the crate (`mod x;` in the crate root, and in its modules: `x.rs` or
    // `x/mod.rs`, whose own modules live in `x/`) is a source.
    let mut pending = vec![(root.to_owned(), String::new())];
    while let Some((file, dir)) = pending.pop() {
        for line in read(&format!("heaps-kmod/{file}")).lines().map(str::trim) {
            let Some(m) = line
                .strip_prefix("pub(crate) mod ")
                .or_else(|| line.strip_prefix("mod "))
                .and_then(|l| l.strip_suffix(';'))
            else {
                continue;
            };
            let flat = format!("{dir}{m}.rs");
            let nested = format!("{dir}{m}/mod.rs");
            if srcs.contains(&flat) {
                pending.push((flat, dir.clone()));
            } else if srcs.contains(&nested) {
                pending.push((nested, format!("{dir}{m}/")));
            } else {
                panic!("crate module {flat} (or {nested}) is not in srcs");
            }
        }
    }
    // Local headers the C and Rust sides include are listed, and the file the crate includes
    // from the bindgen rule is that rule's output.
    for f in srcs
        .iter()
        .filter(|s| s.ends_with(".c") || s.ends_with(".h"))
    {
        for line in read(&format!("heaps-kmod/{f}")).lines() {
            if let Some(h) = line
                .strip_prefix("#include \"")
                .and_then(|l| l.strip_suffix('"'))
            {
                assert!(srcs.contains(h), "{f} includes {h}, not in srcs");
            }
        }
    }
    let bindgen = f
        .calls
        .iter()
        .find(|c| {
            c.function == "genrule"
                && c.strings("outs")
                    .contains(&"bindings_generated.rs".to_owned())
        })
        .expect("a rule writes bindings_generated.rs");
    assert!(read("heaps-kmod/bindings.rs").contains("include!(\"bindings_generated.rs\")"));
    for s in bindgen.strings("srcs") {
        assert!(root_file(&s).is_file(), "{s}");
    }
    assert!(srcs.contains(&format!(":{}", bindgen.string("name").unwrap())));
}

fn root_file(rel: &str) -> std::path::PathBuf {
    root().join("heaps-kmod").join(rel)
}

#[test]
fn every_crate_file_is_listed() {
    let f = build_file();
    let m = rule(&f, "ddk_module");
    let srcs: BTreeSet<String> = m.strings("srcs").into_iter().collect();
    for e in std::fs::read_dir(root().join("heaps-kmod")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        let is_src = name.ends_with(".rs") || name.ends_with(".c") || name == "helpers.h";
        if is_src {
            assert!(
                srcs.contains(&name),
                "heaps-kmod/{name} is not in the ddk_module's srcs"
            );
        }
    }
    let exported = rule(&f, "exports_files");
    assert!(exported
        .positional
        .contains(&starlark::Value::List(vec![starlark::Value::Str(
            "modules.options".into()
        )])));
}
