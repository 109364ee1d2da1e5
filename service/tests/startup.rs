//! A missing or invalid policy: one clear error line, then the built-in fallback policy served at
//! once, with no wait and no exit over the policy; `--check` still refuses the file.
//!
//! This host has no binder device, so a started service goes as far as opening it (the step
//! before registering) and stops there with "cannot open binder device": reaching that step
//! promptly is what shows it did not wait for a policy. Registration itself is checked in the
//! test VM.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the service on `policy` against a binder device that does not exist, until it stops.
fn run_service(policy: &Path, dir: &Path) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_dmaheap-service"))
        .arg("--policy")
        .arg(policy)
        .arg("--heap-dir")
        .arg(dir.join("no-heaps"))
        .arg("--binder")
        .arg(dir.join("no-binder"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = started + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the service did not go on to binder within 30 s:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), started.elapsed())
}

/// The log says why once, serves the fallback, and goes straight on to binder.
fn assert_served_on_the_fallback(policy: &Path, dir: &Path, error: &str) {
    let (out, took) = run_service(policy, dir);
    let log = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one error line:\n{log}");
    let line = errors[0];
    for needed in [policy.to_str().unwrap(), error, "built-in fallback policy"] {
        assert!(line.contains(needed), "{needed:?} missing from {line:?}");
    }
    assert!(
        log.contains("policy built-in fallback policy, in place of"),
        "the fallback is not the policy served:\n{log}"
    );
    // The next step after the policy: the service did not wait for a valid file.
    assert!(log.contains("cannot open binder device"), "{log}");
    assert!(
        took < Duration::from_secs(10),
        "took {took:?}: the service waited"
    );
}

#[test]
fn a_missing_policy_is_logged_once_and_the_fallback_served_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    assert_served_on_the_fallback(&policy, dir.path(), "No such file or directory");
}

#[test]
fn an_invalid_policy_is_logged_once_with_its_line_and_the_fallback_served_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.toml");
    std::fs::write(&policy, "[[heap]]\nname = \"system\"\ncahced = true\n").unwrap();
    assert_served_on_the_fallback(&policy, dir.path(), "bad.toml:3: unknown field `cahced`");
    // Valid but unservable: a cap that would let one caller hold every binder thread.
    let policy = dir.path().join("greedy.toml");
    std::fs::write(
        &policy,
        format!(
            "[limits]\nmax_calls_per_uid = 8\n{}",
            dmaheap_service::policy::FALLBACK_POLICY_TOML
        ),
    )
    .unwrap();
    assert_served_on_the_fallback(&policy, dir.path(), "binder thread count (8)");
}

#[test]
fn a_valid_policy_is_served_without_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, dmaheap_service::policy::DEFAULT_POLICY_TOML).unwrap();
    let (out, _) = run_service(&policy, dir.path());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("fallback"), "{log}");
    assert!(
        log.contains(&format!("policy {}:", policy.display())),
        "{log}"
    );
    assert!(log.contains("cannot open binder device"), "{log}");
}

#[test]
fn check_mode_still_refuses_an_invalid_or_missing_policy_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("bad.toml");
    std::fs::write(&policy, "[[heap]]\nname = \"system\"\ncahced = true\n").unwrap();
    let check = |policy: &Path| {
        Command::new(env!("CARGO_BIN_EXE_dmaheap-service"))
            .arg("--check")
            .arg("--policy")
            .arg(policy)
            .output()
            .unwrap()
    };
    let out = check(&policy);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("line 3"), "{err}");
    assert!(!err.contains("fallback"), "{err}");

    let out = check(&dir.path().join("missing.toml"));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("missing.toml"), "{err}");
}
