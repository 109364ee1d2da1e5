//! TAP output: one line per test, a plan at the end, exit status from the failures.

pub struct Tap {
    run: usize,
    failed: Vec<String>,
}

impl Tap {
    pub fn new() -> Self {
        Self {
            run: 0,
            failed: Vec::new(),
        }
    }

    /// Runs one test; an `Err` is its diagnosis, printed under the `not ok` line.
    pub fn test(&mut self, name: &str, body: impl FnOnce() -> anyhow::Result<()>) -> bool {
        self.run += 1;
        match body() {
            Ok(()) => {
                println!("ok {} - {name}", self.run);
                true
            }
            Err(e) => {
                println!("not ok {} - {name}", self.run);
                for line in format!("{e:#}").lines() {
                    println!("# {line}");
                }
                self.failed.push(name.to_owned());
                false
            }
        }
    }

    /// Prints the plan; true when every test passed.
    pub fn finish(self) -> bool {
        println!("1..{}", self.run);
        if !self.failed.is_empty() {
            println!("# {} of {} failed", self.failed.len(), self.run);
        }
        self.failed.is_empty()
    }
}
