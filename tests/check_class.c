/*
 * The class table and kcom_create: membuf present with no set-up call, enumeration,
 * creation by class ID, test classes registered and removed, argument checks, and table
 * growth failing (OUTOFMEMORY, table unchanged).
 *
 * The table is process-global: every test removes the classes it registered, so the tests
 * pass in one process (CK_FORK=no) as well as forked.
 */
#include "config.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <com/com.h>
#include <com/debug.h>
#include <com/product.h>
#include <impls/membuf.h>

#include "com/com-internal.h"
#include "tests/suites.h"
#include "tests/testenv.h"

/* ---- test classes ---- */

#define TEST_CLSID(n) KCOM_GUID(0x0b9f5c27, 0x71d4, 0x4e0a, 0xb1, 0x3e, 0x5c, 0x08, 0x9d, 0x62, 0xa4, (n))
/* Bytes test objects are created with, to tell them from membuf's own empty buffers. */
#define TEST_SIZE 7

static unsigned long factory_calls;

/* A membuf of TEST_SIZE bytes, answered as `iid`. */
static kcom_error_t test_factory(const kcom_iid_t *iid, void **out)
{
	__atomic_add_fetch(&factory_calls, 1, __ATOMIC_RELAXED); /* two threads create at once */
	kcom_bufio_t *io;
	kcom_error_t err = kcom_membuf_create(TEST_SIZE, &io);
	if (KCOM_FAILED(err))
		return err;
	err = kcom_bufio_query(io, iid, out);
	kcom_bufio_release(io);
	return err;
}

/* A factory that fails but leaves garbage in *out: kcom_create must still give NULL. */
static kcom_error_t failing_factory(const kcom_iid_t *iid, void **out)
{
	(void)iid;
	factory_calls++;
	*out = &factory_calls;
	return KCOM_E_OUTOFMEMORY;
}

/* The test classes answer query through membuf's objects: no offsets of their own. */
static const struct kcom_class_iface test_iids[] = {
	{ &kcom_iunknown_iid, 0 }, { &kcom_absio_iid, 0 }, { &kcom_bufio_iid, 0 }, { &kcom_bufvec_iid, 0 }, { NULL, 0 },
};

static const struct kcom_class test_class = {
	.clsid = TEST_CLSID(0x00),
	.name = "test",
	.create = test_factory,
	.ifaces = test_iids,
};
/* Another description with test_class's ID. */
static const struct kcom_class test_class_same_id = {
	.clsid = TEST_CLSID(0x00),
	.name = "test-again",
	.create = test_factory,
	.ifaces = test_iids,
};
static const struct kcom_class failing_class = {
	.clsid = TEST_CLSID(0x01),
	.name = "failing",
	.create = failing_factory,
	.ifaces = NULL,
};
static const struct kcom_class order_classes[3] = {
	{ .clsid = TEST_CLSID(0x10), .name = "order-a", .create = test_factory, .ifaces = test_iids },
	{ .clsid = TEST_CLSID(0x11), .name = "order-b", .create = test_factory, .ifaces = test_iids },
	{ .clsid = TEST_CLSID(0x12), .name = "order-c", .create = test_factory, .ifaces = test_iids },
};

#define MANY 24
#define MANY_CLASS(n) { .clsid = TEST_CLSID(0x80 + (n)), .name = "many", .create = test_factory, .ifaces = test_iids }
static const struct kcom_class many_classes[MANY] = {
	MANY_CLASS(0), MANY_CLASS(1), MANY_CLASS(2), MANY_CLASS(3), MANY_CLASS(4), MANY_CLASS(5),
	MANY_CLASS(6), MANY_CLASS(7), MANY_CLASS(8), MANY_CLASS(9), MANY_CLASS(10), MANY_CLASS(11),
	MANY_CLASS(12), MANY_CLASS(13), MANY_CLASS(14), MANY_CLASS(15), MANY_CLASS(16), MANY_CLASS(17),
	MANY_CLASS(18), MANY_CLASS(19), MANY_CLASS(20), MANY_CLASS(21), MANY_CLASS(22), MANY_CLASS(23),
};

static const kcom_clsid_t unknown_clsid = TEST_CLSID(0xff);
static const kcom_iid_t unknown_iid = KCOM_GUID(0x0b9f5c27, 0x71d4, 0x4e0a, 0xb1, 0x3e, 0x5c, 0x08, 0x9d, 0x62, 0xa5, 0x00);

/* ---- helpers ---- */

#define SNAP_MAX 128

struct class_snap {
	size_t count;
	const struct kcom_class *items[SNAP_MAX];
};

/* Enumerates the whole table into `snap`. */
static void class_snapshot(struct class_snap *snap)
{
	memset(snap, 0, sizeof(*snap));
	for (size_t i = 0;; i++) {
		const struct kcom_class *c = &test_class;
		kcom_error_t err = kcom_class_enum(i, &c);
		if (err == KCOM_E_NOTFOUND) {
			ck_assert_ptr_null(c);
			break;
		}
		ck_assert_int_eq(err, KCOM_OK);
		ck_assert_ptr_nonnull(c);
		ck_assert_uint_lt(i, SNAP_MAX);
		snap->items[snap->count++] = c;
	}
}

static void class_snap_assert_equal(const struct class_snap *a, const struct class_snap *b)
{
	ck_assert_uint_eq(a->count, b->count);
	for (size_t i = 0; i < a->count; i++)
		ck_assert_ptr_eq(a->items[i], b->items[i]);
}

/* Index of `cls` in the snapshot, or -1. */
static long class_snap_index(const struct class_snap *snap, const struct kcom_class *cls)
{
	for (size_t i = 0; i < snap->count; i++)
		if (snap->items[i] == cls)
			return (long)i;
	return -1;
}

static void class_assert_absent(const kcom_clsid_t *clsid)
{
	const struct kcom_class *c = &test_class;
	ck_assert_int_eq(kcom_class_find(clsid, &c), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(c);
}

/* ---- the built-in membuf ---- */

START_TEST(test_class_membuf_builtin)
{
	const struct kcom_class *c = NULL;
	ck_assert_int_eq(kcom_class_find(&kcom_membuf_clsid, &c), KCOM_OK);
	ck_assert_ptr_eq(c, &kcom_membuf_class);
	ck_assert_str_eq(c->name, "membuf");
	ck_assert(kcom_guid_equal(&c->clsid, &kcom_membuf_clsid));
	ck_assert_ptr_nonnull(c->create);

	/* Its interface list names exactly IUnknown (first: the identity), absio, bufio, bufvec and
	 * the kit's debug and buffer info interfaces, and each entry is what query answers. */
	const kcom_iid_t *want[] = { &kcom_iunknown_iid, &kcom_absio_iid, &kcom_bufio_iid, &kcom_bufvec_iid,
	                             &kcom_debug_iid, &kcom_bufinfo_iid };
	ck_assert_ptr_nonnull(c->ifaces);
	ck_assert(kcom_guid_equal(c->ifaces[0].iid, &kcom_iunknown_iid));
	size_t n = 0;
	while (c->ifaces[n].iid != NULL)
		n++;
	ck_assert_uint_eq(n, 6);
	void *obj;
	ck_assert_int_eq(kcom_create(&kcom_membuf_clsid, &kcom_iunknown_iid, &obj), KCOM_OK);
	for (size_t w = 0; w < 6; w++) {
		int found = 0;
		for (size_t i = 0; i < n; i++) {
			if (!kcom_guid_equal(c->ifaces[i].iid, want[w]))
				continue;
			found++;
			void *itf;
			ck_assert_int_eq(kcom_iunknown_query(obj, want[w], &itf), KCOM_OK);
			ck_assert_ptr_eq(itf, (char *)obj + c->ifaces[i].offset);
			kcom_iunknown_release(itf);
		}
		ck_assert_int_eq(found, 1);
	}
	ck_assert_uint_eq(kcom_iunknown_release(obj), 0);

	/* Built-in classes are the product's: they cannot be removed, or registered again. */
	ck_assert_int_eq(kcom_class_unregister(&kcom_membuf_clsid), KCOM_E_ACCESSDENIED);
	ck_assert_int_eq(kcom_class_register(&kcom_membuf_class), KCOM_E_EXISTS);
	ck_assert_int_eq(kcom_class_find(&kcom_membuf_clsid, &c), KCOM_OK);
}
END_TEST

/* The table is the product's list, read in place: its first use allocates nothing. */
START_TEST(test_class_first_use_allocates_nothing)
{
	testenv_install();
	const struct kcom_class *c;
	ck_assert_int_eq(kcom_class_find(&kcom_membuf_clsid, &c), KCOM_OK);
	ck_assert_int_eq(kcom_class_enum(0, &c), KCOM_OK);
	ck_assert_ptr_eq(c, kcom_product.classes[0]);
	ck_assert_int_eq(kcom_class_enum(kcom_product.nclasses, &c), KCOM_E_NOTFOUND);
	unsigned long allocs = testenv_allocs();
	testenv_uninstall();
	ck_assert_uint_eq(allocs, 0);
}
END_TEST

START_TEST(test_class_enum_lists_membuf)
{
	struct class_snap snap;
	class_snapshot(&snap);
	ck_assert_uint_ge(snap.count, 1);
	int seen = 0;
	for (size_t i = 0; i < snap.count; i++) {
		ck_assert_ptr_nonnull(snap.items[i]->name);
		if (kcom_guid_equal(&snap.items[i]->clsid, &kcom_membuf_clsid)) {
			ck_assert_str_eq(snap.items[i]->name, "membuf");
			seen++;
		}
		/* Class IDs are unique in the table. */
		for (size_t j = i + 1; j < snap.count; j++)
			ck_assert(!kcom_guid_equal(&snap.items[i]->clsid, &snap.items[j]->clsid));
	}
	ck_assert_int_eq(seen, 1);

	/* Far past the end too. */
	const struct kcom_class *c = &test_class;
	ck_assert_int_eq(kcom_class_enum(snap.count + 1000, &c), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(c);
	c = &test_class;
	ck_assert_int_eq(kcom_class_enum(SIZE_MAX, &c), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_class_create_membuf)
{
	void *obj = NULL;
	ck_assert_int_eq(kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, &obj), KCOM_OK);
	ck_assert_ptr_nonnull(obj);
	kcom_bufio_t *io = obj;

	size_t size = 99;
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, 0);
	/* Exactly one reference: ours. */
	ck_assert_uint_eq(kcom_bufio_addref(io), 2);
	ck_assert_uint_eq(kcom_bufio_release(io), 1);

	void *absio = NULL, *bufio = NULL, *bufvec = NULL, *unk = NULL, *unk2 = NULL, *none = io;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_absio_iid, &absio), KCOM_OK);
	ck_assert_ptr_eq(absio, io);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufio_iid, &bufio), KCOM_OK);
	ck_assert_ptr_eq(bufio, io);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, &bufvec), KCOM_OK);
	ck_assert_ptr_nonnull(bufvec);
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_iunknown_iid, &unk), KCOM_OK);
	/* Identity: IUnknown from bufvec is IUnknown from bufio. */
	ck_assert_int_eq(kcom_bufvec_query(bufvec, &kcom_iunknown_iid, &unk2), KCOM_OK);
	ck_assert_ptr_eq(unk, unk2);
	ck_assert_int_eq(kcom_bufio_query(io, &unknown_iid, &none), KCOM_E_NOINTERFACE);
	ck_assert_ptr_null(none);
	ck_assert_uint_eq(kcom_bufio_addref(io), 7);

	ck_assert_uint_eq(kcom_absio_release(absio), 6);
	ck_assert_uint_eq(kcom_bufio_release(bufio), 5);
	ck_assert_uint_eq(kcom_bufvec_release(bufvec), 4);
	ck_assert_uint_eq(kcom_iunknown_release(unk), 3);
	ck_assert_uint_eq(kcom_iunknown_release(unk2), 2);
	ck_assert_uint_eq(kcom_bufio_release(io), 1);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);

	/* Asked as bufvec straight away. */
	obj = NULL;
	ck_assert_int_eq(kcom_create(&kcom_membuf_clsid, &kcom_bufvec_iid, &obj), KCOM_OK);
	ck_assert_ptr_nonnull(obj);
	ck_assert_uint_eq(kcom_bufvec_release(obj), 0);
}
END_TEST

START_TEST(test_class_create_unknown_iid)
{
	/* The factory builds an object, then drops it: count allocations to see it go. */
	testenv_install();
	void *obj = &obj;
	kcom_error_t err = kcom_create(&kcom_membuf_clsid, &unknown_iid, &obj);
	unsigned long allocs = testenv_allocs(), frees = testenv_frees();
	long long bytes = testenv_bytes_outstanding();
	testenv_uninstall();
	ck_assert_int_eq(err, KCOM_E_NOINTERFACE);
	ck_assert_ptr_null(obj);
	ck_assert_uint_eq(allocs, frees);
	ck_assert_int_eq(bytes, 0);

	obj = &obj;
	ck_assert_int_eq(kcom_create(&kcom_membuf_clsid, &kcom_registry_iid, &obj), KCOM_E_NOINTERFACE);
	ck_assert_ptr_null(obj);
}
END_TEST

START_TEST(test_class_unknown_clsid)
{
	void *obj = &obj;
	ck_assert_int_eq(kcom_create(&unknown_clsid, &kcom_bufio_iid, &obj), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(obj);
	class_assert_absent(&unknown_clsid);
	/* An IID is not a class. */
	obj = &obj;
	ck_assert_int_eq(kcom_create(&kcom_bufio_iid, &kcom_bufio_iid, &obj), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(obj);
}
END_TEST

/* ---- registering classes ---- */

START_TEST(test_class_register_create_unregister)
{
	struct class_snap before, during, after;
	class_snapshot(&before);
	factory_calls = 0;

	ck_assert_int_eq(kcom_class_register(&test_class), KCOM_OK);
	const struct kcom_class *c = NULL;
	ck_assert_int_eq(kcom_class_find(&test_class.clsid, &c), KCOM_OK);
	ck_assert_ptr_eq(c, &test_class);
	class_snapshot(&during);
	ck_assert_uint_eq(during.count, before.count + 1);
	ck_assert_ptr_eq(during.items[during.count - 1], &test_class); /* newest last */

	void *obj = NULL;
	ck_assert_int_eq(kcom_create(&test_class.clsid, &kcom_absio_iid, &obj), KCOM_OK);
	ck_assert_ptr_nonnull(obj);
	ck_assert_uint_eq(factory_calls, 1);
	size_t size = 0;
	ck_assert_int_eq(kcom_absio_getsize(obj, &size), KCOM_OK);
	ck_assert_uint_eq(size, TEST_SIZE);
	ck_assert_uint_eq(kcom_absio_release(obj), 0);

	/* The same class, or another with its ID, cannot go in twice. */
	ck_assert_int_eq(kcom_class_register(&test_class), KCOM_E_EXISTS);
	ck_assert_int_eq(kcom_class_register(&test_class_same_id), KCOM_E_EXISTS);
	ck_assert_int_eq(kcom_class_find(&test_class.clsid, &c), KCOM_OK);
	ck_assert_ptr_eq(c, &test_class);
	class_snapshot(&after);
	class_snap_assert_equal(&after, &during);

	ck_assert_int_eq(kcom_class_unregister(&test_class.clsid), KCOM_OK);
	class_assert_absent(&test_class.clsid);
	obj = &obj;
	ck_assert_int_eq(kcom_create(&test_class.clsid, &kcom_bufio_iid, &obj), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(obj);
	ck_assert_uint_eq(factory_calls, 1);
	ck_assert_int_eq(kcom_class_unregister(&test_class.clsid), KCOM_E_NOTFOUND);
	class_snapshot(&after);
	class_snap_assert_equal(&after, &before);

	/* Membuf is untouched. */
	ck_assert_int_eq(kcom_class_find(&kcom_membuf_clsid, &c), KCOM_OK);
	ck_assert_ptr_eq(c, &kcom_membuf_class);
}
END_TEST

START_TEST(test_class_create_factory_failure)
{
	factory_calls = 0;
	ck_assert_int_eq(kcom_class_register(&failing_class), KCOM_OK);
	void *obj = NULL;
	ck_assert_int_eq(kcom_create(&failing_class.clsid, &kcom_bufio_iid, &obj), KCOM_E_OUTOFMEMORY);
	ck_assert_uint_eq(factory_calls, 1);
	ck_assert_ptr_null(obj);
	ck_assert_int_eq(kcom_class_unregister(&failing_class.clsid), KCOM_OK);
	class_assert_absent(&failing_class.clsid);
}
END_TEST

START_TEST(test_class_unregister_keeps_order)
{
	struct class_snap before, snap;
	class_snapshot(&before);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(kcom_class_register(&order_classes[i]), KCOM_OK);
	ck_assert_int_eq(kcom_class_unregister(&order_classes[1].clsid), KCOM_OK);

	class_snapshot(&snap);
	ck_assert_uint_eq(snap.count, before.count + 2);
	for (size_t i = 0; i < before.count; i++)
		ck_assert_ptr_eq(snap.items[i], before.items[i]);
	ck_assert_ptr_eq(snap.items[before.count], &order_classes[0]);
	ck_assert_ptr_eq(snap.items[before.count + 1], &order_classes[2]);
	class_assert_absent(&order_classes[1].clsid);

	/* Back in: now the newest. */
	ck_assert_int_eq(kcom_class_register(&order_classes[1]), KCOM_OK);
	class_snapshot(&snap);
	ck_assert_uint_eq(snap.count, before.count + 3);
	ck_assert_ptr_eq(snap.items[before.count + 2], &order_classes[1]);

	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(kcom_class_unregister(&order_classes[i].clsid), KCOM_OK);
	class_snapshot(&snap);
	class_snap_assert_equal(&snap, &before);
}
END_TEST

START_TEST(test_class_null_args)
{
	static const struct kcom_class no_name = {
		.clsid = TEST_CLSID(0x20), .name = NULL, .create = test_factory, .ifaces = test_iids,
	};
	static const struct kcom_class no_factory = {
		.clsid = TEST_CLSID(0x21), .name = "no-factory", .create = NULL, .ifaces = test_iids,
	};
	struct class_snap before, after;
	class_snapshot(&before);

	ck_assert_int_eq(kcom_class_register(NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_class_register(&no_name), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_class_register(&no_factory), KCOM_E_INVALIDARG);
	class_assert_absent(&no_name.clsid);
	class_assert_absent(&no_factory.clsid);
	ck_assert_int_eq(kcom_class_unregister(NULL), KCOM_E_INVALIDARG);

	const struct kcom_class *c = &test_class;
	ck_assert_int_eq(kcom_class_find(NULL, &c), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(c);
	ck_assert_int_eq(kcom_class_find(&kcom_membuf_clsid, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_class_enum(0, NULL), KCOM_E_INVALIDARG);

	void *obj = &obj;
	ck_assert_int_eq(kcom_create(NULL, &kcom_bufio_iid, &obj), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(obj);
	obj = &obj;
	ck_assert_int_eq(kcom_create(&kcom_membuf_clsid, NULL, &obj), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(obj);
	ck_assert_int_eq(kcom_create(&kcom_membuf_clsid, &kcom_bufio_iid, NULL), KCOM_E_INVALIDARG);

	class_snapshot(&after);
	class_snap_assert_equal(&after, &before);
}
END_TEST

/* ---- allocation failure ---- */

/*
 * Classes for the growth test, IDs TEST_CLSID(0x20 + n), filled in by the test: the table
 * keeps the array it grew to for good, and with CK_FORK=no an earlier test (the two threads
 * below, whose overlap is up to the scheduler) may already have grown it past MANY entries,
 * so the test registers until a growth has been met, not a fixed count.
 */
#define GROW_MAX 96
static struct kcom_class grow_classes[GROW_MAX];

/*
 * Registers at least MANY classes, and on until one registration has needed the table to
 * grow, making the one allocation each registration may make fail once: a registration that
 * needs the table to grow returns OUTOFMEMORY and leaves the table (and the allocation counts)
 * as they were, then succeeds when memory is back.  The table keeps its grown array for good,
 * and its first array came from the hosted allocator, so the counting osenv's totals cannot
 * balance here; each failed call is checked to change none.
 */
START_TEST(test_class_register_allocfail)
{
	struct class_snap before, snap, now;
	class_snapshot(&before); /* also makes the table before counting starts */
	for (int i = 0; i < GROW_MAX; i++) {
		grow_classes[i] = (struct kcom_class){ .clsid = TEST_CLSID(0x20 + i), .name = "grow",
						       .create = test_factory, .ifaces = test_iids };
		class_assert_absent(&grow_classes[i].clsid);
	}
	testenv_install();

	int failures = 0, n = 0;
	while (n < GROW_MAX && (n < MANY || failures == 0)) {
		const struct kcom_class *cls = &grow_classes[n++];
		class_snapshot(&snap);
		unsigned long allocs = testenv_allocs(), frees = testenv_frees();
		testenv_fail_at(1);
		kcom_error_t err = kcom_class_register(cls);
		int hit = testenv_failure_hit();
		testenv_fail_at(0);
		if (err == KCOM_OK) {
			ck_assert_msg(!hit, "class %d: an allocation failed but the registration succeeded", n - 1);
			continue;
		}
		ck_assert_msg(err == KCOM_E_OUTOFMEMORY, "class %d: 0x%08x", n - 1, (unsigned)err);
		ck_assert(hit);
		failures++;
		ck_assert_uint_eq(testenv_allocs(), allocs);
		ck_assert_uint_eq(testenv_frees(), frees);
		class_snapshot(&now);
		class_snap_assert_equal(&now, &snap);
		class_assert_absent(&cls->clsid);

		ck_assert_int_eq(kcom_class_register(cls), KCOM_OK);
	}
	testenv_uninstall();
	/* A doubling table grows within GROW_MAX registrations unless it is already past that. */
	ck_assert_msg(failures >= 1, "%d registrations, none needed the table to grow", n);

	/* All are in, after what was there, in order; each one creates. */
	class_snapshot(&snap);
	ck_assert_uint_eq(snap.count, before.count + (size_t)n);
	for (size_t i = 0; i < before.count; i++)
		ck_assert_ptr_eq(snap.items[i], before.items[i]);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(class_snap_index(&snap, &grow_classes[i]), (long)(before.count + (size_t)i));
		void *obj = NULL;
		ck_assert_int_eq(kcom_create(&grow_classes[i].clsid, &kcom_bufio_iid, &obj), KCOM_OK);
		ck_assert_uint_eq(kcom_bufio_release(obj), 0);
	}

	for (int i = 0; i < n; i++)
		ck_assert_int_eq(kcom_class_unregister(&grow_classes[i].clsid), KCOM_OK);
	class_snapshot(&snap);
	class_snap_assert_equal(&snap, &before);
}
END_TEST

/* ---- two threads at once ---- */

struct class_worker {
	const struct kcom_class *classes; /* this thread's own */
	size_t n;
	int rounds;
};

static void *class_worker_main(void *arg)
{
	struct class_worker *w = arg;
	for (int r = 0; r < w->rounds; r++) {
		for (size_t i = 0; i < w->n; i++)
			if (kcom_class_register(&w->classes[i]) != KCOM_OK)
				return (void *)1;
		for (size_t i = 0; i < w->n; i++) {
			const struct kcom_class *c;
			if (kcom_class_find(&w->classes[i].clsid, &c) != KCOM_OK || c != &w->classes[i])
				return (void *)2;
			if (kcom_class_find(&kcom_membuf_clsid, &c) != KCOM_OK || c != &kcom_membuf_class)
				return (void *)3;
			void *obj;
			if (kcom_create(&w->classes[i].clsid, &kcom_absio_iid, &obj) != KCOM_OK)
				return (void *)4;
			kcom_absio_release(obj);
		}
		/* Enumeration sees a consistent table: every entry a class, then the end. */
		for (size_t i = 0;; i++) {
			const struct kcom_class *c;
			kcom_error_t err = kcom_class_enum(i, &c);
			if (err == KCOM_E_NOTFOUND)
				break;
			if (err != KCOM_OK || c == NULL || c->name == NULL)
				return (void *)5;
		}
		for (size_t i = 0; i < w->n; i++)
			if (kcom_class_unregister(&w->classes[i].clsid) != KCOM_OK)
				return (void *)6;
	}
	return NULL;
}

/* Two threads register, look up, create and unregister their own classes at once (TSan). */
START_TEST(test_class_two_threads)
{
	struct class_snap before, after;
	class_snapshot(&before);
	struct class_worker w[2] = {
		{ many_classes, MANY / 2, 200 },
		{ many_classes + MANY / 2, MANY / 2, 200 },
	};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, class_worker_main, &w[i]), 0);
	for (int i = 0; i < 2; i++) {
		void *ret;
		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	class_snapshot(&after);
	class_snap_assert_equal(&after, &before);
}
END_TEST

/*
 * A class whose factory is running cannot be removed (its code, a module's, may be about to
 * go): KCOM_E_BUSY, nothing changed, until the call returns.
 */
static pthread_barrier_t factory_in, factory_go;

static kcom_error_t blocking_factory(const kcom_iid_t *iid, void **out)
{
	pthread_barrier_wait(&factory_in);
	pthread_barrier_wait(&factory_go);
	return test_factory(iid, out);
}

static const struct kcom_class blocking_class = {
	.clsid = TEST_CLSID(0x20),
	.name = "blocking",
	.create = blocking_factory,
	.ifaces = test_iids,
};

static void *blocking_create_main(void *arg)
{
	(void)arg;
	kcom_bufio_t *io;
	if (KCOM_FAILED(kcom_create(&blocking_class.clsid, &kcom_bufio_iid, (void **)&io)))
		return (void *)1;
	kcom_bufio_release(io);
	return NULL;
}

START_TEST(test_class_unregister_while_creating)
{
	pthread_barrier_init(&factory_in, NULL, 2);
	pthread_barrier_init(&factory_go, NULL, 2);
	ck_assert_int_eq(kcom_class_register(&blocking_class), KCOM_OK);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, blocking_create_main, NULL), 0);
	pthread_barrier_wait(&factory_in); /* the factory is running */
	ck_assert_int_eq(kcom_class_unregister(&blocking_class.clsid), KCOM_E_BUSY);
	const struct kcom_class *cls;
	ck_assert_int_eq(kcom_class_find(&blocking_class.clsid, &cls), KCOM_OK);
	ck_assert_ptr_eq(cls, &blocking_class);
	pthread_barrier_wait(&factory_go);
	void *ret;
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_null(ret);
	ck_assert_int_eq(kcom_class_unregister(&blocking_class.clsid), KCOM_OK);
	ck_assert_int_eq(kcom_class_find(&blocking_class.clsid, &cls), KCOM_E_NOTFOUND);
	pthread_barrier_destroy(&factory_in);
	pthread_barrier_destroy(&factory_go);
}
END_TEST

/*
 * The internal lookup by interface (the DMA bounce helper's, for an allocator): the first open
 * class, in enumeration order, whose list names the interface; a closed one is passed over for
 * the next, and its factory call is counted as kcom_create's is.
 */
static const kcom_iid_t listed_iid = KCOM_GUID(0x0b9f5c27, 0x71d4, 0x4e0a, 0xb1, 0x3e, 0x5c, 0x08, 0x9d, 0x62, 0xa5, 0x01);
static const struct kcom_class *listing_called;

/* Records which class was called (through its factory) and gives a membuf as asked. */
static kcom_error_t listing_factory(const struct kcom_class *self, const kcom_iid_t *iid, void **out)
{
	ck_assert(kcom_guid_equal(iid, &listed_iid));
	listing_called = self;
	return test_factory(&kcom_bufio_iid, out);
}

static const struct kcom_class listing_classes[2];
static kcom_error_t listing_factory_a(const kcom_iid_t *iid, void **out)
{
	return listing_factory(&listing_classes[0], iid, out);
}
static kcom_error_t listing_factory_b(const kcom_iid_t *iid, void **out)
{
	pthread_barrier_wait(&factory_in);
	pthread_barrier_wait(&factory_go);
	return listing_factory(&listing_classes[1], iid, out);
}

static const struct kcom_class_iface listing_iids[] = { { &kcom_iunknown_iid, 0 }, { &listed_iid, 0 }, { NULL, 0 } };
static const struct kcom_class listing_classes[2] = {
	{ .clsid = TEST_CLSID(0x30), .name = "listing-a", .create = listing_factory_a, .ifaces = listing_iids },
	{ .clsid = TEST_CLSID(0x31), .name = "listing-b", .create = listing_factory_b, .ifaces = listing_iids },
};

static void *listing_create_main(void *arg)
{
	(void)arg;
	kcom_bufio_t *io;
	if (KCOM_FAILED(kcom_create_listing_(&listed_iid, (void **)&io)))
		return (void *)1;
	kcom_bufio_release(io);
	return NULL;
}

START_TEST(test_class_create_listing)
{
	void *out = &out;
	ck_assert_int_eq(kcom_create_listing_(&listed_iid, &out), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(kcom_class_register(&listing_classes[0]), KCOM_OK);
	ck_assert_int_eq(kcom_class_register(&listing_classes[1]), KCOM_OK);
	ck_assert_int_eq(kcom_create_listing_(&listed_iid, &out), KCOM_OK);
	ck_assert_ptr_eq(listing_called, &listing_classes[0]);
	kcom_bufio_release(out);

	/* The first closed (a module's, being unloaded): the second answers, counted while it runs. */
	const struct kcom_class *first = &listing_classes[0];
	ck_assert_int_eq(kcom_class_close_(&first, 1), KCOM_OK);
	pthread_barrier_init(&factory_in, NULL, 2);
	pthread_barrier_init(&factory_go, NULL, 2);
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, listing_create_main, NULL), 0);
	pthread_barrier_wait(&factory_in);
	ck_assert_int_eq(kcom_class_unregister(&listing_classes[1].clsid), KCOM_E_BUSY);
	pthread_barrier_wait(&factory_go);
	void *ret;
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_null(ret);
	ck_assert_ptr_eq(listing_called, &listing_classes[1]);
	pthread_barrier_destroy(&factory_in);
	pthread_barrier_destroy(&factory_go);

	ck_assert_int_eq(kcom_class_unregister(&listing_classes[1].clsid), KCOM_OK);
	ck_assert_int_eq(kcom_create_listing_(&listed_iid, &out), KCOM_E_NOTFOUND); /* only a closed one left */
	ck_assert_ptr_null(out);
	kcom_class_reopen_(&first, 1);
	ck_assert_int_eq(kcom_create_listing_(&listed_iid, &out), KCOM_OK);
	ck_assert_ptr_eq(listing_called, &listing_classes[0]);
	kcom_bufio_release(out);
	ck_assert_int_eq(kcom_class_unregister(&listing_classes[0].clsid), KCOM_OK);
	class_assert_absent(&listing_classes[0].clsid);
}
END_TEST

Suite *class_suite(void)
{
	Suite *s = suite_create("class");

	TCase *tc = tcase_create("builtin");
	tcase_add_test(tc, test_class_membuf_builtin);
	tcase_add_test(tc, test_class_first_use_allocates_nothing);
	tcase_add_test(tc, test_class_enum_lists_membuf);
	tcase_add_test(tc, test_class_create_membuf);
	tcase_add_test(tc, test_class_create_unknown_iid);
	tcase_add_test(tc, test_class_unknown_clsid);
	suite_add_tcase(s, tc);

	tc = tcase_create("register");
	tcase_add_test(tc, test_class_register_create_unregister);
	tcase_add_test(tc, test_class_two_threads);
	tcase_add_test(tc, test_class_unregister_while_creating);
	tcase_add_test(tc, test_class_create_listing);
	tcase_add_test(tc, test_class_create_factory_failure);
	tcase_add_test(tc, test_class_unregister_keeps_order);
	tcase_add_test(tc, test_class_null_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("allocfail");
	tcase_add_test(tc, test_class_register_allocfail);
	suite_add_tcase(s, tc);

	return s;
}
