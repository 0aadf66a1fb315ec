/**
 * @file com/module.h
 * @brief Loadable component modules (hosted builds only): load a libtool module, register its
 *        classes; unload it when none of its objects is alive.
 *
 * A module is a libtool module (`-module -avoid-version`) that exports one data symbol,
 * `kcom_module`, a ::kcom_module_desc:
 * @code
 * static const struct kcom_class *const my_classes[] = { &my_class };
 * static uint32_t my_live;   // objects alive: ++ in the constructor, -- last thing in destroy
 * static uint32_t my_count(void) { return __atomic_load_n(&my_live, __ATOMIC_ACQUIRE); }
 * const struct kcom_module_desc kcom_module = {
 *         .abi = KCOM_MODULE_ABI,
 *         .name = "mine",
 *         .classes = my_classes,
 *         .nclasses = 1,
 *         .live = my_count,
 * };
 * @endcode
 * kcom_module_load() opens the file with libltdl, checks the descriptor, calls its optional
 * `init` (which may register services in the registry the loader was given) and registers its
 * classes in the class table (com/class.h).  If any step fails, everything done so far is
 * undone: nothing of the module stays registered and its code is unmapped.
 *
 * Loading a module that is already loaded (the same file, found by any name) does not register
 * it again: it counts one more load and returns the same handle; each load is matched by one
 * kcom_module_unload().  The last unload asks the module how many of its objects are alive
 * (`live`) and refuses with KCOM_E_BUSY while any is: the module's code stays mapped under
 * every live object.  A module whose objects are only ever built by other code (no `live`
 * hook) can never be unloaded.
 *
 * A name without a '/' is searched for in every folder of the environment variable
 * `KCOM_MODULE_PATH` (colon-separated), then in kcom_module_dir() (`$(pkglibdir)/modules`);
 * libltdl adds the extension (`.la`, then the platform's shared-object suffix).  A name with a
 * '/' is a file.  A module's undefined symbols are resolved against the program that loads it,
 * which must therefore link libkcom (shared, or statically with `-export-dynamic`).
 *
 * The calls are thread-safe (one lock around the list of loaded modules).  A module's init,
 * fini and live run under that lock, so they must not call the loader themselves: a
 * kcom_module_load(), _load_with() or _unload() from one is KCOM_E_BUSY (and
 * kcom_module_of_class() NULL) rather than a deadlock; a program loads a module's
 * dependencies before it.  A module has at least one class.  When a call fails,
 * kcom_module_error() says why in words (the file tried and libltdl's message).
 */
#ifndef KCOM_COM_MODULE_H
#define KCOM_COM_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <com/class.h>
#include <com/error.h>
#include <com/registry.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief The descriptor layout version a module declares in kcom_module_desc::abi. */
#define KCOM_MODULE_ABI 1u

/** @brief The name of the symbol every module exports: its ::kcom_module_desc. */
#define KCOM_MODULE_SYMBOL "kcom_module"

/** @brief What a module exports as `kcom_module`: read in place, never copied. */
struct kcom_module_desc {
	uint32_t abi;                            /**< ::KCOM_MODULE_ABI */
	const char *name;                        /**< short name, such as "filebuf" */
	const char *description;                 /**< one line for tools (may be NULL) */
	const struct kcom_class *const *classes; /**< the classes it registers */
	size_t nclasses;                         /**< entries in @c classes */
	/**
	 * @brief Optional: called before the classes are registered.
	 * @param registry the registry given to kcom_module_load_with() (NULL: none)
	 * @return KCOM_OK, or a failure that aborts the load; the module must then have left
	 *         nothing registered
	 */
	kcom_error_t (*init)(kcom_registry_t *registry);
	/**
	 * @brief Optional: called after the classes are unregistered, just before the code is
	 *        unmapped (undo what init did).
	 * @param registry as given to init
	 */
	void (*fini)(kcom_registry_t *registry);
	/** @brief How many objects of the module's classes are alive (NULL: never unloadable). */
	uint32_t (*live)(void);
};

/** @brief A loaded module. */
typedef struct kcom_module kcom_module_t;

/**
 * @brief Loads a module and registers its classes.
 * @param name a module name searched for on the module path, or a file (contains a '/')
 * @param out_module receives the module; NULL on failure
 * @retval KCOM_OK loaded (or counted once more, when it already was)
 * @retval KCOM_E_INVALIDARG NULL argument, or an empty name
 * @retval KCOM_E_NOTFOUND no such module on the path, or no such file
 * @retval KCOM_E_BADMODULE the file is not a loadable module, exports no `kcom_module`, or
 *         its descriptor is malformed (wrong ABI, no name, no classes, a class without name or
 *         factory)
 * @retval KCOM_E_BUSY called from a module's init, fini or live; nothing changed
 * @retval KCOM_E_EXISTS one of its class IDs is registered by someone else; nothing stays
 *         registered
 * @retval KCOM_E_OUTOFMEMORY no memory; nothing stays registered
 * @retval other what the module's init returned; nothing stays registered
 */
kcom_error_t kcom_module_load(const char *name, kcom_module_t **out_module);

/**
 * @brief kcom_module_load(), handing @p registry to the module's init (and later its fini).
 * @param name as for kcom_module_load()
 * @param registry a registry for the module's services (may be NULL); the first load's
 *        registry is the one the module keeps
 * @param out_module receives the module; NULL on failure
 * @return as kcom_module_load()
 */
kcom_error_t kcom_module_load_with(const char *name, kcom_registry_t *registry, kcom_module_t **out_module);

/**
 * @brief Drops one load of a module; the last one unregisters its classes and unmaps it.
 * @param module a module from kcom_module_load()
 * @retval KCOM_OK dropped (unloaded, when it was the last load)
 * @retval KCOM_E_INVALIDARG @p module is NULL or not loaded
 * @retval KCOM_E_BUSY the last load, and objects of its classes are alive (or the module
 *         cannot count them), or called from a module's init, fini or live; nothing changed
 */
kcom_error_t kcom_module_unload(kcom_module_t *module);

/**
 * @brief The module's descriptor (its name, classes ...), valid while it is loaded.
 * @param module a loaded module
 * @return the descriptor, or NULL when @p module is NULL
 */
const struct kcom_module_desc *kcom_module_describe(const kcom_module_t *module);

/**
 * @brief The file the module was loaded from, valid while it is loaded.
 * @param module a loaded module
 * @return the path libltdl opened, or NULL when @p module is NULL
 */
const char *kcom_module_file(const kcom_module_t *module);

/**
 * @brief The module that registered a class, if any.
 * @param cls a class from the class table
 * @return the loaded module whose descriptor lists @p cls, or NULL (built-in or registered by
 *         a program)
 */
kcom_module_t *kcom_module_of_class(const struct kcom_class *cls);

/**
 * @brief The folder searched after `KCOM_MODULE_PATH`: `$(pkglibdir)/modules`.
 * @return a static string
 */
const char *kcom_module_dir(void);

/**
 * @brief Why the calling thread's last failed module call failed, in words.
 * @return a NUL-terminated message ("" when nothing failed yet); valid until the thread's next
 *         module call
 */
const char *kcom_module_error(void);

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_MODULE_H */
