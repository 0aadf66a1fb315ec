/*
 * A driver for QEMU's "edu" PCI device (hw/misc/edu.c, docs/specs/edu.rst): a DMA engine with
 * a 4 KiB buffer at device address 0x40000 and a 28-bit address mask.  It is a kcom client
 * component rather than a kcom interface: a plain struct with functions, because it has one
 * user and no second implementation; what makes it a component is that it takes any kcom
 * buffer (a kcom_bufio) and gets the physical addresses to program from kcom itself: the
 * object's bufvec wire_vec, or its bufio wire, never from the driver's own translation.
 *
 * The device does not report a DMA above its mask: it silently masks the address and hits
 * other memory.  So the driver checks every segment against its constraints before it
 * programs anything, and refuses the whole request with KCOM_E_UNREACHABLE if one byte is
 * out of reach.  A buffer that cannot be wired at all (KCOM_E_NOTIMPL: a membuf) goes
 * through a bounce buffer the driver allocates under its constraints (kcom_dma_alloc).
 */
#ifndef KCOM_EXAMPLE_EDU_H
#define KCOM_EXAMPLE_EDU_H

#include <stddef.h>
#include <stdint.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8
#define EDU_DEV_BUF 0x40000u  /* device address of its DMA buffer */
#define EDU_DEV_BUF_SIZE 4096u
/* Most bytes one request moves: QEMU 7.2 aborts on a transfer of exactly 4096 bytes at 0x40000
 * (an off-by-one fixed later), so the driver stays one byte short. */
#define EDU_MAX_XFER 4095u

struct edu {
	volatile uint32_t *mmio;          /* BAR0 */
	uint8_t bus, slot;
	struct kcom_dma_constraints dma;  /* what the device reaches: 28 bits */
	unsigned dma_started;             /* DMAs the device was told to run, ever */
	int last_bounced;                 /* the last buffer request went through a bounce buffer */
	int last_wire;                    /* 2: wire_vec, 1: wire, 0: none (bounced) */
};

/* Finds the device on PCI bus 0, enables memory space and bus mastering, checks its ID and
 * that it answers.  KCOM_E_NOTFOUND without one; KCOM_E_FAIL when it answers wrongly. */
kcom_error_t edu_probe(struct edu *dev);

/*
 * Moves the bytes of `count` physical segments (in order) to (to_ram = 0) or from (to_ram = 1)
 * the device buffer at `dev_off`, one DMA per segment.  Checks everything first: a segment
 * above the device's reach gives KCOM_E_UNREACHABLE, more than EDU_MAX_XFER bytes in all or
 * past the device buffer KCOM_E_RANGE; the device is then never programmed.  KCOM_E_FAIL when
 * the device does not finish.
 */
kcom_error_t edu_dma(struct edu *dev, int to_ram, const struct kcom_physseg *segs, size_t count, size_t dev_off);

/* Copies [off, off + n) of a kcom buffer into the device buffer at dev_off (wired or bounced). */
kcom_error_t edu_to_device(struct edu *dev, kcom_bufio_t *io, kcom_off_t off, size_t n, size_t dev_off);
/* Copies the device buffer at dev_off into [off, off + n) of a kcom buffer. */
kcom_error_t edu_from_device(struct edu *dev, kcom_bufio_t *io, kcom_off_t off, size_t n, size_t dev_off);

#endif /* KCOM_EXAMPLE_EDU_H */
