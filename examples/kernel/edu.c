/*
 * The edu driver (see edu.h for the contract).  PCI configuration through the legacy ports
 * 0xCF8/0xCFC; SeaBIOS assigns BAR0 but leaves bus mastering off, so the driver turns on
 * memory space and bus mastering, writing the 16-bit command register 16 bits wide (a 32-bit
 * write would also write the status register's write-1-to-clear bits).  Registers are 32-bit
 * MMIO; the DMA address registers are 64 bits wide in the device, and a 32-bit write sets the
 * whole register, which is enough without paging (every address is below 4 GiB).
 */
#include <absio/absio.h>
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
		if ((edu_rd(dev, EDU_REG_ID) & 0xFFu) != 0xED)
			return KCOM_E_FAIL;
		edu_wr(dev, EDU_REG_LIVE, 0x12345678u);
		if (edu_rd(dev, EDU_REG_LIVE) != ~0x12345678u)
			return KCOM_E_FAIL;
		return KCOM_OK;
	}
	return KCOM_E_NOTFOUND;
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
		total += segs[i].len;
	}
	if (total > EDU_MAX_XFER || dev_off > EDU_DEV_BUF_SIZE || total > EDU_DEV_BUF_SIZE - dev_off)
		return KCOM_E_RANGE;
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
 * Both directions: wire the range (bufvec wire_vec, else bufio wire), check and run the DMA,
 * unwire.  Only when the object cannot be wired at all (KCOM_E_NOTIMPL, KCOM_E_NOPHYS) does
 * the data go through a bounce buffer allocated under the device's constraints; any other
 * failure, KCOM_E_UNREACHABLE from the check above included, is returned as it is.
 */
static kcom_error_t edu_xfer(struct edu *dev, int to_ram, kcom_bufio_t *io, kcom_off_t off, size_t n,
                             size_t dev_off)
{
	struct kcom_physseg segs[EDU_MAX_SEGS];
	size_t count = 0;
	kcom_bufvec_t *vec = NULL;
	kcom_error_t err;

	dev->last_bounced = 0;
	dev->last_wire = 0;
	if (KCOM_SUCCEEDED(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec))) {
		err = kcom_bufvec_wire_vec(vec, off, n, segs, EDU_MAX_SEGS, &count);
		if (KCOM_SUCCEEDED(err)) {
			dev->last_wire = 2;
			err = edu_dma(dev, to_ram, segs, count, dev_off);
			kcom_error_t uerr = kcom_bufvec_unwire_vec(vec, off, n, segs, count);
			kcom_bufvec_release(vec);
			return KCOM_FAILED(err) ? err : uerr;
		}
		kcom_bufvec_release(vec);
	} else {
		err = kcom_bufio_wire(io, &segs[0].addr, off, n);
		if (KCOM_SUCCEEDED(err)) {
			dev->last_wire = 1;
			segs[0].len = n;
			err = edu_dma(dev, to_ram, segs, 1, dev_off);
			kcom_error_t uerr = kcom_bufio_unwire(io, segs[0].addr, off, n);
			return KCOM_FAILED(err) ? err : uerr;
		}
	}
	if (err != KCOM_E_NOTIMPL && err != KCOM_E_NOPHYS)
		return err;

	/* Not wireable: bounce through memory the device reaches. */
	void *bounce;
	err = kcom_dma_alloc(n, &dev->dma, &bounce);
	if (KCOM_FAILED(err))
		return err;
	dev->last_bounced = 1;
	kcom_phys_t phys;
	size_t done = 0;
	err = kcom_virt_to_phys(bounce, &phys);
	if (KCOM_SUCCEEDED(err) && !to_ram) {
		err = kcom_absio_read(kcom_bufio_absio(io), bounce, off, n, &done);
		if (KCOM_SUCCEEDED(err) && done != n)
			err = KCOM_E_RANGE;
	}
	if (KCOM_SUCCEEDED(err)) {
		struct kcom_physseg seg = { .addr = phys, .len = n };
		err = edu_dma(dev, to_ram, &seg, 1, dev_off);
	}
	if (KCOM_SUCCEEDED(err) && to_ram) {
		err = kcom_absio_write(kcom_bufio_absio(io), bounce, off, n, &done);
		if (KCOM_SUCCEEDED(err) && done != n)
			err = KCOM_E_NOSPACE;
	}
	kcom_dma_free(bounce, n);
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
