//! Hostile clients, by uid (issue 9): each runs as its own process under its own uid (`dmaheapctl`
//! started with fork + setgid + setuid + exec), against the running service and the test bed's
//! policy (service/policy/testbed.toml lists root, cameraserver and mediacodec on some restricted
//! heaps, and nobody else).
//!
//! Run as root with `--test-threads=1`: the tests count the service's fds and the kernel's
//! dma-bufs. The SELinux-domain cases are the SELinux-enforcing VM's (see the README).

use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use dmaheap_aidl::consts::ERROR_BUSY;
use dmaheap_client::HeapAllocator;
use dmaheap_vts::{connect, open_fds, service_pid};

/// An app uid the test bed's policy lists nowhere.
const APP: u32 = 10123;
/// Another app uid, the one that floods the service.
const FLOODER: u32 = 10124;
const CAMERASERVER: u32 = 1047;
const MEDIACODEC: u32 = 1046;

fn hal() -> HeapAllocator {
    connect().expect("vendor.dmaheap.IHeapAllocator/default is registered")
}

/// Lets other uids open the binder device, as Android's /dev/binder (0666) does.
fn binder_for_everyone() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use std::os::unix::fs::PermissionsExt;
        let path = rsbinder::DEFAULT_BINDER_PATH;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .unwrap_or_else(|e| panic!("chmod {path}: {e}"));
    });
}

/// `dmaheapctl <args>` as `uid` (and the same gid).
fn ctl(uid: u32, args: &[&str]) -> Command {
    binder_for_everyone();
    let mut c = Command::new("dmaheapctl");
    c.args(args).uid(uid).gid(uid);
    c
}

fn run_as(uid: u32, args: &[&str]) -> Output {
    ctl(uid, args)
        .output()
        .unwrap_or_else(|e| panic!("dmaheapctl {args:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Live dma-bufs in the whole system, from the kernel's accounting (CONFIG_DMABUF_SYSFS_STATS:
/// one directory per buffer), or debugfs' bufinfo when sysfs has none.
fn live_dmabufs() -> usize {
    if let Ok(dir) = std::fs::read_dir("/sys/kernel/dmabuf/buffers") {
        return dir.count();
    }
    let info = std::fs::read_to_string("/sys/kernel/debug/dma_buf/bufinfo")
        .expect("neither /sys/kernel/dmabuf/buffers nor debugfs dma_buf/bufinfo");
    // "Total N objects, M bytes" ends the table.
    info.lines()
        .find_map(|l| l.strip_prefix("Total "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("bufinfo has a Total line")
}

fn settle(what: &str, target: usize, count: impl Fn() -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = count();
        if now <= target || Instant::now() > deadline {
            if now > target {
                eprintln!("{what}: {now}, expected {target}");
            }
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_uid_the_policy_does_not_list_gets_ex_security_on_every_path_and_no_buffer() {
    let before = live_dmabufs();
    for args in [
        &["alloc", "--heap", "kmod-cma"][..],
        &["alloc", "--heap", "kmod-carveout"],
        &["alloc", "--heap", "reserved"],
        // Scanout: every heap of the rule is contiguous.
        &["alloc", "--usage", "COMPOSER_OVERLAY"],
        // ION id 2 is the carveout, id 4 CMA.
        &["alloc", "--ion-mask", "0x4"],
        &["alloc", "--ion-mask", "0x10"],
        &["alloc", "--heap", "kmod-cma", "--count", "8"],
    ] {
        let out = run_as(APP, args);
        let all = text(&out);
        assert!(!out.status.success(), "{args:?} was served:\n{all}");
        assert!(
            all.contains("Security") && all.contains("may not allocate from heap"),
            "{args:?}: not EX_SECURITY naming the heap:\n{all}"
        );
        assert!(all.contains("uid 10123"), "{args:?}: {all}");
    }
    assert_eq!(
        settle("live dma-bufs", before, live_dmabufs),
        before,
        "a denied request left a dma-buf"
    );
    // The system heaps stay open to the same uid.
    let out = run_as(APP, &["alloc", "--heap", "system", "--count", "2"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn the_uids_the_policy_lists_are_served_from_restricted_heaps() {
    for (uid, heap) in [
        (CAMERASERVER, "kmod-cma"),
        (CAMERASERVER, "reserved"),
        (MEDIACODEC, "kmod-carveout"),
    ] {
        let out = run_as(uid, &["alloc", "--heap", heap, "--size", "64K"]);
        assert!(out.status.success(), "uid {uid} on {heap}:\n{}", text(&out));
    }
    // ... and only those: cameraserver is not listed on the carveout.
    let out = run_as(CAMERASERVER, &["alloc", "--heap", "kmod-carveout"]);
    assert!(!out.status.success(), "{}", text(&out));
}

#[test]
fn only_privileged_callers_see_other_uids_counters_and_dumps() {
    // Leave a trace of APP in the counters.
    let _ = run_as(APP, &["alloc", "--heap", "kmod-cma"]);
    let root = hal().stats().unwrap();
    assert!(
        root.clients.iter().any(|c| c.uid == APP as i32),
        "root sees every uid: {:?}",
        root.clients.iter().map(|c| c.uid).collect::<Vec<_>>()
    );
    let out = run_as(APP, &["--json", "stats"]);
    assert!(out.status.success(), "{}", text(&out));
    // dmaheapctl's JSON has one `"uid":N` per row.
    let stdout = String::from_utf8_lossy(&out.stdout).replace(' ', "");
    let uids: Vec<String> = stdout
        .split("\"uid\":")
        .skip(1)
        .map(|rest| rest.chars().take_while(char::is_ascii_digit).collect())
        .collect();
    assert!(
        uids.iter().all(|u| *u == APP.to_string()),
        "an app sees other uids' counters: {uids:?}"
    );
    let out = run_as(APP, &["dump"]);
    assert!(!out.status.success(), "an app dumped:\n{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("counters per calling uid"),
        "{}",
        text(&out)
    );
}

/// A pipe whose buffer is full and whose read end stays open, unread: a write to it blocks.
fn full_pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let (read, write) = nix::unistd::pipe().unwrap();
    fcntl(write.as_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).unwrap();
    let mut file = std::fs::File::from(write.try_clone().unwrap());
    let chunk = [b'#'; 4096];
    while file.write(&chunk).is_ok() {}
    // The service gets a blocking descriptor, as a careless or hostile client would send.
    fcntl(write.as_fd(), FcntlArg::F_SETFL(OFlag::empty())).unwrap();
    (read, write)
}

#[test]
fn dumps_into_full_pipes_do_not_stop_the_service() {
    let hal = hal();
    let pid = service_pid().expect("the service process");
    let fds_before = open_fds(pid).unwrap();
    let dumps: Vec<_> = (0..20)
        .map(|_| {
            std::thread::spawn(|| {
                let hal = connect().unwrap();
                let (_unread, write) = full_pipe();
                let binder = hal.raw().as_binder();
                let proxy = binder.as_proxy().expect("remote");
                // Refused (one dump at a time) or abandoned at the service's deadline; either
                // way it returns.
                let _ = proxy.dump(write, &[]);
            })
        })
        .collect();
    // While they are in flight, the service answers.
    for _ in 0..5 {
        assert!(!hal.list_heaps().unwrap().is_empty());
        hal.allocate_from_heap("system", 4096, "hostile.during-dumps")
            .unwrap();
    }
    for d in dumps {
        d.join().expect("a dump thread panicked");
    }
    hal.list_heaps()
        .expect("the service answers after the dumps");
    assert_eq!(
        settle("service fds", fds_before, || open_fds(pid).unwrap()),
        fds_before,
        "the service kept dump fds"
    );
    // A root dump into a pipe that is read still works.
    assert!(hal.dump().unwrap().contains("counters per calling uid"));
}

#[test]
fn one_uid_saturating_the_service_does_not_starve_another() {
    let hal = hal();
    // 16 processes of one uid, each asking for an 8 MiB buffer (zeroed, then mapped and read
    // by the client): more calls than the service has binder threads.
    let flood: Vec<Child> = (0..16)
        .map(|_| {
            ctl(
                FLOODER,
                &["alloc", "--heap", "system", "--size", "32M", "--count", "1"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    // Another uid's 4 KiB allocations complete meanwhile.
    for i in 0..10 {
        hal.allocate_from_heap("system", 4096, "hostile.small")
            .unwrap_or_else(|e| panic!("allocation {i} while uid {FLOODER} floods: {e}"));
    }
    let mut busy = 0;
    for child in flood {
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("({ERROR_BUSY})")) || err.contains("ERROR_BUSY"),
                "the flood failed other than with ERROR_BUSY: {err}"
            );
            busy += 1;
        }
    }
    eprintln!("{busy} of 16 flooding calls got ERROR_BUSY");
    hal.list_heaps().unwrap();
}

#[test]
fn a_client_killed_mid_batch_leaves_no_dma_buf_behind() {
    let before = live_dmabufs();
    let mut child = ctl(
        FLOODER,
        &[
            "alloc",
            "--heap",
            "system",
            "--size",
            "2M",
            "--count",
            "64",
            "--name",
            "hostile.killed",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    // Wait until the service is part-way through the batch, then kill the client.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = 0;
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        seen = live_dmabufs().saturating_sub(before);
        if seen >= 4 {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .ok();
    let status = child.wait().unwrap();
    eprintln!("killed after {seen} of 64 buffers were live ({status})");
    assert_eq!(
        settle("live dma-bufs", before, live_dmabufs),
        before,
        "buffers of the killed client's batch are still alive"
    );
    hal().list_heaps().expect("the service answers");
}
