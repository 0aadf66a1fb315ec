/**
 * @file com/com.h
 * @brief The COM core in one include: GUIDs, errors, IUnknown, reference counts, osenv,
 *        the registry and the class table.
 */
#ifndef KCOM_COM_COM_H
#define KCOM_COM_COM_H

#include <com/error.h>
#include <com/guid.h>
#include <com/iunknown.h>
#include <com/refcount.h>
#include <com/osenv.h>
#include <com/registry.h>
#include <com/class.h>
#include <com/iochannel.h>

#endif /* KCOM_COM_COM_H */
