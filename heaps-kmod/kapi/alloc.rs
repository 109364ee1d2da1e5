// SPDX-License-Identifier: GPL-2.0

//! Heap memory: `KBox` (kmalloc) and `KVec` (kvmalloc, for arrays that may be large).

use crate::bindings as b;
use crate::kapi::error::{Result, ENOMEM};
use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ops::{Deref, DerefMut};
use core::ptr::{self, NonNull};

/// Allocation flags (`gfp_t`).
#[derive(Clone, Copy)]
pub(crate) struct Flags(b::gfp_t);

/// May sleep and reclaim: process context without spinlocks held.
pub(crate) const GFP_KERNEL: Flags = Flags(b::DMAHEAP_GFP_KERNEL);

/// kmalloc and kvmalloc align every allocation to at least `ARCH_KMALLOC_MINALIGN`, which is
/// never below the alignment of `unsigned long long`.
const MIN_ALIGN: usize = 8;

/// A kmalloc'ed `T`.
pub(crate) struct KBox<T>(NonNull<T>);

// SAFETY: a `KBox` owns its `T` like a `Box` does.
unsafe impl<T: Send> Send for KBox<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for KBox<T> {}

impl<T> KBox<T> {
    /// Moves `value` into a new allocation.
    pub(crate) fn new(value: T, flags: Flags) -> Result<KBox<T>> {
        const { assert!(align_of::<T>() <= MIN_ALIGN && size_of::<T>() > 0) };
        // SAFETY: a plain allocation of `size_of::<T>()` bytes (non-zero, asserted above).
        let p = unsafe { b::dmaheap_kmalloc(size_of::<T>(), flags.0) }.cast::<T>();
        let p = NonNull::new(p).ok_or(ENOMEM)?;
        // SAFETY: `p` is a fresh allocation, large and aligned enough for a `T`.
        unsafe { p.as_ptr().write(value) };
        Ok(KBox(p))
    }

    /// Gives up ownership; `from_raw` takes it back.
    pub(crate) fn into_raw(this: KBox<T>) -> *mut T {
        let p = this.0.as_ptr();
        core::mem::forget(this);
        p
    }

    /// Takes back what `into_raw` gave up.
    ///
    /// # Safety
    /// `p` came from `KBox::<T>::into_raw` and is not used through any other path afterwards.
    pub(crate) unsafe fn from_raw(p: *mut T) -> KBox<T> {
        // SAFETY: `into_raw` returned the non-null pointer of a live box.
        KBox(unsafe { NonNull::new_unchecked(p) })
    }
}

impl<T> Deref for KBox<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the box owns a live, initialised `T`.
        unsafe { self.0.as_ref() }
    }
}

impl<T> DerefMut for KBox<T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and `&mut self` is exclusive.
        unsafe { self.0.as_mut() }
    }
}

impl<T> Drop for KBox<T> {
    fn drop(&mut self) {
        // SAFETY: the box owns the `T` and its kmalloc'ed memory; neither is used afterwards.
        unsafe {
            ptr::drop_in_place(self.0.as_ptr());
            b::kfree(self.0.as_ptr().cast());
        }
    }
}

/// A growable array in kvmalloc'ed memory (physically contiguous when small, vmalloc'ed when
/// large), for element types without destructors.
pub(crate) struct KVec<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    cap: usize,
    _owns: PhantomData<T>,
}

// SAFETY: a `KVec` owns its elements.
unsafe impl<T: Copy + Send> Send for KVec<T> {}
// SAFETY: as above.
unsafe impl<T: Copy + Sync> Sync for KVec<T> {}

impl<T: Copy> KVec<T> {
    /// An empty vector; allocates nothing.
    pub(crate) const fn new() -> KVec<T> {
        KVec {
            ptr: NonNull::dangling(),
            len: 0,
            cap: 0,
            _owns: PhantomData,
        }
    }

    /// An empty vector with room for `cap` elements.
    pub(crate) fn with_capacity(cap: usize, flags: Flags) -> Result<KVec<T>> {
        let mut v = KVec::new();
        v.reserve_exact(cap, flags)?;
        Ok(v)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Makes the capacity at least `cap` (moving the elements to a new allocation).
    fn reserve_exact(&mut self, cap: usize, flags: Flags) -> Result {
        const { assert!(align_of::<T>() <= MIN_ALIGN && size_of::<T>() > 0) };
        if cap <= self.cap {
            return Ok(());
        }
        let bytes = cap.checked_mul(size_of::<T>()).ok_or(ENOMEM)?;
        // SAFETY: a plain allocation of `bytes` (non-zero) bytes; kvmalloc refuses sizes above
        // INT_MAX itself.
        let p = unsafe { b::dmaheap_kvmalloc(bytes, flags.0) }.cast::<T>();
        let p = NonNull::new(p).ok_or(ENOMEM)?;
        if self.cap > 0 {
            // SAFETY: the old allocation holds `len` initialised elements, the new one has room
            // for `cap > len`; they do not overlap. The old one is freed and forgotten.
            unsafe {
                ptr::copy_nonoverlapping(self.ptr.as_ptr(), p.as_ptr(), self.len);
                b::kvfree(self.ptr.as_ptr().cast());
            }
        }
        self.ptr = p;
        self.cap = cap;
        Ok(())
    }

    /// Appends `value` if there is room, without allocating (callable under a spinlock).
    pub(crate) fn push_within_capacity(&mut self, value: T) -> Result<(), T> {
        if self.len >= self.cap {
            return Err(value);
        }
        // SAFETY: `len < cap`: the slot is inside the allocation and not initialised yet.
        unsafe { self.ptr.as_ptr().add(self.len).write(value) };
        self.len = self.len.wrapping_add(1); // `len < cap <= isize::MAX / size_of::<T>()`.
        Ok(())
    }

    /// Appends `value`, doubling the capacity when full.
    pub(crate) fn push(&mut self, value: T, flags: Flags) -> Result {
        if self.len >= self.cap {
            let grown = self.cap.checked_mul(2).ok_or(ENOMEM)?.max(4);
            self.reserve_exact(grown, flags)?;
        }
        self.push_within_capacity(value).map_err(|_| ENOMEM)
    }

    /// Appends the elements of `values`.
    pub(crate) fn extend_from_slice(&mut self, values: &[T], flags: Flags) -> Result {
        let want = self.len.checked_add(values.len()).ok_or(ENOMEM)?;
        self.reserve_exact(want, flags)?;
        for &v in values {
            self.push_within_capacity(v).map_err(|_| ENOMEM)?;
        }
        Ok(())
    }

    /// Removes and returns the last element.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.len.checked_sub(1)?;
        self.len = last;
        // SAFETY: `last < len` before the decrement: an initialised element (`T: Copy`).
        Some(unsafe { self.ptr.as_ptr().add(last).read() })
    }

    /// Removes the element at `index` by moving the last one into its place.
    pub(crate) fn swap_remove(&mut self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let last = self.pop()?;
        if index == self.len {
            return Some(last);
        }
        let slot = self.get_mut(index)?;
        Some(core::mem::replace(slot, last))
    }
}

impl<T: Copy> Deref for KVec<T> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised elements (or is dangling with `len == 0`).
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> DerefMut for KVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as above, and `&mut self` is exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for KVec<T> {
    fn drop(&mut self) {
        if self.cap > 0 {
            // SAFETY: the vector's own kvmalloc'ed memory; `T: Copy` needs no destructor.
            unsafe { b::kvfree(self.ptr.as_ptr().cast()) };
        }
    }
}
