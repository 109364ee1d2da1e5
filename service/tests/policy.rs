//! The policy engine: parsing, validation with line numbers, usage rules and the ION table, on
//! the shipped default and test bed policies (the vendor example tables are replayed in
//! `vendor_tables.rs`, the request conditions tested in `policy_conditions.rs`).

use dmaheap_aidl::usage::*;
use dmaheap_service::policy::{Policy, PolicyError};
use dmaheap_service::{Caller, ErrorKind};

/// The gralloc allocator's uid on a device (AID_SYSTEM): every policy here lists it.
const SYSTEM: Caller = Caller {
    uid: 1000,
    pid: 1,
    domain: None,
};

const ROOT: Caller = Caller {
    uid: 0,
    pid: 1,
    domain: None,
};

fn all_present(_: &str) -> bool {
    true
}

fn heap_for(
    policy: &Policy,
    usage: u64,
    present: &dyn Fn(&str) -> bool,
) -> Result<String, ErrorKind> {
    policy
        .resolve_usage(usage, present, &SYSTEM)
        .map(|r| r.candidates[0].clone())
        .map_err(|e| e.kind)
}

fn invalid_line(text: &str) -> (usize, String) {
    match Policy::parse(text, "test.toml") {
        Err(e @ PolicyError::Invalid { .. }) | Err(e @ PolicyError::Syntax { .. }) => {
            (e.line().expect("error names a line"), e.to_string())
        }
        other => panic!("accepted an invalid policy: {other:?}"),
    }
}

const TWO_HEAPS: &str = r#"
[[heap]]
name = "system"
[[heap]]
name = "secure"
secure = true
allow_uids = ["system"]
"#;

#[test]
fn the_default_policy_follows_aosp_practice() {
    let p = Policy::builtin_default();
    let only = |names: &'static [&'static str]| move |h: &str| names.contains(&h);

    // No CPU access: uncached system memory when the device has it, else system.
    assert_eq!(
        heap_for(&p, GPU_TEXTURE, &all_present).unwrap(),
        "system-uncached"
    );
    assert_eq!(
        heap_for(&p, GPU_TEXTURE, &only(&["system"])).unwrap(),
        "system"
    );
    // CPU access: cached system memory.
    assert_eq!(
        heap_for(&p, GPU_TEXTURE | CPU_READ_OFTEN, &all_present).unwrap(),
        "system"
    );
    // PROTECTED without a secure heap is refused, never served from system memory.
    assert_eq!(
        heap_for(&p, PROTECTED | VIDEO_DECODER, &all_present),
        Err(ErrorKind::UnsupportedUsage)
    );
}

#[test]
fn the_default_policy_scans_out_of_system_memory_and_cma_is_opt_in_with_a_fallback() {
    let p = Policy::builtin_default();
    // An IOMMU phone: composer buffers come from system memory, with every CMA name present.
    for scanout in [
        COMPOSER_OVERLAY,
        COMPOSER_CURSOR,
        FRONT_BUFFER,
        COMPOSER_CLIENT_TARGET,
    ] {
        let heap = heap_for(&p, scanout | GPU_RENDER_TARGET, &all_present).unwrap();
        assert!(heap.starts_with("system"), "{scanout:#x}: {heap}");
        let heap = heap_for(&p, scanout | CPU_WRITE_OFTEN, &all_present).unwrap();
        assert_eq!(heap, "system", "{scanout:#x}");
    }
    // The kernel's current CMA heap name is known, first among the CMA names.
    let cma = p
        .heap("default_cma_region")
        .expect("default_cma_region is declared");
    assert!(cma.contiguous && !cma.allow.is_empty());
    let r = p.resolve_ion(1 << 4, 0, &all_present, &SYSTEM).unwrap();
    assert_eq!(r.candidates, ["default_cma_region"]);
    let r = p
        .resolve_ion(1 << 4, 0, &|h| h == "linux,cma", &SYSTEM)
        .unwrap();
    assert_eq!(r.candidates, ["linux,cma"]);

    // The opt-in rule for a display without an IOMMU, as the file shows it commented out.
    let text = dmaheap_service::policy::DEFAULT_POLICY_TOML;
    let commented = text
        .lines()
        .skip_while(|l| !l.starts_with("# [[rule]]"))
        .take_while(|l| l.starts_with("# ") && !l.trim_end().ends_with("# "))
        .collect::<Vec<_>>();
    assert!(
        commented.len() >= 5,
        "the opt-in rule is in the file: {commented:?}"
    );
    let opted_in = text.replace(
        &commented.join("\n"),
        &commented
            .iter()
            .map(|l| l.trim_start_matches("# "))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let p = Policy::parse(&opted_in, "default, contiguous scanout").unwrap();
    let r = p
        .resolve_usage(COMPOSER_OVERLAY, &all_present, &SYSTEM)
        .unwrap();
    assert_eq!(r.rule, "scanout-contiguous");
    assert_eq!(
        r.candidates,
        [
            "default_cma_region",
            "linux,cma",
            "reserved",
            "system-uncached",
            "system"
        ]
    );
    assert!(
        r.fallback_on_error,
        "a full CMA area falls back to system memory"
    );
    // An app may not use CMA: it gets system memory, not a denial.
    let app = Caller::new(10123, 7);
    let r = p
        .resolve_usage(COMPOSER_OVERLAY, &all_present, &app)
        .unwrap();
    assert_eq!(r.candidates, ["system-uncached", "system"]);
}
#[test]
fn unknown_usage_bits_are_rejected_and_vendor_bits_accepted() {
    let p = Policy::builtin_default();
    for bit in [10, 13, 19, 21, 33, 34, 47] {
        let err = p
            .resolve_usage(1 << bit, &all_present, &SYSTEM)
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::UnsupportedUsage, "bit {bit}");
        assert!(err.message.contains("does not define"), "{}", err.message);
    }
    for bit in [28, 31, 48, 63] {
        assert!(
            p.resolve_usage(CPU_READ_OFTEN | (1 << bit), &all_present, &SYSTEM)
                .is_ok(),
            "bit {bit}"
        );
    }
}

#[test]
fn rules_match_exact_all_any_and_none_in_order() {
    let text = format!(
        r#"{TWO_HEAPS}
[[heap]]
name = "cma"
contiguous = true
allow_uids = [1000]

[[rule]]
name = "exact"
exact = "CAMERA_OUTPUT|0x10000000"
heaps = ["cma"]

[[rule]]
name = "any-none"
any_of = ["COMPOSER_OVERLAY", "COMPOSER_CURSOR"]
none_of = "VIDEO_ENCODER"
heaps = ["cma", "system"]

[[rule]]
name = "all"
all_of = ["PROTECTED", "VIDEO_DECODER"]
heaps = ["secure"]

[[rule]]
name = "rest"
heaps = ["system"]
"#
    );
    let p = Policy::parse(&text, "t").unwrap();
    let rule = |u| {
        p.resolve_usage(u, &all_present, &SYSTEM)
            .map(|r| r.rule)
            .unwrap_or_else(|e| e.message)
    };
    assert_eq!(rule(CAMERA_OUTPUT | (1 << 28)), "exact");
    assert_eq!(
        rule(CAMERA_OUTPUT | (1 << 28) | CPU_READ_OFTEN),
        "rest",
        "exact means exact"
    );
    assert_eq!(rule(COMPOSER_CURSOR), "any-none");
    assert_eq!(rule(COMPOSER_OVERLAY | VIDEO_ENCODER), "rest");
    assert_eq!(rule(PROTECTED | VIDEO_DECODER | GPU_TEXTURE), "all");
    // PROTECTED that reaches the catch-all finds only a non-secure heap: refused.
    let err = p
        .resolve_usage(PROTECTED | GPU_TEXTURE, &all_present, &SYSTEM)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedUsage);
    assert!(err.message.contains("never substituted"), "{}", err.message);
}

#[test]
fn absent_heaps_fall_back_in_order_and_the_reason_says_so() {
    let p = Policy::builtin_default();
    let r = p
        .resolve_usage(GPU_TEXTURE, &|h| h == "system", &SYSTEM)
        .unwrap();
    assert_eq!(r.candidates, ["system"]);
    assert_eq!(r.rule, "no-cpu-access");
    assert!(
        r.reason.contains("absent on this device: system-uncached"),
        "{}",
        r.reason
    );
    let err = p
        .resolve_usage(GPU_TEXTURE, &|_| false, &SYSTEM)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoSuchHeap);
}

#[test]
fn a_protected_rule_with_an_absent_secure_heap_is_unsupported_not_no_such_heap() {
    let text = format!("{TWO_HEAPS}\n[[rule]]\nname = \"p\"\nall_of = \"PROTECTED\"\nheaps = [\"secure\"]\n[[rule]]\nname = \"d\"\nheaps = [\"system\"]\n");
    let p = Policy::parse(&text, "t").unwrap();
    assert_eq!(heap_for(&p, PROTECTED, &all_present).unwrap(), "secure");
    assert_eq!(
        heap_for(&p, PROTECTED, &|h| h == "system"),
        Err(ErrorKind::UnsupportedUsage)
    );
}

#[test]
fn invalid_policies_name_the_line() {
    // Unknown heap in a rule: the rule starts on line 8.
    let text = format!("{TWO_HEAPS}\n[[rule]]\nname = \"r\"\nheaps = [\"nope\"]\n");
    let (line, msg) = invalid_line(&text);
    assert_eq!(line, 9, "{msg}");
    assert!(
        msg.contains("\"nope\"") && msg.starts_with("test.toml:9:"),
        "{msg}"
    );

    // Syntax error on line 3.
    let (line, msg) = invalid_line("[[heap]]\nname = \"system\"\ncached = maybe\n");
    assert_eq!(line, 3, "{msg}");

    // Unknown key (a typo) is an error, not silently ignored.
    let (line, msg) = invalid_line("[[heap]]\nname = \"system\"\ncahced = true\n");
    assert_eq!(line, 3, "{msg}");

    // Unknown usage name.
    let (_, msg) = invalid_line(&format!(
        "{TWO_HEAPS}\n[[rule]]\nname = \"r\"\nall_of = \"GPU_TEXTUR\"\nheaps = [\"system\"]\n"
    ));
    assert!(msg.contains("GPU_TEXTUR"), "{msg}");

    // Unknown usage bit.
    let (_, msg) = invalid_line(&format!(
        "{TWO_HEAPS}\n[[rule]]\nname = \"r\"\nany_of = \"0x200000000\"\nheaps = [\"system\"]\n"
    ));
    assert!(msg.contains("not BufferUsage bits"), "{msg}");

    // A PROTECTED rule that leads to unprotected memory.
    let (line, msg) = invalid_line(&format!("{TWO_HEAPS}\n[[rule]]\nname = \"p\"\nall_of = \"PROTECTED\"\nheaps = [\"secure\", \"system\"]\n"));
    assert_eq!(line, 9);
    assert!(msg.contains("not secure"), "{msg}");

    // Contradictory conditions.
    let (_, msg) = invalid_line(&format!("{TWO_HEAPS}\n[[rule]]\nname = \"r\"\nall_of = \"GPU_TEXTURE\"\nnone_of = \"GPU_TEXTURE\"\nheaps = [\"system\"]\n"));
    assert!(msg.contains("never match"), "{msg}");

    // A rule after a catch-all can never be reached.
    let (line, msg) = invalid_line(&format!(
        "{TWO_HEAPS}\n[[rule]]\nname = \"all\"\nheaps = [\"system\"]\n\n[[rule]]\nname = \"late\"\nall_of = \"GPU_TEXTURE\"\nheaps = [\"system\"]\n"
    ));
    assert_eq!(line, 13, "{msg}");
    assert!(msg.contains("unreachable"), "{msg}");

    // Heap names that would escape /dev/dma_heap.
    let (line, _) = invalid_line("[[heap]]\nname = \"../../dev/mem\"\n");
    assert_eq!(line, 1);

    // ION ids beyond the mask, duplicate ids, unknown heaps.
    let (_, msg) = invalid_line(&format!("{TWO_HEAPS}\n[[rule]]\nname = \"d\"\nheaps = [\"system\"]\n[[ion]]\nid = 32\nheap = \"system\"\n"));
    assert!(msg.contains("32"), "{msg}");
    let (line, msg) = invalid_line(&format!(
        "{TWO_HEAPS}\n[[rule]]\nname = \"d\"\nheaps = [\"system\"]\n[[ion]]\nid = 3\nheap = \"system\"\n[[ion]]\nid = 3\nheap = \"system\"\n"
    ));
    assert_eq!(line, 15, "{msg}");
    assert!(msg.contains("already mapped on line 12"), "{msg}");

    // Limits out of range.
    let (_, msg) = invalid_line(&format!("[limits]\nmax_batch_count = 65\n{TWO_HEAPS}\n[[rule]]\nname = \"d\"\nheaps = [\"system\"]\n"));
    assert!(msg.contains("max_batch_count"), "{msg}");
}

const ION_TABLE: &str = r#"
[[heap]]
name = "system"
[[heap]]
name = "system-uncached"
cached = false
[[heap]]
name = "adsp"
contiguous = true
allow_uids = ["system"]
[[heap]]
name = "secure"
secure = true
allow_uids = ["system"]
[[rule]]
name = "default"
heaps = ["system"]
[[ion]]
id = 25
heap = "system-uncached"
cached_heap = "system"
[[ion]]
id = 22
heap = "adsp"
[[ion]]
id = 8
heap = "secure"
"#;

#[test]
fn ion_masks_are_tried_highest_id_first_with_cached_variants() {
    let p = Policy::parse(ION_TABLE, "t").unwrap();
    // Bits 25 (system) and 22 (ADSP): 25 first, as ION's priority order does.
    let r = p
        .resolve_ion((1 << 25) | (1 << 22), 0, &all_present, &SYSTEM)
        .unwrap();
    assert_eq!(r.candidates, ["system-uncached", "adsp"]);
    assert!(r.fallback_on_error);
    // Bits 25 (system) and 8 (secure): ION would fall from protected memory into normal pages
    // when the secure heap fails, so the mask is refused.
    let err = p
        .resolve_ion((1 << 25) | (1 << 8), 0, &all_present, &SYSTEM)
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedUsage);
    assert!(err.message.contains("mixes secure"), "{}", err.message);
    let r = p
        .resolve_ion(
            1 << 25,
            dmaheap_aidl::consts::ION_FLAG_CACHED as u32,
            &all_present,
            &SYSTEM,
        )
        .unwrap();
    assert_eq!(r.candidates, ["system"]);
    // An absent heap is skipped; the next id serves.
    let r = p
        .resolve_ion((1 << 25) | (1 << 22), 0, &|h| h == "adsp", &SYSTEM)
        .unwrap();
    assert_eq!(r.candidates, ["adsp"]);
}

#[test]
fn ion_errors_are_clear() {
    let p = Policy::builtin_default();
    assert_eq!(
        p.resolve_ion(0, 0, &all_present, &SYSTEM).unwrap_err().kind,
        ErrorKind::BadArgument
    );
    let err = p.resolve_ion(1 << 7, 0, &all_present, &SYSTEM).unwrap_err();
    assert_eq!(err.kind, ErrorKind::NoSuchHeap);
    assert!(err.message.contains("ION heap id 7"), "{}", err.message);
    // One unmapped id poisons the mask even if another would do: the caller has a bug to fix.
    assert_eq!(
        p.resolve_ion((1 << 7) | 1, 0, &all_present, &SYSTEM)
            .unwrap_err()
            .kind,
        ErrorKind::NoSuchHeap
    );
    assert_eq!(
        p.resolve_ion(1, 1 << 31, &all_present, &SYSTEM)
            .unwrap_err()
            .kind,
        ErrorKind::BadArgument
    );
    // System id with and without ION_FLAG_CACHED.
    assert_eq!(
        p.resolve_ion(1, 0, &all_present, &SYSTEM)
            .unwrap()
            .candidates,
        ["system-uncached"]
    );
    assert_eq!(
        p.resolve_ion(1, 1, &all_present, &SYSTEM)
            .unwrap()
            .candidates,
        ["system"]
    );
    assert_eq!(
        p.resolve_ion(1, 0, &|h| h == "system", &SYSTEM)
            .unwrap()
            .candidates,
        ["system"]
    );
}

#[test]
fn every_shipped_policy_keeps_protected_usage_on_secure_heaps() {
    let dir = format!("{}/policy", env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        std::path::PathBuf::from(format!("{dir}/default.toml")),
        std::path::PathBuf::from(format!("{dir}/testbed.toml")),
    ];
    for entry in std::fs::read_dir(format!("{dir}/examples")).unwrap() {
        files.push(entry.unwrap().path());
    }
    assert!(files.len() >= 4);
    // Every PROTECTED combination of the common bits: served from a secure heap or refused.
    let extras = [
        0,
        GPU_TEXTURE,
        GPU_RENDER_TARGET,
        COMPOSER_OVERLAY,
        VIDEO_DECODER,
        VIDEO_ENCODER,
        CAMERA_OUTPUT,
        CPU_READ_OFTEN,
    ];
    for file in files {
        let p = Policy::load(&file).unwrap_or_else(|e| panic!("{e}"));
        for a in extras {
            for b in extras {
                match p.resolve_usage(PROTECTED | a | b, &all_present, &SYSTEM) {
                    Ok(r) => {
                        for heap in &r.candidates {
                            assert!(
                                p.heap(heap).unwrap().secure,
                                "{}: {heap} for {:#x}",
                                file.display(),
                                PROTECTED | a | b
                            );
                        }
                    }
                    Err(e) => assert_eq!(e.kind, ErrorKind::UnsupportedUsage, "{}", e.message),
                }
            }
        }
    }
}

#[test]
fn the_testbed_policy_prefers_the_module_heaps_and_falls_back_to_the_kernel_ones() {
    let path = format!("{}/policy/testbed.toml", env!("CARGO_MANIFEST_DIR"));
    let p = Policy::load(std::path::Path::new(&path)).unwrap();
    let kernel_only = |h: &str| h == "system" || h == "reserved";
    // The VM suites run as root, which the test bed lists on every restricted heap.
    let heap_for = |p: &Policy, usage, present: &dyn Fn(&str) -> bool| {
        p.resolve_usage(usage, present, &ROOT)
            .map(|r| r.candidates[0].clone())
            .map_err(|e| e.kind)
    };
    assert_eq!(
        heap_for(&p, GPU_TEXTURE, &all_present).unwrap(),
        "kmod-system-uncached"
    );
    assert_eq!(heap_for(&p, GPU_TEXTURE, &kernel_only).unwrap(), "system");
    assert_eq!(
        heap_for(&p, COMPOSER_OVERLAY | GPU_RENDER_TARGET, &all_present).unwrap(),
        "kmod-cma-uncached"
    );
    assert_eq!(
        heap_for(&p, COMPOSER_OVERLAY | CPU_READ_OFTEN, &kernel_only).unwrap(),
        "reserved"
    );
    assert_eq!(
        heap_for(&p, CAMERA_OUTPUT | CPU_READ_OFTEN, &all_present).unwrap(),
        "kmod-system"
    );
    assert_eq!(
        heap_for(&p, PROTECTED | VIDEO_DECODER, &all_present),
        Err(ErrorKind::UnsupportedUsage)
    );
    let r = p
        .resolve_ion((1 << 25) | (1 << 4), 1, &kernel_only, &ROOT)
        .unwrap();
    assert_eq!(r.candidates, ["system", "reserved"]);
}
