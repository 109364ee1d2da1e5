//! The Rust dependencies of the device build: what AOSP provides (`android/crates/aosp.toml`,
//! a snapshot of external/rust/android-crates-io), what this project ships
//! (`android/crates/shipped.toml`, one generated Blueprint file per crate), and the resolver that
//! checks every Rust module against both, the way Soong and Cargo would disagree on a device:
//!
//! - every `rustlibs`/`proc_macros` entry names a module that exists, for the variant the
//!   consumer is built in (a vendor module cannot link a host-only or system-only library);
//! - the module list equals the Cargo dependencies of the crate for that platform and features
//!   (nothing missing, nothing extra);
//! - the module's version satisfies the crate's requirement, and Cargo.lock is no newer than it
//!   within the same compatible range (so the Cargo build uses nothing the device's copy lacks);
//! - the module enables every feature the crate asks of it;
//! - nothing we ship duplicates a module AOSP has.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::bp;
use crate::metadata::{Edge, Linkage, Metadata, Package, Platform};

pub const AOSP_SNAPSHOT: &str = "android/crates/aosp.toml";
pub const SHIPPED: &str = "android/crates/shipped.toml";
pub const CRATES_DIR: &str = "android/crates";
/// The host tool that writes rsbinder bindings in place of build scripts (Android.bp).
pub const AIDL_TOOL: &str = "dmaheap-aidl-gen";

#[derive(Debug, Clone, Deserialize)]
pub struct Snapshot {
    pub mirrors: BTreeMap<String, String>,
    #[serde(rename = "crate")]
    pub crates: Vec<AospCrate>,
    #[serde(default)]
    pub absent: Vec<Absent>,
}

/// rsbinder's Soong module and the features that select the service-manager numberings of
/// the releases the device build claims: `android_14` (14 and 15 r1-r5), `android_15` (15 r6+),
/// `android_16` (16 and 17). The HAL itself registers through service/src/registration.rs; its
/// clients look it up through rsbinder's `hub`, which refuses a numbering it lacks.
pub const RSBINDER_MODULE: &str = "librsbinder";
pub const SERVICE_MANAGER_DIALECTS: &[&str] = &["android_14", "android_15", "android_16"];

#[derive(Debug, Clone, Deserialize)]
pub struct AospCrate {
    #[serde(rename = "crate")]
    pub name: String,
    pub module: String,
    pub kind: String,
    pub version: String,
    pub vendor: bool,
    pub host: bool,
    pub features: BTreeSet<String>,
    pub source: Source,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    pub mirror: String,
    pub path: String,
    pub commit: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Absent {
    #[serde(rename = "crate")]
    pub name: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Shipped {
    #[serde(rename = "crate")]
    pub crates: Vec<ShippedCrate>,
    #[serde(default, rename = "waiver")]
    pub waivers: Vec<Waiver>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ShippedCrate {
    #[serde(rename = "crate")]
    pub name: String,
    pub module: String,
    pub variant: Variant,
    #[serde(default)]
    pub build_outputs: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Variant {
    Device,
    Host,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Waiver {
    pub consumer: String,
    pub dependency: String,
    pub features: BTreeSet<String>,
    pub reason: String,
}

fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

impl Snapshot {
    pub fn load(path: &Path) -> Result<Snapshot, String> {
        let s: Snapshot = read_toml(path)?;
        for c in &s.crates {
            if !s.mirrors.contains_key(&c.source.mirror) {
                return Err(format!(
                    "{}: fact about `{}` names unknown mirror `{}`",
                    path.display(),
                    c.name,
                    c.source.mirror
                ));
            }
            if c.source.commit.len() != 40 {
                return Err(format!(
                    "{}: `{}` needs a full commit",
                    path.display(),
                    c.name
                ));
            }
            semver::Version::parse(&c.version)
                .map_err(|e| format!("{}: `{}` version: {e}", path.display(), c.name))?;
        }
        Ok(s)
    }

    pub fn by_crate(&self, name: &str) -> Option<&AospCrate> {
        self.crates.iter().find(|c| c.name == name)
    }
}

impl Shipped {
    pub fn load(path: &Path) -> Result<Shipped, String> {
        read_toml(path)
    }

    pub fn by_crate(&self, name: &str) -> Option<&ShippedCrate> {
        self.crates.iter().find(|c| c.name == name)
    }

    /// The Blueprint file generated for a shipped crate, relative to the repository.
    pub fn bp_path(c: &ShippedCrate) -> String {
        format!("{CRATES_DIR}/{}.bp", c.name)
    }
}

/// Which builds of a module exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Build {
    /// Device, system partition (the core variant).
    System,
    /// Device, vendor partition.
    Vendor,
    Host,
}

impl Build {
    pub fn platform(self) -> Platform {
        match self {
            Build::Host => Platform::LinuxHost,
            _ => Platform::Android,
        }
    }
}

/// A Soong module as far as the resolver needs it.
#[derive(Debug, Clone)]
pub struct SoongModule {
    pub file: String,
    pub typ: String,
    pub name: String,
    pub builds: BTreeSet<Build>,
    pub rustlibs: BTreeSet<String>,
    pub proc_macros: BTreeSet<String>,
    pub features: BTreeSet<String>,
    pub version: Option<String>,
    /// `crate_root`, or the `.rs` entry of `srcs`.
    pub crate_root: Option<String>,
}

impl SoongModule {
    pub fn from_bp(file: &str, m: &bp::Module) -> Option<SoongModule> {
        if !m.typ.starts_with("rust_") {
            return None;
        }
        let name = m.get_string("name")?.clone();
        let flag = |k: &str| m.get_bool(k) == Some(true);
        let mut builds = BTreeSet::new();
        match m.typ.as_str() {
            "rust_library_host" | "rust_binary_host" | "rust_proc_macro" => {
                builds.insert(Build::Host);
            }
            _ => {
                if flag("vendor") || flag("soc_specific") || flag("proprietary") {
                    builds.insert(Build::Vendor);
                } else {
                    builds.insert(Build::System);
                    if flag("vendor_available") {
                        builds.insert(Build::Vendor);
                    }
                }
                if flag("host_supported") {
                    builds.insert(Build::Host);
                }
            }
        }
        let set = |k: &str| -> BTreeSet<String> { bp::strings(m.get(k)).into_iter().collect() };
        let crate_root = m.get_string("crate_root").cloned().or_else(|| {
            bp::strings(m.get("srcs"))
                .into_iter()
                .find(|s| s.ends_with(".rs") && !s.starts_with(':'))
        });
        Some(SoongModule {
            file: file.to_owned(),
            typ: m.typ.clone(),
            name,
            builds,
            rustlibs: set("rustlibs"),
            proc_macros: set("proc_macros"),
            features: set("features"),
            version: m.get_string("cargo_pkg_version").cloned(),
            crate_root,
        })
    }

    fn is_library(&self) -> bool {
        self.typ.starts_with("rust_library")
    }

    fn linkage(&self) -> Linkage {
        if self.typ == "rust_test" {
            Linkage::Test
        } else {
            Linkage::Normal
        }
    }
}

/// A module that provides a crate: one of ours or one of AOSP's.
#[derive(Debug, Clone)]
struct Provider {
    module: String,
    crate_name: String,
    kind: String,
    builds: BTreeSet<Build>,
    version: semver::Version,
    features: BTreeSet<String>,
    from_aosp: bool,
}

impl Provider {
    fn is_proc_macro(&self) -> bool {
        self.kind == "rust_proc_macro"
    }
}

fn aosp_builds(c: &AospCrate) -> BTreeSet<Build> {
    let mut b = BTreeSet::new();
    match c.kind.as_str() {
        "rust_library_host" | "rust_proc_macro" => {
            b.insert(Build::Host);
        }
        _ => {
            b.insert(Build::System);
            if c.vendor {
                b.insert(Build::Vendor);
            }
            if c.host {
                b.insert(Build::Host);
            }
        }
    }
    b
}

/// Everything the resolver looks at.
pub struct World {
    pub root: PathBuf,
    pub meta: Metadata,
    pub snapshot: Snapshot,
    pub shipped: Shipped,
    /// Our modules: Android.bp's and the shipped crates' generated files.
    pub modules: Vec<SoongModule>,
}

impl World {
    /// Loads the repository's files; `shipped_bp` overrides the generated Blueprint text of
    /// shipped crates (by crate name), for tests of broken versions.
    pub fn load(root: &Path) -> Result<World, String> {
        let meta = Metadata::load(root)?;
        let snapshot = Snapshot::load(&root.join(AOSP_SNAPSHOT))?;
        let shipped = Shipped::load(&root.join(SHIPPED))?;
        let mut world = World {
            root: root.to_owned(),
            meta,
            snapshot,
            shipped,
            modules: Vec::new(),
        };
        world.add_bp_file("Android.bp")?;
        for c in world.shipped.crates.clone() {
            world.add_bp_file(&Shipped::bp_path(&c))?;
        }
        Ok(world)
    }

    /// Parses one Blueprint file of the repository and adds its Rust modules.
    pub fn add_bp_file(&mut self, rel: &str) -> Result<(), String> {
        let text =
            std::fs::read_to_string(self.root.join(rel)).map_err(|e| format!("{rel}: {e}"))?;
        self.add_bp_text(rel, &text)
    }

    pub fn add_bp_text(&mut self, rel: &str, text: &str) -> Result<(), String> {
        let parsed = bp::parse(text).map_err(|e| format!("{rel}: {e}"))?;
        self.modules.retain(|m| m.file != rel);
        self.modules.extend(
            parsed
                .modules
                .iter()
                .filter_map(|m| SoongModule::from_bp(rel, m)),
        );
        Ok(())
    }

    /// The Cargo package a module builds: a shipped crate by its module name, a workspace
    /// crate by the manifest above its crate root.
    pub fn package_of(&self, m: &SoongModule) -> Result<&Package, String> {
        if let Some(c) = self.shipped.crates.iter().find(|c| c.module == m.name) {
            return self.meta.package(&c.name);
        }
        let root = m
            .crate_root
            .as_deref()
            .ok_or_else(|| format!("{}: no crate root", m.name))?;
        let dir = root
            .split_once("/src/")
            .or_else(|| root.split_once("/tests/"))
            .map(|(d, _)| d)
            .ok_or_else(|| {
                format!(
                    "{}: crate root {root} is not under <crate>/src or <crate>/tests",
                    m.name
                )
            })?;
        let manifest = self.root.join(dir).join("Cargo.toml");
        self.meta
            .packages
            .iter()
            .find(|p| p.manifest_path == manifest)
            .ok_or_else(|| format!("{}: no workspace crate at {dir}", m.name))
    }

    /// The module that provides Cargo package `name`: ours (shipped or a workspace library
    /// module) first, then AOSP's.
    fn provider(&self, name: &str) -> Option<Provider> {
        let pkg = self.meta.package(name).ok()?;
        if let Some(c) = self.shipped.by_crate(name) {
            let synthesized;
            let m = match self.modules.iter().find(|m| m.name == c.module) {
                Some(m) => m,
                None => {
                    synthesized = shipped_module(c, pkg, BTreeSet::new());
                    &synthesized
                }
            };
            return Some(Provider {
                module: m.name.clone(),
                crate_name: pkg.crate_name(),
                kind: m.typ.clone(),
                builds: m.builds.clone(),
                version: pkg.version(),
                features: m.features.clone(),
                from_aosp: false,
            });
        }
        if self.meta.is_workspace_member(pkg) {
            let module = format!("lib{}", pkg.crate_name());
            let m = self.modules.iter().find(|m| m.name == module)?;
            return Some(Provider {
                module,
                crate_name: pkg.crate_name(),
                kind: m.typ.clone(),
                builds: m.builds.clone(),
                version: pkg.version(),
                features: m.features.clone(),
                from_aosp: false,
            });
        }
        let a = self.snapshot.by_crate(name)?;
        Some(Provider {
            module: a.module.clone(),
            crate_name: pkg.crate_name(),
            kind: a.kind.clone(),
            builds: aosp_builds(a),
            version: semver::Version::parse(&a.version).ok()?,
            features: a.features.clone(),
            from_aosp: true,
        })
    }

    /// The Cargo edges of module `m` for build `b`, with the module's own features.
    fn edges(&self, m: &SoongModule, pkg: &Package, b: Build) -> Vec<Edge> {
        let expanded = pkg.expand_features(&m.features);
        let mut edges = pkg.active_dependencies(b.platform(), m.linkage(), &expanded);
        // A binary or test of a package with a library links that library, as Cargo does.
        if !m.is_library() && pkg.lib_target().is_some() {
            edges.push(Edge {
                package: pkg.name.clone(),
                reqs: vec![format!("={}", pkg.version)],
                features: BTreeSet::new(),
            });
        }
        edges
    }

    /// Every problem the resolver finds; empty when the device build resolves.
    pub fn resolve(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = BTreeSet::new();
        for m in &self.modules {
            if !names.insert(m.name.clone()) {
                problems.push(format!("{}: module `{}` is defined twice", m.file, m.name));
            }
            if let Some(a) = self.snapshot.crates.iter().find(|a| a.module == m.name) {
                problems.push(format!(
                    "{}: module `{}` duplicates AOSP's (crate {} {}, {} {} at {}); reuse AOSP's \
                     module or ship the crate under another name",
                    m.file,
                    m.name,
                    a.name,
                    a.version,
                    a.source.mirror,
                    a.source.path,
                    a.source.commit
                ));
            }
        }
        for c in &self.shipped.crates {
            if let Some(a) = self.snapshot.by_crate(&c.name) {
                let needed = match c.variant {
                    Variant::Device => Build::Vendor,
                    Variant::Host => Build::Host,
                };
                if aosp_builds(a).contains(&needed) {
                    problems.push(format!(
                        "shipped crate `{}` is in AOSP for {needed:?} as `{}` {}: reuse it \
                         (a second copy of a crate is a duplicate)",
                        c.name, a.module, a.version
                    ));
                }
            }
            if !self.modules.iter().any(|m| m.name == c.module) {
                problems.push(format!(
                    "shipped crate `{}`: {} defines no module `{}`",
                    c.name,
                    Shipped::bp_path(c),
                    c.module
                ));
            }
        }
        if let Some(m) = self.modules.iter().find(|m| m.name == RSBINDER_MODULE) {
            for feature in SERVICE_MANAGER_DIALECTS {
                if !m.features.contains(*feature) {
                    problems.push(format!(
                        "{}: `{RSBINDER_MODULE}` lacks feature `{feature}`: clients built with it \
                         refuse a service manager of that release's numbering (the device build \
                         claims Android 14, 15 r1-r5, 15 r6+ and 16)",
                        m.file
                    ));
                }
            }
        }
        for m in &self.modules {
            let pkg = match self.package_of(m) {
                Ok(p) => p,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            for &b in &m.builds {
                self.check_module(m, pkg, b, &mut problems);
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }

    fn check_module(&self, m: &SoongModule, pkg: &Package, b: Build, problems: &mut Vec<String>) {
        let here = format!("{} `{}` ({b:?})", m.file, m.name);
        let listed: BTreeSet<&String> = m.rustlibs.iter().chain(&m.proc_macros).collect();
        let mut expected = BTreeSet::new();
        for edge in self.edges(m, pkg, b) {
            let Some(p) = self.provider(&edge.package) else {
                let why = match self.snapshot.by_crate(&edge.package) {
                    Some(_) => "its Cargo.lock version is not what AOSP has".to_owned(),
                    None if self.snapshot.absent.iter().any(|a| a.name == edge.package) => {
                        "AOSP does not have it and we do not ship it".to_owned()
                    }
                    None => "no module provides it: AOSP's snapshot has no fact about it and \
                             we do not ship it"
                        .to_owned(),
                };
                problems.push(format!(
                    "{here}: crate {} needs `{}`: {why}",
                    pkg.name, edge.package
                ));
                continue;
            };
            expected.insert(p.module.clone());
            // Variant.
            let usable = if p.is_proc_macro() {
                true
            } else {
                p.builds.contains(&b)
            };
            if !usable {
                let have: Vec<String> = p.builds.iter().map(|b| format!("{b:?}")).collect();
                problems.push(format!(
                    "{here}: `{}` ({} {}) has no {b:?} variant (only {}){}",
                    p.module,
                    edge.package,
                    p.version,
                    have.join(", "),
                    if p.from_aosp { " in AOSP" } else { "" }
                ));
            }
            let in_list = if p.is_proc_macro() {
                m.proc_macros.contains(&p.module)
            } else {
                m.rustlibs.contains(&p.module)
            };
            if !in_list {
                let prop = if p.is_proc_macro() {
                    "proc_macros"
                } else {
                    "rustlibs"
                };
                problems.push(format!(
                    "{here}: crate {} depends on {} but `{}` is not in {prop}",
                    pkg.name, edge.package, p.module
                ));
            }
            // Version.
            for req in &edge.reqs {
                match semver::VersionReq::parse(req) {
                    Ok(r) if r.matches(&p.version) => {}
                    Ok(_) => problems.push(format!(
                        "{here}: crate {} requires {} {req}; `{}` is {}",
                        pkg.name, edge.package, p.module, p.version
                    )),
                    Err(e) => problems.push(format!("{here}: {req}: {e}")),
                }
            }
            if p.from_aosp {
                if let Ok(lock) = self.meta.package(&edge.package).map(Package::version) {
                    let compatible = semver::VersionReq::parse(&format!("^{lock}"))
                        .map(|r| r.matches(&p.version))
                        .unwrap_or(false);
                    if !compatible {
                        problems.push(format!(
                            "{here}: Cargo.lock has {} {lock}, AOSP's `{}` is {}: not the same \
                             compatible range",
                            edge.package, p.module, p.version
                        ));
                    }
                }
            }
            // Features.
            let dep_pkg = self.meta.package(&edge.package).ok();
            let want = expand(dep_pkg, &edge.features);
            let have = expand(dep_pkg, &p.features);
            let waived: BTreeSet<String> = self
                .shipped
                .waivers
                .iter()
                .filter(|w| w.consumer == pkg.name && w.dependency == edge.package)
                .flat_map(|w| w.features.iter().cloned())
                .collect();
            let missing: Vec<&String> = want
                .difference(&have)
                .filter(|f| !waived.contains(*f))
                .collect();
            if !missing.is_empty() {
                problems.push(format!(
                    "{here}: crate {} needs features {missing:?} of {}; `{}` enables {:?}",
                    pkg.name, edge.package, p.module, p.features
                ));
            }
        }
        for extra in listed {
            if !expected.contains(extra) {
                problems.push(format!(
                    "{here}: `{extra}` is listed but crate {} does not depend on it for {b:?}",
                    pkg.name
                ));
            }
        }
        if let Some(v) = &m.version {
            if v != &pkg.version {
                problems.push(format!(
                    "{here}: cargo_pkg_version {v} but Cargo.lock has {} {}",
                    pkg.name, pkg.version
                ));
            }
        }
    }
}

/// A feature set expanded through the package's `[features]` table, without `default` itself
/// (it only names other features) and without dependency activations.
fn expand(pkg: Option<&Package>, features: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = match pkg {
        Some(p) => p.expand_features(features).features,
        None => features.clone(),
    };
    out.remove("default");
    out
}

/// Writes the Blueprint file of every shipped crate: returns (path, text) pairs.
pub fn generate(world: &World) -> Result<Vec<(String, String)>, String> {
    let features = shipped_features(world)?;
    let mut out = Vec::new();
    for c in &world.shipped.crates {
        let pkg = world.meta.package(&c.name)?;
        let text = blueprint(world, c, pkg, &features[&c.name])?;
        out.push((Shipped::bp_path(c), text));
    }
    Ok(out)
}

/// The features of each shipped crate: the union of what its consumers ask for, computed to a
/// fixed point (a shipped crate's features can activate its own optional dependencies).
fn shipped_features(world: &World) -> Result<BTreeMap<String, BTreeSet<String>>, String> {
    let mut features: BTreeMap<String, BTreeSet<String>> = world
        .shipped
        .crates
        .iter()
        .map(|c| (c.name.clone(), BTreeSet::new()))
        .collect();
    let shipped_files: BTreeSet<String> =
        world.shipped.crates.iter().map(Shipped::bp_path).collect();
    for _round in 0..32 {
        let mut next = features.clone();
        let mut consumers: Vec<(SoongModule, &Package)> = Vec::new();
        for m in world
            .modules
            .iter()
            .filter(|m| !shipped_files.contains(&m.file))
        {
            consumers.push((m.clone(), world.package_of(m)?));
        }
        for c in &world.shipped.crates {
            let pkg = world.meta.package(&c.name)?;
            consumers.push((shipped_module(c, pkg, features[&c.name].clone()), pkg));
        }
        for (m, pkg) in &consumers {
            for &b in &m.builds {
                for edge in world.edges(m, pkg, b) {
                    if let Some(set) = next.get_mut(&edge.package) {
                        let dep = world.meta.package(&edge.package)?;
                        let mut f = dep.expand_features(&edge.features).features;
                        // `default` stays listed when asked for, as cargo_embargo lists it.
                        if !edge.features.contains("default") {
                            f.remove("default");
                        }
                        set.extend(f);
                    }
                }
            }
        }
        if next == features {
            return Ok(features);
        }
        features = next;
    }
    Err("the features of the shipped crates do not settle".into())
}

fn spdx_kinds(license: &str) -> Vec<String> {
    let mut kinds: Vec<String> = license
        .split(|c: char| c == '/' || c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| !w.is_empty() && !matches!(*w, "OR" | "AND" | "WITH"))
        .map(|w| format!("SPDX-license-identifier-{w}"))
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

fn list(out: &mut String, key: &str, items: &[String]) {
    match items {
        [] => {}
        [one] => {
            let _ = writeln!(out, "    {key}: [\"{one}\"],");
        }
        many => {
            let _ = writeln!(out, "    {key}: [");
            for i in many {
                let _ = writeln!(out, "        \"{i}\",");
            }
            let _ = writeln!(out, "    ],");
        }
    }
}

/// The `OUT_DIR` files a crate's sources `include!`.
pub fn out_dir_includes(pkg: &Package) -> Result<BTreeSet<String>, String> {
    let re = regex::Regex::new(r#"env!\("OUT_DIR"\)\s*,\s*"/([^"]+)""#).expect("valid regex");
    let mut found = BTreeSet::new();
    let mut stack = vec![pkg.dir().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))? {
            let p = e.map_err(|e| e.to_string())?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let text = std::fs::read_to_string(&p).map_err(|e| e.to_string())?;
                // Doc comments show `include!` examples; only code counts.
                for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                    for c in re.captures_iter(line) {
                        found.insert(c[1].to_owned());
                    }
                }
            }
        }
    }
    Ok(found)
}

fn blueprint(
    world: &World,
    c: &ShippedCrate,
    pkg: &Package,
    features: &BTreeSet<String>,
) -> Result<String, String> {
    let dir = pkg.dir();
    let rel = |p: &Path| -> Result<String, String> {
        p.strip_prefix(dir)
            .map(|r| r.to_string_lossy().into_owned())
            .map_err(|_| format!("{}: outside the crate", p.display()))
    };
    let lib = pkg
        .lib_target()
        .ok_or_else(|| format!("{} has no library target", pkg.name))?;
    let crate_root = rel(&lib.src_path)?;
    let license = pkg
        .license
        .as_deref()
        .ok_or_else(|| format!("{} declares no license", pkg.name))?;
    let mut texts: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.to_ascii_uppercase().starts_with("LICENSE")
                || n.to_ascii_uppercase().starts_with("COPYING")
        })
        .collect();
    texts.sort();
    // Build scripts do not run in Soong: a crate with one is shipped only when its outputs are
    // produced another way.
    let has_build_script = pkg
        .targets
        .iter()
        .any(|t| t.kind.iter().any(|k| k == "custom-build"));
    let includes = out_dir_includes(pkg)?;
    let declared: BTreeSet<String> = c.build_outputs.keys().cloned().collect();
    if has_build_script && declared.is_empty() {
        return Err(format!(
            "{} has a build script and shipped.toml lists no build_outputs for it",
            pkg.name
        ));
    }
    if includes != declared {
        return Err(format!(
            "{}: its sources include {:?} from OUT_DIR, shipped.toml's build_outputs list {:?}",
            pkg.name, includes, declared
        ));
    }
    let build = match c.variant {
        Variant::Device => Build::Vendor,
        Variant::Host => Build::Host,
    };
    let probe = shipped_module(c, pkg, features.clone());
    let mut rustlibs = BTreeSet::new();
    let mut proc_macros = BTreeSet::new();
    for edge in world.edges(&probe, pkg, build) {
        let p = world.provider(&edge.package).ok_or_else(|| {
            format!(
                "{} needs {}, which no module provides",
                pkg.name, edge.package
            )
        })?;
        if p.is_proc_macro() {
            proc_macros.insert(p.module);
        } else {
            rustlibs.insert(p.module);
        }
        let _ = p.crate_name;
    }

    let license_module = format!("dmaheap_crate_{}_license", pkg.name.replace('-', "_"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// Generated by `cargo run -p android-checks --bin android-crates -- generate` from\n\
         // android/crates/shipped.toml and Cargo.lock. Do not edit: change those and regenerate.\n\
         // Crate: {} {} from crates.io. `android-crates export <dir>` writes it, with this file as\n\
         // its Android.bp, to <dir>/{}/.\n",
        pkg.name, pkg.version, pkg.name
    );
    let _ = writeln!(
        out,
        "package {{\n    default_applicable_licenses: [\"{license_module}\"],\n}}\n"
    );
    let _ = writeln!(out, "license {{\n    name: \"{license_module}\",");
    let _ = writeln!(out, "    visibility: [\":__subpackages__\"],");
    list(&mut out, "license_kinds", &spdx_kinds(license));
    list(&mut out, "license_text", &texts);
    let _ = writeln!(out, "}}\n");
    let genrule = format!("{}_build_out", pkg.name.replace('-', "_"));
    if !c.build_outputs.is_empty() {
        let mut srcs = BTreeSet::new();
        let mut cmds = Vec::new();
        for (file, inputs) in &c.build_outputs {
            for i in inputs {
                if !dir.join(i).is_file() {
                    return Err(format!(
                        "{}: build output {file} reads {i}, which does not exist",
                        pkg.name
                    ));
                }
                srcs.insert(i.clone());
            }
            let locs: Vec<String> = inputs.iter().map(|i| format!("$(location {i})")).collect();
            cmds.push(format!(
                "$(location {AIDL_TOOL}) --crate-support --out $(genDir)/{file} {}",
                locs.join(" ")
            ));
        }
        let _ = writeln!(
            out,
            "// What the crate's build.rs writes to OUT_DIR, written by our host tool."
        );
        let _ = writeln!(out, "genrule {{\n    name: \"{genrule}\",");
        let _ = writeln!(out, "    tools: [\"{AIDL_TOOL}\"],");
        list(&mut out, "srcs", &srcs.into_iter().collect::<Vec<_>>());
        list(
            &mut out,
            "out",
            &c.build_outputs.keys().cloned().collect::<Vec<_>>(),
        );
        let _ = writeln!(out, "    cmd: \"{}\",", cmds.join(" && "));
        let _ = writeln!(out, "}}\n");
    }
    let typ = match (c.variant, pkg.is_proc_macro()) {
        (_, true) => "rust_proc_macro",
        (Variant::Device, false) => "rust_library",
        (Variant::Host, false) => "rust_library_host",
    };
    let _ = writeln!(out, "{typ} {{\n    name: \"{}\",", c.module);
    let _ = writeln!(out, "    crate_name: \"{}\",", pkg.crate_name());
    let _ = writeln!(out, "    cargo_env_compat: true,");
    let _ = writeln!(out, "    cargo_pkg_version: \"{}\",", pkg.version);
    let _ = writeln!(out, "    crate_root: \"{crate_root}\",");
    if !c.build_outputs.is_empty() {
        list(&mut out, "srcs", &[format!(":{genrule}")]);
    }
    let _ = writeln!(out, "    edition: \"{}\",", pkg.edition);
    list(
        &mut out,
        "features",
        &features.iter().cloned().collect::<Vec<_>>(),
    );
    list(
        &mut out,
        "rustlibs",
        &rustlibs.into_iter().collect::<Vec<_>>(),
    );
    list(
        &mut out,
        "proc_macros",
        &proc_macros.into_iter().collect::<Vec<_>>(),
    );
    if c.variant == Variant::Device {
        let _ = writeln!(out, "    vendor_available: true,");
    }
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// The module a shipped crate becomes, before its Blueprint file exists.
fn shipped_module(c: &ShippedCrate, pkg: &Package, features: BTreeSet<String>) -> SoongModule {
    let (typ, builds): (&str, &[Build]) = match (c.variant, pkg.is_proc_macro()) {
        (_, true) => ("rust_proc_macro", &[Build::Host]),
        (Variant::Device, false) => ("rust_library", &[Build::System, Build::Vendor]),
        (Variant::Host, false) => ("rust_library_host", &[Build::Host]),
    };
    SoongModule {
        file: Shipped::bp_path(c),
        typ: typ.to_owned(),
        name: c.module.clone(),
        builds: builds.iter().copied().collect(),
        rustlibs: BTreeSet::new(),
        proc_macros: BTreeSet::new(),
        features,
        version: Some(pkg.version.clone()),
        crate_root: None,
    }
}
