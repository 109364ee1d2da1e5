//! The built-in safe policy the service serves when the device's own cannot be used.
//!
//! A missing or invalid policy is a device bug, but not serving at all is worse: gralloc's
//! `waitForService` blocks on this HAL and the display never comes up. The fallback serves the
//! system heaps only (see `policy/fallback.toml`), and says so in the log and in `dump`.

use std::path::Path;

use super::{Policy, PolicyError};

/// The fallback policy's text, validated by the same parser as any file.
pub const FALLBACK_POLICY_TOML: &str = include_str!("../../policy/fallback.toml");

impl Policy {
    /// The built-in fallback policy, served in place of the policy at `configured`, which could
    /// not be used because of `cause`.
    pub fn fallback(configured: &str, cause: String) -> Self {
        let mut policy = Self::parse(
            FALLBACK_POLICY_TOML,
            &format!("built-in fallback policy, in place of {configured}"),
        )
        .expect("the built-in fallback policy is valid (checked by a unit test)");
        policy.fallback_cause = Some(cause);
        policy
    }

    /// Whether this is the built-in fallback policy.
    pub fn is_fallback(&self) -> bool {
        self.fallback_cause.is_some()
    }

    /// The policy the service serves: the one at `path` when it can be read, is valid and fits
    /// `binder_threads`; otherwise the fallback, after one error line naming the path and the
    /// error. An error only when not even the fallback fits `binder_threads` (a command-line
    /// mistake, not the policy's).
    pub fn load_or_fallback(path: &Path, binder_threads: u32) -> Result<Self, PolicyError> {
        let cause = match Self::load(path).and_then(|policy| {
            policy.check_binder_threads(binder_threads)?;
            Ok(policy)
        }) {
            Ok(policy) => return Ok(policy),
            Err(e) => e.one_line(),
        };
        log::error!(
            "policy {} not used: {cause}; serving the built-in fallback policy (system heaps \
             only, PROTECTED refused) until it is fixed and the service restarted",
            path.display()
        );
        let fallback = Self::fallback(&path.display().to_string(), cause);
        fallback.check_binder_threads(binder_threads)?;
        Ok(fallback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fallback_policy_parses_and_serves_system_heaps_only() {
        let policy = Policy::fallback("/vendor/etc/dmaheap/policy.toml", "missing".into());
        assert!(policy.is_fallback());
        assert!(policy.origin.contains("fallback") && policy.origin.contains("policy.toml"));
        let names: Vec<&str> = policy.heaps.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["system", "system-uncached"]);
        assert!(policy.heaps.iter().all(|h| !h.is_restricted()));
        assert_eq!(policy.ion.iter().map(|m| m.id).collect::<Vec<_>>(), [0]);
    }
}
