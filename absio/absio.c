/*
 * absio's one definition: its IID.  The methods are each implementation's; the argument rules
 * they share are in absio/absio-internal.h.
 */
#include "config.h"

#include <absio/absio.h>

const kcom_iid_t kcom_absio_iid = KCOM_ABSIO_IID;
