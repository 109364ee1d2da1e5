/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

/**
 * A dma-buf heap the active policy knows about, and whether this device has it.
 *
 * Properties come from the vendor policy, not from the kernel: the dma-heap uAPI does not expose
 * them, so the policy is the single place that says what a heap is.
 */
@VintfStability
parcelable HeapInfo {
    /** The heap's name, as under /dev/dma_heap/. */
    @utf8InCpp String name;
    /** True when /dev/dma_heap/<name> exists on this device. */
    boolean present;
    /**
     * True when CPU mappings are cached: CPU access must be bracketed with DMA_BUF_IOCTL_SYNC.
     * False for write-combined / uncached heaps (AOSP's "system-uncached").
     */
    boolean cached;
    /** True when buffers are physically contiguous (CMA, carveouts): usable without an IOMMU. */
    boolean contiguous;
    /**
     * True when buffers are protected (secure) memory that the CPU of the normal world cannot
     * read or write, as required by BufferUsage.PROTECTED.
     */
    boolean secure;
    /** The legacy ION heap ids that the policy maps onto this heap, in ascending order. */
    int[] ionHeapIds;
    /** Free text from the policy, for humans. */
    @utf8InCpp String description;
}
