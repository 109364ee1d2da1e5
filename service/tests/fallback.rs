//! The built-in fallback policy: what it serves (the system heaps only), what it refuses, and
//! that a missing, invalid or unservable policy file leads to it and says why.

use dmaheap_aidl::usage::*;
use dmaheap_service::backend::MemfdBackend;
use dmaheap_service::policy::{Policy, DEFAULT_POLICY_TOML};
use dmaheap_service::{Allocator, Caller, ErrorKind, Selector};

/// gralloc on a device: its uid and domain.
fn gralloc() -> Caller {
    Caller::with_context(1000, 500, Some("u:r:hal_graphics_allocator_default:s0"))
}

/// Every heap a phone might have is present: the fallback must still use none but the system
/// heaps.
fn fallback_allocator() -> Allocator<MemfdBackend> {
    Allocator::new(
        Policy::fallback("/vendor/etc/dmaheap/policy.toml", "cannot read it".into()),
        MemfdBackend::with_heaps([
            "system",
            "system-uncached",
            "linux,cma",
            "reserved",
            "default_cma_region",
            "carveout",
            "secure",
        ]),
    )
}

#[test]
fn the_fallback_serves_system_heaps_only() {
    let a = fallback_allocator();
    let heap_of = |usage| {
        a.allocate(&gralloc(), &Selector::Usage(usage), 4096, "fallback")
            .map(|got| got.heap)
    };
    // Scanout and camera buffers too: system memory, not CMA.
    assert_eq!(heap_of(COMPOSER_OVERLAY).unwrap(), "system-uncached");
    assert_eq!(heap_of(CAMERA_OUTPUT | CPU_READ_OFTEN).unwrap(), "system");
    assert_eq!(heap_of(GPU_TEXTURE | CPU_WRITE_OFTEN).unwrap(), "system");
    // Without the uncached heap, the cached one.
    a.backend().set_present("system-uncached", false);
    assert_eq!(heap_of(GPU_TEXTURE).unwrap(), "system");

    // PROTECTED is refused with the usual typed error, never served from system memory.
    let e = heap_of(PROTECTED | VIDEO_DECODER).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedUsage, "{}", e.message);
    assert!(e.message.contains("fallback"), "{}", e.message);
    // Restricted heaps by name are not declared at all.
    for heap in [
        "linux,cma",
        "reserved",
        "default_cma_region",
        "carveout",
        "secure",
    ] {
        let e = a
            .allocate(&gralloc(), &Selector::Heap(heap.into()), 4096, "x")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NoSuchHeap, "{heap}: {}", e.message);
    }
    // ION: the system heap id only.
    let ion = |mask, flags| Selector::Ion {
        heap_id_mask: mask,
        flags,
        alignment: 0,
    };
    assert_eq!(
        a.allocate(&gralloc(), &ion(1, 1), 4096, "ion")
            .unwrap()
            .heap,
        "system"
    );
    for id in 1..32 {
        let e = a
            .allocate(&gralloc(), &ion(1 << id, 0), 4096, "ion")
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::NoSuchHeap, "id {id}: {}", e.message);
    }
}

#[test]
fn the_dump_says_the_service_runs_on_the_fallback_and_why() {
    let a = fallback_allocator();
    let dump = a.dump();
    let first_lines: Vec<&str> = dump.lines().take(3).collect();
    assert_eq!(
        first_lines[1],
        "policy: built-in fallback policy, in place of /vendor/etc/dmaheap/policy.toml"
    );
    assert!(
        first_lines[2].starts_with("FALLBACK: ") && first_lines[2].ends_with(": cannot read it"),
        "{dump}"
    );
    // A device policy's dump says nothing of the kind.
    let normal = Allocator::new(
        Policy::builtin_default(),
        MemfdBackend::with_heaps(["system"]),
    );
    assert!(!normal.dump().contains("FALLBACK"));
}

#[test]
fn a_missing_invalid_or_unservable_file_leads_to_the_fallback_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let p = Policy::load_or_fallback(&missing, 8).unwrap();
    assert!(p.is_fallback());
    let cause = p.fallback_cause.as_deref().unwrap();
    assert!(
        cause.contains("missing.toml") && cause.contains("No such file"),
        "{cause}"
    );

    let invalid = dir.path().join("invalid.toml");
    std::fs::write(&invalid, "[[heap]]\nname = \"../x\"\n").unwrap();
    let p = Policy::load_or_fallback(&invalid, 8).unwrap();
    let cause = p.fallback_cause.as_deref().unwrap();
    assert!(
        cause.starts_with(&format!("{}:1: heap name", invalid.display())),
        "{cause}"
    );
    assert!(!cause.contains('\n'), "one line: {cause:?}");

    // Valid TOML and policy, but a cap the service's threads cannot honour.
    let greedy = dir.path().join("greedy.toml");
    let six_per_uid = DEFAULT_POLICY_TOML.replace("max_calls_per_uid = 4", "max_calls_per_uid = 6");
    std::fs::write(&greedy, six_per_uid).unwrap();
    let p = Policy::load_or_fallback(&greedy, 6).unwrap();
    let cause = p.fallback_cause.as_deref().unwrap();
    assert!(cause.contains("binder thread count (6)"), "{cause}");

    // Not even the fallback fits two threads: that is the command line's mistake.
    assert!(Policy::load_or_fallback(&missing, 2).is_err());

    let valid = dir.path().join("valid.toml");
    std::fs::write(&valid, DEFAULT_POLICY_TOML).unwrap();
    let p = Policy::load_or_fallback(&valid, 8).unwrap();
    assert!(!p.is_fallback());
    assert_eq!(p.origin, valid.display().to_string());
}

#[test]
fn a_toml_syntax_error_is_one_line_with_its_line_number() {
    let e = Policy::parse("[[heap]]\nname = \"system\"\ncahced = true\n", "bad.toml").unwrap_err();
    assert_eq!(e.line(), Some(3));
    let line = e.one_line();
    assert!(
        line.starts_with("bad.toml:3: unknown field `cahced`"),
        "{line}"
    );
    assert!(!line.contains('\n'));
    // The full report (for --check) still quotes the text.
    assert!(e.to_string().contains("cahced = true"));
}
