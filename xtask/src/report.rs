//! Turns what the guest printed into test results: TAP (kselftest and the shell checks) and the
//! Rust libtest format, one result per `ok`/`not ok` or `test ... ok|FAILED|ignored` line.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    pub suite: String,
    pub name: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Test Anything Protocol; `# SKIP` directives count as skipped.
    Tap,
    /// The Rust test harness: `test name ... ok`.
    Libtest,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Tap => "tap",
            Format::Libtest => "libtest",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "tap" => Some(Format::Tap),
            "libtest" => Some(Format::Libtest),
            _ => None,
        }
    }
}

/// One test line in `format`, or None for any other line. kselftest names its heap in a
/// `# Testing heap: NAME` message before that heap's tests; `context` carries it to the names.
pub fn parse_line(format: Format, line: &str, context: &mut String) -> Option<(String, Outcome)> {
    let line = line.trim_end();
    match format {
        Format::Tap => {
            if let Some(heap) = line.strip_prefix("# Testing heap: ") {
                *context = heap.trim().to_owned();
                return None;
            }
            let (rest, ok) = if let Some(rest) = line.strip_prefix("not ok") {
                (rest, false)
            } else if let Some(rest) = line.strip_prefix("ok") {
                (rest, true)
            } else {
                return None;
            };
            if !rest.is_empty() && !rest.starts_with(' ') {
                return None;
            }
            let rest = rest
                .trim_start()
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .trim_start();
            let rest = rest.strip_prefix("- ").unwrap_or(rest);
            let (description, directive) = match rest
                .split_once(" # ")
                .or_else(|| rest.strip_prefix("# ").map(|d| ("", d)))
            {
                Some((description, directive)) => (description.trim(), directive.trim()),
                None => (rest.trim(), ""),
            };
            let skipped = directive.to_ascii_uppercase().starts_with("SKIP");
            let outcome = match (ok, skipped) {
                (_, true) => Outcome::Skipped,
                (true, false) => Outcome::Passed,
                (false, false) => Outcome::Failed,
            };
            let name = if description.is_empty() {
                directive
                    .get(4..)
                    .filter(|_| skipped)
                    .unwrap_or(directive)
                    .trim()
            } else {
                description
            };
            let name = if context.is_empty() {
                name.to_owned()
            } else {
                format!("{context}: {name}")
            };
            Some((name, outcome))
        }
        Format::Libtest => {
            let rest = line.strip_prefix("test ")?;
            let (name, verdict) = rest.rsplit_once(" ... ")?;
            let outcome = match verdict.trim() {
                "ok" => Outcome::Passed,
                "FAILED" => Outcome::Failed,
                v if v.starts_with("ignored") => Outcome::Skipped,
                _ => return None,
            };
            Some((name.trim().to_owned(), outcome))
        }
    }
}

/// Sums results; prints the project's closing line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

impl Totals {
    pub fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Passed => self.passed += 1,
            Outcome::Failed => self.failed += 1,
            Outcome::Skipped => self.skipped += 1,
        }
    }

    pub fn merge(&mut self, other: Totals) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }

    pub fn of(results: &[TestResult]) -> Totals {
        let mut totals = Totals::default();
        for result in results {
            totals.add(result.outcome);
        }
        totals
    }
}

impl fmt::Display for Totals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} passed, {} failed", self.passed, self.failed)?;
        if self.skipped > 0 {
            write!(f, ", {} skipped", self.skipped)?;
        }
        Ok(())
    }
}

/// The `test result: ok. 12 passed; 0 failed; 1 ignored; ...` lines of `cargo test`, summed.
pub fn cargo_test_totals(output: &str) -> Totals {
    let mut totals = Totals::default();
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("test result: ") else {
            continue;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(label), Some(count)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(count) = count.parse::<usize>() else {
                continue;
            };
            match label {
                "passed" => totals.passed += count,
                "failed" => totals.failed += count,
                "ignored" => totals.skipped += count,
                _ => {}
            }
        }
    }
    totals
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tap(lines: &[&str]) -> Vec<(String, Outcome)> {
        let mut context = String::new();
        lines
            .iter()
            .filter_map(|l| parse_line(Format::Tap, l, &mut context))
            .collect()
    }

    #[test]
    fn kselftest_output_becomes_one_result_per_line_named_by_heap() {
        let got = tap(&[
            "TAP version 13",
            "1..3",
            "# Testing heap: system",
            "ok 1 test_alloc_and_import dmabuf sync succeeded",
            "ok 2 # SKIP Could not open vgem -1",
            "not ok 3 Allocate and validate all buffers are zeroed",
            "# Totals: pass:1 fail:1 xfail:0 xpass:0 skip:1 error:0",
        ]);
        assert_eq!(
            got,
            [
                (
                    "system: test_alloc_and_import dmabuf sync succeeded".to_owned(),
                    Outcome::Passed
                ),
                (
                    "system: Could not open vgem -1".to_owned(),
                    Outcome::Skipped
                ),
                (
                    "system: Allocate and validate all buffers are zeroed".to_owned(),
                    Outcome::Failed
                ),
            ]
        );
    }

    #[test]
    fn shell_checks_in_tap_without_numbers() {
        assert_eq!(
            tap(&[
                "ok - binderfs mounted",
                "not ok - service manager up",
                "okay this is prose"
            ]),
            [
                ("binderfs mounted".to_owned(), Outcome::Passed),
                ("service manager up".to_owned(), Outcome::Failed)
            ]
        );
    }

    #[test]
    fn libtest_lines() {
        let mut context = String::new();
        let lines = [
            "running 3 tests",
            "test heaps::zeroed ... ok",
            "test batch::all_or_nothing ... FAILED",
            "test slow ... ignored, needs a device",
            "test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out",
        ];
        let got: Vec<_> = lines
            .iter()
            .filter_map(|l| parse_line(Format::Libtest, l, &mut context))
            .collect();
        assert_eq!(
            got,
            [
                ("heaps::zeroed".to_owned(), Outcome::Passed),
                ("batch::all_or_nothing".to_owned(), Outcome::Failed),
                ("slow".to_owned(), Outcome::Skipped),
            ]
        );
    }

    #[test]
    fn cargo_test_summaries_are_summed() {
        let out = "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s\n\
                   test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out\n";
        assert_eq!(
            cargo_test_totals(out),
            Totals {
                passed: 15,
                failed: 2,
                skipped: 1
            }
        );
    }

    #[test]
    fn closing_line_mentions_skips_only_when_there_are_some() {
        assert_eq!(
            Totals {
                passed: 3,
                failed: 0,
                skipped: 0
            }
            .to_string(),
            "3 passed, 0 failed"
        );
        assert_eq!(
            Totals {
                passed: 3,
                failed: 1,
                skipped: 2
            }
            .to_string(),
            "3 passed, 1 failed, 2 skipped"
        );
    }
}
