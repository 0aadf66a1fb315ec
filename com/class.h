/**
 * @file com/class.h
 * @brief The class table: class IDs, names and factories; kcom_create().
 *
 * Each implementation is described by a ::kcom_class (a static, constant description).  The
 * built-in classes are the product's (com/product.h: the hosted library's list, or a kernel's
 * own): the table reads that list in place, so kcom_create() works with no set-up call and
 * its first use allocates nothing.  Classes added at run time with kcom_class_register() come
 * after them.  The table is thread-safe.
 */
#ifndef KCOM_COM_CLASS_H
#define KCOM_COM_CLASS_H

#include <stddef.h>
#include <com/error.h>
#include <com/guid.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @brief A factory: builds a new object and returns the interface asked for.
 * @param iid interface wanted
 * @param out receives it with one reference; NULL on failure
 * @return KCOM_OK, KCOM_E_NOINTERFACE (the class lacks @p iid), KCOM_E_OUTOFMEMORY, ...
 */
typedef kcom_error_t (*kcom_factory_fn)(const kcom_iid_t *iid, void **out);

/**
 * @brief One interface a class's objects answer: its IID and where each object embeds it.
 *
 * A class's list of these is the one statement of its interfaces: the implementation kit's
 * query walks it, and tools list it.  The first entry is the object's identity (IUnknown).
 */
struct kcom_class_iface {
	const kcom_iid_t *iid; /**< the interface; NULL ends the list */
	size_t offset;         /**< offset of the embedded interface pointer within the object
	                            (0 throughout for a class that answers query by itself) */
};

/** @brief A class: what the table holds (by pointer; it must outlive its registration). */
struct kcom_class {
	kcom_clsid_t clsid;                    /**< the class ID */
	const char *name;                      /**< short name, such as "membuf" */
	kcom_factory_fn create;                /**< factory */
	const struct kcom_class_iface *ifaces; /**< interfaces its objects answer, ended by a NULL iid */
	/**
	 * What its objects do natively, as capability bits whose meanings belong to the floor
	 * of the interfaces concerned (com knows none of them): for buffers, bufio/bufinfo.h's
	 * KCOM_NATIVE_MAP, _WIRE, _COPY, _BUFVEC, _CHAIN.  0: nothing beyond the mandatory.
	 * Stated once here; buffer info and tools read it from here.
	 */
	unsigned natives;
};

/**
 * @brief Adds a class to the table.
 * @param cls the class (kept by pointer)
 * @retval KCOM_OK registered
 * @retval KCOM_E_INVALIDARG @p cls, its name or its factory is NULL
 * @retval KCOM_E_EXISTS a class with that CLSID is registered
 * @retval KCOM_E_OUTOFMEMORY the table could not grow
 */
kcom_error_t kcom_class_register(const struct kcom_class *cls);

/**
 * @brief Removes a class added with kcom_class_register().
 * @param clsid its class ID
 * @retval KCOM_OK removed
 * @retval KCOM_E_INVALIDARG @p clsid is NULL
 * @retval KCOM_E_NOTFOUND no such class
 * @retval KCOM_E_ACCESSDENIED the class is one of the product's built-in classes, which stay
 * @retval KCOM_E_BUSY a kcom_create() of the class is running its factory; nothing changed
 */
kcom_error_t kcom_class_unregister(const kcom_clsid_t *clsid);

/**
 * @brief Finds a class by ID.
 *
 * The description returned is the registered one, not a copy, and nothing holds it: it stays
 * valid while the class stays registered (a built-in class always; a module's class until its
 * module is unloaded).  A program that may unload modules on another thread meanwhile must not
 * use it past that; kcom_create() holds the class itself while its factory runs.
 * @param clsid the class ID
 * @param out_cls receives the class; NULL on failure
 * @retval KCOM_OK found
 * @retval KCOM_E_INVALIDARG NULL argument
 * @retval KCOM_E_NOTFOUND no such class
 */
kcom_error_t kcom_class_find(const kcom_clsid_t *clsid, const struct kcom_class **out_cls);

/**
 * @brief Enumerates the table: index 0, 1, ... until KCOM_E_NOTFOUND; the product's built-in
 *        classes first, then registered ones, oldest first.
 *
 * As for kcom_class_find(), the description is the registered one and stays valid only while
 * the class stays registered.  A class registered or removed meanwhile shifts later indexes.
 * @param index position
 * @param out_cls receives the class; NULL on failure
 * @retval KCOM_OK there is a class at @p index
 * @retval KCOM_E_INVALIDARG @p out_cls is NULL
 * @retval KCOM_E_NOTFOUND past the end
 */
kcom_error_t kcom_class_enum(size_t index, const struct kcom_class **out_cls);

/**
 * @brief Builds an object of a registered class and returns the interface asked for.
 * @param clsid the class
 * @param iid the interface wanted
 * @param out receives the interface with one reference; NULL on failure
 * @retval KCOM_OK built
 * @retval KCOM_E_INVALIDARG NULL argument
 * @retval KCOM_E_NOTFOUND no such class
 * @retval KCOM_E_NOINTERFACE the class's objects do not answer @p iid
 * @retval KCOM_E_OUTOFMEMORY no memory
 */
kcom_error_t kcom_create(const kcom_clsid_t *clsid, const kcom_iid_t *iid, void **out);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_CLASS_H */
