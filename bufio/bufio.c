/*
 * The IIDs of the interfaces of bufio/: bufio itself and the bufvec and bufinfo extensions.
 */
#include "config.h"

#include <bufio/bufio.h>
#include <bufio/bufinfo.h>
#include <bufio/bufvec.h>

const kcom_iid_t kcom_bufio_iid = KCOM_BUFIO_IID;
const kcom_iid_t kcom_bufvec_iid = KCOM_BUFVEC_IID;
const kcom_iid_t kcom_bufinfo_iid = KCOM_BUFINFO_IID;
