/*
 * The class table: an array of class pointers under one osenv lock, grown by doubling.
 *
 * The lock is made, and the built-in classes registered, the first time any entry point runs
 * (a small once-guard on an atomic state word), so kcom_create() needs no set-up call.  A
 * failed growth leaves the table as it was.
 */
#include "config.h"

#include <com/class.h>
#include <com/osenv.h>
#include "com/com-internal.h"

enum { CLASS_UNINIT = 0, CLASS_BUSY = 1, CLASS_READY = 2, CLASS_FAILED = 3 };

static struct {
	uint32_t state;
	kcom_lock_t lock;
	const struct kcom_class **items;
	size_t count;
	size_t cap;
} class_table;

/*
 * Makes the table usable.  The first caller makes the lock and registers the built-ins;
 * concurrent first callers wait for it.  Returns KCOM_OK, or the error that made set-up fail
 * (a later call tries again).
 */
static kcom_error_t class_table_ready(void)
{
	for (;;) {
		uint32_t state = __atomic_load_n(&class_table.state, __ATOMIC_ACQUIRE);
		if (state == CLASS_READY)
			return KCOM_OK;
		uint32_t expected = state;
		if (state != CLASS_BUSY &&
		    __atomic_compare_exchange_n(&class_table.state, &expected, CLASS_BUSY, 0, __ATOMIC_ACQUIRE,
		                                __ATOMIC_RELAXED))
			break;
	}

	kcom_error_t err = kcom_lock_init(&class_table.lock);
	if (KCOM_FAILED(err)) {
		__atomic_store_n(&class_table.state, CLASS_FAILED, __ATOMIC_RELEASE);
		return err;
	}
	/* The state word says nobody else is inside: take the lock only to publish. */
	err = kcom_builtin_classes_register_();
	if (KCOM_FAILED(err)) {
		kcom_free(class_table.items, class_table.cap * sizeof(*class_table.items), 0);
		class_table.items = NULL;
		class_table.count = class_table.cap = 0;
		kcom_lock_fini(&class_table.lock);
		__atomic_store_n(&class_table.state, CLASS_FAILED, __ATOMIC_RELEASE);
		return err;
	}
	__atomic_store_n(&class_table.state, CLASS_READY, __ATOMIC_RELEASE);
	return KCOM_OK;
}

/* Makes the table ready and takes its lock; on failure the lock is not held. */
static kcom_error_t class_table_lock(void)
{
	kcom_error_t err = class_table_ready();
	if (KCOM_SUCCEEDED(err))
		kcom_lock_acquire(&class_table.lock);
	return err;
}

/* Index of the class with this ID, or class_table.count.  Lock held. */
static size_t class_index_locked(const kcom_clsid_t *clsid)
{
	size_t i;
	for (i = 0; i < class_table.count; i++)
		if (kcom_guid_equal(&class_table.items[i]->clsid, clsid))
			break;
	return i;
}

static kcom_error_t class_register_locked(const struct kcom_class *cls)
{
	if (class_index_locked(&cls->clsid) != class_table.count)
		return KCOM_E_EXISTS;
	if (class_table.count == class_table.cap) {
		size_t cap = class_table.cap != 0 ? class_table.cap * 2 : 8;
		const struct kcom_class **items = kcom_alloc(cap * sizeof(*items), 0);
		if (items == NULL)
			return KCOM_E_OUTOFMEMORY;
		if (class_table.count != 0)
			kcom_memcpy(items, class_table.items, class_table.count * sizeof(*items));
		kcom_free(class_table.items, class_table.cap * sizeof(*items), 0);
		class_table.items = items;
		class_table.cap = cap;
	}
	class_table.items[class_table.count++] = cls;
	return KCOM_OK;
}

/* Called only from kcom_builtin_classes_register_() during set-up, lock not yet shared. */
kcom_error_t kcom_class_register_builtin_(const struct kcom_class *cls)
{
	return class_register_locked(cls);
}

kcom_error_t kcom_class_register(const struct kcom_class *cls)
{
	if (cls == NULL || cls->name == NULL || cls->create == NULL)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = class_table_lock();
	if (KCOM_FAILED(err))
		return err;
	err = class_register_locked(cls);
	kcom_lock_release(&class_table.lock);
	return err;
}

kcom_error_t kcom_class_unregister(const kcom_clsid_t *clsid)
{
	if (clsid == NULL)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = class_table_lock();
	if (KCOM_FAILED(err))
		return err;
	size_t i = class_index_locked(clsid);
	if (i == class_table.count) {
		err = KCOM_E_NOTFOUND;
	} else {
		/* Keep registration order: enumeration lists classes oldest first. */
		kcom_memmove(&class_table.items[i], &class_table.items[i + 1],
		             (class_table.count - i - 1) * sizeof(*class_table.items));
		class_table.count--;
	}
	kcom_lock_release(&class_table.lock);
	return err;
}

kcom_error_t kcom_class_find(const kcom_clsid_t *clsid, const struct kcom_class **out_cls)
{
	if (out_cls != NULL)
		*out_cls = NULL;
	if (clsid == NULL || out_cls == NULL)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = class_table_lock();
	if (KCOM_FAILED(err))
		return err;
	size_t i = class_index_locked(clsid);
	if (i == class_table.count)
		err = KCOM_E_NOTFOUND;
	else
		*out_cls = class_table.items[i];
	kcom_lock_release(&class_table.lock);
	return err;
}

kcom_error_t kcom_class_enum(size_t index, const struct kcom_class **out_cls)
{
	if (out_cls != NULL)
		*out_cls = NULL;
	if (out_cls == NULL)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = class_table_lock();
	if (KCOM_FAILED(err))
		return err;
	if (index < class_table.count)
		*out_cls = class_table.items[index];
	else
		err = KCOM_E_NOTFOUND;
	kcom_lock_release(&class_table.lock);
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
