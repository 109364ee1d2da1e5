//! The `dump` section on where the service's allocation calls spend their time, one line per
//! phase. The service writes it and `dmaheap-bench` reads it: two dumps taken around a run of
//! calls give that run's time per phase, so the line carries the exact total, not only a mean.

use std::time::Duration;

/// The line that opens the section.
pub const HEADING: &str = "time per phase of allocation calls:";

/// One phase's line: its name, its mean (for people) and its count and total (for tools).
pub fn format_line(phase: &str, count: u64, total: Duration) -> String {
    let mean_us = if count == 0 {
        0.0
    } else {
        total.as_secs_f64() * 1e6 / count as f64
    };
    format!(
        "  {phase:<28} {mean_us:>10.1} us mean over {count} calls, {} ns in all",
        total.as_nanos()
    )
}

/// One phase as read back from a dump.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseTotal {
    pub phase: String,
    pub count: u64,
    pub total: Duration,
}

/// The phases of the section in `dump`, in the order written; lines that do not parse are skipped.
pub fn parse(dump: &str) -> Vec<PhaseTotal> {
    let Some((_, section)) = dump.split_once(HEADING) else {
        return Vec::new();
    };
    section
        .lines()
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<PhaseTotal> {
    let (left, right) = line.split_once(" us mean over ")?;
    let (phase, _mean) = left.trim().rsplit_once(' ')?;
    let (count, rest) = right.split_once(" calls, ")?;
    let nanos = rest.strip_suffix(" ns in all")?;
    Some(PhaseTotal {
        phase: phase.trim().to_owned(),
        count: count.parse().ok()?,
        total: Duration::from_nanos(nanos.parse().ok()?),
    })
}

/// Per phase, the calls and time between two dumps of the same service (`before` taken first).
pub fn difference(before: &[PhaseTotal], after: &[PhaseTotal]) -> Vec<PhaseTotal> {
    after
        .iter()
        .map(|a| {
            let b = before.iter().find(|b| b.phase == a.phase);
            PhaseTotal {
                phase: a.phase.clone(),
                count: a.count.saturating_sub(b.map_or(0, |b| b.count)),
                total: a
                    .total
                    .saturating_sub(b.map_or(Duration::ZERO, |b| b.total)),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump_with(lines: &[String]) -> String {
        format!(
            "heaps:\n  system present\n\n{HEADING}\n{}\n\ncounters per calling uid:\n  1000 3\n",
            lines.join("\n")
        )
    }

    #[test]
    fn lines_read_back_as_written_and_the_section_ends_at_its_blank_line() {
        let dump = dump_with(&[
            format_line("caller identity", 3, Duration::from_nanos(4_500)),
            format_line("name + SET_NAME", 1005, Duration::from_nanos(97_123_456)),
        ]);
        assert_eq!(
            parse(&dump),
            vec![
                PhaseTotal {
                    phase: "caller identity".into(),
                    count: 3,
                    total: Duration::from_nanos(4_500),
                },
                PhaseTotal {
                    phase: "name + SET_NAME".into(),
                    count: 1005,
                    total: Duration::from_nanos(97_123_456),
                },
            ]
        );
    }

    #[test]
    fn a_dump_without_the_section_has_no_phases() {
        assert!(parse("heaps:\n  system present\n").is_empty());
    }

    #[test]
    fn the_difference_of_two_dumps_is_the_run_between_them() {
        let before = vec![PhaseTotal {
            phase: "allocation ioctl".into(),
            count: 10,
            total: Duration::from_micros(100),
        }];
        let after = vec![
            PhaseTotal {
                phase: "allocation ioctl".into(),
                count: 30,
                total: Duration::from_micros(500),
            },
            PhaseTotal {
                phase: "whole handler".into(),
                count: 20,
                total: Duration::from_micros(900),
            },
        ];
        let run = difference(&before, &after);
        assert_eq!(
            (run[0].count, run[0].total),
            (20, Duration::from_micros(400))
        );
        assert_eq!(
            (run[1].count, run[1].total),
            (20, Duration::from_micros(900))
        );
    }
}
