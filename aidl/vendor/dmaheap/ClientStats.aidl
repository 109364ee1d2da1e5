/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

/**
 * Counters for one calling uid since the service started.
 */
@VintfStability
parcelable ClientStats {
    int uid;
    /** Buffers handed out to this uid. */
    long allocations;
    /** Bytes handed out to this uid, in whole pages. */
    long bytes;
    /** Requests from this uid that ended in an error of any kind. */
    long errors;
}
