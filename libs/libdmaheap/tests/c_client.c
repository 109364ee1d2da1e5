/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * c_client: every function of <dmaheap/dmaheap.h> and every error path a normal client can
 * reach, against the live service in the test VM (service/policy/testbed.toml). Prints TAP and
 * exits non-zero when a test fails or the service cannot be reached.
 *
 *   c_client [--restart-cmd "<shell command>"] [--deny-uid UID]
 *
 * --restart-cmd: run between two allocations; the VM passes a command that kills the service and
 *   starts it again. The second allocation must succeed through a re-resolved proxy.
 * --deny-uid: the uid the policy lists on no restricted heap (default 10123); used, when run as
 *   root, by a child that execs this program again under that uid and must get -EACCES.
 * (internal) --denied-child HEAP: the child's part.
 *
 * Build: see libs/libdmaheap/BUILD-IN-VM.md.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dmaheap/dmaheap.h>

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* android.hardware.graphics.common.BufferUsage bits used here. */
#define USAGE_CPU_READ_OFTEN 0x3ull
#define USAGE_CPU_WRITE_OFTEN 0x30ull
#define USAGE_PROTECTED (1ull << 14)
#define USAGE_CAMERA_OUTPUT (1ull << 17)
#define USAGE_UNDEFINED_BIT10 (1ull << 10)
#define USAGE_COMPOSER_OVERLAY (1ull << 11)

static int test_number;
static int failures;

/* errno names for the messages (musl has no strerrorname_np). */
static const char *errno_name(int e) {
    switch (e) {
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOMEM: return "ENOMEM";
    case EDQUOT: return "EDQUOT";
    case EIO: return "EIO";
    case EBUSY: return "EBUSY";
    case EACCES: return "EACCES";
    case EPERM: return "EPERM";
    case EPIPE: return "EPIPE";
    case ENODEV: return "ENODEV";
    case ENXIO: return "ENXIO";
    case EBADF: return "EBADF";
    case ENOTTY: return "ENOTTY";
    case EBADMSG: return "EBADMSG";
    default: return "?";
    }
}

static void result(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void result(int ok, const char *fmt, ...) {
    va_list ap;
    test_number++;
    if (!ok) failures++;
    printf("%s %d - ", ok ? "ok" : "not ok", test_number);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (!ok) printf("#   last error: %s\n", dmaheap_last_error());
    fflush(stdout);
}

static void skip(const char *what, const char *why) {
    test_number++;
    printf("ok %d - %s # SKIP %s\n", test_number, what, why);
    fflush(stdout);
}

/* A call that must fail with -expected_errno and leave a message. */
static void expect_errno(int ret, int expected_errno, const char *what) {
    int ok = ret == -expected_errno && errno == expected_errno;
    result(ok, "%s: %d (expected -%s)", what, ret, errno_name(expected_errno));
    if (ret >= 0) close(ret);
    if (ok) printf("#   message: %s\n", dmaheap_last_error());
}

/* Maps fd, checks that its first len bytes are zero inside a read bracket. */
static int is_zeroed(int fd, size_t len) {
    unsigned char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        printf("#   mmap: %s\n", strerror(errno));
        return 0;
    }
    int ok = dmaheap_cpu_sync_start(fd, DMAHEAP_SYNC_READ) == 0;
    for (size_t i = 0; ok && i < len; i++) {
        if (p[i] != 0) {
            printf("#   byte %zu is %#x\n", i, p[i]);
            ok = 0;
        }
    }
    ok = dmaheap_cpu_sync_end(fd, DMAHEAP_SYNC_READ) == 0 && ok;
    munmap(p, len);
    return ok;
}

static off_t size_of(int fd) { return lseek(fd, 0, SEEK_END); }

static int fd_is_open(int fd) { return fcntl(fd, F_GETFD) != -1; }

/* The dma-buf's name as /proc/self/fdinfo shows it, or "" when the kernel does not show it. */
static void fdinfo_name(int fd, char *out, size_t out_len) {
    char path[64], line[128];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "name:", 5) == 0) {
            char *v = line + 5;
            while (*v == ' ' || *v == '\t') v++;
            v[strcspn(v, "\n")] = 0;
            snprintf(out, out_len, "%s", v);
        }
    }
    fclose(f);
}

static int in_list(char **names, size_t count, const char *name) {
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0) return 1;
    return 0;
}

/* The child of the EX_SECURITY test: one allocation from a restricted heap, exit code = errno. */
static int denied_child(const char *heap) {
    int fd = dmaheap_alloc_from_heap(heap, 4096, "c_client.denied");
    if (fd >= 0) {
        close(fd);
        return 0;
    }
    fprintf(stderr, "# child: %d: %s\n", fd, dmaheap_last_error());
    return -fd;
}

static void denied_heap_test(const char *self, char **names, size_t count, unsigned deny_uid) {
    static const char *restricted[] = {"kmod-cma", "reserved", "kmod-cma-uncached",
                                       "kmod-carveout"};
    const char *heap = NULL;
    for (size_t i = 0; i < sizeof restricted / sizeof *restricted && !heap; i++)
        if (in_list(names, count, restricted[i])) heap = restricted[i];
    if (!heap) {
        skip("a heap the policy denies to this uid is EX_SECURITY -> -EACCES",
             "no restricted heap present");
        return;
    }
    if (geteuid() != 0) {
        skip("a heap the policy denies to this uid is EX_SECURITY -> -EACCES",
             "not root: cannot switch uid");
        return;
    }
    /* Other uids must be able to open the binder device, as on Android (0666). */
    const char *dev = getenv("DMAHEAP_BINDER_DEVICE");
    if (!dev || !*dev) dev = access("/dev/binderfs/binder", F_OK) == 0 ? "/dev/binderfs/binder"
                                                                        : "/dev/binder";
    chmod(dev, 0666);
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(deny_uid) != 0 || setuid(deny_uid) != 0) _exit(200);
        execl(self, self, "--denied-child", heap, (char *)NULL);
        _exit(201);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    result(code == EACCES, "uid %u allocating from %s (denied by the policy) gets -EACCES: child "
           "exit %d", deny_uid, heap, code);
}

static void restart_test(const char *cmd) {
    const char *what = "an allocation after the service restarted succeeds (proxy re-resolved)";
    if (!cmd) {
        skip(what, "no --restart-cmd");
        return;
    }
    uint64_t lookups0 = 0, deaths0 = 0, retries0 = 0, lookups1 = 0, deaths1 = 0, retries1 = 0;
    uint64_t asked0 = 0, asked1 = 0;
    int before = dmaheap_alloc_by_usage(USAGE_CPU_READ_OFTEN, 4096, "c_client.before-restart");
    result(before >= 0, "allocation before the restart: fd %d", before);
    if (before >= 0) close(before);
    dmaheap_debug_counters(&lookups0, &deaths0, &retries0);
    dmaheap_delegation_counters(&asked0, NULL);
    printf("# running restart command: %s\n", cmd);
    fflush(stdout);
    int status = system(cmd);
    result(status == 0, "restart command exits 0 (status %d)", status);
    dmaheap_set_service_wait_ms(30000);
    int after = dmaheap_alloc_by_usage(USAGE_CPU_READ_OFTEN, 4096, "c_client.after-restart");
    result(after >= 0 && is_zeroed(after, 4096), "%s: fd %d", what, after);
    if (after >= 0) close(after);
    dmaheap_debug_counters(&lookups1, &deaths1, &retries1);
    dmaheap_delegation_counters(&asked1, NULL);
    result(asked1 > asked0, "the delegated heap of the dead service was dropped: the new one was "
           "asked (%llu -> %llu)", (unsigned long long)asked0, (unsigned long long)asked1);
    printf("# look-ups %llu -> %llu, death notifications %llu -> %llu, dead-object retries %llu "
           "-> %llu\n",
           (unsigned long long)lookups0, (unsigned long long)lookups1,
           (unsigned long long)deaths0, (unsigned long long)deaths1,
           (unsigned long long)retries0, (unsigned long long)retries1);
    result(lookups1 > lookups0, "the service was looked up again after it died");
    result(deaths1 > deaths0 || retries1 > retries0,
           "the death was noticed (by notification or by the one retry)");
    dmaheap_set_service_wait_ms(5000);
}

/* Delegated heaps (IHeapAllocator version 2): a shape the test-bed policy sends to a plain heap
 * is asked about once and then allocated in this process; one that goes to a contiguous heap
 * stays on the per-call path. */
static void delegation_test(void) {
    const uint64_t delegable = USAGE_CPU_READ_OFTEN | USAGE_CPU_WRITE_OFTEN;
    uint64_t asked0, local0, asked1, local1, asked2, local2;
    dmaheap_delegation_counters(&asked0, &local0);
    int fd1 = dmaheap_alloc_by_usage(delegable, 65536, "c_client.delegated");
    int fd2 = dmaheap_alloc_by_usage(delegable, 65536, "c_client.delegated");
    dmaheap_delegation_counters(&asked1, &local1);
    result(fd1 >= 0 && fd2 >= 0 && asked1 == asked0 + 1 && local1 == local0 + 2,
           "a delegated shape is asked about once, then both buffers are allocated in-process "
           "(asked %llu -> %llu, local %llu -> %llu)", (unsigned long long)asked0,
           (unsigned long long)asked1, (unsigned long long)local0, (unsigned long long)local1);
    if (fd2 >= 0) {
        char name[128];
        fdinfo_name(fd2, name, sizeof name);
        result(is_zeroed(fd2, 65536) && size_of(fd2) >= 65536 &&
                   strncmp(name, "c_client.delegated", 18) == 0,
               "an in-process buffer is zeroed, sized and named like the service's: \"%s\"",
               name);
    }
    if (fd1 >= 0) close(fd1);
    if (fd2 >= 0) close(fd2);

    int fd = dmaheap_alloc_by_usage(USAGE_COMPOSER_OVERLAY | USAGE_CPU_READ_OFTEN, 65536,
                                    "c_client.scanout");
    fd2 = dmaheap_alloc_by_usage(USAGE_COMPOSER_OVERLAY | USAGE_CPU_READ_OFTEN, 65536,
                                 "c_client.scanout");
    dmaheap_delegation_counters(&asked2, &local2);
    result(fd >= 0 && fd2 >= 0 && asked2 == asked1 + 1 && local2 == local1,
           "a shape the policy sends to a contiguous heap is asked about once and served per call "
           "(asked %llu -> %llu, local %llu -> %llu)", (unsigned long long)asked1,
           (unsigned long long)asked2, (unsigned long long)local1, (unsigned long long)local2);
    if (fd >= 0) close(fd);
    if (fd2 >= 0) close(fd2);
}

int main(int argc, char **argv) {
    const char *restart_cmd = NULL;
    unsigned deny_uid = 10123;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--restart-cmd") == 0 && i + 1 < argc) {
            restart_cmd = argv[++i];
        } else if (strcmp(argv[i], "--deny-uid") == 0 && i + 1 < argc) {
            deny_uid = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--denied-child") == 0 && i + 1 < argc) {
            return denied_child(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--restart-cmd CMD] [--deny-uid UID]\n", argv[0]);
            return 2;
        }
    }

    /* Functions that need no service. */
    result(dmaheap_errno_from_binder_status(-1, 0) == -EACCES &&
               dmaheap_errno_from_binder_status(-8, 2) == -ENOENT &&
               dmaheap_errno_from_binder_status(-129, -EPIPE) == -EPIPE &&
               dmaheap_errno_from_binder_status(0, 0) == 0,
           "dmaheap_errno_from_binder_status follows the table");
    expect_errno(dmaheap_set_service_wait_ms(-2), EINVAL, "service wait of -2 ms");
    result(dmaheap_set_service_wait_ms(5000) == 0 && dmaheap_last_error()[0] == 0,
           "service wait of 5000 ms, and a success clears the message");

    int ret = dmaheap_connect();
    if (ret != 0) {
        printf("not ok %d - connect to vendor.dmaheap.IHeapAllocator/default: %d (%s)\n",
               ++test_number, ret, errno_name(-ret));
        printf("Bail out! %s\n", dmaheap_last_error());
        return 1;
    }
    result(1, "dmaheap_connect");

    char **names = NULL;
    size_t count = 0;
    ret = dmaheap_heap_list(&names, &count);
    result(ret == 0 && count > 0 && names != NULL, "dmaheap_heap_list: %d heaps", (int)count);
    for (size_t i = 0; i < count; i++) printf("#   heap %s\n", names[i]);
    const char *system_heap = in_list(names, count, "system")        ? "system"
                              : in_list(names, count, "kmod-system") ? "kmod-system"
                                                                     : NULL;

    /* Allocations that succeed, each checked for zeroed memory. */
    const size_t mib = 1 << 20;
    int fd = dmaheap_alloc_by_usage(USAGE_CPU_READ_OFTEN | USAGE_CPU_WRITE_OFTEN, mib,
                                    "c_client.usage");
    result(fd >= 0 && size_of(fd) >= (off_t)mib, "dmaheap_alloc_by_usage 1 MiB: fd %d", fd);
    if (fd >= 0) {
        result(is_zeroed(fd, mib), "memory is zeroed after dmaheap_cpu_sync_start");
        unsigned char *p = mmap(NULL, mib, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        int ok = p != MAP_FAILED && dmaheap_cpu_sync_start(fd, DMAHEAP_SYNC_RW) == 0;
        if (ok) {
            memset(p, 0xa5, mib);
            ok = dmaheap_cpu_sync_end(fd, DMAHEAP_SYNC_RW) == 0;
            ok = ok && dmaheap_cpu_sync_start(fd, DMAHEAP_SYNC_READ) == 0 && p[mib - 1] == 0xa5;
            ok = ok && dmaheap_cpu_sync_end(fd, DMAHEAP_SYNC_READ) == 0;
            ok = ok && dmaheap_cpu_sync_start(fd, DMAHEAP_SYNC_WRITE) == 0 &&
                 dmaheap_cpu_sync_end(fd, DMAHEAP_SYNC_WRITE) == 0;
        }
        if (p != MAP_FAILED) munmap(p, mib);
        result(ok, "write and read back under sync RW / READ / WRITE brackets");

        char name[128];
        ret = dmaheap_set_name(fd, "c_client.renamed");
        fdinfo_name(fd, name, sizeof name);
        result(ret == 0 && strcmp(name, "c_client.renamed") == 0,
               "dmaheap_set_name: %d, fdinfo name \"%s\"", ret, name);
        ret = dmaheap_set_name(fd, "a-name-that-is-longer-than-thirty-one-bytes");
        fdinfo_name(fd, name, sizeof name);
        result(ret == 0 && strlen(name) == 31 &&
                   strncmp(name, "a-name-that-is-longer-than-thirty-one-bytes", 31) == 0,
               "a long name is cut to 31 bytes: %d, \"%s\"", ret, name);
        expect_errno(dmaheap_set_name(fd, NULL), EINVAL, "dmaheap_set_name(NULL)");
        expect_errno(dmaheap_cpu_sync_start(fd, 0), EINVAL, "sync flags 0");
        expect_errno(dmaheap_cpu_sync_end(fd, 4), EINVAL, "sync flags 4 (SYNC_END is implied)");
        close(fd);
    }

    if (system_heap) {
        fd = dmaheap_alloc_from_heap(system_heap, 8192, NULL);
        result(fd >= 0 && is_zeroed(fd, 8192), "dmaheap_alloc_from_heap(%s, 8 KiB, NULL): fd %d",
               system_heap, fd);
        if (fd >= 0) close(fd);
    } else {
        skip("dmaheap_alloc_from_heap", "neither system nor kmod-system is present");
    }

    fd = dmaheap_alloc_ion(1u << 0, DMAHEAP_ION_FLAG_CACHED, 0, 65536, "c_client.ion");
    result(fd >= 0 && is_zeroed(fd, 65536), "dmaheap_alloc_ion(ION_HEAP_TYPE_SYSTEM, CACHED): "
           "fd %d", fd);
    if (fd >= 0) close(fd);
    fd = dmaheap_alloc_ion(1u << 25, 0, 4096, 4096, "c_client.ion-vendor");
    result(fd >= 0, "dmaheap_alloc_ion(vendor id 25, align 4096): fd %d", fd);
    if (fd >= 0) close(fd);

    /* Batches. */
    int fds[DMAHEAP_MAX_BATCH_COUNT + 1];
    struct dmaheap_selector by_usage = {.kind = DMAHEAP_BY_USAGE,
                                        .usage = USAGE_CPU_READ_OFTEN | USAGE_CAMERA_OUTPUT};
    ret = dmaheap_alloc_batch(&by_usage, 65536, 4, "c_client.batch", fds);
    int ok = ret == 0;
    for (int i = 0; ok && i < 4; i++) {
        ok = fds[i] >= 0 && is_zeroed(fds[i], 65536);
        for (int j = 0; j < i; j++) ok = ok && fds[i] != fds[j];
    }
    result(ok, "dmaheap_alloc_batch by usage, 4 x 64 KiB: %d", ret);
    for (int i = 0; ret == 0 && i < 4; i++) close(fds[i]);
    if (system_heap) {
        struct dmaheap_selector from_heap = {.kind = DMAHEAP_FROM_HEAP, .heap_name = system_heap};
        ret = dmaheap_alloc_batch(&from_heap, 4096, 2, NULL, fds);
        result(ret == 0 && fds[0] >= 0 && fds[1] >= 0, "dmaheap_alloc_batch from %s, 2: %d",
               system_heap, ret);
        for (int i = 0; ret == 0 && i < 2; i++) close(fds[i]);
    } else {
        skip("dmaheap_alloc_batch from a heap", "no system heap");
    }
    struct dmaheap_selector ion = {.kind = DMAHEAP_ION, .ion_heap_id_mask = 1u << 0};
    ret = dmaheap_alloc_batch(&ion, 4096, 2, "c_client.ion-batch", fds);
    result(ret == 0 && fds[0] >= 0 && fds[1] >= 0, "dmaheap_alloc_batch ION, 2: %d", ret);
    for (int i = 0; ret == 0 && i < 2; i++) close(fds[i]);

    /* Errors the service reports. */
    expect_errno(dmaheap_alloc_from_heap("no-such-heap", 4096, "c_client"), ENOENT,
                 "unknown heap (ERROR_NO_SUCH_HEAP)");
    result(strstr(dmaheap_last_error(), "ERROR_NO_SUCH_HEAP") != NULL,
           "the message names the service's error");
    expect_errno(dmaheap_alloc_by_usage(USAGE_CPU_READ_OFTEN, (size_t)1 << 30, "c_client"),
                 EINVAL, "1 GiB, above the policy's limit (ERROR_BAD_ARGUMENT)");
    expect_errno(dmaheap_alloc_ion(0, 0, 0, 4096, "c_client"), EINVAL,
                 "empty ION mask (ERROR_BAD_ARGUMENT)");
    expect_errno(dmaheap_alloc_ion(1u << 7, 0, 0, 4096, "c_client"), ENOENT,
                 "ION id 7, not in the policy's table (ERROR_NO_SUCH_HEAP)");
    expect_errno(dmaheap_alloc_ion(1u << 0, 0, 3, 4096, "c_client"), EINVAL,
                 "ION alignment 3 (ERROR_BAD_ARGUMENT)");
    expect_errno(dmaheap_alloc_by_usage(USAGE_UNDEFINED_BIT10, 4096, "c_client"), EOPNOTSUPP,
                 "usage bit 10, undefined (ERROR_UNSUPPORTED_USAGE)");
    expect_errno(dmaheap_alloc_by_usage(USAGE_PROTECTED, 4096, "c_client"), EOPNOTSUPP,
                 "PROTECTED without a secure heap (ERROR_UNSUPPORTED_USAGE)");
    /* A debug name is never a reason to fail: the service cleans it for the kernel. */
    {
        char name[128];
        fd = dmaheap_alloc_by_usage(USAGE_CPU_READ_OFTEN, 4096, "");
        fdinfo_name(fd, name, sizeof name);
        result(fd >= 0 && name[0] != 0, "an empty debug name is served, named after the heap: "
               "\"%s\"", name);
        if (fd >= 0) close(fd);
        fd = dmaheap_alloc_by_usage(USAGE_CPU_READ_OFTEN, 4096, "tab\there");
        fdinfo_name(fd, name, sizeof name);
        result(fd >= 0 && strncmp(name, "tab_here", 8) == 0,
               "a control character in the name becomes '_' in the kernel's name: \"%s\"", name);
        if (fd >= 0) close(fd);
    }
    ret = dmaheap_alloc_batch(&by_usage, 16 << 20, DMAHEAP_MAX_BATCH_COUNT, "c_client", fds);
    ok = ret == -EDQUOT;
    for (int i = 0; i < DMAHEAP_MAX_BATCH_COUNT; i++) ok = ok && fds[i] == -1;
    result(ok, "64 x 16 MiB, above the policy's request limit (ERROR_QUOTA_EXCEEDED): %d, "
           "every fd -1", ret);
    if (ok) printf("#   message: %s\n", dmaheap_last_error());

    /* Errors the library reports before any call. */
    expect_errno(dmaheap_alloc_by_usage(USAGE_CPU_READ_OFTEN, 0, "c_client"), EINVAL, "size 0");
    expect_errno(dmaheap_alloc_from_heap(NULL, 4096, "c_client"), EINVAL, "NULL heap name");
    expect_errno(dmaheap_alloc_from_heap("sys\xff", 4096, "c_client"), EINVAL,
                 "heap name that is not UTF-8");
    expect_errno(dmaheap_alloc_by_usage(USAGE_CPU_READ_OFTEN, (size_t)PTRDIFF_MAX + 1, NULL),
                 EINVAL, "size above PTRDIFF_MAX");
    fds[0] = fds[1] = 42;
    expect_errno(dmaheap_alloc_batch(&by_usage, 4096, 0, NULL, fds), EINVAL, "batch count 0");
    expect_errno(dmaheap_alloc_batch(&by_usage, 4096, -1, NULL, fds), EINVAL, "batch count -1");
    expect_errno(dmaheap_alloc_batch(&by_usage, 4096, DMAHEAP_MAX_BATCH_COUNT + 1, NULL, fds),
                 EINVAL, "batch count 65");
    expect_errno(dmaheap_alloc_batch(NULL, 4096, 1, NULL, fds), EINVAL, "NULL selector");
    struct dmaheap_selector zeroed = {0};
    expect_errno(dmaheap_alloc_batch(&zeroed, 4096, 1, NULL, fds), EINVAL,
                 "zeroed selector (kind 0)");
    expect_errno(dmaheap_cpu_sync_start(-1, DMAHEAP_SYNC_READ), EBADF, "sync on fd -1");
    int pipe_fds[2];
    if (pipe(pipe_fds) == 0) {
        ret = dmaheap_cpu_sync_start(pipe_fds[0], DMAHEAP_SYNC_READ);
        result((ret == -ENOTTY || ret == -ESPIPE) && fd_is_open(pipe_fds[0]),
               "sync on a pipe: %d, and the pipe stays open", ret);
        close(pipe_fds[0]);
        close(pipe_fds[1]);
    }

    delegation_test();
    denied_heap_test("/proc/self/exe", names, count, deny_uid);
    dmaheap_heap_list_free(names, count);
    dmaheap_heap_list_free(NULL, 0);

    restart_test(restart_cmd);

    printf("1..%d\n", test_number);
    if (failures) printf("# %d of %d failed\n", failures, test_number);
    return failures ? 1 : 0;
}
