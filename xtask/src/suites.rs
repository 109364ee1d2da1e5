//! What runs in the VM, for `cargo xtask test`, `demo` and `bench`.
//!
//! This is the one file a feature edits to put itself into the VM. A plan lists:
//! - `programs`: what goes into the initramfs under /bin (workspace binaries and test targets,
//!   built static for x86_64-unknown-linux-musl; rsbinder's tools; kernel selftests built from the
//!   test kernel's tree);
//! - `modules`: out-of-tree kernel modules, built with `make -C $KDIR M=... LLVM=1` from a copy of
//!   their directory and installed under /lib/modules;
//! - `files`: repository files copied into the guest (policies, configs);
//! - `steps`, run in order by the guest's /init:
//!   - `check(suite, name, shell)`: one test, passed when the shell snippet exits 0;
//!   - `suite(name, format, shell)`: a test program whose output is parsed as TAP or libtest, one
//!     result per test line; a non-zero exit without a failing test line, or no test line at
//!     all, counts as a failure;
//!   - `background(shell)`: a daemon (service manager, HAL service), output to /tmp/<name>.log;
//!   - `show(shell)`: output for people, not parsed (the demo).
//!
//! Every plan ends with a kernel-log check: any BUG/WARNING/Oops/KASAN/panic line fails the run.

use std::time::Duration;

use crate::kernel::{Arch, Variant};
use crate::report::Format;

#[derive(Debug, Clone)]
pub enum Program {
    /// A binary target of a workspace crate.
    CargoBin {
        package: &'static str,
        bin: &'static str,
    },
    /// A test target of a workspace crate (libtest harness), installed under `install_as`.
    CargoTest {
        package: &'static str,
        test: &'static str,
        install_as: &'static str,
    },
    /// A binary from the rsbinder-tools crate (`rsb_hub`, `rsb_device`).
    RsbinderTool(&'static str),
    /// A kernel selftest source file, relative to the kernel tree, built static against its UAPI.
    KernelSelftest {
        source: &'static str,
        install_as: &'static str,
    },
    /// A C or C++ source file of the repository, linked static against libdmaheap's staticlib
    /// as a vendor HAL links the library: the C ABI and the C++ header tested from outside Rust.
    NativeClient {
        source: &'static str,
        language: Language,
        install_as: &'static str,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    C,
    Cxx,
}

#[derive(Debug, Clone)]
pub struct KernelModule {
    /// Directory in the repository holding the Kbuild/Makefile.
    pub source_dir: &'static str,
    /// The `.ko` it produces; installed as /lib/modules/<ko>.
    pub ko: &'static str,
}

#[derive(Debug, Clone)]
pub enum GuestStep {
    Check {
        suite: &'static str,
        name: String,
        shell: String,
    },
    Suite {
        name: &'static str,
        format: Format,
        shell: String,
    },
    Background {
        name: &'static str,
        shell: String,
    },
    Show {
        shell: String,
    },
    /// First-stage init's SELinux hand-over: /init (kernel domain) loads the plan's policy,
    /// labels the programs init runs and sets enforcing (`setool first-stage`), then re-executes
    /// busybox on /init.second-stage, which runs every later step in the init domain.
    EnterSelinux,
}

/// Physical memory a plan reserves at boot for the heap module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// A range the kernel neither maps nor manages (a carveout): `memmap=SIZE$BASE` on x86, a
    /// `no-map` reserved-memory node in the device tree on arm64, as on a phone.
    NoMap {
        name: &'static str,
        base: u64,
        size: u64,
    },
    /// A named CMA area: a reusable `shared-dma-pool` node in the device tree (arm64 only; x86
    /// has just the default area).
    Cma { name: &'static str, size: u64 },
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub name: &'static str,
    pub arch: Arch,
    /// The kernel it boots: the checked one, or the one without debugging options for benchmarks.
    pub kernel: Variant,
    pub programs: Vec<Program>,
    pub modules: Vec<KernelModule>,
    /// (repository path, guest path)
    pub files: Vec<(&'static str, &'static str)>,
    pub steps: Vec<GuestStep>,
    /// Extra kernel command-line arguments.
    pub kernel_args: Vec<String>,
    pub reservations: Vec<Reservation>,
    /// The policy, labels and expected AVC denials of a plan with an `EnterSelinux` step.
    pub selinux: Option<crate::selinux::Setup>,
    pub timeout: Duration,
}

pub fn check(suite: &'static str, name: &str, shell: &str) -> GuestStep {
    GuestStep::Check {
        suite,
        name: name.to_owned(),
        shell: shell.to_owned(),
    }
}

pub fn suite(name: &'static str, format: Format, shell: &str) -> GuestStep {
    GuestStep::Suite {
        name,
        format,
        shell: shell.to_owned(),
    }
}

pub fn background(name: &'static str, shell: &str) -> GuestStep {
    GuestStep::Background {
        name,
        shell: shell.to_owned(),
    }
}

pub fn show(shell: &str) -> GuestStep {
    GuestStep::Show {
        shell: shell.to_owned(),
    }
}

const BINDER_SMOKE_SERVICE: &str = "testbed.smoke.IBufferSmoke/default";

/// The kernel's dma-buf-heap selftest, over every heap in /dev/dma_heap.
fn kselftest() -> Program {
    Program::KernelSelftest {
        source: "tools/testing/selftests/dmabuf-heaps/dmabuf-heap.c",
        install_as: "kselftest-dmabuf-heap",
    }
}

fn binder_programs() -> Vec<Program> {
    vec![
        Program::RsbinderTool("rsb_device"),
        Program::RsbinderTool("rsb_hub"),
        Program::CargoBin {
            package: "binder-smoke",
            bin: "binder-smoke",
        },
    ]
}

/// binderfs, a binder device and the service manager: what every binder step needs first.
fn binder_setup() -> Vec<GuestStep> {
    vec![
        check(
            "testbed",
            "binderfs mounted with a binder device",
            "rsb_device binder && test -c /dev/binderfs/binder",
        ),
        background("service-manager", "rsb_hub --insecure-allow-all"),
        check(
            "testbed",
            "service manager process started",
            "for i in $(seq 50); do pidof rsb_hub >/dev/null && exit 0; sleep 0.1; done; exit 1",
        ),
    ]
}

/// The smoke service registered and waited for, so later steps can talk to it.
fn binder_smoke_service() -> Vec<GuestStep> {
    vec![
        background("binder-smoke-service", "binder-smoke serve"),
        check(
            "testbed",
            "smoke service registered",
            &format!(
                "for i in $(seq 100); do grep -q registered /tmp/binder-smoke-service.log && exit 0; sleep 0.1; done; \
                 cat /tmp/binder-smoke-service.log; exit 1 # {BINDER_SMOKE_SERVICE}"
            ),
        ),
    ]
}

/// The Rust dma-buf heap module (heaps-kmod/), built against the test kernel.
fn heaps_kmod() -> KernelModule {
    KernelModule {
        source_dir: "heaps-kmod",
        ko: "dmaheap_heaps.ko",
    }
}

/// The test-only dma-buf importer (heaps-kmod/tests/importer/): devices with DMA segment limits
/// that map the heaps' buffers in a chosen direction, for the module's suite and the stress.
fn test_importer() -> KernelModule {
    KernelModule {
        source_dir: "heaps-kmod/tests/importer",
        ko: "dmaheap_test_importer.ko",
    }
}

/// Loads the test importer: its misc device and one root device per segment limit.
fn test_importer_load() -> GuestStep {
    check(
        "heaps-kmod",
        "test importer loads: /dev/dmaheap_test_importer and its devices for 4 KiB, 64 KiB, 1 MiB and unlimited segments",
        "insmod /lib/modules/dmaheap_test_importer.ko && test -c /dev/dmaheap_test_importer && \
         for s in 4k 64k 1m none; do test -d /sys/devices/dmaheap_test_importer_seg$s || exit 1; done",
    )
}

/// The randomized stress of issue 8: four processes for 60 s on both architectures (arm64 runs
/// under TCG about as fast as x86 does here, and the stress counts operations, not time).
const STRESS_SECS: u32 = 60;

/// After every suite: DMA-API debugging counted exactly the errors the suite made on purpose
/// (heaps-kmod-tests records them; their reports were muted, so only the count shows them), and
/// the test importer unloads (kmemleak then checks it left nothing behind).
fn dma_api_and_importer_final() -> Vec<GuestStep> {
    vec![
        check(
            "heaps-kmod",
            "DMA-API debugging counted no error except those the suite made on purpose",
            "errors=$(cat /sys/kernel/debug/dma-api/error_count) && \
             deliberate=$(cat /tmp/dma-api-deliberate-errors 2>/dev/null || echo 0) && \
             echo \"error_count $errors, deliberate $deliberate\" && test \"$errors\" = \"$deliberate\"",
        ),
        check(
            "heaps-kmod",
            "test importer unloads",
            "rmmod dmaheap_test_importer && ! test -e /dev/dmaheap_test_importer",
        ),
    ]
}

/// The carveout range each architecture's VM reserves at boot (64 MiB at 768 MiB on x86; near
/// the top of the 2 GiB that qemu's arm64 `virt` machine maps at 1 GiB).
fn carveout(arch: Arch) -> Reservation {
    let base = match arch {
        Arch::X86_64 => 0x3000_0000,
        Arch::Arm64 => 0xb000_0000,
    };
    Reservation::NoMap {
        name: "dmaheap-carveout",
        base,
        size: 64 << 20,
    }
}

/// A CMA area of its own on arm64, declared in the device tree the way a phone declares its
/// camera or video CMA areas; x86 can only offer the default area.
const NAMED_CMA_AREA: &str = "dmaheap-cma";

fn reservations(arch: Arch) -> Vec<Reservation> {
    let mut all = vec![carveout(arch)];
    if arch == Arch::Arm64 {
        all.push(Reservation::Cma {
            name: NAMED_CMA_AREA,
            size: 64 << 20,
        });
    }
    all
}

/// The test bed keeps the kernel's built-in `system` heap, so the module loads under other names.
/// The carveout heap takes the range `carveout()` reserves at boot; on arm64 the uncached CMA
/// heap takes the device tree's named area, so that lookup by name is exercised.
fn heaps_kmod_insmod(arch: Arch) -> String {
    let Reservation::NoMap { base, size, .. } = carveout(arch) else {
        unreachable!("carveout() is a no-map range")
    };
    let uncached_cma_area = match arch {
        Arch::X86_64 => "default",
        Arch::Arm64 => NAMED_CMA_AREA,
    };
    format!(
        "insmod /lib/modules/dmaheap_heaps.ko \
         system_name=kmod-system system_uncached_name=kmod-system-uncached \
         cma_heaps=kmod-cma:default,kmod-cma-uncached:{uncached_cma_area}:uncached \
         carveout_heaps=kmod-carveout:{base:#x}:{}M",
        size >> 20
    )
}

/// Loads the heap module: first under its GKI default names, which must fail cleanly because
/// `system` is taken, then under the test-bed names.
fn heaps_kmod_load(arch: Arch) -> Vec<GuestStep> {
    vec![
        check(
            "heaps-kmod",
            "loading under the default names fails: 'system' is taken",
            "! insmod /lib/modules/dmaheap_heaps.ko 2>/dev/null && \
             dmesg | grep -q \"dmaheap_heaps: a dma-heap named 'system' is already registered\" && \
             ! test -e /sys/kernel/dmaheap_heaps",
        ),
        check(
            "heaps-kmod",
            "module loads and registers kmod-system, kmod-system-uncached, kmod-cma, kmod-cma-uncached, kmod-carveout",
            &format!(
                "{} && for h in kmod-system kmod-system-uncached kmod-cma kmod-cma-uncached kmod-carveout; do \
                 test -c /dev/dma_heap/$h && test -d /sys/kernel/dmaheap_heaps/$h || exit 1; done",
                heaps_kmod_insmod(arch)
            ),
        ),
    ]
}

/// The heap module's load-time guards, run before the suite's own load (`heaps_kmod_load_probed`):
/// a heap name with '%' (the 6.12 dma-heap core uses the name as a format string) is refused
/// before anything is registered, and loads that fail after everything was set up (the first
/// heap's registration fails, through the module's `fail_heap_add` fault knob) give everything
/// back: the carveout's range, sysfs and debugfs, the worker thread. (busybox's insmod retries a
/// failed `finit_module` with `init_module`, so each attempt loads twice.) Ten failed loads in a row
/// let KASAN see a worker that exits before `kthread_stop`; kmemleak at the end of the plan sees
/// anything left allocated.
fn heaps_kmod_load_guards(arch: Arch) -> Vec<GuestStep> {
    // 2 MiB of the guest's RAM, 128 MiB into it: System RAM on every boot of the test bed.
    let ram = match arch {
        Arch::X86_64 => 0x0800_0000u64,
        Arch::Arm64 => 0x4800_0000u64,
    };
    vec![
        check(
            "heaps-kmod",
            "a carveout over System RAM is refused with a clear error before anything is claimed",
            &format!(
                "! insmod /lib/modules/dmaheap_heaps.ko system_name= system_uncached_name= \
                 carveout_heaps=kmod-ram:{ram:#x}:2M 2>/dev/null && \
                 dmesg | grep -q 'carveout kmod-ram: {ram:#x}+0x200000 overlaps System RAM' && \
                 ! grep -q 'dmaheap carveout' /proc/iomem && ! test -e /sys/kernel/dmaheap_heaps"
            ),
        ),
        check(
            "heaps-kmod",
            "a heap name with '%' is refused before anything is registered",
            "! insmod /lib/modules/dmaheap_heaps.ko system_name=kmod-%n system_uncached_name=kmod-x-uncached \
             2>/dev/null && dmesg | grep -q \"invalid heap name 'kmod-%n'\" && \
             ! test -e /sys/kernel/dmaheap_heaps && ! ls /dev/dma_heap | grep -q kmod-",
        ),
        check(
            "heaps-kmod",
            "ten loads that fail at the first registration leave nothing behind",
            &format!(
                "for i in 1 2 3 4 5 6 7 8 9 10; do ! {} fail_heap_add=kmod-system stop_delay_ms=300 2>/dev/null || exit 1; done; \
                 test $(dmesg | grep -c \"fail_heap_add: failing the registration of 'kmod-system'\") -ge 10 && \
                 ! test -e /sys/kernel/dmaheap_heaps && ! test -e /sys/kernel/debug/dmaheap_heaps && \
                 ! grep -q 'dmaheap carveout' /proc/iomem && ! grep -q dmaheap_heaps /proc/modules && \
                 ! ls /dev/dma_heap | grep -q kmod-",
                heaps_kmod_insmod(arch)
            ),
        ),
    ]
}

/// The suite's load: as `heaps_kmod_load`, plus one more CMA heap whose registration fails (the
/// `fail_heap_add` knob) after others were registered: the module stays loaded with the others
/// and frees that heap (kmemleak at the end of the plan would report it otherwise).
fn heaps_kmod_load_probed(arch: Arch) -> Vec<GuestStep> {
    let insmod = heaps_kmod_insmod(arch).replace(
        "cma_heaps=kmod-cma:default,",
        "cma_heaps=kmod-cma:default,kmod-cma-doomed:default,",
    ) + " fail_heap_add=kmod-cma-doomed";
    let mut steps = heaps_kmod_load(arch);
    steps[1] = check(
        "heaps-kmod",
        "module loads and registers kmod-system, kmod-system-uncached, kmod-cma, kmod-cma-uncached, kmod-carveout",
        &format!(
            "{insmod} && for h in kmod-system kmod-system-uncached kmod-cma kmod-cma-uncached kmod-carveout; do \
             test -c /dev/dma_heap/$h && test -d /sys/kernel/dmaheap_heaps/$h || exit 1; done"
        ),
    );
    steps.push(check(
        "heaps-kmod",
        "a heap whose registration fails after others is not left behind",
        "dmesg | grep -q \"registering heap 'kmod-cma-doomed' failed\" && \
         ! test -e /dev/dma_heap/kmod-cma-doomed && ! test -e /sys/kernel/dmaheap_heaps/kmod-cma-doomed && \
         ! test -e /sys/kernel/debug/dmaheap_heaps/kmod-cma-doomed",
    ));
    let mut all = heaps_kmod_load_guards(arch);
    all.extend(steps);
    all
}

/// Where the allocator HAL's policy goes in the guest (a device has it in /vendor/etc/dmaheap/).
const HAL_POLICY: &str = "/etc/dmaheap/policy.toml";

/// The allocator HAL (issue 3): its service, CLI and demo client.
fn hal_programs() -> Vec<Program> {
    vec![
        Program::CargoBin {
            package: "dmaheap-service",
            bin: "dmaheap-service",
        },
        Program::CargoBin {
            package: "dmaheapctl",
            bin: "dmaheapctl",
        },
        Program::CargoBin {
            package: "dmaheapctl",
            bin: "dmaheap-demo",
        },
    ]
}

fn hal_files() -> Vec<(&'static str, &'static str)> {
    vec![("service/policy/testbed.toml", HAL_POLICY)]
}

/// The HAL service refusing a bad policy, then started on the test-bed policy and registered.
/// Needs `binder_setup()` first.
fn hal_service() -> Vec<GuestStep> {
    vec![
        check(
            "hal",
            "an invalid policy is refused with its line by --check",
            "printf '[[heap]]\\nname = \"system\"\\ncahced = true\\n' > /tmp/bad-policy.toml; \
             ! dmaheap-service --check --policy /tmp/bad-policy.toml 2>/tmp/bad-policy.log && \
             grep -q 'bad-policy.toml' /tmp/bad-policy.log && grep -q 'line 3' /tmp/bad-policy.log",
        ),
        // A missing or invalid file must not leave gralloc waiting for the HAL (and the
        // display dark): one error line, then the built-in fallback, registered at once.
        check(
            "hal",
            "with an invalid policy the service logs one error and serves the built-in fallback, registered",
            "dmaheap-service --policy /tmp/bad-policy.toml 2>/tmp/bad-policy-wait.log & pid=$!; \
             for i in $(seq 100); do grep -q 'registered vendor.dmaheap.IHeapAllocator/default' \
             /tmp/bad-policy-wait.log && break; sleep 0.1; done; sleep 1; \
             kill -0 $pid || { cat /tmp/bad-policy-wait.log; exit 1; }; \
             dmaheapctl dump > /tmp/bad-policy-dump.txt 2>&1; kill $pid; wait $pid; \
             cat /tmp/bad-policy-wait.log; \
             test $(grep -c ERROR /tmp/bad-policy-wait.log) = 1 && \
             grep ERROR /tmp/bad-policy-wait.log | grep -q 'bad-policy.toml:3' && \
             grep -q 'registered vendor.dmaheap.IHeapAllocator/default' /tmp/bad-policy-wait.log && \
             grep -q '^FALLBACK' /tmp/bad-policy-dump.txt",
        ),
        check(
            "hal",
            "the test-bed policy validates",
            &format!("dmaheap-service --check --policy {HAL_POLICY} >/dev/null"),
        ),
        background(
            "dmaheap-service",
            &format!("dmaheap-service --policy {HAL_POLICY}"),
        ),
        check(
            "hal",
            "service registered as vendor.dmaheap.IHeapAllocator/default",
            "for i in $(seq 100); do grep -q 'registered vendor.dmaheap.IHeapAllocator/default' \
             /tmp/dmaheap-service.log && exit 0; sleep 0.1; done; cat /tmp/dmaheap-service.log; exit 1",
        ),
    ]
}

/// The HAL's VTS suite and CLI checks, against the running service.
fn hal_checks() -> Vec<GuestStep> {
    vec![
        // Several VTS tests count the service's fds: one test at a time.
        suite(
            "hal-vts",
            Format::Libtest,
            "timeout 400 dmaheap-vts --test-threads=1",
        ),
        // Hostile clients by uid (dmaheapctl run under other uids): after the VTS suite, whose
        // fd counts they must not disturb.
        suite(
            "hal-hostile",
            Format::Libtest,
            "timeout 300 dmaheap-hostile --test-threads=1",
        ),
        check(
            "hal",
            "dmaheapctl lists the heaps with the built-in system heap present",
            "dmaheapctl heaps | grep -Eq '^system +yes'",
        ),
        check(
            "hal",
            "dmaheapctl explains a usage without allocating",
            "dmaheapctl explain --usage 'GPU_TEXTURE|VIDEO_DECODER' | grep -q 'rule: *no-cpu-access'",
        ),
        check(
            "hal",
            "dmaheapctl allocates a zeroed batch and shows the counters as JSON",
            "dmaheapctl alloc --usage CPU_READ_OFTEN --size 1M --count 4 && \
             dmaheapctl --json stats | grep -q '\"allocations\"'",
        ),
        check(
            "hal",
            "the service survived the suite",
            "pidof dmaheap-service >/dev/null || { cat /tmp/dmaheap-service.log; exit 1; }",
        ),
    ]
}

/// A layout rule broken on purpose (`binder-wire conformance --break`) and the words of the
/// test that must then fail: the suite notices each rule it claims to check.
const WIRE_BREAKS: &[(&str, &str, &str)] = &[
    (
        "vndr-header",
        "a VNDR interface-token header",
        "Parcel::writeInterfaceToken",
    ),
    (
        "no-parcelable-size",
        "a parcelable without its size header",
        "int32 size header",
    ),
    (
        "wrong-union-tag",
        "a union with the wrong tag",
        "NDK union writeToParcel",
    ),
    (
        "no-stability-word",
        "a binder without its stability word",
        "finishFlattenBinder",
    ),
];

/// The libbinder wire-conformance suites (issue 17): the HAL over raw binder, each rule broken
/// once, and registration under every release's service-manager numbering. Needs
/// `hal_service()` first.
fn wire_conformance() -> Vec<GuestStep> {
    let mut steps = vec![suite(
        "binder-wire",
        Format::Tap,
        // The binder node's mode on a phone (ueventd.rc: /dev/binder 0666): the suite calls
        // as an app uid too.
        "chmod 0666 /dev/binderfs/binder && timeout 120 binder-wire conformance",
    )];
    for (flag, what, rule) in WIRE_BREAKS {
        steps.push(check(
            "binder-wire",
            &format!("{what} fails the test that names {rule}"),
            &format!(
                "timeout 120 binder-wire conformance --break {flag} > /tmp/break-{flag}.txt 2>&1; rc=$?; \
                 [ $rc -ne 0 ] && grep -q '^not ok .*{rule}' /tmp/break-{flag}.txt || \
                 {{ echo \"exit $rc\"; cat /tmp/break-{flag}.txt; exit 1; }}"
            ),
        ));
    }
    steps.push(suite(
        "binder-wire-registration",
        Format::Tap,
        &format!("timeout 300 binder-wire registration --policy {HAL_POLICY}"),
    ));
    steps
}

/// The C and C++ programs a vendor HAL would be (issue 17 item 4), linked static against
/// libdmaheap.
fn libdmaheap_programs() -> Vec<Program> {
    vec![
        Program::NativeClient {
            source: "libs/libdmaheap/tests/c_client.c",
            language: Language::C,
            install_as: "libdmaheap-c-client",
        },
        Program::NativeClient {
            source: "libs/libdmaheap/tests/cpp_client.cpp",
            language: Language::Cxx,
            install_as: "libdmaheap-cpp-client",
        },
        Program::CargoTest {
            package: "libdmaheap",
            test: "two_binder_stacks",
            install_as: "libdmaheap-two-stacks",
        },
    ]
    .into_iter()
    .chain(
        PORTING_EXAMPLES
            .iter()
            .map(|example| Program::NativeClient {
                source: example.source,
                language: Language::Cxx,
                install_as: example.install_as,
            }),
    )
    .collect()
}

struct PortingExample {
    source: &'static str,
    install_as: &'static str,
    /// What its exit status 0 shows.
    shows: &'static str,
}

/// The porting guide's examples (libs/libdmaheap/examples), each compiled like a vendor HAL and
/// run against the service: exit 0 means it got its buffers.
const PORTING_EXAMPLES: &[PortingExample] = &[
    PortingExample {
        source: "libs/libdmaheap/examples/gralloc_backend.cpp",
        install_as: "example-gralloc-backend",
        shows: "the gralloc backend example allocates 3 scanout-capable 1080p buffers",
    },
    PortingExample {
        source: "libs/libdmaheap/examples/camera_hal.cpp",
        install_as: "example-camera-hal",
        shows: "the camera HAL example allocates a stats buffer and reads it zeroed under sync",
    },
    PortingExample {
        source: "libs/libdmaheap/examples/codec2_store.cpp",
        install_as: "example-codec2-store",
        shows: "the Codec2 store example allocates a 2 MiB linear block",
    },
];

/// libdmaheap's C and C++ clients, its two-binder-stacks test and the porting guide's examples
/// against the running service. The C client and the two-stacks test each have the service
/// killed and started again mid-run. Needs `hal_service()` first and leaves the restarted
/// service running (logging to the same file).
fn libdmaheap_checks() -> Vec<GuestStep> {
    const REGISTERED: &str = "registered vendor.dmaheap.IHeapAllocator/default";
    let count_registrations = format!("grep -c '{REGISTERED}' /tmp/dmaheap-service.log");
    // Kills the service and starts it again, done once it registered one more time than the
    // REGISTERED_BEFORE the step exports.
    let restart = format!(
        "kill -KILL $(pidof dmaheap-service); \
         (dmaheap-service --policy {HAL_POLICY} >> /tmp/dmaheap-service.log 2>&1 &); \
         for i in $(seq 100); do \
         [ $({count_registrations}) -gt $REGISTERED_BEFORE ] && exit 0; sleep 0.1; done; exit 1"
    );
    let with_restart = |program: &str| {
        format!(
            "export REGISTERED_BEFORE=$({count_registrations}) \
             DMAHEAP_RESTART_CMD={restart}; timeout 120 {program}",
            restart = crate::guest::quote(&restart)
        )
    };
    vec![
        suite(
            "libdmaheap-c",
            Format::Tap,
            &with_restart("libdmaheap-c-client --restart-cmd \"$DMAHEAP_RESTART_CMD\""),
        ),
        suite(
            "libdmaheap-cpp",
            Format::Tap,
            "timeout 60 libdmaheap-cpp-client",
        ),
        suite(
            "libdmaheap-two-stacks",
            Format::Tap,
            &with_restart("libdmaheap-two-stacks"),
        ),
    ]
    .into_iter()
    .chain(PORTING_EXAMPLES.iter().map(|example| {
        check(
            "libdmaheap",
            example.shows,
            &format!("timeout 60 {}", example.install_as),
        )
    }))
    .collect()
}

/// Every plan boots the same stack: the heap module, with the carveout range reserved at boot,
/// and the allocator HAL's policy.
fn stack_plan(
    name: &'static str,
    arch: Arch,
    kernel: Variant,
    programs: Vec<Program>,
    steps: Vec<GuestStep>,
    timeout: Duration,
) -> Plan {
    Plan {
        name,
        arch,
        kernel,
        programs,
        modules: vec![heaps_kmod()],
        files: hal_files(),
        steps,
        kernel_args: Vec::new(),
        reservations: reservations(arch),
        selinux: None,
        timeout,
    }
}

/// Programs of the SELinux phase: setool (init's SELinux set-up) and the probe client.
fn selinux_programs() -> Vec<Program> {
    ["setool", "dmaheap-probe"]
        .into_iter()
        .map(|bin| Program::CargoBin {
            package: "testbed-selinux",
            bin,
        })
        .collect()
}

/// The executables of the SELinux phase, at the paths whose file_contexts labels put them into
/// their domains (the platform's and the vendor's, or the test bed's for the app).
const SE_SERVICE_MANAGER: &str = "/system/bin/servicemanager";
const SE_HAL: &str = "/vendor/bin/hw/vendor.dmaheap-service";
const SE_HAL_POLICY: &str = "/vendor/etc/dmaheap/policy.toml";
const SE_CAMERA: &str = "/vendor/bin/hw/android.hardware.camera.provider-V1-service";
/// binder-wire, labelled as a camera HAL too (file_contexts: `camera.provider@2.N-service`).
const SE_CAMERA_WIRE: &str = "/vendor/bin/hw/android.hardware.camera.provider@2.7-service";
const SE_CODEC: &str = "/vendor/bin/hw/android.hardware.media.c2-default-service";
const SE_APP: &str = "/data/app/testbed.app/probe";
/// binder-wire as dumpstate (platform file_contexts label /system/bin/dumpstate).
const SE_DUMPSTATE_WIRE: &str = "/system/bin/dumpstate";
/// The VTS suite and binder-wire where VTS runs them on a userdebug device (the test bed's su
/// entrypoint).
const SE_VTS: &str = "/data/nativetest64/vendor.dmaheap/dmaheap-vts";
const SE_VTS_WIRE: &str = "/data/nativetest64/vendor.dmaheap/binder-wire";

/// AIDs of the callers (system/core/libcutils/include/private/android_filesystem_config.h).
const AID_CAMERASERVER: u32 = 1047;
const AID_MEDIA_CODEC: u32 = 1046;
const AID_SHELL: u32 = 2000;
/// An app's uid that no heap lists.
const APP_UID: u32 = 10123;

fn selinux_setup() -> crate::selinux::Setup {
    use crate::selinux::Denial;
    let heaps = [
        "system",
        "reserved",
        "kmod-system",
        "kmod-system-uncached",
        "kmod-cma",
        "kmod-cma-uncached",
        "kmod-carveout",
    ];
    let mut runtime_paths = vec![
        "/dev/console".to_owned(),
        "/dev/null".to_owned(),
        "/dev/dma_heap".to_owned(),
    ];
    runtime_paths.extend(heaps.iter().map(|h| format!("/dev/dma_heap/{h}")));
    crate::selinux::Setup {
        installs: vec![
            ("rsb_hub", SE_SERVICE_MANAGER),
            ("dmaheap-service", SE_HAL),
            ("dmaheap-probe", SE_CAMERA),
            ("binder-wire", SE_CAMERA_WIRE),
            ("binder-wire", SE_DUMPSTATE_WIRE),
            ("binder-wire", SE_VTS_WIRE),
            ("dmaheap-vts", SE_VTS),
            ("dmaheap-probe", SE_CODEC),
            ("dmaheap-probe", SE_APP),
        ],
        files: vec![("service/policy/testbed.toml", SE_HAL_POLICY)],
        runtime_paths,
        expected_denials: vec![
            // An app is no HAL client: the kernel stops its binder call.
            Denial::new("call", "untrusted_app", "hal_dmaheap_default", "binder"),
            // A client opening a HAL-managed heap itself, bypassing the HAL's policy.
            Denial::new(
                "read",
                "hal_camera_default",
                "dmaheap_vendor_heap_device",
                "chr_file",
            ),
        ],
    }
}

/// How VTS runs on a userdebug device: root in su (`setool exec-as` arguments).
const AS_VTS: &str = "--context u:r:su:s0 --uid 0";
/// The HAL's open fds, as init counts them.
const HAL_OPEN_FDS: &str = "ls /proc/$(pidof vendor.dmaheap-service)/fd | wc -l";

/// The wire conformance suite in `role`, run from `program` with `setool exec-as` `exec_as`
/// (uid and, where no file transition gives it, the SELinux context).
fn wire_suite(name: &'static str, exec_as: &str, program: &str, role: &str) -> GuestStep {
    suite(
        name,
        Format::Tap,
        &format!(
            "setool exec-as {exec_as} -- {program} conformance --role {role} \
             --service-pid $(pidof vendor.dmaheap-service)"
        ),
    )
}

/// A probe request from `program` as `uid` (in the domain its label's transition gives it, or
/// `context`), which must end as the probe's `--expect` says, with as many dma-bufs in the
/// kernel's accounting afterwards as before (nothing allocated, nothing leaked).
fn probe(program: &str, uid: u32, context: Option<&str>, args: &str) -> String {
    let context = context
        .map(|c| format!("--context {c} "))
        .unwrap_or_default();
    format!(
        "before=$(ls /sys/kernel/dmabuf/buffers | wc -l); \
         setool exec-as {context}--uid {uid} -- {program} {args} || exit 1; \
         after=$(ls /sys/kernel/dmabuf/buffers | wc -l); \
         [ \"$before\" = \"$after\" ] || {{ echo \"dma-bufs: $before before, $after after\"; exit 1; }}"
    )
}

/// The SELinux-enforcing phase (issue 9 items 3 and 6): the earlier daemons are stopped, the
/// vendor policy is loaded with the stand-in platform policy and enforced, servicemanager and the
/// HAL run in their domains, and clients in hal_camera_default, mediacodec and untrusted_app
/// make requests the kernel's SELinux and the HAL's per-heap policy allow or refuse.
fn selinux_phase() -> Vec<GuestStep> {
    let camera = |args: &str| probe(SE_CAMERA, AID_CAMERASERVER, None, args);
    let codec = |args: &str| probe(SE_CODEC, AID_MEDIA_CODEC, None, args);
    let app = |args: &str| probe(SE_APP, APP_UID, Some("u:r:untrusted_app:s0"), args);
    let wait_domain = |program: &str, context: &str| {
        format!(
            "for i in $(seq 100); do pid=$(pidof {program}) && \
             [ \"$(setool context $pid)\" = {context} ] && exit 0; sleep 0.1; done; \
             setool context $(pidof {program}); exit 1"
        )
    };
    vec![
        check(
            "selinux",
            "the earlier service manager and services stopped",
            // Gone, or a zombie (which has closed its binder fd): /init reaps its children late.
            "pids=$(pidof rsb_hub binder-smoke dmaheap-service); kill -KILL $pids; \
             for pid in $pids; do for i in $(seq 300); do \
             state=$(cut -d' ' -f3 /proc/$pid/stat 2>/dev/null) || continue 2; \
             [ \"$state\" = Z ] && continue 2; sleep 0.1; done; echo \"$pid still runs\"; exit 1; done",
        ),
        // Every AVC record must reach the log the host checks.
        check(
            "selinux",
            "kernel messages are not rate-limited",
            "echo 0 > /proc/sys/kernel/printk_ratelimit",
        ),
        GuestStep::EnterSelinux,
        check(
            "selinux",
            "files and device nodes labelled; enforcing; this shell runs as init",
            &format!(
                "setool label {} && [ \"$(cat /sys/fs/selinux/enforce)\" = 1 ] && \
                 [ \"$(setool context)\" = u:r:init:s0 ]",
                crate::selinux::GUEST_LABELS
            ),
        ),
        // From here the shell writes to the console node it labelled.
        show("exec </dev/console >/dev/console 2>&1"),
        // ueventd's modes: heaps readable by all (the HAL's clients get no other access from
        // SELinux), binder open to every uid.
        check(
            "selinux",
            "device modes set as ueventd sets them",
            "chmod 0444 /dev/dma_heap/* && chmod 0666 /dev/binderfs/binder",
        ),
        background("selinux-service-manager", &format!("{SE_SERVICE_MANAGER} --insecure-allow-all")),
        check(
            "selinux",
            "servicemanager runs in its domain",
            &wait_domain("servicemanager", "u:r:servicemanager:s0"),
        ),
        background("selinux-hal", &format!("{SE_HAL} --policy {SE_HAL_POLICY}")),
        check(
            "selinux",
            "the HAL registers, running in hal_dmaheap_default",
            &format!(
                "for i in $(seq 100); do grep -q 'registered vendor.dmaheap.IHeapAllocator/default' \
                 /tmp/selinux-hal.log && break; sleep 0.1; done; {}",
                wait_domain("vendor.dmaheap-service", "u:r:hal_dmaheap_default:s0")
            ),
        ),
        check(
            "selinux",
            "hal_camera_default (uid cameraserver) is served from kmod-cma",
            &camera("alloc --heap kmod-cma --expect served"),
        ),
        // The service's fds before the wire suites (init reads /proc as dumpstate does on a
        // device); compared after the last of them.
        check(
            "selinux",
            "the HAL's open fds counted before the wire and VTS suites",
            &format!("{HAL_OPEN_FDS} > /tmp/hal-fds-before"),
        ),
        // The wire conformance suite as the callers a phone has, each in its domain, calling
        // with its SELinux context attached (TXN_SECURITY_CTX is only set once a policy is
        // loaded): a camera HAL, dumpstate, and VTS in su as on a userdebug device.
        wire_suite(
            "binder-wire-enforcing",
            &format!("--uid {AID_CAMERASERVER}"),
            SE_CAMERA_WIRE,
            "hal-client",
        ),
        wire_suite(
            "binder-wire-dumpstate",
            &format!("--uid {AID_SHELL}"),
            SE_DUMPSTATE_WIRE,
            "dumpstate",
        ),
        wire_suite("binder-wire-vts", AS_VTS, SE_VTS_WIRE, "vts"),
        // The HAL's VTS suite as a device runs it: root in su, the HAL enforcing.
        suite(
            "hal-vts-su",
            Format::Libtest,
            &format!("timeout 400 setool exec-as {AS_VTS} -- {SE_VTS} --test-threads=1"),
        ),
        check(
            "selinux",
            "the HAL holds no more fds after the wire and VTS suites than before",
            &format!(
                "before=$(cat /tmp/hal-fds-before); after=$({HAL_OPEN_FDS}); \
                 [ \"$after\" -le \"$before\" ] || {{ echo \"$before fds before, $after after\"; exit 1; }}"
            ),
        ),
        // Delegated heaps (issue 18 item 1): the system heap's node, which the camera domain may
        // use, is handed over and allocates in the camera's process; a module heap's HAL-only
        // node is not; a rule mediacodec may not use is refused as allocate() refuses it.
        check(
            "selinux",
            "hal_camera_default is delegated the system heap for SENSOR_DIRECT_DATA and allocates from it itself",
            &camera(&format!("delegate --usage {} --expect delegated", 1u64 << 23)),
        ),
        check(
            "selinux",
            "hal_camera_default is not delegated kmod-system (HAL-only label) for CPU_READ_OFTEN",
            &camera("delegate --usage 3 --expect not-delegated"),
        ),
        check(
            "selinux",
            "mediacodec gets EX_SECURITY from delegate for the camera's rule, nothing delegated",
            &codec(&format!("delegate --usage {} --expect security", 1u64 << 23)),
        ),
        check(
            "selinux",
            "mediacodec's per-call request under the camera's rule is refused too, nothing allocated",
            &codec(&format!("alloc --usage {} --expect security", 1u64 << 23)),
        ),
        check(
            "selinux",
            "mediacodec is served from kmod-cma-uncached by its domain alone (its uid is not listed)",
            &codec("alloc --heap kmod-cma-uncached --expect served"),
        ),
        check(
            "selinux",
            "mediacodec is served from the system heap, open to every HAL client",
            &codec("alloc --heap system --expect served"),
        ),
        check(
            "selinux",
            "hal_camera_default gets EX_SECURITY from kmod-carveout, nothing allocated",
            &camera("alloc --heap kmod-carveout --expect security"),
        ),
        check(
            "selinux",
            "mediacodec gets EX_SECURITY from reserved, nothing allocated",
            &codec("alloc --heap reserved --expect security"),
        ),
        check(
            "selinux",
            "hal_camera_default gets EX_SECURITY for the carveout's ION id, nothing allocated",
            &camera("alloc --ion-mask 4 --expect security"),
        ),
        check(
            "selinux",
            "hal_camera_default gets EX_SECURITY for a batch from kmod-carveout, nothing allocated",
            &camera("alloc --batch-heap kmod-carveout --count 3 --expect security"),
        ),
        check(
            "selinux",
            "mediacodec is served a batch from kmod-carveout",
            &codec("alloc --batch-heap kmod-carveout --count 3 --expect served"),
        ),
        check(
            "selinux",
            "untrusted_app cannot call the HAL at all: the kernel refuses the binder call",
            &app("alloc --heap system --expect binder-denied"),
        ),
        check(
            "selinux",
            "hal_camera_default cannot open a HAL-managed heap itself",
            &camera("open-heap kmod-carveout --expect denied"),
        ),
        show("echo '--- the HAL under SELinux logged:'; tail -20 /tmp/selinux-hal.log"),
        // service/src/service.rs logs this once if a call came without the caller's context.
        check(
            "selinux",
            "every call reached the HAL with the caller's SELinux context",
            "! grep 'no caller context' /tmp/selinux-hal.log",
        ),
        check(
            "selinux",
            "servicemanager and the HAL still run",
            "pidof servicemanager >/dev/null && pidof vendor.dmaheap-service >/dev/null || \
             { cat /tmp/selinux-hal.log; exit 1; }",
        ),
    ]
}

pub fn test_plan(arch: Arch) -> Plan {
    let mut steps = vec![
        // The module's own DMA-API mistakes must all be reported, not only the first one.
        check(
            "testbed",
            "DMA-API debugging on, reporting every error",
            "test \"$(cat /sys/kernel/debug/dma-api/disabled)\" = N && \
             echo 1 > /sys/kernel/debug/dma-api/all_errors",
        ),
        check(
            "testbed",
            "dma-heap core lists the built-in system heap",
            "test -c /dev/dma_heap/system",
        ),
        check(
            "testbed",
            "vgem importer present for the selftest",
            "ls /dev/dri/card* >/dev/null",
        ),
    ];
    // The module's heaps go in before the selftest, which then covers them too.
    steps.extend(heaps_kmod_load_probed(arch));
    steps.push(test_importer_load());
    steps.push(suite(
        "kselftest-dmabuf-heaps",
        Format::Tap,
        "kselftest-dmabuf-heap",
    ));
    steps.push(suite("heaps-kmod", Format::Tap, "heaps-kmod-tests"));
    steps.push(suite(
        "heaps-kmod-stress",
        Format::Tap,
        &format!("heaps-kmod-stress --secs {STRESS_SECS}"),
    ));
    steps.extend(binder_setup());
    steps.extend(binder_smoke_service());
    steps.push(suite(
        "binder-smoke",
        Format::Tap,
        "timeout 60 binder-smoke client system 1048576",
    ));
    steps.extend(hal_service());
    steps.extend(hal_checks());
    steps.extend(wire_conformance());
    steps.extend(libdmaheap_checks());
    steps.extend(dma_api_and_importer_final());
    // Last: once enforcing, SELinux stays on until the VM powers off.
    steps.extend(selinux_phase());
    let mut programs = vec![
        kselftest(),
        Program::CargoBin {
            package: "heaps-kmod-tests",
            bin: "heaps-kmod-tests",
        },
        Program::CargoBin {
            package: "heaps-kmod-tests",
            bin: "heaps-kmod-stress",
        },
    ];
    programs.extend(binder_programs());
    programs.extend(hal_programs());
    programs.extend(libdmaheap_programs());
    programs.push(Program::CargoBin {
        package: "binder-wire",
        bin: "binder-wire",
    });
    programs.push(Program::CargoTest {
        package: "dmaheap-vts",
        test: "vts",
        install_as: "dmaheap-vts",
    });
    programs.push(Program::CargoTest {
        package: "dmaheap-vts",
        test: "hostile",
        install_as: "dmaheap-hostile",
    });
    programs.extend(selinux_programs());
    let mut plan = stack_plan(
        "test",
        arch,
        Variant::Checked,
        programs,
        steps,
        // About 7 minutes on an idle 2-core machine (x86_64; arm64 5). Another build or VM
        // sharing the cores doubles that (15m08s seen), which must not read as a hang.
        Duration::from_secs(1500),
    );
    plan.modules.push(test_importer());
    plan.selinux = Some(selinux_setup());
    plan
}

pub fn demo_plan(arch: Arch) -> Plan {
    let mut steps = vec![show(
        "echo; echo \"kernel: $(uname -sr), $(nproc) CPUs, $(awk '/MemTotal/ {print $2/1024 \" MiB\"}' /proc/meminfo)\"; \
         echo \"built-in dma-buf heaps: $(ls /dev/dma_heap | tr '\\n' ' ')\"",
    )];
    steps.extend(heaps_kmod_load(arch));
    steps.push(show(
        "echo \"heap module: $(grep dmaheap_heaps /proc/modules | cut -d' ' -f1-3), statistics in /sys/kernel/dmaheap_heaps/\"; \
         echo \"dma-buf heaps now: $(ls /dev/dma_heap | tr '\\n' ' ')\"",
    ));
    steps.extend(binder_setup());
    steps.extend(hal_service());
    steps.push(show(
        "echo; echo 'allocator HAL: heaps of the policy'; dmaheapctl heaps",
    ));
    steps.push(show("echo; dmaheap-demo"));
    steps.push(show(
        "echo; echo 'why a video-decoder buffer goes where it goes:'; \
         dmaheapctl explain --usage 'VIDEO_DECODER|GPU_TEXTURE'",
    ));
    steps.push(show(
        "echo; echo 'allocator HAL counters:'; dmaheapctl stats",
    ));
    let mut programs = binder_programs();
    programs.extend(hal_programs());
    stack_plan(
        "demo",
        arch,
        Variant::Checked,
        programs,
        steps,
        Duration::from_secs(300),
    )
}

/// `cargo xtask bench`: allocation latency of the module's cached system heap against the
/// built-in `system` heap, cold and warm pools.
pub fn bench_plan(arch: Arch) -> Plan {
    let mut steps = heaps_kmod_load(arch);
    steps.push(show("heaps-kmod-bench --builtin system --kmod kmod-system"));
    steps.extend(hal_bench_steps(true));
    bench_stack_plan("bench", arch, steps)
}

/// `bench_plan`'s HAL part alone, for the run under `-icount`: the module's own benchmark
/// measures the kernel, which the emulator's overheads do not distort the way they distort a
/// binder round trip (two address-space switches, each refilling TCG's software TLB).
pub fn bench_icount_plan(arch: Arch) -> Plan {
    let mut steps = heaps_kmod_load(arch);
    steps.extend(hal_bench_steps(false));
    bench_stack_plan("bench-icount", arch, steps)
}

/// The allocator HAL against a direct ioctl on the same heap, with the delegated path, and the
/// baseline for its fixed cost: a bare binder round trip passing one fd, measured in the same
/// run just before the HAL on the pooled heap. `with_builtin`: also against the kernel's own
/// system heap.
fn hal_bench_steps(with_builtin: bool) -> Vec<GuestStep> {
    let mut steps = binder_setup();
    steps.extend(hal_service());
    steps.extend(binder_smoke_service());
    if with_builtin {
        steps.push(show("echo; dmaheap-bench --heap system"));
    }
    steps.push(show(
        // Into a file first: `tee | head -1` let head's exit kill tee before it wrote the last
        // line, the figure itself (seen on arm64).
        "echo; binder-smoke bench-fd kmod-system 400 > /tmp/bare-fd.txt; head -1 /tmp/bare-fd.txt; \
         dmaheap-bench --heap kmod-system --bare-fd-us $(tail -1 /tmp/bare-fd.txt)",
    ));
    steps
}

fn bench_stack_plan(name: &'static str, arch: Arch, steps: Vec<GuestStep>) -> Plan {
    let mut programs = vec![
        Program::CargoBin {
            package: "heaps-kmod-tests",
            bin: "heaps-kmod-bench",
        },
        Program::CargoBin {
            package: "dmaheapctl",
            bin: "dmaheap-bench",
        },
    ];
    programs.extend(binder_programs());
    programs.extend(hal_programs());
    stack_plan(
        name,
        arch,
        Variant::Bench,
        programs,
        steps,
        Duration::from_secs(600),
    )
}
