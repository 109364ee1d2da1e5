//! The test bed's binder smoke test. `binder-smoke serve` registers a service that allocates
//! dma-bufs and returns them inside a parcelable; `binder-smoke client` checks, in TAP, that a
//! buffer crosses binder intact: the fd arrives, is a dma-buf, is zeroed, and is the same memory
//! the service sees. This is the path the allocator HAL takes.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Mutex;

use anyhow::{anyhow, bail, Context, Result};
use dmabuf::{CpuAccess, DmaBuf, DmaHeap};
use rsbinder::{hub, BinderResult, Interface, ParcelFileDescriptor, ProcessState, Status};

rsbinder::include_aidl!("smoke");

use testbed::smoke::IBufferSmoke::{BnBufferSmoke, IBufferSmoke};
use testbed::smoke::SharedBuffer::SharedBuffer;

const SERVICE_NAME: &str = "testbed.smoke.IBufferSmoke/default";

#[derive(Default)]
struct SmokeService {
    last: Mutex<Option<DmaBuf>>,
}

impl Interface for SmokeService {}

fn service_error(error: impl std::fmt::Display) -> Status {
    Status::new_service_specific_error(1, Some(error.to_string()))
}

impl IBufferSmoke for SmokeService {
    fn lastBuffer(&self) -> BinderResult<SharedBuffer> {
        let last = self.last.lock().unwrap();
        let buffer = last
            .as_ref()
            .ok_or_else(|| service_error("nothing allocated yet"))?;
        let fd = buffer.as_fd_dup().map_err(service_error)?;
        Ok(SharedBuffer {
            fd: Some(ParcelFileDescriptor::from(fd)),
            size: buffer.len() as i64,
            heap: String::new(),
        })
    }

    fn allocate(&self, heap: &str, size: i64) -> BinderResult<SharedBuffer> {
        let size = u64::try_from(size).map_err(|_| service_error("negative size"))?;
        let buffer = DmaHeap::open(heap)
            .and_then(|h| h.allocate(size))
            .map_err(service_error)?;
        buffer.set_name("binder-smoke").map_err(service_error)?;
        let for_client: OwnedFd = buffer.as_fd_dup().map_err(service_error)?;
        *self.last.lock().unwrap() = Some(buffer);
        Ok(SharedBuffer {
            fd: Some(ParcelFileDescriptor::from(for_client)),
            size: size as i64,
            heap: heap.to_owned(),
        })
    }

    fn sumOfLastBuffer(&self) -> BinderResult<i64> {
        let last = self.last.lock().unwrap();
        let buffer = last
            .as_ref()
            .ok_or_else(|| service_error("nothing allocated yet"))?;
        let map = buffer.map().map_err(service_error)?;
        buffer
            .begin_cpu_access(CpuAccess::Read)
            .map_err(service_error)?;
        let sum: i64 = (0..map.len()).map(|i| i64::from(map.read(i))).sum();
        buffer
            .end_cpu_access(CpuAccess::Read)
            .map_err(service_error)?;
        Ok(sum)
    }
}

trait DupFd {
    fn as_fd_dup(&self) -> std::io::Result<OwnedFd>;
}

impl DupFd for DmaBuf {
    fn as_fd_dup(&self) -> std::io::Result<OwnedFd> {
        use std::os::fd::AsFd;
        self.as_fd().try_clone_to_owned()
    }
}

fn serve() -> Result<()> {
    ProcessState::init_default().map_err(|e| anyhow!("binder: {e}"))?;
    ProcessState::start_thread_pool();
    let service = BnBufferSmoke::new_binder(SmokeService::default());
    register_when_service_manager_is_up(&service)?;
    eprintln!("binder-smoke: {SERVICE_NAME} registered");
    ProcessState::join_thread_pool().map_err(|e| anyhow!("thread pool: {e:?}"))?;
    Ok(())
}

/// The service manager may still be starting (it becomes the binder context manager a moment
/// after its process appears); Android's libbinder waits for it the same way.
fn register_when_service_manager_is_up(service: &rsbinder::Strong<dyn IBufferSmoke>) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match hub::add_service(SERVICE_NAME, service) {
            Ok(()) => return Ok(()),
            Err(e) if std::time::Instant::now() < deadline => {
                eprintln!("binder-smoke: service manager not ready ({e:?}), retrying");
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(e) => bail!("registering {SERVICE_NAME}: {e:?}"),
        }
    }
}

/// Prints one TAP line per check and returns how many failed.
struct Tap {
    failed: usize,
}

impl Tap {
    fn check<T>(&mut self, name: &str, result: Result<T>) -> Option<T> {
        match result {
            Ok(value) => {
                println!("ok - {name}");
                Some(value)
            }
            Err(error) => {
                println!("not ok - {name}");
                println!("# {error:#}");
                self.failed += 1;
                None
            }
        }
    }
}

fn client(heap: &str, size: u64) -> Result<()> {
    let mut tap = Tap { failed: 0 };
    let run = |tap: &mut Tap| -> Option<()> {
        tap.check(
            "binder process state on /dev/binderfs",
            ProcessState::init_default().map_err(|e| anyhow!("{e}")),
        )?;
        let services = hub::list_services(hub::DUMP_FLAG_PRIORITY_ALL);
        tap.check(
            "service manager lists the smoke service",
            if services.iter().any(|s| s == SERVICE_NAME) {
                Ok(())
            } else {
                Err(anyhow!("listed: {services:?}"))
            },
        );
        let proxy: rsbinder::Strong<dyn IBufferSmoke> = tap.check(
            "smoke service found",
            hub::wait_for_interface(SERVICE_NAME).map_err(|e| anyhow!("{e:?}")),
        )?;
        let shared = tap.check(
            "parcelable with a file descriptor received",
            proxy
                .allocate(heap, size as i64)
                .map_err(|e| anyhow!("{e:?}")),
        )?;
        let fd: OwnedFd = tap
            .check(
                "parcelable carries the fd",
                shared.fd.ok_or_else(|| anyhow!("fd is null")),
            )?
            .into();
        tap.check("received fd is a dma-buf", is_dmabuf(&fd));
        let buffer = tap.check("dma-buf size matches", received_buffer(fd, size))?;
        let mut map = tap.check("dma-buf maps", buffer.map().context("mmap"))?;
        tap.check(
            "dma-buf arrives zeroed",
            match map.find_byte_not_equal_to(0) {
                None => Ok(()),
                Some(offset) => Err(anyhow!("byte {offset} is {:#x}", map.read(offset))),
            },
        );
        let expected = fill_with_pattern(&buffer, &mut map);
        tap.check(
            "service sees the client's writes through its own fd",
            match proxy.sumOfLastBuffer() {
                Ok(sum) if sum == expected => Ok(()),
                Ok(sum) => Err(anyhow!("service summed {sum}, client wrote {expected}")),
                Err(e) => Err(anyhow!("{e:?}")),
            },
        );
        tap.check(
            "bad input comes back as a service-specific error",
            match proxy.allocate("no-such-heap", 4096) {
                Err(status) if status.service_specific_error() == 1 => Ok(()),
                other => Err(anyhow!("expected a service-specific error, got {other:?}")),
            },
        );
        Some(())
    };
    let finished = run(&mut tap).is_some();
    if !finished || tap.failed > 0 {
        bail!("{} check(s) failed", tap.failed.max(1));
    }
    Ok(())
}

fn is_dmabuf(fd: &OwnedFd) -> Result<()> {
    let target = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    let target = target.to_string_lossy();
    if target.starts_with("/dmabuf:") || target.starts_with("anon_inode:dmabuf") {
        Ok(())
    } else {
        bail!("fd points at {target}")
    }
}

fn received_buffer(fd: OwnedFd, size: u64) -> Result<DmaBuf> {
    let buffer = DmaBuf::from_fd(fd)?;
    if buffer.len() != size.next_multiple_of(4096) {
        bail!("received {} bytes, asked for {size}", buffer.len());
    }
    Ok(buffer)
}

fn fill_with_pattern(buffer: &DmaBuf, map: &mut dmabuf::Mapping) -> i64 {
    let _ = buffer.begin_cpu_access(CpuAccess::Write);
    let mut sum = 0i64;
    for offset in 0..map.len() {
        let value = (offset % 251) as u8;
        map.write(offset, value);
        sum += i64::from(value);
    }
    let _ = buffer.end_cpu_access(CpuAccess::Write);
    sum
}

/// The p50 of a bare binder round trip that passes one fd (`lastBuffer`: no allocation, no
/// policy), in microseconds, printed alone on the last line for the bench to read.
fn bench_fd(heap: &str, runs: usize) -> Result<()> {
    ProcessState::init_default().map_err(|e| anyhow!("binder: {e}"))?;
    let proxy: rsbinder::Strong<dyn IBufferSmoke> =
        hub::wait_for_interface(SERVICE_NAME).map_err(|e| anyhow!("{SERVICE_NAME}: {e:?}"))?;
    proxy
        .allocate(heap, 4096)
        .map_err(|e| anyhow!("allocate: {e}"))?;
    for _ in 0..runs.min(20) {
        drop(proxy.lastBuffer().map_err(|e| anyhow!("{e}"))?);
    }
    let mut times: Vec<std::time::Duration> = (0..runs.max(1))
        .map(|_| {
            let t = std::time::Instant::now();
            let got = proxy.lastBuffer();
            let elapsed = t.elapsed();
            got.map(|b| {
                drop(b);
                elapsed
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow!("lastBuffer: {e}"))?;
    times.sort();
    let p = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1e6;
    println!(
        "bare binder round trip passing one fd (IBufferSmoke.lastBuffer): p50 {:.1}us, p99 {:.1}us, {} runs",
        p(0.5),
        p(0.99),
        times.len()
    );
    println!("{:.1}", p(0.5));
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve"] => serve(),
        ["client"] => client("system", 1 << 20),
        ["client", heap, size] => client(heap, size.parse().context("size")?),
        ["bench-fd", heap, runs] => bench_fd(heap, runs.parse().context("runs")?),
        _ => bail!(
            "usage: binder-smoke serve | binder-smoke client [HEAP SIZE] | binder-smoke bench-fd HEAP RUNS"
        ),
    }
}
