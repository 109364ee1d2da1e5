package testbed.smoke;

/** A dma-buf handed across binder, as the allocator HAL will hand them. */
parcelable SharedBuffer {
    ParcelFileDescriptor fd;
    long size;
    @utf8InCpp String heap;
}
