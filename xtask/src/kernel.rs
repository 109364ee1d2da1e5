//! The test-bed kernel: Debian's linux-source-6.12 plus the repository's config fragment and
//! patches, built with LLVM=1 and cached outside the clone under a key of everything that went in.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

use crate::prereqs::{self, Tools};
use crate::{cmd, paths, progress};

const SOURCE_PACKAGE: &str = "linux-source-6.12";
const SOURCE_TARBALL: &str = "/usr/src/linux-source-6.12.tar.xz";
/// Marks a finished build; a directory without it is a build that was cut off.
const COMPLETE_MARK: &str = ".dmaheap-build-complete";

/// A built kernel tree, usable as KDIR for out-of-tree modules.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub tree: PathBuf,
}

impl Kernel {
    pub fn bzimage(&self) -> PathBuf {
        self.tree.join("arch/x86/boot/bzImage")
    }

    /// The sanitized UAPI headers (`make headers_install`), for user-space test programs.
    pub fn uapi_headers(&self) -> PathBuf {
        self.tree.join("usr/include")
    }
}

fn kernel_dir() -> PathBuf {
    paths::repo().join("xtask/kernel")
}

/// Which kernel a plan boots. Both come from the same source and patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// testbed.config + debugging.config (lockdep, kmemleak, DMA-API debugging, fault
    /// injection): what the tests and the demo run on.
    Checked,
    /// testbed.config alone: benchmarks would otherwise measure the debugging options.
    Bench,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Checked => "checked",
            Variant::Bench => "bench",
        }
    }

    /// The config fragments merged over tinyconfig + kvm_guest.config, in order.
    fn fragments(self) -> Vec<PathBuf> {
        let mut fragments = vec![kernel_dir().join("testbed.config")];
        if self == Variant::Checked {
            fragments.push(kernel_dir().join("debugging.config"));
        }
        fragments
    }
}

const VARIANTS: [Variant; 2] = [Variant::Checked, Variant::Bench];

fn patches() -> Result<Vec<PathBuf>> {
    let mut list: Vec<PathBuf> = fs::read_dir(kernel_dir().join("patches"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    list.retain(|p| p.extension().is_some_and(|e| e == "patch"));
    list.sort();
    Ok(list)
}

/// Everything that decides what the build produces, in a stable text form.
fn build_inputs(tools: &Tools, variant: Variant) -> Result<String> {
    let mut text = String::new();
    writeln!(text, "variant {}", variant.name())?;
    writeln!(
        text,
        "source {SOURCE_PACKAGE} {}",
        prereqs::debian_package_version(SOURCE_PACKAGE)?
    )?;
    for fragment in variant.fragments() {
        writeln!(
            text,
            "fragment {} {}",
            fragment.file_name().unwrap().to_string_lossy(),
            hex(&Sha256::digest(fs::read(&fragment)?))
        )?;
    }
    for patch in patches()? {
        writeln!(
            text,
            "patch {} {}",
            patch.file_name().unwrap().to_string_lossy(),
            hex(&Sha256::digest(fs::read(&patch)?))
        )?;
    }
    writeln!(
        text,
        "clang {}",
        prereqs::tool_version("clang", "--version")?
    )?;
    writeln!(
        text,
        "rustc {}",
        prereqs::tool_version("rustc", "--version")?
    )?;
    writeln!(
        text,
        "bindgen {}",
        prereqs::tool_version(&tools.bindgen.to_string_lossy(), "--version")?
    )?;
    Ok(text)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Returns the cached kernel for the current inputs, building it first when there is none.
/// `DMAHEAP_KERNEL_TREE` names an already built tree to use instead (a kernel developer's own);
/// it must have been configured with the fragment and patches of this repository.
pub fn ensure(variant: Variant) -> Result<Kernel> {
    let tools = prereqs::ensure()?;
    if let Some(tree) = std::env::var_os("DMAHEAP_KERNEL_TREE") {
        let kernel = Kernel {
            tree: PathBuf::from(tree),
        };
        if !kernel.bzimage().exists() || !kernel.uapi_headers().exists() {
            bail!(
                "DMAHEAP_KERNEL_TREE={} has no built bzImage or installed UAPI headers",
                kernel.tree.display()
            );
        }
        progress::step("kernel").done(&format!(
            "using DMAHEAP_KERNEL_TREE={}",
            kernel.tree.display()
        ));
        return Ok(kernel);
    }
    let inputs = build_inputs(tools, variant)?;
    let key = &hex(&Sha256::digest(inputs.as_bytes()))[..16];
    let root = paths::cache().join("kernel");
    let tree = root.join(format!("{}{key}", tree_prefix(variant)));
    let kernel = Kernel { tree: tree.clone() };
    if tree.join(COMPLETE_MARK).exists() {
        let step = progress::step(format!("kernel ({}) {key}", variant.name()));
        step.done(&format!("cached at {}", tree.display()));
        // The mark's time says when the build was last used: the cache keeps the recent ones.
        if let Ok(mark) = fs::File::options().append(true).open(tree.join(COMPLETE_MARK)) {
            let _ = mark.set_modified(std::time::SystemTime::now());
        }
        return Ok(kernel);
    }
    progress::note(format!(
        "kernel inputs (key {key}):\n      {}",
        inputs.trim_end().replace('\n', "\n      ")
    ));
    if tree.exists() {
        progress::note("removing an unfinished build");
        fs::remove_dir_all(&tree)?;
    }
    fs::create_dir_all(&tree)?;
    build(&tree, tools, variant)
        .with_context(|| format!("building the test kernel in {}", tree.display()))?;
    fs::write(tree.join(COMPLETE_MARK), &inputs)?;
    remove_older_builds(&root, &tree, variant);
    Ok(kernel)
}

fn make(tree: &Path, tools: &Tools) -> Command {
    let mut make = Command::new("make");
    make.current_dir(tree)
        .arg("LLVM=1")
        .arg(format!("BINDGEN={}", tools.bindgen.display()));
    make
}

fn build(tree: &Path, tools: &Tools, variant: Variant) -> Result<()> {
    let step = progress::step("kernel: unpack linux-source-6.12");
    cmd::run(
        Command::new("tar")
            .args(["-xf", SOURCE_TARBALL, "--strip-components=1", "-C"])
            .arg(tree),
    )?;
    step.done("unpacked");

    let step = progress::step("kernel: apply patches");
    let patches = patches()?;
    for patch in &patches {
        cmd::run(
            Command::new("patch")
                .current_dir(tree)
                .args(["-p1", "--batch", "--forward", "--quiet", "-i"])
                .arg(patch),
        )
        .with_context(|| format!("patch {} does not apply", patch.display()))?;
    }
    step.done(&format!("{} applied", patches.len()));

    let step = progress::step("kernel: configure");
    let log = tree.join("dmaheap-config.log");
    cmd::run_logged(
        make(tree, tools).arg("tinyconfig"),
        &log,
        Duration::from_secs(60),
    )?;
    cmd::run_logged(
        Command::new("scripts/kconfig/merge_config.sh")
            .current_dir(tree)
            .env("LLVM", "1")
            .args(["-m", ".config", "kernel/configs/kvm_guest.config"])
            .args(variant.fragments()),
        &log,
        Duration::from_secs(60),
    )?;
    cmd::run_logged(
        make(tree, tools).arg("olddefconfig"),
        &log,
        Duration::from_secs(60),
    )?;
    let config = fs::read_to_string(tree.join(".config"))?;
    for fragment in variant.fragments() {
        let missing = options_that_did_not_stick(&fs::read_to_string(&fragment)?, &config);
        if !missing.is_empty() {
            bail!(
                "these options from {} did not survive olddefconfig (a dependency is missing):\n  {}",
                fragment.display(),
                missing.join("\n  ")
            );
        }
    }
    step.done("fragments applied, every option checked");

    let jobs = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let step = progress::step(format!(
        "kernel: build bzImage and modules (-j{jobs}, 6 to 9 minutes on 2 cores)"
    ));
    cmd::run_logged(
        make(tree, tools)
            .arg(format!("-j{jobs}"))
            .args(["bzImage", "modules"]),
        &tree.join("dmaheap-build.log"),
        Duration::from_secs(60),
    )?;
    step.done("built");

    let step = progress::step("kernel: install UAPI headers");
    cmd::run_logged(
        make(tree, tools).arg("headers_install"),
        &tree.join("dmaheap-headers.log"),
        Duration::from_secs(60),
    )?;
    step.done("installed");
    Ok(())
}

/// Lines of the fragment that `.config` does not honour: a `CONFIG_X=value` line must appear
/// exactly; a `# CONFIG_X is not set` line means no `CONFIG_X=` may appear.
fn options_that_did_not_stick(fragment: &str, config: &str) -> Vec<String> {
    let honoured = |wanted: &str| {
        if let Some(name) = wanted
            .strip_prefix("# ")
            .and_then(|rest| rest.strip_suffix(" is not set"))
        {
            let set = format!("{name}=");
            !config.lines().any(|have| have.trim().starts_with(&set))
        } else {
            config.lines().any(|have| have.trim() == wanted)
        }
    };
    fragment
        .lines()
        .map(str::trim)
        .filter(|line| {
            line.starts_with("CONFIG_")
                || (line.starts_with("# CONFIG_") && line.ends_with(" is not set"))
        })
        .filter(|wanted| !honoured(wanted))
        .map(str::to_owned)
        .collect()
}

fn tree_prefix(variant: Variant) -> String {
    format!("linux-6.12-{}-", variant.name())
}

/// How many finished builds of one variant the cache keeps. More than one, because clones on
/// different branches (or worktrees) may want different inputs at once; each is a few GiB.
const KEEP_BUILDS_PER_VARIANT: usize = 3;

/// Removes unfinished builds, builds of no variant we still build, and all but the
/// `KEEP_BUILDS_PER_VARIANT` most recently finished builds of this variant.
fn remove_older_builds(root: &Path, keep: &Path, variant: Variant) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let mut ours = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path == keep || !name.starts_with("linux-") {
            continue;
        }
        let finished = fs::metadata(path.join(COMPLETE_MARK)).and_then(|m| m.modified());
        let anyones = VARIANTS.iter().any(|v| name.starts_with(&tree_prefix(*v)));
        match finished {
            Ok(when) if name.starts_with(&tree_prefix(variant)) => ours.push((when, path)),
            Ok(_) if anyones => {}
            _ => {
                progress::note(format!("removing old kernel build {}", path.display()));
                let _ = fs::remove_dir_all(&path);
            }
        }
    }
    ours.sort();
    let excess = (ours.len() + 1).saturating_sub(KEEP_BUILDS_PER_VARIANT);
    for (_, path) in ours.into_iter().take(excess) {
        progress::note(format!("removing old kernel build {}", path.display()));
        let _ = fs::remove_dir_all(&path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_missing_from_the_config_are_reported() {
        let fragment = "# comment\nCONFIG_A=y\nCONFIG_B=\"\"\nCONFIG_C=64\n# CONFIG_D is not set\n";
        let config = "CONFIG_A=y\nCONFIG_B=\"\"\n# CONFIG_C is not set\nCONFIG_D=y\n";
        assert_eq!(
            options_that_did_not_stick(fragment, config),
            ["CONFIG_C=64", "# CONFIG_D is not set"]
        );
        let good = "CONFIG_A=y\nCONFIG_B=\"\"\nCONFIG_C=64\n# CONFIG_D is not set\n";
        assert!(options_that_did_not_stick(fragment, good).is_empty());
    }

    #[test]
    fn the_repository_fragment_and_patches_are_found() {
        let [base, debugging] = Variant::Checked.fragments().try_into().unwrap();
        assert!(fs::read_to_string(base)
            .unwrap()
            .contains("CONFIG_DMABUF_HEAPS=y"));
        assert!(fs::read_to_string(debugging)
            .unwrap()
            .contains("CONFIG_PROVE_LOCKING=y"));
        assert_eq!(Variant::Bench.fragments().len(), 1);
        assert!(!patches().unwrap().is_empty());
    }
}
