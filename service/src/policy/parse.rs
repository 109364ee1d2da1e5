//! Reading a policy file: TOML first, then each section validated by its own module, every
//! error tied to the line of the entry it is about.

use std::ops::Range;

use super::file::{PolicyFile, UidSpec};
use super::{heaps, ion, limits, rules, Policy, PolicyError};
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
        let heaps = heaps::from_file(file.heap, &source)?;
        let rules = rules::from_file(file.rule, &heaps, &source)?;
        let ion = ion::from_file(file.ion, &heaps, &source)?;
        Ok(Policy {
            origin: origin.to_owned(),
            limits,
            heaps,
            rules,
            ion,
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
    let domains = domains.unwrap_or_default();
    if let Some(bad) = domains.iter().find(|d| !access::is_selinux_identifier(d)) {
        return Err(format!(
            "allow_domains entry {bad:?} is not an SELinux type name"
        ));
    }
    let uids = uids
        .unwrap_or_default()
        .into_iter()
        .map(|spec| uid_of_spec(spec, "allow_uids entry"))
        .collect::<Result<Vec<u32>, String>>()?;
    Ok(AllowList { domains, uids })
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
