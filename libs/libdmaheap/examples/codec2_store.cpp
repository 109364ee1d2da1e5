/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * A Codec2 store's linear-block allocator (the part of C2DmaBufAllocator that turns a usage and
 * a capacity into a dma-buf) through libdmaheap. C2DmaBufAllocator keeps a usage mapper that
 * returns a heap name and flags; with the service the vendor policy is that mapper, so the store
 * passes the gralloc usage through and keeps only the error mapping to c2_status_t.
 */

#include <dmaheap/BufferAllocator.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>

namespace {

/* Stand-in for C2.h's c2_status_t (there its values are status_t codes; names are what count). */
enum c2_status_t { C2_OK, C2_BAD_VALUE, C2_NO_MEMORY, C2_NOT_FOUND, C2_OMITTED, C2_REFUSED,
                   C2_CORRUPTED };

c2_status_t ToC2(int err) {
    switch (-err) {
        case 0: return C2_OK;
        case EINVAL: return C2_BAD_VALUE;
        case ENOMEM: case EDQUOT: case EBUSY: return C2_NO_MEMORY;
        case ENOENT: return C2_NOT_FOUND;
        case EOPNOTSUPP: return C2_OMITTED;  // e.g. PROTECTED on a device without a secure heap
        case EACCES: case EPERM: return C2_REFUSED;
        default: return C2_CORRUPTED;        // EPIPE after the retry, EIO, ...
    }
}

class LinearAllocator {
  public:
    /* C2Allocator::newLinearAllocation: capacity bytes for the given gralloc usage. */
    c2_status_t NewLinearAllocation(uint32_t capacity, uint64_t usage, int* fd) {
        int ret = allocator_.AllocByUsage(usage, capacity);
        if (ret < 0) {
            std::fprintf(stderr, "c2 store: %u bytes, usage %#llx: %s\n", capacity,
                         static_cast<unsigned long long>(usage),
                         BufferAllocator::LastError().c_str());
            return ToC2(ret);
        }
        *fd = ret;
        return C2_OK;
    }

  private:
    dmaheap::BufferAllocator allocator_{"c2.linear"};
};

}  // namespace

int main() {
    constexpr uint64_t kVideoDecoder = 1u << 22, kProtected = 1u << 14;
    LinearAllocator store;
    int fd = -1;
    c2_status_t st = store.NewLinearAllocation(2 << 20, kVideoDecoder, &fd);
    if (st == C2_OK) close(fd);
    // A secure decoder asks for PROTECTED memory; C2_OMITTED when the device has none.
    c2_status_t secure = store.NewLinearAllocation(2 << 20, kVideoDecoder | kProtected, &fd);
    if (secure == C2_OK) close(fd);
    return st == C2_OK ? 0 : 1;
}
