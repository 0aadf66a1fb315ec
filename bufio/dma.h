/**
 * @file bufio/dma.h
 * @brief Device constraints: which physical memory a device can use, and how it must be cut.
 *
 * A driver describes its device once (FreeBSD's busdma tag, L4's DMA pools) and hands the
 * description to whatever allocates or checks memory for it: dmabuf at creation, the bounce
 * helper, wire_vec's splitting.  Zero in a field means "no constraint".
 * @code
 * // An ISA DMA controller: below 16 MiB, never across a 64 KiB line.
 * struct kcom_dma_constraints isa = { .max_addr = 0xFFFFFF, .boundary = 0x10000 };
 * // QEMU's edu device: 28-bit addresses.
 * struct kcom_dma_constraints edu = { .max_addr = (1u << 28) - 1 };
 * @endcode
 */
#ifndef KCOM_BUFIO_DMA_H
#define KCOM_BUFIO_DMA_H

#include <stddef.h>
#include <stdint.h>
#include <com/osenv.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief What a device can reach and how its segments must be cut. */
struct kcom_dma_constraints {
	kcom_phys_t max_addr; /**< highest physical address the device can reach (inclusive);
	                           0: all of them */
	size_t align;         /**< power of two the buffer's first physical address must be a
	                           multiple of; 0 or 1: any */
	size_t boundary;      /**< power of two no segment may cross (0x10000 for ISA DMA); 0: none */
	size_t max_seg;       /**< longest segment the device takes; 0: no limit */
	int contiguous;       /**< nonzero: the whole buffer must be one physical segment */
};

#ifdef __cplusplus
}
#endif
#endif /* KCOM_BUFIO_DMA_H */
