//! The vendor policy: which heaps exist, how gralloc usage picks one, how legacy ION heap ids map
//! onto dma-buf heaps, and the request limits.
//!
//! The policy is a TOML file (`/vendor/etc/dmaheap/policy.toml` on a device). It is parsed and
//! validated completely at start-up: any mistake is reported with the line it is on, and the
//! file is refused rather than guessed at. The service then serves its built-in fallback
//! ([`Policy::fallback`], the system heaps only) instead of not serving at all.
//!
//! By concept: `parse` reads and validates the file, [`heaps`] declares heaps and checks who
//! may use them, [`request`] is what a rule sees of a request, [`rules`] resolves requests,
//! [`vendor_usage`] names the vendor's usage bits, [`ion`] resolves legacy ION masks and flags,
//! [`delegation`] says who may allocate from a heap directly or for another process,
//! [`limits`] bounds requests and calls in flight.

use std::path::Path;

pub mod delegation;
mod fallback;
mod file;
pub mod heaps;
pub mod ion;
pub mod limits;
mod parse;
pub mod request;
pub mod rules;
pub mod vendor_usage;

pub use delegation::{DelegateTo, DEFAULT_ON_BEHALF_DOMAINS};
pub use fallback::FALLBACK_POLICY_TOML;
pub use heaps::{is_plain_heap_name, HeapSpec, MAX_HEAP_NAME_BYTES};
pub use ion::IonMapping;
pub use limits::Limits;
pub use request::BufferRequest;
pub use rules::{Action, Conditions, Matcher, Resolution, Rule, SizeRange};
pub use vendor_usage::VendorUsage;

/// Where a device keeps the policy.
pub const DEFAULT_POLICY_PATH: &str = "/vendor/etc/dmaheap/policy.toml";

/// The policy shipped with the HAL, used by tests and as the starting point for a device.
pub const DEFAULT_POLICY_TOML: &str = include_str!("../../policy/default.toml");

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// Not TOML, or not the policy's shape; `message` is the parser's report, several lines
    /// long with the offending text quoted, `summary` its one-line gist.
    #[error("{origin}: {message}")]
    Syntax {
        origin: String,
        message: String,
        summary: String,
        line: Option<usize>,
    },
    #[error("{origin}:{line}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        message: String,
    },
}

impl PolicyError {
    /// The 1-based line the error is on, when it is about one place in the file.
    pub fn line(&self) -> Option<usize> {
        match self {
            PolicyError::Invalid { line, .. } => Some(*line),
            PolicyError::Syntax { line, .. } => *line,
            PolicyError::Read { .. } => None,
        }
    }

    /// The error on one line, for a log: the parser quotes the offending text on lines of its
    /// own, which a log reader would see as unrelated lines.
    pub fn one_line(&self) -> String {
        let text = match self {
            PolicyError::Syntax {
                origin,
                summary,
                line: Some(line),
                ..
            } => format!("{origin}:{line}: {summary}"),
            PolicyError::Syntax {
                origin, summary, ..
            } => format!("{origin}: {summary}"),
            other => other.to_string(),
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// A validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Where it came from, for messages and `dump`.
    pub origin: String,
    pub limits: Limits,
    pub heaps: Vec<HeapSpec>,
    pub rules: Vec<Rule>,
    /// The `[[ion]]` entries in file order; entries of one id are tried in that order.
    pub ion: Vec<IonMapping>,
    /// `[usage] vendor_bits`: the vendor's usage names and bits.
    pub vendor_usage: VendorUsage,
    /// ION flag names (`[ion_flags]` and the generic ones), for messages and `dump`.
    pub ion_flag_names: Vec<(String, u32)>,
    /// `[service] on_behalf_domains`: who may allocate on behalf of another pid/uid.
    pub on_behalf_domains: Vec<String>,
    /// Set on the built-in fallback policy ([`Policy::fallback`]): why the device's own policy
    /// is not the one served.
    pub fallback_cause: Option<String>,
}

impl Policy {
    /// Reads and validates the policy at `path`.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The policy shipped with the HAL.
    pub fn builtin_default() -> Self {
        Self::parse(DEFAULT_POLICY_TOML, "built-in default policy")
            .expect("the shipped default policy is valid (checked by unit tests)")
    }

    pub fn heap(&self, name: &str) -> Option<&HeapSpec> {
        self.heaps.iter().find(|h| h.name == name)
    }
}
