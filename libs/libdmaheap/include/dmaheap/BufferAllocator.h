/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

/**
 * A C++17, header-only BufferAllocator over the C ABI of <dmaheap/dmaheap.h>, with the names,
 * signatures and return conventions of AOSP libdmabufheap's class, so that a caller moves by
 * replacing
 *
 *     #include <BufferAllocator/BufferAllocator.h>     shared_libs: ["libdmabufheap"]
 * with
 *     #include <dmaheap/BufferAllocator.h>             static_libs: ["libdmaheap"]
 *
 * Read for the shape only (names, parameters, defaults, what is static), not copied: AOSP
 * platform/system/memory/libdmabufheap, include/BufferAllocator/BufferAllocator.h,
 * BufferAllocatorWrapper.h, dmabufheap-defs.h and BufferAllocator.cpp at main commit
 * 2d746cb558d1b9d43a82af1875b53864bd5c7f73 (2025-02-19), read through the GitHub mirror
 * msft-mirror-aosp/platform.system.memory.libdmabufheap.
 *
 * What is the same: every allocation returns a dma-buf fd (>= 0) that the caller closes, or a
 * negative value; CpuSyncStart/CpuSyncEnd return 0 or a negative value; the default arguments;
 * DmabufSetName, GetDmabufHeapList and CheckIonSupport are static; the class is not copyable.
 *
 * What differs, on purpose:
 * - Failures are always -errno (libdmabufheap returns -1 with errno set from some paths and
 *   -errno from others); errno is set too, so `PLOG(ERROR)` after a failure still prints the
 *   cause. The errno of each service error is the table in dmaheap.h; LastError() has the
 *   service's message.
 * - Buffers come from the allocator service, which checks the heap against its policy
 *   (-EACCES when this caller may not use it, -ENOENT when the policy does not declare it or
 *   the device lacks it) and names the buffer after the caller and the debug name.
 * - heap_flags and legacy_align are accepted and ignored, as libdmabufheap ignores them for
 *   dma-buf heaps. The ION callbacks of CpuSyncStart/End are accepted and never called:
 *   there is no legacy ION here (CheckIonSupport() is false, MapNameToIonHeap() succeeds and
 *   does nothing, as libdmabufheap's does on a dma-buf heap device). Legacy ION requests go
 *   through AllocIon() instead, which the service maps through its ION table.
 * - GetDmabufHeapList() lists the heaps the service can allocate from (declared by its policy
 *   and present), not every node under /dev/dma_heap.
 * - Extras: AllocByUsage() (by gralloc BufferUsage, the policy picks the heap), AllocIon(), a
 *   constructor that sets the debug name of this allocator's buffers, LastError().
 *
 * Define DMAHEAP_NO_GLOBAL_NAMES before including to keep the names inside namespace dmaheap
 * (needed when a file also includes libdmabufheap's own header).
 */

#ifndef DMAHEAP_BUFFER_ALLOCATOR_H_
#define DMAHEAP_BUFFER_ALLOCATOR_H_

#include <dmaheap/dmaheap.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_set>

namespace dmaheap {

/** The AOSP names of the system heaps (cached, and write-combined). */
inline constexpr char kDmabufSystemHeapName[] = "system";
inline constexpr char kDmabufSystemUncachedHeapName[] = "system-uncached";

/** Direction of a CPU access; the values are DMA_BUF_SYNC_READ / _WRITE / _RW. */
enum SyncType : unsigned int {
    kSyncRead = DMAHEAP_SYNC_READ,
    kSyncWrite = DMAHEAP_SYNC_WRITE,
    kSyncReadWrite = DMAHEAP_SYNC_RW,
};

class BufferAllocator {
  public:
    /** Buffers are named with the library's default debug name. */
    BufferAllocator() = default;

    /** Buffers of this allocator carry `debug_name` (e.g. "camera.preview") in their name. */
    explicit BufferAllocator(std::string debug_name) : debug_name_(std::move(debug_name)) {}

    ~BufferAllocator() = default;

    BufferAllocator(const BufferAllocator&) = delete;
    BufferAllocator& operator=(const BufferAllocator&) = delete;

    /** Nothing to map: the service's policy has the ION table. Always 0. */
    int MapNameToIonHeap(const std::string& /*heap_name*/, const std::string& /*ion_heap_name*/,
                         unsigned int /*ion_heap_flags*/ = 0,
                         unsigned int /*legacy_ion_heap_mask*/ = 0,
                         unsigned int /*legacy_ion_heap_flags*/ = 0) {
        return 0;
    }

    /**
     * A zeroed buffer of at least len bytes from heap heap_name, with no fallback.
     * Returns the dma-buf fd or -errno.
     */
    int Alloc(const std::string& heap_name, size_t len, unsigned int /*heap_flags*/ = 0,
              size_t /*legacy_align*/ = 0) {
        return dmaheap_alloc_from_heap(heap_name.c_str(), len, name());
    }

    /**
     * A buffer from system memory: "system-uncached" when the CPU does not need access and the
     * service offers that heap, else "system". Returns the dma-buf fd or -errno.
     */
    int AllocSystem(bool cpu_access_needed, size_t len, unsigned int heap_flags = 0,
                    size_t legacy_align = 0) {
        if (!cpu_access_needed && HasUncachedSystemHeap()) {
            return Alloc(kDmabufSystemUncachedHeapName, len, heap_flags, legacy_align);
        }
        return Alloc(kDmabufSystemHeapName, len, heap_flags, legacy_align);
    }

    /**
     * (Extra) A buffer for a gralloc BufferUsage; the vendor policy picks the heap.
     * An empty debug_name means this allocator's. Returns the dma-buf fd or -errno.
     */
    int AllocByUsage(uint64_t usage, size_t len, const std::string& debug_name = std::string()) {
        return dmaheap_alloc_by_usage(usage, len,
                                      debug_name.empty() ? name() : debug_name.c_str());
    }

    /**
     * (Extra) A legacy ION request, as ion_alloc_fd(): heap-id mask, ION flags, alignment.
     * Returns the dma-buf fd or -errno.
     */
    int AllocIon(unsigned int heap_id_mask, unsigned int ion_flags, size_t len,
                 size_t align = 0) {
        return dmaheap_alloc_ion(heap_id_mask, ion_flags, align, len, name());
    }

    /** Accepted for source compatibility; never called (there is no legacy ION here). */
    typedef std::function<int(int, int, void*)> CustomCpuSyncLegacyIon;

    /**
     * Must precede CPU access to the mapped buffer: DMA_BUF_IOCTL_SYNC start, restarted on
     * EINTR and EAGAIN. Returns 0 or -errno.
     */
    int CpuSyncStart(unsigned int dmabuf_fd, SyncType sync_type = kSyncRead,
                     const CustomCpuSyncLegacyIon& /*legacy_ion_cpu_sync*/ = nullptr,
                     void* /*legacy_ion_custom_data*/ = nullptr) {
        return dmaheap_cpu_sync_start(static_cast<int>(dmabuf_fd), sync_type);
    }

    /** Ends the CPU access CpuSyncStart began, with the same sync_type. Returns 0 or -errno. */
    int CpuSyncEnd(unsigned int dmabuf_fd, SyncType sync_type = kSyncRead,
                   const CustomCpuSyncLegacyIon& /*legacy_ion_cpu_sync*/ = nullptr,
                   void* /*legacy_ion_custom_data*/ = nullptr) {
        return dmaheap_cpu_sync_end(static_cast<int>(dmabuf_fd), sync_type);
    }

    /** The heaps the service can allocate from; empty when it cannot be reached. */
    static std::unordered_set<std::string> GetDmabufHeapList() {
        std::unordered_set<std::string> heaps;
        char** names = nullptr;
        size_t count = 0;
        if (dmaheap_heap_list(&names, &count) == 0) {
            for (size_t i = 0; i < count; i++) heaps.insert(names[i]);
            dmaheap_heap_list_free(names, count);
        }
        return heaps;
    }

    /** There is no legacy ION interface behind this class. */
    static bool CheckIonSupport() { return false; }

    /** DMA_BUF_SET_NAME, cut to the kernel's 31 bytes. Returns 0 or -errno. */
    static int DmabufSetName(unsigned int dmabuf_fd, const std::string& name) {
        return dmaheap_set_name(static_cast<int>(dmabuf_fd), name.c_str());
    }

    /** (Extra) What the last failed call on this thread went wrong with. */
    static std::string LastError() { return dmaheap_last_error(); }

  private:
    const char* name() const { return debug_name_.empty() ? nullptr : debug_name_.c_str(); }

    static bool HasUncachedSystemHeap() {
        // Asked once per process, as libdmabufheap does.
        static const bool present = GetDmabufHeapList().count(kDmabufSystemUncachedHeapName) > 0;
        return present;
    }

    std::string debug_name_;
};

}  // namespace dmaheap

#ifndef DMAHEAP_NO_GLOBAL_NAMES
using dmaheap::BufferAllocator;
using dmaheap::kDmabufSystemHeapName;
using dmaheap::kDmabufSystemUncachedHeapName;
using dmaheap::kSyncRead;
using dmaheap::kSyncReadWrite;
using dmaheap::kSyncWrite;
using dmaheap::SyncType;
#endif

#endif  // DMAHEAP_BUFFER_ALLOCATOR_H_
