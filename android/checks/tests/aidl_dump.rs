//! How AIDL files become the `aidl --dumpapi` text that the aidl_api checks compare and freeze:
//! what counts as an API change, what does not, and what is refused. Each case writes a small
//! interface to a temporary directory and loads it the way the checks load `aidl/`.

use std::collections::BTreeMap;
use std::path::Path;

use android_checks::aidl::{self, Unit};

fn write_tree(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn load(files: &[(&str, &str)]) -> Result<Unit, aidl::Error> {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(tmp.path(), files);
    Unit::load(tmp.path())
}

fn api(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    load(files).unwrap_or_else(|e| panic!("{e}")).api()
}

fn one(path: &str, text: &str) -> BTreeMap<String, String> {
    api(&[(path, text)])
}

#[test]
fn dump_layout_follows_dumpapi() {
    let api = api(&[
        (
            "a/b/IThing.aidl",
            "/* licence */\npackage a.b;\nimport a.b.Item;\n/** Doc that is dropped. */\n\
             @VintfStability interface IThing {\n  const int LIMIT = 4;\n  /** @hide */\n  \
             @utf8InCpp String name(in Item item, int n);\n  oneway void poke(in Item[] items) = 7;\n}\n",
        ),
        (
            "a/b/Item.aidl",
            "package a.b;\n@VintfStability @JavaDerive(toString=true) parcelable Item {\n  \
             ParcelFileDescriptor fd;\n  long size = 4096;\n  @nullable Item next;\n}\n",
        ),
    ]);
    assert_eq!(
        api["a.b.IThing"],
        "@VintfStability\ninterface IThing {\n  /* @hide */\n  @utf8InCpp String name(in a.b.Item item, int n);\n  \
         oneway void poke(in a.b.Item[] items) = 7;\n  const int LIMIT = 4;\n}\n"
    );
    assert_eq!(
        api["a.b.Item"],
        "@JavaDerive(toString=true) @VintfStability\nparcelable Item {\n  ParcelFileDescriptor fd;\n  \
         long size = 4096;\n  @nullable a.b.Item next;\n}\n"
    );
}

#[test]
fn snapshot_keeps_licence_and_adds_banner() {
    let tmp = tempfile::tempdir().unwrap();
    write_tree(
        tmp.path(),
        &[(
            "p/E.aidl",
            "// line licence\n/* block */\npackage p;\n@Backing(type=\"byte\") enum E { A = 1, B, }\n",
        )],
    );
    let unit = Unit::load(tmp.path()).unwrap();
    let d = &unit.docs[0];
    let text = aidl::snapshot_file(d, &d.types[0]);
    assert!(
        text.starts_with(&format!(
            "// line licence\n/* block */\n{}",
            aidl::SNAPSHOT_BANNER
        )),
        "{text}"
    );
    assert!(
        text.ends_with("package p;\n@Backing(type=\"byte\")\nenum E {\n    A = 1,\n    B,\n}\n"),
        "{text}"
    );
}

#[test]
fn comments_and_formatting_do_not_change_the_api() {
    let a = one(
        "p/I.aidl",
        "package p; interface I { const int M = 1<<2; void f(int x); }",
    );
    let b = one(
        "p/I.aidl",
        "package p;\n// c\ninterface I {\n    /** text */\n    const int M = 1 <<   2;\n    void f(\n        int x);\n}\n",
    );
    assert_eq!(a, b);
}

#[test]
fn constants_are_compared_as_written() {
    let hex = one("p/I.aidl", "package p; interface I { const int X = 0x10; }");
    let padded = one(
        "p/I.aidl",
        "package p; interface I { const int X = 0x010; }",
    );
    assert_ne!(hex, padded, "AOSP's dump keeps 0x10 as written");
    let expr = one(
        "p/P.aidl",
        "package p; parcelable P { const int A = 1 << 2; Inner i; parcelable Inner { int x = - 1; String[] s = { \"a\",\"b\" }; } }",
    );
    assert_eq!(
        expr["p.P"],
        "parcelable P {\n  p.P.Inner i;\n  const int A = 1 << 2;\n  parcelable Inner {\n    \
         int x = -1;\n    String[] s = {\"a\", \"b\"};\n  }\n}\n"
    );
}

#[test]
fn positional_annotation_value_is_value() {
    let a = one(
        "p/P.aidl",
        "package p; @JavaSuppressLint({\"NewApi\"}) parcelable P {}",
    );
    let b = one(
        "p/P.aidl",
        "package p; @JavaSuppressLint(value={\"NewApi\"}) parcelable P {}",
    );
    assert_eq!(a, b);
    assert!(a["p.P"].starts_with("@JavaSuppressLint(value={\"NewApi\"})\n"));
}

#[test]
fn annotation_parameters_are_part_of_the_api() {
    let byte = one(
        "p/E.aidl",
        "package p; @Backing(type=\"byte\") enum E { A }",
    );
    let int = one("p/E.aidl", "package p; @Backing(type=\"int\") enum E { A }");
    assert_ne!(byte, int);
}

#[test]
fn hide_and_deprecation_are_part_of_the_api() {
    let plain = one("p/I.aidl", "package p; interface I { void f(); }");
    let deprecated = one(
        "p/I.aidl",
        "package p; interface I { /** @deprecated use g */ void f(); }",
    );
    let hidden = one(
        "p/I.aidl",
        "package p; interface I { /** @hide */ void f(); }",
    );
    assert_ne!(plain, deprecated);
    assert!(deprecated["p.I"].contains("   * @deprecated use g\n"));
    assert_ne!(plain, hidden);
    assert!(hidden["p.I"].contains("  /* @hide */\n  void f();"));
}

#[test]
fn oneway_generics_nested_and_fixed_arrays() {
    let api = one(
        "p/I.aidl",
        "package p; oneway interface I { void f(in List<List<String>> l, in int[2][3] m); \
         @nullable(heap=true) parcelable Box<T> { T value; } void g(in I.Box<String> b); }",
    );
    assert_eq!(
        api["p.I"],
        "interface I {\n  oneway void f(in List<List<String>> l, in int[2][3] m);\n  \
         oneway void g(in p.I.Box<String> b);\n  @nullable(heap=true)\n  parcelable Box<T> {\n    \
         T value;\n  }\n}\n"
    );
}

#[test]
fn a_file_rsbinder_aidl_rejects_fails_with_its_line() {
    // A keyword used as a name: AIDL's grammar forbids it; the dump reader alone would take it.
    let e = load(&[("p/P.aidl", "package p;\nparcelable P {\n  int oneway;\n}\n")])
        .err()
        .expect("invalid AIDL must fail");
    assert!(e.message.contains("rsbinder-aidl"), "{e}");
    assert_eq!(e.line, 3, "{e}");
    let e = load(&[("p/I.aidl", "package p;\ninterface I {\n void f(;\n}")])
        .err()
        .expect("a syntax error must fail");
    assert_eq!(e.line, 3, "{e}");
}

#[test]
fn what_a_stable_interface_cannot_hold_is_refused() {
    let unresolved = load(&[("p/I.aidl", "package p; interface I { Missing f(); }")]);
    assert!(unresolved.err().unwrap().message.contains("Missing"));
    let no_package = load(&[("x.aidl", "interface I {}")]);
    assert!(no_package.err().unwrap().message.contains("package"));
    let unstructured = load(&[("p/P.aidl", "package p; parcelable P;")]);
    assert!(unstructured
        .err()
        .unwrap()
        .message
        .contains("unstructured parcelable"));
    let foreign_import = load(&[(
        "p/I.aidl",
        "package p; import q.Other; interface I { void f(in Other o); }",
    )]);
    assert!(foreign_import
        .err()
        .unwrap()
        .message
        .contains("import `q.Other`"));
}

/// Why the dump does not come from rsbinder-aidl's AST (README, "Why the snapshot dumper reads
/// AIDL itself"): inputs whose dumps must differ parse to the same rsbinder-aidl AST. When an
/// rsbinder-aidl release keeps them apart, this test fails: time to move the reader onto it.
#[test]
fn rsbinder_aidl_ast_loses_what_a_dump_keeps() {
    let ast = |src: &str| {
        let ctx = rsbinder_aidl::SourceContext::new("p/I.aidl", src);
        format!("{:?}", rsbinder_aidl::parse_document(&ctx).unwrap().decls)
    };
    assert_eq!(
        ast("package p; interface I { /** @hide */ void f(); }"),
        ast("package p; interface I { /** hello */ void f(); }"),
        "@hide"
    );
    assert_eq!(
        ast("package p; interface I { const int X = 0x10; }"),
        ast("package p; interface I { const int X = 0x010; }"),
        "a constant as written"
    );
}
