//! A client that fails on purpose cannot flood the log: every failed request goes through the
//! allocator's rate-limited log, one line per (caller, heap) for a denial and per (uid, error
//! kind) otherwise. Its own test binary because it installs the process's one logger.

use std::sync::{Mutex, MutexGuard};

use dmaheap_service::backend::MemfdBackend;
use dmaheap_service::policy::Policy;
use dmaheap_service::{Allocator, Caller, Selector};

/// Every record the service logs at info level or above.
struct Recorder(Mutex<Vec<(log::Level, String)>>);

impl log::Log for Recorder {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
            lines.push((record.level(), record.args().to_string()));
        }
    }

    fn flush(&self) {}
}

static RECORDER: Recorder = Recorder(Mutex::new(Vec::new()));
/// The tests share the recorder; each takes it for its whole run.
static SERIAL: Mutex<()> = Mutex::new(());

fn recorded() -> (
    MutexGuard<'static, ()>,
    impl Fn() -> Vec<(log::Level, String)>,
) {
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    if log::set_logger(&RECORDER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    RECORDER.0.lock().unwrap().clear();
    (serial, || RECORDER.0.lock().unwrap().clone())
}

const POLICY: &str = r#"
[limits]
max_allocation_bytes = 1048576

[[heap]]
name = "system"

[[heap]]
name = "carveout"
carveout = true

[[rule]]
name = "default"
heaps = ["system"]
"#;

fn allocator() -> Allocator<MemfdBackend> {
    Allocator::new(
        Policy::parse(POLICY, "failure_log.toml").unwrap(),
        MemfdBackend::with_heaps(["system", "carveout"]),
    )
}

fn lines_with(lines: &[(log::Level, String)], text: &str) -> usize {
    lines.iter().filter(|(_, line)| line.contains(text)).count()
}

#[test]
fn repeated_denials_log_one_line_per_caller_and_heap() {
    let (_serial, lines) = recorded();
    let a = allocator();
    let app = Caller::with_context(10123, 77, Some("u:r:untrusted_app:s0"));
    let carveout = Selector::Heap("carveout".into());
    for _ in 0..200 {
        a.allocate(&app, &carveout, 4096, "x").unwrap_err();
    }
    assert_eq!(lines_with(&lines(), "denied pid 77"), 1, "{:?}", lines());

    // Another caller's denial is its own line, logged at once.
    let other = Caller::with_context(10124, 78, Some("u:r:untrusted_app:s0"));
    a.allocate(&other, &carveout, 4096, "x").unwrap_err();
    assert_eq!(lines_with(&lines(), "denied pid 78"), 1, "{:?}", lines());
    assert!(lines()
        .iter()
        .all(|(level, line)| !line.contains("denied") || *level == log::Level::Warn));
}

#[test]
fn repeated_failures_log_one_line_per_uid_and_kind() {
    let (_serial, lines) = recorded();
    let a = allocator();
    let client = Caller::new(10200, 90);
    let system = Selector::Heap("system".into());
    for _ in 0..200 {
        // Above max_allocation_bytes: refused before any heap is asked.
        a.allocate(&client, &system, 1 << 30, "x").unwrap_err();
    }
    let logged = lines();
    assert_eq!(lines_with(&logged, "uid 10200 pid 90"), 1, "{logged:?}");
    // A request with a 1 MB name that fails logs a line that does not carry the name.
    let other = Caller::new(10201, 91);
    a.allocate(&other, &system, 1 << 30, &"\u{202e}".repeat(1 << 18))
        .unwrap_err();
    assert_eq!(lines_with(&lines(), "uid 10201 pid 91"), 1, "{:?}", lines());
    let logged = lines();
    assert!(
        logged.iter().all(|(_, line)| line.len() < 4096),
        "{logged:?}"
    );
}
