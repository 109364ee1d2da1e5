//! `Android.bp`, read with the `android_bp` crate (a Blueprint parser that parses every
//! Android.bp of AOSP), plus the checks Blueprint itself makes that the crate does not.

use std::collections::BTreeSet;

pub use android_bp::{BluePrint, Module, Value};

/// Parses Blueprint text; also rejects a property given twice in one map (Blueprint does).
pub fn parse(text: &str) -> Result<BluePrint, String> {
    let bp = BluePrint::parse(text)?;
    duplicate_properties(text)?;
    Ok(bp)
}

/// Blueprint refuses `name: "a", name: "b"` in one module or map; `android_bp` keeps the last
/// one silently, so this scans for it: every `{ ... }` level's `key:` names must be unique.
fn duplicate_properties(text: &str) -> Result<(), String> {
    let mut stack: Vec<BTreeSet<String>> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut line = 1;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\n' => line += 1,
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    if bytes[i] == b'\n' {
                        line += 1;
                    }
                    i += 1;
                }
                i += 2;
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'{' => stack.push(BTreeSet::new()),
            b'}' => {
                stack.pop();
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &text[start..i];
                let mut j = i;
                while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                    j += 1;
                }
                if bytes.get(j) == Some(&b':') {
                    if let Some(level) = stack.last_mut() {
                        if !level.insert(word.to_owned()) {
                            return Err(format!("line {line}: property `{word}` given twice"));
                        }
                    }
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The module of type `typ` named `name`.
pub fn module<'a>(bp: &'a BluePrint, typ: &str, name: &str) -> Option<&'a Module> {
    bp.modules
        .iter()
        .find(|m| m.typ == typ && m.get_string("name").map(String::as_str) == Some(name))
}

/// Every module's name.
pub fn module_names(bp: &BluePrint) -> Vec<String> {
    bp.modules
        .iter()
        .filter_map(|m| m.get_string("name").cloned())
        .collect()
}

/// A list-of-strings value (`["a", "b"]`), or a lone string as a one-element list.
pub fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// `m[a][b]...` through nested maps.
pub fn path<'a>(m: &'a Module, keys: &[&str]) -> Option<&'a Value> {
    let mut v = m.get(keys[0])?;
    for k in &keys[1..] {
        match v {
            Value::Map(map) => v = map.get(*k)?,
            _ => return None,
        }
    }
    Some(v)
}

/// Every string in a module that names a source file: `srcs`, `crate_root`, `init_rc`,
/// `vintf_fragments`, `src`, `test_config`, `data`, and the same under `target`/`arch` maps.
pub fn file_references(m: &Module) -> Vec<String> {
    const FILE_PROPS: &[&str] = &[
        "srcs",
        "crate_root",
        "init_rc",
        "vintf_fragments",
        "src",
        "test_config",
        "test_config_template",
        "data",
        "license_text",
        "exclude_srcs",
    ];
    let mut out = Vec::new();
    fn walk(v: &Value, key: &str, out: &mut Vec<String>) {
        match v {
            Value::Map(map) => {
                for (k, v) in map.iter() {
                    walk(v, k, out);
                }
            }
            _ if FILE_PROPS.contains(&key) => {
                for s in strings(Some(v)) {
                    // ":module" references another module's output, not a file.
                    if !s.starts_with(':') {
                        out.push(s);
                    }
                }
            }
            _ => {}
        }
    }
    for (k, v) in m.entries.iter() {
        if k == "exclude_srcs" {
            continue;
        }
        walk(v, k, &mut out);
    }
    out.sort();
    out
}
