//! Android init `.rc` files: sections (`service`, `on`, `import`) with their option or command
//! lines, parsed after init's own rules (tokens split on blanks, `#` comments, `\` continuations).

/// A `service` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub path: String,
    pub args: Vec<String>,
    /// Option lines, each split into words (`["class", "hal"]`).
    pub options: Vec<Vec<String>>,
    pub line: usize,
}

impl Service {
    /// Every option line starting with `keyword`, without the keyword.
    pub fn option(&self, keyword: &str) -> Vec<&[String]> {
        self.options
            .iter()
            .filter(|o| o.first().map(String::as_str) == Some(keyword))
            .map(|o| &o[1..])
            .collect()
    }
}

/// An `on <trigger>` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub trigger: Vec<String>,
    pub commands: Vec<Vec<String>>,
    pub line: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcFile {
    pub services: Vec<Service>,
    pub actions: Vec<Action>,
    pub imports: Vec<String>,
}

/// Options init accepts in a service section (Android 14/15), for typo detection.
pub const SERVICE_OPTIONS: &[&str] = &[
    "capabilities",
    "class",
    "console",
    "critical",
    "disabled",
    "enter_namespace",
    "file",
    "gentle_kill",
    "group",
    "interface",
    "ioprio",
    "keycodes",
    "memcg.limit_in_bytes",
    "memcg.limit_percent",
    "memcg.limit_property",
    "memcg.soft_limit_in_bytes",
    "memcg.swappiness",
    "namespace",
    "oneshot",
    "onrestart",
    "oom_score_adjust",
    "override",
    "priority",
    "reboot_on_failure",
    "restart_period",
    "rlimit",
    "seclabel",
    "setenv",
    "shutdown",
    "sigstop",
    "socket",
    "stdio_to_kmsg",
    "task_profiles",
    "timeout_period",
    "updatable",
    "user",
    "writepid",
];

/// Commands init knows (the builtins of Android 14/15 that a vendor .rc may use).
pub const COMMANDS: &[&str] = &[
    "bootchart",
    "chmod",
    "chown",
    "class_reset",
    "class_restart",
    "class_start",
    "class_stop",
    "copy",
    "copy_per_line",
    "domainname",
    "enable",
    "exec",
    "exec_background",
    "exec_start",
    "export",
    "hostname",
    "ifup",
    "insmod",
    "interface_restart",
    "interface_start",
    "interface_stop",
    "load_exports",
    "load_system_props",
    "loglevel",
    "mark_post_data",
    "mkdir",
    "mount",
    "mount_all",
    "perform_apex_config",
    "restart",
    "restorecon",
    "restorecon_recursive",
    "rm",
    "rmdir",
    "setprop",
    "setrlimit",
    "start",
    "stop",
    "swapon_all",
    "symlink",
    "sysclktz",
    "trigger",
    "umount",
    "umount_all",
    "verity_update_state",
    "wait",
    "wait_for_prop",
    "write",
];

/// Parses an .rc file; unknown service options and commands are errors (init logs and ignores
/// them on a device, which hides typos until something does not start).
pub fn parse(text: &str) -> Result<RcFile, String> {
    let mut rc = RcFile::default();
    enum Cur {
        None,
        Service,
        Action,
    }
    let mut cur = Cur::None;
    let mut logical = String::new();
    let mut start_line = 0;
    for (n, raw) in text.lines().enumerate() {
        let n = n + 1;
        if logical.is_empty() {
            start_line = n;
        }
        if let Some(stripped) = raw.strip_suffix('\\') {
            logical.push_str(stripped);
            logical.push(' ');
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        let words: Vec<String> = line
            .split('#')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        let Some(first) = words.first() else { continue };
        match first.as_str() {
            "service" => {
                if words.len() < 3 {
                    return Err(format!(
                        "line {start_line}: service needs a name and a path"
                    ));
                }
                if !words[2].starts_with('/') {
                    return Err(format!("line {start_line}: service path must be absolute"));
                }
                rc.services.push(Service {
                    name: words[1].clone(),
                    path: words[2].clone(),
                    args: words[3..].to_vec(),
                    options: Vec::new(),
                    line: start_line,
                });
                cur = Cur::Service;
            }
            "on" => {
                if words.len() < 2 {
                    return Err(format!("line {start_line}: `on` needs a trigger"));
                }
                rc.actions.push(Action {
                    trigger: words[1..].to_vec(),
                    commands: Vec::new(),
                    line: start_line,
                });
                cur = Cur::Action;
            }
            "import" => {
                rc.imports.push(words.get(1).cloned().unwrap_or_default());
                cur = Cur::None;
            }
            word => match cur {
                Cur::Service => {
                    if !SERVICE_OPTIONS.contains(&word) {
                        return Err(format!(
                            "line {start_line}: unknown service option `{word}`"
                        ));
                    }
                    rc.services
                        .last_mut()
                        .expect("in a service")
                        .options
                        .push(words);
                }
                Cur::Action => {
                    if !COMMANDS.contains(&word) {
                        return Err(format!("line {start_line}: unknown command `{word}`"));
                    }
                    rc.actions
                        .last_mut()
                        .expect("in an action")
                        .commands
                        .push(words);
                }
                Cur::None => {
                    return Err(format!("line {start_line}: `{word}` outside of a section"));
                }
            },
        }
    }
    Ok(rc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections_and_rejects_typos() {
        let rc = parse(
            "# c\nservice s /vendor/bin/hw/s --flag\n    class hal\n    user system # why\n\n\
             on early-boot && property:a=b\n    insmod /vendor/lib/modules/m.ko \\\n        x=1\n",
        )
        .unwrap();
        assert_eq!(rc.services[0].path, "/vendor/bin/hw/s");
        assert_eq!(rc.services[0].args, ["--flag"]);
        assert_eq!(rc.services[0].option("class")[0], ["hal"]);
        assert_eq!(rc.actions[0].trigger, ["early-boot", "&&", "property:a=b"]);
        assert_eq!(
            rc.actions[0].commands[0],
            ["insmod", "/vendor/lib/modules/m.ko", "x=1"]
        );
        assert!(parse("service s /x\n    clas hal\n").is_err());
        assert!(parse("on boot\n    insmdo /x.ko\n").is_err());
        assert!(parse("service s x\n").is_err());
        assert!(parse("    class hal\n").is_err());
    }
}
