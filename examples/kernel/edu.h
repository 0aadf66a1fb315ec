/*
 * A driver for QEMU's "edu" PCI device (hw/misc/edu.c, docs/specs/edu.rst): a DMA engine with
 * a 4 KiB buffer at device address 0x40000 and a 28-bit address mask.  It is a kcom client
 * component rather than a kcom interface: a plain struct with functions, because it has one
 * user and no second implementation; what makes it a component is that it takes any kcom
 * buffer (a kcom_bufio) and programs the device with the physical segments kcom hands out,
 * never with its own translation.  It goes through bufio's bounce helper
 * (kcom_dma_bounce_acquire): the buffer's own pages when kcom can wire them within the
 * device's constraints, else a bounce buffer from the DMA allocator the driver found in the
 * class table at attach (dmabuf's kcom_dmaalloc).
 *
 * The device does not report a DMA above its mask: it silently masks the address and hits
 * other memory.  So, whatever the helper gave, edu_dma checks every segment against the
 * constraints before it programs anything, and refuses the whole request with
 * KCOM_E_UNREACHABLE if one byte is out of reach.
 */
#ifndef KCOM_EXAMPLE_EDU_H
#define KCOM_EXAMPLE_EDU_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_DEV_BUF 0x40000u  /* device address of its DMA buffer */
#define EDU_DEV_BUF_SIZE 4096u
/* Bytes of the device buffer a request may use, from its start: QEMU 7.2 aborts on any
 * transfer that ends at the buffer's last byte (its range check wants the end below the
 * buffer's end, an off-by-one fixed in later QEMU), so requests stay one byte short of it:
 * dev_off + length <= 4095. */
#define EDU_MAX_XFER 4095u

struct edu {
	volatile uint32_t *mmio;          /* BAR0 */
	uint8_t bus, slot;
	struct kcom_dma_constraints dma;  /* what the device reaches: 28 bits */
	unsigned dma_started;             /* DMAs the device was told to run, ever */
	int wedged;                       /* a DMA never finished: nothing is programmed again */
	kcom_dmaalloc_t *alloc;           /* bounce buffers come from here */
	int last_bounced;                 /* the last buffer request went through a bounce buffer */
	size_t last_count;                /* ... in how many segments */
	kcom_phys_t last_high;            /* ... the highest byte the device was given */
};

/* Finds the device on PCI bus 0, enables memory space and bus mastering, checks its ID and
 * that it answers, and takes a DMA allocator from the class table.  KCOM_E_NOTFOUND without
 * a device or an allocator class; KCOM_E_FAIL when it answers wrongly. */
kcom_error_t edu_probe(struct edu *dev);
/* Drops what edu_probe took (the allocator). */
void edu_detach(struct edu *dev);

/*
 * Moves the bytes of `count` physical segments (in order) to (to_ram = 0) or from (to_ram = 1)
 * the device buffer at `dev_off`, one DMA per segment.  Checks everything first: a segment
 * above the device's reach gives KCOM_E_UNREACHABLE, a request that would end past byte
 * EDU_MAX_XFER of the device buffer (dev_off + the segments' total > EDU_MAX_XFER)
 * KCOM_E_RANGE; the device is then never programmed.  KCOM_E_FAIL when the device does not
 * finish; it is then taken as wedged, and every later request is KCOM_E_FAIL.
 */
kcom_error_t edu_dma(struct edu *dev, int to_ram, const struct kcom_physseg *segs, size_t count, size_t dev_off);

/* Copies [off, off + n) of a kcom buffer (the range must exist) into the device buffer at
 * dev_off, wired directly or bounced; errors as kcom_dma_bounce_acquire() and edu_dma(), or
 * the copy back from a bounce buffer; a failure holds nothing (no wiring, no bounce buffer,
 * no reference to the buffer), except after a DMA that never finished, whose pages stay
 * wired for the device that may still write them. */
kcom_error_t edu_to_device(struct edu *dev, kcom_bufio_t *io, kcom_off_t off, size_t n, size_t dev_off);
/* Copies the device buffer at dev_off into [off, off + n) of a kcom buffer. */
kcom_error_t edu_from_device(struct edu *dev, kcom_bufio_t *io, kcom_off_t off, size_t n, size_t dev_off);

#endif /* KCOM_EXAMPLE_EDU_H */
