/*
 * The hosted product: what libkcom on Linux adds on top of the floors (com, absio, bufio,
 * impls).  Its default osenv is kcom_osenv_hosted() (com/osenv-hosted.c); its built-in classes
 * are listed here, once, and read in place by the class table (com/product.h).  A kernel writes
 * its own file like this one instead.  Adding an implementation to the hosted library = one
 * line in hosted_classes[].
 */
#include "config.h"

#include <com/product.h>
#include <impls/dmabuf.h>
#include <impls/membuf.h>
#include "com/com-internal.h"

static const struct kcom_class *const hosted_classes[] = {
	&kcom_membuf_class,
	&kcom_dmabuf_class,
};

const struct kcom_product kcom_product = {
	.name = "hosted",
	.osenv = &kcom_osenv_hosted_table_,
	.classes = hosted_classes,
	.nclasses = sizeof(hosted_classes) / sizeof(hosted_classes[0]),
	.default_buffer = &kcom_membuf_clsid,
};
