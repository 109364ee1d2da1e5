/*
 * Copyright (C) 2026 The dmaheap-hal Authors
 * SPDX-License-Identifier: Apache-2.0
 */
///////////////////////////////////////////////////////////////////////////////
// FROZEN AIDL API SNAPSHOT. DO NOT EDIT.                                    //
///////////////////////////////////////////////////////////////////////////////

// Written by `cargo run -p android-checks --bin aidl-api` (or Soong's
// `m <module>-update-api` / `m <module>-freeze-api`) from the sources of the
// aidl_interface. A numbered directory is a released version: devices in the
// field implement or call it, so it never changes. Change the interface in the
// sources, then update `current/` and, when the change is ready to ship, freeze
// it as the next version.

package vendor.dmaheap;
@VintfStability
parcelable AllocatorStats {
    vendor.dmaheap.HeapStats[] heaps;
    vendor.dmaheap.ClientStats[] clients;
    @utf8InCpp String policyPath;
}
