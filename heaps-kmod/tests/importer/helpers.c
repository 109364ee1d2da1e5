// SPDX-License-Identifier: GPL-2.0
/*
 * Forwarders for static-inline kernel functions and macros used by the test importer (see
 * helpers.h). Each body is the single call it names.
 */
#include <linux/device.h>
#include <linux/dma-direct.h>
#include <linux/dma-map-ops.h>
#include <linux/dma-mapping.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>

#include "helpers.h"

struct device *importer_root_device_register(const char *name)
{
	return root_device_register(name);
}

int importer_dma_coerce_mask_and_coherent(struct device *dev, u64 mask)
{
	return dma_coerce_mask_and_coherent(dev, mask);
}

bool importer_dev_is_dma_coherent(struct device *dev)
{
	return dev_is_dma_coherent(dev);
}

dma_addr_t importer_sg_dma_address(struct scatterlist *sg)
{
	return sg_dma_address(sg);
}

unsigned int importer_sg_dma_len(struct scatterlist *sg)
{
	return sg_dma_len(sg);
}

phys_addr_t importer_dma_to_phys(struct device *dev, dma_addr_t addr)
{
	return dma_to_phys(dev, addr);
}

struct page *importer_pfn_to_page(unsigned long pfn)
{
	return pfn_to_page(pfn);
}

/* The attributes the DMA API itself gives a device's view of memory (dma_alloc remaps). */
pgprot_t importer_device_pgprot(bool coherent)
{
	return coherent ? PAGE_KERNEL : pgprot_dmacoherent(PAGE_KERNEL);
}

void importer_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				       enum dma_data_direction dir)
{
	dma_sync_sgtable_for_cpu(dev, sgt, dir);
}

struct module *importer_this_module(void)
{
	return THIS_MODULE;
}

void importer_cond_resched(void)
{
	cond_resched();
}
