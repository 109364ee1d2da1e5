//! Boots the test kernel in qemu with a plan's initramfs, streams the guest's console back, and
//! turns it into test results, including a verdict on the kernel log.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::kernel::{Arch, Kernel};
use crate::report::{self, Format, Outcome, TestResult};
use crate::selinux::Denial;
use crate::suites::{Plan, Reservation};
use crate::{cmd, paths, progress};

#[derive(Debug, Clone, Copy, Default)]
pub struct VmOptions {
    /// Use KVM instead of TCG. Nested KVM hangs at boot on the project's machines, so it is opt-in.
    pub kvm: bool,
    /// TCG with instruction-counted virtual time (`-icount shift=0`: one nanosecond per guest
    /// instruction). What the emulator itself spends (its software TLB refills on every address
    /// space switch, translation) takes no guest time there, so a benchmark measures the guest's
    /// own work; the price is one host thread for every vCPU.
    pub icount: bool,
}

/// How much of the guest's console to echo while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Echo {
    /// Every line, prefixed (tests: the log is the evidence).
    Everything,
    /// Only what is meant for people: `show` output and check/test verdicts (the demo).
    Readable,
}

#[derive(Debug)]
pub struct VmRun {
    pub results: Vec<TestResult>,
    pub console_log: PathBuf,
}

/// Lines in the kernel log that mean the kernel itself went wrong.
const KERNEL_TROUBLE: &[&str] = &[
    "BUG:",
    "WARNING:",
    "Oops",
    "KASAN",
    "UBSAN",
    "Kernel panic",
    "kernel BUG at",
    "general protection fault",
    "Call Trace:",
    // Lost audit records could hide an AVC denial (see `ConsoleParser::denials`).
    "audit: backlog limit exceeded",
    "audit: rate limit exceeded",
    "audit: audit_lost=",
];

pub fn boot(
    kernel: &Kernel,
    initramfs: &Path,
    plan: &Plan,
    options: VmOptions,
    echo: Echo,
) -> Result<VmRun> {
    let arch = kernel.arch;
    let console_log = paths::scratch().join(format!("console-{}-{}.log", plan.name, arch.name()));
    let mut log = File::create(&console_log)?;
    let mut qemu = machine(arch, options)?;
    let mut append = format!("console={} panic=-1 quiet", console(arch));
    for arg in &plan.kernel_args {
        append.push(' ');
        append.push_str(arg);
    }
    match arch {
        Arch::X86_64 => {
            // qemu's `-cpu max` offers 5-level paging. With it, an interrupt taken during early
            // CPU identification made KASAN report a wild access on the irq descriptor's lock
            // (direct map at 0xff11...; seen in two of three boots under a loaded host). Phones
            // have no 5-level paging; the 4-level layout is the one KASAN is exercised on.
            append.push_str(" no5lvl");
            for reservation in &plan.reservations {
                match reservation {
                    Reservation::NoMap { base, size, .. } => {
                        append.push_str(&format!(" memmap={}M${base:#x}", size >> 20));
                    }
                    Reservation::Cma { name, .. } => {
                        bail!(
                            "x86 has no named CMA areas (plan {} asks for {name})",
                            plan.name
                        )
                    }
                }
            }
        }
        Arch::Arm64 => {
            let dtb = device_tree(&mut machine(arch, options)?, plan)?;
            qemu.arg("-dtb").arg(dtb);
        }
    }
    qemu.arg("-kernel")
        .arg(kernel.image())
        .arg("-initrd")
        .arg(initramfs)
        .arg("-append")
        .arg(&append)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());

    let step = progress::step(format!(
        "VM '{}' {}: qemu {} (timeout {}s)",
        plan.name,
        arch.name(),
        if options.kvm { "KVM" } else { "TCG" },
        plan.timeout.as_secs()
    ));
    let mut child = qemu.spawn().context("cannot start qemu")?;
    let (lines_tx, lines_rx) = mpsc::channel::<String>();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = lines_tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).split(b'\n') {
                let Ok(line) = line else { break };
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches('\r')
                    .to_owned();
                if tx.send(text).is_err() {
                    break;
                }
            }
        });
    }
    drop(lines_tx);

    let deadline = Instant::now() + plan.timeout;
    let mut parser = ConsoleParser {
        expected_denials: plan
            .selinux
            .as_ref()
            .map(|s| s.expected_denials.iter().cloned().collect())
            .unwrap_or_default(),
        ..ConsoleParser::default()
    };
    let mut timed_out = false;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match lines_rx.recv_timeout(remaining.max(Duration::from_millis(1))) {
            Ok(line) => {
                writeln!(log, "{line}")?;
                if let Some(shown) = parser.feed(&line, echo) {
                    println!("{shown}");
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                timed_out = true;
                let _ = child.kill();
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.wait();
    let results = parser.finish(timed_out, plan.timeout);
    let totals = report::Totals::of(&results);
    step.done(&totals.to_string());
    Ok(VmRun {
        results,
        console_log,
    })
}

/// The guest's memory and CPUs, the same on every architecture.
const GUEST_MEMORY_MIB: &str = "2048";
const GUEST_CPUS: &str = "2";

/// qemu for `arch`, with the machine, CPU, memory and console set, but no kernel yet.
fn machine(arch: Arch, options: VmOptions) -> Result<Command> {
    let mut qemu = match arch {
        Arch::X86_64 => Command::new("qemu-system-x86_64"),
        Arch::Arm64 => {
            if options.kvm {
                bail!("--kvm needs a host of the guest's architecture; arm64 guests run under TCG");
            }
            let mut qemu = Command::new("qemu-system-aarch64");
            qemu.args(["-machine", "virt"]);
            qemu
        }
    };
    let accel = if options.kvm { "kvm" } else { "tcg" };
    qemu.args(["-accel", accel, "-cpu", "max"]);
    if options.icount {
        if options.kvm {
            bail!("-icount is a TCG mode; it cannot be combined with --kvm");
        }
        // align=off: never slow the guest down to real time; sleep=off: an idle guest's clock
        // jumps to its next timer instead of waiting for the host's.
        qemu.args(["-icount", "shift=0,align=off,sleep=off"]);
    }
    qemu.args([
        "-m",
        GUEST_MEMORY_MIB,
        "-smp",
        GUEST_CPUS,
        "-display",
        "none",
        "-serial",
        "stdio",
        "-monitor",
        "none",
        "-no-reboot",
    ]);
    Ok(qemu)
}

fn console(arch: Arch) -> &'static str {
    match arch {
        Arch::X86_64 => "ttyS0",
        Arch::Arm64 => "ttyAMA0",
    }
}

/// The arm64 `virt` machine's own device tree (as qemu generates it for these options) with the
/// plan's reservations added as `reserved-memory` nodes, the way a phone's device tree declares
/// carveouts and CMA areas.
fn device_tree(qemu: &mut Command, plan: &Plan) -> Result<PathBuf> {
    let base = paths::scratch().join(format!("virt-{}", plan.name));
    let dumped = base.with_extension("qemu.dtb");
    cmd::run(
        qemu.arg("-machine")
            .arg(format!("dumpdtb={}", dumped.display()))
            .stdout(Stdio::null()),
    )
    .context("qemu could not dump the virt machine's device tree")?;
    let source = cmd::output(
        Command::new("dtc")
            .args(["-q", "-I", "dtb", "-O", "dts"])
            .arg(&dumped),
    )
    .context("dtc (Debian package device-tree-compiler) could not read qemu's device tree")?;
    let source = with_reservations(&source, &plan.reservations)?;
    let dts = base.with_extension("dts");
    std::fs::write(&dts, &source)?;
    let dtb = base.with_extension("dtb");
    cmd::run(
        Command::new("dtc")
            .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
            .arg(&dtb)
            .arg(&dts),
    )?;
    Ok(dtb)
}

/// Adds a `reserved-memory` node to a device-tree source whose root has `#address-cells` and
/// `#size-cells` of 2 (qemu's `virt`).
fn with_reservations(source: &str, reservations: &[Reservation]) -> Result<String> {
    if source.contains("reserved-memory") {
        bail!("qemu's device tree already has a reserved-memory node");
    }
    let cells = |v: u64| format!("{:#x} {:#x}", v >> 32, v & 0xffff_ffff);
    let mut node = String::from(
        "\treserved-memory {\n\t\t#address-cells = <0x02>;\n\t\t#size-cells = <0x02>;\n\t\tranges;\n",
    );
    for reservation in reservations {
        match reservation {
            Reservation::NoMap { name, base, size } => node.push_str(&format!(
                "\t\t{name}@{base:x} {{\n\t\t\treg = <{} {}>;\n\t\t\tno-map;\n\t\t}};\n",
                cells(*base),
                cells(*size)
            )),
            Reservation::Cma { name, size } => node.push_str(&format!(
                "\t\t{name} {{\n\t\t\tcompatible = \"shared-dma-pool\";\n\t\t\treusable;\n\t\t\tsize = <{}>;\n\t\t\talignment = <{}>;\n\t\t}};\n",
                cells(*size),
                cells(4 << 20)
            )),
        }
    }
    node.push_str("\t};\n");
    // The root node's closing brace is the last one in the file.
    let end = source
        .rfind("};")
        .context("the device-tree source has no root node")?;
    Ok(format!("{}{node}{}", &source[..end], &source[end..]))
}

/// Follows the markers the guest's /init prints (see `guest::init_script`).
#[derive(Default)]
struct ConsoleParser {
    results: Vec<TestResult>,
    current: Option<OpenSuite>,
    in_dmesg: bool,
    guest_up: bool,
    guest_done: bool,
    kernel_trouble: Vec<String>,
    /// SELinux AVC denials seen in the kernel log, and the ones the plan provokes on purpose:
    /// the two sets must be equal.
    denials: BTreeSet<Denial>,
    expected_denials: BTreeSet<Denial>,
}

struct OpenSuite {
    name: String,
    format: Format,
    context: String,
    first_result: usize,
}

impl ConsoleParser {
    /// Records one console line; returns what to show a person, if anything.
    fn feed(&mut self, line: &str, echo: Echo) -> Option<String> {
        if line == "@@DMESG-BEGIN" {
            self.in_dmesg = true;
            return None;
        }
        if line == "@@DMESG-END" {
            self.in_dmesg = false;
            return None;
        }
        if KERNEL_TROUBLE.iter().any(|pattern| line.contains(pattern))
            && !self.kernel_trouble.iter().any(|l| l == line)
        {
            self.kernel_trouble.push(line.to_owned());
        }
        if let Some(denials) = Denial::parse(line) {
            self.denials.extend(denials);
        }
        if self.in_dmesg {
            return None;
        }
        if line == "@@GUEST-UP" {
            self.guest_up = true;
            return (echo == Echo::Everything).then(|| "guest| (init started)".to_owned());
        }
        if line == "@@GUEST-DONE" {
            self.guest_done = true;
            return None;
        }
        if let Some(rest) = line.strip_prefix("@@CHECK ") {
            let mut words = rest.splitn(3, ' ');
            if let (Some(suite), Some(verdict), Some(name)) =
                (words.next(), words.next(), words.next())
            {
                let outcome = if verdict == "ok" {
                    Outcome::Passed
                } else {
                    Outcome::Failed
                };
                self.push(suite, name.to_owned(), outcome);
                return Some(format!(
                    "  [{}] {name}",
                    if outcome == Outcome::Passed {
                        "ok"
                    } else {
                        "FAILED"
                    }
                ));
            }
        }
        if let Some(rest) = line.strip_prefix("@@SUITE-BEGIN ") {
            let (name, format) = rest.split_once(' ').unwrap_or((rest, "tap"));
            self.current = Some(OpenSuite {
                name: name.to_owned(),
                format: Format::parse(format).unwrap_or(Format::Tap),
                context: String::new(),
                first_result: self.results.len(),
            });
            return Some(format!("  suite {name}:"));
        }
        if let Some(rest) = line.strip_prefix("@@SUITE-END ") {
            let status: i32 = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1);
            if let Some(open) = self.current.take() {
                self.close_suite(open, Some(status));
            }
            return None;
        }
        if let Some(open) = &mut self.current {
            if let Some((name, outcome)) = report::parse_line(open.format, line, &mut open.context)
            {
                let suite = open.name.clone();
                self.push(&suite, name.clone(), outcome);
                let verdict = match outcome {
                    Outcome::Passed => "ok",
                    Outcome::Failed => "FAILED",
                    Outcome::Skipped => "skipped",
                };
                return Some(format!("    [{verdict}] {name}"));
            }
        }
        match echo {
            Echo::Everything => Some(format!("guest| {line}")),
            Echo::Readable if self.guest_up && self.current.is_none() && !line.starts_with('[') => {
                Some(line.to_owned())
            }
            Echo::Readable => None,
        }
    }

    fn push(&mut self, suite: &str, name: String, outcome: Outcome) {
        self.results.push(TestResult {
            suite: suite.to_owned(),
            name,
            outcome,
        });
    }

    fn close_suite(&mut self, open: OpenSuite, status: Option<i32>) {
        let own = &self.results[open.first_result..];
        let any_failed = own.iter().any(|r| r.outcome == Outcome::Failed);
        match status {
            None => self.push(
                &open.name,
                "finished (the guest stopped in the middle of it)".into(),
                Outcome::Failed,
            ),
            Some(_) if own.is_empty() => self.push(
                &open.name,
                "reported at least one test".into(),
                Outcome::Failed,
            ),
            Some(code) if code != 0 && !any_failed => self.push(
                &open.name,
                format!("exited with status {code} without a failing test"),
                Outcome::Failed,
            ),
            Some(_) => {}
        }
    }

    /// No AVC denial but the expected ones, and each expected one seen.
    fn check_denials(&mut self) {
        let unexpected: Vec<String> = self
            .denials
            .difference(&self.expected_denials)
            .map(Denial::to_string)
            .collect();
        if unexpected.is_empty() {
            self.push(
                "vm",
                "kernel log free of unexpected SELinux denials".into(),
                Outcome::Passed,
            );
        } else {
            eprintln!("unexpected SELinux denials:");
            for d in &unexpected {
                eprintln!("  {d}");
            }
            self.push(
                "vm",
                format!(
                    "kernel log free of unexpected SELinux denials: {} ({} in all)",
                    unexpected[0],
                    unexpected.len()
                ),
                Outcome::Failed,
            );
        }
        let expected: Vec<Denial> = self.expected_denials.iter().cloned().collect();
        for d in expected {
            let outcome = if self.denials.contains(&d) {
                Outcome::Passed
            } else {
                Outcome::Failed
            };
            self.push(
                "selinux",
                format!("the kernel denied {d} (seen in the kernel log)"),
                outcome,
            );
        }
    }

    fn finish(mut self, timed_out: bool, timeout: Duration) -> Vec<TestResult> {
        if let Some(open) = self.current.take() {
            self.close_suite(open, None);
        }
        let (name, outcome) = if timed_out {
            (
                format!(
                    "guest finished its plan (timed out after {}s)",
                    timeout.as_secs()
                ),
                Outcome::Failed,
            )
        } else if !self.guest_done {
            (
                "guest finished its plan (it stopped early: panic or crash)".to_owned(),
                Outcome::Failed,
            )
        } else {
            ("guest finished its plan".to_owned(), Outcome::Passed)
        };
        self.push("vm", name, outcome);
        self.check_denials();
        if self.kernel_trouble.is_empty() {
            self.push(
                "vm",
                "kernel log free of BUG/WARNING/Oops/panic".into(),
                Outcome::Passed,
            );
        } else {
            eprintln!("kernel log trouble:");
            for line in &self.kernel_trouble {
                eprintln!("  {line}");
            }
            self.push(
                "vm",
                format!(
                    "kernel log free of BUG/WARNING/Oops/panic: {}",
                    self.kernel_trouble[0]
                ),
                Outcome::Failed,
            );
        }
        self.results
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(lines: &[&str], timed_out: bool) -> Vec<(String, String, Outcome)> {
        let mut parser = ConsoleParser::default();
        for line in lines {
            parser.feed(line, Echo::Everything);
        }
        parser
            .finish(timed_out, Duration::from_secs(5))
            .into_iter()
            .map(|r| (r.suite, r.name, r.outcome))
            .collect()
    }

    #[test]
    fn reservations_become_reserved_memory_nodes_inside_the_root() {
        let source = "/dts-v1/;\n\n/ {\n\t#address-cells = <0x02>;\n\tchosen {\n\t};\n};\n";
        let out = with_reservations(
            source,
            &[
                Reservation::NoMap {
                    name: "carve",
                    base: 0x1_b000_0000,
                    size: 64 << 20,
                },
                Reservation::Cma {
                    name: "area",
                    size: 32 << 20,
                },
            ],
        )
        .unwrap();
        assert!(out.contains(
            "carve@1b0000000 {\n\t\t\treg = <0x1 0xb0000000 0x0 0x4000000>;\n\t\t\tno-map;"
        ));
        assert!(out.contains("area {\n\t\t\tcompatible = \"shared-dma-pool\";\n\t\t\treusable;\n\t\t\tsize = <0x0 0x2000000>;"));
        assert!(
            out.ends_with("\t};\n};\n"),
            "the node must close inside the root: {out}"
        );
        assert!(with_reservations(&out, &[]).is_err());
    }

    #[test]
    fn a_clean_run_yields_checks_suite_tests_and_vm_verdicts() {
        let got = parse(
            &[
                "@@GUEST-UP",
                "@@CHECK testbed ok binderfs mounted",
                "@@SUITE-BEGIN ks tap",
                "ok 1 first",
                "@@SUITE-END ks 0",
                "@@DMESG-BEGIN",
                "[    0.1] booted",
                "@@DMESG-END",
                "@@GUEST-DONE",
            ],
            false,
        );
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got.iter().all(|(_, _, o)| *o == Outcome::Passed), "{got:?}");
    }

    #[test]
    fn warnings_in_dmesg_fail_the_kernel_log_check() {
        let got = parse(
            &[
                "@@GUEST-UP",
                "@@DMESG-BEGIN",
                "[ 1.0] WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:1",
                "@@DMESG-END",
                "@@GUEST-DONE",
            ],
            false,
        );
        let log = got
            .iter()
            .find(|(s, n, _)| s == "vm" && n.starts_with("kernel log free of BUG"))
            .unwrap();
        assert_eq!(log.2, Outcome::Failed);
    }

    #[test]
    fn avc_denials_must_be_exactly_the_expected_ones() {
        let denial = |source: &str| {
            format!(
                "[ 9.1] audit: type=1400 audit(1.1:4): avc:  denied  {{ call }} for  pid=9 comm=\"p\" \
                 scontext=u:r:{source}:s0 tcontext=u:r:hal_dmaheap_default:s0 tclass=binder permissive=0"
            )
        };
        let run = |lines: &[String], expected: &[Denial]| {
            let mut parser = ConsoleParser {
                expected_denials: expected.iter().cloned().collect(),
                ..ConsoleParser::default()
            };
            for line in lines {
                parser.feed(line, Echo::Everything);
            }
            parser.feed("@@GUEST-DONE", Echo::Everything);
            parser
                .finish(false, Duration::from_secs(5))
                .into_iter()
                .filter(|r| r.outcome == Outcome::Failed)
                .map(|r| r.name)
                .collect::<Vec<_>>()
        };
        let app_call = Denial::new("call", "untrusted_app", "hal_dmaheap_default", "binder");
        // Expected and seen: clean.
        assert!(run(&[denial("untrusted_app")], std::slice::from_ref(&app_call)).is_empty());
        // Seen but not expected: the run fails, naming it.
        let failed = run(
            &[denial("untrusted_app"), denial("mediacodec")],
            std::slice::from_ref(&app_call),
        );
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].contains("mediacodec"), "{failed:?}");
        // Expected but not seen: fails too.
        let failed = run(&[], std::slice::from_ref(&app_call));
        assert!(
            failed.iter().any(|n| n.contains("untrusted_app")),
            "{failed:?}"
        );
        // A plan without SELinux expects none.
        assert_eq!(run(&[denial("untrusted_app")], &[]).len(), 1);
    }

    #[test]
    fn a_timeout_and_an_unfinished_suite_are_failures() {
        let got = parse(&["@@GUEST-UP", "@@SUITE-BEGIN ks tap", "ok 1 first"], true);
        assert!(got.iter().any(|(s, n, o)| s == "ks"
            && n.contains("stopped in the middle")
            && *o == Outcome::Failed));
        assert!(got
            .iter()
            .any(|(s, n, o)| s == "vm" && n.contains("timed out") && *o == Outcome::Failed));
    }

    #[test]
    fn a_suite_that_crashes_without_failing_lines_still_fails() {
        let got = parse(
            &[
                "@@SUITE-BEGIN s libtest",
                "test a ... ok",
                "@@SUITE-END s 101",
                "@@SUITE-BEGIN e tap",
                "@@SUITE-END e 0",
                "@@GUEST-DONE",
            ],
            false,
        );
        assert!(got
            .iter()
            .any(|(s, n, o)| s == "s" && n.contains("status 101") && *o == Outcome::Failed));
        assert!(got
            .iter()
            .any(|(s, n, o)| s == "e" && n.contains("at least one") && *o == Outcome::Failed));
    }
}
