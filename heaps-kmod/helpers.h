/* SPDX-License-Identifier: GPL-2.0 */
/*
 * C wrappers for static-inline kernel functions and macros that bindgen cannot turn into
 * callable symbols, in the spirit of the kernel's rust/helpers/. No logic lives here: each
 * helper is a one-line forward to the kernel API of the same name.
 */
#ifndef DMAHEAP_HELPERS_H
#define DMAHEAP_HELPERS_H

#include <linux/types.h>
#include <linux/dma-direction.h>
#include <linux/pgtable.h>
#include <linux/spinlock_types.h>

struct page;
struct scatterlist;
struct sg_table;
struct device;
struct iosys_map;
struct module;
struct resource;
struct gen_pool;
struct lock_class_key;
struct mutex;

/* kapi/: locks and allocations, whose kernel API is macros and static inlines. */
void dmaheap_spin_lock_init(spinlock_t *lock, const char *name, struct lock_class_key *key);
void dmaheap_spin_lock(spinlock_t *lock);
void dmaheap_spin_unlock(spinlock_t *lock);
void dmaheap_mutex_lock(struct mutex *lock);
void *dmaheap_kmalloc(size_t size, gfp_t gfp);
void *dmaheap_kvmalloc(size_t size, gfp_t gfp);

struct page *dmaheap_alloc_pages(gfp_t gfp, unsigned int order);
struct page *dmaheap_nth_page(struct page *page, unsigned long n);
unsigned long dmaheap_page_to_pfn(struct page *page);
void dmaheap_clear_highpage(struct page *page);
void *dmaheap_page_address(struct page *page);
struct page *dmaheap_sg_page(struct scatterlist *sg);
void dmaheap_sg_set_page(struct scatterlist *sg, struct page *page, unsigned int len,
			 unsigned int offset);
bool dmaheap_fatal_signal_pending(void);
void dmaheap_module_get(void);
struct module *dmaheap_this_module(void);
pgprot_t dmaheap_pgprot_writecombine(pgprot_t prot);
pgprot_t dmaheap_page_kernel(bool writecombine);
void dmaheap_invalidate_kernel_vmap_range(void *vaddr, int size);
void dmaheap_flush_kernel_vmap_range(void *vaddr, int size);
void dmaheap_dma_unmap_sgtable(struct device *dev, struct sg_table *sgt,
			       enum dma_data_direction dir, unsigned long attrs);
void dmaheap_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				      enum dma_data_direction dir);
void dmaheap_dma_sync_sgtable_for_device(struct device *dev, struct sg_table *sgt,
					 enum dma_data_direction dir);
int dmaheap_dma_coerce_mask_and_coherent(struct device *dev, u64 mask);
void dmaheap_iosys_map_set_vaddr(struct iosys_map *map, void *vaddr);
void dmaheap_iosys_map_clear(struct iosys_map *map);
void dmaheap_cond_resched(void);
void dmaheap_mm_account_reclaimed_pages(unsigned long pages);
int dmaheap_dma_mapping_error(struct device *dev, dma_addr_t addr);
dma_addr_t dmaheap_sg_dma_address(struct scatterlist *sg);
unsigned int dmaheap_sg_dma_len(struct scatterlist *sg);
void dmaheap_sg_set_dma(struct scatterlist *sg, dma_addr_t addr, unsigned int len);
struct resource *dmaheap_request_mem_region(resource_size_t start, resource_size_t n,
					   const char *name);
void dmaheap_release_mem_region(resource_size_t start, resource_size_t n);
/* genalloc: NULL / -ENODEV when the kernel has no CONFIG_GENERIC_ALLOCATOR. */
bool dmaheap_have_genalloc(void);
struct gen_pool *dmaheap_gen_pool_create(int min_alloc_order, int nid);
void dmaheap_gen_pool_destroy(struct gen_pool *pool);
int dmaheap_gen_pool_add(struct gen_pool *pool, unsigned long addr, size_t size, int nid);
unsigned long dmaheap_gen_pool_alloc(struct gen_pool *pool, size_t size);
void dmaheap_gen_pool_free(struct gen_pool *pool, unsigned long addr, size_t size);
unsigned int dmaheap_dma_get_max_seg_size(struct device *dev);
unsigned long dmaheap_totalram_pages(void);
void dmaheap_mod_reclaimable(struct page *page, long nr_pages);
bool dmaheap_current_is_reclaiming(void);
bool dmaheap_use_dma_iommu(struct device *dev);
bool dmaheap_has_dma_ops(struct device *dev);
dma_addr_t dmaheap_phys_to_dma(struct device *dev, phys_addr_t paddr);
unsigned long dmaheap_dma_get_seg_boundary(struct device *dev);

#endif
