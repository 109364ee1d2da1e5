// SPDX-License-Identifier: GPL-2.0

//! Locks and a wait queue over the kernel's `spinlock_t`, `struct mutex` and
//! `wait_queue_head`, in the shape of the `kernel` crate's `Lock<Backend, T>`.
//!
//! The C objects are self-referential once initialised (list heads pointing at themselves,
//! lockdep maps), so they are created inert by `new` and initialised by `init` where they will
//! stay: inside a leaked or boxed object, before anything else can see it. That replaces the
//! `kernel` crate's pin-init; `init`'s contract is what pinning would otherwise prove.

use crate::bindings as b;
use crate::kapi::ffi::c_char;
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};
use core::ptr;

/// A lockdep class: one static key per place that initialises locks, as the C macros declare.
pub(crate) struct LockClassKey(UnsafeCell<b::lock_class_key>);

// SAFETY: lockdep owns the key's contents and synchronises access to them itself.
unsafe impl Sync for LockClassKey {}

impl LockClassKey {
    /// A key for a `static`; lockdep requires keys in static storage.
    pub(crate) const fn new() -> LockClassKey {
        // SAFETY: an all-zero `lock_class_key` is what C's `static struct lock_class_key k;`
        // holds before lockdep first sees it.
        LockClassKey(UnsafeCell::new(unsafe { core::mem::zeroed() }))
    }

    fn as_ptr(&'static self) -> *mut b::lock_class_key {
        self.0.get()
    }
}

/// A static `LockClassKey` of its own for the place it is written, like C's `spin_lock_init`.
#[macro_export]
macro_rules! lock_class_key {
    () => {{
        static KEY: $crate::kapi::sync::LockClassKey = $crate::kapi::sync::LockClassKey::new();
        &KEY
    }};
}

/// A name for lockdep reports.
pub(crate) type LockName = &'static core::ffi::CStr;

fn name_ptr(name: LockName) -> *const c_char {
    name.as_ptr().cast()
}

/// A kind of kernel lock: its C state and the C calls that initialise, take and release it.
///
/// # Safety
/// `lock` and `unlock` must give mutual exclusion over a state that `init` initialised.
pub(crate) unsafe trait Backend {
    type State;

    /// # Safety
    /// `state` is not in use and stays where it is from now on.
    unsafe fn init(state: *mut Self::State, name: *const c_char, key: *mut b::lock_class_key);
    /// # Safety
    /// `state` was initialised by `init`.
    unsafe fn lock(state: *mut Self::State);
    /// # Safety
    /// `state` is held by the current thread.
    unsafe fn unlock(state: *mut Self::State);
}

/// `spinlock_t`: never sleeps while held.
pub(crate) struct SpinLockBackend;

// SAFETY: `spin_lock` / `spin_unlock` give mutual exclusion.
unsafe impl Backend for SpinLockBackend {
    type State = b::spinlock_t;

    unsafe fn init(state: *mut b::spinlock_t, name: *const c_char, key: *mut b::lock_class_key) {
        // SAFETY: by the caller's contract.
        unsafe { b::dmaheap_spin_lock_init(state, name, key) };
    }

    unsafe fn lock(state: *mut b::spinlock_t) {
        // SAFETY: by the caller's contract.
        unsafe { b::dmaheap_spin_lock(state) };
    }

    unsafe fn unlock(state: *mut b::spinlock_t) {
        // SAFETY: by the caller's contract.
        unsafe { b::dmaheap_spin_unlock(state) };
    }
}

/// `struct mutex`: a sleeping lock, process context only.
pub(crate) struct MutexBackend;

// SAFETY: `mutex_lock` / `mutex_unlock` give mutual exclusion.
unsafe impl Backend for MutexBackend {
    type State = b::mutex;

    unsafe fn init(state: *mut b::mutex, name: *const c_char, key: *mut b::lock_class_key) {
        // SAFETY: by the caller's contract.
        unsafe { b::__mutex_init(state, name, key) };
    }

    unsafe fn lock(state: *mut b::mutex) {
        // SAFETY: by the caller's contract; callers of a mutex are in process context.
        unsafe { b::dmaheap_mutex_lock(state) };
    }

    unsafe fn unlock(state: *mut b::mutex) {
        // SAFETY: by the caller's contract.
        unsafe { b::mutex_unlock(state) };
    }
}

/// Data protected by a kernel lock.
pub(crate) struct Lock<B: Backend, T> {
    state: UnsafeCell<B::State>,
    data: UnsafeCell<T>,
}

/// Data protected by a `spinlock_t`.
pub(crate) type SpinLock<T> = Lock<SpinLockBackend, T>;
/// Data protected by a `struct mutex`.
pub(crate) type Mutex<T> = Lock<MutexBackend, T>;

// SAFETY: the lock hands out the data to one thread at a time.
unsafe impl<B: Backend, T: Send> Send for Lock<B, T> {}
// SAFETY: as above.
unsafe impl<B: Backend, T: Send> Sync for Lock<B, T> {}

impl<B: Backend, T> Lock<B, T> {
    /// A lock that must be `init`ed before its first use.
    pub(crate) const fn new(data: T) -> Self {
        Lock {
            // SAFETY: a placeholder for `init` to overwrite; never locked before that.
            state: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            data: UnsafeCell::new(data),
        }
    }

    /// Initialises the lock where it is.
    ///
    /// # Safety
    /// Called once, before any `lock`, and the lock never moves afterwards.
    pub(crate) unsafe fn init(&self, name: LockName, key: &'static LockClassKey) {
        // SAFETY: by the contract, nobody uses the lock yet and it stays where it is.
        unsafe { B::init(self.state.get(), name_ptr(name), key.as_ptr()) };
    }

    pub(crate) fn lock(&self) -> Guard<'_, B, T> {
        // SAFETY: initialised (`init`'s contract: before any `lock`).
        unsafe { B::lock(self.state.get()) };
        Guard { lock: self }
    }
}

/// The held lock; unlocks when dropped.
pub(crate) struct Guard<'a, B: Backend, T> {
    lock: &'a Lock<B, T>,
}

/// A held spinlock.
pub(crate) type SpinLockGuard<'a, T> = Guard<'a, SpinLockBackend, T>;

impl<B: Backend, T> Deref for Guard<'_, B, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<B: Backend, T> DerefMut for Guard<'_, B, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` is exclusive.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<B: Backend, T> Drop for Guard<'_, B, T> {
    fn drop(&mut self) {
        // SAFETY: the guard holds the lock, taken by this thread.
        unsafe { B::unlock(self.lock.state.get()) };
    }
}

/// A wait queue whose waiters sleep with a spinlock's data: the condition variable of the
/// deferred-free worker.
pub(crate) struct WaitQueue {
    head: UnsafeCell<b::wait_queue_head>,
}

// SAFETY: the wait queue has its own lock inside.
unsafe impl Sync for WaitQueue {}
// SAFETY: as above.
unsafe impl Send for WaitQueue {}

impl WaitQueue {
    /// A queue that must be `init`ed before its first use.
    pub(crate) const fn new() -> WaitQueue {
        WaitQueue {
            // SAFETY: a placeholder for `init` to overwrite; never used before that.
            head: UnsafeCell::new(unsafe { core::mem::zeroed() }),
        }
    }

    /// Initialises the queue where it is.
    ///
    /// # Safety
    /// Called once, before any other method, and the queue never moves afterwards.
    pub(crate) unsafe fn init(&self, name: LockName, key: &'static LockClassKey) {
        // SAFETY: by the contract, nobody uses the queue yet and it stays where it is.
        unsafe { b::__init_waitqueue_head(self.head.get(), name_ptr(name), key.as_ptr()) };
    }

    /// Releases `guard`'s lock, sleeps interruptibly until woken by `notify_*` (or a signal),
    /// and takes the lock again. The waiter is queued before the lock is released, so a
    /// notification sent after the caller's last look at the data under the lock is not lost.
    pub(crate) fn wait_interruptible<T>(&self, guard: &mut SpinLockGuard<'_, T>) {
        // SAFETY: an all-zero entry is what `init_wait_entry` expects to fill in.
        let mut entry: b::wait_queue_entry = unsafe { core::mem::zeroed() };
        // SAFETY: `entry` lives on this stack frame until `finish_wait` below removed it from
        // the queue; the queue is initialised; the guard's lock is held by this thread and is
        // released only around `schedule`, with this task queued and its state set.
        unsafe {
            b::init_wait_entry(&mut entry, 0);
            b::prepare_to_wait_event(
                self.head.get(),
                &mut entry,
                b::DMAHEAP_TASK_INTERRUPTIBLE as _,
            );
            SpinLockBackend::unlock(guard.lock.state.get());
            b::schedule();
            b::finish_wait(self.head.get(), &mut entry);
            SpinLockBackend::lock(guard.lock.state.get());
        }
    }

    /// Wakes one waiter.
    pub(crate) fn notify_one(&self) {
        // SAFETY: the queue is initialised.
        unsafe { b::__wake_up(self.head.get(), b::DMAHEAP_TASK_NORMAL, 1, ptr::null_mut()) };
    }

    /// Wakes every waiter.
    pub(crate) fn notify_all(&self) {
        // SAFETY: the queue is initialised.
        unsafe { b::__wake_up(self.head.get(), b::DMAHEAP_TASK_NORMAL, 0, ptr::null_mut()) };
    }
}
