/*
 * The registry of services: an array of (IID, interface pointer) entries in registration
 * order, under one osenv lock.
 *
 * Registering allocates (the array grows by doubling) before anything changes, so a failure
 * leaves the registry as it was.  Lookups allocate nothing: they copy pointers into the
 * caller's array and add a reference to each while the lock is held, so an object cannot be
 * unregistered and freed between being found and being referenced.  Releases of registered
 * objects happen outside the lock (a release may re-enter the registry).
 */
#include "config.h"

#include <com/osenv.h>
#include <com/refcount.h>
#include <com/registry.h>
#include "com/com-internal.h"

const kcom_iid_t kcom_registry_iid = KCOM_REGISTRY_IID;

struct registry_entry {
	kcom_iid_t iid;
	kcom_iunknown_t *obj;
};

struct registry {
	kcom_registry_t iface;
	kcom_refcount_t refs;
	kcom_lock_t lock;
	struct registry_entry *items;
	size_t count;
	size_t cap;
};

static const struct kcom_registry_ops registry_ops;

static struct registry *impl_from_registry(kcom_registry_t *reg)
{
	KCOM_ASSERT(reg->ops == &registry_ops);
	return kcom_container_of(reg, struct registry, iface);
}

/* ---- IUnknown ---- */

static kcom_error_t registry_query(kcom_registry_t *self, const kcom_iid_t *iid, void **out)
{
	struct registry *r = impl_from_registry(self);
	if (out == NULL)
		return KCOM_E_POINTER;
	*out = NULL;
	if (iid == NULL)
		return KCOM_E_POINTER;
	if (!kcom_guid_equal(iid, &kcom_iunknown_iid) && !kcom_guid_equal(iid, &kcom_registry_iid))
		return KCOM_E_NOINTERFACE;
	kcom_refcount_inc(&r->refs);
	*out = &r->iface;
	return KCOM_OK;
}

static uint32_t registry_addref(kcom_registry_t *self)
{
	return kcom_refcount_inc(&impl_from_registry(self)->refs);
}

static uint32_t registry_release(kcom_registry_t *self)
{
	struct registry *r = impl_from_registry(self);
	uint32_t n = kcom_refcount_dec(&r->refs);
	if (n != 0)
		return n;
	/* Nobody else holds the registry: no lock needed to empty it. */
	for (size_t i = 0; i < r->count; i++)
		kcom_iunknown_release(r->items[i].obj);
	kcom_free(r->items, r->cap * sizeof(*r->items), 0);
	kcom_lock_fini(&r->lock);
	kcom_free(r, sizeof(*r), 0);
	return 0;
}

/* ---- registry ---- */

/* Index of the entry (iid, obj), or r->count.  Lock held. */
static size_t registry_index_locked(struct registry *r, const kcom_iid_t *iid, kcom_iunknown_t *obj)
{
	size_t i;
	for (i = 0; i < r->count; i++)
		if (r->items[i].obj == obj && kcom_guid_equal(&r->items[i].iid, iid))
			break;
	return i;
}

static kcom_error_t registry_add(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t *obj)
{
	struct registry *r = impl_from_registry(self);
	if (iid == NULL || obj == NULL)
		return KCOM_E_INVALIDARG;
	kcom_error_t err = KCOM_OK;
	kcom_lock_acquire(&r->lock);
	if (registry_index_locked(r, iid, obj) != r->count) {
		err = KCOM_E_EXISTS;
		goto out;
	}
	if (r->count == r->cap) {
		size_t cap = r->cap != 0 ? r->cap * 2 : 8;
		struct registry_entry *items = kcom_alloc(cap * sizeof(*items), 0);
		if (items == NULL) {
			err = KCOM_E_OUTOFMEMORY;
			goto out;
		}
		if (r->count != 0)
			kcom_memcpy(items, r->items, r->count * sizeof(*items));
		kcom_free(r->items, r->cap * sizeof(*items), 0);
		r->items = items;
		r->cap = cap;
	}
	r->items[r->count].iid = *iid;
	r->items[r->count].obj = obj;
	r->count++;
	kcom_iunknown_addref(obj);
out:
	kcom_lock_release(&r->lock);
	return err;
}

static kcom_error_t registry_remove(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t *obj)
{
	struct registry *r = impl_from_registry(self);
	if (iid == NULL || obj == NULL)
		return KCOM_E_INVALIDARG;
	kcom_lock_acquire(&r->lock);
	size_t i = registry_index_locked(r, iid, obj);
	if (i == r->count) {
		kcom_lock_release(&r->lock);
		return KCOM_E_NOTFOUND;
	}
	kcom_memmove(&r->items[i], &r->items[i + 1], (r->count - i - 1) * sizeof(*r->items));
	r->count--;
	kcom_lock_release(&r->lock);
	kcom_iunknown_release(obj);
	return KCOM_OK;
}

static kcom_error_t registry_lookup(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t **out_objs,
                                    size_t max, size_t *out_count)
{
	struct registry *r = impl_from_registry(self);
	if (out_count != NULL)
		*out_count = 0;
	if (iid == NULL || out_count == NULL || (out_objs == NULL && max > 0))
		return KCOM_E_INVALIDARG;
	size_t found = 0;
	kcom_lock_acquire(&r->lock);
	for (size_t i = 0; i < r->count; i++) {
		if (!kcom_guid_equal(&r->items[i].iid, iid))
			continue;
		if (found < max) {
			out_objs[found] = r->items[i].obj;
			kcom_iunknown_addref(r->items[i].obj);
		}
		found++;
	}
	kcom_lock_release(&r->lock);
	*out_count = found;
	return KCOM_OK;
}

static kcom_error_t registry_lookup_first(kcom_registry_t *self, const kcom_iid_t *iid, kcom_iunknown_t **out_obj)
{
	if (out_obj != NULL)
		*out_obj = NULL;
	if (iid == NULL || out_obj == NULL)
		return KCOM_E_INVALIDARG;
	size_t count;
	kcom_error_t err = registry_lookup(self, iid, out_obj, 1, &count);
	if (KCOM_SUCCEEDED(err) && count == 0)
		err = KCOM_E_NOTFOUND;
	return err;
}

static const struct kcom_registry_ops registry_ops = {
	.query = registry_query,
	.addref = registry_addref,
	.release = registry_release,
	.add = registry_add,
	.remove = registry_remove,
	.lookup = registry_lookup,
	.lookup_first = registry_lookup_first,
};

kcom_error_t kcom_registry_create(kcom_registry_t **out_reg)
{
	if (out_reg == NULL)
		return KCOM_E_INVALIDARG;
	*out_reg = NULL;
	struct registry *r = kcom_alloc(sizeof(*r), 0);
	if (r == NULL)
		return KCOM_E_OUTOFMEMORY;
	kcom_error_t err = kcom_lock_init(&r->lock);
	if (KCOM_FAILED(err)) {
		kcom_free(r, sizeof(*r), 0);
		return err;
	}
	r->iface.ops = &registry_ops;
	kcom_refcount_init(&r->refs, 1);
	r->items = NULL;
	r->count = 0;
	r->cap = 0;
	*out_reg = &r->iface;
	return KCOM_OK;
}
