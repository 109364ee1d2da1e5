/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

/**
 * Counters for one heap since the service started.
 *
 * The service does not keep the buffers it hands out, so it cannot know when they are freed:
 * these are totals handed out, not memory in use (the kernel's dma-buf stats give that).
 */
@VintfStability
parcelable HeapStats {
    @utf8InCpp String heapName;
    /** Buffers handed out. */
    long allocations;
    /** Bytes handed out, in whole pages. */
    long bytes;
    /** Allocation attempts the kernel refused on this heap (including ones a fallback rescued). */
    long failures;
}
