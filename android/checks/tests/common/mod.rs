//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use android_checks::bp::{self, BluePrint, Module, Value};
use android_checks::{names, repo_root};

pub fn root() -> PathBuf {
    repo_root()
}

pub fn read(rel: &str) -> String {
    let p = root().join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

pub fn android_bp() -> BluePrint {
    bp::parse(&read("Android.bp")).unwrap_or_else(|e| panic!("Android.bp does not parse:\n{e}"))
}

pub fn module<'a>(bp: &'a BluePrint, typ: &str, name: &str) -> &'a Module {
    bp::module(bp, typ, name).unwrap_or_else(|| panic!("Android.bp has no {typ} `{name}`"))
}

/// The aidl_interface module.
pub fn aidl_interface(bp: &BluePrint) -> &Module {
    module(bp, "aidl_interface", names::AIDL_MODULE)
}

/// `versions_with_info[*].version` of the aidl_interface.
pub fn declared_versions(m: &Module) -> Vec<u32> {
    match m.get("versions_with_info") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::Map(map) => match map.get("version") {
                    Some(Value::String(v)) => v.parse().expect("a version is a number"),
                    other => panic!("version must be a string, found {other:?}"),
                },
                other => panic!("versions_with_info entries are maps, found {other:?}"),
            })
            .collect(),
        None => Vec::new(),
        other => panic!("versions_with_info must be a list, found {other:?}"),
    }
}

/// Files matching a Soong glob (`*` within one path component, `**` across directories),
/// relative to the repository root.
pub fn glob(pattern: &str) -> Vec<String> {
    let mut re = String::from("^");
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                re.push_str("(?:.*/)?");
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    let re = regex::Regex::new(&re).expect("glob regex");
    let mut out = Vec::new();
    walk(&root(), &root(), &re, &mut out);
    out.sort();
    out
}

fn walk(base: &Path, dir: &Path, re: &regex::Regex, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let rel = p.strip_prefix(base).unwrap().to_string_lossy().into_owned();
        if rel.starts_with(".git") || rel.starts_with("target") {
            continue;
        }
        if p.is_dir() {
            walk(base, &p, re, out);
        } else if re.is_match(&rel) {
            out.push(rel);
        }
    }
}

/// Where Soong installs a module's main output on the device.
pub fn installed_path(m: &Module) -> String {
    let partition =
        if m.get_bool("vendor") == Some(true) || m.get_bool("soc_specific") == Some(true) {
            "/vendor"
        } else {
            "/system"
        };
    let name = m.get_string("name").expect("module has a name");
    match m.typ.as_str() {
        "rust_binary" | "cc_binary" => {
            let mut p = format!("{partition}/bin");
            if let Some(rel) = m.get_string("relative_install_path") {
                p.push('/');
                p.push_str(rel);
            }
            format!("{p}/{name}")
        }
        "prebuilt_etc" => {
            let mut p = format!("{partition}/etc");
            if let Some(sub) = m.get_string("sub_dir") {
                p.push('/');
                p.push_str(sub);
            }
            let file = m.get_string("filename").unwrap_or(name);
            format!("{p}/{file}")
        }
        other => panic!("no install rule for {other}"),
    }
}
