/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

import vendor.dmaheap.IonRequest;

/**
 * How a request picks its heap: the three ways that IHeapAllocator offers, as one value so that a
 * batch can use any of them.
 */
@VintfStability
union HeapSelector {
    /** android.hardware.graphics.common.BufferUsage bits, resolved by the vendor policy. */
    long usage;
    /** A dma-buf heap by name, as under /dev/dma_heap/. No fallback. */
    @utf8InCpp String heapName;
    /** A legacy ION heap-id mask and flags, resolved through the policy's ION table. */
    IonRequest ion;
}
