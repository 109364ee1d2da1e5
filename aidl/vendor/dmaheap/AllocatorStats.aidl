/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

import vendor.dmaheap.ClientStats;
import vendor.dmaheap.HeapStats;

/**
 * The service's counters, as `dumpsys` shows them.
 */
@VintfStability
parcelable AllocatorStats {
    /** One entry per heap that the policy names, sorted by name. */
    HeapStats[] heaps;
    /** One entry per uid that has called the service, sorted by uid. */
    ClientStats[] clients;
    /** The policy file in use. */
    @utf8InCpp String policyPath;
}
