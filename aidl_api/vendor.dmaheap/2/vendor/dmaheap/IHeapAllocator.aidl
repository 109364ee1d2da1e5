/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */
///////////////////////////////////////////////////////////////////////////////
// FROZEN AIDL API SNAPSHOT. DO NOT EDIT.                                    //
///////////////////////////////////////////////////////////////////////////////

// Written by `cargo run -p android-checks --bin aidl-api` (or Soong's
// `m <module>-update-api` / `m <module>-freeze-api`) from the sources of the
// aidl_interface. A numbered directory is a released version: devices in the
// field implement or call it, so it never changes. Change the interface in the
// sources, then update `current/` and, when the change is ready to ship, freeze
// it as the next version.

package vendor.dmaheap;
@VintfStability
interface IHeapAllocator {
    vendor.dmaheap.AllocationResult allocateByUsage(long usage, long size, @utf8InCpp String debugName);
    vendor.dmaheap.AllocationResult allocateFromHeap(@utf8InCpp String heapName, long size, @utf8InCpp String debugName);
    vendor.dmaheap.AllocationResult allocateIon(in vendor.dmaheap.IonRequest request, long size, @utf8InCpp String debugName);
    vendor.dmaheap.AllocationResult[] allocateBatch(in vendor.dmaheap.HeapSelector selector, long size, int count, @utf8InCpp String debugName);
    vendor.dmaheap.HeapInfo[] listHeaps();
    vendor.dmaheap.Resolution resolveUsage(long usage);
    vendor.dmaheap.Resolution resolveIon(in vendor.dmaheap.IonRequest request);
    vendor.dmaheap.AllocatorStats getStats();
    vendor.dmaheap.AllocationResult allocate(in vendor.dmaheap.BufferDescriptor descriptor, @utf8InCpp String debugName);
    vendor.dmaheap.AllocationResult[] allocateBatchFor(in vendor.dmaheap.BufferDescriptor descriptor, int count, @utf8InCpp String debugName);
    vendor.dmaheap.Resolution resolve(in vendor.dmaheap.BufferDescriptor descriptor);
    @nullable vendor.dmaheap.DelegatedHeap delegate(in vendor.dmaheap.BufferDescriptor descriptor);
    const int ERROR_BAD_ARGUMENT = 1;
    const int ERROR_NO_SUCH_HEAP = 2;
    const int ERROR_UNSUPPORTED_USAGE = 3;
    const int ERROR_OUT_OF_MEMORY = 4;
    const int ERROR_QUOTA_EXCEEDED = 5;
    const int ERROR_INTERNAL = 6;
    const int ERROR_BUSY = 7;
    const int MAX_BATCH_COUNT = 64;
    const int MAX_DEBUG_NAME_BYTES = 64;
    const int ION_FLAG_CACHED = 1;
    const int ION_FLAG_CACHED_NEEDS_SYNC = 2;
}
