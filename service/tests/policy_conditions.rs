//! What a rule may see of a request beyond its usage (format, size, caller), the vendor's own
//! usage bits, ION entries keyed on flags, heap granules, delegation and acting on behalf of
//! another process; and that every new field is validated with the line it is on.

use dmaheap_aidl::consts::ION_FLAG_CACHED;
use dmaheap_aidl::usage::*;
use dmaheap_service::policy::{BufferRequest, Policy, PolicyError};
use dmaheap_service::{Caller, ErrorKind};

fn all_present(_: &str) -> bool {
    true
}

fn gralloc() -> Caller {
    Caller::with_context(1000, 500, Some("u:r:hal_graphics_allocator_default:s0"))
}

fn camera_hal() -> Caller {
    Caller::with_context(1047, 600, Some("u:r:hal_camera_default:s0"))
}

fn app() -> Caller {
    Caller::with_context(10123, 700, Some("u:r:untrusted_app:s0:c512,c768"))
}

/// The line and text of the error a policy is refused with.
fn refused(text: &str) -> (usize, String) {
    match Policy::parse(text, "test.toml") {
        Err(e @ PolicyError::Invalid { .. }) | Err(e @ PolicyError::Syntax { .. }) => {
            (e.line().expect("error names a line"), e.to_string())
        }
        other => panic!("accepted an invalid policy: {other:?}"),
    }
}

const HEAPS: &str = r#"
[[heap]]
name = "system"
[[heap]]
name = "system-uncached"
cached = false
[[heap]]
name = "cma"
contiguous = true
allow_domains = ["hal_camera_default", "hal_graphics_allocator_default"]
allow_uids = ["cameraserver"]
"#;

const CONDITIONS: &str = r#"
[[rule]]
name = "camera-cma"
all_of = "CAMERA_OUTPUT"
callers = { domains = ["hal_camera_default"], uids = ["cameraserver"] }
heaps = ["cma"]

[[rule]]
name = "camera-input-gated"
all_of = "CAMERA_INPUT"
allow_domains = ["hal_camera_default"]
heaps = ["cma"]

[[rule]]
name = "raw"
formats = ["RAW16", 0x25]
heaps = ["system-uncached"]

[[rule]]
name = "small"
size = { min = "4K", max = "64K" }
heaps = ["cma"]

[[rule]]
name = "default"
heaps = ["system"]
"#;

fn conditions_policy() -> Policy {
    Policy::parse(&format!("{HEAPS}{CONDITIONS}"), "conditions.toml").unwrap()
}

fn rule_for(p: &Policy, request: BufferRequest, caller: &Caller) -> Result<String, ErrorKind> {
    p.resolve_request(&request, &all_present, caller)
        .map(|r| r.rule)
        .map_err(|e| e.kind)
}

#[test]
fn a_rule_whose_caller_condition_fails_is_passed_over_unlike_the_allow_gate() {
    let p = conditions_policy();
    let camera = BufferRequest::usage_only(CAMERA_OUTPUT);
    // The camera HAL (by domain) and cameraserver (by uid) get the CMA rule...
    assert_eq!(rule_for(&p, camera, &camera_hal()).unwrap(), "camera-cma");
    assert_eq!(
        rule_for(&p, camera, &Caller::new(1047, 9)).unwrap(),
        "camera-cma"
    );
    // ...everyone else, for the same usage, the next rule that holds: not a denial.
    let r = p.resolve_request(&camera, &all_present, &app()).unwrap();
    assert_eq!(
        (r.rule.as_str(), r.candidates[0].as_str()),
        ("default", "system")
    );
    assert!(
        r.reason
            .contains("passed over for their conditions: camera-cma (caller)"),
        "{}",
        r.reason
    );
    // gralloc may use the CMA heap, but the rule is for the camera only.
    assert_eq!(rule_for(&p, camera, &gralloc()).unwrap(), "default");
    // The allow gate still refuses: a matching rule whose gate excludes the caller is
    // EX_SECURITY, not the next rule.
    let input = BufferRequest::usage_only(CAMERA_INPUT);
    assert_eq!(rule_for(&p, input, &app()), Err(ErrorKind::Denied));
    assert_eq!(
        rule_for(&p, input, &camera_hal()).unwrap(),
        "camera-input-gated"
    );
}

#[test]
fn format_conditions_match_named_and_numbered_formats_and_never_an_unformatted_request() {
    let p = conditions_policy();
    let raw16 = BufferRequest::usage_only(CPU_READ_OFTEN).with_format(0x20);
    assert_eq!(rule_for(&p, raw16, &app()).unwrap(), "raw");
    let raw10 = BufferRequest::usage_only(CPU_READ_OFTEN).with_format(0x25);
    assert_eq!(rule_for(&p, raw10, &app()).unwrap(), "raw");
    let yuv = BufferRequest::usage_only(CPU_READ_OFTEN).with_format(0x23);
    assert_eq!(rule_for(&p, yuv, &app()).unwrap(), "default");
    let unformatted = BufferRequest::usage_only(CPU_READ_OFTEN);
    assert_eq!(rule_for(&p, unformatted, &app()).unwrap(), "default");
}

#[test]
fn size_conditions_are_inclusive_and_never_match_a_request_without_a_size() {
    let p = conditions_policy();
    let sized = |size| BufferRequest::of_size(GPU_TEXTURE, size);
    // Inside and on both ends (the camera HAL may use the CMA heap the rule leads to).
    for size in [4096, 16384, 65536] {
        assert_eq!(
            rule_for(&p, sized(size), &camera_hal()).unwrap(),
            "small",
            "{size}"
        );
    }
    for size in [4095, 65537, 1 << 30] {
        assert_eq!(
            rule_for(&p, sized(size), &camera_hal()).unwrap(),
            "default",
            "{size}"
        );
    }
    // resolveUsage has no size: the size rule is passed over.
    let r = p
        .resolve_usage(GPU_TEXTURE, &all_present, &camera_hal())
        .unwrap();
    assert_eq!(r.rule, "default");
    assert!(r.reason.contains("small (size)"), "{}", r.reason);
    // A caller who may not use the heap of a matching size rule is refused by the heap, as
    // for any rule: conditions choose the rule, heaps' lists still decide access.
    assert_eq!(rule_for(&p, sized(4096), &app()), Err(ErrorKind::Denied));
}

#[test]
fn a_rule_with_conditions_is_not_a_catch_all() {
    // A conditional rule without usage conditions does not make the rules after it
    // unreachable; an unconditional one does.
    let text = format!(
        "{HEAPS}\n[[rule]]\nname = \"big\"\nsize = {{ min = \"1M\" }}\nheaps = [\"system\"]\n\
         [[rule]]\nname = \"rest\"\nheaps = [\"system-uncached\"]\n"
    );
    let p = Policy::parse(&text, "t").unwrap();
    let rule = |size| rule_for(&p, BufferRequest::of_size(0, size), &app()).unwrap();
    assert_eq!(rule(2 << 20), "big");
    assert_eq!(rule(4096), "rest");
}

#[test]
fn new_rule_conditions_are_validated_with_their_line() {
    let rule =
        |body: &str| format!("{HEAPS}\n[[rule]]\nname = \"r\"\n{body}\nheaps = [\"system\"]\n");
    // The rule's line: after HEAPS and the empty line the format adds.
    let rule_line = HEAPS.lines().count() + 2;
    for (body, expected) in [
        ("formats = [\"YCBCR_420\"]", "not a PixelFormat name"),
        ("formats = []", "can never match"),
        ("formats = [0x1_0000_0000]", "not a PixelFormat value"),
        ("size = { min = \"2M\", max = \"64K\" }", "above size.max"),
        ("size = { max = \"12Q\" }", "unknown unit"),
        ("size = { min = -1 }", "not a byte count"),
        ("size = {}", "neither min nor max"),
        ("callers = {}", "lists nobody"),
        (
            "callers = { domains = [\"bad domain\"] }",
            "not an SELinux type name",
        ),
        (
            "callers = { uids = [\"nosuchuser\"] }",
            "not an Android ID name",
        ),
    ] {
        let (line, message) = refused(&rule(body));
        assert_eq!(line, rule_line, "{body}: {message}");
        assert!(message.contains(expected), "{body}: {message}");
    }
    // A typo in a condition's table is refused too, not ignored.
    let (_, message) = refused(&rule("size = { maximum = \"2M\" }"));
    assert!(
        message.contains("maximum") || message.contains("did not match"),
        "{message}"
    );
}

const VENDOR_BITS: &str = r#"
[usage]
vendor_bits = { PRIVATE_ALLOC_UBWC = 28, PRIVATE_WFD = 21, HW_2D = 10 }

[[heap]]
name = "system"
[[heap]]
name = "system-uncached"
cached = false

[[rule]]
name = "wfd"
all_of = "PRIVATE_WFD|VIDEO_ENCODER"
heaps = ["system-uncached"]

[[rule]]
name = "default"
heaps = ["system"]
"#;

#[test]
fn declared_vendor_bits_are_accepted_named_in_rules_and_shown_by_name() {
    let plain = Policy::builtin_default();
    // Bit 21 is undefined by BufferUsage: refused by a policy that does not declare it...
    let e = plain
        .resolve_usage(1 << 21, &all_present, &gralloc())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedUsage);
    // ...accepted, and usable in a rule, by one that does.
    let p = Policy::parse(VENDOR_BITS, "vendor.toml").unwrap();
    let r = p
        .resolve_usage((1 << 21) | VIDEO_ENCODER, &all_present, &gralloc())
        .unwrap();
    assert_eq!(r.rule, "wfd");
    assert!(r.reason.contains("PRIVATE_WFD"), "{}", r.reason);
    assert!(p
        .resolve_usage((1 << 10) | GPU_TEXTURE, &all_present, &gralloc())
        .is_ok());
    // Bits nobody declared are still refused.
    let e = p
        .resolve_usage(1 << 19, &all_present, &gralloc())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedUsage);
    assert_eq!(
        p.describe_usage((1 << 28) | (1 << 21) | GPU_TEXTURE),
        "GPU_TEXTURE|PRIVATE_WFD|PRIVATE_ALLOC_UBWC"
    );
    // An undeclared name in a rule is an error naming it.
    let (_, message) = refused(&VENDOR_BITS.replace(
        "all_of = \"PRIVATE_WFD|VIDEO_ENCODER\"",
        "all_of = \"PRIVATE_WFDX\"",
    ));
    assert!(message.contains("PRIVATE_WFDX"), "{message}");
}

#[test]
fn a_vendor_bit_may_not_take_a_bit_buffer_usage_defines() {
    for (table, expected) in [
        ("{ MY_TEXTURE = 8 }", "BufferUsage's GPU_TEXTURE"),
        ("{ MY_READ = 1 }", "bit 1 is BufferUsage's"),
        ("{ MY_FRONT = 32 }", "FRONT_BUFFER"),
        ("{ TOO_HIGH = 64 }", "0 to 63"),
        ("{ NEGATIVE = -1 }", "0 to 63"),
        ("{ GPU_TEXTURE = 28 }", "is a BufferUsage name"),
        ("{ \"with space\" = 28 }", "not an identifier"),
    ] {
        let text = VENDOR_BITS.replace(
            "{ PRIVATE_ALLOC_UBWC = 28, PRIVATE_WFD = 21, HW_2D = 10 }",
            table,
        );
        let text = text.replace("PRIVATE_WFD|", "");
        let (line, message) = refused(&text);
        assert_eq!(line, 3, "{table}: {message}");
        assert!(message.contains(expected), "{table}: {message}");
    }
}

const ION_FLAGS: &str = r#"
[ion_flags]
ION_FLAG_SECURE = 31
ION_FLAG_CP_PIXEL = 19
ION_FLAG_CP_CAMERA = 21

[[heap]]
name = "system"
[[heap]]
name = "secure-pixel"
secure = true
allow_uids = ["system"]
[[heap]]
name = "secure-camera"
secure = true
allow_uids = ["system"]
[[heap]]
name = "vendor-heap"
allow_uids = ["system"]

[[rule]]
name = "default"
heaps = ["system"]

[[ion]]
id = 9
name = "secure, pixel"
flags_all = "ION_FLAG_SECURE|ION_FLAG_CP_PIXEL"
heap = "secure-pixel"

[[ion]]
id = 9
name = "secure, camera"
flags_all = ["ION_FLAG_SECURE", "ION_FLAG_CP_CAMERA"]
flags_none = "ION_FLAG_CP_PIXEL"
heap = "secure-camera"

[[ion]]
id = 25
heap = "system"

[[ion]]
id = 21
flags_all = "0x10000"
heap = "vendor-heap"

[[ion]]
id = 20
flags_none = "0x80000000"
pass_flags = "0xff0000"
heap = "vendor-heap"
"#;

fn ion_heap(p: &Policy, id: u32, flags: u32) -> Result<(String, u64), ErrorKind> {
    p.resolve_ion(1 << id, flags, &all_present, &gralloc())
        .map(|r| (r.candidates[0].clone(), r.heap_flags))
        .map_err(|e| e.kind)
}

#[test]
fn ion_entries_are_keyed_on_id_and_flags_first_match_wins() {
    let p = Policy::parse(ION_FLAGS, "ion.toml").unwrap();
    let secure = 1u32 << 31;
    let (pixel, camera) = (1u32 << 19, 1u32 << 21);
    assert_eq!(ion_heap(&p, 9, secure | pixel).unwrap().0, "secure-pixel");
    assert_eq!(ion_heap(&p, 9, secure | camera).unwrap().0, "secure-camera");
    // Pixel and camera together: the pixel entry applies first and does not take CP_CAMERA.
    let e = p
        .resolve_ion(1 << 9, secure | pixel | camera, &all_present, &gralloc())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument);
    assert!(
        e.message.contains("not supported for heap id 9"),
        "{}",
        e.message
    );
    // No target at all: no entry of the id applies.
    let e = p
        .resolve_ion(1 << 9, secure, &all_present, &gralloc())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument);
    assert!(
        e.message.contains("match no [[ion]] entry of heap id 9"),
        "{}",
        e.message
    );
    // An entry without flag conditions still takes only the generic flags.
    assert_eq!(
        ion_heap(&p, 25, ION_FLAG_CACHED as u32).unwrap().0,
        "system"
    );
    assert_eq!(ion_heap(&p, 25, 1 << 16), Err(ErrorKind::BadArgument));
}

#[test]
fn pass_flags_reach_the_heap_as_heap_flags() {
    let p = Policy::parse(ION_FLAGS, "ion.toml").unwrap();
    assert_eq!(
        ion_heap(&p, 20, 0x00a5_0000).unwrap(),
        ("vendor-heap".to_owned(), 0x00a5_0000)
    );
    assert_eq!(ion_heap(&p, 20, 0).unwrap().1, 0);
    // CACHED picks the heap; it is not passed.
    assert_eq!(
        ion_heap(&p, 20, 0x0001_0000 | ION_FLAG_CACHED as u32)
            .unwrap()
            .1,
        0x0001_0000
    );
    // Flags outside the mask are refused, not passed.
    assert_eq!(ion_heap(&p, 20, 0x0100_0000), Err(ErrorKind::BadArgument));
    // Usage rules never pass flags.
    let r = p
        .resolve_usage(GPU_TEXTURE, &all_present, &gralloc())
        .unwrap();
    assert_eq!(r.heap_flags, 0);
    // Two ids that both take 0x10000, one passing it to its heap and one not, cannot be one
    // request: a resolution carries one heap_flags value.
    let e = p
        .resolve_ion((1 << 21) | (1 << 20), 0x0001_0000, &all_present, &gralloc())
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadArgument);
    assert!(e.message.contains("passes heap flags"), "{}", e.message);
    // With flags both ids treat alike, they agree.
    let r = p
        .resolve_ion((1 << 25) | (1 << 20), 0, &all_present, &gralloc())
        .unwrap();
    assert_eq!(r.candidates, ["system", "vendor-heap"]);
}

#[test]
fn ion_flag_entries_are_validated_with_their_line() {
    let last_entry = "[[ion]]\nid = 20\nflags_none = \"0x80000000\"\npass_flags = \"0xff0000\"\nheap = \"vendor-heap\"\n";
    assert!(ION_FLAGS.ends_with(last_entry));
    let base = &ION_FLAGS[..ION_FLAGS.len() - last_entry.len()];
    let entry_line = base.lines().count() + 1;
    for (entry, expected) in [
        (
            "flags_all = \"ION_FLAG_SECURE\"\nflags_none = \"ION_FLAG_SECURE\"",
            "can never apply",
        ),
        (
            "pass_flags = \"ION_FLAG_CACHED\"",
            "may not pass ION_FLAG_CACHED",
        ),
        ("flags_all = \"ION_FLAG_CP_NOTHING\"", "unknown ION flag"),
        (
            "flags_all = \"0x100000000\"",
            "does not fit the 32-bit ION flags",
        ),
        // A second entry that applies to everything the first of id 9 does.
        (
            "id = 9\nflags_all = \"ION_FLAG_SECURE|ION_FLAG_CP_PIXEL|ION_FLAG_CP_CAMERA\"",
            "already mapped on line",
        ),
    ] {
        let id = if entry.contains("id = 9") {
            ""
        } else {
            "id = 20\n"
        };
        let text = format!("{base}[[ion]]\n{id}{entry}\nheap = \"vendor-heap\"\n");
        let (line, message) = refused(&text);
        assert_eq!(line, entry_line, "{entry}: {message}");
        assert!(message.contains(expected), "{entry}: {message}");
    }
    let (line, message) =
        refused(&ION_FLAGS.replace("ION_FLAG_CP_CAMERA = 21", "ION_FLAG_CP_CAMERA = 32"));
    assert_eq!(line, 5, "{message}");
    assert!(message.contains("32-bit ION flags"), "{message}");
    let (_, message) =
        refused(&ION_FLAGS.replace("ION_FLAG_CP_CAMERA = 21", "ION_FLAG_CACHED = 3"));
    assert!(message.contains("built in"), "{message}");
}

const GRANULES: &str = r#"
[service]
on_behalf_domains = ["hal_graphics_allocator_default", "vendor_gralloc"]

[[heap]]
name = "system"
[[heap]]
name = "system-uncached"
cached = false
delegate = false
[[heap]]
name = "display"
contiguous = true
granule = "2M"
allow_domains = ["hal_graphics_allocator_default", "hal_graphics_composer_default"]
delegate = { domains = ["hal_graphics_allocator_default"] }
[[heap]]
name = "cma"
contiguous = true
allow_domains = ["hal_camera_default"]
[[heap]]
name = "app-only"
allow_uids = [10123]
[[heap]]
name = "camera-delegated"
contiguous = true
allow_domains = ["hal_camera_default"]
delegate = true

[[rule]]
name = "display"
all_of = "COMPOSER_CLIENT_TARGET"
heaps = ["display", "system"]
[[rule]]
name = "uncached"
none_of = "CPU_READ_MASK|CPU_WRITE_MASK"
heaps = ["system-uncached"]
[[rule]]
name = "default"
heaps = ["system"]
"#;

#[test]
fn the_resolution_carries_the_first_candidates_granule_and_delegation() {
    let p = Policy::parse(GRANULES, "granules.toml").unwrap();
    let resolve = |usage, present: &dyn Fn(&str) -> bool, caller: &Caller| {
        p.resolve_usage(usage, present, caller).unwrap()
    };
    let r = resolve(COMPOSER_CLIENT_TARGET, &all_present, &gralloc());
    assert_eq!((r.candidates[0].as_str(), r.granule), ("display", 2 << 20));
    assert!(r.delegable, "delegate lists gralloc's domain");
    // The composer may use the heap but is not in its delegate list.
    let composer = Caller::with_context(1000, 501, Some("u:r:hal_graphics_composer_default:s0"));
    let r = resolve(COMPOSER_CLIENT_TARGET, &all_present, &composer);
    assert!(!r.delegable);
    // The display heap absent: the first candidate is system, page granule, delegable.
    let r = resolve(COMPOSER_CLIENT_TARGET, &|h| h != "display", &gralloc());
    assert_eq!(
        (r.candidates[0].as_str(), r.granule, r.delegable),
        ("system", 0, true)
    );
    // delegate = false on a plain heap.
    let r = resolve(GPU_TEXTURE, &all_present, &gralloc());
    assert_eq!(
        (r.candidates[0].as_str(), r.delegable),
        ("system-uncached", false)
    );
    // Defaults: plain heaps yes, contiguous and listed heaps no.
    assert!(p.delegable("system", &app()));
    assert!(
        !p.delegable("cma", &camera_hal()),
        "contiguous: not without delegate"
    );
    assert!(
        !p.delegable("app-only", &app()),
        "listed: not without delegate"
    );
    // delegate = true opens a restricted heap to delegation, for the callers it admits only:
    // delegation never widens access.
    assert!(p.delegable("camera-delegated", &camera_hal()));
    assert!(!p.delegable("camera-delegated", &app()));
    assert!(!p.delegable("display", &app()));
    assert!(!p.delegable("no-such-heap", &gralloc()));
}

#[test]
fn only_the_listed_domains_may_act_on_behalf_of_another_process() {
    let p = Policy::parse(GRANULES, "granules.toml").unwrap();
    assert!(p.may_act_on_behalf(&gralloc()));
    assert!(p.may_act_on_behalf(&Caller::with_context(
        1000,
        5,
        Some("u:r:vendor_gralloc:s0")
    )));
    assert!(!p.may_act_on_behalf(&camera_hal()));
    // By domain only: uid 1000 without SELinux context is not gralloc.
    assert!(!p.may_act_on_behalf(&Caller::new(1000, 5)));
    // Default: the gralloc allocator's domain.
    let default = Policy::builtin_default();
    assert_eq!(
        default.on_behalf_domains,
        ["hal_graphics_allocator_default"]
    );
    assert!(default.may_act_on_behalf(&gralloc()));
    assert!(!default.may_act_on_behalf(&camera_hal()));
}

#[test]
fn granule_delegate_and_service_fields_are_validated_with_their_line() {
    let display_line = GRANULES
        .lines()
        .position(|l| l == "name = \"display\"")
        .unwrap();
    for (from, to, expected) in [
        ("granule = \"2M\"", "granule = \"3M\"", "not a power of two"),
        ("granule = \"2M\"", "granule = 2048", "at least 4096"),
        ("granule = \"2M\"", "granule = \"2X\"", "not a byte count"),
        ("granule = \"2M\"", "granule = \"2T\"", "unknown unit"),
        (
            "delegate = { domains = [\"hal_graphics_allocator_default\"] }",
            "delegate = {}",
            "lists nobody",
        ),
        (
            "delegate = { domains = [\"hal_graphics_allocator_default\"] }",
            "delegate = { domains = [\"no spaces\"] }",
            "not an SELinux type name",
        ),
    ] {
        let (line, message) = refused(&GRANULES.replace(from, to));
        assert_eq!(line, display_line, "{to}: {message}");
        assert!(message.contains(expected), "{to}: {message}");
    }
    let (line, message) = refused(&GRANULES.replace("\"vendor_gralloc\"", "\"not a domain\""));
    assert_eq!(line, 2, "{message}");
    assert!(message.contains("on_behalf_domains"), "{message}");
}

#[test]
fn dump_text_shows_the_new_conditions() {
    let p = Policy::parse(&format!("{HEAPS}{CONDITIONS}"), "conditions.toml").unwrap();
    let shown = |name: &str| {
        let rule = p.rules.iter().find(|r| r.name == name).unwrap();
        p.describe_rule_conditions(rule)
    };
    assert_eq!(
        shown("camera-cma"),
        "all_of=CAMERA_OUTPUT callers=[domains=hal_camera_default uids=cameraserver]"
    );
    assert_eq!(shown("raw"), "formats=RAW16,RAW10");
    assert_eq!(shown("small"), "size=4K..64K");
    assert_eq!(
        shown("camera-input-gated"),
        "all_of=CAMERA_INPUT allow=[domains=hal_camera_default uids=]"
    );
    assert_eq!(shown("default"), "always");

    let p = Policy::parse(ION_FLAGS, "ion.toml").unwrap();
    let entry = |line_name: &str| p.ion.iter().find(|m| m.name == line_name).unwrap();
    assert_eq!(
        p.describe_ion_entry(entry("secure, camera")),
        "flags_all=ION_FLAG_CP_CAMERA|ION_FLAG_SECURE flags_none=ION_FLAG_CP_PIXEL"
    );
    assert_eq!(
        p.describe_ion_entry(entry("ion-20")),
        "flags_none=ION_FLAG_SECURE pass_flags=0xff0000"
    );
    assert_eq!(p.describe_ion_entry(entry("ion-25")), "any flags");

    let p = Policy::parse(GRANULES, "granules.toml").unwrap();
    assert_eq!(
        p.describe_heap_extras(p.heap("display").unwrap()),
        "granule=2M delegate=domains=hal_graphics_allocator_default uids="
    );
    assert_eq!(
        p.describe_heap_extras(p.heap("system").unwrap()),
        "granule=page delegate=true"
    );
}
