//! The vendor policy compiles (m4 + checkpolicy against the platform stand-in), its labels name
//! what the other files use, and typos, undeclared types and neverallow violations fail.
//! m4 and checkpolicy are required: without them these tests fail, naming the package.

use std::path::{Path, PathBuf};

use android_checks::sepolicy::{self, Build};
use android_checks::{names, repo_root};

fn vendor_dir() -> PathBuf {
    repo_root().join("sepolicy/vendor")
}

fn stub_dir() -> PathBuf {
    repo_root().join("android/checks/platform-stub")
}

/// The expanded policy.conf text and the number of contexts validated, or the error.
fn build(vendor: &Path, extra: Option<&str>) -> Result<(String, usize), String> {
    let work = tempfile::tempdir().unwrap();
    let out = Build {
        extra_te: extra.map(str::to_owned),
        ..Build::new(stub_dir(), vendor.to_owned())
    }
    .compile(work.path())?;
    assert!(out.policy_bin.metadata().unwrap().len() > 0);
    let conf = std::fs::read_to_string(&out.policy_conf).unwrap();
    Ok((conf, out.contexts_checked))
}

fn copy_vendor() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(vendor_dir()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), tmp.path().join(e.file_name())).unwrap();
    }
    tmp
}

#[test]
fn vendor_policy_compiles() {
    let (conf, contexts_checked) = build(&vendor_dir(), None).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        contexts_checked >= 4,
        "contexts validated: {contexts_checked}"
    );
    // The macros really expanded into the HAL's attributes and rules.
    for needle in [
        "attribute hal_dmaheap;",
        "attribute hal_dmaheap_client;",
        "attribute hal_dmaheap_server;",
        "typeattribute hal_dmaheap_default hal_dmaheap_server;",
        "typeattribute hal_graphics_allocator_default hal_dmaheap_client;",
        "typeattribute hal_camera_default hal_dmaheap_client;",
        "typeattribute mediacodec hal_dmaheap_client;",
        "allow hal_dmaheap_client hal_dmaheap_service:service_manager find;",
        "allow hal_dmaheap_server hal_dmaheap_service:service_manager { add find };",
        "type_transition init hal_dmaheap_default_exec:process hal_dmaheap_default;",
    ] {
        assert!(conf.contains(needle), "expanded policy lacks `{needle}`");
    }
}

#[test]
fn labels_agree_with_the_other_files() {
    let sc = sepolicy::read_contexts(&vendor_dir().join("service_contexts")).unwrap();
    assert_eq!(sc.len(), 1);
    assert_eq!(sc[0].key, names::SERVICE_NAME);
    assert_eq!(sc[0].type_name(), Some(names::SERVICE_TYPE));

    let fc = sepolicy::read_contexts(&vendor_dir().join("file_contexts")).unwrap();
    let exec: Vec<_> = fc
        .iter()
        .filter(|e| {
            regex::Regex::new(&format!("^(?:{})$", e.key))
                .unwrap()
                .is_match(names::SERVICE_PATH)
        })
        .collect();
    assert_eq!(
        exec.len(),
        1,
        "exactly one file_contexts line labels {}",
        names::SERVICE_PATH
    );
    assert_eq!(exec[0].type_name(), Some(names::EXEC_TYPE));

    let te =
        std::fs::read_to_string(vendor_dir().join(format!("{}.te", names::SERVER_DOMAIN))).unwrap();
    assert!(te.contains(&format!("type {}, domain;", names::SERVER_DOMAIN)));
    assert!(te.contains(&format!(
        "hal_server_domain({}, {})",
        names::SERVER_DOMAIN,
        names::HAL_ATTRIBUTE
    )));
    assert!(te.contains(&format!("init_daemon_domain({})", names::SERVER_DOMAIN)));
    let attrs = std::fs::read_to_string(vendor_dir().join("attributes")).unwrap();
    assert!(attrs.contains(&format!(
        "hal_attribute({})",
        names::HAL_ATTRIBUTE.trim_start_matches("hal_")
    )));
}

/// Each of these must be refused by the compiler.
/// dumpstate (bugreport, dumpsys) may find and call the service and the server may write into
/// its pipe: a neverallow against each of those makes the build fail, so the policy grants them.
/// The service type carries AOSP's protected_service attribute.
#[test]
fn dumpstate_can_dump_the_hal_and_the_service_is_protected() {
    let (conf, _) = build(&vendor_dir(), None).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        conf.contains("typeattribute dumpstate hal_dmaheap_client;"),
        "dump_hal(hal_dmaheap) is missing"
    );
    assert!(
        conf.contains("protected_service") && conf.contains("type hal_dmaheap_service,"),
        "hal_dmaheap_service is not a protected_service"
    );
    let service_line = conf
        .lines()
        .find(|l| l.starts_with("type hal_dmaheap_service,"))
        .unwrap();
    assert!(service_line.contains("protected_service"), "{service_line}");
    for (what, neverallow) in [
        (
            "find",
            "neverallow dumpstate hal_dmaheap_service:service_manager find;",
        ),
        (
            "call",
            "neverallow dumpstate hal_dmaheap_server:binder call;",
        ),
        (
            "write the pipe",
            "neverallow hal_dmaheap_server dumpstate:fifo_file write;",
        ),
        (
            "use the fd",
            "neverallow hal_dmaheap_server dumpstate:fd use;",
        ),
    ] {
        let err = build(&vendor_dir(), Some(neverallow))
            .err()
            .unwrap_or_else(|| panic!("dumpstate cannot {what}: `{neverallow}` holds"));
        assert!(err.contains("neverallow"), "{what}: {err}");
    }
}

#[test]
fn violations_and_typos_fail() {
    let cases = [
        (
            "an app finding the service",
            "allow untrusted_app hal_dmaheap_service:service_manager find;",
            "neverallow",
        ),
        (
            "a non-client calling the HAL",
            "allow surfaceflinger hal_dmaheap_server:binder call;",
            "neverallow",
        ),
        (
            "a client opening a HAL-managed heap directly",
            "allow hal_camera_default dmaheap_vendor_heap_device:chr_file open;",
            "neverallow",
        ),
        (
            "another domain registering the service",
            "allow hal_camera_default hal_dmaheap_service:service_manager add;",
            "neverallow",
        ),
        (
            "the server writing files",
            "allow hal_dmaheap_default vendor_file:file write;",
            "neverallow",
        ),
        (
            "the server creating data files",
            "allow hal_dmaheap_default vendor_data_file:file create;",
            "neverallow",
        ),
        (
            "the server running programs",
            "allow hal_dmaheap_default vendor_file:file execute_no_trans;",
            "neverallow",
        ),
        (
            "the server loading modules",
            "allow hal_dmaheap_default self:capability sys_module;",
            "neverallow",
        ),
        (
            "an undeclared type",
            "allow hal_dmaheap_default hal_dmaheap_typo:file read;",
            "unknown type hal_dmaheap_typo",
        ),
        (
            "a misspelt macro",
            "hal_server_domian(hal_dmaheap_default, hal_dmaheap)",
            "syntax error",
        ),
        (
            "an unknown permission",
            "allow hal_dmaheap_default vendor_file:file fly;",
            "permission fly is not defined",
        ),
    ];
    for (what, rule, why) in cases {
        let r = build(&vendor_dir(), Some(rule));
        match r {
            Ok(_) => panic!("{what} (`{rule}`) compiled"),
            Err(e) => assert!(
                e.contains(why),
                "{what}: failed, but not with `{why}`:\n{e}"
            ),
        }
    }
}
#[test]
fn contexts_with_unknown_types_fail() {
    for (file, line) in [
        (
            "file_contexts",
            "/vendor/bin/hw/other    u:object_r:no_such_exec:s0\n",
        ),
        (
            "service_contexts",
            "vendor.dmaheap.IOther/default    u:object_r:no_such_service:s0\n",
        ),
        (
            "genfs_contexts",
            "genfscon sysfs /kernel/other u:object_r:no_such_sysfs:s0\n",
        ),
        (
            "file_contexts",
            "/vendor/bin/hw/other    u:object_r:hal_dmaheap_default_exec\n",
        ),
        (
            "file_contexts",
            "/vendor/bin/(unclosed    u:object_r:hal_dmaheap_default_exec:s0\n",
        ),
    ] {
        let tmp = copy_vendor();
        let p = tmp.path().join(file);
        let mut text = std::fs::read_to_string(&p).unwrap();
        text.push_str(line);
        std::fs::write(&p, text).unwrap();
        assert!(
            build(tmp.path(), None).is_err(),
            "{file}: `{}` was accepted",
            line.trim()
        );
    }
}

#[test]
fn missing_tools_are_an_error_not_a_skip() {
    // Point PATH nowhere for a child process: the build must fail and name the package.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "tool_probe", "--nocapture", "--include-ignored"])
        .env("PATH", "/nonexistent")
        .env("DMAHEAP_TOOL_PROBE", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("apt-get install m4"), "{text}");
}

/// Helper for the test above: only does something in the child process it starts.
#[test]
fn tool_probe() {
    if std::env::var_os("DMAHEAP_TOOL_PROBE").is_none() {
        return;
    }
    let err = build(&vendor_dir(), None).unwrap_err();
    println!("{err}");
}

/// The policy the test VM loads: the vendor policy, the stand-in and the test bed's own part
/// (xtask/selinux), which must keep every neverallow of the other two.
#[test]
fn the_test_vm_policy_compiles() {
    let work = tempfile::tempdir().unwrap();
    let out = Build {
        testbed_dir: Some(repo_root().join("xtask/selinux")),
        handle_unknown: Some(sepolicy::HandleUnknown::Allow),
        ..Build::new(stub_dir(), vendor_dir())
    }
    .compile(work.path())
    .unwrap_or_else(|e| panic!("{e}"));
    let conf = std::fs::read_to_string(&out.policy_conf).unwrap();
    for needle in [
        "fs_use_trans devtmpfs u:object_r:device:s0;",
        "genfscon binder /binder u:object_r:binder_device:s0",
        "type_transition init hal_dmaheap_default_exec:process hal_dmaheap_default;",
        "type_transition kernel init_exec:process init;",
    ] {
        assert!(conf.contains(needle), "the VM policy lacks `{needle}`");
    }
}
