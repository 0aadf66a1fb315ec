/*
 * Test modules for tests/check_module.c, one source built several times: TESTMOD_VARIANT picks
 * what the module does wrong (or nothing).  Each module's class makes a tiny IUnknown object
 * from malloc and counts the live ones, so unloading can be refused while one exists.
 *
 *   1 kcomtest_good     a well-formed module with one class
 *   2 kcomtest_noentry  exports no kcom_module
 *   3 kcomtest_badinit  init fails (after registering a service it then withdraws)
 *   4 kcomtest_clash    a well-formed module whose class ID is kcomtest_good's
 *   5 kcomtest_badabi   a descriptor from another loader version
 *   6 kcomtest_half     two classes: a class of its own, then kcomtest_good's class ID, so its
 *                       load fails after the first is registered (and may have been used)
 *   7 kcomtest_empty    a descriptor with no classes
 *   8 kcomtest_reenter  init calls the loader (loads kcomtest_good, asks for the module of
 *                       its class), which must refuse, not wait for itself; init fails with
 *                       what the loader said (needs kcomtest_good loaded)
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>

#include <com/class.h>
#include <com/iunknown.h>
#include <com/module.h>

#ifndef TESTMOD_VARIANT
#error "TESTMOD_VARIANT must be defined"
#endif

/* The class ID tests/check_module.c creates objects of. */
#define TESTMOD_CLSID KCOM_GUID(0x7e57c1a5, 0x0001, 0x4000, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01)

struct testobj {
	kcom_iunknown_t unk;
	uint32_t refs;
};

static uint32_t testmod_live;

static kcom_error_t testobj_query(kcom_iunknown_t *self, const kcom_iid_t *iid, void **out)
{
	if (out == NULL || iid == NULL)
		return KCOM_E_POINTER;
	*out = NULL;
	if (!kcom_guid_equal(iid, &kcom_iunknown_iid))
		return KCOM_E_NOINTERFACE;
	__atomic_add_fetch(&((struct testobj *)(void *)self)->refs, 1, __ATOMIC_RELAXED);
	*out = self;
	return KCOM_OK;
}

static uint32_t testobj_addref(kcom_iunknown_t *self)
{
	return __atomic_add_fetch(&((struct testobj *)(void *)self)->refs, 1, __ATOMIC_RELAXED);
}

static uint32_t testobj_release(kcom_iunknown_t *self)
{
	uint32_t n = __atomic_sub_fetch(&((struct testobj *)(void *)self)->refs, 1, __ATOMIC_ACQ_REL);
	if (n == 0) {
		free(self);
		__atomic_sub_fetch(&testmod_live, 1, __ATOMIC_RELEASE); /* last: the code may go after */
	}
	return n;
}

static const struct kcom_iunknown_ops testobj_ops = {
	.query = testobj_query,
	.addref = testobj_addref,
	.release = testobj_release,
};

static kcom_error_t testmod_create(const kcom_iid_t *iid, void **out)
{
	*out = NULL;
	struct testobj *o = malloc(sizeof(*o));
	if (o == NULL)
		return KCOM_E_OUTOFMEMORY;
	o->unk.ops = &testobj_ops;
	o->refs = 1;
	__atomic_add_fetch(&testmod_live, 1, __ATOMIC_ACQ_REL);
	kcom_error_t err = testobj_query(&o->unk, iid, out);
	testobj_release(&o->unk);
	return err;
}

static uint32_t testmod_count(void)
{
	return __atomic_load_n(&testmod_live, __ATOMIC_ACQUIRE);
}

static const struct kcom_class_iface testmod_ifaces[] = {
	{ &kcom_iunknown_iid, 0 },
	{ NULL, 0 },
};

static const struct kcom_class testmod_class = {
	.clsid = TESTMOD_CLSID,
	.name = TESTMOD_VARIANT == 4 ? "kcomtest-clash" : "kcomtest",
	.create = testmod_create,
	.ifaces = testmod_ifaces,
};

#if TESTMOD_VARIANT == 6
/* The class ID of kcomtest_half's own class. */
#define TESTMOD_HALF_CLSID KCOM_GUID(0x7e57c1a5, 0x0001, 0x4000, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06)

static const struct kcom_class testmod_own_class = {
	.clsid = TESTMOD_HALF_CLSID,
	.name = "kcomtest-half",
	.create = testmod_create,
	.ifaces = testmod_ifaces,
};

static const struct kcom_class *const testmod_classes[] = { &testmod_own_class, &testmod_class };
#else
static const struct kcom_class *const testmod_classes[] = { &testmod_class };
#endif

#if TESTMOD_VARIANT == 3
static kcom_iunknown_t *testmod_service;

/* Registers a service, then fails as a module whose set-up breaks halfway would, undoing it. */
static kcom_error_t testmod_init(kcom_registry_t *reg)
{
	if (reg != NULL) {
		kcom_error_t err = testmod_create(&kcom_iunknown_iid, (void **)&testmod_service);
		if (KCOM_FAILED(err))
			return err;
		kcom_registry_register(reg, &kcom_iunknown_iid, testmod_service);
		kcom_registry_unregister(reg, &kcom_iunknown_iid, testmod_service);
		kcom_iunknown_release(testmod_service);
	}
	return KCOM_E_ACCESSDENIED;
}
#elif TESTMOD_VARIANT == 8
static kcom_error_t testmod_init(kcom_registry_t *reg)
{
	(void)reg;
	kcom_module_t *dep;
	kcom_error_t err = kcom_module_load("kcomtest_good", &dep);
	if (KCOM_SUCCEEDED(err)) { /* it should not have: undo it, and say so */
		kcom_module_unload(dep);
		return KCOM_E_FAIL;
	}
	/* kcomtest_good is loaded (the test loads it first): asked from here, no module is named. */
	const struct kcom_class *cls;
	if (kcom_class_find(&testmod_class.clsid, &cls) != KCOM_OK || kcom_module_of_class(cls) != NULL)
		return KCOM_E_FAIL;
	return err;
}
#else
#define testmod_init NULL
#endif

#if TESTMOD_VARIANT != 2
const struct kcom_module_desc kcom_module = {
	.abi = TESTMOD_VARIANT == 5 ? KCOM_MODULE_ABI + 100 : KCOM_MODULE_ABI,
	.name = "kcomtest",
	.description = "a module for tests/check_module.c",
	.classes = testmod_classes,
	.nclasses = TESTMOD_VARIANT == 7 ? 0 : sizeof(testmod_classes) / sizeof(testmod_classes[0]),
	.init = testmod_init,
	.live = testmod_count,
};
#else
/* Something exported, so the file is a valid shared object that is not a kcom module (and
 * the class stays referenced, as in the other variants). */
const struct kcom_class *const *const kcomtest_not_a_module = testmod_classes;
uint32_t (*const kcomtest_count)(void) = testmod_count;
#endif
