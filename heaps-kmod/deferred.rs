// SPDX-License-Identifier: GPL-2.0

//! Deferred free: released buffers are handed to a low-priority kernel thread that zeroes their
//! pages and refills the pools (or frees what the pools cannot take), off the allocation path.

use crate::bindings as b;
use crate::buffer::Buffer;
use crate::kapi::error;
use crate::kapi::prelude::*;
use crate::kapi::sync::{SpinLock, WaitQueue};
use core::ffi::{c_int, c_void};
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

struct FreeList {
    head: *mut Buffer,
    tail: *mut Buffer,
    /// Set by `stop`: the worker stops taking buffers and waits for `kthread_stop`.
    stop: bool,
    /// The worker waits on the condition variable (as opposed to working or napping).
    idle: bool,
}

// SAFETY: the list owns the buffers linked into it; they may be handed to another thread.
unsafe impl Send for FreeList {}

struct Deferred {
    list: SpinLock<FreeList>,
    /// The idle worker waits here for `queue` and `stop`.
    cv: WaitQueue,
}

static STATE: AtomicPtr<Deferred> = AtomicPtr::new(ptr::null_mut());
static TASK: AtomicPtr<b::task_struct> = AtomicPtr::new(ptr::null_mut());

/// While set, the worker leaves released buffers on its list, so that a test can see what memory
/// reclaim does with buffers waiting for it (a worker on another CPU empties the list within a
/// tick). Set through debugfs only (`dmaheap_heaps/hold_deferred`, root, mode 0600); debugfs
/// is not mounted on user builds. `stop` still ends a held worker.
static HOLD: AtomicBool = AtomicBool::new(false);

/// The flag behind `dmaheap_heaps/hold_deferred`, for `debugfs_create_bool`.
pub(crate) fn hold_flag() -> *mut bool {
    HOLD.as_ptr()
}

fn state() -> &'static Deferred {
    // SAFETY: `STATE` is set by `start` before any heap exists (so before any buffer can be
    // released) and only cleared by `stop` when no heap was registered.
    unsafe { &*STATE.load(Ordering::Acquire) }
}

/// Starts the worker thread.
pub(crate) fn start() -> Result {
    let st = KBox::new(
        Deferred {
            list: SpinLock::new(FreeList {
                head: ptr::null_mut(),
                tail: ptr::null_mut(),
                stop: false,
                idle: false,
            }),
            cv: WaitQueue::new(),
        },
        GFP_KERNEL,
    )?;
    // SAFETY: the state stays in its box until `stop` frees it, and nobody has seen it yet.
    unsafe {
        st.list.init(c"dmaheap_deferred", lock_class_key!());
        st.cv.init(c"dmaheap_deferred_wait", lock_class_key!());
    }
    let raw = KBox::into_raw(st);
    STATE.store(raw, Ordering::Release);
    // SAFETY: `worker` matches the kthread function signature; the name is a plain string
    // without format directives.
    let task = unsafe {
        b::kthread_create_on_node(
            Some(worker),
            ptr::null_mut(),
            b::DMAHEAP_NUMA_NO_NODE,
            c"dmaheap-free".as_ptr().cast(),
        )
    };
    if error::is_err(task) {
        STATE.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: nobody else saw the state.
        drop(unsafe { KBox::from_raw(raw) });
        return Err(error::ptr_err(task));
    }
    // SAFETY: `task` is the thread just created and not yet running.
    unsafe {
        // Lowest normal priority: refilling pools must not compete with real work.
        b::sched_set_normal(task, 19);
        TASK.store(task, Ordering::Release);
        b::wake_up_process(task);
    }
    Ok(())
}

/// Stops the worker (only on a failed load, when no buffer can exist).
pub(crate) fn stop() {
    let st = state();
    {
        let mut l = st.list.lock();
        l.stop = true;
    }
    st.cv.notify_all();
    let delay_ms = crate::params::stop_delay_ms();
    if delay_ms > 0 {
        // SAFETY: plain sleep of the loading thread (process context), no locks held.
        unsafe { b::msleep(delay_ms) };
    }
    let task = TASK.swap(ptr::null_mut(), Ordering::AcqRel);
    if !task.is_null() {
        // SAFETY: `task` is our worker; it exits when it sees `stop`.
        unsafe { b::kthread_stop(task) };
    }
    let raw = STATE.swap(ptr::null_mut(), Ordering::AcqRel);
    // SAFETY: the worker is gone and no buffer exists: nothing references the state.
    drop(unsafe { KBox::from_raw(raw) });
}

/// Hands a released buffer to the worker.
///
/// # Safety
/// `buf` came from `Buffer::create`, and its dma-buf has been released.
pub(crate) unsafe fn queue(buf: *mut Buffer) {
    // SAFETY: by the function's contract we own `buf`.
    let b = unsafe { &mut *buf };
    b.heap
        .stats
        .deferred_bytes
        .fetch_add(b.len as u64, Ordering::Relaxed);
    b.next = ptr::null_mut();
    let st = state();
    let mut l = st.list.lock();
    let was_empty = l.tail.is_null();
    let wake = was_empty && l.idle;
    if was_empty {
        l.head = buf;
    } else {
        // SAFETY: `tail` is a buffer owned by the list.
        unsafe { (*l.tail).next = buf };
    }
    l.tail = buf;
    drop(l);
    // Only an idle worker needs a wake-up: a working or napping one looks at the list again by
    // itself, and a non-empty list has been signalled already. Fewer wake-ups: releasing buffers
    // in a loop does not ping-pong with the worker.
    if wake {
        st.cv.notify_one();
    }
}

/// Waits until `kthread_stop` was called for this thread. A kthread must not return before that:
/// `kthread_stop` would wait on (or touch) a task that may already be gone.
fn wait_for_kthread_stop() {
    // SAFETY: called on the worker thread, which is a kthread.
    while !unsafe { b::kthread_should_stop() } {
        // SAFETY: plain sleep of the current (worker) thread, no locks held; polling avoids
        // the lost wake-up a condition-variable wait could have against `kthread_stop`.
        unsafe { b::schedule_timeout_interruptible(1) };
    }
}

/// Frees released buffers that the worker has not processed yet, without zeroing or pooling
/// (shrinker: memory is short). Returns the number of base pages freed; stops once `nr_pages`
/// were freed.
pub(crate) fn reclaim(nr_pages: usize) -> usize {
    let st = state();
    let mut freed = 0;
    while freed < nr_pages {
        let cur = {
            let mut l = st.list.lock();
            let cur = l.head;
            if cur.is_null() {
                break;
            }
            // SAFETY: the list owns `cur`; unlinking it under the lock makes it ours.
            l.head = unsafe { (*cur).next };
            if l.head.is_null() {
                l.tail = ptr::null_mut();
            }
            cur
        };
        // SAFETY: `cur` is a released buffer nobody references; we took it off the list.
        let (heap, len) = unsafe { ((*cur).heap, (*cur).len) };
        // SAFETY: as above.
        unsafe { Buffer::destroy(cur, false) };
        heap.stats
            .deferred_bytes
            .fetch_sub(len as u64, Ordering::Relaxed);
        freed = freed.saturating_add(len >> b::DMAHEAP_PAGE_SHIFT);
    }
    freed
}

/// The worker thread.
///
/// # Safety
/// Only run as the kernel thread created by `start`.
unsafe extern "C" fn worker(_data: *mut c_void) -> c_int {
    let st = state();
    loop {
        let mut batch = {
            let mut l = st.list.lock();
            loop {
                if l.stop {
                    drop(l);
                    wait_for_kthread_stop();
                    return 0;
                }
                if HOLD.load(Ordering::Relaxed) {
                    // Writing the debugfs file wakes nobody: look again in a while.
                    l.idle = false;
                    drop(l);
                    // SAFETY: plain sleep of the current (worker) thread, no locks held.
                    unsafe { b::schedule_timeout_interruptible((b::DMAHEAP_HZ / 20) as _) };
                    l = st.list.lock();
                    continue;
                }
                if !l.head.is_null() {
                    l.idle = false;
                    break;
                }
                l.idle = true;
                // Kernel threads take no signals: this only returns on a notification.
                st.cv.wait_interruptible(&mut l);
            }
            let head = l.head;
            l.head = ptr::null_mut();
            l.tail = ptr::null_mut();
            head
        };
        while !batch.is_null() {
            let cur = batch;
            // SAFETY: the list owned `cur`; we took the whole list over.
            let (next, heap, len) = unsafe { ((*cur).next, (*cur).heap, (*cur).len) };
            batch = next;
            // SAFETY: `cur` is a released buffer nobody references.
            unsafe { Buffer::destroy(cur, true) };
            heap.stats
                .deferred_bytes
                .fetch_sub(len as u64, Ordering::Relaxed);
        }
        // Nap for a tick before looking again: buffers released meanwhile are taken in one go,
        // without waking us up one by one.
        // SAFETY: plain sleep of the current (worker) thread, no locks held.
        unsafe { b::schedule_timeout_interruptible(1) };
    }
}
