/*
 * The classes built into kcom, registered by the class table the first time it is touched.
 * Each later implementation adds its class here.
 */
#include "config.h"

#include <com/class.h>
#include <impls/membuf.h>
#include "com/com-internal.h"

static const struct kcom_class *const builtin_classes[] = {
	&kcom_membuf_class,
};

kcom_error_t kcom_builtin_classes_register_(void)
{
	for (size_t i = 0; i < sizeof(builtin_classes) / sizeof(builtin_classes[0]); i++) {
		kcom_error_t err = kcom_class_register_builtin_(builtin_classes[i]);
		if (KCOM_FAILED(err))
			return err;
	}
	return KCOM_OK;
}
