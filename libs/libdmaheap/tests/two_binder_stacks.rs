//! Two binder stacks in one process (issue 17 item 5), in the test VM: a process that serves its
//! own binder interface on one binder fd, as a C++ HAL does with libbinder, allocates through
//! libdmaheap's C ABI, whose rsbinder opens a second fd.
//!
//! The HAL's own stack is binder-wire's raw client (`binder_wire::driver`), which stands in for
//! libbinder: it shares no code or state with rsbinder, so whatever works here works because
//! the kernel keeps the two fds apart, not because both stacks are one library. Its node is
//! registered with the test bed's service manager; calls to it come in on a third fd (a client's
//! `binder_proc`, as another process's would be; the kernel tells them apart by fd, not by pid).
//!
//! Prints TAP. `DMAHEAP_RESTART_CMD` is a shell command that kills the allocator service and
//! starts it again; `DMAHEAP_BINDER_DEVICE` the binder device (binderfs' `binder` by default).
//! Built with `test = false` and `harness = false`: it needs the VM's binder and service.

use std::ffi::{CStr, CString};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use binder_wire::driver::{Endpoint, Outcome, Received, FIRST_CALL_TRANSACTION, TF_ACCEPT_FDS};
use binder_wire::service_manager::{add_service_to_rsb_hub, service_handle};
use binder_wire::wire::{Reader, Status, Writer};
use dmaheap::{
    dmaheap_alloc_by_usage, dmaheap_connect, dmaheap_debug_counters, dmaheap_last_error,
    dmaheap_set_service_wait_ms,
};

/// The own interface's name in the service manager, and its node.
const OWN_SERVICE: &str = "vendor.example.ITwoStacks/default";
const OWN_NODE: u64 = 0x2057_ac00;
const OWN_COOKIE: u64 = 0x2057_ac01;

/// The own interface's methods: echo an int back plus one; allocate through libdmaheap inside
/// the transaction and send the dma-buf back in the reply.
const ECHO: u32 = FIRST_CALL_TRANSACTION;
const ALLOCATE_INSIDE: u32 = FIRST_CALL_TRANSACTION + 1;

/// gralloc's CPU_READ_OFTEN | CPU_WRITE_OFTEN.
const CPU_READ_WRITE_OFTEN: u64 = 0x33;
const ROUNDS: i32 = 40;

struct Tap {
    number: usize,
    failed: usize,
}

impl Tap {
    fn result(&mut self, ok: bool, what: &str) -> bool {
        self.number += 1;
        if !ok {
            self.failed += 1;
        }
        println!(
            "{}ok {} - {what}",
            if ok { "" } else { "not " },
            self.number
        );
        ok
    }

    fn check(&mut self, what: &str, outcome: Result<(), String>) -> bool {
        match outcome {
            Ok(()) => self.result(true, what),
            Err(e) => {
                println!("# {e}");
                self.result(false, what)
            }
        }
    }
}

fn last_error() -> String {
    // SAFETY: dmaheap_last_error returns a NUL-terminated string owned by this thread's slot in
    // the library, valid until the thread's next libdmaheap call; it is copied at once.
    unsafe { CStr::from_ptr(dmaheap_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// One buffer through the C ABI, as a C++ HAL calls it.
fn allocate(len: usize, name: &str) -> Result<OwnedFd, String> {
    let name = CString::new(name).map_err(|e| e.to_string())?;
    // SAFETY: `name` is a NUL-terminated string that outlives the call.
    let fd = unsafe { dmaheap_alloc_by_usage(CPU_READ_WRITE_OFTEN, len, name.as_ptr()) };
    if fd < 0 {
        return Err(format!("dmaheap_alloc_by_usage: {fd} ({})", last_error()));
    }
    // SAFETY: a non-negative return is a dma-buf fd the library hands over to the caller.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn dma_buf_len(fd: &OwnedFd) -> i64 {
    nix::unistd::lseek(fd, 0, nix::unistd::Whence::SeekEnd).unwrap_or(-1)
}

/// (lookups, deaths seen, retries after a dead object).
fn counters() -> (u64, u64, u64) {
    let (mut lookups, mut deaths, mut retries) = (0, 0, 0);
    // SAFETY: three writable u64s.
    unsafe { dmaheap_debug_counters(&mut lookups, &mut deaths, &mut retries) };
    (lookups, deaths, retries)
}

/// The binder fds this process holds: /proc/self/fd links to the binder device.
fn binder_fds(device: &str) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|target| target.as_os_str() == device))
        .count()
}

/// The own interface, answered on its own looper thread, on its own fd, until the process ends.
fn serve_own_interface(mut endpoint: Endpoint, served: Arc<AtomicUsize>) {
    if let Err(e) = endpoint.enter_looper() {
        println!("# the own stack's looper: {e}");
        return;
    }
    loop {
        let call = match endpoint.next_transaction(None) {
            Ok(call) => call,
            Err(e) => {
                println!("# the own stack stopped reading: {e}");
                return;
            }
        };
        let answered = match call.code {
            ECHO => answer_echo(&mut endpoint, &call),
            ALLOCATE_INSIDE => answer_allocate_inside(&mut endpoint, &call),
            _ => endpoint.answer_meta(&call),
        };
        if let Err(e) = answered {
            println!("# the own stack could not answer code {}: {e}", call.code);
            return;
        }
        served.fetch_add(1, Ordering::Relaxed);
    }
}

/// Reply: the status header of a successful call (EX_NONE), the argument plus one, the caller's
/// pid as the driver gave it.
fn answer_echo(endpoint: &mut Endpoint, call: &Received) -> binder_wire::driver::Result<()> {
    let value = Reader::new(&call.data, &call.offsets)
        .i32()
        .unwrap_or(i32::MIN);
    let mut w = Writer::new(None);
    w.i32(0).i32(value.wrapping_add(1)).i32(call.sender_pid);
    endpoint.reply(&w.data, &w.offsets)
}

/// A libbinder pool thread calling libdmaheap in the middle of an incoming transaction, and the
/// dma-buf that rsbinder's fd brought in leaving on the own stack's fd.
fn answer_allocate_inside(
    endpoint: &mut Endpoint,
    call: &Received,
) -> binder_wire::driver::Result<()> {
    let len = Reader::new(&call.data, &call.offsets).i32().unwrap_or(0);
    let mut w = Writer::new(None);
    match allocate(usize::try_from(len).unwrap_or(0), "two-stacks.inside") {
        Ok(fd) => {
            w.i32(0).file_descriptor(fd.as_fd());
            // The driver duplicates the fd into the caller during BC_REPLY: ours closes after.
            endpoint.reply(&w.data, &w.offsets)
        }
        Err(e) => {
            println!("# inside the transaction: {e}");
            w.i32(-1);
            endpoint.reply(&w.data, &w.offsets)
        }
    }
}

/// ECHO through the client fd: the reply's value, and the pid the own stack saw.
fn echo(client: &mut Endpoint, handle: u32, value: i32) -> Result<(i32, i32), String> {
    let mut w = Writer::new(None);
    w.i32(value);
    let reply = match client.transact(handle, ECHO, TF_ACCEPT_FDS, &w.data, &w.offsets) {
        Ok(Outcome::Reply(reply)) => reply,
        other => return Err(format!("ECHO: {other:?}")),
    };
    let mut r = Reader::new(&reply.data, &reply.offsets);
    let (status, got, pid) = (r.status(), r.i32(), r.i32());
    match (status, got, pid) {
        (Ok(Status::Ok), Ok(got), Ok(pid)) => Ok((got, pid)),
        other => Err(format!("ECHO reply {other:?}")),
    }
}

fn main() -> ExitCode {
    let device = std::env::var("DMAHEAP_BINDER_DEVICE")
        .ok()
        .filter(|d| !d.is_empty())
        .unwrap_or_else(|| "/dev/binderfs/binder".to_owned());
    let Ok(restart) = std::env::var("DMAHEAP_RESTART_CMD") else {
        println!("Bail out! DMAHEAP_RESTART_CMD names no restart command");
        return ExitCode::FAILURE;
    };
    let mut tap = Tap {
        number: 0,
        failed: 0,
    };
    let pid = std::process::id() as i32;

    // The HAL's own stack first, as a HAL's main() sets up libbinder before anything else.
    let mut own = match Endpoint::open(&device) {
        Ok(own) => own,
        Err(e) => {
            println!("Bail out! the own stack cannot open {device}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let registered = add_service_to_rsb_hub(&mut own, OWN_SERVICE, OWN_NODE, OWN_COOKIE, None);
    if !tap.check(
        &format!("the own stack registers {OWN_SERVICE} on its fd"),
        registered.map_err(|e| format!("{e:#}")),
    ) {
        println!("Bail out! nothing to serve");
        return ExitCode::FAILURE;
    }
    let served = Arc::new(AtomicUsize::new(0));
    {
        let served = served.clone();
        std::thread::Builder::new()
            .name("own-binder".into())
            .spawn(move || serve_own_interface(own, served))
            .expect("a thread for the own stack");
    }

    let connected = dmaheap_set_service_wait_ms(10_000) == 0 && dmaheap_connect() == 0;
    tap.check(
        "libdmaheap connects to the allocator through its own rsbinder fd",
        if connected { Ok(()) } else { Err(last_error()) },
    );
    let fds = binder_fds(&device);
    tap.check(
        "the process holds exactly two binder fds: the own stack's and libdmaheap's",
        if fds == 2 {
            Ok(())
        } else {
            Err(format!("{fds} fds on {device}"))
        },
    );

    // Calls to the own interface arrive on a client's fd while another thread allocates.
    let mut client = match Endpoint::open(&device) {
        Ok(client) => client,
        Err(e) => {
            println!("Bail out! no client fd: {e}");
            return ExitCode::FAILURE;
        }
    };
    let handle = match service_handle(&mut client, OWN_SERVICE) {
        Ok(handle) => handle,
        Err(e) => {
            println!("Bail out! {OWN_SERVICE} not found: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let allocator = std::thread::spawn(|| -> Result<(), String> {
        for round in 0..ROUNDS {
            let fd = allocate(65536, "two-stacks.concurrent")?;
            if dma_buf_len(&fd) < 65536 {
                return Err(format!("round {round}: a short buffer"));
            }
        }
        Ok(())
    });
    let mut echoes = Ok(());
    for round in 0..ROUNDS {
        match echo(&mut client, handle, round) {
            Ok((got, sender)) if got == round + 1 && sender == pid => {}
            Ok(other) => {
                echoes = Err(format!("round {round}: {other:?}"));
                break;
            }
            Err(e) => {
                echoes = Err(format!("round {round}: {e}"));
                break;
            }
        }
    }
    tap.check(
        &format!("{ROUNDS} calls into the own interface answer while another thread allocates"),
        echoes,
    );
    tap.check(
        &format!("{ROUNDS} allocations through libdmaheap meanwhile"),
        allocator
            .join()
            .unwrap_or_else(|_| Err("the thread panicked".into())),
    );

    // A pool thread of the own stack allocating mid-transaction, the fd crossing stacks.
    let mut w = Writer::new(None);
    w.i32(1 << 20);
    let inside = match client.transact(handle, ALLOCATE_INSIDE, TF_ACCEPT_FDS, &w.data, &w.offsets)
    {
        Ok(Outcome::Reply(reply)) => {
            let mut r = Reader::new(&reply.data, &reply.offsets);
            match (r.status(), reply.fds.first()) {
                (Ok(Status::Ok), Some(fd)) if dma_buf_len(fd) >= 1 << 20 => Ok(()),
                (status, fd) => Err(format!("reply status {status:?}, fd {fd:?}")),
            }
        }
        other => Err(format!("{other:?}")),
    };
    tap.check(
        "the own stack's thread allocates inside a transaction and replies with the dma-buf on \
         its own fd",
        inside,
    );

    // The allocator dies and comes back: libdmaheap re-resolves; the own stack never notices.
    let before = counters();
    let restarted = std::process::Command::new("sh")
        .args(["-c", &restart])
        .status()
        .map_err(|e| e.to_string())
        .and_then(|s| {
            if s.success() {
                Ok(())
            } else {
                Err(format!("restart command: {s}"))
            }
        });
    tap.check(
        "the allocator service is killed and started again",
        restarted,
    );
    let after_restart = allocate(4096, "two-stacks.after-restart").map(drop);
    let after = counters();
    tap.check(
        "libdmaheap allocates again after the restart, through a proxy looked up anew",
        after_restart.and_then(|()| {
            if after.0 > before.0 {
                Ok(())
            } else {
                Err(format!("lookups {} before, {} after", before.0, after.0))
            }
        }),
    );
    tap.check(
        "the death reached libdmaheap's stack (its death notification or its one retry)",
        if after.1 > before.1 || after.2 > before.2 {
            Ok(())
        } else {
            Err(format!("counters {before:?} before, {after:?} after"))
        },
    );
    tap.check(
        "the own interface still answers, and is still registered, after the allocator's death",
        echo(&mut client, handle, 7).and_then(|(got, _)| {
            if got != 8 {
                return Err(format!("echo 7 gave {got}"));
            }
            service_handle(&mut client, OWN_SERVICE)
                .map(drop)
                .map_err(|e| format!("{e:#}"))
        }),
    );
    let fds = binder_fds(&device);
    tap.check(
        "still one binder fd per stack (plus the client's): libdmaheap reopened nothing",
        if fds == 3 {
            Ok(())
        } else {
            Err(format!("{fds} fds on {device}"))
        },
    );
    let count = served.load(Ordering::Relaxed);
    tap.check(
        "the own stack answered every call made to it",
        // ECHO x (ROUNDS + 1) and ALLOCATE_INSIDE; meta calls (the service manager's) on top.
        if count > ROUNDS as usize + 1 {
            Ok(())
        } else {
            Err(format!("{count} answered"))
        },
    );

    println!("1..{}", tap.number);
    if tap.failed > 0 {
        println!("# {} of {} failed", tap.failed, tap.number);
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
