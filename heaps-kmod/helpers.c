// SPDX-License-Identifier: GPL-2.0
/*
 * Forwarders for static-inline kernel functions and macros used by the Rust heaps
 * (see helpers.h). Each body is the single call it names.
 */
#include <linux/device.h>
#include <linux/dma-direct.h>
#include <linux/dma-map-ops.h>
#include <linux/iommu-dma.h>
#include <linux/dma-mapping.h>
#include <linux/err.h>
#include <linux/genalloc.h>
#include <linux/gfp.h>
#include <linux/ioport.h>
#include <linux/highmem.h>
#include <linux/iosys-map.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/vmstat.h>
#include <linux/swap.h>
#include <linux/scatterlist.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/mutex.h>

#include "helpers.h"

/*
 * spin_lock_init() declares a lock class key of its own at each call site; the Rust side keeps
 * one static key per call site instead and passes it here, so lockdep tells its locks apart.
 * Without CONFIG_DEBUG_SPINLOCK the lock is a plain initialiser and takes no key.
 */
void dmaheap_spin_lock_init(spinlock_t *lock, const char *name, struct lock_class_key *key)
{
#ifdef CONFIG_DEBUG_SPINLOCK
	__raw_spin_lock_init(spinlock_check(lock), name, key, LD_WAIT_CONFIG);
#else
	spin_lock_init(lock);
#endif
}

void dmaheap_spin_lock(spinlock_t *lock)
{
	spin_lock(lock);
}

void dmaheap_spin_unlock(spinlock_t *lock)
{
	spin_unlock(lock);
}

/* mutex_lock() is a macro for mutex_lock_nested() under lockdep, a function otherwise. */
void dmaheap_mutex_lock(struct mutex *lock)
{
	mutex_lock(lock);
}

void *dmaheap_kmalloc(size_t size, gfp_t gfp)
{
	return kmalloc(size, gfp);
}

void *dmaheap_kvmalloc(size_t size, gfp_t gfp)
{
	return kvmalloc(size, gfp);
}

struct page *dmaheap_alloc_pages(gfp_t gfp, unsigned int order)
{
	return alloc_pages(gfp, order);
}

struct page *dmaheap_nth_page(struct page *page, unsigned long n)
{
	return nth_page(page, n);
}

unsigned long dmaheap_page_to_pfn(struct page *page)
{
	return page_to_pfn(page);
}

void *dmaheap_page_address(struct page *page)
{
	return page_address(page);
}

void dmaheap_clear_highpage(struct page *page)
{
	clear_highpage(page);
}

struct page *dmaheap_sg_page(struct scatterlist *sg)
{
	return sg_page(sg);
}

void dmaheap_sg_set_page(struct scatterlist *sg, struct page *page, unsigned int len,
			 unsigned int offset)
{
	sg_set_page(sg, page, len, offset);
}

bool dmaheap_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}

void dmaheap_module_get(void)
{
	__module_get(THIS_MODULE);
}

struct module *dmaheap_this_module(void)
{
	return THIS_MODULE;
}

pgprot_t dmaheap_pgprot_writecombine(pgprot_t prot)
{
	return pgprot_writecombine(prot);
}

pgprot_t dmaheap_page_kernel(bool writecombine)
{
	return writecombine ? pgprot_writecombine(PAGE_KERNEL) : PAGE_KERNEL;
}

void dmaheap_invalidate_kernel_vmap_range(void *vaddr, int size)
{
	invalidate_kernel_vmap_range(vaddr, size);
}

void dmaheap_flush_kernel_vmap_range(void *vaddr, int size)
{
	flush_kernel_vmap_range(vaddr, size);
}

void dmaheap_dma_unmap_sgtable(struct device *dev, struct sg_table *sgt,
			       enum dma_data_direction dir, unsigned long attrs)
{
	dma_unmap_sgtable(dev, sgt, dir, attrs);
}

void dmaheap_dma_sync_sgtable_for_cpu(struct device *dev, struct sg_table *sgt,
				      enum dma_data_direction dir)
{
	dma_sync_sgtable_for_cpu(dev, sgt, dir);
}

void dmaheap_dma_sync_sgtable_for_device(struct device *dev, struct sg_table *sgt,
					 enum dma_data_direction dir)
{
	dma_sync_sgtable_for_device(dev, sgt, dir);
}

int dmaheap_dma_coerce_mask_and_coherent(struct device *dev, u64 mask)
{
	return dma_coerce_mask_and_coherent(dev, mask);
}

void dmaheap_iosys_map_set_vaddr(struct iosys_map *map, void *vaddr)
{
	iosys_map_set_vaddr(map, vaddr);
}

void dmaheap_iosys_map_clear(struct iosys_map *map)
{
	iosys_map_clear(map);
}

void dmaheap_cond_resched(void)
{
	cond_resched();
}

int dmaheap_dma_mapping_error(struct device *dev, dma_addr_t addr)
{
	return dma_mapping_error(dev, addr);
}

unsigned int dmaheap_dma_get_max_seg_size(struct device *dev)
{
	return dma_get_max_seg_size(dev);
}

unsigned long dmaheap_dma_get_seg_boundary(struct device *dev)
{
	return dma_get_seg_boundary(dev);
}

dma_addr_t dmaheap_sg_dma_address(struct scatterlist *sg)
{
	return sg_dma_address(sg);
}

unsigned int dmaheap_sg_dma_len(struct scatterlist *sg)
{
	return sg_dma_len(sg);
}

void dmaheap_sg_set_dma(struct scatterlist *sg, dma_addr_t addr, unsigned int len)
{
	sg->length = len;
	sg_dma_address(sg) = addr;
	sg_dma_len(sg) = len;
}

struct resource *dmaheap_request_mem_region(resource_size_t start, resource_size_t n,
					   const char *name)
{
	return request_mem_region(start, n, name);
}

void dmaheap_release_mem_region(resource_size_t start, resource_size_t n)
{
	release_mem_region(start, n);
}

bool dmaheap_have_genalloc(void)
{
	return IS_ENABLED(CONFIG_GENERIC_ALLOCATOR);
}

#ifdef CONFIG_GENERIC_ALLOCATOR
struct gen_pool *dmaheap_gen_pool_create(int min_alloc_order, int nid)
{
	return gen_pool_create(min_alloc_order, nid);
}

void dmaheap_gen_pool_destroy(struct gen_pool *pool)
{
	gen_pool_destroy(pool);
}

int dmaheap_gen_pool_add(struct gen_pool *pool, unsigned long addr, size_t size, int nid)
{
	return gen_pool_add(pool, addr, size, nid);
}

unsigned long dmaheap_gen_pool_alloc(struct gen_pool *pool, size_t size)
{
	return gen_pool_alloc(pool, size);
}

void dmaheap_gen_pool_free(struct gen_pool *pool, unsigned long addr, size_t size)
{
	gen_pool_free(pool, addr, size);
}
#else
struct gen_pool *dmaheap_gen_pool_create(int min_alloc_order, int nid)
{
	return NULL;
}

void dmaheap_gen_pool_destroy(struct gen_pool *pool)
{
}

int dmaheap_gen_pool_add(struct gen_pool *pool, unsigned long addr, size_t size, int nid)
{
	return -ENODEV;
}

unsigned long dmaheap_gen_pool_alloc(struct gen_pool *pool, size_t size)
{
	return 0;
}

void dmaheap_gen_pool_free(struct gen_pool *pool, unsigned long addr, size_t size)
{
}
#endif

void dmaheap_mm_account_reclaimed_pages(unsigned long pages)
{
	mm_account_reclaimed_pages(pages);
}

unsigned long dmaheap_totalram_pages(void)
{
	return totalram_pages();
}

void dmaheap_mod_reclaimable(struct page *page, long nr_pages)
{
	mod_node_page_state(page_pgdat(page), NR_KERNEL_MISC_RECLAIMABLE, nr_pages);
}

bool dmaheap_current_is_reclaiming(void)
{
	return current->flags & PF_MEMALLOC;
}

bool dmaheap_use_dma_iommu(struct device *dev)
{
	return use_dma_iommu(dev);
}

bool dmaheap_has_dma_ops(struct device *dev)
{
	return get_dma_ops(dev);
}

dma_addr_t dmaheap_phys_to_dma(struct device *dev, phys_addr_t paddr)
{
	return phys_to_dma(dev, paddr);
}
