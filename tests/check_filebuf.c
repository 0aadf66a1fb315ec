/*
 * filebuf (impls/filebuf.h), the module: what the contract table cannot see.  Data written
 * through kcom is in the file after release (read back with plain pread); a write that fails
 * loses nothing; host errors come back as the codes that name them; a mapping is the exact
 * page-aligned span and one offset maps at one address; the module will not unload under a
 * live object.  The module is loaded by name through KCOM_MODULE_PATH.
 *
 * pread and pwrite are interposed here: check_kcom exports its symbols (-export-dynamic) so
 * the module's calls bind to these wrappers, which pass through to the C library unless a test
 * arms them to fail with EINTR and move a few bytes at a time, as a signal-heavy process or a
 * slow file system would.
 */
#define _GNU_SOURCE 1 /* RTLD_NEXT */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <com/com.h>
#include <com/debug.h>
#include <com/module.h>
#include <impls/filebuf.h>
#include "tests/suites.h"

/* ---- interposed pread/pwrite ---- */

static int hostile;             /* armed: alternate EINTR and 7-byte transfers */
static unsigned long eintrs;    /* EINTRs handed out while armed */
static unsigned long shorts;    /* short transfers handed out while armed */
static unsigned long calls;

/* What an armed call does: 1 = fail with EINTR, else cut n to a few bytes. */
static int hostile_turn(size_t *n)
{
	if (!hostile)
		return 0;
	if (calls++ % 2 == 0) {
		eintrs++;
		return 1;
	}
	if (*n > 7) {
		*n = 7;
		shorts++;
	}
	return 0;
}

ssize_t pread(int fd, void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, void *, size_t, off_t);
	if (real == NULL)
		real = (ssize_t(*)(int, void *, size_t, off_t))dlsym(RTLD_NEXT, "pread");
	if (hostile_turn(&n)) {
		errno = EINTR;
		return -1;
	}
	return real(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	static ssize_t (*real)(int, const void *, size_t, off_t);
	if (real == NULL)
		real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
	if (hostile_turn(&n)) {
		errno = EINTR;
		return -1;
	}
	return real(fd, buf, n, off);
}

static const kcom_clsid_t filebuf_clsid = KCOM_FILEBUF_CLSID;
static const kcom_iid_t fileio_iid = KCOM_FILEIO_IID;

static kcom_module_t *module;
static char tmpdir[64];
static char path[128];

static void setup(void)
{
	ck_assert_msg(KCOM_SUCCEEDED(kcom_module_load("filebuf", &module)), "%s", kcom_module_error());
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/kcom-filebuf-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(path, sizeof(path), "%s/data", tmpdir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(tmpdir);
	ck_assert_int_eq(kcom_module_unload(module), KCOM_OK);
}

/* A filebuf over `file` opened with `oflags`; *out_file gets its fileio (one more reference). */
static kcom_bufio_t *make_over(const char *file, int oflags, kcom_fileio_t **out_file)
{
	kcom_bufio_t *io;
	ck_assert_int_eq(kcom_create(&filebuf_clsid, &kcom_bufio_iid, (void **)&io), KCOM_OK);
	kcom_fileio_t *f;
	ck_assert_int_eq(kcom_bufio_query(io, &fileio_iid, (void **)&f), KCOM_OK);
	if (file != NULL)
		ck_assert_int_eq(kcom_fileio_open(f, file, oflags, 0600), KCOM_OK);
	if (out_file != NULL)
		*out_file = f;
	else
		kcom_fileio_release(f);
	return io;
}

static void fill(uint8_t *buf, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(i * 13u + seed);
}

START_TEST(test_on_disk_after_release)
{
	enum { N = 10000 };
	static uint8_t want[N], got[N + 1]; /* one more: pread proves the file ends at N */
	fill(want, N, 1);
	kcom_bufio_t *io = make_over(path, O_RDWR | O_CREAT | O_TRUNC, NULL);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, want, 0, N, &put), KCOM_OK);
	ck_assert_uint_eq(put, N);
	/* A store through a mapping is the file's too. */
	void *addr;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 9000, 10), KCOM_OK);
	memcpy(addr, "MAPPEDBYTE", 10);
	memcpy(want + 9000, "MAPPEDBYTE", 10);
	ck_assert_int_eq(kcom_bufio_unmap(io, addr, 9000, 10), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);

	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, got, sizeof(got), 0), N);
	ck_assert_mem_eq(got, want, N);
	close(fd);
}
END_TEST

/* EINTR is retried and short transfers are continued: whole ranges move all the same. */
START_TEST(test_eintr_and_short_transfers)
{
	enum { N = 1000 };
	static uint8_t want[N], got[N];
	fill(want, N, 4);
	kcom_bufio_t *io = make_over(path, O_RDWR | O_CREAT | O_TRUNC, NULL);
	size_t put = 0, size = 0;
	hostile = 1;
	eintrs = shorts = calls = 0;
	kcom_error_t werr = kcom_bufio_write(io, want, 0, N, &put);
	kcom_error_t rerr = kcom_bufio_read(io, got, 0, N, &size);
	hostile = 0;
	ck_assert_int_eq(werr, KCOM_OK);
	ck_assert_uint_eq(put, N);
	ck_assert_int_eq(rerr, KCOM_OK);
	ck_assert_uint_eq(size, N);
	ck_assert_mem_eq(got, want, N);
	/* The harness really stood between the module and the file. */
	ck_assert_uint_gt(eintrs, 100);
	ck_assert_uint_gt(shorts, 100);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

START_TEST(test_failed_write_loses_nothing)
{
	enum { LIMIT = 8192 };
	static uint8_t a[4096], b[8192], got[LIMIT + 1];
	fill(a, sizeof(a), 2);
	fill(b, sizeof(b), 3);
	struct rlimit old, lim;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = LIMIT;
	signal(SIGXFSZ, SIG_IGN);
	kcom_bufio_t *io = make_over(path, O_RDWR | O_CREAT | O_TRUNC, NULL);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

	size_t put = 99;
	ck_assert_int_eq(kcom_bufio_write(io, a, 0, sizeof(a), &put), KCOM_OK);
	ck_assert_uint_eq(put, sizeof(a));
	/* Straddling the host's limit: what fits lands, the count is short, not an error. */
	ck_assert_int_eq(kcom_bufio_write(io, b, 4096, sizeof(b), &put), KCOM_OK);
	ck_assert_uint_eq(put, LIMIT - 4096);
	/* Wholly past it: an error that names it, nothing written, nothing lost. */
	put = 99;
	ck_assert_int_eq(kcom_bufio_write(io, b, LIMIT, 100, &put), KCOM_E_TOOBIG);
	ck_assert_uint_eq(put, 0);
	ck_assert_int_eq(kcom_bufio_setsize(io, LIMIT * 2), KCOM_E_TOOBIG);
	size_t size;
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, LIMIT);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);

	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, got, sizeof(got), 0), LIMIT);
	ck_assert_mem_eq(got, a, sizeof(a));
	ck_assert_mem_eq(got + 4096, b, LIMIT - 4096);
	close(fd);
	signal(SIGXFSZ, SIG_DFL);
}
END_TEST

START_TEST(test_host_errors)
{
	kcom_fileio_t *f;
	kcom_bufio_t *io = make_over(NULL, 0, &f);
	size_t put = 99;

	/* ENOSPC: /dev/full takes nothing. */
	int full = open("/dev/full", O_RDWR);
	if (full >= 0) {
		ck_assert_int_eq(kcom_fileio_attach(f, full), KCOM_OK);
		close(full); /* the object has its own duplicate */
		ck_assert_int_eq(kcom_bufio_write(io, "x", 0, 1, &put), KCOM_E_NOSPACE);
		ck_assert_uint_eq(put, 0);
	}
	/* EBADF, ENOENT, EISDIR; a failed open or attach keeps the old file. */
	ck_assert_int_eq(kcom_fileio_open(f, path, O_RDWR | O_CREAT | O_TRUNC, 0600), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(io, "keep", 0, 4, &put), KCOM_OK);
	ck_assert_int_eq(kcom_fileio_attach(f, -1), KCOM_E_BADHANDLE);
	ck_assert_int_eq(kcom_fileio_open(f, "/no/such/dir/file", O_RDWR, 0), KCOM_E_NOTFOUND);
	ck_assert_int_eq(kcom_fileio_open(f, "/tmp", O_RDWR, 0), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_fileio_open(f, NULL, O_RDWR, 0), KCOM_E_INVALIDARG);
	char back[4];
	ck_assert_int_eq(kcom_bufio_read(io, back, 0, 4, &put), KCOM_OK);
	ck_assert_mem_eq(back, "keep", 4);

	/* A file opened read-only: writes fail as the host says (EBADF), writable maps are refused. */
	ck_assert_int_eq(kcom_fileio_open(f, path, O_RDONLY, 0), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_write(io, "x", 0, 1, &put), KCOM_E_BADHANDLE);
	void *addr = (void *)1;
	ck_assert_int_eq(kcom_bufio_map(io, &addr, 0, 4), KCOM_E_ACCESSDENIED);
	ck_assert_ptr_null(addr);

	/* EACCES: a file we may not write (root may write anything: then only said). */
	if (geteuid() != 0) {
		ck_assert_int_eq(chmod(path, 0400), 0);
		ck_assert_int_eq(kcom_fileio_open(f, path, O_RDWR, 0), KCOM_E_ACCESSDENIED);
	} else {
		fprintf(stderr, "SKIP: filebuf EACCES: running as root, which may open any file\n");
	}
	kcom_fileio_release(f);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

START_TEST(test_map_span)
{
	long page = sysconf(_SC_PAGESIZE);
	kcom_fileio_t *f;
	kcom_bufio_t *io = make_over(path, O_RDWR | O_CREAT | O_TRUNC, &f);
	ck_assert_int_eq(kcom_bufio_setsize(io, (size_t)page * 3 + 100), KCOM_OK);
	kcom_off_t off = page + 904;
	void *a, *b;
	ck_assert_int_eq(kcom_bufio_map(io, &a, off, 10), KCOM_OK);
	ck_assert_uint_eq((uintptr_t)a % (uintptr_t)page, (uintptr_t)off % (uintptr_t)page);
	/* Inside the same window: one offset, one address. */
	ck_assert_int_eq(kcom_bufio_map(io, &b, off + 4, 2), KCOM_OK);
	ck_assert_ptr_eq(b, (char *)a + 4);
	/*
	 * A range around the first one, from byte 0 to the end: still one address per offset (a
	 * window over the first range's pages only gave `off` a second address here).
	 */
	void *all;
	size_t size = (size_t)page * 3 + 100;
	ck_assert_int_eq(kcom_bufio_map(io, &all, 0, size), KCOM_OK);
	ck_assert_ptr_eq((char *)all + off, a);
	void *end;
	ck_assert_int_eq(kcom_bufio_map(io, &end, (kcom_off_t)size, 0), KCOM_OK);
	ck_assert_ptr_eq(end, (char *)all + size);
	ck_assert_int_eq(kcom_bufio_unmap(io, end, (kcom_off_t)size, 0), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unmap(io, all, 0, size), KCOM_OK);
	kcom_debug_t *dbg;
	struct kcom_debug_counts counts;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_debug_iid, (void **)&dbg), KCOM_OK);
	ck_assert_int_eq(kcom_debug_counts(dbg, &counts), KCOM_OK);
	ck_assert_uint_eq(counts.mappings, 2);
	/* Size frozen, file fixed, while mapped. */
	ck_assert_int_eq(kcom_bufio_setsize(io, 1), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_fileio_open(f, path, O_RDWR, 0), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_fileio_attach(f, 0), KCOM_E_BUSY);
	ck_assert_int_eq(kcom_bufio_unmap(io, a, off, 9), KCOM_E_INVALIDARG); /* exact arguments only */
	ck_assert_int_eq(kcom_bufio_unmap(io, a, off, 10), KCOM_OK);
	ck_assert_uint_eq(((uint8_t *)b)[0], 0); /* the window stays for the other mapping */
	ck_assert_int_eq(kcom_bufio_unmap(io, b, off + 4, 2), KCOM_OK);
	ck_assert_int_eq(kcom_debug_counts(dbg, &counts), KCOM_OK);
	ck_assert_uint_eq(counts.mappings, 0);
	char why[128];
	ck_assert_int_eq(kcom_debug_check(dbg, why, sizeof(why)), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_setsize(io, 1), KCOM_OK);

	/*
	 * The file grown behind the object's back while mapped: its new bytes lie past the window,
	 * which cannot grow without moving the mapping, so they cannot be mapped until it ends (a
	 * map there once returned an address past the window).
	 */
	ck_assert_int_eq(kcom_bufio_map(io, &a, 0, 1), KCOM_OK);
	int other = open(path, O_RDWR);
	ck_assert_int_ge(other, 0);
	ck_assert_int_eq(ftruncate(other, 3 * page), 0);
	ck_assert_int_eq(kcom_bufio_map(io, &b, 2 * page, 1), KCOM_E_BUSY);
	ck_assert_ptr_null(b);
	ck_assert_int_eq(kcom_bufio_unmap(io, a, 0, 1), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_map(io, &b, 2 * page, 1), KCOM_OK);
	ck_assert_int_eq(kcom_bufio_unmap(io, b, 2 * page, 1), KCOM_OK);
	close(other);
	kcom_debug_release(dbg);
	kcom_fileio_release(f);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

START_TEST(test_info)
{
	kcom_bufio_t *io = make_over(NULL, 0, NULL);
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, "abc", 0, 3, &put), KCOM_OK);
	kcom_bufinfo_t *bi;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufinfo_iid, (void **)&bi), KCOM_OK);
	struct kcom_buffer_info info;
	ck_assert_int_eq(kcom_bufinfo_set_name(bi, "log file"), KCOM_OK);
	ck_assert_int_eq(kcom_bufinfo_get(bi, &info), KCOM_OK);
	ck_assert_str_eq(info.name, "log file");
	ck_assert_uint_eq(info.size, 3);
	ck_assert_uint_eq(info.flags, KCOM_BUFINFO_RESIZABLE | KCOM_BUFINFO_BACKED);
	ck_assert_uint_eq(info.natives, KCOM_NATIVE_MAP | KCOM_NATIVE_COPY | KCOM_NATIVE_BUFVEC);
	kcom_bufinfo_release(bi);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

/*
 * The module stays while one of its objects lives.  Other loads may be outstanding (the
 * fixture's, the contract row's when the suites share one process under CK_FORK=no): each
 * unload drops one until only the last is left, which is refused; they are put back after.
 */
START_TEST(test_unload_busy)
{
	kcom_module_t *m;
	ck_assert_int_eq(kcom_module_load("filebuf", &m), KCOM_OK);
	ck_assert_ptr_eq(m, module); /* the same file: counted, the same module */
	kcom_bufio_t *io = make_over(NULL, 0, NULL);
	unsigned dropped = 0;
	kcom_error_t err;
	while ((err = kcom_module_unload(module)) == KCOM_OK)
		dropped++;
	ck_assert_int_eq(err, KCOM_E_BUSY);
	ck_assert_uint_ge(dropped, 1); /* this test's own load at least */
	size_t put;
	ck_assert_int_eq(kcom_bufio_write(io, "still here", 0, 10, &put), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	for (unsigned i = 1; i < dropped; i++) {
		ck_assert_int_eq(kcom_module_load("filebuf", &m), KCOM_OK);
		ck_assert_ptr_eq(m, module);
	}
	/* teardown drops the fixture's load */
}
END_TEST

Suite *filebuf_suite(void)
{
	Suite *s = suite_create("filebuf");
	TCase *tc = tcase_create("filebuf");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_on_disk_after_release);
	tcase_add_test(tc, test_eintr_and_short_transfers);
	tcase_add_test(tc, test_failed_write_loses_nothing);
	tcase_add_test(tc, test_host_errors);
	tcase_add_test(tc, test_map_span);
	tcase_add_test(tc, test_info);
	tcase_add_test(tc, test_unload_busy);
	suite_add_tcase(s, tc);
	return s;
}
