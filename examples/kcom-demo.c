/*
 * kcom-demo: a tour of kcom from a client's side, printing what it does at each step.
 *
 * It lists the class table, builds buffers through it, asks an object at run time which
 * interfaces it has, writes, maps through the shared fallback (a view), tries to wire for DMA,
 * and copies three ways: bufio's copy (copy-on-write, so a write to the copy leaves the
 * original alone), a range copy between two objects, and the duplicate helper.  It uses only
 * the public headers, as any program outside the tree would.  Every call is checked: the first
 * failure is printed and the program exits with status 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <absio/absio.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/com.h>
#include <impls/membuf.h>

/* An IID no kcom object answers, to show a failed query. */
#define DEMO_UNKNOWN_IID_TEXT "{D076101D-F75B-48AA-9D76-7923781F46F2}"

static const char demo_text[] = "hello, component world";

/* Names for the IIDs this program knows; anything else prints as "(unknown)". */
static const char *iid_name(const kcom_iid_t *iid)
{
	static const struct {
		const kcom_iid_t *iid;
		const char *name;
	} names[] = {
		{ &kcom_iunknown_iid, "IUnknown" },
		{ &kcom_absio_iid, "kcom_absio" },
		{ &kcom_bufio_iid, "kcom_bufio" },
		{ &kcom_bufvec_iid, "kcom_bufvec" },
		{ &kcom_registry_iid, "kcom_registry" },
	};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (kcom_guid_equal(iid, names[i].iid))
			return names[i].name;
	return "(unknown)";
}

/* Prints a failed call and returns 1, so callers can write `return fail(...)`. */
static int fail(const char *what, kcom_error_t err)
{
	fprintf(stderr, "kcom-demo: %s failed: %s (0x%08X)\n", what, kcom_strerror(err), (unsigned)err);
	return 1;
}

/* Reads the whole object into buf (NUL-terminated); returns 0 or 1 after printing why. */
static int read_all(kcom_bufio_t *io, char *buf, size_t len, const char *what)
{
	size_t size, got;
	kcom_error_t err = kcom_bufio_getsize(io, &size);
	if (KCOM_FAILED(err))
		return fail(what, err);
	if (size >= len) {
		fprintf(stderr, "kcom-demo: %s: %zu bytes do not fit the demo's buffer\n", what, size);
		return 1;
	}
	err = kcom_bufio_read(io, buf, 0, size, &got);
	if (KCOM_FAILED(err))
		return fail(what, err);
	if (got != size) {
		fprintf(stderr, "kcom-demo: %s: read %zu of %zu bytes\n", what, got, size);
		return 1;
	}
	buf[got] = '\0';
	return 0;
}

/* Step 1: every class in the table, with the interfaces its objects answer. */
static int list_classes(void)
{
	printf("== class table\n");
	for (size_t i = 0;; i++) {
		const struct kcom_class *cls;
		char text[KCOM_GUID_STRLEN];
		kcom_error_t err = kcom_class_enum(i, &cls);
		if (err == KCOM_E_NOTFOUND) {
			printf("%zu class(es) registered\n", i);
			return 0;
		}
		if (KCOM_FAILED(err))
			return fail("kcom_class_enum", err);
		err = kcom_guid_format(&cls->clsid, text, sizeof(text));
		if (KCOM_FAILED(err))
			return fail("kcom_guid_format", err);
		printf("class %s %s\n", cls->name, text);
		for (const struct kcom_class_iface *f = cls->ifaces; f != NULL && f->iid != NULL; f++) {
			err = kcom_guid_format(f->iid, text, sizeof(text));
			if (KCOM_FAILED(err))
				return fail("kcom_guid_format", err);
			printf("  interface %s %s\n", text, iid_name(f->iid));
		}
	}
}

/* Step 2: ask the object for interfaces at run time; an unknown one is refused. */
static int query_interfaces(kcom_bufio_t *io)
{
	kcom_iid_t unknown;
	void *p;

	printf("== query interfaces at run time\n");
	const kcom_iid_t *wanted[] = { &kcom_iunknown_iid, &kcom_absio_iid, &kcom_bufio_iid, &kcom_bufvec_iid };
	for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
		kcom_error_t err = kcom_bufio_query(io, wanted[i], &p);
		if (KCOM_FAILED(err))
			return fail(iid_name(wanted[i]), err);
		printf("query %s: %s\n", iid_name(wanted[i]), kcom_strerror(err));
		kcom_iunknown_release(p);
	}

	kcom_error_t err = kcom_guid_parse(DEMO_UNKNOWN_IID_TEXT, &unknown);
	if (KCOM_FAILED(err))
		return fail("kcom_guid_parse", err);
	err = kcom_bufio_query(io, &unknown, &p);
	printf("query %s: %s\n", DEMO_UNKNOWN_IID_TEXT, kcom_strerror(err));
	if (err != KCOM_E_NOINTERFACE || p != NULL) {
		if (KCOM_SUCCEEDED(err))
			kcom_iunknown_release(p);
		fprintf(stderr, "kcom-demo: an unknown IID must give KCOM_E_NOINTERFACE and NULL\n");
		return 1;
	}
	return 0;
}

/* Step 3: write, then change bytes in place through a view (map, or a bounce buffer). */
static int write_and_view(kcom_bufio_t *io)
{
	char text[64];
	size_t put;
	struct kcom_view view;

	printf("== write and view\n");
	kcom_error_t err = kcom_bufio_write(io, demo_text, 0, strlen(demo_text), &put);
	if (KCOM_FAILED(err))
		return fail("kcom_bufio_write", err);
	if (put != strlen(demo_text)) {
		fprintf(stderr, "kcom-demo: short write: %zu of %zu bytes\n", put, strlen(demo_text));
		return 1;
	}
	printf("wrote %zu bytes\n", put);

	err = kcom_view_acquire(&view, kcom_bufio_absio(io), 0, 5, KCOM_VIEW_READ | KCOM_VIEW_WRITE);
	if (KCOM_FAILED(err))
		return fail("kcom_view_acquire", err);
	printf("view of [0, 5): %s\n", kcom_view_direct(&view) ? "direct mapping" : "bounce buffer (object cannot map)");
	for (size_t i = 0; i < view.len; i++) {
		char *c = (char *)view.addr + i;
		if (*c >= 'a' && *c <= 'z')
			*c = (char)(*c - 'a' + 'A');
	}
	err = kcom_view_release(&view);
	if (KCOM_FAILED(err)) {
		kcom_view_abort(&view);
		return fail("kcom_view_release", err);
	}
	if (read_all(io, text, sizeof(text), "read back"))
		return 1;
	printf("after the view: \"%s\"\n", text);
	return 0;
}

/* Step 4: wire is optional; membuf refuses it (its memory is pageable). */
static int try_wire(kcom_bufio_t *io)
{
	kcom_phys_t phys;

	printf("== wire for DMA\n");
	kcom_error_t err = kcom_bufio_wire(io, &phys, 0, 5);
	if (KCOM_SUCCEEDED(err)) {
		printf("wire: physical address 0x%llx\n", (unsigned long long)phys);
		err = kcom_bufio_unwire(io, phys, 0, 5);
		if (KCOM_FAILED(err))
			return fail("kcom_bufio_unwire", err);
		return 0;
	}
	printf("wire: %s (a client falls back to read/write or a bounce buffer)\n", kcom_strerror(err));
	return 0;
}

/* Step 5: copy-on-write: writing to the copy leaves the original as it was. */
static int copy_on_write(kcom_bufio_t *io)
{
	kcom_bufio_t *copy;
	char before[64], orig[64], copied[64];
	size_t size, put;

	printf("== copy (copy-on-write)\n");
	if (read_all(io, before, sizeof(before), "read original"))
		return 1;
	kcom_error_t err = kcom_bufio_getsize(io, &size);
	if (KCOM_FAILED(err))
		return fail("kcom_bufio_getsize", err);
	err = kcom_bufio_copy(io, 0, size, &copy);
	if (KCOM_FAILED(err))
		return fail("kcom_bufio_copy", err);
	printf("copied %zu bytes\n", size);

	int rc = 1;
	err = kcom_bufio_write(copy, "J", 0, 1, &put);
	if (KCOM_FAILED(err)) {
		fail("write to the copy", err);
		goto out;
	}
	if (read_all(copy, copied, sizeof(copied), "read copy") || read_all(io, orig, sizeof(orig), "read original"))
		goto out;
	printf("copy:     \"%s\"\n", copied);
	printf("original: \"%s\"\n", orig);
	if (strcmp(orig, before) != 0 || copied[0] != 'J') {
		fprintf(stderr, "kcom-demo: the write to the copy was seen by the original\n");
		goto out;
	}
	printf("original unchanged by the write to the copy\n");
	rc = 0;
out:
	kcom_bufio_release(copy);
	return rc;
}

/* Step 6: a range copy between two objects, then a duplicate of the result. */
static int range_copy_and_duplicate(kcom_bufio_t *io)
{
	kcom_absio_t *dst;
	kcom_bufio_t *dup = NULL;
	char text[64];
	size_t copied;

	printf("== range copy and duplicate\n");
	/* Ask the class table for the absio interface this time: any interface will do. */
	kcom_error_t err = kcom_create(&kcom_membuf_clsid, &kcom_absio_iid, (void **)&dst);
	if (KCOM_FAILED(err))
		return fail("kcom_create (absio)", err);
	printf("created a second membuf, asked for kcom_absio\n");

	int rc = 1;
	err = kcom_absio_copy_range(dst, 0, kcom_bufio_absio(io), 7, 9, &copied);
	if (KCOM_FAILED(err)) {
		fail("kcom_absio_copy_range", err);
		goto out;
	}
	printf("kcom_absio_copy_range: %zu bytes from offset 7\n", copied);

	err = kcom_bufio_duplicate(dst, 0, copied, &dup);
	if (KCOM_FAILED(err)) {
		fail("kcom_bufio_duplicate", err);
		goto out;
	}
	if (read_all(dup, text, sizeof(text), "read duplicate"))
		goto out;
	printf("kcom_bufio_duplicate: \"%s\"\n", text);
	if (strcmp(text, "component") != 0) {
		fprintf(stderr, "kcom-demo: expected \"component\"\n");
		goto out;
	}
	rc = 0;
out:
	if (dup != NULL)
		kcom_bufio_release(dup);
	kcom_absio_release(dst);
	return rc;
}

int main(void)
{
	kcom_bufio_t *io;

	printf("kcom demo\n");
	if (list_classes())
		return EXIT_FAILURE;

	printf("== create\n");
	kcom_error_t err = kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, (void **)&io);
	if (KCOM_FAILED(err)) {
		fail("kcom_create", err);
		return EXIT_FAILURE;
	}
	printf("created a membuf through the class table, asked for kcom_bufio\n");

	int rc = query_interfaces(io) || write_and_view(io) || try_wire(io) || copy_on_write(io) ||
	         range_copy_and_duplicate(io);
	uint32_t left = kcom_bufio_release(io);
	if (rc == 0)
		printf("released the buffer (%u references left)\ndone\n", (unsigned)left);
	return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
