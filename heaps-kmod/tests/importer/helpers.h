/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C forwarders for the static-inline kernel functions and macros the test importer calls and
 * bindgen cannot turn into symbols. No logic lives here: each helper is the one call it names.
 */
#ifndef DMAHEAP_TEST_IMPORTER_HELPERS_H
#define DMAHEAP_TEST_IMPORTER_HELPERS_H

#include <linux/types.h>
#include <linux/dma-direction.h>
#include <linux/pgtable.h>

struct device;
struct module;
struct page;
struct scatterlist;
struct sg_table;

struct device *importer_root_device_register(const char *name);
int importer_dma_coerce_mask_and_coherent(struct device *dev, u64 mask);
bool importer_dev_is_dma_coherent(struct device *dev);
dma_addr_t importer_sg_dma_address(struct scatterlist *sg);
unsigned int importer_sg_dma_len(struct scatterlist *sg);
phys_addr_t importer_dma_to_phys(struct device *dev, dma_addr_t addr);
struct page *importer_pfn_to_page(unsigned long pfn);
pgprot_t importer_device_pgprot(bool coherent);
void importer_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				       enum dma_data_direction dir);
struct module *importer_this_module(void);
void importer_cond_resched(void);

#endif
