/*
 * The registry of services: references taken and dropped, duplicate and missing entries,
 * lookups into the caller's array (registration order, counting past `max`), the registry's
 * own IUnknown, two threads at once, and allocation failure (OUTOFMEMORY, nothing changed,
 * nothing leaked).
 *
 * The registered objects are tobj, a minimal IUnknown defined here whose storage is the
 * test's own: its count is observable at any time and "destroyed" counts how often it
 * reached zero, so freeing exactly once is checked, and no allocation but the registry's
 * shows up in the counting osenv.
 */
#include "config.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <bufio/bufio.h>
#include <com/com.h>
#include <impls/membuf.h>

#include "tests/suites.h"
#include "tests/testenv.h"

/* ---- tobj: a test IUnknown ---- */

struct tobj {
	kcom_iunknown_t iface;
	kcom_refcount_t refs;
	uint32_t destroyed; /* times the count reached 0 (atomic) */
};

static const kcom_iid_t tobj_iid = KCOM_GUID(0x5d0c3a61, 0x2b7e, 0x4c19, 0x9a, 0x44, 0x10, 0x6f, 0xe2, 0x8b, 0x73, 0x01);
/* Two service IIDs under which the tests register things. */
static const kcom_iid_t svc_a_iid = KCOM_GUID(0x5d0c3a61, 0x2b7e, 0x4c19, 0x9a, 0x44, 0x10, 0x6f, 0xe2, 0x8b, 0x73, 0x0a);
static const kcom_iid_t svc_b_iid = KCOM_GUID(0x5d0c3a61, 0x2b7e, 0x4c19, 0x9a, 0x44, 0x10, 0x6f, 0xe2, 0x8b, 0x73, 0x0b);
static const kcom_iid_t svc_none_iid = KCOM_GUID(0x5d0c3a61, 0x2b7e, 0x4c19, 0x9a, 0x44, 0x10, 0x6f, 0xe2, 0x8b, 0x73, 0x0c);

static const struct kcom_iunknown_ops tobj_ops;

static struct tobj *tobj_from(kcom_iunknown_t *u)
{
	ck_assert_ptr_eq(u->ops, &tobj_ops);
	return (struct tobj *)(void *)((char *)u - offsetof(struct tobj, iface));
}

static kcom_error_t tobj_query(kcom_iunknown_t *self, const kcom_iid_t *iid, void **out)
{
	struct tobj *t = tobj_from(self);
	if (out == NULL)
		return KCOM_E_POINTER;
	*out = NULL;
	if (iid == NULL)
		return KCOM_E_POINTER;
	if (!kcom_guid_equal(iid, &kcom_iunknown_iid) && !kcom_guid_equal(iid, &tobj_iid))
		return KCOM_E_NOINTERFACE;
	kcom_refcount_inc(&t->refs);
	*out = &t->iface;
	return KCOM_OK;
}

static uint32_t tobj_addref(kcom_iunknown_t *self)
{
	return kcom_refcount_inc(&tobj_from(self)->refs);
}

static uint32_t tobj_release(kcom_iunknown_t *self)
{
	struct tobj *t = tobj_from(self);
	uint32_t n = kcom_refcount_dec(&t->refs);
	if (n == 0)
		__atomic_add_fetch(&t->destroyed, 1, __ATOMIC_RELAXED);
	return n;
}

static const struct kcom_iunknown_ops tobj_ops = {
	.query = tobj_query,
	.addref = tobj_addref,
	.release = tobj_release,
};

/* Makes `t` live with one reference (the test's). */
static kcom_iunknown_t *tobj_init(struct tobj *t)
{
	t->iface.ops = &tobj_ops;
	kcom_refcount_init(&t->refs, 1);
	t->destroyed = 0;
	return &t->iface;
}

static uint32_t tobj_refs(const struct tobj *t)
{
	return kcom_refcount_get(&t->refs);
}

static uint32_t tobj_destroyed(const struct tobj *t)
{
	return __atomic_load_n(&t->destroyed, __ATOMIC_RELAXED);
}

/* How many objects are registered under `iid` (asserting the lookup works). */
static size_t reg_count(kcom_registry_t *reg, const kcom_iid_t *iid)
{
	size_t count = 12345;
	ck_assert_int_eq(kcom_registry_lookup(reg, iid, NULL, 0, &count), KCOM_OK);
	return count;
}

static kcom_registry_t *reg_new(void)
{
	kcom_registry_t *reg = NULL;
	ck_assert_int_eq(kcom_registry_create(&reg), KCOM_OK);
	ck_assert_ptr_nonnull(reg);
	return reg;
}

static void counting_install(void)
{
	testenv_install();
}

static void counting_check_and_uninstall(void)
{
	unsigned long allocs = testenv_allocs(), frees = testenv_frees();
	long long bytes = testenv_bytes_outstanding();
	testenv_uninstall();
	ck_assert_uint_eq(allocs, frees);
	ck_assert_int_eq(bytes, 0);
}

/* ---- life cycle ---- */

START_TEST(test_registry_create_release)
{
	counting_install();
	kcom_registry_t *reg = reg_new();
	ck_assert_uint_ne(testenv_allocs(), 0);
	ck_assert_uint_eq(kcom_registry_addref(reg), 2);
	ck_assert_uint_eq(kcom_registry_release(reg), 1);
	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	counting_check_and_uninstall();
}
END_TEST

START_TEST(test_registry_create_null)
{
	ck_assert_int_eq(kcom_registry_create(NULL), KCOM_E_INVALIDARG);
}
END_TEST

/* ---- register / unregister ---- */

/* A host that cannot set up a lock: no registry, nothing kept. */
START_TEST(test_registry_create_no_lock)
{
	testenv_install();
	testenv_fail_locks(1);
	kcom_registry_t *reg = (void *)1;
	ck_assert_int_eq(kcom_registry_create(&reg), KCOM_E_OUTOFMEMORY);
	ck_assert_ptr_null(reg);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

START_TEST(test_registry_register_takes_reference)
{
	struct tobj t;
	kcom_iunknown_t *u = tobj_init(&t);
	kcom_registry_t *reg = reg_new();

	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, u), KCOM_OK);
	ck_assert_uint_eq(tobj_refs(&t), 2);
	ck_assert_uint_eq(reg_count(reg, &svc_a_iid), 1);
	ck_assert_uint_eq(reg_count(reg, &svc_b_iid), 0);

	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, u), KCOM_OK);
	ck_assert_uint_eq(tobj_refs(&t), 1);
	ck_assert_uint_eq(reg_count(reg, &svc_a_iid), 0);

	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, u), KCOM_E_NOTFOUND);
	ck_assert_uint_eq(tobj_refs(&t), 1);

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	ck_assert_uint_eq(tobj_refs(&t), 1);
	ck_assert_uint_eq(tobj_release(u), 0);
	ck_assert_uint_eq(tobj_destroyed(&t), 1);
}
END_TEST

/* The same, observed through a real object's addref/release return values. */
START_TEST(test_registry_register_membuf)
{
	kcom_bufio_t *io = NULL;
	ck_assert_int_eq(kcom_membuf_create(16, &io), KCOM_OK);
	kcom_iunknown_t *u = (kcom_iunknown_t *)(void *)io;
	kcom_registry_t *reg = reg_new();

	ck_assert_int_eq(kcom_registry_register(reg, &kcom_bufio_iid, u), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_addref(io), 3); /* ours, the registry's, this one */
	ck_assert_uint_eq(kcom_bufio_release(io), 2);

	kcom_iunknown_t *found = NULL;
	ck_assert_int_eq(kcom_registry_lookup_first(reg, &kcom_bufio_iid, &found), KCOM_OK);
	ck_assert_ptr_eq(found, u);
	ck_assert_uint_eq(kcom_bufio_addref(io), 4);
	ck_assert_uint_eq(kcom_bufio_release(io), 3);
	ck_assert_uint_eq(kcom_iunknown_release(found), 2);

	ck_assert_int_eq(kcom_registry_unregister(reg, &kcom_bufio_iid, u), KCOM_OK);
	ck_assert_uint_eq(kcom_bufio_addref(io), 2);
	ck_assert_uint_eq(kcom_bufio_release(io), 1);

	/* Registered again, then dropped by the registry's last release. */
	ck_assert_int_eq(kcom_registry_register(reg, &kcom_bufio_iid, u), KCOM_OK);
	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	ck_assert_uint_eq(kcom_bufio_addref(io), 2);
	ck_assert_uint_eq(kcom_bufio_release(io), 1);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
}
END_TEST

START_TEST(test_registry_register_twice)
{
	struct tobj t;
	kcom_iunknown_t *u = tobj_init(&t);
	kcom_registry_t *reg = reg_new();

	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, u), KCOM_OK);
	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, u), KCOM_E_EXISTS);
	ck_assert_uint_eq(tobj_refs(&t), 2);
	ck_assert_uint_eq(reg_count(reg, &svc_a_iid), 1);

	/* The same object under another IID is another registration. */
	ck_assert_int_eq(kcom_registry_register(reg, &svc_b_iid, u), KCOM_OK);
	ck_assert_uint_eq(tobj_refs(&t), 3);
	ck_assert_uint_eq(reg_count(reg, &svc_a_iid), 1);
	ck_assert_uint_eq(reg_count(reg, &svc_b_iid), 1);

	/* Unregistering one leaves the other. */
	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, u), KCOM_OK);
	ck_assert_uint_eq(tobj_refs(&t), 2);
	ck_assert_uint_eq(reg_count(reg, &svc_a_iid), 0);
	ck_assert_uint_eq(reg_count(reg, &svc_b_iid), 1);
	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, u), KCOM_E_NOTFOUND);

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	ck_assert_uint_eq(tobj_refs(&t), 1);
	ck_assert_uint_eq(tobj_destroyed(&t), 0);
}
END_TEST

START_TEST(test_registry_unregister_unknown)
{
	struct tobj t, other;
	kcom_iunknown_t *u = tobj_init(&t);
	kcom_iunknown_t *o = tobj_init(&other);
	kcom_registry_t *reg = reg_new();

	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, u), KCOM_E_NOTFOUND);
	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, u), KCOM_OK);
	/* Right IID wrong object, right object wrong IID. */
	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, o), KCOM_E_NOTFOUND);
	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_b_iid, u), KCOM_E_NOTFOUND);
	ck_assert_uint_eq(tobj_refs(&t), 2);
	ck_assert_uint_eq(tobj_refs(&other), 1);
	ck_assert_uint_eq(reg_count(reg, &svc_a_iid), 1);

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	ck_assert_uint_eq(tobj_refs(&t), 1);
}
END_TEST

START_TEST(test_registry_null_args)
{
	struct tobj t;
	kcom_iunknown_t *u = tobj_init(&t);
	kcom_registry_t *reg = reg_new();

	ck_assert_int_eq(kcom_registry_register(reg, NULL, u), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, NULL), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(tobj_refs(&t), 1);
	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, u), KCOM_OK);
	ck_assert_int_eq(kcom_registry_unregister(reg, NULL, u), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, NULL), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(tobj_refs(&t), 2);

	kcom_iunknown_t *arr[2] = { NULL, NULL };
	size_t count = 99;
	ck_assert_int_eq(kcom_registry_lookup(reg, NULL, arr, 2, &count), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(count, 0);
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, arr, 2, NULL), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(arr[0]);

	kcom_iunknown_t *first = u;
	ck_assert_int_eq(kcom_registry_lookup_first(reg, NULL, &first), KCOM_E_INVALIDARG);
	ck_assert_ptr_null(first);
	ck_assert_int_eq(kcom_registry_lookup_first(reg, &svc_a_iid, NULL), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(tobj_refs(&t), 2);

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	ck_assert_uint_eq(tobj_refs(&t), 1);
}
END_TEST

/* ---- lookups ---- */

#define NOBJ 5

/* Registers objs[0..NOBJ) under A, interleaved with two under B. */
static kcom_registry_t *reg_with_objects(struct tobj *objs, struct tobj *bs)
{
	kcom_registry_t *reg = reg_new();
	for (int i = 0; i < NOBJ; i++) {
		ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, tobj_init(&objs[i])), KCOM_OK);
		if (i == 1 || i == 3)
			ck_assert_int_eq(kcom_registry_register(reg, &svc_b_iid, tobj_init(&bs[i / 2])), KCOM_OK);
	}
	return reg;
}

START_TEST(test_registry_lookup_all_in_order)
{
	struct tobj objs[NOBJ], bs[2];
	kcom_registry_t *reg = reg_with_objects(objs, bs);

	kcom_iunknown_t *arr[NOBJ + 3];
	memset(arr, 0, sizeof(arr));
	size_t count = 0;
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, arr, NOBJ + 3, &count), KCOM_OK);
	ck_assert_uint_eq(count, NOBJ);
	for (int i = 0; i < NOBJ; i++) {
		ck_assert_ptr_eq(arr[i], &objs[i].iface);
		ck_assert_uint_eq(tobj_refs(&objs[i]), 3); /* ours, the registry's, the lookup's */
	}
	for (int i = NOBJ; i < NOBJ + 3; i++)
		ck_assert_ptr_null(arr[i]);
	for (int i = 0; i < NOBJ; i++)
		ck_assert_uint_eq(kcom_iunknown_release(arr[i]), 2);

	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_b_iid, arr, NOBJ + 3, &count), KCOM_OK);
	ck_assert_uint_eq(count, 2);
	ck_assert_ptr_eq(arr[0], &bs[0].iface);
	ck_assert_ptr_eq(arr[1], &bs[1].iface);
	kcom_iunknown_release(arr[0]);
	kcom_iunknown_release(arr[1]);

	/* Nothing under an IID nobody registered: success, count 0. */
	count = 77;
	arr[0] = NULL;
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_none_iid, arr, NOBJ + 3, &count), KCOM_OK);
	ck_assert_uint_eq(count, 0);
	ck_assert_ptr_null(arr[0]);

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	for (int i = 0; i < NOBJ; i++)
		ck_assert_uint_eq(tobj_refs(&objs[i]), 1);
	ck_assert_uint_eq(tobj_refs(&bs[0]), 1);
	ck_assert_uint_eq(tobj_refs(&bs[1]), 1);
}
END_TEST

START_TEST(test_registry_lookup_max_smaller)
{
	struct tobj objs[NOBJ], bs[2];
	kcom_registry_t *reg = reg_with_objects(objs, bs);

	kcom_iunknown_t *sentinel = &bs[0].iface;
	kcom_iunknown_t *arr[NOBJ];
	for (int i = 0; i < NOBJ; i++)
		arr[i] = sentinel;
	size_t count = 0;
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, arr, 3, &count), KCOM_OK);
	ck_assert_uint_eq(count, NOBJ);
	for (int i = 0; i < 3; i++) {
		ck_assert_ptr_eq(arr[i], &objs[i].iface);
		ck_assert_uint_eq(tobj_refs(&objs[i]), 3);
	}
	/* Past max: nothing written, nothing referenced. */
	ck_assert_ptr_eq(arr[3], sentinel);
	ck_assert_ptr_eq(arr[4], sentinel);
	ck_assert_uint_eq(tobj_refs(&objs[3]), 2);
	ck_assert_uint_eq(tobj_refs(&objs[4]), 2);
	for (int i = 0; i < 3; i++)
		kcom_iunknown_release(arr[i]);

	/* max 0 only counts, with or without an array. */
	count = 0;
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, NULL, 0, &count), KCOM_OK);
	ck_assert_uint_eq(count, NOBJ);
	arr[0] = sentinel;
	count = 0;
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, arr, 0, &count), KCOM_OK);
	ck_assert_uint_eq(count, NOBJ);
	ck_assert_ptr_eq(arr[0], sentinel);
	for (int i = 0; i < NOBJ; i++)
		ck_assert_uint_eq(tobj_refs(&objs[i]), 2);

	/* NULL array with room claimed is refused, and references nothing. */
	count = 55;
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, NULL, 2, &count), KCOM_E_INVALIDARG);
	ck_assert_uint_eq(count, 0);
	for (int i = 0; i < NOBJ; i++)
		ck_assert_uint_eq(tobj_refs(&objs[i]), 2);

	/* max exactly count. */
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, arr, NOBJ, &count), KCOM_OK);
	ck_assert_uint_eq(count, NOBJ);
	for (int i = 0; i < NOBJ; i++) {
		ck_assert_ptr_eq(arr[i], &objs[i].iface);
		ck_assert_uint_eq(kcom_iunknown_release(arr[i]), 2);
	}

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	for (int i = 0; i < NOBJ; i++)
		ck_assert_uint_eq(tobj_refs(&objs[i]), 1);
}
END_TEST

START_TEST(test_registry_order_after_unregister)
{
	struct tobj objs[NOBJ], bs[2];
	kcom_registry_t *reg = reg_with_objects(objs, bs);

	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, &objs[1].iface), KCOM_OK);
	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, &objs[3].iface), KCOM_OK);
	/* Registered again: now the newest. */
	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, &objs[1].iface), KCOM_OK);

	static const int want[] = { 0, 2, 4, 1 };
	kcom_iunknown_t *arr[NOBJ];
	size_t count = 0;
	ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, arr, NOBJ, &count), KCOM_OK);
	ck_assert_uint_eq(count, 4);
	for (int i = 0; i < 4; i++) {
		ck_assert_ptr_eq(arr[i], &objs[want[i]].iface);
		kcom_iunknown_release(arr[i]);
	}
	ck_assert_uint_eq(tobj_refs(&objs[3]), 1);
	ck_assert_uint_eq(reg_count(reg, &svc_b_iid), 2);

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	for (int i = 0; i < NOBJ; i++)
		ck_assert_uint_eq(tobj_refs(&objs[i]), 1);
}
END_TEST

START_TEST(test_registry_lookup_first)
{
	struct tobj t1, t2;
	kcom_iunknown_t *u1 = tobj_init(&t1);
	kcom_iunknown_t *u2 = tobj_init(&t2);
	kcom_registry_t *reg = reg_new();

	kcom_iunknown_t *first = u1; /* must be cleared */
	ck_assert_int_eq(kcom_registry_lookup_first(reg, &svc_a_iid, &first), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(first);

	ck_assert_int_eq(kcom_registry_register(reg, &svc_b_iid, u2), KCOM_OK);
	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, u1), KCOM_OK);
	ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, u2), KCOM_OK);

	ck_assert_int_eq(kcom_registry_lookup_first(reg, &svc_a_iid, &first), KCOM_OK);
	ck_assert_ptr_eq(first, u1);
	ck_assert_uint_eq(tobj_refs(&t1), 3);
	ck_assert_uint_eq(tobj_refs(&t2), 3); /* ours and two registrations: not looked up */
	ck_assert_uint_eq(kcom_iunknown_release(first), 2);

	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, u1), KCOM_OK);
	ck_assert_int_eq(kcom_registry_lookup_first(reg, &svc_a_iid, &first), KCOM_OK);
	ck_assert_ptr_eq(first, u2);
	ck_assert_uint_eq(tobj_refs(&t2), 4);
	kcom_iunknown_release(first);

	ck_assert_int_eq(kcom_registry_unregister(reg, &svc_a_iid, u2), KCOM_OK);
	first = u2;
	ck_assert_int_eq(kcom_registry_lookup_first(reg, &svc_a_iid, &first), KCOM_E_NOTFOUND);
	ck_assert_ptr_null(first);

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	ck_assert_uint_eq(tobj_refs(&t1), 1);
	ck_assert_uint_eq(tobj_refs(&t2), 1);
}
END_TEST

START_TEST(test_registry_release_releases_held)
{
	struct tobj objs[3];
	kcom_registry_t *reg = reg_new();
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, tobj_init(&objs[i])), KCOM_OK);
	ck_assert_int_eq(kcom_registry_register(reg, &svc_b_iid, &objs[2].iface), KCOM_OK);

	/* The registry holds the only references now. */
	for (int i = 0; i < 3; i++)
		kcom_iunknown_release(&objs[i].iface);
	ck_assert_uint_eq(tobj_refs(&objs[0]), 1);
	ck_assert_uint_eq(tobj_refs(&objs[2]), 2);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(tobj_destroyed(&objs[i]), 0);

	/* A reference to the registry from elsewhere keeps everything alive. */
	ck_assert_uint_eq(kcom_registry_addref(reg), 2);
	ck_assert_uint_eq(kcom_registry_release(reg), 1);
	for (int i = 0; i < 3; i++)
		ck_assert_uint_eq(tobj_destroyed(&objs[i]), 0);

	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(tobj_destroyed(&objs[i]), 1);
		ck_assert_uint_eq(tobj_refs(&objs[i]), 0);
	}
}
END_TEST

/* ---- the registry's own IUnknown ---- */

START_TEST(test_registry_query)
{
	kcom_registry_t *reg = reg_new();
	void *out = NULL;

	ck_assert_int_eq(kcom_registry_query(reg, &kcom_iunknown_iid, &out), KCOM_OK);
	ck_assert_ptr_eq(out, reg);
	ck_assert_uint_eq(kcom_registry_addref(reg), 3);
	ck_assert_uint_eq(kcom_registry_release(reg), 2);
	/* Through the IUnknown we got, asking for the registry gives the same pointer back. */
	void *again = NULL;
	ck_assert_int_eq(kcom_iunknown_query(out, &kcom_registry_iid, &again), KCOM_OK);
	ck_assert_ptr_eq(again, reg);
	ck_assert_uint_eq(kcom_iunknown_release(out), 2);
	ck_assert_uint_eq(kcom_registry_release(again), 1);

	out = reg;
	ck_assert_int_eq(kcom_registry_query(reg, &kcom_registry_iid, &out), KCOM_OK);
	ck_assert_ptr_eq(out, reg);
	ck_assert_uint_eq(kcom_registry_release(out), 1);

	out = reg;
	ck_assert_int_eq(kcom_registry_query(reg, &svc_a_iid, &out), KCOM_E_NOINTERFACE);
	ck_assert_ptr_null(out);
	out = reg;
	ck_assert_int_eq(kcom_registry_query(reg, &kcom_bufio_iid, &out), KCOM_E_NOINTERFACE);
	ck_assert_ptr_null(out);
	out = reg;
	ck_assert_int_eq(kcom_registry_query(reg, NULL, &out), KCOM_E_POINTER);
	ck_assert_ptr_null(out);
	ck_assert_int_eq(kcom_registry_query(reg, &kcom_iunknown_iid, NULL), KCOM_E_POINTER);

	/* No failed query left a reference behind. */
	ck_assert_uint_eq(kcom_registry_addref(reg), 2);
	ck_assert_uint_eq(kcom_registry_release(reg), 1);
	ck_assert_uint_eq(kcom_registry_release(reg), 0);
}
END_TEST

/* ---- two threads ---- */

#define THREAD_OBJS 4
#define THREAD_ITERS 2000

struct reg_worker {
	kcom_registry_t *reg;
	pthread_barrier_t *start;
	struct tobj objs[THREAD_OBJS];
	unsigned long errors;      /* calls that returned something unexpected */
	unsigned long saw_other;   /* lookups that also found the other thread's objects */
};

static void *reg_worker_run(void *arg)
{
	struct reg_worker *w = arg;
	kcom_iunknown_t *arr[2 * THREAD_OBJS + 1];

	pthread_barrier_wait(w->start);
	for (int it = 0; it < THREAD_ITERS; it++) {
		for (int i = 0; i < THREAD_OBJS; i++)
			if (kcom_registry_register(w->reg, &svc_a_iid, &w->objs[i].iface) != KCOM_OK)
				w->errors++;

		size_t count = 0;
		if (kcom_registry_lookup(w->reg, &svc_a_iid, arr, 2 * THREAD_OBJS + 1, &count) != KCOM_OK ||
		    count < THREAD_OBJS || count > 2 * THREAD_OBJS) {
			w->errors++;
			count = 0;
		}
		/* Our own objects appear, in the order we registered them. */
		int next = 0;
		for (size_t k = 0; k < count; k++) {
			if (next < THREAD_OBJS && arr[k] == &w->objs[next].iface)
				next++;
			else if (arr[k]->ops != &tobj_ops)
				w->errors++;
		}
		if (next != THREAD_OBJS)
			w->errors++;
		if (count > THREAD_OBJS)
			w->saw_other++;
		for (size_t k = 0; k < count; k++)
			kcom_iunknown_release(arr[k]);

		kcom_iunknown_t *first = NULL;
		if (kcom_registry_lookup_first(w->reg, &svc_a_iid, &first) != KCOM_OK || first == NULL)
			w->errors++;
		else
			kcom_iunknown_release(first);

		for (int i = 0; i < THREAD_OBJS; i++)
			if (kcom_registry_unregister(w->reg, &svc_a_iid, &w->objs[i].iface) != KCOM_OK)
				w->errors++;
	}
	return NULL;
}

START_TEST(test_registry_threads)
{
	kcom_registry_t *reg = reg_new();
	pthread_barrier_t start;
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
	struct reg_worker w[2];
	pthread_t th[2];
	for (int t = 0; t < 2; t++) {
		w[t].reg = reg;
		w[t].start = &start;
		w[t].errors = 0;
		w[t].saw_other = 0;
		for (int i = 0; i < THREAD_OBJS; i++)
			tobj_init(&w[t].objs[i]);
	}
	for (int t = 0; t < 2; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, reg_worker_run, &w[t]), 0);
	for (int t = 0; t < 2; t++)
		ck_assert_int_eq(pthread_join(th[t], NULL), 0);
	pthread_barrier_destroy(&start);

	for (int t = 0; t < 2; t++) {
		ck_assert_uint_eq(w[t].errors, 0);
		for (int i = 0; i < THREAD_OBJS; i++) {
			ck_assert_uint_eq(tobj_refs(&w[t].objs[i]), 1);
			ck_assert_uint_eq(tobj_destroyed(&w[t].objs[i]), 0);
		}
	}
	ck_assert_uint_eq(reg_count(reg, &svc_a_iid), 0);
	ck_assert_uint_eq(kcom_registry_release(reg), 0);
	for (int t = 0; t < 2; t++)
		for (int i = 0; i < THREAD_OBJS; i++)
			ck_assert_uint_eq(tobj_destroyed(&w[t].objs[i]), 0);
}
END_TEST

/* ---- allocation failure ---- */

START_TEST(test_registry_create_allocfail)
{
	counting_install();
	unsigned long n;
	for (n = 1; n < 100; n++) {
		testenv_fail_at(n);
		kcom_registry_t *reg = (kcom_registry_t *)&n; /* must be cleared on failure */
		kcom_error_t err = kcom_registry_create(&reg);
		int hit = testenv_failure_hit();
		testenv_fail_at(0);
		if (hit) {
			ck_assert_int_eq(err, KCOM_E_OUTOFMEMORY);
			ck_assert_ptr_null(reg);
			ck_assert_uint_eq(testenv_allocs(), testenv_frees());
			ck_assert_int_eq(testenv_bytes_outstanding(), 0);
			continue;
		}
		ck_assert_int_eq(err, KCOM_OK);
		ck_assert_ptr_nonnull(reg);
		ck_assert_uint_eq(kcom_registry_release(reg), 0);
		break;
	}
	ck_assert_uint_gt(n, 1); /* at least one allocation was made to fail */
	ck_assert_uint_lt(n, 100);
	counting_check_and_uninstall();
}
END_TEST

/* Enough entries to grow the array several times (it starts at 8 and doubles). */
#define GROW_OBJS 40

START_TEST(test_registry_register_allocfail)
{
	static struct tobj objs[GROW_OBJS];
	counting_install();
	unsigned long n;
	for (n = 1; n < 1000; n++) {
		kcom_registry_t *reg = reg_new();
		for (int i = 0; i < GROW_OBJS; i++)
			tobj_init(&objs[i]);
		int failures = 0, hit = 0;
		testenv_fail_at(n);
		for (int i = 0; i < GROW_OBJS; i++) {
			size_t before = reg_count(reg, &svc_a_iid);
			kcom_error_t err = kcom_registry_register(reg, &svc_a_iid, &objs[i].iface);
			if (err == KCOM_OK) {
				ck_assert_uint_eq(reg_count(reg, &svc_a_iid), before + 1);
				continue;
			}
			/* Failed: nothing changed, no reference taken; then it works once memory is back. */
			ck_assert_msg(err == KCOM_E_OUTOFMEMORY, "n=%lu entry %d: 0x%08x", n, i, (unsigned)err);
			ck_assert(testenv_failure_hit());
			hit = 1;
			failures++;
			ck_assert_uint_eq(reg_count(reg, &svc_a_iid), before);
			ck_assert_uint_eq(tobj_refs(&objs[i]), 1);
			kcom_iunknown_t *first = NULL;
			if (i > 0) {
				ck_assert_int_eq(kcom_registry_lookup_first(reg, &svc_a_iid, &first), KCOM_OK);
				ck_assert_ptr_eq(first, &objs[0].iface);
				kcom_iunknown_release(first);
			}
			testenv_fail_at(0);
			ck_assert_int_eq(kcom_registry_register(reg, &svc_a_iid, &objs[i].iface), KCOM_OK);
			ck_assert_uint_eq(reg_count(reg, &svc_a_iid), before + 1);
		}
		/* A failed allocation that a registration swallowed would show here. */
		hit |= testenv_failure_hit();
		testenv_fail_at(0);
		ck_assert_int_eq(failures, hit);

		/* Every entry made it, in order, each holding one reference. */
		kcom_iunknown_t *arr[GROW_OBJS];
		size_t count = 0;
		unsigned long allocs = testenv_allocs();
		ck_assert_int_eq(kcom_registry_lookup(reg, &svc_a_iid, arr, GROW_OBJS, &count), KCOM_OK);
		ck_assert_uint_eq(testenv_allocs(), allocs); /* lookups allocate nothing */
		ck_assert_uint_eq(count, GROW_OBJS);
		for (int i = 0; i < GROW_OBJS; i++) {
			ck_assert_ptr_eq(arr[i], &objs[i].iface);
			ck_assert_uint_eq(kcom_iunknown_release(arr[i]), 2);
		}
		ck_assert_uint_eq(kcom_registry_release(reg), 0);
		for (int i = 0; i < GROW_OBJS; i++) {
			ck_assert_uint_eq(tobj_refs(&objs[i]), 1);
			ck_assert_uint_eq(tobj_destroyed(&objs[i]), 0);
		}
		ck_assert_uint_eq(testenv_allocs(), testenv_frees());
		ck_assert_int_eq(testenv_bytes_outstanding(), 0);
		if (!hit)
			break;
	}
	/* 8 -> 16 -> 32 -> 64: four allocations to make fail, then a clean pass. */
	ck_assert_uint_eq(n, 5);
	counting_check_and_uninstall();
}
END_TEST

Suite *registry_suite(void)
{
	Suite *s = suite_create("registry");

	TCase *tc = tcase_create("basics");
	tcase_add_test(tc, test_registry_create_release);
	tcase_add_test(tc, test_registry_create_null);
	tcase_add_test(tc, test_registry_create_no_lock);
	tcase_add_test(tc, test_registry_register_takes_reference);
	tcase_add_test(tc, test_registry_register_membuf);
	tcase_add_test(tc, test_registry_register_twice);
	tcase_add_test(tc, test_registry_unregister_unknown);
	tcase_add_test(tc, test_registry_null_args);
	tcase_add_test(tc, test_registry_query);
	tcase_add_test(tc, test_registry_release_releases_held);
	suite_add_tcase(s, tc);

	tc = tcase_create("lookup");
	tcase_add_test(tc, test_registry_lookup_all_in_order);
	tcase_add_test(tc, test_registry_lookup_max_smaller);
	tcase_add_test(tc, test_registry_order_after_unregister);
	tcase_add_test(tc, test_registry_lookup_first);
	suite_add_tcase(s, tc);

	tc = tcase_create("threads");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_registry_threads);
	suite_add_tcase(s, tc);

	tc = tcase_create("allocfail");
	tcase_add_test(tc, test_registry_create_allocfail);
	tcase_add_test(tc, test_registry_register_allocfail);
	suite_add_tcase(s, tc);

	return s;
}
