//! Reading a policy file: TOML first, then each section validated by its own module, every
//! error tied to the line of the entry it is about.

use std::ops::Range;

use super::file::{ByteSize, PolicyFile, UidSpec};
use super::{delegation, heaps, ion, limits, rules, vendor_usage, Policy, PolicyError};
use crate::access::{self, AllowList};

impl Policy {
    /// Parses and validates policy text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, PolicyError> {
        let source = Source::new(text, origin);
        let file: PolicyFile = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            origin: origin.to_owned(),
            message: e.to_string(),
            summary: e.message().to_owned(),
            line: e.span().map(|span| source.line_of(span.start)),
        })?;
        let limits = limits::from_file(file.limits, &source)?;
        let on_behalf_domains = delegation::on_behalf_from_file(file.service, &source)?;
        let vendor_usage = vendor_usage::from_file(file.usage, &source)?;
        let ion_flag_names = ion::flag_names_from_file(file.ion_flags, &source)?;
        let heaps = heaps::from_file(file.heap, &source)?;
        let rules = rules::from_file(file.rule, &heaps, &vendor_usage, &source)?;
        let ion = ion::from_file(file.ion, &heaps, &ion_flag_names, &source)?;
        Ok(Policy {
            origin: origin.to_owned(),
            limits,
            heaps,
            rules,
            ion,
            vendor_usage,
            ion_flag_names,
            on_behalf_domains,
            fallback_cause: None,
        })
    }
}

/// The text being validated: where it came from and where its lines start, so that an entry's
/// span becomes the line an error names.
pub(super) struct Source<'a> {
    origin: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(text: &str, origin: &'a str) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Self {
            origin,
            line_starts,
        }
    }

    /// The 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// An error about the entry at `span`.
    pub fn invalid(&self, span: &Range<usize>, message: String) -> PolicyError {
        PolicyError::Invalid {
            origin: self.origin.to_owned(),
            line: self.line_of(span.start),
            message,
        }
    }

    /// An error about the file as a whole (a section it lacks), shown on line 1.
    pub fn missing(&self, message: &str) -> PolicyError {
        PolicyError::Invalid {
            origin: self.origin.to_owned(),
            line: 1,
            message: message.to_owned(),
        }
    }
}

/// An `allow_domains` / `allow_uids` pair as the file gives it, checked.
pub(super) fn allow_list(
    domains: Option<Vec<String>>,
    uids: Option<Vec<UidSpec>>,
) -> Result<AllowList, String> {
    checked_callers(domains, uids, "allow_domains", "allow_uids")
}

/// A `{ domains = [...], uids = [...] }` table of the field `what` (`callers`, `delegate`),
/// checked.
pub(super) fn callers_list(
    domains: Option<Vec<String>>,
    uids: Option<Vec<UidSpec>>,
    what: &str,
) -> Result<AllowList, String> {
    checked_callers(
        domains,
        uids,
        &format!("{what}.domains"),
        &format!("{what}.uids"),
    )
}

fn checked_callers(
    domains: Option<Vec<String>>,
    uids: Option<Vec<UidSpec>>,
    domains_field: &str,
    uids_field: &str,
) -> Result<AllowList, String> {
    let domains = domains.unwrap_or_default();
    if let Some(bad) = domains.iter().find(|d| !access::is_selinux_identifier(d)) {
        return Err(format!(
            "{domains_field} entry {bad:?} is not an SELinux type name"
        ));
    }
    let uids = uids
        .unwrap_or_default()
        .into_iter()
        .map(|spec| uid_of_spec(spec, &format!("{uids_field} entry")))
        .collect::<Result<Vec<u32>, String>>()?;
    Ok(AllowList { domains, uids })
}

/// A byte count as the file gives it: a number, or `"64K"`, `"2M"`, `"1G"` (also `KiB`,
/// `MiB`, `GiB`; powers of 1024), `"0x1000"`, `"4096"`.
pub(super) fn byte_size(spec: &ByteSize) -> Result<u64, String> {
    let text = match spec {
        ByteSize::Number(n) => {
            return u64::try_from(*n).map_err(|_| format!("{n} is not a byte count"));
        }
        ByteSize::Text(text) => text.trim(),
    };
    let lower = text.to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| c.is_ascii_alphabetic() && c != 'x') {
        Some(at) if !lower.starts_with("0x") => lower.split_at(at),
        _ => (lower.as_str(), ""),
    };
    let shift = match unit.trim() {
        "" | "b" => 0,
        "k" | "kib" => 10,
        "m" | "mib" => 20,
        "g" | "gib" => 30,
        other => {
            return Err(format!(
                "{text:?}: unknown unit {other:?} (use K, M or G, powers of 1024)"
            ))
        }
    };
    let digits = digits.trim().replace('_', "");
    let number = match digits.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => digits.parse(),
    }
    .map_err(|_| format!("{text:?} is not a byte count"))?;
    number
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{text:?} does not fit 64 bits"))
}

/// A uid as the file gives it (number or Android ID name); `what` names the field in the error.
pub(super) fn uid_of_spec(spec: UidSpec, what: &str) -> Result<u32, String> {
    match spec {
        // u32::MAX is (uid_t)-1, "no uid" to the kernel: nobody calls with it.
        UidSpec::Number(n) => u32::try_from(n)
            .ok()
            .filter(|&u| u != u32::MAX)
            .ok_or_else(|| format!("{what} {n} is not a uid")),
        UidSpec::Name(name) => access::uid_of_name(&name).ok_or_else(|| {
            format!("{what} {name:?} is not an Android ID name this service knows; give the number")
        }),
    }
}
