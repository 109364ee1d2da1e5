/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

/**
 * A legacy ION allocation request, for code ported from ION (ion_alloc_fd).
 */
@VintfStability
parcelable IonRequest {
    /**
     * Bit n set means ION heap id n may serve the request. Heaps are tried from the highest id
     * to the lowest, like ION did, until one allocation succeeds. Must not be 0.
     */
    int heapIdMask;
    /** ION flags: IHeapAllocator.ION_FLAG_CACHED selects the cached variant of a heap. */
    int flags;
    /**
     * Requested alignment in bytes. dma-buf heaps always align to pages, so it is accepted and
     * ignored, as ION itself ignored it since Linux 4.12; it must be 0 or a power of two.
     */
    long alignment;
}
