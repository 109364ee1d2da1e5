//! Progress for long steps: what runs, whether it came from the cache, and how long it took.
//! Every step is also remembered so that a command can end with a timing table.

use std::sync::Mutex;
use std::time::{Duration, Instant};

static FINISHED: Mutex<Vec<(String, Duration, String)>> = Mutex::new(Vec::new());

pub struct Step {
    name: String,
    started: Instant,
}

pub fn step(name: impl Into<String>) -> Step {
    let name = name.into();
    eprintln!("==> {name}");
    Step {
        name,
        started: Instant::now(),
    }
}

impl Step {
    /// Ends the step; `how` says what happened ("cached", "built", "3 passed" ...).
    pub fn done(self, how: &str) {
        let took = self.started.elapsed();
        eprintln!("    {}: {how} in {}", self.name, human(took));
        FINISHED
            .lock()
            .unwrap()
            .push((self.name, took, how.to_owned()));
    }
}

pub fn note(message: impl AsRef<str>) {
    eprintln!("    {}", message.as_ref());
}

pub fn human(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

pub fn print_timings() {
    let finished = FINISHED.lock().unwrap();
    if finished.is_empty() {
        return;
    }
    eprintln!("\nTime by step:");
    let width = finished
        .iter()
        .map(|(name, ..)| name.len())
        .max()
        .unwrap_or(0);
    for (name, took, how) in finished.iter() {
        eprintln!("  {name:width$}  {:>8}  {how}", human(*took));
    }
}
