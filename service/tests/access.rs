//! Who may allocate from what (issue 9): allow lists by uid and SELinux domain on every path
//! (usage, named heap, ION, batch), their validation at load, the per-call and per-uid limits,
//! buffer names within the kernel's 31 bytes, hostile names (cleaned, never refused), the
//! rate-limited log and the dump deadline.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use dmaheap_aidl::usage::*;
use dmaheap_service::access::{domain_of_context, RateLimitedLog};
use dmaheap_service::allocator::{buffer_label, sanitize_debug_name, KERNEL_NAME_BYTES};
use dmaheap_service::backend::MemfdBackend;
use dmaheap_service::dump::write_with_deadline;
use dmaheap_service::policy::{Policy, PolicyError};
use dmaheap_service::{Allocator, Caller, ErrorKind, HalError, Selector};

const POLICY: &str = r#"
[limits]
max_allocation_bytes = 1048576
max_request_bytes = 65536
max_calls_per_uid = 1

[[heap]]
name = "system"

[[heap]]
name = "system-uncached"
cached = false

[[heap]]
name = "cma"
contiguous = true
allow_domains = ["hal_camera_default"]
allow_uids = ["cameraserver", 1046]

[[heap]]
name = "carveout"
carveout = true

[[heap]]
name = "audio-only"
allow_uids = ["audioserver"]

[[rule]]
name = "camera"
all_of = "CAMERA_OUTPUT"
heaps = ["cma"]

[[rule]]
name = "scanout"
all_of = "COMPOSER_OVERLAY"
heaps = ["cma", "system-uncached"]

[[rule]]
name = "codec-only"
all_of = "VIDEO_DECODER"
heaps = ["system"]
allow_uids = ["mediacodec"]

[[rule]]
name = "default"
heaps = ["system"]

[[ion]]
id = 0
heap = "system"

[[ion]]
id = 1
heap = "cma"

[[ion]]
id = 2
heap = "carveout"
"#;

const ALL_HEAPS: [&str; 5] = ["system", "system-uncached", "cma", "carveout", "audio-only"];

fn caller(uid: u32) -> Caller {
    Caller::new(uid, 4242)
}

const APP: u32 = 10123;
const CAMERASERVER: u32 = 1047;
const MEDIACODEC: u32 = 1046;

fn allocator() -> Allocator<MemfdBackend> {
    Allocator::new(
        Policy::parse(POLICY, "access.toml").unwrap(),
        MemfdBackend::with_heaps(ALL_HEAPS),
    )
}

fn denied<T: std::fmt::Debug>(result: Result<T, HalError>, heap: &str, domain: &str) {
    let e = result.expect_err("the request should be denied");
    assert_eq!(e.kind, ErrorKind::Denied, "{}", e.message);
    assert_eq!(
        e.code(),
        None,
        "a denial is EX_SECURITY, not a service code"
    );
    assert_eq!(e.denied_heap.as_deref(), Some(heap));
    assert!(
        e.message.contains(&format!("{heap:?}")) && e.message.contains(domain),
        "the message names the heap and the domain: {}",
        e.message
    );
}

#[test]
fn restricted_heaps_are_denied_on_every_path_and_nothing_is_allocated() {
    let a = allocator();
    let app = caller(APP);
    denied(
        a.allocate(&app, &Selector::Heap("cma".into()), 4096, "x"),
        "cma",
        "<none>",
    );
    denied(
        a.allocate(&app, &Selector::Heap("carveout".into()), 4096, "x"),
        "carveout",
        "<none>",
    );
    denied(
        a.allocate(&app, &Selector::Usage(CAMERA_OUTPUT), 4096, "x"),
        "cma",
        "<none>",
    );
    let ion = |mask| Selector::Ion {
        heap_id_mask: mask,
        flags: 0,
        alignment: 0,
    };
    denied(a.allocate(&app, &ion(0b10), 4096, "x"), "cma", "<none>");
    denied(
        a.allocate(&app, &ion(0b100), 4096, "x"),
        "carveout",
        "<none>",
    );
    denied(
        a.allocate_batch(&app, &Selector::Heap("cma".into()), 4096, 4, "x"),
        "cma",
        "<none>",
    );
    denied(
        a.allocate_batch(&app, &Selector::Usage(CAMERA_OUTPUT), 4096, 4, "x"),
        "cma",
        "<none>",
    );
    denied(
        a.resolve(&app, &Selector::Heap("cma".into())),
        "cma",
        "<none>",
    );
    assert_eq!(a.backend().allocations(), 0, "a denied request allocated");
    // The system heap stays open to the same caller.
    assert_eq!(
        a.allocate(&app, &Selector::Heap("system".into()), 4096, "x")
            .unwrap()
            .heap,
        "system"
    );
}

#[test]
fn listed_uids_and_domains_are_served() {
    let a = allocator();
    for c in [
        caller(CAMERASERVER),
        caller(MEDIACODEC),
        Caller::with_context(APP, 1, Some("u:r:hal_camera_default:s0")),
    ] {
        let got = a
            .allocate(&c, &Selector::Usage(CAMERA_OUTPUT), 4096, "cam")
            .unwrap_or_else(|e| panic!("{c:?}: {e}"));
        assert_eq!(got.heap, "cma");
    }
    // A domain that is not listed does not help, and the message names it.
    let other = Caller::with_context(APP, 1, Some("u:r:untrusted_app:s0:c123,c256"));
    denied(
        a.allocate(&other, &Selector::Heap("cma".into()), 4096, "x"),
        "cma",
        "untrusted_app",
    );
    // Nobody is listed on the carveout: even a camera gets nothing.
    denied(
        a.allocate(
            &caller(CAMERASERVER),
            &Selector::Heap("carveout".into()),
            4096,
            "x",
        ),
        "carveout",
        "<none>",
    );
}

#[test]
fn a_rule_falls_to_the_heaps_the_caller_may_use() {
    let a = allocator();
    let got = a
        .allocate(&caller(APP), &Selector::Usage(COMPOSER_OVERLAY), 4096, "x")
        .unwrap();
    assert_eq!(got.heap, "system-uncached");
    let r = a
        .resolve(&caller(APP), &Selector::Usage(COMPOSER_OVERLAY))
        .unwrap();
    assert!(
        r.reason.contains("not for this caller: cma"),
        "{}",
        r.reason
    );
    let got = a
        .allocate(
            &caller(CAMERASERVER),
            &Selector::Usage(COMPOSER_OVERLAY),
            4096,
            "x",
        )
        .unwrap();
    assert_eq!(got.heap, "cma");
}

#[test]
fn lists_on_a_system_heap_or_a_rule_narrow_it() {
    let a = allocator();
    denied(
        a.allocate(
            &caller(APP),
            &Selector::Heap("audio-only".into()),
            4096,
            "x",
        ),
        "audio-only",
        "<none>",
    );
    a.allocate(
        &caller(1041),
        &Selector::Heap("audio-only".into()),
        4096,
        "x",
    )
    .unwrap();
    // The rule lists mediacodec: others are denied even though its heap is open.
    denied(
        a.allocate(&caller(APP), &Selector::Usage(VIDEO_DECODER), 4096, "x"),
        "system",
        "<none>",
    );
    a.allocate(
        &caller(MEDIACODEC),
        &Selector::Usage(VIDEO_DECODER),
        4096,
        "x",
    )
    .unwrap();
}

#[test]
fn an_ion_entry_list_narrows_the_id() {
    let text = r#"
[[heap]]
name = "system"
[[rule]]
name = "d"
heaps = ["system"]
[[ion]]
id = 3
heap = "system"
allow_uids = ["graphics"]
"#;
    let a = Allocator::new(
        Policy::parse(text, "t").unwrap(),
        MemfdBackend::with_heaps(["system"]),
    );
    let ion = Selector::Ion {
        heap_id_mask: 1 << 3,
        flags: 0,
        alignment: 0,
    };
    denied(
        a.allocate(&caller(APP), &ion, 4096, "x"),
        "system",
        "<none>",
    );
    a.allocate(&caller(1003), &ion, 4096, "x").unwrap();
}

fn refused(text: &str) -> String {
    match Policy::parse(text, "t.toml") {
        Err(e @ PolicyError::Invalid { .. }) | Err(e @ PolicyError::Syntax { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

const HEAPS: &str = r#"
[[heap]]
name = "system"
[[heap]]
name = "secure"
secure = true
allow_uids = ["mediacodec"]
[[heap]]
name = "secure2"
secure = true
"#;

#[test]
fn secure_and_normal_memory_never_mix_in_a_rule_or_an_ion_entry() {
    // A rule that does not require PROTECTED may not list a secure heap.
    let msg = refused(&format!(
        "{HEAPS}[[rule]]\nname = \"r\"\nheaps = [\"secure\"]\n"
    ));
    assert!(msg.contains("does not require PROTECTED"), "{msg}");
    let msg = refused(&format!(
        "{HEAPS}[[rule]]\nname = \"r\"\nany_of = \"PROTECTED\"\nheaps = [\"secure\", \"system\"]\n"
    ));
    assert!(msg.contains("secure heap"), "{msg}");
    // An ION entry mixing them, in one list or across cached and uncached.
    let rule = "[[rule]]\nname = \"d\"\nheaps = [\"system\"]\n";
    let msg = refused(&format!(
        "{HEAPS}{rule}[[ion]]\nid = 5\nheap = [\"secure\", \"system\"]\n"
    ));
    assert!(msg.contains("mixes secure and non-secure"), "{msg}");
    let msg = refused(&format!(
        "{HEAPS}{rule}[[ion]]\nid = 5\nheap = \"secure\"\ncached_heap = \"system\"\n"
    ));
    assert!(msg.contains("mixes secure and non-secure"), "{msg}");
    // All secure is fine, as is a PROTECTED rule with secure heaps only.
    Policy::parse(
        &format!(
            "{HEAPS}[[rule]]\nname = \"p\"\nall_of = \"PROTECTED\"\nheaps = [\"secure\", \"secure2\"]\n{rule}\
             [[ion]]\nid = 5\nheap = [\"secure\", \"secure2\"]\n"
        ),
        "t",
    )
    .unwrap();
}

#[test]
fn an_ion_mask_mixing_secure_and_normal_ids_is_refused() {
    let text = format!(
        "{HEAPS}[[rule]]\nname = \"d\"\nheaps = [\"system\"]\n[[ion]]\nid = 0\nheap = \"system\"\n\
         [[ion]]\nid = 8\nheap = \"secure\"\n"
    );
    let a = Allocator::new(
        Policy::parse(&text, "t").unwrap(),
        MemfdBackend::with_heaps(["system", "secure"]),
    );
    let mask = |m| Selector::Ion {
        heap_id_mask: m,
        flags: 0,
        alignment: 0,
    };
    let e = a
        .allocate(&caller(MEDIACODEC), &mask((1 << 8) | 1), 4096, "x")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedUsage, "{}", e.message);
    a.allocate(&caller(MEDIACODEC), &mask(1 << 8), 4096, "x")
        .unwrap();
    assert_eq!(a.backend().allocations(), 1);
}

#[test]
fn allow_lists_are_validated() {
    let rule = "[[rule]]\nname = \"d\"\nheaps = [\"system\"]\n";
    for (bad, needle) in [
        ("allow_uids = [\"no-such-aid\"]", "not an Android ID name"),
        ("allow_uids = [-1]", "not a uid"),
        ("allow_uids = [4294967295]", "not a uid"),
        ("allow_domains = [\"u:r:x:s0\"]", "not an SELinux type"),
        ("allow_domains = [\"\"]", "not an SELinux type"),
    ] {
        let msg = refused(&format!("[[heap]]\nname = \"system\"\n{bad}\n{rule}"));
        assert!(msg.contains(needle), "{bad}: {msg}");
    }
    let msg = refused(&format!(
        "[limits]\nmax_calls_per_uid = 0\n[[heap]]\nname = \"system\"\n{rule}"
    ));
    assert!(msg.contains("max_calls_per_uid"), "{msg}");
}

#[test]
fn the_per_call_limit_applies_to_single_allocations_too() {
    let a = allocator();
    let system = Selector::Heap("system".into());
    // max_allocation_bytes is 1 MiB but one call may take only 64 KiB.
    let e = a
        .allocate(&caller(APP), &system, 128 << 10, "x")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::QuotaExceeded, "{}", e.message);
    let e = a
        .allocate_batch(&caller(APP), &system, 32 << 10, 3, "x")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::QuotaExceeded, "{}", e.message);
    a.allocate(&caller(APP), &system, 64 << 10, "x").unwrap();
}

#[test]
fn one_uid_over_its_in_flight_limit_gets_busy_while_another_uid_is_served() {
    let a = Arc::new(allocator());
    a.backend().hold("system-uncached");
    let slow = {
        let a = Arc::clone(&a);
        std::thread::spawn(move || {
            a.allocate(
                &caller(APP),
                &Selector::Heap("system-uncached".into()),
                4096,
                "slow",
            )
        })
    };
    a.backend().wait_for_waiters(1);
    // Same uid, limit 1: waits briefly, then ERROR_BUSY, and nothing is allocated.
    let before = a.backend().allocations();
    let e = a
        .allocate(&caller(APP), &Selector::Heap("system".into()), 4096, "x")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy, "{}", e.message);
    assert_eq!(e.code(), Some(dmaheap_aidl::consts::ERROR_BUSY));
    assert_eq!(a.backend().allocations(), before);
    // Another uid is not held up.
    a.allocate(
        &caller(MEDIACODEC),
        &Selector::Heap("system".into()),
        4096,
        "x",
    )
    .unwrap();
    a.backend().release("system-uncached");
    slow.join().unwrap().unwrap();
    // The slot came back.
    a.allocate(&caller(APP), &Selector::Heap("system".into()), 4096, "x")
        .unwrap();
}

#[test]
fn batch_names_keep_the_callers_name_first_then_index_and_heap_as_room_allows() {
    let names = |count, name: &str| {
        let a = allocator();
        a.allocate_batch(
            &Caller::new(10123, 1234567),
            &Selector::Heap("system-uncached".into()),
            4096,
            count,
            name,
        )
        .unwrap();
        a.backend().names()
    };
    // Room for all of it: name, index, heap.
    let got = names(12, "camera.prev");
    for (i, name) in got.iter().enumerate() {
        assert_eq!(name, &format!("camera.prev#{i}@system-uncached"));
    }
    // A long name takes the room; the index stays while it fits, the heap goes first.
    let got = names(12, "camera.preview.stream.2");
    for (i, name) in got.iter().enumerate() {
        assert!(name.len() <= KERNEL_NAME_BYTES, "{name:?}");
        assert_eq!(name, &format!("camera.preview.stream.2#{i}"));
    }
    // A name of the whole 31 bytes keeps all of them, even in a batch.
    let full = "c".repeat(KERNEL_NAME_BYTES + 10);
    let got = names(2, &full);
    assert!(
        got.iter().all(|n| n == &full[..KERNEL_NAME_BYTES]),
        "{got:?}"
    );

    // A multibyte debug name is cut on a character boundary, nothing of the owner before it.
    let label = buffer_label(&"é".repeat(30), "system", Some(63));
    assert_eq!(label, "é".repeat(15), "{label:?}");
    // No name: the heap's, once.
    assert_eq!(buffer_label("", "system", None), "system");
    assert_eq!(buffer_label("", "system", Some(3)), "system#3");
    let long_heap = "h".repeat(64);
    assert_eq!(
        buffer_label("", &long_heap, None),
        "h".repeat(KERNEL_NAME_BYTES)
    );
}

#[test]
fn control_and_format_characters_never_reach_the_kernel_name() {
    for c in [
        '\u{202E}',  // RIGHT-TO-LEFT OVERRIDE
        '\u{2066}',  // LEFT-TO-RIGHT ISOLATE
        '\u{200B}',  // ZERO WIDTH SPACE
        '\u{200D}',  // ZERO WIDTH JOINER
        '\u{FEFF}',  // BOM
        '\u{00AD}',  // SOFT HYPHEN
        '\u{E0041}', // TAG LATIN CAPITAL LETTER A
    ] {
        // Invisible: dropped.
        assert_eq!(
            sanitize_debug_name(&format!("cam{c}era")),
            "camera",
            "U+{:04X}",
            c as u32
        );
    }
    for c in [
        '\u{1B}', '\t', '\n', '\0', '\u{7F}', '\u{85}', '\u{9B}', '\u{2028}', ' ',
    ] {
        // Controls and separators: shown as '_' where they were.
        assert_eq!(
            sanitize_debug_name(&format!("cam{c}era")),
            "cam_era",
            "U+{:04X}",
            c as u32
        );
    }
    assert_eq!(sanitize_debug_name("caméra.预览-1"), "caméra.预览-1");
    assert_eq!(sanitize_debug_name("\u{202E}\u{200B}"), "");

    // Through the allocator: served, and the kernel gets the cleaned name.
    let a = allocator();
    let system = Selector::Heap("system".into());
    a.allocate(&caller(APP), &system, 4096, "esc\u{1b}[31m\u{202e}red")
        .unwrap();
    a.allocate(&caller(APP), &system, 4096, "\u{202e}").unwrap();
    assert_eq!(a.backend().names(), ["esc_[31mred@system", "system"]);
}

#[test]
fn megabyte_names_are_cut_before_any_work() {
    let a = allocator();
    let huge = "\u{202E}\"\\".repeat(1 << 18); // ~1.25 MB that escaping would grow
                                               // As a heap name: refused, without the name in the message.
    let e = a
        .allocate(&caller(APP), &Selector::Heap(huge.clone()), 4096, "ok")
        .unwrap_err();
    assert!(
        e.message.len() < 200,
        "the message carries the name: {} bytes",
        e.message.len()
    );
    assert_eq!(a.backend().allocations(), 0);
    // As a debug name: served, and what the service keeps of it is bounded.
    let max = dmaheap_aidl::consts::MAX_DEBUG_NAME_BYTES as usize;
    let kept = sanitize_debug_name(&huge);
    assert!(
        kept.len() <= max,
        "{} bytes kept of a huge name",
        kept.len()
    );
    a.allocate(&caller(APP), &Selector::Heap("system".into()), 4096, &huge)
        .unwrap();
    let owners = a.recent_owners();
    assert!(owners.iter().all(|o| o.name.len() <= max));
    assert!(a
        .backend()
        .names()
        .iter()
        .all(|n| n.len() <= KERNEL_NAME_BYTES));
}

#[test]
fn the_log_admits_one_line_per_key_per_interval_and_counts_the_rest() {
    let log = RateLimitedLog::new(Duration::from_secs(3600), 3);
    assert_eq!(log.admit("uid 1 heap cma"), Some(0));
    assert_eq!(log.admit("uid 1 heap cma"), None);
    assert_eq!(log.admit("uid 1 heap cma"), None);
    assert_eq!(log.admit("uid 2 heap cma"), Some(0));
    assert_eq!(log.admit("uid 3 heap cma"), Some(0));
    // Full of fresh keys: a flood of new keys is held back too.
    assert_eq!(log.admit("uid 4 heap cma"), None);
    let log = RateLimitedLog::new(Duration::ZERO, 3);
    assert_eq!(log.admit("k"), Some(0));
    assert_eq!(log.admit("k"), Some(0));
}

#[test]
fn the_domain_is_the_type_field_of_the_context() {
    assert_eq!(
        domain_of_context("u:r:hal_camera_default:s0"),
        Some("hal_camera_default")
    );
    assert_eq!(
        domain_of_context("u:r:untrusted_app:s0:c512,c768\0"),
        Some("untrusted_app")
    );
    assert_eq!(domain_of_context("garbage"), None);
    assert_eq!(domain_of_context("u:r::s0"), None);
    assert!(Caller::with_context(2000, 1, None).is_privileged());
    assert!(Caller::with_context(10123, 1, Some("u:r:dumpstate:s0")).is_privileged());
    assert!(!Caller::with_context(10123, 1, Some("u:r:untrusted_app:s0")).is_privileged());
}

#[test]
fn a_dump_into_a_pipe_nobody_reads_gives_up_at_the_deadline() {
    let data = vec![b'x'; 1 << 20]; // more than any pipe buffer holds
    let (_unread, writer) = nix::unistd::pipe().unwrap();
    let mut writer = std::fs::File::from(writer);
    let e = write_with_deadline(&mut writer, &data, Duration::from_millis(200)).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");

    // A pipe that is read gets the whole dump.
    let (reader, writer) = nix::unistd::pipe().unwrap();
    let reading = std::thread::spawn(move || {
        let mut got = Vec::new();
        std::fs::File::from(reader).read_to_end(&mut got).unwrap();
        got.len()
    });
    let mut writer = std::fs::File::from(writer);
    write_with_deadline(&mut writer, &data, Duration::from_secs(600)).unwrap();
    drop(writer);
    assert_eq!(reading.join().unwrap(), data.len());
}

#[test]
fn the_phases_of_an_allocation_are_timed_and_dumped() {
    let a = allocator();
    a.allocate(&caller(APP), &Selector::Heap("system".into()), 4096, "x")
        .unwrap();
    let phases: Vec<_> = dmaheap_aidl::phase_dump::parse(&a.dump())
        .into_iter()
        .map(|p| (p.phase, p.count))
        .collect();
    for phase in [
        "validation, policy, access",
        "allocation ioctl",
        "name + SET_NAME",
    ] {
        assert!(
            phases.contains(&(phase.to_owned(), 1)),
            "{phase}: {phases:?}"
        );
    }
}
