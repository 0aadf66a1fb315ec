/*
 * The class table: the product's built-in classes, read in place from kcom_product, then the
 * classes registered at run time, in an array grown by doubling.
 *
 * Nothing is set up on first use: the built-in list is constant and the lock is a spin lock
 * whose zero value is unlocked.  The lock covers only scans and pointer swaps; the array a
 * registration needs is allocated before taking it and the old one freed after dropping it,
 * so the lock is never held across a call out of this file.  A failed growth leaves the table
 * as it was.  Built-in classes cannot be removed: they are part of the product.
 *
 * A registered class's code may go away (a module's, unloaded), so kcom_create counts the
 * calls of each registered class's factory that are running: a class with one running cannot
 * be removed (KCOM_E_BUSY), and a module about to be unloaded first closes its classes, which
 * no lookup finds from then on, so that the count of its live objects it reads next cannot be
 * raised by a create that had found the class before.
 */
#include "config.h"

#include <com/class.h>
#include <com/osenv.h>
#include <com/product.h>
#include "com/com-internal.h"

struct class_entry {
	const struct kcom_class *cls;
	uint32_t calls; /* kcom_create calls of its factory running now */
	int closed;     /* kcom_class_close_: no lookup finds it */
};

static struct {
	kcom_spinlock_t lock;
	struct class_entry *items; /* registered classes, oldest first */
	size_t count;
	size_t cap;
} class_table;

/* Whether the class answers `iid`, by its list of interfaces. */
static int class_lists(const struct kcom_class *cls, const kcom_iid_t *iid)
{
	for (const struct kcom_class_iface *f = cls->ifaces; f != NULL && f->iid != NULL; f++)
		if (kcom_guid_equal(f->iid, iid))
			return 1;
	return 0;
}

/* Whether the class is the one asked for: with this ID when `clsid`, else one listing `iid`. */
static int class_matches(const struct kcom_class *cls, const kcom_clsid_t *clsid, const kcom_iid_t *iid)
{
	return clsid != NULL ? kcom_guid_equal(&cls->clsid, clsid) : class_lists(cls, iid);
}

/* The first built-in class with ID `clsid` or, when that is NULL, listing `iid`; or NULL. */
static const struct kcom_class *class_builtin(const kcom_clsid_t *clsid, const kcom_iid_t *iid)
{
	for (size_t i = 0; i < kcom_product.nclasses; i++)
		if (class_matches(kcom_product.classes[i], clsid, iid))
			return kcom_product.classes[i];
	return NULL;
}

/* Index of the registered class with this ID, or class_table.count.  Lock held. */
static size_t class_index_locked(const kcom_clsid_t *clsid)
{
	size_t i;
	for (i = 0; i < class_table.count; i++)
		if (kcom_guid_equal(&class_table.items[i].cls->clsid, clsid))
			break;
	return i;
}

kcom_error_t kcom_class_register(const struct kcom_class *cls)
{
	if (cls == NULL || cls->name == NULL || cls->create == NULL)
		return KCOM_E_INVALIDARG;
	if (class_builtin(&cls->clsid, NULL) != NULL)
		return KCOM_E_EXISTS;

	struct class_entry *spare = NULL; /* a bigger array, made outside the lock */
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
	struct class_entry *old = NULL;
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
	class_table.items[class_table.count++] = (struct class_entry){ cls, 0, 0 };
	kcom_spin_release_(&class_table.lock);
	kcom_free(old, old_cap * sizeof(*old), 0);
	kcom_free(spare, spare_cap * sizeof(*spare), 0);
	return KCOM_OK;
}

/* Lock held: takes entry i out, keeping registration order (enumeration lists oldest first). */
static void class_drop_locked(size_t i)
{
	kcom_memmove(&class_table.items[i], &class_table.items[i + 1],
	             (class_table.count - i - 1) * sizeof(*class_table.items));
	class_table.count--;
}

kcom_error_t kcom_class_unregister(const kcom_clsid_t *clsid)
{
	if (clsid == NULL)
		return KCOM_E_INVALIDARG;
	if (class_builtin(clsid, NULL) != NULL)
		return KCOM_E_ACCESSDENIED;
	kcom_error_t err = KCOM_OK;
	kcom_spin_acquire_(&class_table.lock);
	size_t i = class_index_locked(clsid);
	if (i == class_table.count) {
		err = KCOM_E_NOTFOUND;
	} else if (class_table.items[i].calls != 0) {
		err = KCOM_E_BUSY; /* its factory is running: its code must stay */
	} else {
		class_drop_locked(i);
	}
	kcom_spin_release_(&class_table.lock);
	return err;
}

/*
 * The first class, in enumeration order, with ID `clsid` or, when that is NULL, listing
 * `iid`; a registered one is counted as called when `call` (kcom_create), and then
 * *out_counted says so.  A closed class is not found.
 */
static kcom_error_t class_lookup(const kcom_clsid_t *clsid, const kcom_iid_t *iid, int call,
                                 const struct kcom_class **out_cls, int *out_counted)
{
	*out_counted = 0;
	*out_cls = class_builtin(clsid, iid);
	if (*out_cls != NULL)
		return KCOM_OK;
	kcom_error_t err = KCOM_E_NOTFOUND;
	kcom_spin_acquire_(&class_table.lock);
	for (size_t i = 0; i < class_table.count; i++) {
		struct class_entry *e = &class_table.items[i];
		if (!class_matches(e->cls, clsid, iid) || (e->closed && clsid == NULL))
			continue; /* a closed one listing iid: a later class may list it too */
		if (!e->closed) { /* a closed class with this ID: not found */
			*out_cls = e->cls;
			if (call) {
				e->calls++;
				*out_counted = 1;
			}
			err = KCOM_OK;
		}
		break;
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
	int counted;
	return class_lookup(clsid, NULL, 0, out_cls, &counted);
}

/* Lock held: the entry of this very class description, or NULL when it is not registered. */
static struct class_entry *class_entry_locked(const struct kcom_class *cls)
{
	size_t i = class_index_locked(&cls->clsid);
	return i != class_table.count && class_table.items[i].cls == cls ? &class_table.items[i] : NULL;
}

kcom_error_t kcom_class_close_(const struct kcom_class *const *classes, size_t n)
{
	kcom_error_t err = KCOM_OK;
	kcom_spin_acquire_(&class_table.lock);
	for (size_t k = 0; k < n && KCOM_SUCCEEDED(err); k++) {
		const struct class_entry *e = class_entry_locked(classes[k]);
		if (e != NULL && e->calls != 0)
			err = KCOM_E_BUSY;
	}
	for (size_t k = 0; k < n && KCOM_SUCCEEDED(err); k++) {
		struct class_entry *e = class_entry_locked(classes[k]);
		if (e != NULL) /* one the program took out itself has nothing to close */
			e->closed = 1;
	}
	kcom_spin_release_(&class_table.lock);
	return err;
}

void kcom_class_remove_(const struct kcom_class *const *classes, size_t n)
{
	kcom_spin_acquire_(&class_table.lock);
	for (size_t k = 0; k < n; k++) {
		struct class_entry *e = class_entry_locked(classes[k]);
		if (e == NULL)
			continue;
		KCOM_ASSERT(e->closed && e->calls == 0);
		class_drop_locked((size_t)(e - class_table.items));
	}
	kcom_spin_release_(&class_table.lock);
}

void kcom_class_reopen_(const struct kcom_class *const *classes, size_t n)
{
	kcom_spin_acquire_(&class_table.lock);
	for (size_t k = 0; k < n; k++) {
		struct class_entry *e = class_entry_locked(classes[k]);
		if (e != NULL)
			e->closed = 0;
	}
	kcom_spin_release_(&class_table.lock);
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
		*out_cls = class_table.items[index].cls;
	else
		err = KCOM_E_NOTFOUND;
	kcom_spin_release_(&class_table.lock);
	return err;
}

/* Runs the class's factory, outside the lock; a registered class's code stays while counted. */
static kcom_error_t class_call(const struct kcom_class *cls, int counted, const kcom_iid_t *iid, void **out)
{
	kcom_error_t err = cls->create(iid, out);
	if (KCOM_FAILED(err))
		*out = NULL;
	if (counted) {
		kcom_spin_acquire_(&class_table.lock);
		struct class_entry *e = class_entry_locked(cls);
		KCOM_ASSERT(e != NULL && e->calls > 0); /* it cannot be removed while counted */
		if (e != NULL)
			e->calls--;
		kcom_spin_release_(&class_table.lock);
	}
	return err;
}

kcom_error_t kcom_create(const kcom_clsid_t *clsid, const kcom_iid_t *iid, void **out)
{
	if (out != NULL)
		*out = NULL;
	if (clsid == NULL || iid == NULL || out == NULL)
		return KCOM_E_INVALIDARG;
	const struct kcom_class *cls;
	int counted;
	kcom_error_t err = class_lookup(clsid, NULL, 1, &cls, &counted);
	return KCOM_FAILED(err) ? err : class_call(cls, counted, iid, out);
}

kcom_error_t kcom_create_listing_(const kcom_iid_t *iid, void **out)
{
	*out = NULL;
	const struct kcom_class *cls;
	int counted;
	kcom_error_t err = class_lookup(NULL, iid, 1, &cls, &counted);
	return KCOM_FAILED(err) ? err : class_call(cls, counted, iid, out);
}
