//! Writing a dump into a file descriptor a client handed over, without letting that client
//! hold the binder thread: the fd may be a pipe nobody reads.
//!
//! rsbinder hands `dump` a `&mut dyn Write` over the received fd, so the fd itself cannot be
//! switched to O_NONBLOCK. Instead a watchdog thread interrupts the writing thread with a signal
//! whose handler is installed without `SA_RESTART`: a `write(2)` blocked on a full pipe then
//! returns `EINTR`, and past the deadline the dump is abandoned.

use std::io::{self, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

/// How long a dump may take to write before it is abandoned.
pub const DUMP_DEADLINE: Duration = Duration::from_millis(500);

/// The signal that interrupts a blocked write. SIGURG's default action is to ignore it, so a
/// stray one (after the handler is gone, or sent by someone else) harms nothing.
const INTERRUPT: Signal = Signal::SIGURG;

/// How often the watchdog repeats the signal past the deadline: one that lands just before the
/// writer enters `write(2)` would otherwise be lost.
const REPEAT: Duration = Duration::from_millis(10);

/// A pthread id that may be sent to the watchdog (it is only an id).
#[derive(Clone, Copy)]
struct Thread(libc::pthread_t);
// SAFETY: a pthread_t is an opaque id; the watchdog only passes it to pthread_kill while the
// thread it names is alive.
unsafe impl Send for Thread {}

extern "C" fn interrupt_only(_: std::ffi::c_int) {}

fn install_handler() -> io::Result<()> {
    static INSTALL: Once = Once::new();
    let mut result = Ok(());
    INSTALL.call_once(|| {
        let action = SigAction::new(
            SigHandler::Handler(interrupt_only),
            SaFlags::empty(), // no SA_RESTART: blocked syscalls return EINTR
            SigSet::empty(),
        );
        // SAFETY: the handler does nothing, so it is async-signal-safe, and the process
        // installs no other handler for this signal.
        if let Err(errno) = unsafe { sigaction(INTERRUPT, &action) } {
            result = Err(io::Error::from(errno));
        }
    });
    result
}

/// Writes all of `data` to `writer`, or gives up once `timeout` has passed with a `TimedOut`
/// error. Never blocks the calling thread much longer than `timeout`.
pub fn write_with_deadline(
    writer: &mut dyn Write,
    data: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    install_handler()?;
    // SAFETY: pthread_self has no preconditions.
    let target = Thread(unsafe { libc::pthread_self() });
    let (stop, stopped) = mpsc::channel::<()>();
    let watchdog = std::thread::Builder::new()
        .name("dump-watchdog".into())
        .spawn(move || {
            let target = target; // the whole id, not its field (edition-2021 closures)
            let mut wait = timeout;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                // SAFETY: the writer is still in this function (it joins this thread before
                // returning), so the thread id is valid.
                unsafe { libc::pthread_kill(target.0, INTERRUPT as std::ffi::c_int) };
                wait = REPEAT;
            }
        })?;
    let deadline = Instant::now() + timeout;
    let mut written = 0;
    let result = loop {
        if written == data.len() {
            break Ok(());
        }
        match writer.write(&data[written..]) {
            Ok(0) => break Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                if Instant::now() >= deadline {
                    break Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "{written} of {} bytes written before the deadline",
                            data.len()
                        ),
                    ));
                }
            }
            Err(e) => break Err(e),
        }
    };
    drop(stop);
    let _ = watchdog.join();
    result
}
