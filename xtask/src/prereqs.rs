//! Installs what the test bed needs on a fresh machine of the project's kind (Debian 12, root,
//! rustup): Debian packages, rustup components and targets, and bindgen.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::cmd;
use crate::kernel::{Arch, ARCHES};
use crate::progress;

/// Debian packages, each with the reason it is needed, so a failure can say what it is for.
/// The LLVM of each architecture's kernel comes from `Arch::llvm`.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("linux-source-6.12", "the test kernel's source"),
    ("flex", "the kernel's Kconfig"),
    ("bison", "the kernel's Kconfig"),
    ("bc", "the kernel build"),
    ("make", "the kernel build"),
    ("patch", "applying the test kernel's patches"),
    ("rsync", "the kernel's headers_install"),
    ("xz-utils", "unpacking the kernel source"),
    ("libelf-dev", "the kernel build (objtool)"),
    ("libssl-dev", "the kernel build"),
    ("cpio", "packing the VM's initramfs"),
    ("gzip", "packing the VM's initramfs"),
    ("busybox-static", "the x86_64 VM's shell and tools"),
    ("qemu-system-x86", "booting the x86_64 VM"),
    ("qemu-system-arm", "booting the arm64 VM"),
    (
        "device-tree-compiler",
        "the arm64 VM's device tree (reserved memory for CMA and carveout)",
    ),
    ("gcc", "static test binaries for the x86_64 VM"),
    ("g++", "libdmaheap's C++ client for the x86_64 VM"),
    ("libc6-dev", "static test binaries for the x86_64 VM"),
    (
        "gcc-aarch64-linux-gnu",
        "static test binaries for the arm64 VM",
    ),
    (
        "libc6-dev-arm64-cross",
        "static test binaries for the arm64 VM",
    ),
    (
        "g++-aarch64-linux-gnu",
        "libdmaheap's C++ client for the arm64 VM",
    ),
    ("m4", "expanding the sepolicy macros"),
    ("checkpolicy", "compiling the sepolicy"),
];

const RUSTUP_COMPONENTS: &[&str] = &["rust-src", "clippy", "rustfmt"];
const RUSTUP_TARGETS: &[(&str, &str)] = &[
    (
        "x86_64-unknown-linux-musl",
        "static binaries for the x86_64 VM",
    ),
    (
        "aarch64-unknown-linux-musl",
        "static binaries for the arm64 VM",
    ),
    (
        "aarch64-unknown-linux-gnu",
        "libdmaheap's staticlib in the arm64 VM's C and C++ clients",
    ),
    (
        "aarch64-linux-android",
        "checking the service builds for the device target",
    ),
];

/// The oldest bindgen that Linux 6.12's Rust support accepts.
const BINDGEN_MIN: (u32, u32, u32) = (0, 65, 1);

static ENSURED: OnceLock<Tools> = OnceLock::new();

/// Paths of tools the rest of xtask calls by path rather than through PATH.
#[derive(Debug, Clone)]
pub struct Tools {
    pub bindgen: PathBuf,
    /// busybox-static for the arm64 VM, unpacked from Debian's arm64 package.
    busybox_arm64: PathBuf,
}

impl Tools {
    /// The static busybox a guest of `arch` runs.
    pub fn busybox(&self, arch: Arch) -> PathBuf {
        match arch {
            Arch::X86_64 => PathBuf::from("/bin/busybox"),
            Arch::Arm64 => self.busybox_arm64.clone(),
        }
    }
}

#[cfg(test)]
impl Tools {
    pub fn for_tests() -> Tools {
        Tools {
            bindgen: PathBuf::from("/nonexistent/bindgen"),
            busybox_arm64: PathBuf::from("/nonexistent/busybox"),
        }
    }
}

/// Installs whatever is missing, once per run.
pub fn ensure() -> Result<&'static Tools> {
    if let Some(tools) = ENSURED.get() {
        return Ok(tools);
    }
    let step = progress::step("prerequisites");
    let mut installed = Vec::new();
    installed.extend(ensure_debian_packages()?);
    installed.extend(ensure_rustup()?);
    let (bindgen, bindgen_installed) = ensure_bindgen()?;
    installed.extend(bindgen_installed);
    let (busybox_arm64, busybox_installed) = ensure_foreign_busybox("arm64")?;
    installed.extend(busybox_installed);
    step.done(&if installed.is_empty() {
        "all present".to_owned()
    } else {
        format!("installed {}", installed.join(", "))
    });
    Ok(ENSURED.get_or_init(|| Tools {
        bindgen,
        busybox_arm64,
    }))
}

/// Debian's busybox-static of another architecture, unpacked (not installed) into the cache.
/// dpkg must know the architecture for apt to download its packages.
fn ensure_foreign_busybox(arch: &str) -> Result<(PathBuf, Option<String>)> {
    let package = format!("busybox-static:{arch}");
    let foreign = cmd::output(Command::new("dpkg").arg("--print-foreign-architectures"))?;
    if !foreign.lines().any(|line| line.trim() == arch) {
        if !is_root() {
            bail!("{package} is needed for the {arch} VM: as root, run dpkg --add-architecture {arch} && apt-get update");
        }
        progress::note(format!("dpkg --add-architecture {arch} (for {package})"));
        cmd::run(Command::new("dpkg").args(["--add-architecture", arch]))?;
        cmd::run(Command::new("apt-get").args(["update", "-qq"]))
            .context("apt-get update failed")?;
    }
    let policy = cmd::output(Command::new("apt-cache").args(["policy", &package]))?;
    let version = policy
        .lines()
        .find_map(|line| line.trim().strip_prefix("Candidate:"))
        .map(str::trim)
        .filter(|v| *v != "(none)")
        .with_context(|| format!("apt knows no {package}: run apt-get update"))?
        .to_owned();
    let root = crate::paths::cache().join(format!("debs/busybox-static_{version}_{arch}"));
    let busybox = root.join("bin/busybox");
    if busybox.exists() {
        return Ok((busybox, None));
    }
    progress::note(format!("apt-get download {package} {version}"));
    let download = crate::paths::cache().join("debs/download");
    if download.exists() {
        std::fs::remove_dir_all(&download)?;
    }
    std::fs::create_dir_all(&download)?;
    // apt downloads as its unprivileged `_apt` user when it can write the directory.
    std::fs::set_permissions(&download, std::fs::Permissions::from_mode(0o777))?;
    cmd::run(Command::new("apt-get").current_dir(&download).args([
        "download",
        "-qq",
        &format!("{package}={version}"),
    ]))
    .with_context(|| format!("could not download {package}"))?;
    let deb = std::fs::read_dir(&download)?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .with_context(|| format!("apt-get download left no .deb of {package}"))?;
    let unpacked = root
        .parent()
        .expect("the cache has a parent")
        .join(format!("busybox-static_{version}_{arch}.partial"));
    if unpacked.exists() {
        std::fs::remove_dir_all(&unpacked)?;
    }
    cmd::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&unpacked))?;
    std::fs::rename(&unpacked, &root)?;
    std::fs::remove_dir_all(&download)?;
    if !busybox.exists() {
        bail!("{package} {version} has no bin/busybox");
    }
    Ok((busybox, Some(package)))
}

fn debian_package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

/// Every Debian package the commands need, with what it is for.
fn debian_packages() -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = DEBIAN_PACKAGES
        .iter()
        .map(|(name, why)| (name.to_string(), why.to_string()))
        .collect();
    for arch in ARCHES {
        for (name, why) in arch.llvm().debian_packages() {
            if !all.iter().any(|(have, _)| *have == name) {
                all.push((name, format!("{why} ({})", arch.name())));
            }
        }
    }
    all
}

fn ensure_debian_packages() -> Result<Vec<String>> {
    let missing: Vec<(String, String)> = debian_packages()
        .into_iter()
        .filter(|(name, _)| !debian_package_installed(name))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = missing.iter().map(|(name, _)| name.as_str()).collect();
    for (name, why) in &missing {
        progress::note(format!("missing Debian package {name} ({why})"));
    }
    if !is_root() {
        bail!(
            "missing Debian packages: {}. Install them as root: apt-get install -y {}",
            names.join(", "),
            names.join(" ")
        );
    }
    progress::note("apt-get update");
    cmd::run(Command::new("apt-get").args(["update", "-qq"])).context("apt-get update failed")?;
    progress::note(format!("apt-get install {}", names.join(" ")));
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(&names),
    )
    .with_context(|| format!("could not install Debian packages {}", names.join(" ")))?;
    Ok(names.iter().map(|n| n.to_string()).collect())
}

fn is_root() -> bool {
    cmd::output(Command::new("id").arg("-u"))
        .map(|uid| uid.trim() == "0")
        .unwrap_or(false)
}

fn ensure_rustup() -> Result<Vec<String>> {
    let mut installed = Vec::new();
    let have_components =
        cmd::output(Command::new("rustup").args(["component", "list", "--installed"]))
            .context("rustup is needed to add Rust components (rust-src, clippy, rustfmt)")?;
    for component in RUSTUP_COMPONENTS {
        if !have_components
            .lines()
            .any(|line| line.starts_with(&format!("{component}-")) || line == *component)
        {
            progress::note(format!("rustup component add {component}"));
            cmd::run(Command::new("rustup").args(["component", "add", component]))?;
            installed.push(component.to_string());
        }
    }
    let have_targets = cmd::output(Command::new("rustup").args(["target", "list", "--installed"]))?;
    for (target, why) in RUSTUP_TARGETS {
        if !have_targets.lines().any(|line| line.trim() == *target) {
            progress::note(format!("rustup target add {target} ({why})"));
            cmd::run(Command::new("rustup").args(["target", "add", target]))?;
            installed.push(target.to_string());
        }
    }
    Ok(installed)
}

fn cargo_bin_dir() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cargo")
        })
        .join("bin")
}

fn bindgen_version(bindgen: &std::path::Path) -> Option<(u32, u32, u32)> {
    let text = cmd::output(Command::new(bindgen).arg("--version")).ok()?;
    parse_version(text.split_whitespace().nth(1)?)
}

fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

fn ensure_bindgen() -> Result<(PathBuf, Option<String>)> {
    let bindgen = cargo_bin_dir().join("bindgen");
    if bindgen_version(&bindgen).is_some_and(|v| v >= BINDGEN_MIN) {
        return Ok((bindgen, None));
    }
    progress::note("cargo install --locked bindgen-cli (about 2 minutes)");
    cmd::run(Command::new("cargo").args(["install", "--locked", "bindgen-cli"]))
        .context("could not install bindgen-cli, which the kernel's Rust support needs")?;
    match bindgen_version(&bindgen) {
        Some(v) if v >= BINDGEN_MIN => Ok((bindgen, Some("bindgen-cli".into()))),
        _ => bail!(
            "bindgen at {} is missing or older than {BINDGEN_MIN:?} after installing it",
            bindgen.display()
        ),
    }
}

/// The first line of `tool --version` (or of `tool -vV` for rustc), for cache keys.
pub fn tool_version(tool: &str, arg: &str) -> Result<String> {
    let text = cmd::output(Command::new(tool).arg(arg))
        .with_context(|| format!("cannot ask {tool} for its version"))?;
    Ok(text.lines().next().unwrap_or_default().trim().to_owned())
}

pub fn debian_package_version(name: &str) -> Result<String> {
    let version = cmd::output(Command::new("dpkg-query").args(["-W", "-f=${Version}", name]))?;
    Ok(version.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(parse_version("0.73.2"), Some((0, 73, 2)));
        assert_eq!(parse_version("0.65"), Some((0, 65, 0)));
        assert!(parse_version("0.9.1").unwrap() < BINDGEN_MIN);
        assert!(parse_version("0.100.0").unwrap() > BINDGEN_MIN);
        assert_eq!(parse_version("x.y"), None);
    }
}
