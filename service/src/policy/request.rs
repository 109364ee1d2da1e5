//! What a request asks for, as the rules see it: the usage and, where the caller gives them, the
//! buffer's format, dimensions and size.
//!
//! Vendor tables decide on more than the usage bits: Qualcomm's `UseUncached(format, usage)`,
//! Codec2's mapper keyed on usage and capacity, a camera heap for one caller only. A
//! [`BufferRequest`] carries what such a rule needs; a request that leaves a field out never
//! matches a rule that asks about it.

/// `android.hardware.graphics.common.PixelFormat`, by name, for `formats = [...]` in rules and
/// for messages.
///
/// Source: AOSP `hardware/interfaces`, `graphics/common/aidl/android/hardware/graphics/common/
/// PixelFormat.aidl`, read in LineageOS/android_hardware_interfaces at
/// 04420276f1857288b920e300643dff5549beb5b7 (the enum ends at `BGRA_1010102 = 0x43`). Vendor
/// formats (the 0x100..=0x1FF range and vendor-specific values such as Qualcomm's
/// `0x7FA30C06`) have no name here: rules give them as numbers.
pub const PIXEL_FORMATS: &[(&str, i32)] = &[
    ("UNSPECIFIED", 0),
    ("RGBA_8888", 0x1),
    ("RGBX_8888", 0x2),
    ("RGB_888", 0x3),
    ("RGB_565", 0x4),
    ("BGRA_8888", 0x5),
    ("YCBCR_422_SP", 0x10),
    ("YCRCB_420_SP", 0x11),
    ("YCBCR_422_I", 0x14),
    ("RGBA_FP16", 0x16),
    ("RAW16", 0x20),
    ("BLOB", 0x21),
    ("IMPLEMENTATION_DEFINED", 0x22),
    ("YCBCR_420_888", 0x23),
    ("RAW_OPAQUE", 0x24),
    ("RAW10", 0x25),
    ("RAW12", 0x26),
    ("RGBA_1010102", 0x2B),
    ("Y8", 0x2020_3859),
    ("Y16", 0x2036_3159),
    ("YV12", 0x3231_5659),
    ("DEPTH_16", 0x30),
    ("DEPTH_24", 0x31),
    ("DEPTH_24_STENCIL_8", 0x32),
    ("DEPTH_32F", 0x33),
    ("DEPTH_32F_STENCIL_8", 0x34),
    ("STENCIL_8", 0x35),
    ("YCBCR_P010", 0x36),
    ("HSV_888", 0x37),
    ("R_8", 0x38),
    ("R_16_UINT", 0x39),
    ("RG_1616_UINT", 0x3a),
    ("RGBA_10101010", 0x3b),
    ("YCBCR_P210", 0x3c),
    ("R_12_UINT", 0x3d),
    ("R_14_UINT", 0x3e),
    ("RG_1212_UINT", 0x3f),
    ("RG_1414_UINT", 0x40),
    ("RGBA_12121212_UINT", 0x41),
    ("RGBA_14141414_UINT", 0x42),
    ("BGRA_1010102", 0x43),
];

/// The PixelFormat value of a name (case-insensitive).
pub fn pixel_format_of_name(name: &str) -> Option<i32> {
    PIXEL_FORMATS
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, value)| value)
}

/// A format as messages show it: its PixelFormat name, or hex for a vendor format.
pub fn describe_pixel_format(format: i32) -> String {
    PIXEL_FORMATS
        .iter()
        .find(|(_, v)| *v == format)
        .map_or_else(|| format!("{format:#x}"), |(name, _)| (*name).to_owned())
}

/// One allocation request as the policy resolves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferRequest {
    /// `android.hardware.graphics.common.BufferUsage` bits.
    pub usage: u64,
    /// An `android.hardware.graphics.common.PixelFormat` value; `None` when the caller gave
    /// none. A rule with `formats` never matches a request without one.
    pub format: Option<i32>,
    /// In pixels; 0 when not given (no rule condition reads them yet: they are carried for the
    /// vendor tables that decide on dimensions, and for messages).
    pub width: u32,
    pub height: u32,
    pub layer_count: u32,
    /// The bytes the caller asked for, before any rounding to pages or a heap's granule;
    /// `None` where there is no size (`resolveUsage`). A rule with `size` never matches a
    /// request without one.
    pub size: Option<u64>,
}

impl BufferRequest {
    /// A request known by its usage alone (`allocateByUsage` before version 2, `resolveUsage`).
    pub fn usage_only(usage: u64) -> Self {
        Self {
            usage,
            format: None,
            width: 0,
            height: 0,
            layer_count: 0,
            size: None,
        }
    }

    /// A request of `size` bytes for `usage`, without a format.
    pub fn of_size(usage: u64, size: u64) -> Self {
        Self {
            size: Some(size),
            ..Self::usage_only(usage)
        }
    }

    /// The same request with `format`.
    pub fn with_format(self, format: i32) -> Self {
        Self {
            format: Some(format),
            ..self
        }
    }

    /// What the request gives besides the usage, for messages: `format RAW16, 4096 bytes`;
    /// empty for a usage-only request.
    pub fn describe_shape(&self) -> String {
        let mut parts = Vec::new();
        if let Some(format) = self.format {
            parts.push(format!("format {}", describe_pixel_format(format)));
        }
        if self.width != 0 || self.height != 0 {
            parts.push(format!("{}x{}", self.width, self.height));
        }
        if self.layer_count > 1 {
            parts.push(format!("{} layers", self.layer_count));
        }
        if let Some(size) = self.size {
            parts.push(format!("{size} bytes"));
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pixel_format_names_round_trip_and_vendor_formats_stay_numeric() {
        for &(name, value) in PIXEL_FORMATS {
            assert_eq!(pixel_format_of_name(name), Some(value), "{name}");
            assert_eq!(describe_pixel_format(value), name);
        }
        assert_eq!(pixel_format_of_name("ycbcr_420_888"), Some(0x23));
        assert_eq!(describe_pixel_format(0x7FA3_0C06), "0x7fa30c06");
        assert_eq!(pixel_format_of_name("YCBCR_420"), None);
    }
}
