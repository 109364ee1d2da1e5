//! `vendor.dmaheap-service`: loads the policy, opens the heaps, registers
//! `vendor.dmaheap.IHeapAllocator/default` and serves binder calls until killed.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use dmaheap_service::backend::DmaHeapBackend;
use dmaheap_service::policy::{Policy, DEFAULT_POLICY_PATH};
use dmaheap_service::registration::{self, RegistrationError};
use dmaheap_service::service::{hal_binder, HeapAllocatorService};
use dmaheap_service::Allocator;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "dma-buf heap allocator HAL service (vendor.dmaheap.IHeapAllocator)"
)]
struct Args {
    /// The allocation policy (TOML).
    #[arg(long, default_value = DEFAULT_POLICY_PATH)]
    policy: PathBuf,
    /// Where the kernel's heap devices are.
    #[arg(long, default_value = dmabuf::DMA_HEAP_DIR)]
    heap_dir: PathBuf,
    /// The binder device; rsbinder's default (binderfs, then /dev/binder) when not given.
    #[arg(long)]
    binder: Option<String>,
    /// Binder threads. gralloc, camera and codec clients allocate concurrently during a camera
    /// session start, so the default leaves room for all of them. Must be above every
    /// calls-in-flight cap of the policy, so that one caller never holds every thread.
    #[arg(long, default_value_t = 8)]
    threads: u32,
    /// Validate the policy, print it with the heaps present here, and exit.
    #[arg(long)]
    check: bool,
    /// The Android SDK level whose service-manager numbering to speak, instead of
    /// `ro.build.version.sdk`: for the Linux test bed, which has no system properties.
    #[arg(long)]
    android_sdk: Option<u32>,
}

fn init_logging() {
    #[cfg(target_os = "android")]
    android_logger::init_once(
        android_logger::Config::default()
            .with_tag("vendor.dmaheap")
            .with_max_level(log::LevelFilter::Info),
    );
    #[cfg(not(target_os = "android"))]
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
}

fn main() -> Result<()> {
    let args = Args::parse();
    init_logging();

    // An invalid policy is never served, since guessing a heap for PROTECTED or scanout
    // buffers would be worse than a clear refusal; but not serving at all would leave gralloc
    // waiting for this HAL and the display dark, so the service serves its built-in fallback
    // (system heaps only) instead. `--check` refuses the file and exits.
    let policy = if args.check {
        let policy = Policy::load(&args.policy).context("refusing this policy")?;
        policy
            .check_binder_threads(args.threads)
            .context("refusing this policy")?;
        policy
    } else {
        Policy::load_or_fallback(&args.policy, args.threads)
            .context("not even the built-in fallback policy fits --threads")?
    };
    let heap_names: Vec<String> = policy.heaps.iter().map(|h| h.name.clone()).collect();
    let backend = DmaHeapBackend::new(&args.heap_dir, &heap_names);
    let allocator = Arc::new(Allocator::new(policy, backend).with_binder_threads(args.threads));
    log::info!(
        "policy {}: {} heaps, {} rules, {} [[ion]] entries",
        allocator.policy().origin,
        allocator.policy().heaps.len(),
        allocator.policy().rules.len(),
        allocator.policy().ion.len()
    );
    if args.check {
        print!("{}", allocator.dump());
        return Ok(());
    }

    let driver = args.binder.unwrap_or_else(|| {
        if std::path::Path::new(rsbinder::DEFAULT_BINDER_PATH).exists() {
            rsbinder::DEFAULT_BINDER_PATH.to_owned()
        } else {
            "/dev/binder".to_owned()
        }
    });
    rsbinder::ProcessState::init(&driver, args.threads)
        .map_err(|e| anyhow!("cannot open binder device {driver}: {e}"))?;
    rsbinder::ProcessState::start_thread_pool();

    let service = hal_binder(HeapAllocatorService::new(allocator));
    let sdk = registration::device_sdk(args.android_sdk);
    match registration::register(dmaheap_aidl::SERVICE_NAME, &service, sdk) {
        Ok(numbering) => log::info!(
            "registered {} (SDK {sdk}, {} service-manager numbering)",
            dmaheap_aidl::SERVICE_NAME,
            numbering.describe()
        ),
        Err(e @ RegistrationError::UnknownSdk(_)) => {
            // Said once; exiting would only have init restart us into the same answer.
            log::error!("not registering {}: {e}", dmaheap_aidl::SERVICE_NAME);
            loop {
                std::thread::park();
            }
        }
        Err(e) => {
            return Err(anyhow!(
                "cannot register {}: {e}",
                dmaheap_aidl::SERVICE_NAME
            ))
        }
    }

    rsbinder::ProcessState::join_thread_pool()
        .map_err(|e| anyhow!("binder thread pool ended: {e:?}"))?;
    Ok(())
}
