//! Running external programs with errors that say what was run and where its output went.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::progress;

fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` with inherited output and fails if it does not exit 0.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", describe(cmd));
    }
    Ok(())
}

/// Runs `cmd` and returns its standard output; fails if it does not exit 0.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    if !out.status.success() {
        bail!("`{}` failed ({})", describe(cmd), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs a long, chatty command with its output in `log`. Every `heartbeat` it prints how long it
/// has run and the newest line of the log; on failure it prints the log's tail.
pub fn run_logged(cmd: &mut Command, log: &Path, heartbeat: Duration) -> Result<()> {
    let file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut child = cmd
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    let started = Instant::now();
    let mut next_beat = heartbeat;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(500));
        if started.elapsed() >= next_beat {
            next_beat += heartbeat;
            let last = last_line(log).unwrap_or_default();
            progress::note(format!(
                "... {} elapsed: {last}",
                progress::human(started.elapsed())
            ));
        }
    };
    if !status.success() {
        eprintln!("---- last lines of {} ----", log.display());
        for line in tail(log, 40) {
            eprintln!("{line}");
        }
        bail!(
            "`{}` failed ({status}); full log in {}",
            describe(cmd),
            log.display()
        );
    }
    Ok(())
}

fn last_line(path: &Path) -> Option<String> {
    tail(path, 1).pop().map(|line| line.trim().to_owned())
}

fn tail(path: &Path, lines: usize) -> Vec<String> {
    let Ok(mut file) = File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(16 * 1024)));
    let mut text = String::new();
    let _ = BufReader::new(file).read_to_string(&mut text);
    let all: Vec<String> = text.lines().map(str::to_owned).collect();
    all[all.len().saturating_sub(lines)..].to_vec()
}

/// Reads a child's output line by line, calling `each` on every line; returns the exit status.
pub fn stream_lines(
    cmd: &mut Command,
    mut each: impl FnMut(&str),
) -> Result<std::process::ExitStatus> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start `{}`", describe(cmd)))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    for line in BufReader::new(stdout).lines() {
        each(&line?);
    }
    Ok(child.wait()?)
}
