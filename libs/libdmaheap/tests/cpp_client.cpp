/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 *
 * cpp_client: the libdmabufheap-shaped BufferAllocator of <dmaheap/BufferAllocator.h>, every
 * method and the error paths a normal client reaches, against the live service in the test VM
 * (service/policy/testbed.toml). Written the way a libdmabufheap caller writes it: unqualified
 * BufferAllocator, kSyncRead... Prints TAP; exits non-zero on a failure.
 *
 * Build: see libs/libdmaheap/BUILD-IN-VM.md.
 */

#include <dmaheap/BufferAllocator.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

namespace {

int test_number = 0;
int failures = 0;

void Result(bool ok, const std::string& what) {
    ++test_number;
    if (!ok) ++failures;
    std::printf("%s %d - %s\n", ok ? "ok" : "not ok", test_number, what.c_str());
    if (!ok) std::printf("#   last error: %s\n", BufferAllocator::LastError().c_str());
    std::fflush(stdout);
}

void Skip(const std::string& what, const char* why) {
    std::printf("ok %d - %s # SKIP %s\n", ++test_number, what.c_str(), why);
}

void ExpectErrno(int ret, int expected, const std::string& what) {
    bool ok = ret == -expected && errno == expected;
    Result(ok, what + ": " + std::to_string(ret) + " (expected -" + std::to_string(expected) + ")");
    if (ret >= 0) close(ret);
    if (ok) std::printf("#   message: %s\n", BufferAllocator::LastError().c_str());
}

/* Zero check inside a CpuSyncStart/CpuSyncEnd read bracket, then a write round trip. */
bool ZeroedAndWritable(BufferAllocator& allocator, int fd, size_t len) {
    void* map = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) return false;
    auto* p = static_cast<unsigned char*>(map);
    bool ok = allocator.CpuSyncStart(fd) == 0;  // kSyncRead by default, as in libdmabufheap
    for (size_t i = 0; ok && i < len; i++) ok = p[i] == 0;
    ok = allocator.CpuSyncEnd(fd) == 0 && ok;
    ok = ok && allocator.CpuSyncStart(fd, kSyncReadWrite) == 0;
    if (ok) {
        std::memset(p, 0x5a, len);
        ok = allocator.CpuSyncEnd(fd, kSyncReadWrite) == 0;
    }
    ok = ok && allocator.CpuSyncStart(fd, kSyncWrite, nullptr, nullptr) == 0 &&
         allocator.CpuSyncEnd(fd, kSyncWrite, nullptr, nullptr) == 0;
    munmap(map, len);
    return ok;
}

}  // namespace

int main() {
    BufferAllocator allocator;
    dmaheap::BufferAllocator named("cpp_client");

    Result(!BufferAllocator::CheckIonSupport(), "CheckIonSupport() is false");
    Result(allocator.MapNameToIonHeap("system", "", 0, 1, 0) == 0, "MapNameToIonHeap is a no-op");

    auto heaps = BufferAllocator::GetDmabufHeapList();
    if (heaps.empty()) {
        std::printf("not ok %d - GetDmabufHeapList() is empty\n", ++test_number);
        std::printf("Bail out! %s\n", BufferAllocator::LastError().c_str());
        return 1;
    }
    Result(true, "GetDmabufHeapList(): " + std::to_string(heaps.size()) + " heaps");
    for (const auto& h : heaps) std::printf("#   heap %s\n", h.c_str());
    const std::string system_heap = heaps.count(kDmabufSystemHeapName) ? kDmabufSystemHeapName
                                    : heaps.count("kmod-system")       ? "kmod-system"
                                                                       : "";

    const size_t len = 256 * 1024;
    if (!system_heap.empty()) {
        int fd = allocator.Alloc(system_heap, len);
        Result(fd >= 0 && lseek(fd, 0, SEEK_END) >= static_cast<off_t>(len),
               "Alloc(" + system_heap + ", 256 KiB): fd " + std::to_string(fd));
        if (fd >= 0) {
            Result(ZeroedAndWritable(allocator, fd, len),
                   "zeroed after CpuSyncStart, writable under kSyncReadWrite");
            Result(BufferAllocator::DmabufSetName(fd, "cpp_client.renamed") == 0,
                   "DmabufSetName");
            close(fd);
        }
        fd = allocator.Alloc(system_heap, 4096, /*heap_flags=*/0, /*legacy_align=*/4096);
        Result(fd >= 0, "Alloc with heap_flags and legacy_align (ignored)");
        if (fd >= 0) close(fd);
    } else {
        Skip("Alloc from the system heap", "no system heap");
    }

    int fd = allocator.AllocSystem(/*cpu_access_needed=*/true, len);
    Result(fd >= 0, "AllocSystem(cpu access): fd " + std::to_string(fd));
    if (fd >= 0) close(fd);
    fd = allocator.AllocSystem(/*cpu_access_needed=*/false, len);
    Result(fd >= 0, "AllocSystem(no cpu access): fd " + std::to_string(fd));
    if (fd >= 0) close(fd);

    const uint64_t kCpuReadWriteOften = 0x33;
    fd = named.AllocByUsage(kCpuReadWriteOften, len);
    Result(fd >= 0 && ZeroedAndWritable(named, fd, len),
           "AllocByUsage(CPU_READ_OFTEN|CPU_WRITE_OFTEN), zeroed: fd " + std::to_string(fd));
    if (fd >= 0) close(fd);
    fd = named.AllocIon(1u << 0, DMAHEAP_ION_FLAG_CACHED, 65536);
    Result(fd >= 0, "AllocIon(ION_HEAP_TYPE_SYSTEM, CACHED): fd " + std::to_string(fd));
    if (fd >= 0) close(fd);

    ExpectErrno(allocator.Alloc("no-such-heap", 4096), ENOENT, "Alloc(unknown heap)");
    ExpectErrno(allocator.Alloc(system_heap.empty() ? "system" : system_heap, 0), EINVAL,
                "Alloc(len 0)");
    ExpectErrno(allocator.Alloc(std::string("sys\xff"), 4096), EINVAL, "Alloc(non-UTF-8 name)");
    ExpectErrno(named.AllocByUsage(1u << 10, 4096), EOPNOTSUPP, "AllocByUsage(undefined bit)");
    ExpectErrno(named.AllocIon(0, 0, 4096), EINVAL, "AllocIon(empty mask)");
    ExpectErrno(allocator.CpuSyncStart(static_cast<unsigned int>(-1)), EBADF,
                "CpuSyncStart(bad fd)");
    ExpectErrno(allocator.CpuSyncEnd(1000000), EBADF, "CpuSyncEnd(closed fd)");
    ExpectErrno(BufferAllocator::DmabufSetName(1000000, "x"), EBADF, "DmabufSetName(closed fd)");

    std::printf("1..%d\n", test_number);
    if (failures) std::printf("# %d of %d failed\n", failures, test_number);
    return failures ? 1 : 0;
}
