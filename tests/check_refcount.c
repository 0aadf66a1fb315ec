/*
 * Reference counts: the kcom_refcount_* helpers, and the requirement that "two
 * threads add and drop 10^6 references each on one object; count returns to its start; the
 * object is freed exactly once".
 *
 * The object is a membuf wrapping the test's memory, whose release callback counts its calls,
 * so freeing is observable; the counting osenv shows that what the object allocated is given
 * back.  Worker threads record what they saw and the main thread asserts it (Check's asserts
 * belong to the test's own thread).
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <com/com.h>
#include <impls/membuf.h>

#include "tests/suites.h"
#include "tests/testenv.h"

#define PAIRS 1000000UL   /* addref/release pairs per thread */
#define BATCH 1000UL      /* references a thread holds at once in the batch variant */
#define MIXED_PAIRS 200000UL

/* ---- the helpers themselves ---- */

START_TEST(test_refcount_helpers)
{
	kcom_refcount_t r;
	kcom_refcount_init(&r, 1);
	ck_assert_uint_eq(kcom_refcount_get(&r), 1);
	ck_assert_uint_eq(kcom_refcount_inc(&r), 2);
	ck_assert_uint_eq(kcom_refcount_inc(&r), 3);
	ck_assert_uint_eq(kcom_refcount_get(&r), 3);
	ck_assert_uint_eq(kcom_refcount_dec(&r), 2);
	ck_assert_uint_eq(kcom_refcount_dec(&r), 1);
	ck_assert_uint_eq(kcom_refcount_dec(&r), 0);
	ck_assert_uint_eq(kcom_refcount_get(&r), 0);

	kcom_refcount_init(&r, 0);
	ck_assert_uint_eq(kcom_refcount_inc(&r), 1);
	kcom_refcount_init(&r, 1000);
	ck_assert_uint_eq(kcom_refcount_get(&r), 1000);
	ck_assert_uint_eq(kcom_refcount_dec(&r), 999);
	/* Counts are 32 bits wide, all of them usable. */
	kcom_refcount_init(&r, UINT32_MAX - 1);
	ck_assert_uint_eq(kcom_refcount_inc(&r), UINT32_MAX);
	ck_assert_uint_eq(kcom_refcount_dec(&r), UINT32_MAX - 1);
	ck_assert_uint_eq(sizeof(kcom_refcount_t), sizeof(uint32_t));
}
END_TEST

struct raw_worker {
	kcom_refcount_t *ref;
	pthread_barrier_t *start;
	int drop_only;          /* only decrement, PAIRS times */
	unsigned long zeros;    /* decrements that returned 0 */
	uint32_t max_seen;
};

static void *raw_worker_run(void *arg)
{
	struct raw_worker *w = arg;
	pthread_barrier_wait(w->start);
	for (unsigned long i = 0; i < PAIRS; i++) {
		if (!w->drop_only) {
			uint32_t n = kcom_refcount_inc(w->ref);
			if (n > w->max_seen)
				w->max_seen = n;
		}
		if (kcom_refcount_dec(w->ref) == 0)
			w->zeros++;
	}
	return NULL;
}

static void raw_run(kcom_refcount_t *ref, int drop_only, struct raw_worker w[2])
{
	pthread_barrier_t start;
	pthread_t th[2];
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
	for (int t = 0; t < 2; t++) {
		w[t].ref = ref;
		w[t].start = &start;
		w[t].drop_only = drop_only;
		w[t].zeros = 0;
		w[t].max_seen = 0;
		ck_assert_int_eq(pthread_create(&th[t], NULL, raw_worker_run, &w[t]), 0);
	}
	for (int t = 0; t < 2; t++)
		ck_assert_int_eq(pthread_join(th[t], NULL), 0);
	pthread_barrier_destroy(&start);
}

START_TEST(test_refcount_helpers_two_threads)
{
	kcom_refcount_t r;
	struct raw_worker w[2];
	kcom_refcount_init(&r, 1);
	raw_run(&r, 0, w);
	ck_assert_uint_eq(kcom_refcount_get(&r), 1);
	ck_assert_uint_eq(w[0].zeros + w[1].zeros, 0);
	ck_assert_uint_ge(w[0].max_seen, 2);
	ck_assert_uint_le(w[0].max_seen, 3);
	ck_assert_uint_le(w[1].max_seen, 3);
}
END_TEST

/* Two threads drop 2 * 10^6 references between them: exactly one sees the count reach 0. */
START_TEST(test_refcount_helpers_last_drop_once)
{
	kcom_refcount_t r;
	struct raw_worker w[2];
	kcom_refcount_init(&r, (uint32_t)(2 * PAIRS));
	raw_run(&r, 1, w);
	ck_assert_uint_eq(kcom_refcount_get(&r), 0);
	ck_assert_uint_eq(w[0].zeros + w[1].zeros, 1);
}
END_TEST

/* ---- one membuf, two threads ---- */

static unsigned char wrapped_mem[256];

struct release_log {
	unsigned long calls;   /* atomic */
	void *mem;
	size_t len;
};

static void release_cb(void *ctx, void *mem, size_t len)
{
	struct release_log *log = ctx;
	__atomic_add_fetch(&log->calls, 1, __ATOMIC_RELAXED);
	log->mem = mem;
	log->len = len;
}

static unsigned long release_calls(struct release_log *log)
{
	return __atomic_load_n(&log->calls, __ATOMIC_RELAXED);
}

enum obj_mode {
	OBJ_PAIRS,    /* addref, release, repeated */
	OBJ_BATCH,    /* BATCH addrefs, then BATCH releases, repeated */
	OBJ_QUERY,    /* query bufvec, release it, repeated (another interface, same count) */
};

struct obj_worker {
	kcom_bufio_t *io;
	pthread_barrier_t *start;
	enum obj_mode mode;
	unsigned long pairs;
	unsigned long bad;       /* a release that returned 0, or a failed query */
	uint32_t max_seen;       /* highest count addref returned */
	uint32_t min_seen;       /* lowest count release returned */
};

static void obj_seen(struct obj_worker *w, uint32_t after_addref)
{
	if (after_addref > w->max_seen)
		w->max_seen = after_addref;
}

static void obj_dropped(struct obj_worker *w, uint32_t after_release)
{
	if (after_release == 0)
		w->bad++;
	if (after_release < w->min_seen)
		w->min_seen = after_release;
}

static void *obj_worker_run(void *arg)
{
	struct obj_worker *w = arg;
	pthread_barrier_wait(w->start);
	switch (w->mode) {
	case OBJ_PAIRS:
		for (unsigned long i = 0; i < w->pairs; i++) {
			obj_seen(w, kcom_bufio_addref(w->io));
			obj_dropped(w, kcom_bufio_release(w->io));
		}
		break;
	case OBJ_BATCH:
		for (unsigned long i = 0; i < w->pairs / BATCH; i++) {
			for (unsigned long k = 0; k < BATCH; k++)
				obj_seen(w, kcom_bufio_addref(w->io));
			for (unsigned long k = 0; k < BATCH; k++)
				obj_dropped(w, kcom_bufio_release(w->io));
		}
		break;
	case OBJ_QUERY:
		for (unsigned long i = 0; i < w->pairs; i++) {
			void *vec = NULL;
			if (kcom_bufio_query(w->io, &kcom_bufvec_iid, &vec) != KCOM_OK || vec == NULL) {
				w->bad++;
				continue;
			}
			obj_dropped(w, kcom_bufvec_release(vec));
		}
		break;
	}
	return NULL;
}

/*
 * Wraps wrapped_mem under the counting osenv, runs two workers on it, checks the count is
 * back at 1 and nothing was freed, drops the last reference, and checks the release callback
 * ran once and every allocation was given back.  Returns nothing; asserts throughout.
 */
static void obj_run(enum obj_mode mode0, enum obj_mode mode1, unsigned long pairs, struct obj_worker w[2])
{
	testenv_install();

	struct release_log log = { 0, NULL, 0 };
	kcom_bufio_t *io = NULL;
	ck_assert_int_eq(kcom_membuf_wrap(wrapped_mem, sizeof(wrapped_mem), release_cb, &log, &io), KCOM_OK);
	ck_assert_ptr_nonnull(io);

	pthread_barrier_t start;
	pthread_t th[2];
	ck_assert_int_eq(pthread_barrier_init(&start, NULL, 2), 0);
	const enum obj_mode modes[2] = { mode0, mode1 };
	for (int t = 0; t < 2; t++) {
		w[t].io = io;
		w[t].start = &start;
		w[t].mode = modes[t];
		w[t].pairs = pairs;
		w[t].bad = 0;
		w[t].max_seen = 0;
		w[t].min_seen = UINT32_MAX;
		ck_assert_int_eq(pthread_create(&th[t], NULL, obj_worker_run, &w[t]), 0);
	}
	for (int t = 0; t < 2; t++)
		ck_assert_int_eq(pthread_join(th[t], NULL), 0);
	pthread_barrier_destroy(&start);

	for (int t = 0; t < 2; t++) {
		ck_assert_uint_eq(w[t].bad, 0);
		ck_assert_uint_ge(w[t].min_seen, 1);
	}
	/* Back at the start: ours is the only reference, and the object is alive. */
	ck_assert_uint_eq(release_calls(&log), 0);
	ck_assert_uint_eq(kcom_bufio_addref(io), 2);
	ck_assert_uint_eq(kcom_bufio_release(io), 1);
	size_t size = 0;
	ck_assert_int_eq(kcom_bufio_getsize(io, &size), KCOM_OK);
	ck_assert_uint_eq(size, sizeof(wrapped_mem));
	ck_assert_uint_eq(release_calls(&log), 0);

	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	ck_assert_uint_eq(release_calls(&log), 1);
	ck_assert_ptr_eq(log.mem, wrapped_mem);
	ck_assert_uint_eq(log.len, sizeof(wrapped_mem));

	unsigned long allocs = testenv_allocs(), frees = testenv_frees();
	long long bytes = testenv_bytes_outstanding();
	testenv_uninstall();
	ck_assert_uint_ne(allocs, 0);
	ck_assert_uint_eq(allocs, frees);
	ck_assert_int_eq(bytes, 0);
	ck_assert_uint_eq(release_calls(&log), 1);
}

START_TEST(test_refcount_membuf_pairs)
{
	struct obj_worker w[2];
	obj_run(OBJ_PAIRS, OBJ_PAIRS, PAIRS, w);
	for (int t = 0; t < 2; t++) {
		ck_assert_uint_ge(w[t].max_seen, 2);
		ck_assert_uint_le(w[t].max_seen, 3);
	}
}
END_TEST

START_TEST(test_refcount_membuf_batches)
{
	struct obj_worker w[2];
	obj_run(OBJ_BATCH, OBJ_BATCH, PAIRS, w);
	/* Each thread held BATCH references on top of ours at some point; never more than both. */
	for (int t = 0; t < 2; t++) {
		ck_assert_uint_ge(w[t].max_seen, 1 + BATCH);
		ck_assert_uint_le(w[t].max_seen, 1 + 2 * BATCH);
	}
}
END_TEST

/* One thread counts through bufio, the other through bufvec from query: one count. */
START_TEST(test_refcount_membuf_two_interfaces)
{
	struct obj_worker w[2];
	obj_run(OBJ_PAIRS, OBJ_QUERY, MIXED_PAIRS, w);
	ck_assert_uint_ge(w[0].max_seen, 2);
	ck_assert_uint_le(w[0].max_seen, 3);
}
END_TEST

/* Single-threaded: addref/release return the new count, and the last release frees. */
START_TEST(test_refcount_membuf_counts)
{
	struct release_log log = { 0, NULL, 0 };
	kcom_bufio_t *io = NULL;
	ck_assert_int_eq(kcom_membuf_wrap(wrapped_mem, 16, release_cb, &log, &io), KCOM_OK);
	for (uint32_t i = 2; i <= 100; i++)
		ck_assert_uint_eq(kcom_bufio_addref(io), i);
	void *vec = NULL;
	ck_assert_int_eq(kcom_bufio_query(io, &kcom_bufvec_iid, &vec), KCOM_OK);
	ck_assert_uint_eq(kcom_bufvec_addref(vec), 102);
	ck_assert_uint_eq(kcom_bufvec_release(vec), 101);
	ck_assert_uint_eq(kcom_bufvec_release(vec), 100);
	for (uint32_t i = 99; i >= 1; i--)
		ck_assert_uint_eq(kcom_bufio_release(io), i);
	ck_assert_uint_eq(release_calls(&log), 0);
	ck_assert_uint_eq(kcom_bufio_release(io), 0);
	ck_assert_uint_eq(release_calls(&log), 1);
	ck_assert_ptr_eq(log.mem, wrapped_mem);
	ck_assert_uint_eq(log.len, 16);
}
END_TEST

Suite *refcount_suite(void)
{
	Suite *s = suite_create("refcount");

	TCase *tc = tcase_create("helpers");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_refcount_helpers);
	tcase_add_test(tc, test_refcount_helpers_two_threads);
	tcase_add_test(tc, test_refcount_helpers_last_drop_once);
	suite_add_tcase(s, tc);

	tc = tcase_create("object");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_refcount_membuf_counts);
	tcase_add_test(tc, test_refcount_membuf_pairs);
	tcase_add_test(tc, test_refcount_membuf_batches);
	tcase_add_test(tc, test_refcount_membuf_two_interfaces);
	suite_add_tcase(s, tc);

	return s;
}
