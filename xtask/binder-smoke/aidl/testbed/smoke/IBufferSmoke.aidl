package testbed.smoke;

import testbed.smoke.SharedBuffer;

interface IBufferSmoke {
    /** Allocates from /dev/dma_heap/<heap> and keeps a reference to the buffer. */
    SharedBuffer allocate(@utf8InCpp String heap, long size);
    /** The byte sum of the last buffer allocated, read through the service's own mapping. */
    long sumOfLastBuffer();
}
