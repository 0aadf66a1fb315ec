/**
 * @file com/product.h
 * @brief What differs between products: the default osenv and the built-in classes.
 *
 * kcom's floors are com, absio, bufio and impls; a *product* sits on top of them: the hosted
 * library (`hosted/hosted.c`) or a kernel.  Each product defines exactly one ::kcom_product,
 * named `kcom_product`, as FreeBSD's config(8) writes `ioconf.c`: the core reads it in place
 * and allocates nothing to set it up.  There are no constructors and no linker sets (a
 * freestanding kernel runs none, and static archives drop unreferenced objects), so the list
 * is what pulls each built-in class into the link.
 *
 * A kernel writes, in one file of its own:
 * @code
 * static const struct kcom_class *const my_classes[] = { &kcom_membuf_class, &kcom_dmabuf_class };
 * const struct kcom_product kcom_product = {
 *         .name = "mykernel",
 *         .osenv = &my_osenv,
 *         .classes = my_classes,
 *         .nclasses = sizeof(my_classes) / sizeof(my_classes[0]),
 *         .default_buffer = &kcom_membuf_clsid,
 * };
 * @endcode
 */
#ifndef KCOM_COM_PRODUCT_H
#define KCOM_COM_PRODUCT_H

#include <stddef.h>
#include <com/class.h>
#include <com/guid.h>
#include <com/osenv.h>

#ifdef __cplusplus
extern "C" {
#endif

/** @brief A product's description: read in place by the core, never copied. */
struct kcom_product {
	const char *name;                         /**< "hosted", or the kernel's name */
	const struct kcom_osenv *osenv;           /**< the osenv in force until kcom_osenv_set()
	                                               installs another; NULL for none */
	const struct kcom_class *const *classes;  /**< the built-in classes, in enumeration order */
	size_t nclasses;                          /**< entries in @c classes */
	const kcom_clsid_t *default_buffer;       /**< the class the fallback helpers create when
	                                               a caller names none (kcom_bufio_duplicate());
	                                               NULL: they need the caller to name one */
};

/** @brief The product this program or kernel was linked as; each product defines it once. */
extern const struct kcom_product kcom_product;

#ifdef __cplusplus
}
#endif
#endif /* KCOM_COM_PRODUCT_H */
