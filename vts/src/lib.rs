//! Shared pieces of the VTS suite and the benchmark: connecting to the service, and watching
//! the service process's file descriptors from outside.

use std::path::Path;
use std::sync::Once;

use dmaheap_client::{ClientError, HeapAllocator};

static BINDER: Once = Once::new();

/// A connection to the registered service, opening this process's binder state on first use.
pub fn connect() -> Result<HeapAllocator, ClientError> {
    BINDER.call_once(|| {
        if let Err(e) = rsbinder::ProcessState::init_default() {
            panic!("cannot open the binder device: {e}");
        }
    });
    HeapAllocator::wait()
}

/// The pid of the HAL service: `/vendor/bin/hw/vendor.dmaheap-service` on a device,
/// `dmaheap-service` in the test VM.
pub fn service_pid() -> Option<u32> {
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let argv0 = cmdline.split(|b| *b == 0).next()?;
            let name = Path::new(std::str::from_utf8(argv0).ok()?)
                .file_name()?
                .to_str()?
                .to_owned();
            name.ends_with("dmaheap-service").then_some(pid)
        })
}

/// How many file descriptors `pid` has open (needs the rights to read /proc/<pid>/fd).
pub fn open_fds(pid: u32) -> std::io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}
