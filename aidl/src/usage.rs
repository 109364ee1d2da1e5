//! `android.hardware.graphics.common.BufferUsage`: the 64-bit gralloc usage that
//! `IHeapAllocator.allocateByUsage` takes, with names for policies, tools and logs.
//!
//! The values are the ones the Android platform defines; the HAL cannot import that AIDL package
//! (it would tie a vendor interface to a framework one), so they are restated here once.

pub const CPU_READ_MASK: u64 = 0xf;
pub const CPU_READ_RARELY: u64 = 2;
pub const CPU_READ_OFTEN: u64 = 3;
pub const CPU_WRITE_MASK: u64 = 0xf << 4;
pub const CPU_WRITE_RARELY: u64 = 2 << 4;
pub const CPU_WRITE_OFTEN: u64 = 3 << 4;
pub const GPU_TEXTURE: u64 = 1 << 8;
pub const GPU_RENDER_TARGET: u64 = 1 << 9;
pub const COMPOSER_OVERLAY: u64 = 1 << 11;
pub const COMPOSER_CLIENT_TARGET: u64 = 1 << 12;
pub const PROTECTED: u64 = 1 << 14;
pub const COMPOSER_CURSOR: u64 = 1 << 15;
pub const VIDEO_ENCODER: u64 = 1 << 16;
pub const CAMERA_OUTPUT: u64 = 1 << 17;
pub const CAMERA_INPUT: u64 = 1 << 18;
pub const RENDERSCRIPT: u64 = 1 << 20;
pub const VIDEO_DECODER: u64 = 1 << 22;
pub const SENSOR_DIRECT_DATA: u64 = 1 << 23;
pub const GPU_DATA_BUFFER: u64 = 1 << 24;
pub const GPU_CUBE_MAP: u64 = 1 << 25;
pub const GPU_MIPMAP_COMPLETE: u64 = 1 << 26;
pub const HW_IMAGE_ENCODER: u64 = 1 << 27;
/// Bits 28..=31, free for vendor use.
pub const VENDOR_MASK: u64 = 0xf << 28;
pub const FRONT_BUFFER: u64 = 1 << 32;
/// Bits 48..=63, free for vendor use.
pub const VENDOR_MASK_HI: u64 = 0xffff << 48;

/// Every bit BufferUsage gives a meaning to, vendor ranges included. Anything else (bits 10,
/// 13, 19, 21 and 33..=47) is unknown, and the allocator VTS expects such usage to be refused.
pub const KNOWN_BITS: u64 = CPU_READ_MASK
    | CPU_WRITE_MASK
    | GPU_TEXTURE
    | GPU_RENDER_TARGET
    | COMPOSER_OVERLAY
    | COMPOSER_CLIENT_TARGET
    | PROTECTED
    | COMPOSER_CURSOR
    | VIDEO_ENCODER
    | CAMERA_OUTPUT
    | CAMERA_INPUT
    | RENDERSCRIPT
    | VIDEO_DECODER
    | SENSOR_DIRECT_DATA
    | GPU_DATA_BUFFER
    | GPU_CUBE_MAP
    | GPU_MIPMAP_COMPLETE
    | HW_IMAGE_ENCODER
    | VENDOR_MASK
    | FRONT_BUFFER
    | VENDOR_MASK_HI;

/// Names accepted in policies and on command lines. Masks and multi-bit values come first so
/// that [`describe`] prefers them over their single bits.
pub const NAMES: &[(&str, u64)] = &[
    ("CPU_READ_MASK", CPU_READ_MASK),
    ("CPU_WRITE_MASK", CPU_WRITE_MASK),
    ("VENDOR_MASK", VENDOR_MASK),
    ("VENDOR_MASK_HI", VENDOR_MASK_HI),
    ("CPU_READ_OFTEN", CPU_READ_OFTEN),
    ("CPU_READ_RARELY", CPU_READ_RARELY),
    ("CPU_WRITE_OFTEN", CPU_WRITE_OFTEN),
    ("CPU_WRITE_RARELY", CPU_WRITE_RARELY),
    ("GPU_TEXTURE", GPU_TEXTURE),
    ("GPU_RENDER_TARGET", GPU_RENDER_TARGET),
    ("COMPOSER_OVERLAY", COMPOSER_OVERLAY),
    ("COMPOSER_CLIENT_TARGET", COMPOSER_CLIENT_TARGET),
    ("PROTECTED", PROTECTED),
    ("COMPOSER_CURSOR", COMPOSER_CURSOR),
    ("VIDEO_ENCODER", VIDEO_ENCODER),
    ("CAMERA_OUTPUT", CAMERA_OUTPUT),
    ("CAMERA_INPUT", CAMERA_INPUT),
    ("RENDERSCRIPT", RENDERSCRIPT),
    ("VIDEO_DECODER", VIDEO_DECODER),
    ("SENSOR_DIRECT_DATA", SENSOR_DIRECT_DATA),
    ("GPU_DATA_BUFFER", GPU_DATA_BUFFER),
    ("GPU_CUBE_MAP", GPU_CUBE_MAP),
    ("GPU_MIPMAP_COMPLETE", GPU_MIPMAP_COMPLETE),
    ("HW_IMAGE_ENCODER", HW_IMAGE_ENCODER),
    ("FRONT_BUFFER", FRONT_BUFFER),
];

/// The value of one name (`GPU_TEXTURE`) or number (`0x100`, `256`).
pub fn parse_atom(atom: &str) -> Option<u64> {
    let atom = atom.trim();
    if let Some(hex) = atom.strip_prefix("0x").or_else(|| atom.strip_prefix("0X")) {
        return u64::from_str_radix(&hex.replace('_', ""), 16).ok();
    }
    if atom.starts_with(|c: char| c.is_ascii_digit()) {
        return atom.replace('_', "").parse().ok();
    }
    NAMES
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(atom))
        .map(|&(_, value)| value)
}

/// Parses `GPU_TEXTURE|CPU_READ_OFTEN|0x10000000` (also with `+`, `,` or spaces between atoms).
pub fn parse(expr: &str) -> Result<u64, String> {
    let mut usage = 0;
    let mut atoms = 0;
    for atom in expr.split(['|', '+', ',', ' ']).filter(|a| !a.is_empty()) {
        usage |= parse_atom(atom).ok_or_else(|| format!("unknown usage {atom:?}"))?;
        atoms += 1;
    }
    if atoms == 0 {
        return Err("empty usage".to_owned());
    }
    Ok(usage)
}

/// A readable form of `usage`: names where BufferUsage has them, hex for the rest.
pub fn describe(usage: u64) -> String {
    let mut parts = Vec::new();
    let mut rest = usage;
    // Whole masks first: policies use them to say "any CPU access" or "any vendor bit".
    for (name, mask) in [
        ("CPU_READ_MASK", CPU_READ_MASK),
        ("CPU_WRITE_MASK", CPU_WRITE_MASK),
        ("VENDOR_MASK", VENDOR_MASK),
        ("VENDOR_MASK_HI", VENDOR_MASK_HI),
    ] {
        if rest & mask == mask {
            parts.push(name.to_owned());
            rest &= !mask;
        }
    }
    // The CPU fields are enumerations inside their masks, not bit sets.
    for (mask, values) in [
        (
            CPU_READ_MASK,
            [
                ("CPU_READ_OFTEN", CPU_READ_OFTEN),
                ("CPU_READ_RARELY", CPU_READ_RARELY),
            ],
        ),
        (
            CPU_WRITE_MASK,
            [
                ("CPU_WRITE_OFTEN", CPU_WRITE_OFTEN),
                ("CPU_WRITE_RARELY", CPU_WRITE_RARELY),
            ],
        ),
    ] {
        let field = rest & mask;
        if let Some((name, _)) = values.iter().find(|(_, v)| *v == field) {
            parts.push((*name).to_owned());
            rest &= !mask;
        }
    }
    for &(name, bit) in NAMES {
        let in_cpu_fields = bit & (CPU_READ_MASK | CPU_WRITE_MASK) != 0;
        if bit.is_power_of_two() && !in_cpu_fields && rest & bit != 0 {
            parts.push(name.to_owned());
            rest &= !bit;
        }
    }
    join_flag_names(parts, rest)
}

/// `names|…|0x<rest>` as BufferUsage and ION flags are written in messages and `dump`: the named
/// flags, then the unnamed bits in hex, `0` when there are none.
pub fn join_flag_names(mut names: Vec<String>, unnamed_bits: u64) -> String {
    if unnamed_bits != 0 {
        names.push(format!("{unnamed_bits:#x}"));
    }
    if names.is_empty() {
        "0".to_owned()
    } else {
        names.join("|")
    }
}

/// Bits of `usage` that BufferUsage does not define.
pub fn unknown_bits(usage: u64) -> u64 {
    usage & !KNOWN_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unknown_bits_are_the_ones_buffer_usage_leaves_undefined() {
        assert_eq!(unknown_bits(1 << 33), 1 << 33);
        for bit in [10, 13, 19, 21, 33, 40, 47] {
            assert_ne!(unknown_bits(1 << bit), 0, "bit {bit}");
        }
        for bit in [8, 9, 11, 14, 17, 22, 28, 31, 32, 48, 63] {
            assert_eq!(unknown_bits(1 << bit), 0, "bit {bit}");
        }
    }

    #[test]
    fn expressions_parse_names_and_numbers() {
        assert_eq!(
            parse("GPU_TEXTURE|CPU_READ_OFTEN").unwrap(),
            GPU_TEXTURE | CPU_READ_OFTEN
        );
        assert_eq!(
            parse("camera_output + 0x1000_0000").unwrap(),
            CAMERA_OUTPUT | (1 << 28)
        );
        assert_eq!(parse("256").unwrap(), GPU_TEXTURE);
        assert!(parse("GPU_TEXTUR").unwrap_err().contains("GPU_TEXTUR"));
        assert!(parse(" | ").is_err());
    }

    #[test]
    fn describe_names_cpu_fields_and_leaves_the_rest_in_hex() {
        assert_eq!(
            describe(CPU_READ_OFTEN | CPU_WRITE_RARELY | GPU_TEXTURE),
            "CPU_READ_OFTEN|CPU_WRITE_RARELY|GPU_TEXTURE"
        );
        assert_eq!(describe(PROTECTED | (1 << 33)), "PROTECTED|0x200000000");
        assert_eq!(describe(0), "0");
        assert_eq!(
            describe(CPU_READ_MASK | CPU_WRITE_MASK),
            "CPU_READ_MASK|CPU_WRITE_MASK"
        );
        assert_eq!(
            describe(VENDOR_MASK_HI | GPU_TEXTURE),
            "VENDOR_MASK_HI|GPU_TEXTURE"
        );
        // A CPU field value BufferUsage does not name stays numeric rather than half-named.
        assert_eq!(describe(0x1), "0x1");
        // Round trip through the parser for every single defined bit.
        for &(_, bit) in NAMES.iter().filter(|(_, b)| b.is_power_of_two()) {
            assert_eq!(parse(&describe(bit)).unwrap(), bit);
        }
    }
}
