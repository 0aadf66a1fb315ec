/*
 * Private to kcom's own sources: assertions, container_of, the string.h-level functions the
 * core may use, and helpers shared across files (names ending in '_').  Never included by a
 * public header.
 */
#ifndef KCOM_COM_COM_INTERNAL_H
#define KCOM_COM_COM_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <com/error.h>
#include <com/osenv.h>

/*
 * The only C-library functions the core calls.  Use the builtins so that a freestanding build
 * needs no <string.h>; GCC emits calls to memcpy/memset/memmove/memcmp for large sizes, which a
 * kernel supplies (tests/core-symbols.test checks that nothing else is needed).
 */
#define kcom_memcpy(d, s, n) __builtin_memcpy((d), (s), (n))
#define kcom_memmove(d, s, n) __builtin_memmove((d), (s), (n))
#define kcom_memset(d, c, n) __builtin_memset((d), (c), (n))

#define KCOM_STRINGIFY_(x) #x
#define KCOM_STRINGIFY(x) KCOM_STRINGIFY_(x)

/*
 * KCOM_ASSERT is for programmer errors inside kcom (broken invariants), never for bad input
 * from a caller, which gets an error code.  Off by default: the condition is not evaluated.
 */
#ifdef KCOM_INVARIANTS
#define KCOM_ASSERT(cond) \
	((cond) ? (void)0 : kcom_panic(__FILE__ ":" KCOM_STRINGIFY(__LINE__) ": assertion failed: " #cond))
#else
#define KCOM_ASSERT(cond) ((void)sizeof(!(cond)))
#endif

/* The object that embeds `ptr` as its `member`. */
#define kcom_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#define KCOM_MIN(a, b) ((a) < (b) ? (a) : (b))
#define KCOM_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Length of a NUL-terminated string, without <string.h>. */
size_t kcom_strlen_(const char *s);

/*
 * Registers the built-in classes (membuf, ...) into the class table; called once by the class
 * table the first time it is touched.  Defined in impls/builtin.c.
 */
kcom_error_t kcom_builtin_classes_register_(void);

/* Adds one built-in class during that set-up (com/class.c). */
struct kcom_class;
kcom_error_t kcom_class_register_builtin_(const struct kcom_class *cls);

#endif /* KCOM_COM_COM_INTERNAL_H */
