/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * A gralloc allocator backend (IAllocator::allocate) getting its buffers from libdmaheap: the
 * gralloc usage goes to the service as is, the vendor policy picks the heap, and every buffer of
 * one allocate() call comes from one batch, all or nothing, as IAllocator requires.
 * The descriptor type stands in for the HAL's BufferDescriptorInfo.
 */

#include <dmaheap/dmaheap.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

struct Descriptor {  // what gralloc decoded from BufferDescriptorInfo
    uint32_t width, height, bytes_per_pixel, layer_count;
    uint64_t usage;  // BufferUsage
};

/* AIDL IAllocator's error codes: the ones a gralloc backend returns. */
enum class AllocError { kNone, kBadDescriptor, kNoResources, kUnsupported };

AllocError ToAllocError(int err) {
    switch (-err) {
        case EINVAL: return AllocError::kBadDescriptor;
        case EOPNOTSUPP: case ENOENT: case EACCES: return AllocError::kUnsupported;
        default: return AllocError::kNoResources;  // ENOMEM, EDQUOT, EBUSY, EPIPE, ...
    }
}

/* Allocates `count` buffers for `d` into `fds`; they are the caller's on kNone. */
AllocError Allocate(const Descriptor& d, int count, std::vector<int>& fds) {
    const size_t stride = (static_cast<size_t>(d.width) * d.bytes_per_pixel + 63) & ~size_t{63};
    const size_t size = stride * d.height * d.layer_count;
    fds.assign(count, -1);
    dmaheap_selector selector{};
    selector.kind = DMAHEAP_BY_USAGE;
    selector.usage = d.usage;
    int ret = dmaheap_alloc_batch(&selector, size, count, "gralloc", fds.data());
    if (ret < 0) {
        std::fprintf(stderr, "gralloc: %d buffers of %zu bytes: %s\n", count, size,
                     dmaheap_last_error());
        fds.clear();
        return ToAllocError(ret);
    }
    return AllocError::kNone;
}

}  // namespace

int main() {
    const uint64_t kGpuTexture = 1u << 8, kComposerOverlay = 1u << 11;
    Descriptor d{1920, 1080, 4, 1, kGpuTexture | kComposerOverlay};
    std::vector<int> fds;
    AllocError e = Allocate(d, 3, fds);
    for (int fd : fds) close(fd);
    return e == AllocError::kNone ? 0 : 1;
}
