/*
 * The IIDs of the interfaces of bufio/: bufio itself and the bufvec extension.
 */
#include "config.h"

#include <bufio/bufio.h>
#include <bufio/bufvec.h>

const kcom_iid_t kcom_bufio_iid = KCOM_BUFIO_IID;
const kcom_iid_t kcom_bufvec_iid = KCOM_BUFVEC_IID;
