package testbed.smoke;

import testbed.smoke.SharedBuffer;

interface IBufferSmoke {
    /** Allocates from /dev/dma_heap/<heap> and keeps a reference to the buffer. */
    SharedBuffer allocate(@utf8InCpp String heap, long size);
    /** The byte sum of the last buffer allocated, read through the service's own mapping. */
    long sumOfLastBuffer();
    /**
     * The last buffer again, as a new fd: a binder round trip that passes one fd and allocates
     * nothing (the bench's baseline for the allocator HAL's fixed cost).
     */
    SharedBuffer lastBuffer();
}
