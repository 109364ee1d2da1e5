//! The vendor's own usage bits (`[usage] vendor_bits`): names a policy's rules may use, and
//! bits the service then accepts instead of refusing them as unknown.
//!
//! BufferUsage leaves bits 28..=31 and 48..=63 to vendors and gives no meaning to 10, 13, 19,
//! 21 and 33..=47. Vendor grallocs use both: Pixel's gchips has `GRALLOC_USAGE_HW_2D` on bit 10,
//! older Qualcomm trees `PRIVATE_WFD` on bit 21. A bit the policy names is the vendor's; a bit
//! BufferUsage defines can never be renamed, since rules and clients would read it two ways.

use std::collections::BTreeMap;

use dmaheap_aidl::usage;
use toml::Spanned;

use super::file::UsageFile;
use super::parse::Source;
use super::{Policy, PolicyError};

/// The bits BufferUsage gives a meaning to, vendor ranges excluded: a vendor name may not take
/// one of these.
pub const BUFFER_USAGE_DEFINED_BITS: u64 =
    usage::KNOWN_BITS & !(usage::VENDOR_MASK | usage::VENDOR_MASK_HI);

/// The vendor usage names a policy declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VendorUsage {
    /// `(name, bit)`, by name; several names may share a bit (aliases, as gchips has).
    pub names: Vec<(String, u32)>,
    /// Every declared bit.
    pub mask: u64,
    /// The line of `[usage]`, 0 when the file has none.
    pub line: usize,
}

impl VendorUsage {
    /// The value of one vendor name (case-insensitive, as BufferUsage names are).
    fn value_of(&self, name: &str) -> Option<u64> {
        self.names
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, bit)| 1u64 << bit)
    }

    /// Parses a usage expression (`"GPU_TEXTURE|PRIVATE_WFD|0x10"`): BufferUsage names, these
    /// vendor names and numbers, joined as [`usage::parse`] joins them.
    pub fn parse(&self, expr: &str) -> Result<u64, String> {
        let mut value = 0;
        let mut atoms = 0;
        for atom in expr.split(['|', '+', ',', ' ']).filter(|a| !a.is_empty()) {
            value |= self
                .value_of(atom)
                .or_else(|| usage::parse_atom(atom))
                .ok_or_else(|| format!("unknown usage {atom:?}"))?;
            atoms += 1;
        }
        if atoms == 0 {
            return Err("empty usage".to_owned());
        }
        Ok(value)
    }

    /// Bits of `usage` that neither BufferUsage nor this policy defines.
    pub fn unknown_bits(&self, usage_bits: u64) -> u64 {
        usage::unknown_bits(usage_bits) & !self.mask
    }

    /// `usage` for messages: BufferUsage names, then the vendor names of the bits this policy
    /// names, hex for the rest.
    pub fn describe(&self, usage_bits: u64) -> String {
        let named: u64 = self
            .names
            .iter()
            .map(|&(_, bit)| 1u64 << bit)
            .filter(|bit| usage_bits & bit != 0)
            .fold(0, |acc, bit| acc | bit);
        let mut parts = Vec::new();
        let rest = usage_bits & !named;
        if rest != 0 || named == 0 {
            parts.push(usage::describe(rest));
        }
        for bit in 0..64u32 {
            if named & (1u64 << bit) != 0 {
                // The first name of an aliased bit, so that a description reads one way.
                if let Some((name, _)) = self.names.iter().find(|&&(_, b)| b == bit) {
                    parts.push(name.clone());
                }
            }
        }
        parts.join("|")
    }
}

/// Whether `name` may be a vendor usage name: an identifier that is not a BufferUsage name.
fn check_name(name: &str) -> Result<(), String> {
    let identifier = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !identifier {
        return Err(format!(
            "vendor usage name {name:?} is not an identifier (letters, digits, _)"
        ));
    }
    if usage::NAMES
        .iter()
        .any(|(known, _)| known.eq_ignore_ascii_case(name))
    {
        return Err(format!(
            "vendor usage name {name:?} is a BufferUsage name already"
        ));
    }
    Ok(())
}

pub(super) fn from_file(
    section: Option<Spanned<UsageFile>>,
    source: &Source,
) -> Result<VendorUsage, PolicyError> {
    let Some(spanned) = section else {
        return Ok(VendorUsage::default());
    };
    let line = source.line_of(spanned.span().start);
    let bits: BTreeMap<String, Spanned<i64>> = spanned.into_inner().vendor_bits.unwrap_or_default();
    let mut vendor = VendorUsage {
        line,
        ..VendorUsage::default()
    };
    for (name, spanned_bit) in bits {
        let span = spanned_bit.span();
        let bit = *spanned_bit.get_ref();
        check_name(&name).map_err(|m| source.invalid(&span, m))?;
        let bit = u32::try_from(bit).ok().filter(|&b| b < 64).ok_or_else(|| {
            source.invalid(
                &span,
                format!(
                    "vendor usage {name}: bit {bit} is not a bit of the 64-bit usage (0 to 63)"
                ),
            )
        })?;
        let value = 1u64 << bit;
        if value & BUFFER_USAGE_DEFINED_BITS != 0 {
            return Err(source.invalid(
                &span,
                format!(
                    "vendor usage {name}: bit {bit} is BufferUsage's {}; vendor names may only \
                     take bits 28-31, 48-63 or the ones BufferUsage leaves undefined",
                    usage::describe(value)
                ),
            ));
        }
        vendor.names.push((name, bit));
        vendor.mask |= value;
    }
    Ok(vendor)
}

impl Policy {
    /// `usage` for messages and `dump`, with this policy's vendor names.
    pub fn describe_usage(&self, usage_bits: u64) -> String {
        self.vendor_usage.describe(usage_bits)
    }
}
