/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

/**
 * What a buffer is for, as gralloc's allocate() and Codec2's block pools know it: the vendor
 * policy's rules may key on every field, not only on the usage. Added in version 2.
 */
@VintfStability
parcelable BufferDescriptor {
    /** android.hardware.graphics.common.BufferUsage bits, as in allocateByUsage. */
    long usage;
    /**
     * android.hardware.graphics.common.PixelFormat, or FORMAT_UNSPECIFIED (0) for a buffer that
     * is not an image (a codec's linear block, a camera's metadata).
     */
    int format;
    /** Pixels; 0 when not an image. */
    int width;
    /** Pixels; 0 when not an image. */
    int height;
    /** Layers of an image; 0 when not an image. */
    int layerCount;
    /** Bytes, as computed by the caller (gralloc knows strides and planes); must be > 0. */
    long size;
    /**
     * The process the buffer is for, when the caller allocates on its behalf (gralloc for an
     * app): used for the buffer's owner record and the per-uid counters. Only the domains the
     * policy lists (gralloc's by default) may set them; anyone else gets EX_SECURITY. -1: the
     * caller itself.
     */
    int onBehalfOfPid = -1;
    /** The uid that goes with onBehalfOfPid; -1: the caller itself. */
    int onBehalfOfUid = -1;
}
