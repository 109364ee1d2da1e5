//! `setool`: the test VM's stand-in for what Android's init does with SELinux.
//!
//! - `first-stage`: mounts selinuxfs, loads the binary policy, labels the programs init runs as
//!   `init_exec` and sets enforcing, all in the kernel domain, as first-stage init does before it
//!   re-executes itself into the init domain;
//! - `label`: applies a list of `path context` lines (computed on the host from the
//!   file_contexts files), as init's restorecon and ueventd do;
//! - `exec-as`: sets the uid, gid and (optionally) the SELinux context of the next exec, then
//!   executes the program, as init does for a service's `user`, `group` and `seclabel`;
//! - `context`: prints a process's SELinux context.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

const SELINUXFS: &str = "/sys/fs/selinux";
const XATTR_NAME: &str = "security.selinux";

#[derive(Parser)]
#[command(about = "SELinux set-up of the test VM (load, label, exec in a domain)")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load the policy, label the given programs init_exec, set enforcing.
    FirstStage {
        #[arg(long)]
        policy: PathBuf,
        /// Programs init runs (labelled u:object_r:init_exec:s0 before enforcing starts).
        #[arg(long = "init-exec", required = true)]
        init_exec: Vec<PathBuf>,
        /// Leave SELinux permissive (to collect what a plan would be denied).
        #[arg(long)]
        permissive: bool,
    },
    /// Label the paths of a `path context` list; every path must exist.
    Label { list: PathBuf },
    /// Execute a program with another uid/gid and, if given, SELinux context.
    ExecAs {
        #[arg(long)]
        context: Option<String>,
        #[arg(long, default_value_t = 0)]
        uid: u32,
        /// Defaults to the uid.
        #[arg(long)]
        gid: Option<u32>,
        #[arg(last = true, required = true)]
        program: Vec<OsString>,
    },
    /// Print the SELinux context of a process (this one by default).
    Context { pid: Option<u32> },
}

/// Writes to a kernel interface file that exists (no O_CREAT: the kernel would check the
/// right to create a file in its directory, which nobody has).
fn write_file(path: &str, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("writing {path}"))
}

fn mount_selinuxfs() -> Result<()> {
    if Path::new(SELINUXFS).join("load").exists() {
        return Ok(());
    }
    std::fs::create_dir_all(SELINUXFS).with_context(|| format!("creating {SELINUXFS}"))?;
    let source = CString::new("selinuxfs")?;
    let target = CString::new(SELINUXFS)?;
    // SAFETY: all pointers are valid NUL-terminated strings that outlive the call; no data.
    let rc = unsafe {
        libc::mount(
            source.as_ptr(),
            target.as_ptr(),
            source.as_ptr(),
            libc::MS_NOSUID | libc::MS_NOEXEC,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        bail!(
            "mounting selinuxfs on {SELINUXFS}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// The label a file has now, if it can be read.
fn current_label(path: &Path) -> Option<String> {
    let cpath = CString::new(path.as_os_str().as_bytes()).ok()?;
    let name = CString::new(XATTR_NAME).ok()?;
    let mut buf = [0u8; 256];
    // SAFETY: valid NUL-terminated strings; the kernel writes at most buf.len() bytes.
    let n = unsafe {
        libc::lgetxattr(
            cpath.as_ptr(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).ok()?;
    Some(
        String::from_utf8_lossy(&buf[..n])
            .trim_end_matches('\0')
            .to_owned(),
    )
}

/// Labels `path` unless it has that label already (relabelling to the same label needs
/// `relabelfrom` on it, which init has only for the labels it starts from, as with restorecon).
fn set_label(path: &Path, context: &str) -> Result<()> {
    if current_label(path).as_deref() == Some(context) {
        return Ok(());
    }
    let cpath = CString::new(path.as_os_str().as_bytes())?;
    let name = CString::new(XATTR_NAME)?;
    // The kernel takes the context with its NUL, as libselinux's setfilecon writes it.
    let value = CString::new(context)?;
    let bytes = value.as_bytes_with_nul();
    // SAFETY: pointers to valid NUL-terminated strings and a buffer of the given length.
    let rc = unsafe {
        libc::lsetxattr(
            cpath.as_ptr(),
            name.as_ptr(),
            bytes.as_ptr().cast(),
            bytes.len(),
            0,
        )
    };
    if rc != 0 {
        bail!(
            "labelling {} {context}: {}",
            path.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

fn first_stage(policy: &Path, init_exec: &[PathBuf], permissive: bool) -> Result<()> {
    mount_selinuxfs()?;
    let bytes = std::fs::read(policy).with_context(|| format!("reading {}", policy.display()))?;
    write_file(&format!("{SELINUXFS}/load"), &bytes)?;
    for program in init_exec {
        set_label(program, "u:object_r:init_exec:s0")?;
    }
    // Said before enforcing starts: from then on the kernel domain may not write to the console.
    println!(
        "setool: policy {} loaded ({} bytes), {}",
        policy.display(),
        bytes.len(),
        if permissive {
            "permissive"
        } else {
            "enforcing"
        }
    );
    if !permissive {
        write_file(&format!("{SELINUXFS}/enforce"), b"1")?;
    }
    Ok(())
}

fn label(list: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(list).with_context(|| format!("reading {}", list.display()))?;
    let mut count = 0;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((path, context)) = line.rsplit_once(char::is_whitespace) else {
            bail!("{}:{}: expected `path context`", list.display(), n + 1);
        };
        set_label(Path::new(path.trim()), context)?;
        count += 1;
    }
    println!("setool: labelled {count} paths");
    Ok(())
}

fn exec_as(context: Option<&str>, uid: u32, gid: u32, program: &[OsString]) -> Result<()> {
    if let Some(context) = context {
        // The context of the next execve, as init's `seclabel` (setexeccon).
        write_file("/proc/thread-self/attr/exec", context.as_bytes())?;
    }
    let groups = [gid as libc::gid_t];
    // SAFETY: plain syscalls with a valid one-element array.
    unsafe {
        if libc::setgroups(1, groups.as_ptr()) != 0
            || libc::setresgid(gid, gid, gid) != 0
            || libc::setresuid(uid, uid, uid) != 0
        {
            bail!(
                "setting uid {uid} gid {gid}: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    let argv: Vec<CString> = program
        .iter()
        .map(|a| CString::new(a.as_bytes()))
        .collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    // SAFETY: argv is a NULL-terminated array of valid strings that outlive the call; execv only
    // returns on failure.
    unsafe { libc::execv(argv[0].as_ptr(), argv_ptrs.as_ptr()) };
    bail!(
        "executing {:?}: {}",
        program[0],
        std::io::Error::last_os_error()
    )
}

fn main() -> Result<()> {
    match Args::parse().command {
        Command::FirstStage {
            policy,
            init_exec,
            permissive,
        } => first_stage(&policy, &init_exec, permissive),
        Command::Label { list } => label(&list),
        Command::ExecAs {
            context,
            uid,
            gid,
            program,
        } => exec_as(context.as_deref(), uid, gid.unwrap_or(uid), &program),
        Command::Context { pid } => {
            let path = match pid {
                Some(pid) => format!("/proc/{pid}/attr/current"),
                None => "/proc/self/attr/current".to_owned(),
            };
            let context = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
            println!(
                "{}",
                String::from_utf8_lossy(&context).trim_end_matches('\0')
            );
            Ok(())
        }
    }
}
