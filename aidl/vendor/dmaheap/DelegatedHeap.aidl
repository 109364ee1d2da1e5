/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

/**
 * A heap the service hands to the caller for one shape of request, so the caller allocates
 * with DMA_HEAP_IOCTL_ALLOC itself instead of one binder call per buffer: the policy still
 * decides (once, for this descriptor and this caller), the allocation then costs what
 * libdmabufheap's does. Added in version 2.
 */
@VintfStability
parcelable DelegatedHeap {
    /** The heap's device node, opened read-only: DMA_HEAP_IOCTL_ALLOC on it allocates. */
    ParcelFileDescriptor heap;
    /** The heap's name under /dev/dma_heap. */
    @utf8InCpp String heapName;
    /** Sizes are rounded up to a multiple of this many bytes (a power of two, >= a page). */
    long granule;
    /**
     * The dma-heap heap_flags to pass with every allocation (0 for every upstream heap; vendor
     * heaps may take the flags the policy passes through from ION).
     */
    long heapFlags;
    /**
     * The policy's limits, which the caller keeps as the service would: the largest buffer, the
     * most buffers in one batch and the most bytes in one call. A request above them goes to
     * the service (allocate / allocateBatchFor), which refuses it with its error.
     */
    long maxSize;
    /** See maxSize. */
    int maxBatchCount;
    /** See maxSize. */
    long maxRequestBytes;
    /** The rule that decided, for logs and dumps. */
    @utf8InCpp String rule;
}
