//! Everything that goes into the VM: static programs, kernel modules, files, and the /init script
//! that runs a plan and marks its output for the host.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::kernel::{Arch, Kernel, Variant};
use crate::suites::{GuestStep, Language, Plan, Program};
use crate::{cmd, paths, prereqs, progress};

const RSBINDER_TOOLS_VERSION: &str = "0.12.0";

/// Builds the plan's programs and modules and packs them with /init into a gzipped initramfs.
pub fn build_initramfs(plan: &Plan, kernel: &Kernel) -> Result<PathBuf> {
    let tools = prereqs::ensure()?;
    let root = paths::scratch().join(format!("initramfs-{}-{}", plan.name, kernel.arch.name()));
    if root.exists() {
        fs::remove_dir_all(&root)?;
    }
    for dir in [
        "bin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "lib/modules",
        "etc",
        "data",
    ] {
        fs::create_dir_all(root.join(dir))?;
    }
    let busybox = tools.busybox(kernel.arch);
    fs::copy(&busybox, root.join("bin/busybox"))
        .with_context(|| format!("installing {} into the guest", busybox.display()))?;

    for (name, path) in build_programs(&plan.programs, kernel)? {
        fs::copy(&path, root.join("bin").join(&name))
            .with_context(|| format!("installing {}", path.display()))?;
    }
    for module in &plan.modules {
        let ko = build_module(module.source_dir, module.ko, kernel)?;
        fs::copy(&ko, root.join("lib/modules").join(module.ko))?;
    }
    for (from, to) in &plan.files {
        let dest = root.join(to.trim_start_matches('/'));
        fs::create_dir_all(dest.parent().unwrap())?;
        fs::copy(paths::repo().join(from), &dest)
            .with_context(|| format!("copying {from} into the guest"))?;
    }
    if let Some(setup) = &plan.selinux {
        crate::selinux::install(setup, &root)?;
    }
    for (guest_path, script) in init_scripts(plan) {
        let path = root.join(guest_path.trim_start_matches('/'));
        fs::write(&path, script)?;
        set_executable(&path)?;
    }

    let image = paths::scratch().join(format!(
        "initramfs-{}-{}.cpio.gz",
        plan.name,
        kernel.arch.name()
    ));
    let step = progress::step("initramfs: pack");
    cmd::run(Command::new("sh").current_dir(&root).arg("-c").arg(format!(
        "find . -print0 | cpio --null -o -H newc --quiet | gzip -1 > '{}'",
        image.display()
    )))?;
    step.done(&format!("{} KiB", fs::metadata(&image)?.len() / 1024));
    Ok(image)
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Builds every program; returns guest name → host path.
fn build_programs(programs: &[Program], kernel: &Kernel) -> Result<BTreeMap<String, PathBuf>> {
    let arch = kernel.arch;
    let target = arch.guest_target();
    let mut built = BTreeMap::new();
    let bins: Vec<(&str, &str)> = programs
        .iter()
        .filter_map(|p| match p {
            Program::CargoBin { package, bin } => Some((*package, *bin)),
            _ => None,
        })
        .collect();
    let tests: Vec<(&str, &str, &str)> = programs
        .iter()
        .filter_map(|p| match p {
            Program::CargoTest {
                package,
                test,
                install_as,
            } => Some((*package, *test, *install_as)),
            _ => None,
        })
        .collect();
    if !bins.is_empty() || !tests.is_empty() {
        let step = progress::step(format!(
            "guest programs: cargo build --release --target {target}"
        ));
        if !bins.is_empty() {
            let mut cargo = guest_cargo("build", arch);
            for (package, bin) in &bins {
                cargo.args(["-p", package, "--bin", bin]);
            }
            let artifacts = cargo_executables(&mut cargo, target)?;
            for (_, bin) in &bins {
                let path = artifacts
                    .get(*bin)
                    .with_context(|| format!("cargo built no binary {bin}"))?;
                built.insert(bin.to_string(), path.clone());
            }
        }
        for (package, test, install_as) in &tests {
            let mut cargo = guest_cargo("test", arch);
            cargo.args(["--no-run", "-p", package]);
            if *test == "lib" {
                cargo.arg("--lib");
            } else {
                cargo.args(["--test", test]);
            }
            let artifacts = cargo_executables(&mut cargo, target)?;
            let path = artifacts
                .values()
                .next()
                .with_context(|| format!("cargo built no test {package}/{test}"))?;
            built.insert(install_as.to_string(), path.clone());
        }
        step.done(&format!("{} programs", bins.len() + tests.len()));
    }
    let mut libdmaheap: Option<PathBuf> = None;
    for program in programs {
        match program {
            Program::RsbinderTool(tool) => {
                built.insert(tool.to_string(), rsbinder_tool(tool, arch)?);
            }
            Program::KernelSelftest { source, install_as } => {
                built.insert(
                    install_as.to_string(),
                    build_selftest(kernel, source, install_as)?,
                );
            }
            Program::NativeClient {
                source,
                language,
                install_as,
            } => {
                let library = match &libdmaheap {
                    Some(library) => library,
                    None => libdmaheap.insert(libdmaheap_staticlib(arch)?),
                };
                built.insert(
                    install_as.to_string(),
                    build_native_client(arch, library, source, *language, install_as)?,
                );
            }
            Program::CargoBin { .. } | Program::CargoTest { .. } => {}
        }
    }
    Ok(built)
}

/// libdmaheap's staticlib for `arch`'s glibc target (see `Arch::native_client_target`), in the
/// guest target directory.
fn libdmaheap_staticlib(arch: Arch) -> Result<PathBuf> {
    let target = arch.native_client_target();
    let library = paths::guest_target()
        .join(target)
        .join("release/libdmaheap.a");
    let step = progress::step(format!(
        "libdmaheap.a: cargo build --release --target {target}"
    ));
    let mut cargo = Command::new(env_or("CARGO", "cargo"));
    cargo
        .current_dir(paths::repo())
        .env("CARGO_TARGET_DIR", paths::guest_target())
        .args(["build", "--quiet", "--release", "-p", "libdmaheap"])
        .args(["--target", target]);
    cmd::run(&mut cargo).with_context(|| format!("building libdmaheap for {target}"))?;
    if !library.is_file() {
        bail!("cargo left no {}", library.display());
    }
    step.done("built");
    Ok(library)
}

/// A C or C++ client of libdmaheap, static, with the same warnings a vendor build turns on.
fn build_native_client(
    arch: Arch,
    library: &Path,
    source: &str,
    language: Language,
    name: &str,
) -> Result<PathBuf> {
    let out = paths::scratch().join(format!("{name}-{}", arch.name()));
    let (compiler, standard) = match language {
        Language::C => (guest_cc(arch), "-std=c11"),
        Language::Cxx => (guest_cxx(arch), "-std=c++17"),
    };
    let step = progress::step(format!("{name}: {compiler} -static {source} libdmaheap.a"));
    cmd::run(
        Command::new(compiler)
            .current_dir(paths::repo())
            .args([standard, "-static", "-O2", "-Wall", "-Wextra", "-Werror"])
            .arg("-I")
            .arg(paths::repo().join("libs/libdmaheap/include"))
            .arg(source)
            .arg(library)
            // The linker's warnings about getpwuid_r and getaddrinfo in a static link come from
            // Rust std's home_dir and lookup_host, which libdmaheap never calls. glibc before
            // 2.34 keeps threads and dlopen in libraries of their own.
            .args(["-Wl,--gc-sections", "-lpthread", "-ldl", "-o"])
            .arg(&out),
    )
    .with_context(|| format!("compiling {source} against libdmaheap"))?;
    step.done("built");
    Ok(out)
}

/// Guest builds use a target directory in the cache (see `paths::guest_target`).
fn guest_cargo(subcommand: &str, arch: Arch) -> Command {
    let mut cargo = Command::new(env_or("CARGO", "cargo"));
    cargo
        .current_dir(paths::repo())
        .env("CARGO_TARGET_DIR", paths::guest_target())
        .args([
            subcommand,
            "--release",
            "--target",
            arch.guest_target(),
            "--message-format=json-render-diagnostics",
        ]);
    set_guest_linker(&mut cargo, arch);
    cargo
}

/// Static musl programs for another architecture link with the toolchain's own lld: there is
/// no cross C toolchain for musl on the host, and Rust's musl targets bring their own C runtime.
fn set_guest_linker(cargo: &mut Command, arch: Arch) {
    if arch != Arch::X86_64 {
        let target = arch.guest_target().to_uppercase().replace('-', "_");
        cargo.env(format!("CARGO_TARGET_{target}_LINKER"), "rust-lld");
    }
}

fn env_or(var: &str, default: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| default.to_owned())
}

/// Target name → executable path, from cargo's JSON messages.
fn cargo_executables(cargo: &mut Command, target: &str) -> Result<BTreeMap<String, PathBuf>> {
    let mut found = BTreeMap::new();
    let status = cmd::stream_lines(cargo, |line| {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            return;
        };
        if message["reason"] != "compiler-artifact" {
            return;
        }
        if let (Some(name), Some(exe)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
        ) {
            found.insert(name.to_owned(), PathBuf::from(exe));
        }
    })?;
    if !status.success() {
        bail!("cargo build for {target} failed ({status})");
    }
    Ok(found)
}

/// rsbinder's service manager and device tool, installed once per version and target into the
/// cache.
fn rsbinder_tool(tool: &str, arch: Arch) -> Result<PathBuf> {
    let target = arch.guest_target();
    let root = paths::cache().join(format!("rsbinder-tools-{RSBINDER_TOOLS_VERSION}-{target}"));
    let path = root.join("bin").join(tool);
    if path.exists() {
        return Ok(path);
    }
    let step = progress::step(format!(
        "rsbinder-tools {RSBINDER_TOOLS_VERSION} for the {} guest (not cached: about 2.5 minutes)",
        arch.name()
    ));
    let mut install = Command::new(env_or("CARGO", "cargo"));
    install
        .args([
            "install",
            "--locked",
            "--quiet",
            "rsbinder-tools",
            "--version",
            RSBINDER_TOOLS_VERSION,
        ])
        .args(["--target", target, "--root"])
        .arg(&root);
    set_guest_linker(&mut install, arch);
    cmd::run(&mut install)
        .context("installing rsbinder-tools (rsb_hub, rsb_device) for the guest")?;
    step.done("installed");
    if !path.exists() {
        bail!("rsbinder-tools {RSBINDER_TOOLS_VERSION} has no {tool}");
    }
    Ok(path)
}

/// The C compiler for static guest programs of `arch`: Debian's native gcc, or its cross gcc.
fn guest_cc(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "gcc",
        Arch::Arm64 => "aarch64-linux-gnu-gcc",
    }
}

/// The C++ compiler for static guest programs of `arch`, beside `guest_cc`.
fn guest_cxx(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "g++",
        Arch::Arm64 => "aarch64-linux-gnu-g++",
    }
}

/// A selftest compiled static against the test kernel's own UAPI headers, as kselftest does.
fn build_selftest(kernel: &Kernel, source: &str, name: &str) -> Result<PathBuf> {
    let out = paths::scratch().join(format!("{name}-{}", kernel.arch.name()));
    let source = kernel.tree.join(source);
    cmd::run(
        Command::new(guest_cc(kernel.arch))
            .args(["-static", "-O2", "-Wall", "-Wl,-no-as-needed"])
            .arg("-I")
            .arg(kernel.uapi_headers())
            .arg("-I")
            .arg(kernel.tree.join("tools/testing/selftests"))
            .arg("-o")
            .arg(&out)
            .arg(&source),
    )
    .with_context(|| format!("compiling the selftest {}", source.display()))?;
    Ok(out)
}

/// Builds an out-of-tree module from a copy of its directory, so the repository stays clean.
pub fn build_module(source_dir: &str, ko: &str, kernel: &Kernel) -> Result<PathBuf> {
    let tools = prereqs::ensure()?;
    let build = paths::scratch()
        .join(format!("modules-{}", kernel.arch.name()))
        .join(source_dir);
    if build.exists() {
        fs::remove_dir_all(&build)?;
    }
    fs::create_dir_all(build.parent().unwrap())?;
    cmd::run(
        Command::new("cp")
            .arg("-a")
            .arg(paths::repo().join(source_dir))
            .arg(&build),
    )?;
    let step = progress::step(format!("kernel module {ko} ({})", kernel.arch.name()));
    cmd::run_logged(
        kernel
            .make(tools)
            .arg("-C")
            .arg(&kernel.tree)
            .arg(format!("M={}", build.display()))
            .arg(format!(
                "-j{}",
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            )),
        &build.join("build.log"),
        Duration::from_secs(30),
    )?;
    let path = build.join(ko);
    if !path.exists() {
        bail!("building {source_dir} produced no {ko}");
    }
    step.done("built");
    Ok(path)
}

/// Quotes `text` for the guest's shell.
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

const INIT_PREAMBLE: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mount -t tmpfs tmpfs /tmp
# Leak reports count from here: whatever boot left unreferenced is not the plan's doing.
if [ -w /sys/kernel/debug/kmemleak ]; then echo scan > /sys/kernel/debug/kmemleak; echo clear > /sys/kernel/debug/kmemleak; fi
echo "@@GUEST-UP"
"#;

const KMEMLEAK_CHECK: &str = r#"if [ -w /sys/kernel/debug/kmemleak ]; then
  # kmemleak reports an object only once it is 5 s old and unreferenced in a scan.
  sleep 6
  echo scan > /sys/kernel/debug/kmemleak
  echo scan > /sys/kernel/debug/kmemleak
  leaks=$(cat /sys/kernel/debug/kmemleak)
  if [ -z "$leaks" ]; then
    echo "@@CHECK vm ok no kernel memory leaked while the plan ran (kmemleak)"
  else
    printf '%s\n' "$leaks" | head -60
    echo "@@CHECK vm fail no kernel memory leaked while the plan ran (kmemleak)"
  fi
else
  echo "@@CHECK vm fail kmemleak available (the test kernel has CONFIG_DEBUG_KMEMLEAK)"
fi
"#;

const INIT_EPILOGUE: &str = r#"echo "@@DMESG-BEGIN"
dmesg
echo "@@DMESG-END"
echo "@@GUEST-DONE"
poweroff -f
"#;

/// Where the steps after an `EnterSelinux` step run (in the init domain).
const SECOND_STAGE: &str = "/init.second-stage";

const SECOND_STAGE_PREAMBLE: &str = "#!/bin/busybox sh\nexport PATH=/bin\n";

/// The guest's /init: runs the plan's steps in order between markers the host parses.
#[cfg(test)]
pub fn init_script(plan: &Plan) -> String {
    init_scripts(plan).remove(0).1
}

/// /init and, for a plan that enters SELinux, /init.second-stage, which /init executes into.
pub fn init_scripts(plan: &Plan) -> Vec<(&'static str, String)> {
    let mut scripts = Vec::new();
    let mut script = String::from(INIT_PREAMBLE);
    for step in &plan.steps {
        match step {
            GuestStep::EnterSelinux => {
                let _ = writeln!(
                    script,
                    "if setool first-stage --policy {policy} --init-exec /bin/busybox --init-exec /bin/setool; \
                     then exec /bin/busybox sh {SECOND_STAGE}; fi\n\
                     echo \"@@CHECK selinux fail policy loaded and enforcing, init running\"",
                    policy = crate::selinux::GUEST_POLICY
                );
                scripts.push(("/init", std::mem::take(&mut script)));
                script.push_str(SECOND_STAGE_PREAMBLE);
                script.push_str(
                    "echo \"@@CHECK selinux ok policy loaded and enforcing, init running\"\n",
                );
            }
            GuestStep::Check { suite, name, shell } => {
                let _ = writeln!(
                    script,
                    "if out=$( {{ {shell}\n}} 2>&1 ); then echo \"@@CHECK {suite} ok \"{name}; \
                     else printf '%s\\n' \"$out\"; echo \"@@CHECK {suite} fail \"{name}; fi",
                    name = quote(name)
                );
            }
            GuestStep::Suite {
                name,
                format,
                shell,
            } => {
                let _ = writeln!(
                    script,
                    "echo \"@@SUITE-BEGIN {name} {}\"\n( {shell}\n) 2>&1\necho \"@@SUITE-END {name} $?\"",
                    format.as_str()
                );
            }
            GuestStep::Background { name, shell } => {
                let _ = writeln!(script, "( {shell}\n) > /tmp/{name}.log 2>&1 &");
            }
            GuestStep::Show { shell } => {
                let _ = writeln!(script, "{shell}");
            }
        }
    }
    // The checked kernel has kmemleak; the benchmarks' kernel has no debugging options.
    if plan.kernel == Variant::Checked {
        script.push_str(KMEMLEAK_CHECK);
    }
    script.push_str(INIT_EPILOGUE);
    let name = if scripts.is_empty() {
        "/init"
    } else {
        SECOND_STAGE
    };
    scripts.push((name, script));
    scripts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Format;
    use crate::suites::{check, suite};

    fn plan_with(steps: Vec<GuestStep>) -> Plan {
        Plan {
            name: "unit",
            arch: Arch::X86_64,
            kernel: Variant::Bench,
            programs: vec![],
            modules: vec![],
            files: vec![],
            steps,
            kernel_args: vec![],
            reservations: vec![],
            selinux: None,
            timeout: Duration::from_secs(1),
        }
    }

    /// Runs the generated script's step section on the host's sh, which is enough to prove the
    /// markers and quoting come out as the host parser expects.
    fn run_steps(steps: Vec<GuestStep>) -> String {
        let script = init_script(&plan_with(steps));
        let body = script
            .strip_prefix(INIT_PREAMBLE)
            .unwrap()
            .strip_suffix(INIT_EPILOGUE)
            .unwrap();
        let out = Command::new("sh").arg("-c").arg(body).output().unwrap();
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn checks_report_pass_and_fail_with_names_quoted() {
        let out = run_steps(vec![
            check("testbed", "it's true", "true"),
            check("testbed", "fails loudly", "echo why; false"),
        ]);
        assert_eq!(
            out,
            "@@CHECK testbed ok it's true\nwhy\n@@CHECK testbed fail fails loudly\n"
        );
    }

    #[test]
    fn suites_are_bracketed_with_their_exit_status() {
        let out = run_steps(vec![suite(
            "s",
            Format::Tap,
            "echo 'ok 1 a'; echo oops >&2; exit 3",
        )]);
        assert_eq!(out, "@@SUITE-BEGIN s tap\nok 1 a\noops\n@@SUITE-END s 3\n");
    }

    #[test]
    fn entering_selinux_splits_init_into_two_stages() {
        let mut plan = plan_with(vec![
            check("a", "before", "true"),
            GuestStep::EnterSelinux,
            check("b", "after", "true"),
        ]);
        plan.kernel = Variant::Checked;
        let scripts = init_scripts(&plan);
        assert_eq!(
            scripts.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            ["/init", SECOND_STAGE]
        );
        let (first, second) = (&scripts[0].1, &scripts[1].1);
        assert!(first.contains("before") && !first.contains("after"));
        assert!(first.contains(&format!("exec /bin/busybox sh {SECOND_STAGE}")));
        assert!(
            !first.contains("@@GUEST-DONE"),
            "the first stage never ends the plan"
        );
        assert!(second.starts_with(SECOND_STAGE_PREAMBLE) && second.contains("after"));
        assert!(second.contains("kmemleak") && second.ends_with(INIT_EPILOGUE));
    }

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
    }
}
