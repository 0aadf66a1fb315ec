/*
 * A test double: an object that only reads and writes (malloc'd bytes, so the test osenv does
 * not count it).  It answers absio, and with PLAINIO_BUFIO also bufio whose map, wire and copy
 * all say KCOM_E_NOTIMPL, so the fallback paths of bufio/helpers.c and of clients are tested.
 */
#ifndef KCOM_TESTS_PLAINIO_H
#define KCOM_TESTS_PLAINIO_H

#include <stddef.h>
#include <bufio/bufio.h>

#define PLAINIO_BUFIO 0x1u     /* answer bufio (with no optional method) too */
#define PLAINIO_FIXED 0x2u     /* never grow past the initial size */

struct plainio;

/* An object of `size` zero bytes. */
kcom_error_t plainio_create(size_t size, unsigned flags, kcom_absio_t **out);
/* Makes every later write fail with KCOM_E_FAIL (or work again). */
void plainio_fail_writes(kcom_absio_t *io, int fail);
/* Makes every later read fail with KCOM_E_FAIL (or work again). */
void plainio_fail_reads(kcom_absio_t *io, int fail);
/* How many read and write calls the object has served. */
unsigned long plainio_calls(kcom_absio_t *io);

#endif
