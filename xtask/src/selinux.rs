//! The SELinux-enforcing part of the test VM: the binary policy the guest loads (the vendor
//! policy, the platform stand-in and the test bed's own part in `xtask/selinux/`, compiled by
//! android-checks), the labels of the guest's files, and the AVC denials a plan expects.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use android_checks::{modload, sepolicy};
use anyhow::{anyhow, bail, Context, Result};

use crate::paths;

/// Where the guest finds what this module puts into the initramfs.
pub const GUEST_POLICY: &str = "/etc/selinux/policy.bin";
pub const GUEST_LABELS: &str = "/etc/selinux/labels";

/// One kind of AVC denial: permission, source and target types, class.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Denial {
    pub permission: String,
    pub source: String,
    pub target: String,
    pub class: String,
}

impl Denial {
    pub fn new(permission: &str, source: &str, target: &str, class: &str) -> Self {
        Self {
            permission: permission.to_owned(),
            source: source.to_owned(),
            target: target.to_owned(),
            class: class.to_owned(),
        }
    }

    /// The denials of a kernel log line (`avc:  denied  { read write } for ... scontext=...
    /// tcontext=... tclass=...`), one per permission; `None` when the line has none.
    pub fn parse(line: &str) -> Option<Vec<Denial>> {
        let rest = line.split_once("avc:")?.1.trim_start();
        let rest = rest.strip_prefix("denied")?;
        let (perms, rest) = rest.split_once('{')?.1.split_once('}')?;
        let field = |name: &str| {
            rest.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .map(str::to_owned)
        };
        let type_of = |context: String| context.split(':').nth(2).map(str::to_owned);
        let source = type_of(field("scontext=")?)?;
        let target = type_of(field("tcontext=")?)?;
        let class = field("tclass=")?;
        Some(
            perms
                .split_whitespace()
                .map(|p| Denial::new(p, &source, &target, &class))
                .collect(),
        )
    }
}

impl std::fmt::Display for Denial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{{ {} }} {} -> {} ({})",
            self.permission, self.source, self.target, self.class
        )
    }
}

/// What a plan's SELinux phase needs in the initramfs.
#[derive(Debug, Clone)]
pub struct Setup {
    /// (program installed under /bin, another guest path it is copied to), so that the copy
    /// gets the label file_contexts gives that path (a service's or a client's executable).
    pub installs: Vec<(&'static str, &'static str)>,
    /// (repository file, guest path) copied in before labelling.
    pub files: Vec<(&'static str, &'static str)>,
    /// Paths that only exist once the guest runs (device nodes), labelled like the rest.
    pub runtime_paths: Vec<String>,
    /// The AVC denials the plan provokes on purpose; the kernel log must show exactly these.
    pub expected_denials: Vec<Denial>,
}

fn repo_build() -> sepolicy::Build {
    let repo = paths::repo();
    sepolicy::Build {
        testbed_dir: Some(repo.join("xtask/selinux")),
        // The stand-in declares only the classes the policies use; the kernel's other classes
        // (capability2, netlink sockets, bpf, ...) are not checked in the VM.
        handle_unknown: Some(sepolicy::HandleUnknown::Allow),
        ..sepolicy::Build::new(
            repo.join("android/checks/platform-stub"),
            repo.join("sepolicy/vendor"),
        )
    }
}

/// The file_contexts files, in the order later entries refine earlier ones.
fn file_contexts() -> Vec<PathBuf> {
    let repo = paths::repo();
    vec![
        repo.join("android/checks/platform-stub/file_contexts"),
        repo.join("sepolicy/vendor/file_contexts"),
        repo.join("xtask/selinux/file_contexts"),
    ]
}

/// Compiles the policy and installs it, the extra copies and the label list under `root`.
pub fn install(setup: &Setup, root: &Path) -> Result<()> {
    let work = paths::scratch().join("sepolicy");
    let out = repo_build()
        .compile(&work)
        .map_err(|e| anyhow!("compiling the VM's SELinux policy: {e}"))?;
    let policy = root.join(GUEST_POLICY.trim_start_matches('/'));
    fs::create_dir_all(policy.parent().unwrap())?;
    fs::copy(&out.policy_bin, &policy)?;
    for (program, to) in &setup.installs {
        let dest = root.join(to.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::copy(root.join("bin").join(program), &dest)
            .with_context(|| format!("installing {program} as {to}"))?;
    }
    for (from, to) in &setup.files {
        let dest = root.join(to.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::copy(paths::repo().join(from), &dest)
            .with_context(|| format!("copying {from} into the guest"))?;
    }
    let mut guest_paths = Vec::new();
    collect_files(root, root, &mut guest_paths)?;
    guest_paths.extend(setup.runtime_paths.iter().cloned());
    let labels = labels(&guest_paths)?;
    fs::write(root.join(GUEST_LABELS.trim_start_matches('/')), labels)?;
    Ok(())
}

/// Regular files under `dir`, as guest paths.
fn collect_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(root, &entry.path(), out)?;
        } else if kind.is_file() {
            let rel = entry
                .path()
                .strip_prefix(root)?
                .to_string_lossy()
                .into_owned();
            out.push(format!("/{rel}"));
        }
    }
    Ok(())
}

/// `path context` lines for every path some file_contexts entry labels (the others keep their
/// filesystem's label); the same rule android-checks applies (longest matching entry wins).
fn labels(guest_paths: &[String]) -> Result<String> {
    let files = file_contexts();
    let files: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let mut out = String::from("# Generated by xtask from the file_contexts files.\n");
    let mut sorted = guest_paths.to_vec();
    sorted.sort();
    sorted.dedup();
    for path in sorted {
        match modload::label(&files, &path) {
            Ok(label) => {
                let _ = writeln!(out, "{path} u:object_r:{label}:s0");
            }
            Err(e) if e.starts_with("no file_contexts entry") => {}
            Err(e) => bail!("labelling {path}: {e}"),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn denials_parse_per_permission() {
        let line = "[   12.5] audit: type=1400 audit(1.2:9): avc:  denied  { read open } for  pid=7 \
                    comm=\"p\" path=\"/dev/dma_heap/kmod-cma\" dev=\"devtmpfs\" ino=9 \
                    scontext=u:r:hal_camera_default:s0 tcontext=u:object_r:dmaheap_vendor_heap_device:s0 \
                    tclass=chr_file permissive=0";
        let got = Denial::parse(line).unwrap();
        assert_eq!(
            got,
            vec![
                Denial::new(
                    "read",
                    "hal_camera_default",
                    "dmaheap_vendor_heap_device",
                    "chr_file"
                ),
                Denial::new(
                    "open",
                    "hal_camera_default",
                    "dmaheap_vendor_heap_device",
                    "chr_file"
                ),
            ]
        );
        assert!(Denial::parse("[ 1.0] audit: type=1403 policy loaded").is_none());
    }

    #[test]
    fn guest_paths_get_the_vendor_and_test_bed_labels() {
        let got = labels(&[
            "/vendor/bin/hw/vendor.dmaheap-service".into(),
            "/dev/dma_heap/kmod-carveout".into(),
            "/dev/dma_heap/system".into(),
            "/bin/busybox".into(),
            "/bin/unlabelled-tool".into(),
        ])
        .unwrap();
        assert!(got.contains(
            "/vendor/bin/hw/vendor.dmaheap-service u:object_r:hal_dmaheap_default_exec:s0"
        ));
        assert!(
            got.contains("/dev/dma_heap/kmod-carveout u:object_r:dmaheap_vendor_heap_device:s0")
        );
        assert!(got.contains("/dev/dma_heap/system u:object_r:dmabuf_system_heap_device:s0"));
        assert!(got.contains("/bin/busybox u:object_r:init_exec:s0"));
        assert!(!got.contains("unlabelled-tool"));
    }

    /// The wire and VTS suites' callers get the entrypoints of their domains: dumpstate's
    /// platform label and the test bed's VTS entrypoint into su.
    #[test]
    fn wire_callers_get_their_entrypoint_labels() {
        let got = labels(&[
            "/system/bin/dumpstate".into(),
            "/data/nativetest64/vendor.dmaheap/binder-wire".into(),
            "/data/nativetest64/vendor.dmaheap/dmaheap-vts".into(),
        ])
        .unwrap();
        assert!(got.contains("/system/bin/dumpstate u:object_r:dumpstate_exec:s0"));
        assert!(got.contains(
            "/data/nativetest64/vendor.dmaheap/binder-wire u:object_r:testbed_vts_exec:s0"
        ));
        assert!(got.contains(
            "/data/nativetest64/vendor.dmaheap/dmaheap-vts u:object_r:testbed_vts_exec:s0"
        ));
    }

    /// The policy the VM loads (stand-in, vendor policy and the test bed's part) compiles.
    #[test]
    fn test_bed_policy_compiles() {
        let work = std::env::temp_dir().join(format!("testbed-policy-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        let compiled = repo_build().compile(&work);
        let _ = std::fs::remove_dir_all(&work);
        compiled.unwrap();
    }
}
