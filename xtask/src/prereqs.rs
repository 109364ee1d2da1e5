//! Installs what the test bed needs on a fresh machine of the project's kind (Debian 12, root,
//! rustup): Debian packages, rustup components and targets, and bindgen.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

use crate::cmd;
use crate::progress;

/// Debian packages, each with the reason it is needed, so a failure can say what it is for.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("linux-source-6.12", "the test kernel's source"),
    ("clang", "building the kernel with LLVM=1"),
    ("lld", "building the kernel with LLVM=1"),
    ("llvm", "building the kernel with LLVM=1"),
    ("libclang-dev", "bindgen, for the kernel's Rust bindings"),
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
    ("busybox-static", "the VM's shell and tools"),
    ("qemu-system-x86", "booting the VM"),
    ("gcc", "static test binaries for the VM"),
    ("libc6-dev", "static test binaries for the VM"),
    ("m4", "expanding the sepolicy macros"),
    ("checkpolicy", "compiling the sepolicy"),
];

const RUSTUP_COMPONENTS: &[&str] = &["rust-src", "clippy", "rustfmt"];
const RUSTUP_TARGETS: &[(&str, &str)] = &[
    ("x86_64-unknown-linux-musl", "static binaries for the VM"),
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
    step.done(&if installed.is_empty() {
        "all present".to_owned()
    } else {
        format!("installed {}", installed.join(", "))
    });
    Ok(ENSURED.get_or_init(|| Tools { bindgen }))
}

fn debian_package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn ensure_debian_packages() -> Result<Vec<String>> {
    let missing: Vec<&(&str, &str)> = DEBIAN_PACKAGES
        .iter()
        .filter(|(name, _)| !debian_package_installed(name))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let names: Vec<&str> = missing.iter().map(|(name, _)| *name).collect();
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
