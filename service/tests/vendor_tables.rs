//! Replays of the vendor example policies (`policy/examples/*.toml`) against the decisions of
//! the vendor code each one was read from.
//!
//! Each table is data: a request (usage bits, format, size), the heaps that are absent, and
//! what the vendor's own heap-selection code picks for it, with the function and line of that
//! code. The usage bits of vendor flags are restated here from the vendor headers, not taken
//! from the policy, so that a policy naming the wrong bit fails its replay. The caller is the
//! gralloc allocator, which is who makes these requests on a device. Every heap the example
//! declares is present unless the case says which are not.

use dmaheap_aidl::consts::ION_FLAG_CACHED;
use dmaheap_aidl::usage::*;
use dmaheap_service::policy::{BufferRequest, Policy};
use dmaheap_service::{Caller, ErrorKind};

fn gralloc() -> Caller {
    Caller::with_context(1000, 500, Some("u:r:hal_graphics_allocator_default:s0"))
}

fn load_example(name: &str) -> Policy {
    let path = format!("{}/policy/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    Policy::load(std::path::Path::new(&path)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// What the vendor's code does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Allocates from this heap.
    Heap(&'static str),
    /// This policy refuses the request with this error (the comment of the case says why the
    /// vendor's code differs, where it does).
    Refused(ErrorKind),
}
use Expect::*;

impl Expect {
    fn is(&self, got: &Result<String, ErrorKind>) -> bool {
        match (self, got) {
            (Heap(want), Ok(heap)) => want == heap,
            (Refused(want), Err(kind)) => want == kind,
            _ => false,
        }
    }
}

/// One gralloc request and the vendor's decision.
struct Case {
    /// The function and line of the vendor code that decides.
    source: &'static str,
    usage: u64,
    format: Option<i32>,
    size: Option<u64>,
    absent: &'static [&'static str],
    expect: Expect,
}

/// A usage-only case with every heap present.
const fn usage(source: &'static str, usage: u64, expect: Expect) -> Case {
    Case {
        source,
        usage,
        format: None,
        size: None,
        absent: &[],
        expect,
    }
}

const fn formatted(source: &'static str, usage: u64, format: i32, expect: Expect) -> Case {
    Case {
        format: Some(format),
        ..self::usage(source, usage, expect)
    }
}

const fn without(
    source: &'static str,
    usage: u64,
    absent: &'static [&'static str],
    expect: Expect,
) -> Case {
    Case {
        absent,
        ..self::usage(source, usage, expect)
    }
}

/// Resolves every case and reports all that differ at once, each with its source line.
fn replay(file: &str, cases: &[Case]) {
    let policy = load_example(file);
    let caller = gralloc();
    let mut wrong = Vec::new();
    for case in cases {
        let present = |heap: &str| policy.heap(heap).is_some() && !case.absent.contains(&heap);
        let request = BufferRequest {
            format: case.format,
            size: case.size,
            ..BufferRequest::usage_only(case.usage)
        };
        let got = policy
            .resolve_request(&request, &present, &caller)
            .map(|r| r.candidates[0].clone())
            .map_err(|e| e.kind);
        if !case.expect.is(&got) {
            wrong.push(format!(
                "{}: usage {} format {:?} absent {:?}: want {:?}, got {got:?}",
                case.source,
                policy.describe_usage(case.usage),
                case.format,
                case.absent,
                case.expect
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{file}: {} of {} cases differ from the vendor code:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// One legacy ION request and the heap the vendor's table gives it.
struct IonCase {
    source: &'static str,
    id: u32,
    flags: u32,
    expect: Expect,
}

fn replay_ion(file: &str, cases: &[IonCase]) {
    let policy = load_example(file);
    let all_present = |heap: &str| policy.heap(heap).is_some();
    let mut wrong = Vec::new();
    for case in cases {
        let got = policy
            .resolve_ion(1 << case.id, case.flags, &all_present, &gralloc())
            .map(|r| r.candidates[0].clone())
            .map_err(|e| e.kind);
        if !case.expect.is(&got) {
            wrong.push(format!(
                "{}: ION id {} flags {:#x}: want {:?}, got {got:?}",
                case.source, case.id, case.flags, case.expect
            ));
        }
    }
    assert!(wrong.is_empty(), "{file}:\n{}", wrong.join("\n"));
}

/// Pixel gchips' private usage bits: gralloc4/src/mali_gralloc_usages.h
/// (GRALLOC_USAGE_PRIVATE_n) and pixel-gralloc/usage.h.
mod gchips {
    pub const PLACEHOLDER_BUFFER: u64 = 1 << 28;
    pub const TPU_OUTPUT: u64 = 1 << 31; // GRALLOC_USAGE_PRIVATE_3
    pub const TPU_INPUT: u64 = 1 << 62; // GRALLOC_USAGE_PRIVATE_5
    pub const FACEAUTH_RAW_EVAL: u64 = 1 << 63;
    pub const HW_2D: u64 = 0x400;
}

/// hardware/google/gchips at 7cdd822b3f98c2cdaa39b83dbf0383701eb5b468; lines of
/// gralloc4/src/allocator/mali_gralloc_ion.cpp unless said otherwise.
#[test]
fn pixel_gchips_replay() {
    use gchips::*;
    const CAMERA_HEAPS: &[&str] = &["gcma_camera", "gcma_camera-uncached"];
    let cases = [
        usage(
            "hidl_common/Allocator.cpp:83 placeholder, alloc_from_dmabuf_heap:213",
            PLACEHOLDER_BUFFER | GPU_TEXTURE,
            Heap("system"),
        ),
        usage(
            "exact_usage_heaps faceauth_evaluation_heap :93-96",
            PROTECTED | CAMERA_OUTPUT | CAMERA_INPUT | FACEAUTH_RAW_EVAL,
            Heap("faeval-secure"),
        ),
        usage(
            "exact_usage_heaps isp_image_heap :98-100",
            PROTECTED | CAMERA_OUTPUT | TPU_INPUT,
            Heap("faimg-secure"),
        ),
        usage(
            "exact_usage_heaps isp_internal_heap :102-104",
            PROTECTED | CAMERA_OUTPUT | CAMERA_INPUT,
            Heap("farawimg-secure"),
        ),
        usage(
            "exact_usage_heaps isp_preview_heap :106-109",
            PROTECTED | CAMERA_OUTPUT | COMPOSER_OVERLAY | GPU_TEXTURE,
            Heap("faprev-secure"),
        ),
        usage(
            "exact_usage_heaps ml_model_heap :111-113",
            PROTECTED | TPU_INPUT,
            Heap("famodel-secure"),
        ),
        usage(
            "exact_usage_heaps tpu_heap :115-117",
            PROTECTED | TPU_OUTPUT | TPU_INPUT,
            Heap("faceauth_tpu-secure"),
        ),
        usage(
            "exact_usage_heaps protected framebuffer :120-124",
            PROTECTED | GPU_TEXTURE | GPU_RENDER_TARGET | COMPOSER_OVERLAY | COMPOSER_CLIENT_TARGET,
            Heap("framebuffer-secure"),
        ),
        without(
            "find_first_available_heap({framebuffer-secure, vframe-secure}) :123, :72-80",
            PROTECTED | GPU_TEXTURE | GPU_RENDER_TARGET | COMPOSER_OVERLAY | COMPOSER_CLIENT_TARGET,
            &["framebuffer-secure"],
            Heap("vframe-secure"),
        ),
        usage(
            "exact_usage_heaps protected GPU composition :126-130",
            PROTECTED | GPU_TEXTURE | GPU_RENDER_TARGET | COMPOSER_OVERLAY,
            Heap("framebuffer-secure"),
        ),
        usage(
            "exact means usage == bits (:184): one more bit falls to the protected catch-all :151-154",
            PROTECTED | CAMERA_OUTPUT | TPU_INPUT | CPU_READ_OFTEN,
            Heap("vframe-secure"),
        ),
        usage(
            "inexact PROTECTED|HW_TEXTURE :136-139",
            PROTECTED | GPU_TEXTURE | VIDEO_DECODER,
            Heap("vframe-secure"),
        ),
        usage(
            "inexact PROTECTED|HW_RENDER :140-143",
            PROTECTED | GPU_RENDER_TARGET,
            Heap("vframe-secure"),
        ),
        usage(
            "inexact PROTECTED|HW_COMPOSER, HWC but not GPU :145-149",
            PROTECTED | COMPOSER_OVERLAY | VIDEO_DECODER,
            Heap("vscaler-secure"),
        ),
        usage(
            "inexact catch-all for protected :151-154",
            PROTECTED | VIDEO_DECODER,
            Heap("vframe-secure"),
        ),
        usage(
            "protected catch-all :151 comes before the sensor heap :157",
            PROTECTED | SENSOR_DIRECT_DATA,
            Heap("vframe-secure"),
        ),
        usage(
            "inexact SENSOR_DIRECT_DATA :157-161",
            SENSOR_DIRECT_DATA | CPU_READ_RARELY,
            Heap("sensor_direct_heap"),
        ),
        usage(
            "inexact HW_CAMERA_WRITE -> gcma_camera-uncached :163-167",
            CAMERA_OUTPUT | GPU_TEXTURE,
            Heap("gcma_camera-uncached"),
        ),
        without(
            "find_first_available_heap({gcma_camera-uncached, system-uncached}) :166",
            CAMERA_OUTPUT | GPU_TEXTURE,
            CAMERA_HEAPS,
            Heap("system-uncached"),
        ),
        usage(
            "inexact HW_CAMERA_READ :169-173, SW_READ_OFTEN -> gcma_camera :194-196",
            CAMERA_INPUT | CPU_READ_OFTEN,
            Heap("gcma_camera"),
        ),
        without(
            "camera without GCMA, SW_READ_OFTEN -> system :197-199",
            CAMERA_OUTPUT | CPU_READ_OFTEN,
            CAMERA_HEAPS,
            Heap("system"),
        ),
        usage(
            "SW_READ_RARELY is not SW_READ_OFTEN (:195): the uncached camera heap",
            CAMERA_OUTPUT | CPU_READ_RARELY,
            Heap("gcma_camera-uncached"),
        ),
        usage(
            "catch-all to system-uncached :175-178",
            GPU_TEXTURE | COMPOSER_OVERLAY,
            Heap("system-uncached"),
        ),
        usage(
            "catch-all, SW_READ_OFTEN -> system :197-199",
            GPU_TEXTURE | CPU_READ_OFTEN | CPU_WRITE_OFTEN,
            Heap("system"),
        ),
        usage(
            "catch-all, CPU writes often but reads rarely: still uncached :197-198",
            CPU_READ_RARELY | CPU_WRITE_OFTEN,
            Heap("system-uncached"),
        ),
        usage(
            "mali_gralloc_ion_allocate_attr :335 (metadata: SW_READ_OFTEN|SW_WRITE_OFTEN)",
            CPU_READ_OFTEN | CPU_WRITE_OFTEN,
            Heap("system"),
        ),
        usage(
            "mali_gralloc_usages.h VALID_USAGE has GRALLOC_USAGE_HW_2D (bit 10); catch-all",
            HW_2D | COMPOSER_OVERLAY,
            Heap("system-uncached"),
        ),
        // gchips allocates a placeholder from "system" even when PROTECTED; this HAL never
        // serves PROTECTED from a non-secure heap.
        usage(
            "Allocator.cpp:83 placeholder with PROTECTED (differs: refused here)",
            PLACEHOLDER_BUFFER | PROTECTED,
            Refused(ErrorKind::UnsupportedUsage),
        ),
        // gchips returns the name and the allocation fails; here the request is refused.
        without(
            "tpu_heap :115-117 with the heap absent",
            PROTECTED | TPU_OUTPUT | TPU_INPUT,
            &["faceauth_tpu-secure"],
            Refused(ErrorKind::UnsupportedUsage),
        ),
    ];
    replay("pixel-gchips.toml", &cases);
}

/// QTI's private usage bits and formats: display-commonsys-intf gralloc/QtiGrallocDefs.h
/// (lineage-21.0, f75571a9d6947c4dc70f3e5138a0cd3df4302c71).
mod qti {
    pub const PRIVATE_ALLOC_UBWC: u64 = 1 << 28;
    pub const PRIVATE_UNCACHED: u64 = 1 << 29;
    pub const PRIVATE_SECURE_DISPLAY: u64 = 1 << 31;
    pub const PRIVATE_CDSP: u64 = 1 << 50;
    pub const PRIVATE_WFD: u64 = 1 << 51;
    pub const PRIVATE_TRUSTED_VM: u64 = 1 << 53;
    pub const YCBCR_420_SP_VENUS_UBWC: i32 = 0x7FA3_0C06;
    pub const NV12_UBWC_FLEX: i32 = 0x126;
    pub const RGBA_8888: i32 = 0x1;
    pub const YCBCR_420_888: i32 = 0x23;
    pub const DEPTH_24_STENCIL_8: i32 = 0x32;
    /// msm_ion.h (msm-5.4, ION ABI 3).
    pub const ION_FLAG_SECURE: u32 = 1 << 31;
    pub const ION_FLAG_CP_PIXEL: u32 = 1 << 19;
    pub const ION_FLAG_CP_NON_PIXEL: u32 = 1 << 20;
    pub const ION_FLAG_CP_CAMERA: u32 = 1 << 21;
    pub const ION_FLAG_CP_SEC_DISPLAY: u32 = 1 << 25;
    pub const ION_FLAG_CP_CDSP: u32 = 1 << 29;
}

/// hardware/qcom/display lineage-22.0-caf-sm8550 at f88fee79170e224fd229691aaffc2ccc0fa78199:
/// gralloc/gr_dma_mgr.cpp GetHeapInfo (heap) and gralloc/gr_utils.cpp UseUncached (cached or
/// not, which picks qcom,system-uncached on dma-buf heaps where the kernel has it).
#[test]
fn qualcomm_replay() {
    use qti::*;
    const UNCACHED: Expect = Heap("qcom,system-uncached");
    const CACHED: Expect = Heap("qcom,system");
    let cases = [
        formatted(
            "GetHeapInfo default qcom,system :260; UseUncached false (no rarely, no UBWC)",
            GPU_TEXTURE | COMPOSER_OVERLAY,
            YCBCR_420_888,
            CACHED,
        ),
        usage(
            "UseUncached: CPU often is cached :1457-1482",
            CPU_READ_OFTEN | CPU_WRITE_OFTEN,
            CACHED,
        ),
        usage(
            "UseUncached: CPU_READ_RARELY :1463",
            CPU_READ_RARELY | GPU_TEXTURE,
            UNCACHED,
        ),
        without(
            "gr_dma_mgr.cpp always allocates qcom,system (:260) where the kernel has no uncached heap",
            CPU_READ_RARELY | GPU_TEXTURE,
            &["qcom,system-uncached"],
            CACHED,
        ),
        usage(
            "UseUncached: CPU_WRITE_RARELY :1468",
            CPU_WRITE_RARELY,
            UNCACHED,
        ),
        usage(
            "UseUncached: write rarely wins over read often :1468",
            CPU_READ_OFTEN | CPU_WRITE_RARELY,
            UNCACHED,
        ),
        usage(
            "UseUncached: PRIVATE_UNCACHED :1458",
            PRIVATE_UNCACHED | CPU_READ_OFTEN,
            UNCACHED,
        ),
        usage(
            "UseUncached: GPU_DATA_BUFFER :1473",
            GPU_DATA_BUFFER | CPU_READ_OFTEN,
            UNCACHED,
        ),
        usage(
            "GetHeapInfo SENSOR_DIRECT_DATA -> qcom,adsp :300-307",
            SENSOR_DIRECT_DATA | CPU_READ_RARELY,
            Heap("qcom,adsp"),
        ),
        // QTI's sensor test overrides PROTECTED and allocates unprotected qcom,adsp memory;
        // this HAL never serves PROTECTED from a non-secure heap.
        usage(
            "GetHeapInfo SENSOR_DIRECT_DATA after PROTECTED (differs: refused here)",
            PROTECTED | SENSOR_DIRECT_DATA,
            Refused(ErrorKind::UnsupportedUsage),
        ),
        Case {
            size: Some(3 << 20),
            ..usage(
                "GetHeapInfo PRIVATE_TRUSTED_VM -> qcom,display, 2 MiB granule :294-298",
                PRIVATE_TRUSTED_VM | COMPOSER_OVERLAY,
                Heap("qcom,display"),
            )
        },
        usage(
            "GetHeapInfo PRIVATE_TRUSTED_VM with PROTECTED (differs: QTI qcom,display, refused here)",
            PROTECTED | PRIVATE_TRUSTED_VM,
            Refused(ErrorKind::UnsupportedUsage),
        ),
        usage(
            "GetHeapInfo PROTECTED|SECURE_DISPLAY -> qcom,display + cp_sec_display lend :263-265 \
             (refused here: no lend)",
            PROTECTED | PRIVATE_SECURE_DISPLAY | COMPOSER_OVERLAY,
            Refused(ErrorKind::UnsupportedUsage),
        ),
        usage(
            "GetHeapInfo PROTECTED|CAMERA_OUTPUT -> qcom,display + cp_camera lend :266-285 \
             (refused here: no lend)",
            PROTECTED | CAMERA_OUTPUT | COMPOSER_OVERLAY,
            Refused(ErrorKind::UnsupportedUsage),
        ),
        usage(
            "GetHeapInfo PROTECTED|PRIVATE_CDSP -> qcom,secure-cdsp :286-287",
            PROTECTED | PRIVATE_CDSP | CAMERA_INPUT,
            Heap("qcom,secure-cdsp"),
        ),
        usage(
            "GetHeapInfo PROTECTED -> qcom,secure-pixel :288-289",
            PROTECTED | VIDEO_DECODER | GPU_TEXTURE,
            Heap("qcom,secure-pixel"),
        ),
        usage(
            "GetHeapInfo PROTECTED -> qcom,secure-pixel :288-289 (composer only)",
            PROTECTED | COMPOSER_OVERLAY,
            Heap("qcom,secure-pixel"),
        ),
        formatted(
            "UseUncached: IsUBwcFormat(VENUS_UBWC) :1477, gr_utils.cpp:809",
            VIDEO_DECODER | GPU_TEXTURE,
            YCBCR_420_SP_VENUS_UBWC,
            UNCACHED,
        ),
        formatted(
            "IsUBwcFormat is UBWC whatever the CPU usage :887-891 (NV12_UBWC_FLEX)",
            CAMERA_OUTPUT | CPU_READ_OFTEN,
            NV12_UBWC_FLEX,
            UNCACHED,
        ),
        formatted(
            "IsUBwcEnabled: ALLOC_UBWC and IsUBwcSupported(RGBA_8888), no CPU :898-914",
            PRIVATE_ALLOC_UBWC | GPU_RENDER_TARGET | COMPOSER_OVERLAY,
            RGBA_8888,
            UNCACHED,
        ),
        formatted(
            "IsUBwcEnabled: COMPOSER_CLIENT_TARGET counts as UBWC usage :900",
            COMPOSER_CLIENT_TARGET | GPU_RENDER_TARGET,
            RGBA_8888,
            UNCACHED,
        ),
        formatted(
            "IsUBwcEnabled: CPU access disables UBWC :912",
            PRIVATE_ALLOC_UBWC | CPU_READ_OFTEN,
            RGBA_8888,
            CACHED,
        ),
        formatted(
            "IsUBwcSupported does not list YCBCR_420_888 :820-840",
            PRIVATE_ALLOC_UBWC | VIDEO_ENCODER,
            YCBCR_420_888,
            CACHED,
        ),
        usage(
            "UseUncached: `format &&`: no format, no UBWC :1477",
            PRIVATE_ALLOC_UBWC | GPU_TEXTURE,
            CACHED,
        ),
        formatted(
            "IsTileRendered(DEPTH_24_STENCIL_8) without CPU :846, :902",
            GPU_RENDER_TARGET,
            DEPTH_24_STENCIL_8,
            UNCACHED,
        ),
        usage(
            "QtiGrallocDefs.h PRIVATE_WFD (bit 51): default qcom,system :260",
            PRIVATE_WFD | VIDEO_ENCODER | CPU_READ_OFTEN,
            CACHED,
        ),
    ];
    replay("qualcomm.toml", &cases);

    // The trusted-UI path rounds sizes up to 2 MiB (GetHeapInfo :297): the heap's granule.
    let p = load_example("qualcomm.toml");
    let r = p
        .resolve_request(
            &BufferRequest::of_size(PRIVATE_TRUSTED_VM, 3 << 20),
            &|_| true,
            &gralloc(),
        )
        .unwrap();
    assert_eq!(
        (r.candidates[0].as_str(), r.granule),
        ("qcom,display", 2 << 20)
    );
    assert!(
        !r.delegable,
        "a contiguous heap is never delegated by default"
    );
    let r = p
        .resolve_request(
            &BufferRequest::usage_only(CPU_READ_OFTEN),
            &|_| true,
            &gralloc(),
        )
        .unwrap();
    assert_eq!((r.granule, r.delegable), (0, true));
}

/// gr_dma_legacy_mgr.cpp GetHeapInfo's MapNameToIonHeap pairs (MASTER_SIDE_CP flags,
/// lines 88-93), msm-5.4 ION ids (msm_ion_ids.h) and flags (msm_ion.h).
#[test]
fn qualcomm_ion_replay() {
    use qti::*;
    let secure = ION_FLAG_SECURE;
    let cases = [
        IonCase {
            source: "AllocBuffer :122: no ION_FLAG_CACHED when uncached",
            id: 25,
            flags: 0,
            expect: Heap("qcom,system-uncached"),
        },
        IonCase {
            source:
                "MapNameToIonHeap(qcom,system, system, ION_SYSTEM_HEAP_ID) with ION_FLAG_CACHED",
            id: 25,
            flags: ION_FLAG_CACHED as u32,
            expect: Heap("qcom,system"),
        },
        IonCase {
            source: "ION_SECURE on the system id: no entry (flags_none)",
            id: 25,
            flags: secure,
            expect: Refused(ErrorKind::BadArgument),
        },
        IonCase {
            source:
                "ION_CP_FLAGS = ION_SECURE|CP_PIXEL on ION_SECURE_HEAP_ID -> qcom,secure-pixel :90",
            id: 10,
            flags: secure | ION_FLAG_CP_PIXEL,
            expect: Heap("qcom,secure-pixel"),
        },
        IonCase {
            source: "ION_SECURE|CP_NON_PIXEL on ION_SECURE_HEAP_ID -> qcom,secure-non-pixel",
            id: 10,
            flags: secure | ION_FLAG_CP_NON_PIXEL,
            expect: Heap("qcom,secure-non-pixel"),
        },
        IonCase {
            source: "ION_SC_FLAGS target (CP_CAMERA) has no dma-buf heap without a VM lend",
            id: 10,
            flags: secure | ION_FLAG_CP_CAMERA,
            expect: Refused(ErrorKind::BadArgument),
        },
        IonCase {
            source: "two CP targets at once: the pixel entry does not take CP_CAMERA",
            id: 10,
            flags: secure | ION_FLAG_CP_PIXEL | ION_FLAG_CP_CAMERA,
            expect: Refused(ErrorKind::BadArgument),
        },
        IonCase {
            source: "MapNameToIonHeap(qcom,secure-cdsp, secure_carveout, SECURE|CP_CDSP)",
            id: 15,
            flags: secure | ION_FLAG_CP_CDSP,
            expect: Heap("qcom,secure-cdsp"),
        },
        IonCase {
            source: "MapNameToIonHeap(qcom,display, display, ION_DISPLAY_HEAP_ID): trusted UI",
            id: 3,
            flags: 0,
            expect: Heap("qcom,display"),
        },
        IonCase {
            source:
                "ION_SD_FLAGS on ION_SECURE_DISPLAY_HEAP_ID: qcom,display + lend, not mapped here",
            id: 11,
            flags: secure | ION_FLAG_CP_SEC_DISPLAY,
            expect: Refused(ErrorKind::NoSuchHeap),
        },
        IonCase {
            source: "MapNameToIonHeap(qcom,adsp, adsp, ION_ADSP_HEAP_ID)",
            id: 4,
            flags: 0,
            expect: Heap("qcom,adsp"),
        },
    ];
    replay_ion("qualcomm.toml", &cases);
}

/// Arm gralloc src/allocator/dma_buf_heaps/dma_buf_heaps.cpp pick_dma_buf_heap (Arm
/// 2022-2023), in codewalkerster/platform_hardware_amlogic_gralloc at
/// b2c95e6ee940c08ca02170b2fae860fc7468dd34; default build
/// (GRALLOC_USE_CONTIGUOUS_DISPLAY_MEMORY=0).
#[test]
fn arm_reference_replay() {
    let cases = [
        usage(
            "pick_dma_buf_heap: PROTECTED -> protected",
            PROTECTED | VIDEO_DECODER,
            Heap("protected"),
        ),
        usage(
            "pick_dma_buf_heap: PROTECTED is tested before HW_FB",
            PROTECTED | COMPOSER_CLIENT_TARGET,
            Heap("protected"),
        ),
        usage(
            "pick_dma_buf_heap: HW_FB without the encoder -> system (contiguous display memory off)",
            COMPOSER_CLIENT_TARGET | GPU_RENDER_TARGET,
            Heap("system"),
        ),
        usage(
            "pick_dma_buf_heap: HW_FB read by the encoder falls to the CPU tests -> system-uncached",
            COMPOSER_CLIENT_TARGET | VIDEO_ENCODER,
            Heap("system-uncached"),
        ),
        usage(
            "pick_dma_buf_heap: HW_FB with the encoder, SW_READ_OFTEN -> system",
            COMPOSER_CLIENT_TARGET | VIDEO_ENCODER | CPU_READ_OFTEN,
            Heap("system"),
        ),
        usage(
            "pick_dma_buf_heap: COMPOSER_OVERLAY is not HW_FB -> system-uncached",
            COMPOSER_OVERLAY | GPU_TEXTURE,
            Heap("system-uncached"),
        ),
        usage(
            "pick_dma_buf_heap: SW_READ_OFTEN -> system",
            CPU_READ_OFTEN | GPU_TEXTURE,
            Heap("system"),
        ),
        usage(
            "pick_dma_buf_heap: SW_READ_RARELY is not OFTEN -> system-uncached",
            CPU_READ_RARELY | CPU_WRITE_OFTEN,
            Heap("system-uncached"),
        ),
        usage(
            "pick_dma_buf_heap: camera, SW_READ_OFTEN -> system",
            CAMERA_OUTPUT | CPU_READ_OFTEN,
            Heap("system"),
        ),
        usage(
            "pick_dma_buf_heap: no CPU access -> system-uncached",
            GPU_TEXTURE | VIDEO_DECODER,
            Heap("system-uncached"),
        ),
        // Arm's allocation fails (libdmabufheap finds no such heap); here it is refused.
        without(
            "pick_dma_buf_heap: PROTECTED with no protected heap",
            PROTECTED,
            &["protected"],
            Refused(ErrorKind::UnsupportedUsage),
        ),
    ];
    replay("arm-reference.toml", &cases);
}

/// The same Arm code built with GRALLOC_USE_CONTIGUOUS_DISPLAY_MEMORY=1, which the example's
/// header says is one line: the framebuffer rule's heaps.
#[test]
fn arm_reference_replay_with_contiguous_display_memory() {
    let path = format!(
        "{}/policy/examples/arm-reference.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(path).unwrap();
    let rule = "none_of = \"VIDEO_ENCODER\"\nheaps = [\"system\"]";
    assert!(text.contains(rule), "the framebuffer rule changed shape");
    let contiguous = text.replace(rule, "none_of = \"VIDEO_ENCODER\"\nheaps = [\"linux,cma\"]");
    let p = Policy::parse(&contiguous, "arm-reference contiguous").unwrap();
    let heap = |usage, present: &dyn Fn(&str) -> bool| {
        p.resolve_usage(usage, present, &gralloc())
            .map(|r| r.candidates[0].clone())
            .map_err(|e| e.kind)
    };
    assert_eq!(
        heap(COMPOSER_CLIENT_TARGET | GPU_RENDER_TARGET, &|_| true).unwrap(),
        "linux,cma"
    );
    // Arm's code has no fallback for the framebuffer: no CMA, no buffer.
    assert_eq!(
        heap(COMPOSER_CLIENT_TARGET, &|h| h != "linux,cma"),
        Err(ErrorKind::NoSuchHeap)
    );
    assert_eq!(
        heap(COMPOSER_OVERLAY, &|_| true).unwrap(),
        "system-uncached"
    );
}

/// Arm's ION-era allocator: ION heap types as ids, ION_FLAG_CACHED for SW_READ_OFTEN.
#[test]
fn arm_reference_ion_replay() {
    let cases = [
        IonCase {
            source: "ION_HEAP_TYPE_SYSTEM without ION_FLAG_CACHED",
            id: 0,
            flags: 0,
            expect: Heap("system-uncached"),
        },
        IonCase {
            source: "set_ion_flags: SW_READ_OFTEN -> ION_FLAG_CACHED|ION_FLAG_CACHED_NEEDS_SYNC",
            id: 0,
            flags: 3,
            expect: Heap("system"),
        },
        IonCase {
            source: "pick_ion_heap: ION_HEAP_TYPE_DMA for the framebuffer",
            id: 4,
            flags: 0,
            expect: Heap("linux,cma"),
        },
    ];
    replay_ion("arm-reference.toml", &cases);
}
