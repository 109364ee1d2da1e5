//! `cargo xtask clean-room`: the README's test command on a machine that has nothing but Debian 12,
//! rustup's toolchain and the C linker rustup needs. A minimal Debian root is made with
//! debootstrap, the current rustup toolchain is copied in (without the components and targets the
//! commands install themselves), the committed state of this clone is cloned in, and
//! `cargo xtask test` runs inside it with an empty cache. What the command forgot to install shows
//! up here, not on a newcomer's machine.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::{cmd, paths, progress};

/// What a fresh Debian 12 machine "with rustup" has besides the base system: rustup cannot
/// link without a C toolchain, and cargo cannot reach crates.io without CA certificates.
const BASE_PACKAGES: &[&str] = &["ca-certificates", "gcc", "libc6-dev"];

/// The rustup pieces `cargo xtask` installs by itself; removed from the copied toolchain so the
/// clean room proves that it does.
const TOOLCHAIN_COMPONENTS_TO_REMOVE: &[&str] = &["rust-src", "clippy", "rustfmt"];
const TOOLCHAIN_TARGETS_TO_REMOVE: &[&str] = &[
    "x86_64-unknown-linux-musl",
    "aarch64-unknown-linux-musl",
    "aarch64-linux-android",
];

/// Where the clone goes inside the clean room.
const CLONE_IN_ROOT: &str = "root/dmaheap-hal";

pub struct Options {
    /// The command run inside (default: the README's test command).
    pub command: String,
}

pub fn run(options: &Options) -> Result<bool> {
    ensure_debootstrap()?;
    let root = paths::cache().join("clean-room/root");
    remove_root(&root)?;

    let step = progress::step("clean room: debootstrap Debian 12 (minbase)");
    let mirror = host_debian_mirror()?;
    fs::create_dir_all(&root)?;
    cmd::run_logged(
        Command::new("debootstrap")
            .arg("--variant=minbase")
            .arg(format!("--include={}", BASE_PACKAGES.join(",")))
            .arg("bookworm")
            .arg(&root)
            .arg(&mirror),
        &root.with_extension("debootstrap.log"),
        std::time::Duration::from_secs(30),
    )?;
    // The fresh machine's apt sources are the host's (Debian 12 with its security and update
    // suites, where linux-source-6.12 lives), and it resolves names as the host does.
    for file in ["etc/apt/sources.list.d/debian.sources", "etc/resolv.conf"] {
        let from = Path::new("/").join(file);
        if from.exists() {
            fs::copy(&from, root.join(file)).with_context(|| format!("copying /{file}"))?;
        }
    }
    let _ = fs::remove_file(root.join("etc/apt/sources.list"));
    trust_host_certificate_authorities(&root)?;
    step.done(&format!("from {mirror}"));

    let step = progress::step("clean room: copy the rustup toolchain");
    copy_toolchain(&root)?;
    step.done("copied");

    let step = progress::step("clean room: clone this repository's HEAD");
    let clone = root.join(CLONE_IN_ROOT);
    cmd::run(
        Command::new("git")
            .args(["clone", "--quiet", "--no-hardlinks"])
            .arg(paths::repo())
            .arg(&clone),
    )?;
    let head = cmd::output(Command::new("git").current_dir(&clone).args([
        "rev-parse",
        "--short",
        "HEAD",
    ]))?;
    step.done(&format!("at {}", head.trim()));

    let mounts = Mounts::new(&root)?;
    let strip = format!(
        "rustup component remove {} 2>/dev/null; rustup target remove {} 2>/dev/null; true",
        TOOLCHAIN_COMPONENTS_TO_REMOVE.join(" "),
        TOOLCHAIN_TARGETS_TO_REMOVE.join(" ")
    );
    cmd::run(&mut in_root(&root, &strip))?;

    let step = progress::step(format!("clean room: {}", options.command));
    let log = root.with_extension("run.log");
    let started = Instant::now();
    let status = in_root(
        &root,
        &format!("cd /{CLONE_IN_ROOT} && {} 2>&1", options.command),
    )
    .stdout(fs::File::create(&log)?)
    .status()?;
    let took = started.elapsed();
    drop(mounts);
    let text = fs::read_to_string(&log).unwrap_or_default();
    step.done(&format!(
        "{} ({}); output in {}",
        if status.success() { "passed" } else { "FAILED" },
        text.lines()
            .rev()
            .find(|l| l.contains(" passed, "))
            .unwrap_or("no result line")
            .trim(),
        log.display()
    ));
    print_inner_timings(&text, took);
    Ok(status.success())
}

/// Machines whose network passes through an inspecting proxy trust its CA through
/// `/usr/local/share/ca-certificates`; a fresh machine on that network has the same trust, so the
/// clean room gets it too (it is the network's, not something the commands should install).
fn trust_host_certificate_authorities(root: &Path) -> Result<()> {
    let local = Path::new("/usr/local/share/ca-certificates");
    let Ok(entries) = fs::read_dir(local) else {
        return Ok(());
    };
    let target = root.join("usr/local/share/ca-certificates");
    fs::create_dir_all(&target)?;
    let mut copied = 0;
    for entry in entries.flatten() {
        if entry.path().extension().is_some_and(|e| e == "crt") {
            fs::copy(entry.path(), target.join(entry.file_name()))
                .with_context(|| format!("copying {}", entry.path().display()))?;
            copied += 1;
        }
    }
    if copied > 0 {
        cmd::run(&mut in_root(root, "update-ca-certificates >/dev/null"))?;
    }
    Ok(())
}

fn ensure_debootstrap() -> Result<()> {
    if Path::new("/usr/sbin/debootstrap").exists() {
        return Ok(());
    }
    progress::note("apt-get install debootstrap (Debian package, for the clean room)");
    cmd::run(
        Command::new("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "debootstrap",
            ]),
    )
}

/// The Debian mirror the host's apt uses.
fn host_debian_mirror() -> Result<String> {
    let sources = fs::read_to_string("/etc/apt/sources.list.d/debian.sources")
        .or_else(|_| fs::read_to_string("/etc/apt/sources.list"))
        .unwrap_or_default();
    Ok(sources
        .split_whitespace()
        .find(|word| word.starts_with("http") && word.trim_end_matches('/').ends_with("/debian"))
        .unwrap_or("http://deb.debian.org/debian")
        .to_owned())
}

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
}

/// The default toolchain and the rustup proxies, but nothing `cargo install`ed (bindgen must be
/// installed by the command itself).
fn copy_toolchain(root: &Path) -> Result<()> {
    let rustup_home = std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".rustup"));
    let cargo_bin = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home().join(".cargo"))
        .join("bin");
    let settings = fs::read_to_string(rustup_home.join("settings.toml"))
        .context("no rustup settings: is the toolchain installed with rustup?")?;
    let toolchain = settings
        .lines()
        .find_map(|l| l.strip_prefix("default_toolchain = "))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .context("rustup has no default toolchain")?;
    let inner_rustup = root.join("root/.rustup");
    fs::create_dir_all(inner_rustup.join("toolchains"))?;
    fs::copy(
        rustup_home.join("settings.toml"),
        inner_rustup.join("settings.toml"),
    )?;
    cmd::run(
        Command::new("cp")
            .arg("-a")
            .arg(rustup_home.join("toolchains").join(&toolchain))
            .arg(inner_rustup.join("toolchains")),
    )?;
    let inner_bin = root.join("root/.cargo/bin");
    fs::create_dir_all(&inner_bin)?;
    for entry in fs::read_dir(&cargo_bin)?.flatten() {
        let path = entry.path();
        let is_rustup_proxy = fs::read_link(&path).is_ok_and(|t| t == Path::new("rustup"));
        if entry.file_name() == "rustup" || is_rustup_proxy {
            cmd::run(Command::new("cp").arg("-a").arg(&path).arg(&inner_bin))?;
        }
    }
    Ok(())
}

/// A shell command inside the clean room, with the environment of a fresh root login.
fn in_root(root: &Path, script: &str) -> Command {
    let mut command = Command::new("chroot");
    command
        .arg(root)
        .args([
            "/usr/bin/env",
            "-i",
            "HOME=/root",
            "USER=root",
            "LANG=C.UTF-8",
        ])
        .arg("PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .args(["/bin/sh", "-c", script]);
    command
}

/// The kernel file systems a build and a VM need inside the root. /dev is a tmpfs of its own
/// with the few nodes needed, never a bind of the host's /dev: removing the root afterwards
/// must not be able to reach the host's device nodes.
struct Mounts {
    mounted: Vec<PathBuf>,
}

impl Mounts {
    fn new(root: &Path) -> Result<Mounts> {
        let mut mounts = Mounts {
            mounted: Vec::new(),
        };
        mounts.mount(root, "proc", "proc", "proc", "")?;
        mounts.mount(root, "sysfs", "sys", "sysfs", "ro")?;
        mounts.mount(root, "tmpfs", "dev", "tmpfs", "mode=755")?;
        for (name, major, minor) in [
            ("null", 1, 3),
            ("zero", 1, 5),
            ("full", 1, 7),
            ("random", 1, 8),
            ("urandom", 1, 9),
            ("tty", 5, 0),
        ] {
            cmd::run(
                Command::new("mknod")
                    .args(["-m", "666"])
                    .arg(root.join("dev").join(name))
                    .args(["c", &major.to_string(), &minor.to_string()]),
            )?;
        }
        mounts.mount(
            root,
            "devpts",
            "dev/pts",
            "devpts",
            "newinstance,ptmxmode=0666",
        )?;
        std::os::unix::fs::symlink("pts/ptmx", root.join("dev/ptmx"))?;
        mounts.mount(root, "tmpfs", "dev/shm", "tmpfs", "")?;
        mounts.mount(root, "tmpfs", "tmp", "tmpfs", "")?;
        Ok(mounts)
    }

    fn mount(
        &mut self,
        root: &Path,
        source: &str,
        at: &str,
        fstype: &str,
        opts: &str,
    ) -> Result<()> {
        let target = root.join(at);
        fs::create_dir_all(&target)?;
        let mut mount = Command::new("mount");
        mount.args(["-t", fstype]);
        if !opts.is_empty() {
            mount.args(["-o", opts]);
        }
        cmd::run(mount.arg(source).arg(&target))?;
        self.mounted.push(target);
        Ok(())
    }
}

impl Drop for Mounts {
    fn drop(&mut self) {
        for target in self.mounted.iter().rev() {
            let _ = Command::new("umount").arg(target).status();
        }
    }
}

/// Removes an earlier clean room, refusing while anything is still mounted inside it.
fn remove_root(root: &Path) -> Result<()> {
    if !root.exists() {
        return Ok(());
    }
    let canonical = root.canonicalize()?;
    let mounted_inside = |canonical: &Path| -> Result<Vec<String>> {
        Ok(fs::read_to_string("/proc/self/mounts")?
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| Path::new(m).starts_with(canonical))
            .map(str::to_owned)
            .collect())
    };
    for target in mounted_inside(&canonical)?.iter().rev() {
        let _ = Command::new("umount").arg(target).status();
    }
    let still = mounted_inside(&canonical)?;
    if !still.is_empty() {
        bail!(
            "cannot remove the old clean room: still mounted inside it: {}",
            still.join(", ")
        );
    }
    progress::note(format!(
        "removing the previous clean room {}",
        root.display()
    ));
    cmd::run(
        Command::new("rm")
            .args(["-rf", "--one-file-system"])
            .arg(&canonical),
    )
}

/// The inner run's own time-by-step table, with the clean room's total beside it.
fn print_inner_timings(output: &str, total: std::time::Duration) {
    let table: Vec<&str> = output
        .lines()
        .skip_while(|l| !l.starts_with("Time by step:"))
        .take_while(|l| !l.trim().is_empty() || l.starts_with("Time by step:"))
        .collect();
    if table.is_empty() {
        eprintln!("\nthe run inside the clean room printed no time-by-step table");
    } else {
        eprintln!("\nInside the clean room:");
        for line in table {
            eprintln!("{line}");
        }
    }
    eprintln!("  total (clean room command)  {}", progress::human(total));
}
