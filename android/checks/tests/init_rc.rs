//! The init script starts the binary Android.bp installs, declares the AIDL instance, and loads
//! the heap module the kernel side builds.

mod common;

use android_checks::sepolicy::Build;
use android_checks::{initrc, modload, names};
use common::*;

fn rc() -> initrc::RcFile {
    initrc::parse(&read(names::INIT_RC)).unwrap_or_else(|e| panic!("{}: {e}", names::INIT_RC))
}

#[test]
fn service_runs_the_installed_binary() {
    let rc = rc();
    assert_eq!(rc.services.len(), 1);
    let s = &rc.services[0];
    let bp = android_bp();
    let m = module(&bp, "rust_binary", names::SERVICE_MODULE);
    assert_eq!(
        s.path,
        installed_path(m),
        "the .rc must start what Android.bp installs"
    );
    assert_eq!(
        s.name,
        names::SERVICE_MODULE,
        "by convention the service is named after its module"
    );
}

#[test]
fn service_declares_the_aidl_instance_and_runs_as_a_hal() {
    let rc = rc();
    let s = &rc.services[0];
    let interfaces = s.option("interface");
    assert_eq!(interfaces.len(), 1);
    assert_eq!(interfaces[0], ["aidl", names::SERVICE_NAME]);
    assert_eq!(s.option("class"), [["hal".to_owned()]]);
    let user = s.option("user");
    assert_eq!(user.len(), 1);
    assert_ne!(user[0][0], "root", "the HAL does not need root");
    assert!(!s.option("group").is_empty());
    assert!(
        s.option("disabled").is_empty(),
        "the HAL starts with class hal"
    );
    assert!(
        s.option("oneshot").is_empty(),
        "the HAL is restarted when it dies"
    );
}

/// AOSP init refuses `restart_period` below 5 s (`ServiceParser::ParseRestartPeriod`), which
/// would drop the whole service; the file descriptor limit is set, and covers a full batch on
/// every binder thread.
#[test]
fn restart_period_is_valid_and_open_files_are_limited_explicitly() {
    let rc = rc();
    let s = &rc.services[0];
    for period in s.option("restart_period") {
        let seconds: u32 = period[0].parse().expect("restart_period is a number");
        assert!(seconds >= 5, "init refuses restart_period {seconds} (< 5)");
    }
    let rlimits = s.option("rlimit");
    let nofile = rlimits
        .iter()
        .find(|r| ["nofile", "RLIMIT_NOFILE", "7"].contains(&r[0].as_str()))
        .expect("an `rlimit nofile <soft> <hard>` line");
    let soft: u64 = nofile[1].parse().expect("a number");
    let hard: u64 = nofile[2].parse().expect("a number");
    let number_after = |text: &str, key: &str| -> u64 {
        let rest = &text[text.find(key).unwrap_or_else(|| panic!("{key}")) + key.len()..];
        rest.trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("a number after {key}"))
    };
    let service_main = read("service/src/bin/dmaheap-service.rs");
    let threads_arg = &service_main[..service_main.find("threads: u32").expect("--threads")];
    let threads = number_after(
        &threads_arg[threads_arg.rfind("default_value_t").unwrap()..],
        "default_value_t =",
    );
    let batch = number_after(
        &read("aidl/vendor/dmaheap/IHeapAllocator.aidl"),
        "MAX_BATCH_COUNT =",
    );
    assert!(soft <= hard, "{nofile:?}");
    assert!(
        soft >= threads * batch + 64,
        "soft limit {soft} cannot hold a full batch on every binder thread"
    );
}

fn policy() -> Build {
    Build::new(
        root().join("android/checks/platform-stub"),
        root().join("sepolicy/vendor"),
    )
}

fn contexts() -> Vec<std::path::PathBuf> {
    vec![
        root().join("android/checks/platform-stub/file_contexts"),
        root().join("sepolicy/vendor/file_contexts"),
    ]
}

fn load_problems(rc: &initrc::RcFile) -> Vec<String> {
    let ctx = contexts();
    let ctx: Vec<&std::path::Path> = ctx.iter().map(|p| p.as_path()).collect();
    let mut out = Vec::new();
    for l in modload::loads(rc).unwrap() {
        out.extend(modload::problems(&policy(), &ctx, &l).unwrap());
    }
    out
}

#[test]
fn heap_module_is_loaded_by_vendor_modprobe_before_the_hal() {
    let rc = rc();
    let loads = modload::loads(&rc).unwrap();
    assert_eq!(loads.len(), 1, "one load of the heap module: {loads:?}");
    let l = &loads[0];
    assert_eq!(l.domain, "vendor_modprobe");
    assert_eq!(l.program.as_deref(), Some("/vendor/bin/modprobe"));
    assert_eq!(l.module_file, names::KMOD_PATH);
    // Before `on boot`, which starts class hal.
    let action = rc
        .actions
        .iter()
        .find(|a| a.commands.iter().any(|c| c[0] == "exec"))
        .unwrap();
    assert!(
        [
            "early-init",
            "init",
            "late-init",
            "post-fs",
            "post-fs-data",
            "early-boot"
        ]
        .contains(&action.trigger[0].as_str()),
        "load trigger {:?} is not before class hal starts",
        action.trigger
    );
    // The module the kernel side builds has that name.
    let kbuild = read("heaps-kmod/Kbuild");
    let object = names::KMOD.trim_end_matches(".ko");
    assert_eq!(l.module_name.as_deref(), Some(object));
    assert!(kbuild.contains("obj-m") && kbuild.contains(&format!("{object}.o")));
}

/// The platform policy (stand-in with AOSP's init and vendor_modprobe rules) lets that command
/// load the module.
#[test]
fn the_policy_lets_the_load_happen() {
    let problems = load_problems(&rc());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The way this project loaded it before (init's own insmod) is refused under AOSP's rules, and
/// so is a modprobe that runs as init or in a domain without the rules.
#[test]
fn loading_the_module_any_other_way_fails() {
    for (what, text, needle) in [
        (
            "insmod from init",
            "on early-boot\n    insmod /vendor/lib/modules/dmaheap_heaps.ko\n",
            "init cannot hold CAP_SYS_MODULE",
        ),
        (
            "modprobe in a vendor domain that is not vendor_modprobe",
            "on early-boot\n    exec u:r:hal_dmaheap_default:s0 -- /vendor/bin/modprobe -a -d /vendor/lib/modules dmaheap_heaps\n",
            "hal_dmaheap_default cannot hold CAP_SYS_MODULE",
        ),
    ] {
        let rc = initrc::parse(text).unwrap();
        let problems = load_problems(&rc);
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "{what}: {problems:?}"
        );
    }
    let bad = initrc::parse(
        "on early-boot\n    exec -- /vendor/bin/modprobe -d /vendor/lib/modules dmaheap_heaps\n",
    )
    .unwrap();
    assert!(
        modload::loads(&bad).is_err(),
        "a modprobe without seclabel runs as init"
    );
    // A rule granting init the module load brings the old init.te back: it names a type AOSP
    // does not have.
    let mut with_init_te = policy();
    with_init_te.extra_te = Some("allow init vendor_kernel_modules:system module_load;\n".into());
    let work = tempfile::tempdir().unwrap();
    let e = with_init_te.compile(work.path()).unwrap_err();
    assert!(e.contains("vendor_kernel_modules"), "{e}");
}

/// The parameters the device sets (heaps-kmod/modules.options) exist in the module, with values
/// of their type: renaming or retyping a parameter in params.rs fails here.
#[test]
fn module_options_name_real_parameters() {
    let params = kmod_params();
    assert!(params.len() >= 5, "{params:?}");
    let text = read("heaps-kmod/modules.options");
    let object = names::KMOD.trim_end_matches(".ko");
    let mut checked = 0;
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut words = line.split_whitespace();
        assert_eq!(words.next(), Some("options"), "{line}");
        assert_eq!(words.next(), Some(object), "{line}");
        for kv in words {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            let ty = params.get(k).unwrap_or_else(|| {
                panic!("modules.options sets `{k}`, which the module does not have ({params:?})")
            });
            match ty.as_str() {
                "charp" => {}
                "uint" => {
                    v.parse::<u32>()
                        .unwrap_or_else(|_| panic!("{k}={v} is not a uint"));
                }
                other => panic!("{k}: parameter type {other} is not handled"),
            }
            checked += 1;
        }
    }
    assert!(checked >= 3);
}

/// `name -> type` of the module's parameters: every `param!` in params.rs, which must agree with
/// its `parmtype=` modinfo line (what modinfo and modprobe see).
pub fn kmod_params() -> std::collections::BTreeMap<String, String> {
    let src = read("heaps-kmod/params.rs");
    let mut out = std::collections::BTreeMap::new();
    // The kernel's rustfmt may spread an invocation over several lines: take each `param!(`
    // at a line start up to its closing parenthesis.
    for (at, _) in src.match_indices("\nparam!(") {
        let body = &src[at + "\nparam!(".len()..];
        let body = &body[..body.find(')').expect("param! is closed")];
        let args: Vec<&str> = body.split(',').map(str::trim).collect();
        let name = args[1].trim_matches('"').to_owned();
        let ty = args[2].trim_start_matches("param_ops_").to_owned();
        out.insert(name, ty);
    }
    for (name, ty) in &out {
        assert!(
            src.contains(&format!("parmtype={name}:{ty}")),
            "param {name} ({ty}) has no matching parmtype modinfo"
        );
    }
    assert_eq!(
        src.matches("b\"parmtype=").count(),
        out.len(),
        "every parmtype line belongs to a param!"
    );
    out
}

/// The vendor heap nodes get a mode in ueventd that lets the HAL (and only it) open them.
#[test]
fn ueventd_gives_vendor_heaps_to_the_hal_only() {
    let text = read("init/ueventd.dmaheap.rc");
    let lines: Vec<Vec<&str>> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 1);
    let [path, mode, user, group] = lines[0][..] else {
        panic!("ueventd lines are `path mode user group`: {:?}", lines[0]);
    };
    let mode = u32::from_str_radix(mode, 8).expect("octal mode");
    assert_eq!(mode & 0o007, 0, "others get no access to HAL-managed heaps");
    assert_ne!(mode & 0o440, 0);
    // The service's user and group (init/vendor.dmaheap-service.rc).
    let rc = rc();
    let s = &rc.services[0];
    assert_eq!(s.option("user")[0][0], user);
    assert_eq!(s.option("group")[0][0], group);
    // The glob covers the nodes sepolicy labels as vendor heaps, and only those.
    let fc = android_checks::sepolicy::read_contexts(&root().join("sepolicy/vendor/file_contexts"))
        .unwrap();
    let heap = fc
        .iter()
        .find(|e| e.type_name() == Some("dmaheap_vendor_heap_device"))
        .unwrap();
    let re = regex::Regex::new(&format!("^(?:{})$", heap.key)).unwrap();
    let prefix = path.strip_suffix('*').expect("a prefix glob");
    assert!(re.is_match(&format!("{prefix}cma")));
    assert!(!re.is_match("/dev/dma_heap/system") && !"/dev/dma_heap/system".starts_with(prefix));
}
