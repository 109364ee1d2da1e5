//! `dmaheap-probe`: one HAL client request, made from whatever domain and uid the test plan
//! started it in, checked against the outcome the plan expects. Exits 0 when the outcome is
//! the expected one, 1 otherwise; says why either way.
//!
//! Outcomes:
//! - `served`: the HAL answered with buffers of at least the size asked for, from the heap
//!   asked for (when one was named), which map and read back zeroed;
//! - `security`: the HAL refused with binder's EX_SECURITY, naming the caller's domain (and the
//!   heap, when one was named), and no dma-buf reached this process;
//! - `binder-denied`: the kernel refused the binder transaction (SELinux `binder call`), so the
//!   HAL never saw the request, and no dma-buf reached this process.
//!
//! `open-heap` opens a heap's device node directly, bypassing the HAL, and expects `denied`
//! (EACCES from SELinux) or `opened`.

use std::fs::OpenOptions;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use dmaheap_aidl::{HeapSelector, IHeapAllocator, IonRequest};
use dmaheap_client::{CpuAccess, DmaBuf, HeapAllocator};
use rsbinder::{ExceptionCode, Status};

#[derive(Parser)]
#[command(
    about = "One HAL request from this process's domain and uid, checked against an expectation"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum Expect {
    Served,
    Security,
    BinderDenied,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum OpenExpect {
    Denied,
    Opened,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum DelegateExpect {
    /// A heap node, from which this process allocates a zeroed buffer itself.
    Delegated,
    /// No heap: the per-call path.
    NotDelegated,
    /// EX_SECURITY naming the caller's domain, as allocate() would answer.
    Security,
}

#[derive(Subcommand)]
enum Command {
    /// Allocate through the HAL with one of its selectors.
    Alloc {
        #[arg(long, value_enum)]
        expect: Expect,
        #[arg(long, default_value_t = 4096)]
        size: i64,
        /// allocateFromHeap(name).
        #[arg(long, group = "selector")]
        heap: Option<String>,
        /// allocateIon with this heap id mask.
        #[arg(long, group = "selector")]
        ion_mask: Option<u32>,
        /// allocateByUsage with these usage bits.
        #[arg(long, group = "selector")]
        usage: Option<u64>,
        /// allocateBatch of `count` buffers from this named heap.
        #[arg(long, group = "selector")]
        batch_heap: Option<String>,
        #[arg(long, default_value_t = 2)]
        count: i32,
    },
    /// Ask the HAL to delegate the heap for a usage (version 2), then allocate from it here.
    Delegate {
        #[arg(long)]
        usage: u64,
        #[arg(long, default_value_t = 4096)]
        size: i64,
        #[arg(long, value_enum)]
        expect: DelegateExpect,
    },
    /// Open /dev/dma_heap/<name> directly, without the HAL.
    OpenHeap {
        name: String,
        #[arg(long, value_enum)]
        expect: OpenExpect,
    },
}

/// This process's SELinux type (`u:r:TYPE:s0`), or `<none>`.
fn own_domain() -> String {
    std::fs::read("/proc/self/attr/current")
        .ok()
        .and_then(|c| {
            String::from_utf8_lossy(&c)
                .trim_end_matches('\0')
                .split(':')
                .nth(2)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "<none>".to_owned())
}

/// dma-buf file descriptors this process holds (their /proc/self/fd links read `/dmabuf:...`).
fn own_dmabuf_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.flatten()
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|l| l.to_string_lossy().starts_with("/dmabuf:"))
                })
                .count()
        })
        .unwrap_or(0)
}

/// Each buffer with the heap the HAL says served it.
fn check_served(buffers: &[(DmaBuf, String)], size: i64, heap: Option<&str>) -> Result<String> {
    let Some((_, first_heap)) = buffers.first() else {
        bail!("served, but with no buffer");
    };
    for (buf, served_from) in buffers {
        if (buf.len() as i64) < size {
            bail!("a buffer of {} bytes for {size} asked", buf.len());
        }
        if let Some(heap) = heap {
            if served_from != heap {
                bail!("served from {served_from} instead of {heap}");
            }
        }
        let map = buf.map()?;
        buf.begin_cpu_access(CpuAccess::Read)?;
        let nonzero = map.find_byte_not_equal_to(0);
        buf.end_cpu_access(CpuAccess::Read)?;
        if let Some(at) = nonzero {
            bail!("buffer from {served_from} not zeroed at byte {at}");
        }
    }
    Ok(format!(
        "served {} buffer(s) from {first_heap}",
        buffers.len()
    ))
}

fn check_refused(
    status: &Status,
    expect: Expect,
    domain: &str,
    heap: Option<&str>,
) -> Result<String> {
    let message = status.message().unwrap_or_default().to_owned();
    match (expect, status.exception_code()) {
        (Expect::Security, ExceptionCode::Security) => {
            if !message.contains(domain) {
                bail!("EX_SECURITY without the caller's domain {domain}: {message:?}");
            }
            if let Some(heap) = heap {
                if !message.contains(heap) {
                    bail!("EX_SECURITY without the heap {heap}: {message:?}");
                }
            }
            Ok(format!("refused with EX_SECURITY: {message}"))
        }
        (Expect::BinderDenied, ExceptionCode::TransactionFailed) => Ok(format!(
            "the kernel refused the transaction: {:?}",
            status.transaction_error()
        )),
        _ => bail!("expected {expect:?}, got {status}"),
    }
}

fn alloc(
    expect: Expect,
    size: i64,
    heap: Option<String>,
    ion_mask: Option<u32>,
    usage: Option<u64>,
    batch_heap: Option<(String, i32)>,
) -> Result<String> {
    let domain = own_domain();
    let before = own_dmabuf_fds();
    let service = match connect(expect == Expect::BinderDenied)? {
        Connected::Service(service) => service,
        Connected::Refused(verdict) => return Ok(verdict),
    };
    let raw = service.raw();
    let named = heap
        .as_deref()
        .or(batch_heap.as_ref().map(|(h, _)| h.as_str()));
    let result: Result<Vec<dmaheap_aidl::AllocationResult>, Status> = if let Some(heap) = &heap {
        raw.allocateFromHeap(heap, size, "selinux-probe")
            .map(|r| vec![r])
    } else if let Some(mask) = ion_mask {
        let request = IonRequest {
            heapIdMask: mask as i32,
            flags: 0,
            alignment: 0,
        };
        raw.allocateIon(&request, size, "selinux-probe")
            .map(|r| vec![r])
    } else if let Some(usage) = usage {
        raw.allocateByUsage(usage as i64, size, "selinux-probe")
            .map(|r| vec![r])
    } else if let Some((heap, count)) = &batch_heap {
        raw.allocateBatch(
            &HeapSelector::HeapName(heap.clone()),
            size,
            *count,
            "selinux-probe",
        )
    } else {
        bail!("no selector: give --heap, --ion-mask, --usage or --batch-heap");
    };
    let verdict = match result {
        Ok(results) => {
            if expect != Expect::Served {
                bail!(
                    "expected {expect:?}, but the HAL served {} buffer(s)",
                    results.len()
                );
            }
            let buffers: Vec<(DmaBuf, String)> = results
                .into_iter()
                .map(|r| {
                    let fd = r.fd.context("a result without a file descriptor")?;
                    Ok((DmaBuf::from_fd(fd.into())?, r.heapName))
                })
                .collect::<Result<_>>()?;
            check_served(&buffers, size, named)?
        }
        Err(status) => check_refused(&status, expect, &domain, named)?,
    };
    if expect != Expect::Served && own_dmabuf_fds() != before {
        bail!("refused, yet a dma-buf arrived in this process");
    }
    Ok(verdict)
}

enum Connected {
    Service(HeapAllocator),
    /// The kernel refused the binder call, as expected.
    Refused(String),
}

/// The HAL, or (when `denial_expected`) the kernel's refusal to let this domain call it.
fn connect(denial_expected: bool) -> Result<Connected> {
    rsbinder::ProcessState::init_default()
        .map_err(|e| anyhow::anyhow!("cannot open the binder device: {e}"))?;
    // The service manager hands out the handle to whoever asks (it checks no SELinux `find`);
    // turning it into the interface already transacts with the HAL.
    let binder = rsbinder::hub::default()
        .map_err(|e| anyhow::anyhow!("no service manager: {e:?}"))?
        .check_service(dmaheap_aidl::SERVICE_NAME);
    let binder = match binder {
        Some(binder) => binder,
        // The lookup itself transacts with the HAL (rsbinder checks the handle is alive); the
        // kernel's `binder call` denial ends it there. The plan requires that denial in the
        // kernel log, so this is not taken on trust.
        None if denial_expected => {
            return Ok(Connected::Refused(
                "the kernel refused the lookup's transaction with the HAL".to_owned(),
            ));
        }
        None => bail!("{} is not registered", dmaheap_aidl::SERVICE_NAME),
    };
    let service = match rsbinder::FromIBinder::try_from(binder) {
        Ok(service) => HeapAllocator::from_interface(service),
        // The handle arrived but the first transaction with the HAL failed: the kernel's
        // SELinux `binder call` denial, which the plan expects in the kernel log.
        Err(code) if denial_expected => {
            return Ok(Connected::Refused(format!(
                "the kernel refused the first transaction: {code:?}"
            )));
        }
        Err(code) => bail!("cannot reach {}: {code:?}", dmaheap_aidl::SERVICE_NAME),
    };
    Ok(Connected::Service(service))
}

/// `delegate()` for `usage`, and a buffer from the delegated node made in this process.
fn delegate(usage: u64, size: i64, expect: DelegateExpect) -> Result<String> {
    let domain = own_domain();
    let Connected::Service(service) = connect(false)? else {
        unreachable!("no denial expected");
    };
    let descriptor = dmaheap_aidl::BufferDescriptor {
        usage: usage as i64,
        size,
        ..Default::default()
    };
    match (service.raw().delegate(&descriptor), expect) {
        (Ok(Some(heap)), DelegateExpect::Delegated) => {
            let node = heap.heap.context("a delegated heap without its node")?;
            let node = dmaheap_client::DmaHeap::from_fd(&heap.heapName, node.into())?;
            let buf = node.allocate(size as u64)?;
            check_served(&[(buf, heap.heapName.clone())], size, None)?;
            Ok(format!(
                "{} delegated; a buffer allocated from it in this process is zeroed",
                heap.heapName
            ))
        }
        (Ok(None), DelegateExpect::NotDelegated) => Ok("not delegated".to_owned()),
        (Err(status), DelegateExpect::Security) => {
            check_refused(&status, Expect::Security, &domain, None)
        }
        (Ok(Some(heap)), _) => bail!("expected {expect:?}, got {} delegated", heap.heapName),
        (Ok(None), _) => bail!("expected {expect:?}, got no delegation"),
        (Err(status), _) => bail!("expected {expect:?}, got {status}"),
    }
}

fn open_heap(name: &str, expect: OpenExpect) -> Result<String> {
    let path = format!("/dev/dma_heap/{name}");
    match (OpenOptions::new().read(true).open(&path), expect) {
        (Ok(_), OpenExpect::Opened) => Ok(format!("opened {path}")),
        (Err(e), OpenExpect::Denied) if e.raw_os_error() == Some(libc::EACCES) => {
            Ok(format!("opening {path} denied: {e}"))
        }
        (Ok(_), OpenExpect::Denied) => bail!("opened {path}, which must be denied"),
        (Err(e), _) => bail!("opening {path}: {e}"),
    }
}

fn main() {
    let args = Args::parse();
    // SAFETY: getuid has no preconditions.
    let uid = unsafe { libc::getuid() };
    let who = format!("dmaheap-probe ({}, uid {uid})", own_domain());
    let outcome = match args.command {
        Command::Alloc {
            expect,
            size,
            heap,
            ion_mask,
            usage,
            batch_heap,
            count,
        } => alloc(
            expect,
            size,
            heap,
            ion_mask,
            usage,
            batch_heap.map(|h| (h, count)),
        ),
        Command::Delegate {
            usage,
            size,
            expect,
        } => delegate(usage, size, expect),
        Command::OpenHeap { name, expect } => open_heap(&name, expect),
    };
    match outcome {
        Ok(verdict) => println!("{who}: as expected: {verdict}"),
        Err(e) => {
            println!("{who}: FAILED: {e:#}");
            std::process::exit(1);
        }
    }
}
