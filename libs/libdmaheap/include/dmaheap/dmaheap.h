/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

/**
 * libdmaheap: dma-buf allocation for vendor C and C++ HALs through the dmaheap-hal allocator
 * service, vendor.dmaheap.IHeapAllocator/default. C99.
 *
 * Link libdmaheap.a (a Rust static library; see libs/libdmaheap/BUILD-IN-VM.md and Android.bp).
 * C++ callers who used AOSP libdmabufheap can include <dmaheap/BufferAllocator.h> instead.
 *
 * Conventions
 * -----------
 * Every function returns a dma-buf fd (>= 0, O_CLOEXEC, owned by the caller, who close()s it)
 * or 0 on success, and -errno on failure. On failure errno is set to the same value and
 * dmaheap_last_error() describes it (the service's own message included), so that a caller can
 * log it. All functions are thread-safe.
 *
 * Arguments are checked before anything else: NULL pointers (except debug names), strings that
 * are not UTF-8, a length of 0 or above PTRDIFF_MAX, a batch count outside
 * 1..DMAHEAP_MAX_BATCH_COUNT, unknown sync flags or selector kinds give -EINVAL and no call is
 * made. A NULL debug name means "libdmaheap"; the service prefixes every name with the caller's
 * uid and pid and refuses empty, over-long (64 bytes) and non-printable ones (-EINVAL).
 *
 * Errors
 * ------
 * One table (libs/libdmaheap/src/errno.rs; a unit test checks this copy against it):
 *
 *   service error (IHeapAllocator.aidl)  errno         why this errno
 *   ERROR_BAD_ARGUMENT                   -EINVAL       the argument was wrong, as the kernel says
 *   ERROR_NO_SUCH_HEAP                   -ENOENT       what libdmabufheap returns when
 *                                                      /dev/dma_heap/<name> does not exist
 *   ERROR_UNSUPPORTED_USAGE              -EOPNOTSUPP   the request is valid, this device cannot
 *                                                      serve it (e.g. PROTECTED without a secure
 *                                                      heap); -ENOTSUP is the same value on Linux
 *   ERROR_OUT_OF_MEMORY                  -ENOMEM       what DMA_HEAP_IOCTL_ALLOC returns
 *   ERROR_QUOTA_EXCEEDED                 -EDQUOT       a per-call limit of the policy, not memory
 *                                                      pressure: retrying will not help; Linux
 *                                                      uses EDQUOT for non-disk quotas too (keys)
 *   ERROR_INTERNAL                       -EIO          the service failed in the kernel; the
 *                                                      message has the kernel's errno
 *   ERROR_BUSY                           -EBUSY        too many calls of this uid in flight; the
 *                                                      service already waited, so not -EAGAIN,
 *                                                      which callers tend to retry in a loop
 *   other service code (newer service)   -EIO
 *
 *   binder exception / status            errno
 *   EX_SECURITY                          -EACCES       the policy denies this caller the heap:
 *                                                      what open() of a heap node the caller
 *                                                      may not use gives libdmabufheap callers;
 *                                                      -EPERM stays for binder's own
 *                                                      PERMISSION_DENIED below
 *   EX_ILLEGAL_ARGUMENT                  -EINVAL
 *   EX_NULL_POINTER                      -EINVAL
 *   EX_UNSUPPORTED_OPERATION             -EOPNOTSUPP
 *   EX_BAD_PARCELABLE                    -EBADMSG
 *   other exception                      -EIO
 *   DEAD_OBJECT                          -EPIPE        the service died (libbinder's DEAD_OBJECT
 *                                                      is -EPIPE); only after the one retry
 *                                                      described below
 *   FAILED_TRANSACTION                   -EIO          also what an SELinux denial of the call
 *                                                      or of the fd in the reply looks like
 *   PERMISSION_DENIED                    -EPERM
 *   BAD_VALUE                            -EINVAL       the binder layer refused the parcel
 *   UNKNOWN_TRANSACTION                  -ENOSYS       the service does not implement the call
 *   other status                         the status itself when it is a negative errno
 *                                        (libbinder's status_t values are), else -EIO
 *
 *   the library's own                    errno
 *   bad argument                         -EINVAL       see "Arguments" above
 *   no binder driver                     -ENXIO        the binder device cannot be opened or
 *                                                      set up (wrong device, no binder)
 *   service not registered               -ENODEV       binder works, the service is not
 *                                                      registered within the wait
 *                                                      (dmaheap_set_service_wait_ms)
 *   malformed reply                      -EBADMSG      a reply without an fd, a batch of the
 *                                                      wrong size; nothing is handed out
 *   library bug                          -ENOTRECOVERABLE  a caught panic
 *
 * Kernel calls on the caller's fd (DMA_BUF_IOCTL_SYNC, DMA_BUF_SET_NAME) return the kernel's
 * errno unchanged: -EBADF for a closed or negative fd, -ENOTTY for an fd that is not a dma-buf.
 *
 * The service connection
 * ----------------------
 * The first call looks the service up (waiting up to dmaheap_set_service_wait_ms, 5 s by
 * default, for it to be registered) and caches the proxy for the whole process. A death
 * notification drops the cache as soon as the service dies; a call that still meets a dead
 * service (-EPIPE) drops the cache, looks the service up again and is made once more. That
 * retry is safe because the allocation calls are idempotent from the caller's point of view: a
 * call that failed handed out nothing, so making it again cannot hand out twice.
 *
 * Binder: a Rust HAL that already runs rsbinder keeps its own set-up. Otherwise the library
 * opens the binder device itself (rsbinder's default, /dev/binderfs/binder or /dev/binder) with
 * one looper thread for death notifications. The environment variable DMAHEAP_BINDER_DEVICE
 * names another device; it exists for the test bed, a device never sets it. A process that also
 * runs libbinder has two binder stacks, each on its own fd: see libs/libdmaheap/README.md.
 * Do not use the library in a child after fork() if the parent used it.
 */

#ifndef DMAHEAP_DMAHEAP_H_
#define DMAHEAP_DMAHEAP_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** DMA_BUF_SYNC_READ / _WRITE / _RW of linux/dma-buf.h, for dmaheap_cpu_sync_start/end. */
#define DMAHEAP_SYNC_READ 1u
#define DMAHEAP_SYNC_WRITE 2u
#define DMAHEAP_SYNC_RW 3u

/** IHeapAllocator.ION_FLAG_CACHED: ask an ION request for the cached variant of a heap. */
#define DMAHEAP_ION_FLAG_CACHED 1u

/** IHeapAllocator.MAX_BATCH_COUNT: the most buffers one dmaheap_alloc_batch call can ask for. */
#define DMAHEAP_MAX_BATCH_COUNT 64

/**
 * Allocates a zeroed buffer of at least len bytes (whole pages) for a gralloc usage
 * (android.hardware.graphics.common.BufferUsage bits); the vendor policy picks the heap.
 * Returns the dma-buf fd or -errno.
 */
int dmaheap_alloc_by_usage(uint64_t usage, size_t len, const char *debug_name);

/**
 * Allocates a zeroed buffer from the dma-buf heap heap_name (as under /dev/dma_heap), with no
 * fallback. The heap must be declared by the policy and present (-ENOENT) and allowed to the
 * caller (-EACCES). Returns the dma-buf fd or -errno.
 */
int dmaheap_alloc_from_heap(const char *heap_name, size_t len, const char *debug_name);

/**
 * Allocates a zeroed buffer the way ion_alloc_fd() did: bit n of heap_id_mask allows ION heap
 * id n (highest tried first), flags are ION flags (DMAHEAP_ION_FLAG_CACHED), align is 0 or a
 * power of two and otherwise ignored (heaps align to pages). An empty mask is -EINVAL, an id the
 * policy's ION table does not map -ENOENT. Returns the dma-buf fd or -errno.
 */
int dmaheap_alloc_ion(unsigned int heap_id_mask, unsigned int flags, size_t align, size_t len,
                      const char *debug_name);

/** struct dmaheap_selector kinds; 0 is invalid, so that a zeroed selector is refused. */
enum {
    DMAHEAP_BY_USAGE = 1,
    DMAHEAP_FROM_HEAP = 2,
    DMAHEAP_ION = 3
};

/** Where a batch comes from: the fields of its kind are read, the others ignored. */
struct dmaheap_selector {
    int kind;                      /* DMAHEAP_BY_USAGE, DMAHEAP_FROM_HEAP or DMAHEAP_ION */
    uint64_t usage;                /* DMAHEAP_BY_USAGE: BufferUsage bits */
    const char *heap_name;         /* DMAHEAP_FROM_HEAP */
    unsigned int ion_heap_id_mask; /* DMAHEAP_ION */
    unsigned int ion_flags;        /* DMAHEAP_ION */
    size_t ion_align;              /* DMAHEAP_ION */
};

/**
 * Allocates count buffers of len bytes from one selection, all or nothing: on success fds[0]
 * to fds[count - 1] are the caller's dma-buf fds (named "<debug_name>#<index>") and 0 is
 * returned; on failure no buffer exists and every fds[i] is -1 (except when fds is NULL or
 * count is out of range: then nothing is written). count is 1 to DMAHEAP_MAX_BATCH_COUNT (the
 * policy may allow fewer: -EINVAL).
 */
int dmaheap_alloc_batch(const struct dmaheap_selector *selector, size_t len, int count,
                        const char *debug_name, int *fds);

/**
 * Brackets CPU access to a mapped buffer: DMA_BUF_IOCTL_SYNC with SYNC_START (or SYNC_END) and
 * flags, which is DMAHEAP_SYNC_READ, _WRITE or _RW. The ioctl is restarted on EINTR and
 * EAGAIN, as the kernel's dma-buf documentation requires. End with the flags you started with.
 * Returns 0 or -errno (the kernel's). Works on any dma-buf, not only this library's.
 */
int dmaheap_cpu_sync_start(int dmabuf_fd, unsigned int flags);
int dmaheap_cpu_sync_end(int dmabuf_fd, unsigned int flags);

/**
 * Names the buffer for dmabuf_dump and /sys/kernel/debug/dma_buf (DMA_BUF_SET_NAME), replacing
 * the name the service gave it. name must be UTF-8; it is cut to the kernel's 31 bytes at a
 * character boundary. Returns 0 or -errno (the kernel's).
 */
int dmaheap_set_name(int dmabuf_fd, const char *name);

/**
 * The heaps the service can allocate from on this device: declared by the policy and present.
 * On success *names is an array of *count NUL-terminated strings (NULL and 0 when there are
 * none) to free with dmaheap_heap_list_free(); on failure *names is NULL and *count 0.
 */
int dmaheap_heap_list(char ***names, size_t *count);

/** Frees a dmaheap_heap_list() result; NULL is accepted. */
void dmaheap_heap_list_free(char **names, size_t count);

/**
 * Looks the service up now and caches it: 0 if it can be reached, else -errno. Optional; a HAL
 * may call it at start-up to find out early and to take the look-up off its first allocation.
 */
int dmaheap_connect(void);

/**
 * How long a look-up waits for the service to be registered: -1 without limit (like
 * AServiceManager_waitForService), 0 not at all, else milliseconds. Default 5000. Returns 0, or
 * -EINVAL for a value below -1.
 */
int dmaheap_set_service_wait_ms(int timeout_ms);

/**
 * What the last failed dmaheap_* call on this thread went wrong with, for a log line; "" after
 * a call that succeeded. Valid until the next dmaheap_* call on the same thread; never NULL.
 */
const char *dmaheap_last_error(void);

/**
 * For tests and debugging: how many service look-ups the library made, how many death
 * notifications it received and how many calls it made again after a dead object, since the
 * process started. Each pointer may be NULL.
 */
void dmaheap_debug_counters(uint64_t *lookups, uint64_t *deaths, uint64_t *retries);

/**
 * For tests and debugging: how many times the library asked the service whether it delegates a
 * request shape (IHeapAllocator.delegate, version 2), and how many buffers it allocated itself
 * from heaps the service delegated, since the process started. Each pointer may be NULL.
 *
 * dmaheap_alloc_by_usage and dmaheap_alloc_batch by usage ask once per (usage, size) and service
 * instance; when the answer is a heap, every later buffer of that shape is one
 * DMA_HEAP_IOCTL_ALLOC in this process, named here as the service names its buffers. Shapes the
 * policy does not delegate, heap-by-name and ION requests go to the service every time.
 */
void dmaheap_delegation_counters(uint64_t *asked, uint64_t *local_allocations);

/**
 * The same table for a HAL that calls the NDK backend of vendor.dmaheap itself: exception_code
 * from AStatus_getExceptionCode(); status from AStatus_getServiceSpecificError() for
 * EX_SERVICE_SPECIFIC (-8) or AStatus_getStatus() for EX_TRANSACTION_FAILED (-129), ignored for
 * other exceptions. Returns 0 for EX_NONE, else -errno. Makes no binder call.
 */
int dmaheap_errno_from_binder_status(int32_t exception_code, int32_t status);

#ifdef __cplusplus
}
#endif

#endif /* DMAHEAP_DMAHEAP_H_ */
