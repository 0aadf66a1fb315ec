/*
 * What the host lets the tests do, found out by hand (no kcom, no Check): a physical address
 * read straight from /proc/self/pagemap, and the dmabuf rows' probe (mlock limits, frame
 * numbers hidden from non-root).  Shared by the contract table, the dmabuf suite and the fuzzer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <impls/dmabuf.h>
#include "tests/contract.h"

#define PAGE KCOM_DMABUF_PAGE

/* ---- independent translation ---- */

/* The physical address of `addr` read straight from /proc/self/pagemap; 0 when hidden. */
uint64_t test_pagemap_phys(const void *addr)
{
	long sys = sysconf(_SC_PAGESIZE);
	int fd = open("/proc/self/pagemap", O_RDONLY);
	if (fd < 0)
		return 0;
	uint64_t entry = 0;
	uint64_t va = (uint64_t)(uintptr_t)addr;
	ssize_t got = pread(fd, &entry, sizeof(entry), (off_t)(va / (uint64_t)sys * sizeof(entry)));
	close(fd);
	uint64_t pfn = entry & ((UINT64_C(1) << 55) - 1);
	if (got != (ssize_t)sizeof(entry) || !(entry >> 63) || pfn == 0)
		return 0;
	return pfn * (uint64_t)sys + va % (uint64_t)sys;
}

/* Why the host cannot run a dmabuf test needing `cap`, or NULL.  Probed once, by hand. */
static const char *probe_result[2];
static int probe_done;

static void probe_host(void)
{
	static char why_pin[160], why_phys[160];
	size_t len = 2u << 20; /* the class row's 1 MiB and its copies */
	void *mem = NULL;
	probe_done = 1;
	if (posix_memalign(&mem, PAGE, len) != 0) {
		probe_result[0] = probe_result[1] = "no memory for the probe";
		return;
	}
	memset(mem, 0, len);
	if (mlock(mem, len) != 0) {
		snprintf(why_pin, sizeof(why_pin), "mlock of 2 MiB refused (%s): RLIMIT_MEMLOCK too low",
		         strerror(errno));
		probe_result[0] = probe_result[1] = why_pin;
		free(mem);
		return;
	}
	if (test_pagemap_phys(mem) == 0) {
		snprintf(why_phys, sizeof(why_phys), "/proc/self/pagemap shows no frame numbers (uid %d: needs CAP_SYS_ADMIN)",
		         (int)geteuid());
		probe_result[1] = why_phys;
	}
	munlock(mem, len);
	free(mem);
}

/* The dmabuf contract rows' probe. */
const char *dmabuf_test_probe(unsigned cap)
{
	if (!probe_done)
		probe_host();
	return probe_result[(cap & CAP_WIRES) ? 1 : 0];
}

