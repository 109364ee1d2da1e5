//! How the init script loads the heap module, checked against the policy: the command that loads
//! it runs in a domain that holds `sys_module` and may `module_load` the file's label, and init
//! may enter that domain through the binary it runs. Labels come from the platform stand-in's
//! and the vendor policy's file_contexts; permissions from the compiled policy.
//!
//! The compiler answers "is this allowed?" by refusing a `neverallow` the policy violates: a
//! rule is granted exactly when `neverallow <rule>;` fails to compile.

use std::path::Path;

use crate::initrc::RcFile;
use crate::sepolicy::{self, Build};

/// One way the .rc loads a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Load {
    /// The domain the loading process runs in.
    pub domain: String,
    /// The program init runs for it (None: init loads the module itself, `insmod`).
    pub program: Option<String>,
    /// The module file loaded.
    pub module_file: String,
    /// Module name as modprobe sees it, when loaded by name.
    pub module_name: Option<String>,
}

/// The module loads of an .rc file: `insmod PATH ...` and
/// `exec u:r:DOMAIN:s0 -- .../modprobe [-a] -d DIR NAME...`.
pub fn loads(rc: &RcFile) -> Result<Vec<Load>, String> {
    let mut out = Vec::new();
    for action in &rc.actions {
        for cmd in &action.commands {
            match cmd[0].as_str() {
                "insmod" => out.push(Load {
                    domain: "init".into(),
                    program: None,
                    module_file: cmd.get(1).cloned().ok_or("insmod needs a path")?,
                    module_name: None,
                }),
                "exec" | "exec_start" | "exec_background"
                    if cmd.iter().any(|w| w.ends_with("/modprobe")) =>
                {
                    let sep = cmd
                        .iter()
                        .position(|w| w == "--")
                        .ok_or("exec needs `--`")?;
                    let label = cmd
                        .get(1)
                        .filter(|_| sep > 1)
                        .ok_or("modprobe exec without a seclabel runs as init")?;
                    let domain = label
                        .strip_prefix("u:r:")
                        .and_then(|d| d.strip_suffix(":s0"))
                        .ok_or_else(|| format!("seclabel {label} is not u:r:<domain>:s0"))?;
                    let argv = &cmd[sep + 1..];
                    let program = argv.first().ok_or("exec runs nothing")?.clone();
                    let mut dir = None;
                    let mut names = Vec::new();
                    let mut it = argv[1..].iter();
                    while let Some(a) = it.next() {
                        match a.as_str() {
                            "-d" => dir = it.next().cloned(),
                            s if s.starts_with('-') => {}
                            s => names.push(s.to_owned()),
                        }
                    }
                    let dir =
                        dir.ok_or("modprobe without -d searches /lib/modules, not the vendor's")?;
                    for n in names {
                        out.push(Load {
                            domain: domain.to_owned(),
                            program: Some(program.clone()),
                            module_file: format!("{dir}/{n}.ko"),
                            module_name: Some(n),
                        });
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// The type a path gets from the file_contexts files (the longest matching expression wins,
/// which is the platform's rule for the entries involved here).
pub fn label(files: &[&Path], path: &str) -> Result<String, String> {
    let mut best: Option<(usize, String)> = None;
    for f in files {
        for e in sepolicy::read_contexts(f)? {
            let re = regex::Regex::new(&format!("^(?:{})$", e.key)).map_err(|x| x.to_string())?;
            if re.is_match(path) && best.as_ref().is_none_or(|(n, _)| e.key.len() > *n) {
                let t = e.type_name().ok_or("context without a type")?.to_owned();
                best = Some((e.key.len(), t));
            }
        }
    }
    best.map(|(_, t)| t)
        .ok_or_else(|| format!("no file_contexts entry labels {path}"))
}

/// Is `rule` (`source target:class perm`) granted by the policy `build` compiles?
pub fn granted(build: &Build, rule: &str) -> Result<bool, String> {
    let mut probe = build.clone();
    let extra = build.extra_te.clone().unwrap_or_default();
    probe.extra_te = Some(format!("{extra}\nneverallow {rule};\n"));
    let work = tempdir()?;
    let r = probe.compile(&work);
    let _ = std::fs::remove_dir_all(&work);
    match r {
        Ok(_) => Ok(false),
        Err(e) if e.contains("neverallow") => Ok(true),
        Err(e) => Err(e),
    }
}

fn tempdir() -> Result<std::path::PathBuf, String> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = std::env::temp_dir().join(format!(
        "dmaheap-modload-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// What stops `load` on a device under `build`'s policy; empty when it works.
pub fn problems(build: &Build, contexts: &[&Path], load: &Load) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let d = &load.domain;
    let file = label(contexts, &load.module_file)?;
    let mut need = vec![
        (
            format!("{d} self:capability sys_module"),
            "hold CAP_SYS_MODULE".to_owned(),
        ),
        (
            format!("{d} {file}:system module_load"),
            format!("load modules labelled {file}"),
        ),
    ];
    if let Some(p) = &load.program {
        let exec = label(contexts, p)?;
        need.push((
            format!("init {d}:process transition"),
            "be entered from init".to_owned(),
        ));
        need.push((
            format!("{d} {exec}:file entrypoint"),
            format!("be entered through {p} ({exec})"),
        ));
    }
    for (rule, what) in need {
        if !granted(build, &rule)? {
            out.push(format!(
                "{d} cannot {what} to load {} (`allow {rule}` is missing)",
                load.module_file
            ));
        }
    }
    Ok(out)
}
