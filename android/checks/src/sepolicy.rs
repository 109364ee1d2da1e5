//! Compiles the vendor policy the way the Android build does, as far as Debian's tools allow:
//! the policy files are concatenated in the platform's order, expanded with `m4`, and compiled
//! with `checkpolicy` (MLS, as Android's policy is). The platform side is the stand-in in
//! `android/checks/platform-stub/`. The labels in `file_contexts`, `service_contexts` and
//! `genfs_contexts` are validated by the same compiler: each context becomes a `genfscon`
//! statement, so a context naming an undeclared type or role fails compilation.
//!
//! Both tools are required: when one is missing the check fails and names the Debian package.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Policy version passed to checkpolicy (`-c`); 30 is what Android's build uses.
pub const POLICY_VERSION: &str = "30";

/// Files of the stand-in that come before the vendor policy, in the platform's order.
const STUB_HEAD: &[&str] = &[
    "security_classes",
    "initial_sids",
    "access_vectors",
    "global_macros",
    "te_macros",
    "mls",
    "policy_capabilities",
    "platform.te",
    "modprobe.te",
];
/// Files of the stand-in that come after the vendor policy.
const STUB_TAIL: &[&str] = &["roles_users", "initial_sid_contexts"];

/// A vendor policy directory and the stand-in it is compiled against.
#[derive(Debug, Clone)]
pub struct Build {
    pub stub_dir: PathBuf,
    pub vendor_dir: PathBuf,
    /// Extra .te text appended after the vendor policy (used by tests to prove neverallows bite).
    pub extra_te: Option<String>,
    /// A test bed's own policy part (`xtask/selinux/`), compiled in only when a policy is built
    /// for the test VM: its `*.te` files follow the vendor policy, its `fs_use` statements follow
    /// the initial SID contexts and its `genfs_contexts` follow the vendor's. Its `file_contexts`
    /// is validated like the vendor's.
    pub testbed_dir: Option<PathBuf>,
    /// checkpolicy's `-U` (what the kernel does with classes and permissions the policy does not
    /// declare); checkpolicy's default when `None`.
    pub handle_unknown: Option<HandleUnknown>,
}

/// How a loaded policy treats the kernel's classes and permissions it does not declare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandleUnknown {
    Deny,
    Allow,
}

/// What a successful compilation produced.
#[derive(Debug)]
pub struct Output {
    pub policy_conf: PathBuf,
    pub policy_bin: PathBuf,
    /// Number of contexts validated through the compiler.
    pub contexts_checked: usize,
}

fn run(cmd: &mut Command, package: &str) -> Result<std::process::Output, String> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("`{program}` is not installed: apt-get install {package}")
        } else {
            format!("cannot run `{program}`: {e}")
        }
    })
}

/// One labelled entry of a contexts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextEntry {
    pub file: String,
    pub line: usize,
    /// The path regex, service name or (for genfs_contexts) `fs path`.
    pub key: String,
    pub context: String,
}

impl ContextEntry {
    /// The type field of `u:object_r:TYPE:s0`.
    pub fn type_name(&self) -> Option<&str> {
        self.context.split(':').nth(2)
    }
}

/// Reads `file_contexts` (`regex [-type] context`), `service_contexts` (`name context`) or
/// `genfs_contexts` (`genfscon fs path context`) and checks each line's shape.
pub fn read_contexts(path: &Path) -> Result<Vec<ContextEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let words: Vec<&str> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        if words.is_empty() {
            continue;
        }
        let at = |m: &str| format!("{}:{}: {m}", path.display(), n + 1);
        let (key, context) = match (file.as_str(), words.as_slice()) {
            ("genfs_contexts", ["genfscon", fs, p, ctx]) => (format!("{fs} {p}"), *ctx),
            ("genfs_contexts", _) => return Err(at("expected `genfscon <fs> <path> <context>`")),
            ("file_contexts", [re, ctx]) => (re.to_string(), *ctx),
            ("file_contexts", [re, kind, ctx]) => {
                if !matches!(*kind, "--" | "-d" | "-c" | "-b" | "-s" | "-l" | "-p") {
                    return Err(at(&format!("unknown file type `{kind}`")));
                }
                (re.to_string(), *ctx)
            }
            (_, [name, ctx]) => (name.to_string(), *ctx),
            _ => return Err(at("expected `<key> <context>`")),
        };
        let fields: Vec<&str> = context.split(':').collect();
        if fields.len() != 4 || fields[0] != "u" || fields[1] != "object_r" || fields[3] != "s0" {
            return Err(at(&format!(
                "context `{context}` is not u:object_r:<type>:s0"
            )));
        }
        if file == "file_contexts" {
            if !key.starts_with('/') {
                return Err(at("a file_contexts path must be absolute"));
            }
            regex::Regex::new(&format!("^(?:{key})$"))
                .map_err(|e| at(&format!("bad path regex: {e}")))?;
        }
        out.push(ContextEntry {
            file: file.clone(),
            line: n + 1,
            key,
            context: context.to_owned(),
        });
    }
    Ok(out)
}

impl Build {
    /// The vendor policy in `vendor_dir` against the stand-in in `stub_dir`, nothing else.
    pub fn new(stub_dir: PathBuf, vendor_dir: PathBuf) -> Self {
        Self {
            stub_dir,
            vendor_dir,
            extra_te: None,
            testbed_dir: None,
            handle_unknown: None,
        }
    }

    /// The `.te` files of a directory, by name.
    fn te_files_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
        let mut te = Vec::new();
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.extension().is_some_and(|e| e == "te") {
                te.push(path);
            }
        }
        te.sort();
        Ok(te)
    }

    /// The vendor `.te` files, `attributes` first, then the rest by name.
    pub fn vendor_te_files(&self) -> Result<Vec<PathBuf>, String> {
        let mut te = Self::te_files_in(&self.vendor_dir)?;
        let attributes = self.vendor_dir.join("attributes");
        if attributes.exists() {
            te.insert(0, attributes);
        }
        Ok(te)
    }

    /// The contexts files of the vendor policy (and of the test bed's part) that exist.
    pub fn contexts_files(&self) -> Vec<PathBuf> {
        let mut dirs = vec![&self.vendor_dir];
        dirs.extend(&self.testbed_dir);
        dirs.into_iter()
            .flat_map(|dir| {
                ["file_contexts", "service_contexts", "genfs_contexts"]
                    .iter()
                    .map(move |f| dir.join(f))
            })
            .filter(|p| p.exists())
            .collect()
    }

    /// Expands and compiles into `work`.
    pub fn compile(&self, work: &Path) -> Result<Output, String> {
        std::fs::create_dir_all(work).map_err(|e| e.to_string())?;
        let mut files: Vec<PathBuf> = STUB_HEAD.iter().map(|f| self.stub_dir.join(f)).collect();
        files.extend(self.vendor_te_files()?);
        if let Some(testbed) = &self.testbed_dir {
            files.extend(Self::te_files_in(testbed)?);
        }
        if let Some(extra) = &self.extra_te {
            let p = work.join("extra.te");
            std::fs::write(&p, extra).map_err(|e| e.to_string())?;
            files.push(p);
        }
        files.extend(STUB_TAIL.iter().map(|f| self.stub_dir.join(f)));
        // The policy language orders these: fs_use, then genfscon.
        if let Some(testbed) = &self.testbed_dir {
            files.push(testbed.join("fs_use"));
        }
        let mut genfs_dirs = vec![&self.vendor_dir];
        genfs_dirs.extend(&self.testbed_dir);
        for dir in genfs_dirs {
            let genfs = dir.join("genfs_contexts");
            if genfs.exists() {
                files.push(genfs);
            }
        }
        // Every label of the contexts files, as genfscon statements the compiler validates.
        let mut check =
            String::from("# Generated: one genfscon per label of the contexts files.\n");
        let mut contexts_checked = 0;
        // Two directories may both have a file_contexts: the file's index keeps paths unique.
        for (index, f) in self.contexts_files().iter().enumerate() {
            for e in read_contexts(f)? {
                check.push_str(&format!(
                    "# {}:{} {}\ngenfscon dmaheapcheck /{index}/{}/{} {}\n",
                    f.display(),
                    e.line,
                    e.key,
                    e.file,
                    e.line,
                    e.context
                ));
                contexts_checked += 1;
            }
        }
        let check_file = work.join("contexts_as_genfscon");
        std::fs::write(&check_file, check).map_err(|e| e.to_string())?;
        files.push(check_file);
        for f in &files {
            if !f.exists() {
                return Err(format!("missing policy file {}", f.display()));
            }
        }

        let expanded = run(
            Command::new("m4")
                .arg("--fatal-warnings")
                .arg("-s")
                .args(&files),
            "m4",
        )?;
        if !expanded.status.success() {
            return Err(format!(
                "m4 failed:\n{}",
                String::from_utf8_lossy(&expanded.stderr)
            ));
        }
        let policy_conf = work.join("policy.conf");
        std::fs::write(&policy_conf, &expanded.stdout).map_err(|e| e.to_string())?;
        let policy_bin = work.join("policy.bin");
        let mut checkpolicy = Command::new("checkpolicy");
        checkpolicy.arg("-M").arg("-c").arg(POLICY_VERSION);
        match self.handle_unknown {
            Some(HandleUnknown::Deny) => {
                checkpolicy.args(["-U", "deny"]);
            }
            Some(HandleUnknown::Allow) => {
                checkpolicy.args(["-U", "allow"]);
            }
            None => {}
        }
        let compiled = run(
            checkpolicy.arg("-o").arg(&policy_bin).arg(&policy_conf),
            "checkpolicy",
        )?;
        if !compiled.status.success() || !policy_bin.exists() {
            return Err(format!(
                "checkpolicy rejected the policy:\n{}{}",
                String::from_utf8_lossy(&compiled.stdout),
                String::from_utf8_lossy(&compiled.stderr)
            ));
        }
        Ok(Output {
            policy_conf,
            policy_bin,
            contexts_checked,
        })
    }
}
