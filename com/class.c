/*
 * The class table: the product's built-in classes, read in place from kcom_product, then the
 * classes registered at run time, in an array grown by doubling.
 *
 * Nothing is set up on first use: the built-in list is constant and the lock is a spin lock
 * whose zero value is unlocked.  The lock covers only scans and pointer swaps; the array a
 * registration needs is allocated before taking it and the old one freed after dropping it,
 * so the lock is never held across a call out of this file.  A failed growth leaves the table
 * as it was.  Built-in classes cannot be removed: they are part of the product.
 */
#include "config.h"

#include <com/class.h>
#include <com/osenv.h>
#include <com/product.h>
#include "com/com-internal.h"

static struct {
	kcom_spinlock_t lock;
	const struct kcom_class **items; /* registered classes, oldest first */
	size_t count;
	size_t cap;
} class_table;

/* The built-in class with this ID, or NULL. */
static const struct kcom_class *class_builtin(const kcom_clsid_t *clsid)
{
	for (size_t i = 0; i < kcom_product.nclasses; i++)
		if (kcom_guid_equal(&kcom_product.classes[i]->clsid, clsid))
			return kcom_product.classes[i];
	return NULL;
}

/* Index of the registered class with this ID, or class_table.count.  Lock held. */
static size_t class_index_locked(const kcom_clsid_t *clsid)
{
	size_t i;
	for (i = 0; i < class_table.count; i++)
		if (kcom_guid_equal(&class_table.items[i]->clsid, clsid))
			break;
	return i;
}

kcom_error_t kcom_class_register(const struct kcom_class *cls)
{
	if (cls == NULL || cls->name == NULL || cls->create == NULL)
		return KCOM_E_INVALIDARG;
	if (class_builtin(&cls->clsid) != NULL)
		return KCOM_E_EXISTS;

	const struct kcom_class **spare = NULL; /* a bigger array, made outside the lock */
	size_t spare_cap = 0;
	for (;;) {
		kcom_spin_acquire_(&class_table.lock);
		if (class_index_locked(&cls->clsid) != class_table.count) {
			kcom_spin_release_(&class_table.lock);
			kcom_free(spare, spare_cap * sizeof(*spare), 0);
			return KCOM_E_EXISTS;
		}
		if (class_table.count < class_table.cap || spare_cap > class_table.cap)
			break;
		size_t want = class_table.cap != 0 ? class_table.cap * 2 : 8;
		kcom_spin_release_(&class_table.lock);
		kcom_free(spare, spare_cap * sizeof(*spare), 0);
		spare = kcom_alloc(want * sizeof(*spare), 0);
		if (spare == NULL)
			return KCOM_E_OUTOFMEMORY;
		spare_cap = want;
	}

	/* Lock held, room assured: swap in the spare array only when the old one is full. */
	const struct kcom_class **old = NULL;
	size_t old_cap = 0;
	if (class_table.count == class_table.cap) {
		if (class_table.count != 0)
			kcom_memcpy(spare, class_table.items, class_table.count * sizeof(*spare));
		old = class_table.items;
		old_cap = class_table.cap;
		class_table.items = spare;
		class_table.cap = spare_cap;
		spare = NULL;
	}
	class_table.items[class_table.count++] = cls;
	kcom_spin_release_(&class_table.lock);
	kcom_free(old, old_cap * sizeof(*old), 0);
	kcom_free(spare, spare_cap * sizeof(*spare), 0);
	return KCOM_OK;
}

kcom_error_t kcom_class_unregister(const kcom_clsid_t *clsid)
{
	if (clsid == NULL)
		return KCOM_E_INVALIDARG;
	if (class_builtin(clsid) != NULL)
		return KCOM_E_ACCESSDENIED;
	kcom_error_t err = KCOM_OK;
	kcom_spin_acquire_(&class_table.lock);
	size_t i = class_index_locked(clsid);
	if (i == class_table.count) {
		err = KCOM_E_NOTFOUND;
	} else {
		/* Keep registration order: enumeration lists classes oldest first. */
		kcom_memmove(&class_table.items[i], &class_table.items[i + 1],
		             (class_table.count - i - 1) * sizeof(*class_table.items));
		class_table.count--;
	}
	kcom_spin_release_(&class_table.lock);
	return err;
}

kcom_error_t kcom_class_find(const kcom_clsid_t *clsid, const struct kcom_class **out_cls)
{
	if (out_cls != NULL)
		*out_cls = NULL;
	if (clsid == NULL || out_cls == NULL)
		return KCOM_E_INVALIDARG;
	const struct kcom_class *cls = class_builtin(clsid);
	if (cls != NULL) {
		*out_cls = cls;
		return KCOM_OK;
	}
	kcom_error_t err = KCOM_OK;
	kcom_spin_acquire_(&class_table.lock);
	size_t i = class_index_locked(clsid);
	if (i == class_table.count)
		err = KCOM_E_NOTFOUND;
	else
		*out_cls = class_table.items[i];
	kcom_spin_release_(&class_table.lock);
	return err;
}

kcom_error_t kcom_class_enum(size_t index, const struct kcom_class **out_cls)
{
	if (out_cls != NULL)
		*out_cls = NULL;
	if (out_cls == NULL)
		return KCOM_E_INVALIDARG;
	if (index < kcom_product.nclasses) {
		*out_cls = kcom_product.classes[index];
		return KCOM_OK;
	}
	index -= kcom_product.nclasses;
	kcom_error_t err = KCOM_OK;
	kcom_spin_acquire_(&class_table.lock);
	if (index < class_table.count)
		*out_cls = class_table.items[index];
	else
		err = KCOM_E_NOTFOUND;
	kcom_spin_release_(&class_table.lock);
	return err;
}

kcom_error_t kcom_create(const kcom_clsid_t *clsid, const kcom_iid_t *iid, void **out)
{
	if (out != NULL)
		*out = NULL;
	if (clsid == NULL || iid == NULL || out == NULL)
		return KCOM_E_INVALIDARG;
	const struct kcom_class *cls;
	kcom_error_t err = kcom_class_find(clsid, &cls);
	if (KCOM_FAILED(err))
		return err;
	/* Classes are static descriptions: calling the factory outside the lock is safe. */
	err = cls->create(iid, out);
	if (KCOM_FAILED(err))
		*out = NULL;
	return err;
}
