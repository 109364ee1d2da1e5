//! The Cargo side of the Soong modules: which crate a Rust module builds and what it depends on.

use std::collections::BTreeSet;
use std::path::Path;

/// A crate's manifest, as far as the checks need it.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub package: String,
    /// `package.version` (None when inherited from the workspace).
    pub version: Option<String>,
    /// Dependencies that exist on Android: `[dependencies]` plus
    /// `[target.'cfg(target_os = "android")'.dependencies]` (not dev-, build- or other targets').
    pub android_deps: BTreeSet<String>,
    /// `[dev-dependencies]` (linked by test targets only).
    pub dev_deps: BTreeSet<String>,
}

pub fn read_manifest(path: &Path) -> Result<Manifest, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let package = doc
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("{}: no package.name", path.display()))?
        .to_owned();
    let version = doc
        .get("package")
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned);
    let mut android_deps = BTreeSet::new();
    let mut dev_deps = BTreeSet::new();
    let add = |table: Option<&toml::Value>, into: &mut BTreeSet<String>| {
        if let Some(t) = table.and_then(|t| t.as_table()) {
            for (name, spec) in t {
                let optional = spec
                    .get("optional")
                    .and_then(|o| o.as_bool())
                    .unwrap_or(false);
                if !optional {
                    let real = spec.get("package").and_then(|p| p.as_str()).unwrap_or(name);
                    into.insert(real.to_owned());
                }
            }
        }
    };
    add(doc.get("dependencies"), &mut android_deps);
    add(doc.get("dev-dependencies"), &mut dev_deps);
    if let Some(targets) = doc.get("target").and_then(|t| t.as_table()) {
        for (cfg, t) in targets {
            let c: String = cfg.chars().filter(|c| !c.is_whitespace()).collect();
            let android = c == "cfg(target_os=\"android\")" || c == "cfg(unix)";
            if android {
                add(t.get("dependencies"), &mut android_deps);
            }
        }
    }
    Ok(Manifest {
        package,
        version,
        android_deps,
        dev_deps,
    })
}

/// `workspace.package.version` of the root manifest.
pub fn read_workspace_version(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: toml::Table = text
        .parse()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    doc.get("workspace")
        .and_then(|w| w.get("package"))
        .and_then(|p| p.get("version"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
        .ok_or_else(|| format!("{}: no workspace.package.version", path.display()))
}
