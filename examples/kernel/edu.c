/*
 * The edu driver (see edu.h for the contract).  PCI configuration through the legacy ports
 * 0xCF8/0xCFC; SeaBIOS assigns BAR0 but leaves bus mastering off, so the driver turns on
 * memory space and bus mastering, writing the 16-bit command register 16 bits wide (a 32-bit
 * write would also write the status register's write-1-to-clear bits).  Registers are 32-bit
 * MMIO; the DMA address registers are 64 bits wide in the device, and a 32-bit write sets the
 * whole register, which is enough without paging (every address is below 4 GiB).
 */
#include <bufio/helpers.h>
#include <com/class.h>
#include <com/guid.h>
#include <com/osenv.h>
#include "edu.h"
#include "kernel.h"

#define PCI_ADDR 0xCF8
#define PCI_DATA 0xCFC
#define PCI_COMMAND 0x04
#define PCI_CMD_MEMORY 0x2
#define PCI_CMD_MASTER 0x4
#define PCI_BAR0 0x10

#define EDU_REG_ID 0x00
#define EDU_REG_LIVE 0x04
#define EDU_REG_SRC 0x80
#define EDU_REG_DST 0x88
#define EDU_REG_CNT 0x90
#define EDU_REG_CMD 0x98
#define EDU_CMD_RUN 0x1
#define EDU_CMD_TO_RAM 0x2

#define EDU_MAX_SEGS 16

static uint32_t pci_addr(uint8_t bus, uint8_t slot, uint8_t off)
{
	return 0x80000000u | (uint32_t)bus << 16 | (uint32_t)slot << 11 | (off & 0xFCu);
}

static uint32_t pci_read32(uint8_t bus, uint8_t slot, uint8_t off)
{
	outl(PCI_ADDR, pci_addr(bus, slot, off));
	return inl(PCI_DATA);
}

static void pci_write16(uint8_t bus, uint8_t slot, uint8_t off, uint16_t v)
{
	outl(PCI_ADDR, pci_addr(bus, slot, off));
	outw((uint16_t)(PCI_DATA + (off & 2)), v);
}

static uint32_t edu_rd(struct edu *dev, unsigned reg)
{
	return dev->mmio[reg / 4];
}

static void edu_wr(struct edu *dev, unsigned reg, uint32_t v)
{
	dev->mmio[reg / 4] = v;
}

/*
 * The driver's DMA allocator, kept from attach like a busdma tag: an object of the first
 * class in the product's table that answers kcom_dmaalloc (dmabuf), found at run time.
 */
static kcom_error_t edu_find_allocator(kcom_dmaalloc_t **out)
{
	const struct kcom_class *cls;
	for (size_t i = 0; KCOM_SUCCEEDED(kcom_class_enum(i, &cls)); i++)
		for (const struct kcom_class_iface *f = cls->ifaces; f != NULL && f->iid != NULL; f++)
			if (kcom_guid_equal(f->iid, &kcom_dmaalloc_iid))
				return kcom_create(&cls->clsid, &kcom_dmaalloc_iid, (void **)out);
	*out = NULL;
	return KCOM_E_NOTFOUND;
}

kcom_error_t edu_probe(struct edu *dev)
{
	for (uint8_t slot = 0; slot < 32; slot++) {
		uint32_t id = pci_read32(0, slot, 0);
		if (id != ((uint32_t)EDU_DEVICE << 16 | EDU_VENDOR))
			continue;
		dev->bus = 0;
		dev->slot = slot;
		uint32_t bar = pci_read32(0, slot, PCI_BAR0);
		if (bar & 1)
			return KCOM_E_FAIL; /* an I/O BAR: not the edu we know */
		dev->mmio = (volatile uint32_t *)(uintptr_t)(bar & ~0xFu);
		uint16_t cmd = (uint16_t)pci_read32(0, slot, PCI_COMMAND);
		pci_write16(0, slot, PCI_COMMAND, (uint16_t)(cmd | PCI_CMD_MEMORY | PCI_CMD_MASTER));
		dev->dma = (struct kcom_dma_constraints){ .max_addr = (1u << 28) - 1 };
		dev->dma_started = 0;
		dev->wedged = 0;
		dev->alloc = NULL;
		if ((edu_rd(dev, EDU_REG_ID) & 0xFFu) != 0xED)
			return KCOM_E_FAIL;
		edu_wr(dev, EDU_REG_LIVE, 0x12345678u);
		if (edu_rd(dev, EDU_REG_LIVE) != ~0x12345678u)
			return KCOM_E_FAIL;
		return edu_find_allocator(&dev->alloc);
	}
	return KCOM_E_NOTFOUND;
}

void edu_detach(struct edu *dev)
{
	if (dev->alloc != NULL)
		kcom_dmaalloc_release(dev->alloc);
	dev->alloc = NULL;
}

/* One DMA, already checked; polls until the device clears RUN. */
static kcom_error_t edu_dma_one(struct edu *dev, int to_ram, uint32_t phys, uint32_t dev_addr, uint32_t len)
{
	edu_wr(dev, EDU_REG_SRC, to_ram ? dev_addr : phys);
	edu_wr(dev, EDU_REG_DST, to_ram ? phys : dev_addr);
	edu_wr(dev, EDU_REG_CNT, len);
	__atomic_thread_fence(__ATOMIC_SEQ_CST); /* the bytes are in memory before the device starts */
	edu_wr(dev, EDU_REG_CMD, EDU_CMD_RUN | (to_ram ? EDU_CMD_TO_RAM : 0));
	dev->dma_started++;
	for (uint32_t spins = 0; spins < 50000000u; spins++)
		if (!(edu_rd(dev, EDU_REG_CMD) & EDU_CMD_RUN)) {
			__atomic_thread_fence(__ATOMIC_SEQ_CST);
			return KCOM_OK;
		}
	dev->wedged = 1; /* it may still write: see edu_xfer */
	return KCOM_E_FAIL;
}

kcom_error_t edu_dma(struct edu *dev, int to_ram, const struct kcom_physseg *segs, size_t count, size_t dev_off)
{
	size_t total = 0;
	for (size_t i = 0; i < count; i++) {
		if (segs[i].len == 0)
			return KCOM_E_INVALIDARG;
		kcom_phys_t last = segs[i].addr + segs[i].len - 1;
		if (last < segs[i].addr || (dev->dma.max_addr != 0 && last > dev->dma.max_addr))
			return KCOM_E_UNREACHABLE;
		if (segs[i].len > EDU_MAX_XFER - total) /* counted so that the total cannot wrap */
			return KCOM_E_RANGE;
		total += segs[i].len;
	}
	if (dev_off > EDU_MAX_XFER || total > EDU_MAX_XFER - dev_off)
		return KCOM_E_RANGE;
	if (dev->wedged)
		return KCOM_E_FAIL;
	for (size_t i = 0; i < count; i++) {
		kcom_error_t err = edu_dma_one(dev, to_ram, (uint32_t)segs[i].addr, EDU_DEV_BUF + (uint32_t)dev_off,
		                               (uint32_t)segs[i].len);
		if (KCOM_FAILED(err))
			return err;
		dev_off += segs[i].len;
	}
	return KCOM_OK;
}

/*
 * Both directions through bufio's bounce helper: the object's own pages when kcom can wire
 * them within the device's constraints (a dmabuf placed below the line), else a bounce buffer
 * from the driver's allocator (a membuf, or a dmabuf above the line: its pages are never
 * handed to the device).  edu_dma checks the segments again before it programs anything.
 */
static kcom_error_t edu_xfer(struct edu *dev, int to_ram, kcom_bufio_t *io, kcom_off_t off, size_t n,
                             size_t dev_off)
{
	if (dev->wedged)
		return KCOM_E_FAIL; /* before anything is held */
	struct kcom_physseg segs[EDU_MAX_SEGS];
	struct kcom_dma_bounce b;
	kcom_error_t err = kcom_dma_bounce_acquire(&b, io, off, n, to_ram ? KCOM_DMA_FROM_DEVICE : KCOM_DMA_TO_DEVICE,
	                                           &dev->dma, dev->alloc, segs, EDU_MAX_SEGS);
	if (KCOM_FAILED(err))
		return err;
	dev->last_bounced = !kcom_dma_bounce_direct(&b);
	dev->last_count = b.count;
	dev->last_high = 0;
	for (size_t i = 0; i < b.count; i++)
		if (b.segs[i].addr + b.segs[i].len - 1 > dev->last_high)
			dev->last_high = b.segs[i].addr + b.segs[i].len - 1;
	err = edu_dma(dev, to_ram, b.segs, b.count, dev_off);
	if (KCOM_FAILED(err) && dev->wedged) { /* this request's DMA is the one that never finished */
		/*
		 * The device never finished and has no way to be stopped: it may still write these
		 * pages.  They stay wired and held, as a driver keeps a buffer a hung device owns,
		 * rather than go back to the allocator under a DMA.
		 */
		return err;
	}
	if (KCOM_SUCCEEDED(err))
		err = kcom_dma_bounce_release(&b);
	if (KCOM_FAILED(err))
		kcom_dma_bounce_abort(&b); /* nothing kept: the wiring, a bounce buffer, our reference */
	return err;
}

kcom_error_t edu_to_device(struct edu *dev, kcom_bufio_t *io, kcom_off_t off, size_t n, size_t dev_off)
{
	return edu_xfer(dev, 0, io, off, n, dev_off);
}

kcom_error_t edu_from_device(struct edu *dev, kcom_bufio_t *io, kcom_off_t off, size_t n, size_t dev_off)
{
	return edu_xfer(dev, 1, io, off, n, dev_off);
}
