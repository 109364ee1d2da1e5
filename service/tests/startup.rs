//! A missing or invalid policy: one clear log line and a back-off, not an exit that init turns
//! into a restart loop; a policy that becomes valid is picked up.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_missing_policy_is_logged_once_and_read_again_until_it_appears() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    let log = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmaheap-service"))
        .arg("--policy")
        .arg(&policy)
        .arg("--binder")
        .arg(dir.path().join("no-binder"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let read_log = || std::fs::read_to_string(&log).unwrap();
    // Three attempts (at 0, 1 and 3 seconds), the process alive throughout, one line.
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the service exited on a missing policy:\n{}",
        read_log()
    );
    let text = read_log();
    assert_eq!(
        text.matches("not serving").count(),
        1,
        "one line for the same error:\n{text}"
    );
    assert!(text.contains("policy.toml"), "{text}");

    // A valid policy appears: the service reads it at the next attempt and goes on (to the
    // binder device, which this test does not have).
    std::fs::write(&policy, dmaheap_service::policy::DEFAULT_POLICY_TOML).unwrap();
    wait_for(
        "the service to pick up the policy",
        Duration::from_secs(60),
        || child.try_wait().unwrap().is_some(),
    );
    let text = read_log();
    assert!(text.contains("is valid now"), "{text}");
    assert!(text.contains("cannot open binder device"), "{text}");
}

#[test]
fn check_mode_still_refuses_an_invalid_policy_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.toml");
    std::fs::write(&policy, "[[heap]]\nname = \"system\"\ncahced = true\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dmaheap-service"))
        .arg("--check")
        .arg("--policy")
        .arg(&policy)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("line 3"), "{err}");
}
