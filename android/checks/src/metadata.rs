//! The Cargo side of the device build, from `cargo metadata`: every package of the lock file, the
//! dependency edges each one declares (with the features it asks of them), and which of those
//! edges exist for a given build (Android device or Linux host, normal or test).
//!
//! Soong builds each crate with one fixed feature set and links the crates its module lists; Cargo
//! decides both from the manifests. This module gives the Cargo answer per edge, so that the
//! resolver can compare it with the Soong modules edge by edge.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Metadata {
    pub packages: Vec<Package>,
    pub workspace_members: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub version: String,
    pub edition: String,
    pub license: Option<String>,
    pub manifest_path: PathBuf,
    pub features: BTreeMap<String, Vec<String>>,
    pub dependencies: Vec<Dependency>,
    pub targets: Vec<Target>,
    pub source: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dependency {
    pub name: String,
    pub req: String,
    pub kind: Option<String>,
    pub rename: Option<String>,
    pub optional: bool,
    pub uses_default_features: bool,
    pub features: Vec<String>,
    pub target: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Target {
    pub kind: Vec<String>,
    pub name: String,
    pub src_path: PathBuf,
}

/// The platform a Soong variant is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Platform {
    /// An Android device (system or vendor variant).
    Android,
    /// The Linux build host (host tools, proc macros).
    LinuxHost,
}

/// Which dependency tables of a manifest a module links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Linkage {
    /// `[dependencies]`: libraries and binaries.
    Normal,
    /// `[dependencies]` + `[dev-dependencies]`: test binaries.
    Test,
}

impl Metadata {
    /// Runs `cargo metadata` for the workspace at `root` (offline and locked: the answer is
    /// what Cargo.lock says, nothing is resolved anew).
    pub fn load(root: &Path) -> Result<Metadata, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["metadata", "--format-version", "1", "--locked"])
            .current_dir(root)
            .output()
            .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "cargo metadata failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata output: {e}"))
    }

    /// The package named `name`; an error when the lock file has none or several.
    pub fn package(&self, name: &str) -> Result<&Package, String> {
        let found: Vec<&Package> = self.packages.iter().filter(|p| p.name == name).collect();
        match found.as_slice() {
            [one] => Ok(one),
            [] => Err(format!("Cargo.lock has no package `{name}`")),
            many => Err(format!(
                "Cargo.lock has {} versions of `{name}`; the device build can link only one",
                many.len()
            )),
        }
    }

    pub fn is_workspace_member(&self, p: &Package) -> bool {
        self.workspace_members.contains(&p.id)
    }
}

impl Package {
    /// The directory holding the package's sources.
    pub fn dir(&self) -> &Path {
        self.manifest_path
            .parent()
            .expect("a manifest lives in a directory")
    }

    /// The library target (`lib` or `proc-macro`), if the package has one.
    pub fn lib_target(&self) -> Option<&Target> {
        self.targets
            .iter()
            .find(|t| t.kind.iter().any(|k| k == "lib" || k == "proc-macro"))
    }

    pub fn is_proc_macro(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.kind.iter().any(|k| k == "proc-macro"))
    }

    /// The name the crate is known by in code (`-` becomes `_`).
    pub fn crate_name(&self) -> String {
        self.lib_target()
            .map(|t| t.name.replace('-', "_"))
            .unwrap_or_else(|| self.name.replace('-', "_"))
    }

    pub fn version(&self) -> semver::Version {
        semver::Version::parse(&self.version).expect("cargo reports valid versions")
    }

    /// Expands `enabled` (feature names of this package, `default` included when wanted) through
    /// the `[features]` table: every feature of this package that ends up on, and, per
    /// dependency name, the features switched on in it and whether an optional one is activated.
    pub fn expand_features(&self, enabled: &BTreeSet<String>) -> Expanded {
        let mut out = Expanded::default();
        let mut todo: Vec<String> = enabled.iter().cloned().collect();
        while let Some(f) = todo.pop() {
            if let Some(dep) = f.strip_prefix("dep:") {
                out.activated.insert(dep.to_owned());
                continue;
            }
            if let Some((dep, feat)) = f.split_once('/') {
                let weak = dep.ends_with('?');
                let dep = dep.trim_end_matches('?');
                if !weak {
                    out.activated.insert(dep.to_owned());
                }
                out.dep_features
                    .entry(dep.to_owned())
                    .or_default()
                    .insert(feat.to_owned());
                continue;
            }
            if !out.features.insert(f.clone()) {
                continue;
            }
            match self.features.get(&f) {
                Some(implied) => todo.extend(implied.iter().cloned()),
                // An optional dependency is also an implicit feature of its own name.
                None => {
                    if self.dependencies.iter().any(|d| d.optional && d.key() == f) {
                        out.activated.insert(f.clone());
                    }
                }
            }
        }
        out
    }

    /// The dependency edges that exist when this package is built for `platform` with the
    /// features `enabled` (as [`Package::expand_features`] gives them), for `linkage`.
    /// Build dependencies are never part of a Soong module (build scripts do not run there).
    pub fn active_dependencies(
        &self,
        platform: Platform,
        linkage: Linkage,
        enabled: &Expanded,
    ) -> Vec<Edge> {
        let mut edges: BTreeMap<String, Edge> = BTreeMap::new();
        for d in &self.dependencies {
            match d.kind.as_deref() {
                None | Some("normal") => {}
                Some("dev") if linkage == Linkage::Test => {}
                _ => continue,
            }
            if let Some(cfg) = &d.target {
                if !cfg_matches(cfg, platform) {
                    continue;
                }
            }
            if d.optional && !enabled.activated.contains(d.key()) {
                continue;
            }
            let mut features: BTreeSet<String> = d.features.iter().cloned().collect();
            if d.uses_default_features {
                features.insert("default".into());
            }
            if let Some(extra) = enabled.dep_features.get(d.key()) {
                features.extend(extra.iter().cloned());
            }
            let edge = edges.entry(d.name.clone()).or_insert_with(|| Edge {
                package: d.name.clone(),
                reqs: Vec::new(),
                features: BTreeSet::new(),
            });
            edge.reqs.push(d.req.clone());
            edge.features.extend(features);
        }
        edges.into_values().collect()
    }
}

impl Dependency {
    /// The name the manifest uses for the dependency (its rename, if any).
    pub fn key(&self) -> &str {
        self.rename.as_deref().unwrap_or(&self.name)
    }
}

/// Features of a package after expansion.
#[derive(Debug, Clone, Default)]
pub struct Expanded {
    pub features: BTreeSet<String>,
    pub activated: BTreeSet<String>,
    pub dep_features: BTreeMap<String, BTreeSet<String>>,
}

/// One dependency as a consumer asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The package name of the dependency.
    pub package: String,
    /// Version requirements (one per table the dependency appears in).
    pub reqs: Vec<String>,
    /// Features the consumer asks for (`default` when it keeps default features).
    pub features: BTreeSet<String>,
}

/// Evaluates a Cargo `cfg(...)` target expression (or a target triple) for `platform`.
pub fn cfg_matches(expr: &str, platform: Platform) -> bool {
    let expr = expr.trim();
    let Some(inner) = expr.strip_prefix("cfg(").and_then(|e| e.strip_suffix(')')) else {
        // A plain target triple.
        return match platform {
            Platform::Android => expr.contains("android"),
            Platform::LinuxHost => expr.contains("linux") && !expr.contains("android"),
        };
    };
    eval(inner.trim(), platform)
}

fn eval(e: &str, platform: Platform) -> bool {
    if let Some(args) = call(e, "all") {
        return args.iter().all(|a| eval(a, platform));
    }
    if let Some(args) = call(e, "any") {
        return args.iter().any(|a| eval(a, platform));
    }
    if let Some(args) = call(e, "not") {
        return args.len() == 1 && !eval(&args[0], platform);
    }
    let (key, value) = match e.split_once('=') {
        Some((k, v)) => (k.trim(), Some(v.trim().trim_matches('"'))),
        None => (e.trim(), None),
    };
    let os = match platform {
        Platform::Android => "android",
        Platform::LinuxHost => "linux",
    };
    match (key, value) {
        ("unix", None) => true,
        ("windows", None) => false,
        ("target_os", Some(v)) => v == os,
        ("target_family", Some(v)) => v == "unix",
        ("target_env", Some(v)) => match platform {
            Platform::Android => v.is_empty(),
            Platform::LinuxHost => v == "gnu" || v == "musl",
        },
        ("target_arch", Some(v)) => matches!(v, "aarch64" | "x86_64"),
        ("target_pointer_width", Some(v)) => v == "64",
        // Custom cfgs (loom, docsrs, fuzzing ...) are never set by Soong unless a module says so.
        _ => false,
    }
}

/// `name(a, b, ...)` split at top-level commas.
fn call(e: &str, name: &str) -> Option<Vec<String>> {
    let rest = e.strip_prefix(name)?.trim_start();
    let body = rest.strip_prefix('(')?.strip_suffix(')')?;
    let mut args = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    let mut in_str = false;
    for c in body.chars() {
        match c {
            '"' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => depth -= 1,
            ',' if !in_str && depth == 0 => {
                args.push(std::mem::take(&mut cur).trim().to_owned());
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        args.push(cur.trim().to_owned());
    }
    Some(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cfg_expressions() {
        let a = Platform::Android;
        let h = Platform::LinuxHost;
        assert!(cfg_matches("cfg(target_os = \"android\")", a));
        assert!(!cfg_matches("cfg(target_os = \"android\")", h));
        assert!(cfg_matches("cfg(not(target_os = \"android\"))", h));
        assert!(cfg_matches(
            "cfg(any(target_os = \"linux\", target_os = \"android\"))",
            a
        ));
        assert!(!cfg_matches(
            "cfg(all(unix, not(target_os = \"linux\")))",
            h
        ));
        assert!(cfg_matches("cfg(all(unix, not(target_os = \"linux\")))", a));
        assert!(!cfg_matches("cfg(loom)", a));
        assert!(!cfg_matches("cfg(windows)", h));
        assert!(cfg_matches("aarch64-linux-android", a));
    }
}
