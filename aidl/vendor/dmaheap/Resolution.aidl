/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */

package vendor.dmaheap;

/**
 * Where a request would be served, and why, computed without allocating anything.
 */
@VintfStability
parcelable Resolution {
    /** The heap that would be tried first: the first present heap among the candidates. */
    @utf8InCpp String heapName;
    /**
     * Every heap the request may use, in the order the service tries them at allocation time
     * (policy fallbacks, or ION priority order). Heaps absent from this device are left out.
     */
    @utf8InCpp String[] candidates;
    /** The name of the policy rule (or ION table entry) that matched. */
    @utf8InCpp String rule;
    /** A readable explanation, e.g. which bits matched and which heaps were absent. */
    @utf8InCpp String reason;
}
