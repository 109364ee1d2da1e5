/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers the test importer's own bindgen run reads (see Kbuild): dma-buf, the DMA API,
 * scatterlists, vmap/memremap and misc devices, none of which the 6.12 kernel crate binds;
 * dma-direct.h for `struct bus_dma_region`.
 */
#include <linux/device.h>
#include <linux/dma-buf.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/io.h>
#include <linux/ioport.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/scatterlist.h>
#include <linux/vmalloc.h>

#include "helpers.h"

/* Constants bindgen cannot evaluate (casts, __force): give them a plain value. */
const unsigned long IMPORTER_PAGE_SIZE = PAGE_SIZE;
const unsigned int IMPORTER_PAGE_SHIFT = PAGE_SHIFT;
const int IMPORTER_MISC_DYNAMIC_MINOR = MISC_DYNAMIC_MINOR;
const unsigned long IMPORTER_MEMREMAP_WC = MEMREMAP_WC;
