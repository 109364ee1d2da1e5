//! Calls in flight per SELinux domain and uid: `[[limits.caller]]` entries and the built-in
//! queueing of the HAL's platform clients, gralloc never turned away with `ERROR_BUSY` for
//! having more calls than its cap, and no caller able to take the binder thread another needs.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use dmaheap_service::allocator::BUSY_WAIT;
use dmaheap_service::backend::MemfdBackend;
use dmaheap_service::policy::limits::{CallerMatch, OverLimit, QUEUEING_DOMAINS};
use dmaheap_service::policy::{Policy, PolicyError};
use dmaheap_service::{Allocation, Allocator, Caller, ErrorKind, HalError, Selector};

/// gralloc on a device: AID_SYSTEM in the default allocator's domain, one pid per call here
/// (every process of the domain shares its calls in flight).
fn gralloc(pid: i32) -> Caller {
    Caller::with_context(1000, pid, Some("u:r:hal_graphics_allocator_default:s0"))
}

fn app(uid: u32) -> Caller {
    Caller::with_context(uid, 4242, Some("u:r:untrusted_app:s0:c123,c256"))
}

#[test]
fn caller_entries_parse_first_match_wins_and_override_the_built_in_ones() {
    let p = Policy::parse(
        r#"
[limits]
max_calls_per_uid = 2

[[limits.caller]]
domain = "hal_camera_default"
max_calls_in_flight = 3
over_limit = "busy"

[[limits.caller]]
uid = "cameraserver"
over_limit = "queue"

[[heap]]
name = "system"
[[rule]]
name = "d"
heaps = ["system"]
"#,
        "limits.toml",
    )
    .unwrap();
    let entries: Vec<(String, u32, OverLimit, usize)> = p
        .limits
        .callers
        .iter()
        .map(|e| {
            (
                e.who.describe(),
                e.max_calls_in_flight,
                e.over_limit,
                e.line,
            )
        })
        .collect();
    assert_eq!(
        entries,
        [
            (
                "domain hal_camera_default".to_owned(),
                3,
                OverLimit::Busy,
                5
            ),
            ("uid cameraserver".to_owned(), 2, OverLimit::Queue, 10),
            // The built-in entries the policy does not override, with the default cap.
            (
                "domain hal_graphics_allocator_default".to_owned(),
                2,
                OverLimit::Queue,
                0
            ),
            (
                "domain hal_graphics_allocator".to_owned(),
                2,
                OverLimit::Queue,
                0
            ),
            ("domain mediacodec".to_owned(), 2, OverLimit::Queue, 0),
        ]
    );
    let camera = Caller::with_context(1047, 1, Some("u:r:hal_camera_default:s0"));
    let limit = p.limits.for_caller(&camera);
    assert_eq!(
        (limit.max_calls_in_flight, limit.over_limit),
        (3, OverLimit::Busy)
    );
    // cameraserver outside that domain: its uid entry.
    let limit = p.limits.for_caller(&Caller::new(1047, 1));
    assert_eq!(
        (limit.max_calls_in_flight, limit.over_limit),
        (2, OverLimit::Queue)
    );
    // Anyone else: per uid, busy.
    let limit = p.limits.for_caller(&app(10123));
    assert_eq!(
        (limit.max_calls_in_flight, limit.over_limit),
        (2, OverLimit::Busy)
    );
    assert!(limit.entry.is_none());

    // Without any [limits], the platform clients queue too.
    let default = Policy::builtin_default();
    let limit = default.limits.for_caller(&gralloc(1));
    assert_eq!(limit.over_limit, OverLimit::Queue);
    assert_eq!(limit.max_calls_in_flight, default.limits.max_calls_per_uid);
}

fn refused(limits: &str) -> String {
    let text = format!(
        "{limits}\n[[heap]]\nname = \"system\"\n[[rule]]\nname = \"d\"\nheaps = [\"system\"]\n"
    );
    match Policy::parse(&text, "t.toml") {
        Err(e @ PolicyError::Invalid { .. }) | Err(e @ PolicyError::Syntax { .. }) => e.to_string(),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted:\n{text}"),
    }
}

#[test]
fn caller_entries_are_validated() {
    for (entry, needle) in [
        ("domain = \"x\"\nuid = 1000", "exactly one of"),
        ("max_calls_in_flight = 2", "exactly one of"),
        ("domain = \"u:r:x:s0\"", "not an SELinux type name"),
        ("uid = \"no-such-aid\"", "not an Android ID name"),
        ("uid = -1", "not a uid"),
        ("domain = \"x\"\nmax_calls_in_flight = 0", "at least 1"),
        (
            "domain = \"x\"\nover_limit = \"wait\"",
            "unknown variant `wait`",
        ),
        ("domain = \"x\"\nmax_calls = 2", "unknown field `max_calls`"),
    ] {
        let msg = refused(&format!("[limits]\n[[limits.caller]]\n{entry}\n"));
        assert!(msg.contains(needle), "{entry}: {msg}");
    }
    let msg =
        refused("[limits]\n[[limits.caller]]\nuid = \"system\"\n[[limits.caller]]\nuid = 1000\n");
    assert!(
        msg.contains("t.toml:4:")
            && msg.contains("already has a [[limits.caller]] entry on line 2"),
        "{msg}"
    );
}

#[test]
fn every_cap_must_stay_below_the_binder_threads() {
    let p = Policy::parse(
        "[limits]\nmax_calls_per_uid = 2\n[[limits.caller]]\ndomain = \"hal_camera_default\"\n\
         max_calls_in_flight = 8\n[[heap]]\nname = \"system\"\n[[rule]]\nname = \"d\"\n\
         heaps = [\"system\"]\n",
        "t.toml",
    )
    .unwrap();
    p.check_binder_threads(9).unwrap();
    let e = p.check_binder_threads(8).unwrap_err().to_string();
    assert!(
        e.starts_with("t.toml:3: max_calls_in_flight of domain hal_camera_default (8)"),
        "{e}"
    );
    assert!(p
        .check_binder_threads(2)
        .unwrap_err()
        .to_string()
        .contains("max_calls_per_uid (2)"));
}

#[test]
fn every_domain_the_sepolicy_lets_in_queues_by_default() {
    let te = format!(
        "{}/../sepolicy/vendor/hal_dmaheap_clients.te",
        env!("CARGO_MANIFEST_DIR")
    );
    let te = std::fs::read_to_string(te).unwrap();
    let clients: Vec<&str> = te
        .lines()
        .filter_map(|l| l.trim().strip_prefix("hal_client_domain("))
        .filter_map(|rest| rest.split(',').next())
        .map(str::trim)
        .collect();
    assert!(
        clients.contains(&"hal_graphics_allocator_default"),
        "{clients:?}"
    );
    let default = Policy::builtin_default();
    for domain in clients {
        assert!(QUEUEING_DOMAINS.contains(&domain), "{domain}");
        let caller = Caller::with_context(1000, 1, Some(&format!("u:r:{domain}:s0")));
        let limit = default.limits.for_caller(&caller);
        assert_eq!(
            limit.entry.map(|e| e.who.clone()),
            Some(CallerMatch::Domain(domain.to_owned()))
        );
        assert_eq!(limit.over_limit, OverLimit::Queue, "{domain}");
    }
}

#[test]
fn gralloc_with_more_calls_than_its_cap_waits_its_turn_and_never_gets_busy() {
    // The shipped default: 4 calls in flight per caller, the service's 8 binder threads.
    let a = Arc::new(
        Allocator::new(
            Policy::builtin_default(),
            MemfdBackend::with_heaps(["system", "system-uncached"]),
        )
        .with_binder_threads(8),
    );
    let cap = a.policy().limits.max_calls_per_uid;
    a.backend().hold("system");
    let calls: Vec<_> = (0..cap + 2)
        .map(|i| {
            let a = Arc::clone(&a);
            std::thread::spawn(move || {
                a.allocate(
                    &gralloc(100 + i as i32),
                    &Selector::Heap("system".into()),
                    4096,
                    "app",
                )
            })
        })
        .collect();
    a.backend().wait_for_waiters(cap as usize);
    // Longer than a busy caller would wait.
    std::thread::sleep(BUSY_WAIT + Duration::from_millis(500));
    a.backend().release("system");
    for (i, call) in calls.into_iter().enumerate() {
        call.join()
            .unwrap()
            .unwrap_or_else(|e| panic!("gralloc call {i} failed: {e} ({})", e.kind.name()));
    }
    assert_eq!(a.backend().allocations(), u64::from(cap) + 2);
}

type Call = Box<dyn FnOnce() + Send>;

/// The binder thread pool in miniature: `threads` workers taking calls from one queue in arrival
/// order, as the binder driver hands a process's transactions to its threads.
struct BinderThreads {
    queue: Option<mpsc::Sender<Call>>,
    workers: Vec<JoinHandle<()>>,
}

impl BinderThreads {
    fn new(threads: u32) -> Self {
        let (queue, calls) = mpsc::channel::<Call>();
        let calls = Arc::new(Mutex::new(calls));
        let workers = (0..threads)
            .map(|_| {
                let calls = Arc::clone(&calls);
                std::thread::spawn(move || loop {
                    let next = calls.lock().unwrap().recv();
                    match next {
                        Ok(call) => call(),
                        Err(_) => return,
                    }
                })
            })
            .collect();
        Self {
            queue: Some(queue),
            workers,
        }
    }

    /// Queues a call; its result arrives on the returned receiver.
    fn call(
        &self,
        f: impl FnOnce() -> Result<Allocation, HalError> + Send + 'static,
    ) -> mpsc::Receiver<Result<Allocation, HalError>> {
        let (done, result) = mpsc::channel();
        let call: Call = Box::new(move || {
            let _ = done.send(f());
        });
        self.queue.as_ref().unwrap().send(call).unwrap();
        result
    }

    fn stop(mut self) {
        drop(self.queue.take());
        for worker in self.workers.drain(..) {
            worker.join().unwrap();
        }
    }
}

const SATURATING: &str = r#"
[limits]
max_calls_per_uid = 2

[[heap]]
name = "system"

[[heap]]
name = "slow"

[[rule]]
name = "d"
heaps = ["system"]
"#;

/// `flooder` sends more calls than the service has threads to a heap that does not answer;
/// another caller's call, queued behind them all, must still be served meanwhile.
fn another_caller_is_served_while(flooder: Caller) -> Vec<Result<Allocation, HalError>> {
    const THREADS: u32 = 4;
    let a = Arc::new(
        Allocator::new(
            Policy::parse(SATURATING, "saturating.toml").unwrap(),
            MemfdBackend::with_heaps(["system", "slow"]),
        )
        .with_binder_threads(THREADS),
    );
    let pool = BinderThreads::new(THREADS);
    a.backend().hold("slow");
    let flood: Vec<_> = (0..3 * THREADS)
        .map(|_| {
            let (a, flooder) = (Arc::clone(&a), flooder.clone());
            pool.call(move || a.allocate(&flooder, &Selector::Heap("slow".into()), 4096, "flood"))
        })
        .collect();
    a.backend().wait_for_waiters(2);
    let other = {
        let a = Arc::clone(&a);
        pool.call(move || a.allocate(&app(10500), &Selector::Heap("system".into()), 4096, "other"))
    };
    let served = other.recv_timeout(BUSY_WAIT * 10);
    a.backend().release("slow");
    match served {
        Ok(result) => {
            result.unwrap();
        }
        Err(_) => panic!(
            "another caller's call was not served while {} saturated its cap: every binder \
             thread was held by the flood",
            flooder.domain_shown()
        ),
    }
    let results = flood.into_iter().map(|r| r.recv().unwrap()).collect();
    pool.stop();
    results
}

#[test]
fn a_queueing_caller_at_its_cap_in_a_slow_heap_leaves_a_thread_to_others() {
    let results = another_caller_is_served_while(gralloc(1));
    // Two ran, one waited its turn on the third thread; the fourth stayed free, and the calls
    // that reached it were turned away at once rather than taking it.
    let served = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(served, 3, "{results:?}");
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert_eq!(e.kind, ErrorKind::Busy, "{}", e.message);
        assert!(e.message.contains("binder threads"), "{}", e.message);
    }
}

#[test]
fn a_busy_caller_at_its_cap_in_a_slow_heap_leaves_a_thread_to_others() {
    let results = another_caller_is_served_while(app(10124));
    assert!(
        results.iter().filter(|r| r.is_ok()).count() >= 2,
        "{results:?}"
    );
    assert!(results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .all(|e| e.kind == ErrorKind::Busy));
}
