/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * A camera HAL's internal buffers (ISP statistics, RAW for a reprocessing path) through the
 * libdmabufheap-shaped class: the same calls a camera HAL makes to libdmabufheap today, with the
 * include and the library changed. The contiguous heap is asked for by name; a policy that
 * does not give this HAL that heap answers -EACCES (or -ENOENT on a device without it), and the
 * HAL falls back to asking by usage.
 */

#include <dmaheap/BufferAllocator.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>

namespace {

constexpr uint64_t kCameraOutput = 1u << 17, kCpuReadOften = 3;

class CameraBuffers {
  public:
    /* A buffer the ISP writes into and the HAL's CPU code reads. */
    int AllocStats(size_t len) {
        int fd = allocator_.Alloc("reserved", len);  // the CMA heap, if the policy allows it
        if (fd == -EACCES || fd == -ENOENT) {
            std::fprintf(stderr, "camera: no CMA heap (%s), by usage instead\n",
                         BufferAllocator::LastError().c_str());
            fd = allocator_.AllocByUsage(kCameraOutput | kCpuReadOften, len);
        }
        return fd;
    }

    /* Reads the first word the ISP wrote, inside the sync bracket that cached heaps need. */
    int ReadFirstWord(int fd, size_t len, uint32_t* out) {
        void* p = mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) return -errno;
        int ret = allocator_.CpuSyncStart(fd, kSyncRead);
        if (ret == 0) {
            *out = *static_cast<const uint32_t*>(p);
            ret = allocator_.CpuSyncEnd(fd, kSyncRead);
        }
        munmap(p, len);
        return ret;
    }

  private:
    BufferAllocator allocator_{"camera.stats"};
};

}  // namespace

int main() {
    CameraBuffers buffers;
    const size_t len = 64 * 1024;
    int fd = buffers.AllocStats(len);
    if (fd < 0) {
        std::fprintf(stderr, "camera: %s\n", BufferAllocator::LastError().c_str());
        return 1;
    }
    uint32_t word = 1;
    int ret = buffers.ReadFirstWord(fd, len, &word);
    close(fd);
    return ret == 0 && word == 0 ? 0 : 1;  // fresh buffers are zeroed
}
