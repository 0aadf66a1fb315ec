/*
 * Loadable component modules (com/module.h), through libltdl.  Hosted only: a kernel has no
 * dynamic loader, so this file belongs to the hosted product, never to libkcom-core.
 *
 * The loaded modules form one list under one mutex; libltdl's own state is set up once, under
 * the same mutex, and never torn down (a process that loads modules keeps the loader).  A load
 * opens the file first and only then looks at the list: libltdl hands out one handle per file
 * however it was named, so a second load of the same file finds its record and only counts.
 *
 * Every step of a first load can fail, and each failure undoes the steps before it, in
 * reverse: classes registered so far are unregistered, fini undoes init, the handle is
 * closed.  Nothing is added to the list until the whole load has succeeded.  Unload refuses
 * (KCOM_E_BUSY) while the module says objects of its classes are alive, so the code under a
 * live object is never unmapped.  It closes the classes first (no kcom_create finds them, and
 * none is inside a factory), so an object being made while it counts is not missed.
 *
 * Records and messages come from the C library (this is hosted code, and an osenv that fails
 * allocations on purpose must not make a loaded module look unloaded); the class table's own
 * growth goes through the osenv as always.
 */
#include "config.h"

#include <errno.h>
#include <ltdl.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <com/class.h>
#include <com/module.h>
#include "com/com-internal.h"

/* libltdl's own suffix for shared objects, when the build did not say (ELF hosts). */
#ifndef LT_MODULE_EXT
#define LT_MODULE_EXT ".so"
#endif

#ifndef KCOM_MODULE_DIR
#error "KCOM_MODULE_DIR must be defined by the build ($(pkglibdir)/modules)"
#endif

struct kcom_module {
	struct kcom_module *next;
	lt_dlhandle handle;
	const struct kcom_module_desc *desc;
	kcom_registry_t *registry; /* given to init, held until fini */
	unsigned loads;            /* kcom_module_load calls not yet matched by an unload */
	char *file;
};

static pthread_mutex_t module_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kcom_module *module_list;
static int module_ltdl_ready;
/* This thread holds module_lock: it is inside a module's init, fini or live. */
static __thread int module_lock_mine;

/*
 * Takes the loader's lock; 0 when this thread holds it already.  A module's init, fini and
 * live run under it (so no other thread sees a module half loaded or half gone), and one that
 * called back into the loader would wait for itself forever: it gets KCOM_E_BUSY instead.
 */
static int module_enter(void)
{
	if (module_lock_mine)
		return 0;
	pthread_mutex_lock(&module_lock);
	module_lock_mine = 1;
	return 1;
}

static void module_leave(void)
{
	module_lock_mine = 0;
	pthread_mutex_unlock(&module_lock);
}

/* The calling thread's last failure, in words. */
static __thread char module_why[512];

static void module_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void module_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(module_why, sizeof(module_why), fmt, ap);
	va_end(ap);
}

const char *kcom_module_error(void)
{
	return module_why;
}

const char *kcom_module_dir(void)
{
	return KCOM_MODULE_DIR;
}

/* libltdl's last message, never NULL. */
static const char *ltdl_message(void)
{
	const char *msg = lt_dlerror();
	return msg != NULL ? msg : "unknown libltdl error";
}

/* A record by handle, or NULL.  Lock held. */
static struct kcom_module *module_find_locked(lt_dlhandle handle)
{
	for (struct kcom_module *m = module_list; m != NULL; m = m->next)
		if (m->handle == handle)
			return m;
	return NULL;
}

/* Whether a file `base` (tried with libltdl's extensions) exists: a folder of that name does not count. */
static int module_file_exists(const char *base)
{
	static const char *const exts[] = { "", ".la", LT_MODULE_EXT };
	char path[4096];
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		if (snprintf(path, sizeof(path), "%s%s", base, exts[i]) >= (int)sizeof(path))
			continue;
		struct stat st;
		if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode))
			return 1;
	}
	return 0;
}

/*
 * Opens a module by name (searching the path) or by file.  On success *out_handle is open
 * and *out_file (malloc'd) names what was opened.  Lock held (libltdl is not reentrant).
 */
static kcom_error_t module_open_locked(const char *name, lt_dlhandle *out_handle, char **out_file)
{
	*out_handle = NULL;
	*out_file = NULL;
	if (strchr(name, '/') != NULL) {
		if (!module_file_exists(name)) {
			module_fail("kcom module %s: no such file", name);
			return KCOM_E_NOTFOUND;
		}
		lt_dlhandle h = lt_dlopenext(name);
		if (h == NULL) {
			module_fail("kcom module %s: not a loadable module: %s", name, ltdl_message());
			return KCOM_E_BADMODULE;
		}
		const lt_dlinfo *info = lt_dlgetinfo(h);
		*out_file = strdup(info != NULL && info->filename != NULL ? info->filename : name);
		if (*out_file == NULL) {
			lt_dlclose(h);
			module_fail("kcom module %s: out of memory", name);
			return KCOM_E_OUTOFMEMORY;
		}
		*out_handle = h;
		return KCOM_OK;
	}

	/* KCOM_MODULE_PATH's folders, then the installed one: the first folder holding it wins. */
	const char *env = getenv("KCOM_MODULE_PATH");
	size_t envlen = env != NULL ? strlen(env) : 0;
	size_t dirlen = strlen(KCOM_MODULE_DIR);
	char *dirs = malloc(envlen + dirlen + 2);
	if (dirs == NULL) {
		module_fail("kcom module %s: out of memory", name);
		return KCOM_E_OUTOFMEMORY;
	}
	snprintf(dirs, envlen + dirlen + 2, "%s%s%s", env != NULL ? env : "", envlen != 0 ? ":" : "", KCOM_MODULE_DIR);

	kcom_error_t err = KCOM_E_NOTFOUND;
	char *save = NULL;
	for (char *dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		char path[4096];
		if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) || !module_file_exists(path))
			continue;
		lt_dlhandle h = lt_dlopenext(path);
		if (h == NULL) {
			module_fail("kcom module %s: %s is not a loadable module: %s", name, path, ltdl_message());
			err = KCOM_E_BADMODULE;
			break;
		}
		/* The file libltdl really opened (the name plus the extension it found). */
		const lt_dlinfo *info = lt_dlgetinfo(h);
		*out_file = strdup(info != NULL && info->filename != NULL ? info->filename : path);
		if (*out_file == NULL) {
			lt_dlclose(h);
			module_fail("kcom module %s: out of memory", name);
			err = KCOM_E_OUTOFMEMORY;
			break;
		}
		*out_handle = h;
		err = KCOM_OK;
		break;
	}
	free(dirs);
	if (err == KCOM_E_NOTFOUND)
		module_fail("kcom module %s: not found in KCOM_MODULE_PATH (%s) nor in %s", name, env != NULL ? env : "unset",
		            KCOM_MODULE_DIR);
	return err;
}

/* The descriptor is one this loader can use: KCOM_OK or KCOM_E_BADMODULE (with the reason). */
static kcom_error_t module_desc_check(const char *file, const struct kcom_module_desc *d)
{
	if (d->abi != KCOM_MODULE_ABI) {
		module_fail("kcom module %s: descriptor ABI %u, this loader takes %u", file, (unsigned)d->abi,
		            KCOM_MODULE_ABI);
		return KCOM_E_BADMODULE;
	}
	if (d->name == NULL || d->nclasses == 0 || d->classes == NULL) {
		module_fail("kcom module %s: descriptor without a name or without classes", file);
		return KCOM_E_BADMODULE;
	}
	for (size_t i = 0; i < d->nclasses; i++) {
		const struct kcom_class *c = d->classes[i];
		if (c == NULL || c->name == NULL || c->create == NULL) {
			module_fail("kcom module %s: class %zu has no name or no factory", file, i);
			return KCOM_E_BADMODULE;
		}
	}
	return KCOM_OK;
}

/*
 * Before unmapping code whose last object just went: the thread whose release counted it may
 * still be running the few instructions between that count and its return out of the module.
 * COM waits before it frees an unused library for the same reason (CoFreeUnusedLibrariesEx's
 * delay); so do we, briefly.  A thread preempted longer than that in those instructions is the
 * race that remains (doc/semantics.md).
 */
#define MODULE_GRACE_NS 2000000L

static void module_grace(void)
{
	struct timespec ts = { 0, MODULE_GRACE_NS };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/*
 * Takes the module's first `n` classes out of the table before its code may go: closed first,
 * waiting for any kcom_create inside one of their factories (a failed load's classes may have
 * been found meanwhile); then removed.  Returns how many objects of them are alive (UINT32_MAX
 * when the module cannot count): while any is, the code must stay mapped.
 */
static uint32_t module_retract(const struct kcom_module_desc *d, size_t n)
{
	if (n == 0)
		return 0; /* nothing was registered, so nothing was made */
	while (kcom_class_close_(d->classes, n) == KCOM_E_BUSY)
		sched_yield();
	uint32_t live = d->live != NULL ? d->live() : UINT32_MAX;
	kcom_class_remove_(d->classes, n);
	if (live == 0)
		module_grace(); /* objects of them may have been made and released meanwhile */
	return live;
}

kcom_error_t kcom_module_load_with(const char *name, kcom_registry_t *registry, kcom_module_t **out_module)
{
	if (out_module != NULL)
		*out_module = NULL;
	if (name == NULL || *name == '\0' || out_module == NULL) {
		module_fail("kcom module: no name or no place for the result");
		return KCOM_E_INVALIDARG;
	}

	if (!module_enter()) {
		module_fail("kcom module %s: loaded from a module's init, fini or live", name);
		return KCOM_E_BUSY;
	}
	if (!module_ltdl_ready) {
		if (lt_dlinit() != 0) {
			module_fail("kcom module %s: libltdl would not start: %s", name, ltdl_message());
			module_leave();
			return KCOM_E_FAIL;
		}
		module_ltdl_ready = 1;
	}

	lt_dlhandle h;
	char *file;
	kcom_error_t err = module_open_locked(name, &h, &file);
	if (KCOM_FAILED(err))
		goto out;

	struct kcom_module *m = module_find_locked(h);
	if (m != NULL) {
		/* The same file again: libltdl counted the open; one close now keeps one per module. */
		lt_dlclose(h);
		free(file);
		m->loads++;
		*out_module = m;
		goto out;
	}

	const struct kcom_module_desc *d = lt_dlsym(h, KCOM_MODULE_SYMBOL);
	if (d == NULL) {
		module_fail("kcom module %s: %s exports no %s: not a kcom module", name, file, KCOM_MODULE_SYMBOL);
		err = KCOM_E_BADMODULE;
		goto fail_close;
	}
	err = module_desc_check(file, d);
	if (KCOM_FAILED(err))
		goto fail_close;
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		module_fail("kcom module %s: out of memory", name);
		err = KCOM_E_OUTOFMEMORY;
		goto fail_close;
	}
	if (d->init != NULL) {
		err = d->init(registry);
		if (KCOM_FAILED(err)) {
			module_fail("kcom module %s: %s's init failed: %s", name, file, kcom_strerror(err));
			goto fail_free;
		}
	}
	for (size_t i = 0; i < d->nclasses; i++) {
		err = kcom_class_register(d->classes[i]);
		if (KCOM_FAILED(err)) {
			if (err == KCOM_E_EXISTS)
				module_fail("kcom module %s: class %s's ID is already registered by someone else", name,
				            d->classes[i]->name);
			else
				module_fail("kcom module %s: class %s: %s", name, d->classes[i]->name, kcom_strerror(err));
			if (module_retract(d, i) != 0) {
				/* Objects of its first classes may be alive: their code stays. */
				module_fail("kcom module %s: class %s: %s; objects of its other classes may be alive, so it "
				            "stays mapped",
				            name, d->classes[i]->name, kcom_strerror(err));
				free(m);
				free(file);
				goto out;
			}
			goto fail_fini;
		}
	}
	m->handle = h;
	m->desc = d;
	m->registry = registry;
	m->loads = 1;
	m->file = file;
	if (registry != NULL)
		kcom_registry_addref(registry);
	m->next = module_list;
	module_list = m;
	*out_module = m;
	goto out;

fail_fini:
	if (d->fini != NULL)
		d->fini(registry);
fail_free:
	free(m);
fail_close:
	lt_dlclose(h);
	free(file);
out:
	module_leave();
	return err;
}

kcom_error_t kcom_module_load(const char *name, kcom_module_t **out_module)
{
	return kcom_module_load_with(name, NULL, out_module);
}

kcom_error_t kcom_module_unload(kcom_module_t *module)
{
	if (module == NULL) {
		module_fail("kcom module: NULL module");
		return KCOM_E_INVALIDARG;
	}
	if (!module_enter()) {
		module_fail("kcom module: unloaded from a module's init, fini or live");
		return KCOM_E_BUSY;
	}
	struct kcom_module **pp = &module_list;
	while (*pp != NULL && *pp != module)
		pp = &(*pp)->next;
	if (*pp == NULL) {
		module_leave();
		module_fail("kcom module: not loaded");
		return KCOM_E_INVALIDARG;
	}
	if (module->loads > 1) {
		module->loads--;
		module_leave();
		return KCOM_OK;
	}
	const struct kcom_module_desc *d = module->desc;
	if (d->live == NULL) {
		module_fail("kcom module %s: it cannot count its objects, so it stays loaded", d->name);
		module_leave();
		return KCOM_E_BUSY;
	}
	/* No new object from now on, and no factory running: then the count cannot be raised. */
	if (KCOM_FAILED(kcom_class_close_(d->classes, d->nclasses))) {
		module_fail("kcom module %s: an object of its classes is being made", d->name);
		module_leave();
		return KCOM_E_BUSY;
	}
	uint32_t live = d->live();
	if (live != 0) {
		kcom_class_reopen_(d->classes, d->nclasses);
		module_fail("kcom module %s: %u object(s) of its classes are alive", d->name, (unsigned)live);
		module_leave();
		return KCOM_E_BUSY;
	}
	/* No object is left, so no one is inside its code: unregister, undo init, unmap. */
	kcom_class_remove_(d->classes, d->nclasses);
	if (d->fini != NULL)
		d->fini(module->registry);
	*pp = module->next;
	module_grace();
	lt_dlclose(module->handle);
	module_leave();
	if (module->registry != NULL)
		kcom_registry_release(module->registry);
	free(module->file);
	free(module);
	return KCOM_OK;
}

const struct kcom_module_desc *kcom_module_describe(const kcom_module_t *module)
{
	return module != NULL ? module->desc : NULL;
}

const char *kcom_module_file(const kcom_module_t *module)
{
	return module != NULL ? module->file : NULL;
}

kcom_module_t *kcom_module_of_class(const struct kcom_class *cls)
{
	kcom_module_t *found = NULL;
	if (!module_enter())
		return NULL; /* asked from a module's init, fini or live */
	for (struct kcom_module *m = module_list; m != NULL && found == NULL; m = m->next)
		for (size_t i = 0; i < m->desc->nclasses; i++)
			if (m->desc->classes[i] == cls)
				found = m;
	module_leave();
	return found;
}
