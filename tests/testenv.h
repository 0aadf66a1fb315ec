/*
 * A test osenv: wraps the hosted one, counts allocations and frees (calls and bytes), and can
 * make the Nth allocation from now fail.  Counters are atomic, so threads may allocate.
 */
#ifndef KCOM_TESTS_TESTENV_H
#define KCOM_TESTS_TESTENV_H

#include <stddef.h>
#include <com/osenv.h>

/* Installs the counting osenv with zeroed counters and no failure armed. */
void testenv_install(void);
/* Puts the hosted osenv back. */
void testenv_uninstall(void);
/* The nth allocation from now fails (1: the next one); 0 disarms. */
void testenv_fail_at(unsigned long nth);
/* Whether the armed failure has happened. */
int testenv_failure_hit(void);
/* Allocations and frees seen since install. */
unsigned long testenv_allocs(void);
unsigned long testenv_frees(void);
/* Bytes allocated minus bytes freed (sized free must give back exactly what was taken). */
long long testenv_bytes_outstanding(void);

#endif
