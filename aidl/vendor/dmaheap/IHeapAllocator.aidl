/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

import vendor.dmaheap.AllocationResult;
import vendor.dmaheap.AllocatorStats;
import vendor.dmaheap.BufferDescriptor;
import vendor.dmaheap.DelegatedHeap;
import vendor.dmaheap.HeapInfo;
import vendor.dmaheap.HeapSelector;
import vendor.dmaheap.IonRequest;
import vendor.dmaheap.Resolution;

/**
 * The vendor dma-buf heap allocator.
 *
 * One service per device, registered as "vendor.dmaheap.IHeapAllocator/default". It is what
 * gralloc's allocator backend, camera and codec HALs call instead of opening /dev/dma_heap/*
 * themselves: the vendor's usage-to-heap policy lives in one place, legacy ION callers keep their
 * heap ids, and every buffer is named after its owner for dmabuf_dump.
 *
 * Every method that fails does so with a service-specific error whose code is one of the ERROR_*
 * constants below and whose message says what was wrong. Malformed parcels (for instance a string
 * that is not valid UTF-16) are refused by the binder layer before they reach the service, with
 * the transaction error BAD_VALUE.
 *
 * Allocated buffers are always zeroed, whatever the heap.
 *
 * Heaps are per caller: the policy says which callers (by SELinux domain or uid) may allocate
 * from contiguous, carveout and secure heaps. A caller the policy does not list gets binder's
 * EX_SECURITY (a SecurityException), whose message names the heap and the caller's domain, and
 * nothing is allocated.
 */
@VintfStability
interface IHeapAllocator {
    /** An argument is out of range: size 0 or above the limit, bad name, empty ION mask... */
    const int ERROR_BAD_ARGUMENT = 1;
    /** The named heap, or every heap a rule or ION mask leads to, is unknown or absent. */
    const int ERROR_NO_SUCH_HEAP = 2;
    /**
     * The usage has bits that BufferUsage does not define, or no heap on this device can honour
     * it (PROTECTED without a secure heap is never served from unprotected memory).
     */
    const int ERROR_UNSUPPORTED_USAGE = 3;
    /** Every candidate heap ran out of memory. */
    const int ERROR_OUT_OF_MEMORY = 4;
    /** The request is larger than the policy lets one call take (size times count). */
    const int ERROR_QUOTA_EXCEEDED = 5;
    /** The kernel failed in a way none of the codes above describes; the message has the errno. */
    const int ERROR_INTERNAL = 6;
    /**
     * Too many of the caller's (same uid) calls are being served already; the call waited
     * briefly for one of them to finish. Try again later.
     */
    const int ERROR_BUSY = 7;

    /** Hard upper bound of `count` in allocateBatch; the policy may set a lower one. */
    const int MAX_BATCH_COUNT = 64;
    /**
     * Upper bound of a debug name in UTF-8 bytes. Names must be printable (no control characters).
     * The kernel keeps only 31 bytes of a dma-buf name, so the service stores a shortened form.
     */
    const int MAX_DEBUG_NAME_BYTES = 64;

    /** ION's ION_FLAG_CACHED: ask for a heap whose CPU mappings are cached. */
    const int ION_FLAG_CACHED = 1;
    /** ION's ION_FLAG_CACHED_NEEDS_SYNC: accepted for compatibility, implied by dma-buf sync. */
    const int ION_FLAG_CACHED_NEEDS_SYNC = 2;

    /**
     * Allocates a buffer for a gralloc usage.
     *
     * @param usage android.hardware.graphics.common.BufferUsage bits. Bits BufferUsage does not
     *     define are rejected with ERROR_UNSUPPORTED_USAGE; the vendor ranges (VENDOR_MASK,
     *     VENDOR_MASK_HI) are accepted and may be matched by the policy.
     * @param size Bytes; rounded up to whole pages. Must be > 0 and within the policy's limit.
     * @param debugName Who the buffer is for, e.g. "camera.preview"; stored in the dma-buf name.
     */
    AllocationResult allocateByUsage(long usage, long size, @utf8InCpp String debugName);

    /**
     * Allocates a buffer from a heap named explicitly, with no policy and no fallback.
     *
     * The heap must be one the policy declares and present on this device, or the call fails
     * with ERROR_NO_SUCH_HEAP.
     */
    AllocationResult allocateFromHeap(
            @utf8InCpp String heapName, long size, @utf8InCpp String debugName);

    /**
     * Allocates a buffer the way ion_alloc_fd did, for callers ported from ION.
     *
     * Heaps are tried in ION priority order (highest id in the mask first) until one succeeds.
     * An id the policy's ION table does not map is an error (ERROR_NO_SUCH_HEAP) naming the id.
     */
    AllocationResult allocateIon(in IonRequest request, long size, @utf8InCpp String debugName);

    /**
     * Allocates `count` buffers of `size` bytes from the same selection, all or nothing: when
     * one allocation fails, every buffer allocated so far in this call is freed and the error is
     * returned. The buffers are named "<debugName>#<index>".
     *
     * @param count 1 to MAX_BATCH_COUNT (or the policy's lower limit).
     */
    AllocationResult[] allocateBatch(
            in HeapSelector selector, long size, int count, @utf8InCpp String debugName);

    /** Every heap the policy knows about, with its properties and presence on this device. */
    HeapInfo[] listHeaps();

    /**
     * Says which heap a usage would be served from, which rule chose it and the fallback order,
     * without allocating. Fails the way allocateByUsage would for unknown or unsupported usage.
     */
    Resolution resolveUsage(long usage);

    /** Same as resolveUsage, for a legacy ION request. */
    Resolution resolveIon(in IonRequest request);

    /** Allocation counters per heap and per calling uid since the service started. */
    AllocatorStats getStats();

    // Version 2.

    /**
     * Allocates a buffer for a descriptor: the policy's rules see its usage, format, dimensions,
     * size and the caller. The size is rounded up to the chosen heap's granule.
     */
    AllocationResult allocate(in BufferDescriptor descriptor, @utf8InCpp String debugName);

    /** allocateBatch for a descriptor: `count` buffers, all or nothing. */
    AllocationResult[] allocateBatchFor(
            in BufferDescriptor descriptor, int count, @utf8InCpp String debugName);

    /** Which heap a descriptor would be served from, without allocating. */
    Resolution resolve(in BufferDescriptor descriptor);

    /**
     * The heap to allocate from in-process for this descriptor, when the policy delegates the
     * heap it resolves to for this caller (plain system heaps by default; never contiguous,
     * carveout or secure heaps unless the policy says so for this caller). Null when it does
     * not: the caller then allocates with allocate(). Fails as allocate() would (EX_SECURITY for
     * a heap the caller may not use, ERROR_UNSUPPORTED_USAGE, ...), so a null answer means
     * "use the per-call path", never "not allowed". The answer holds for as long as this
     * service instance lives: drop it when the service dies.
     */
    @nullable DelegatedHeap delegate(in BufferDescriptor descriptor);
}
