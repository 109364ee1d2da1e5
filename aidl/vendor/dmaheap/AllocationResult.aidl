/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

/**
 * One buffer handed out by IHeapAllocator.
 *
 * The caller owns the file descriptor: the service keeps no reference to the buffer once the
 * reply is sent, so the memory is freed when the last holder of the dma-buf closes it.
 */
@VintfStability
parcelable AllocationResult {
    /** The dma-buf. Its contents are zero when handed out. */
    ParcelFileDescriptor fd;
    /** The dma-buf heap that actually served the request (after rules and fallbacks). */
    @utf8InCpp String heapName;
    /** The size of the buffer in bytes: the requested size rounded up to whole pages. */
    long size;
}
