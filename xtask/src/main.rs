//! `cargo xtask`: the project's automation. `demo` boots the test bed and shows what the project
//! does; `test` runs every host check and every VM suite and ends with `N passed, N failed`.

mod clean_room;
mod cmd;
mod guest;
mod kernel;
mod kmi;
mod paths;
mod prereqs;
mod progress;
mod report;
mod selinux;
mod suites;
mod vm;

use std::process::{Command, ExitCode};

use anyhow::Result;
use clap::{Parser, Subcommand};

use kernel::Arch;
use report::{Outcome, TestResult, Totals};
use vm::{Echo, VmOptions};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    about = "dmaheap-hal automation: test-bed kernel, VM, demo and tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Boot the test bed and show what the project does (the main job).
    Demo {
        #[command(flatten)]
        vm: VmFlags,
    },
    /// Host tests, clippy and rustfmt, then every VM suite on every architecture; ends with
    /// `N passed, N failed`.
    Test {
        /// Only the host checks.
        #[arg(long, conflicts_with = "vm_only")]
        host_only: bool,
        /// Only the VM suites.
        #[arg(long)]
        vm_only: bool,
        /// Run the VM suites on this architecture only (default: x86_64, then arm64).
        #[arg(long, value_parser = parse_arch)]
        arch: Option<Arch>,
        #[command(flatten)]
        vm: VmFlags,
    },
    /// Benchmarks in one VM run, printed side by side as ratios (not a test).
    Bench {
        /// The VM's architecture.
        #[arg(long, value_parser = parse_arch, default_value = "x86_64")]
        arch: Arch,
        #[command(flatten)]
        vm: VmFlags,
    },
    /// Run the README's test command in a fresh Debian 12 root (debootstrap) with an empty cache,
    /// and report its time by step. Takes as long as a first run on a new machine.
    CleanRoom {
        /// The command to run inside, from the clone's root.
        #[arg(long, default_value = "cargo xtask test")]
        command: String,
    },
    /// Build the heap module for arm64 against the kernel without debugging options and compare
    /// the kernel symbols it imports with heaps-kmod/kmi_symbols.txt (`--write`: regenerate that
    /// file). `cargo xtask test` runs the comparison too.
    KmiSymbols {
        #[arg(long)]
        write: bool,
    },
    /// Install prerequisites and build (or find cached) a test kernel; print its tree (KDIR).
    Kernel {
        /// The benchmarks' kernel (no lockdep, KASAN, kmemleak or other debugging options).
        #[arg(long)]
        bench: bool,
        #[arg(long, value_parser = parse_arch, default_value = "x86_64")]
        arch: Arch,
    },
}

/// The demo's architecture: the one every GKI phone has.
const DEMO_ARCH: Arch = Arch::Arm64;

fn parse_arch(name: &str) -> Result<Arch, String> {
    Arch::parse(name).ok_or_else(|| {
        let known: Vec<&str> = kernel::ARCHES.iter().map(|a| a.name()).collect();
        format!(
            "unknown architecture '{name}' (known: {})",
            known.join(", ")
        )
    })
}

#[derive(clap::Args)]
struct VmFlags {
    /// Boot with KVM instead of TCG (nested KVM hangs on the project's machines).
    #[arg(long)]
    kvm: bool,
}

impl VmFlags {
    fn options(&self) -> VmOptions {
        VmOptions {
            kvm: self.kvm,
            icount: false,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _machine_lock = match paths::lock_machine() {
        Ok(lock) => lock,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match cli.command {
        Task::Demo { vm } => demo(vm.options()),
        Task::Test {
            host_only,
            vm_only,
            arch,
            vm,
        } => {
            let arches: Vec<Arch> = match arch {
                Some(arch) => vec![arch],
                None => kernel::ARCHES.to_vec(),
            };
            test(
                !vm_only,
                if host_only { &[] } else { &arches },
                vm.options(),
            )
        }
        Task::Bench { arch, vm } => bench(arch, vm.options()),
        Task::CleanRoom { command } => clean_room::run(&clean_room::Options { command }),
        Task::KmiSymbols { write: true } => kmi::write().map(|()| true),
        Task::KmiSymbols { write: false } => kmi::check(),
        Task::Kernel { bench, arch } => kernel::ensure(
            arch,
            if bench {
                kernel::Variant::Bench
            } else {
                kernel::Variant::Checked
            },
        )
        .map(|k| {
            progress::print_timings();
            println!("{}", k.tree.display());
            true
        }),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_plan(plan: &suites::Plan, options: VmOptions, echo: Echo) -> Result<vm::VmRun> {
    let kernel = kernel::ensure(plan.arch, plan.kernel)?;
    let initramfs = guest::build_initramfs(plan, &kernel)?;
    vm::boot(&kernel, &initramfs, plan, options, echo)
}

fn demo(options: VmOptions) -> Result<bool> {
    prereqs::ensure()?;
    let plan = suites::demo_plan(DEMO_ARCH);
    let run = run_plan(&plan, options, Echo::Readable)?;
    let totals = Totals::of(&run.results);
    progress::print_timings();
    println!(
        "\nDemo summary: {totals} (full console: {})",
        run.console_log.display()
    );
    for failed in run.results.iter().filter(|r| r.outcome == Outcome::Failed) {
        println!("  FAILED {}: {}", failed.suite, failed.name);
    }
    Ok(totals.failed == 0)
}

/// The benchmarks in wall time, then the HAL's fixed cost again in instruction-counted time
/// (unless on KVM, where the emulator distorts nothing).
fn bench(arch: Arch, options: VmOptions) -> Result<bool> {
    prereqs::ensure()?;
    let mut runs = vec![run_plan(
        &suites::bench_plan(arch),
        options,
        Echo::Readable,
    )?];
    if !options.kvm {
        println!(
            "\n==> the HAL's fixed cost again under qemu -icount (virtual time = guest instructions, \
             1 ns each; the emulator's own TLB refills do not count)"
        );
        let icount = VmOptions {
            icount: true,
            ..options
        };
        runs.push(run_plan(
            &suites::bench_icount_plan(arch),
            icount,
            Echo::Readable,
        )?);
    }
    progress::print_timings();
    let mut passed = true;
    for run in &runs {
        for failure in run.results.iter().filter(|r| r.outcome == Outcome::Failed) {
            println!("  FAILED {}: {}", failure.suite, failure.name);
            passed = false;
        }
        println!("benchmark console: {}", run.console_log.display());
    }
    Ok(passed)
}

fn test(host: bool, arches: &[Arch], options: VmOptions) -> Result<bool> {
    prereqs::ensure()?;
    let mut totals = Totals::default();
    let mut failures: Vec<String> = Vec::new();
    if host {
        let (host_totals, host_failures) = host_checks()?;
        totals.merge(host_totals);
        failures.extend(host_failures);
    }
    if arches.contains(&kmi::ARCH) {
        let listed = kmi::check()?;
        totals.add(if listed {
            Outcome::Passed
        } else {
            Outcome::Failed
        });
        if !listed {
            failures.push(format!(
                "kmi: an import outside the KMI ({}), or {} is stale",
                kmi::SNAPSHOT,
                kmi::LIST
            ));
        }
    }
    let mut summaries = Vec::new();
    for &arch in arches {
        let plan = suites::test_plan(arch);
        let run = run_plan(&plan, options, Echo::Everything)?;
        print_vm_summary(arch, &run.results);
        let arch_totals = Totals::of(&run.results);
        totals.merge(arch_totals);
        failures.extend(
            run.results
                .iter()
                .filter(|r| r.outcome == Outcome::Failed)
                .map(|r| format!("vm {}/{}: {}", arch.name(), r.suite, r.name)),
        );
        if arch_totals.failed > 0 {
            eprintln!("guest console log: {}", run.console_log.display());
        }
        summaries.push((arch, run.results));
    }
    progress::print_timings();
    // Each architecture's table once more at the end, where the eye looks.
    for (arch, results) in &summaries {
        print_vm_summary(*arch, results);
    }
    if !failures.is_empty() {
        println!("\nFailed:");
        for failure in &failures {
            println!("  {failure}");
        }
    }
    println!("\n{totals}");
    Ok(totals.failed == 0)
}

fn print_vm_summary(arch: Arch, results: &[TestResult]) {
    let mut suites: Vec<&str> = Vec::new();
    for result in results {
        if !suites.contains(&result.suite.as_str()) {
            suites.push(&result.suite);
        }
    }
    println!("\nVM suites, {}:", arch.name());
    for suite in suites {
        let own: Vec<TestResult> = results
            .iter()
            .filter(|r| r.suite == suite)
            .cloned()
            .collect();
        println!("  {suite:32} {}", Totals::of(&own));
    }
}

/// The device's target: what runs on the phone must at least type-check for it. Nothing links
/// here (there is no NDK), so this is `cargo check`, not a build.
const DEVICE_TARGET: &str = "aarch64-linux-android";
const DEVICE_PACKAGES: &[&str] = &[
    "dmaheap-service",
    "dmaheapctl",
    "dmaheap-client",
    "dmaheap-vts",
    "libdmaheap",
];

/// rustfmt, clippy and the device-target check count as one test each; `cargo test` counts its own tests.
fn host_checks() -> Result<(Totals, Vec<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let repo = paths::repo();
    let mut totals = Totals::default();
    let mut failures = Vec::new();
    let mut gate = |name: &str, command: &mut Command| -> Result<()> {
        let step = progress::step(format!("host: {name}"));
        let ok = command.current_dir(&repo).status()?.success();
        step.done(if ok { "passed" } else { "FAILED" });
        totals.add(if ok { Outcome::Passed } else { Outcome::Failed });
        if !ok {
            failures.push(format!("host: {name}"));
        }
        Ok(())
    };
    gate(
        "rustfmt check",
        Command::new(&cargo).args(["fmt", "--all", "--", "--check"]),
    )?;
    // The kernel module is not a cargo crate: rustfmt it the way the kernel's `make
    // rustfmtcheck` would, with the kernel's .rustfmt.toml (a copy in heaps-kmod/). Each crate
    // root (the heap module, the test importer) reaches its module files through its `mod` items.
    gate(
        "rustfmt check of heaps-kmod (the kernel's .rustfmt.toml)",
        Command::new("rustfmt").args([
            "--check",
            "--config-path",
            "heaps-kmod/.rustfmt.toml",
            "heaps-kmod/dmaheap_rs.rs",
            "heaps-kmod/tests/importer/importer.rs",
        ]),
    )?;
    gate(
        "clippy -D warnings",
        Command::new(&cargo).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--quiet",
            "--",
            "-D",
            "warnings",
        ]),
    )?;

    let mut device_check = Command::new(&cargo);
    device_check.args(["check", "--quiet", "--target", DEVICE_TARGET]);
    for package in DEVICE_PACKAGES {
        device_check.args(["-p", package]);
    }
    gate(
        &format!(
            "cargo check --target {DEVICE_TARGET} ({})",
            DEVICE_PACKAGES.join(", ")
        ),
        &mut device_check,
    )?;

    let step = progress::step("host: cargo test --workspace");
    let mut output = String::new();
    let status = cmd::stream_lines(
        Command::new(&cargo)
            .current_dir(&repo)
            .args(["test", "--workspace"]),
        |line| {
            println!("{line}");
            output.push_str(line);
            output.push('\n');
        },
    )?;
    let tested = report::cargo_test_totals(&output);
    step.done(&tested.to_string());
    totals.merge(tested);
    if !status.success() && tested.failed == 0 {
        totals.add(Outcome::Failed);
        failures.push(format!(
            "host: cargo test --workspace exited with {status} (build failure?)"
        ));
    } else if tested.failed > 0 {
        failures.push(format!(
            "host: cargo test --workspace: {} failed (see above)",
            tested.failed
        ));
    }
    Ok((totals, failures))
}
