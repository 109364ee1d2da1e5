/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Headers the module's own bindgen run reads (see Kbuild). The 6.12 kernel crate's bindings do
 * not reach dma-buf, dma-heap, scatterlist, CMA, shrinker or kthread, and a GKI kernel will not
 * carry a patch adding them, so the module generates its own bindings against the KDIR headers.
 */
#include <linux/cma.h>
#include <linux/debugfs.h>
#include <linux/delay.h>
#include <linux/device.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/genalloc.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/ioport.h>
#include <linux/iosys-map.h>
#include <linux/kernfs.h>
#include <linux/kobject.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/moduleparam.h>
#include <linux/sched.h>
#include <linux/scatterlist.h>
#include <linux/shrinker.h>
#include <linux/sysfs.h>
#include <linux/vmalloc.h>

#include "helpers.h"

/* Constants bindgen cannot evaluate (casts, __force): give them a plain value. */
const gfp_t DMAHEAP_GFP_KERNEL = GFP_KERNEL;
const gfp_t DMAHEAP_GFP_HIGHUSER = GFP_HIGHUSER;
const gfp_t DMAHEAP_GFP_ZERO = __GFP_ZERO;
const gfp_t DMAHEAP_GFP_NOWARN = __GFP_NOWARN;
const gfp_t DMAHEAP_GFP_NORETRY = __GFP_NORETRY;
const gfp_t DMAHEAP_GFP_RECLAIM = __GFP_RECLAIM;
const gfp_t DMAHEAP_GFP_COMP = __GFP_COMP;
const unsigned long DMAHEAP_PAGE_SIZE = PAGE_SIZE;
const unsigned int DMAHEAP_PAGE_SHIFT = PAGE_SHIFT;
const unsigned long DMAHEAP_SHRINK_STOP = SHRINK_STOP;
const unsigned long DMAHEAP_SHRINK_EMPTY = SHRINK_EMPTY;
const unsigned long DMAHEAP_DMA_ATTR_SKIP_CPU_SYNC = DMA_ATTR_SKIP_CPU_SYNC;
const int DMAHEAP_NUMA_NO_NODE = NUMA_NO_NODE;
const unsigned long DMAHEAP_HZ = HZ;
const unsigned long DMAHEAP_IORESOURCE_SYSTEM_RAM = IORESOURCE_SYSTEM_RAM;
#ifdef CONFIG_CMA_ALIGNMENT
const unsigned int DMAHEAP_CMA_ALIGNMENT = CONFIG_CMA_ALIGNMENT;
#else
const unsigned int DMAHEAP_CMA_ALIGNMENT = 8;
#endif
const unsigned int DMAHEAP_TASK_INTERRUPTIBLE = TASK_INTERRUPTIBLE;
const unsigned int DMAHEAP_TASK_NORMAL = TASK_NORMAL;
