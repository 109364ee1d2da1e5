//! The test-bed kernels: Debian's linux-source-6.12 plus the repository's config fragments and
//! patches, built with one pinned LLVM per architecture and cached outside the clone under a key
//! of everything that went in.

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

/// The architectures the test bed builds and boots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Arm64,
}

pub const ARCHES: [Arch; 2] = [Arch::X86_64, Arch::Arm64];

impl Arch {
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Arm64 => "arm64",
        }
    }

    pub fn parse(name: &str) -> Option<Arch> {
        ARCHES.into_iter().find(|a| a.name() == name)
    }

    /// The kernel's `ARCH=`.
    fn kernel_arch(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86",
            Arch::Arm64 => "arm64",
        }
    }

    /// The boot image `make` produces, relative to the tree.
    fn image_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "bzImage",
            Arch::Arm64 => "Image",
        }
    }

    /// The LLVM this architecture's kernel (and every module built against it) is built with.
    /// One LLVM per kernel: the kernel's C flags come from one clang, and bindgen's libclang
    /// must accept exactly those flags (a newer libclang rejects flags older clangs need).
    pub fn llvm(self) -> Llvm {
        Llvm { major: 14 }
    }

    /// Rust's target for static guest programs.
    pub fn guest_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-musl",
            Arch::Arm64 => "aarch64-unknown-linux-musl",
        }
    }

    /// Rust's target for libdmaheap's staticlib in the C and C++ guest programs: glibc, because
    /// Debian ships libstdc++ and a cross C library for arm64 only for glibc, not for musl.
    /// Linked `-static`, the programs need no loader in the guest, like the musl ones.
    pub fn native_client_target(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64-unknown-linux-gnu",
            Arch::Arm64 => "aarch64-unknown-linux-gnu",
        }
    }

    fn fragment(self) -> PathBuf {
        kernel_dir().join(format!("{}.config", self.name()))
    }
}

/// One installed LLVM, by major version: Debian installs each under /usr/lib/llvm-N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Llvm {
    pub major: u32,
}

impl Llvm {
    /// `LLVM=` for the kernel's make: a prefix ending in '/', so clang, ld.lld and the llvm-*
    /// tools all come from this LLVM whatever else is on PATH.
    pub fn prefix(self) -> String {
        format!("/usr/lib/llvm-{}/bin/", self.major)
    }

    /// Where bindgen (through clang-sys) must load libclang from.
    pub fn libclang_dir(self) -> String {
        format!("/usr/lib/llvm-{}/lib", self.major)
    }

    /// The Debian packages of this LLVM, each with what it is for.
    pub fn debian_packages(self) -> Vec<(String, &'static str)> {
        let v = self.major;
        vec![
            (format!("clang-{v}"), "building the kernel and its modules"),
            (format!("lld-{v}"), "linking the kernel and its modules"),
            (
                format!("llvm-{v}"),
                "the kernel's LLVM=1 tools (llvm-ar, llvm-nm, ...)",
            ),
            (
                format!("libclang-{v}-dev"),
                "bindgen's libclang for the kernel's Rust bindings",
            ),
        ]
    }
}

/// A built kernel tree, usable as KDIR for out-of-tree modules.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub tree: PathBuf,
    pub arch: Arch,
}

impl Kernel {
    /// The image qemu boots.
    pub fn image(&self) -> PathBuf {
        self.tree
            .join("arch")
            .join(self.arch.kernel_arch())
            .join("boot")
            .join(self.arch.image_target())
    }

    /// The sanitized UAPI headers (`make headers_install`), for user-space test programs.
    pub fn uapi_headers(&self) -> PathBuf {
        self.tree.join("usr/include")
    }

    /// `make` in this tree (or, with `M=`, for a module against it), with the architecture, the
    /// pinned LLVM and bindgen, and the libclang bindgen loads all fixed.
    pub fn make(&self, tools: &Tools) -> Command {
        make_for(&self.tree, self.arch, tools)
    }
}

fn make_for(tree: &Path, arch: Arch, tools: &Tools) -> Command {
    let llvm = arch.llvm();
    let mut make = Command::new("make");
    make.current_dir(tree)
        .env("LIBCLANG_PATH", llvm.libclang_dir())
        .arg(format!("ARCH={}", arch.kernel_arch()))
        .arg(format!("LLVM={}", llvm.prefix()))
        .arg(format!("BINDGEN={}", tools.bindgen.display()));
    make
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
    pub fn name(self) -> &'static str {
        match self {
            Variant::Checked => "checked",
            Variant::Bench => "bench",
        }
    }

    /// The config fragments merged over tinyconfig (+ kvm_guest.config on x86), in order: the
    /// architecture's boot options, then what every test-bed kernel has, then debugging.
    fn fragments(self, arch: Arch) -> Vec<PathBuf> {
        let mut fragments = vec![arch.fragment(), kernel_dir().join("testbed.config")];
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
fn build_inputs(tools: &Tools, arch: Arch, variant: Variant) -> Result<String> {
    let mut text = String::new();
    writeln!(text, "arch {}", arch.name())?;
    writeln!(text, "variant {}", variant.name())?;
    writeln!(
        text,
        "source {SOURCE_PACKAGE} {}",
        prereqs::debian_package_version(SOURCE_PACKAGE)?
    )?;
    for fragment in variant.fragments(arch) {
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
    let llvm = arch.llvm();
    for tool in ["clang", "ld.lld"] {
        writeln!(
            text,
            "{tool} {}",
            prereqs::tool_version(&format!("{}{tool}", llvm.prefix()), "--version")?
        )?;
    }
    writeln!(text, "libclang {}", bindgen_libclang_version(tools, llvm)?)?;
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

/// The libclang bindgen really loads with this LLVM's `LIBCLANG_PATH`, asked the way the
/// kernel's `scripts/rust_is_available.sh` asks: libclang prints its version in a pragma.
fn bindgen_libclang_version(tools: &Tools, llvm: Llvm) -> Result<String> {
    let header = paths::scratch().join("libclang-version.h");
    fs::write(
        &header,
        "#pragma message(\"clang version \" __clang_version__)\n",
    )?;
    let out = Command::new(&tools.bindgen)
        .env("LIBCLANG_PATH", llvm.libclang_dir())
        .arg(&header)
        .output()
        .context("cannot run bindgen to ask for its libclang")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let version = stderr
        .split("clang version ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .map(|v| v.trim_matches('"'))
        .filter(|v| !v.is_empty());
    match version {
        Some(v) if v.starts_with(&format!("{}.", llvm.major)) => Ok(v.to_owned()),
        Some(v) => bail!(
            "bindgen loaded libclang {v} from {}, not LLVM {}'s",
            llvm.libclang_dir(),
            llvm.major
        ),
        None => bail!("bindgen did not report its libclang version: {stderr}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `DMAHEAP_KERNEL_TREE_X86_64` / `DMAHEAP_KERNEL_TREE_ARM64`: a kernel tree built by hand.
fn own_tree_variable(arch: Arch) -> String {
    format!("DMAHEAP_KERNEL_TREE_{}", arch.name().to_uppercase())
}

/// Returns the cached kernel for the current inputs, building it first when there is none.
/// `DMAHEAP_KERNEL_TREE_<ARCH>` names an already built tree to use instead (a kernel
/// developer's own); it must have been configured with the fragments and patches of this
/// repository and built with the same LLVM.
pub fn ensure(arch: Arch, variant: Variant) -> Result<Kernel> {
    let tools = prereqs::ensure()?;
    let variable = own_tree_variable(arch);
    if let Some(tree) = std::env::var_os(&variable) {
        let kernel = Kernel {
            tree: PathBuf::from(tree),
            arch,
        };
        if !kernel.image().exists() || !kernel.uapi_headers().exists() {
            bail!(
                "{variable}={} has no built {} or installed UAPI headers",
                kernel.tree.display(),
                arch.image_target()
            );
        }
        progress::step(format!("kernel ({})", arch.name()))
            .done(&format!("using {variable}={}", kernel.tree.display()));
        return Ok(kernel);
    }
    let inputs = build_inputs(tools, arch, variant)?;
    let key = &hex(&Sha256::digest(inputs.as_bytes()))[..16];
    let root = paths::cache().join("kernel");
    let prefix = tree_prefix(arch, variant);
    let tree = root.join(format!("{prefix}{key}"));
    let kernel = Kernel {
        tree: tree.clone(),
        arch,
    };
    let label = format!("kernel {} {} {key}", arch.name(), variant.name());
    if tree.join(COMPLETE_MARK).exists() {
        progress::step(&label).done(&format!("cached at {}", tree.display()));
        // The mark's time says when the build was last used: the cache keeps the recent ones.
        if let Ok(mark) = fs::File::options()
            .append(true)
            .open(tree.join(COMPLETE_MARK))
        {
            let _ = mark.set_modified(std::time::SystemTime::now());
        }
        return Ok(kernel);
    }
    progress::note(format!(
        "{label}: not cached, building; inputs:\n      {}",
        inputs.trim_end().replace('\n', "\n      ")
    ));
    if tree.exists() {
        progress::note("removing an unfinished build");
        fs::remove_dir_all(&tree)?;
    }
    fs::create_dir_all(&tree)?;
    build(&kernel, tools, variant)
        .with_context(|| format!("building the test kernel in {}", tree.display()))?;
    fs::write(tree.join(COMPLETE_MARK), &inputs)?;
    remove_older_builds(&root, &tree, &prefix);
    Ok(kernel)
}

fn build(kernel: &Kernel, tools: &Tools, variant: Variant) -> Result<()> {
    let tree = &kernel.tree;
    let arch = kernel.arch.name();
    let step = progress::step(format!("kernel {arch}: unpack linux-source-6.12"));
    cmd::run(
        Command::new("tar")
            .args(["-xf", SOURCE_TARBALL, "--strip-components=1", "-C"])
            .arg(tree),
    )?;
    step.done("unpacked");

    let step = progress::step(format!("kernel {arch}: apply patches"));
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

    let step = progress::step(format!("kernel {arch}: configure"));
    let log = tree.join("dmaheap-config.log");
    cmd::run_logged(
        kernel.make(tools).arg("tinyconfig"),
        &log,
        Duration::from_secs(60),
    )?;
    let mut merge = Command::new("scripts/kconfig/merge_config.sh");
    let llvm = kernel.arch.llvm();
    merge
        .current_dir(tree)
        .env("ARCH", kernel.arch.kernel_arch())
        .env("LLVM", llvm.prefix())
        .args(["-m", ".config"]);
    if kernel.arch == Arch::X86_64 {
        merge.arg("kernel/configs/kvm_guest.config");
    }
    cmd::run_logged(
        merge.args(variant.fragments(kernel.arch)),
        &log,
        Duration::from_secs(60),
    )?;
    cmd::run_logged(
        kernel.make(tools).arg("olddefconfig"),
        &log,
        Duration::from_secs(60),
    )?;
    let config = fs::read_to_string(tree.join(".config"))?;
    for fragment in variant.fragments(kernel.arch) {
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
        "kernel {arch}: build {} and modules (-j{jobs}, 8 to 15 minutes on 2 cores)",
        kernel.arch.image_target()
    ));
    cmd::run_logged(
        kernel
            .make(tools)
            .arg(format!("-j{jobs}"))
            .args([kernel.arch.image_target(), "modules"]),
        &tree.join("dmaheap-build.log"),
        Duration::from_secs(60),
    )?;
    step.done("built");

    let step = progress::step(format!("kernel {arch}: install UAPI headers"));
    cmd::run_logged(
        kernel.make(tools).arg("headers_install"),
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

fn tree_prefix(arch: Arch, variant: Variant) -> String {
    format!("linux-6.12-{}-{}-", arch.name(), variant.name())
}

/// How many finished builds of one arch and variant the cache keeps. More than one, because
/// clones on different branches (or worktrees) may want different inputs at once; each is a few
/// GiB.
const KEEP_BUILDS_PER_VARIANT: usize = 3;

/// Removes unfinished builds, builds of no kernel we still build, and all but the
/// `KEEP_BUILDS_PER_VARIANT` most recently used builds with `prefix`.
fn remove_older_builds(root: &Path, keep: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    let current: Vec<String> = ARCHES
        .iter()
        .flat_map(|a| VARIANTS.iter().map(|v| tree_prefix(*a, *v)))
        .collect();
    let mut ours = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path == keep || !name.starts_with("linux-") {
            continue;
        }
        let used = fs::metadata(path.join(COMPLETE_MARK)).and_then(|m| m.modified());
        let anyones = current.iter().any(|p| name.starts_with(p));
        match used {
            Ok(when) if name.starts_with(prefix) => ours.push((when, path)),
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
    fn make_pins_the_architecture_llvm_and_libclang() {
        let tools = Tools::for_tests();
        for arch in ARCHES {
            let make = make_for(Path::new("/k"), arch, &tools);
            let args: Vec<String> = make
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let llvm = arch.llvm();
            assert!(args.contains(&format!("ARCH={}", arch.kernel_arch())));
            assert!(args.contains(&format!("LLVM=/usr/lib/llvm-{}/bin/", llvm.major)));
            let libclang = make
                .get_envs()
                .find(|(k, _)| *k == "LIBCLANG_PATH")
                .and_then(|(_, v)| v)
                .map(|v| v.to_string_lossy().into_owned());
            assert_eq!(libclang, Some(format!("/usr/lib/llvm-{}/lib", llvm.major)));
        }
    }

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
        let [arch, base, debugging] = Variant::Checked.fragments(Arch::X86_64).try_into().unwrap();
        assert!(fs::read_to_string(arch)
            .unwrap()
            .contains("CONFIG_SERIAL_8250=y"));
        assert!(fs::read_to_string(base)
            .unwrap()
            .contains("CONFIG_DMABUF_HEAPS=y"));
        assert!(fs::read_to_string(debugging)
            .unwrap()
            .contains("CONFIG_PROVE_LOCKING=y"));
        assert_eq!(Variant::Bench.fragments(Arch::Arm64).len(), 2);
        assert!(!patches().unwrap().is_empty());
    }
}
