/*
 * Per-thread I/O channels (com/iochannel.h): one channel per thread and device, shared by gets
 * on one thread, destroyed once by the last put or by the thread's exit; every misuse refused
 * with nothing changed.  Threads run the gets whose memory is counted, because a thread's
 * record lives until the thread exits.
 */
#include "config.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <com/iochannel.h>
#include <com/osenv.h>
#include "tests/suites.h"
#include "tests/testenv.h"

struct dev {
	int creates;
	int destroys;
	int fail_create;
	kcom_error_t fail_with;
	int retire_in_destroy; /* the destroy callback retires its device (a pool's last cache) */
	int gones;             /* kcom_iodev_retire()'s callback ran */
	int destroys_at_gone;  /* destroys counted when it ran */
	struct dev *get_in_create;            /* create gets a channel to this device ... */
	struct kcom_iochannel *got_in_create; /* ... and keeps it here */
	kcom_error_t expect_in_create;        /* what that get returns */
	struct kcom_iochannel *put_in_create; /* create puts this channel */
};

static void dev_gone(void *devp)
{
	struct dev *d = devp;
	d->destroys_at_gone = __atomic_load_n(&d->destroys, __ATOMIC_RELAXED);
	__atomic_add_fetch(&d->gones, 1, __ATOMIC_RELAXED);
}

struct chan_ctx {
	uint64_t magic;
	uintptr_t owner;
	unsigned char spare[40];
};

#define CTX_MAGIC 0x6b636f6d63686eULL

static kcom_error_t dev_create(void *devp, void *ctx)
{
	struct dev *d = devp;
	struct chan_ctx *c = ctx;
	if (d->fail_create)
		return d->fail_with;
	for (size_t i = 0; i < sizeof(*c); i++)
		ck_assert_uint_eq(((unsigned char *)c)[i], 0); /* starts zeroed */
	c->magic = CTX_MAGIC;
	c->owner = kcom_thread_self();
	__atomic_add_fetch(&d->creates, 1, __ATOMIC_RELAXED);
	if (d->get_in_create != NULL)
		ck_assert_int_eq(kcom_iochannel_get(d->get_in_create, &d->got_in_create), d->expect_in_create);
	if (d->put_in_create != NULL)
		ck_assert_int_eq(kcom_iochannel_put(d->put_in_create), KCOM_OK);
	return KCOM_OK;
}

static void dev_destroy(void *devp, void *ctx)
{
	struct dev *d = devp;
	struct chan_ctx *c = ctx;
	ck_assert_uint_eq(c->magic, CTX_MAGIC);
	c->magic = 0;
	__atomic_add_fetch(&d->destroys, 1, __ATOMIC_RELAXED);
	if (d->retire_in_destroy) /* its channel still counted: retired, gone after we return */
		ck_assert_int_eq(kcom_iodev_retire(d, dev_gone), KCOM_OK);
}

static int count(const int *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Runs fn(arg) on a new thread and waits for it (and so for its exit hooks). */
static void on_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, fn, arg), 0);
	void *ret;
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_null(ret);
}

START_TEST(test_bad_input)
{
	struct dev d = { 0 }, other = { 0 };
	struct kcom_iochannel *ch = (void *)1;
	ck_assert_int_eq(kcom_iochannel_get(&d, &ch), KCOM_E_NOTFOUND); /* never registered */
	ck_assert_ptr_null(ch);
	ck_assert_int_eq(kcom_iodev_register(NULL, dev_create, dev_destroy, 8), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iodev_register(&d, NULL, dev_destroy, 8), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, NULL, 8), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, SIZE_MAX), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, 8), KCOM_E_EXISTS);
	ck_assert_int_eq(kcom_iochannel_get(NULL, &ch), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iochannel_get(&d, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iochannel_put(NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iodev_unregister(&other), KCOM_E_NOTFOUND);
	ck_assert_int_eq(kcom_iodev_unregister(NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(d.creates, 0);
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_OK);
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_E_NOTFOUND);
}
END_TEST

/* One thread: gets share a channel; the last put destroys it; misuse changes nothing. */
static void *one_thread_body(void *arg)
{
	struct dev *d = arg;
	struct kcom_iochannel *a, *b;
	ck_assert_int_eq(kcom_iochannel_get(d, &a), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_get(d, &b), KCOM_OK);
	ck_assert_ptr_eq(a, b);
	ck_assert_int_eq(count(&d->creates), 1);
	struct chan_ctx *c = kcom_iochannel_ctx(a);
	ck_assert_uint_eq(c->magic, CTX_MAGIC);
	ck_assert_uint_eq(c->owner, kcom_thread_self());
	ck_assert_ptr_eq(kcom_iochannel_dev(a), d);
	c->spare[0] = 42; /* the context persists between gets */

	/* Unregister while a channel is outstanding: refused. */
	ck_assert_int_eq(kcom_iodev_unregister(d), KCOM_E_BUSY);

	ck_assert_int_eq(kcom_iochannel_put(a), KCOM_OK);
	ck_assert_int_eq(count(&d->destroys), 0);
	ck_assert_int_eq(kcom_iochannel_get(d, &b), KCOM_OK);
	ck_assert_ptr_eq(b, a);
	ck_assert_uint_eq(((struct chan_ctx *)kcom_iochannel_ctx(b))->spare[0], 42);
	ck_assert_int_eq(kcom_iochannel_put(b), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_put(a), KCOM_OK); /* the last */
	ck_assert_int_eq(count(&d->destroys), 1);
	ck_assert_int_eq(kcom_iochannel_put(a), KCOM_E_INVALIDARG); /* after the last put */
	ck_assert_int_eq(count(&d->destroys), 1);

	/* A new get makes a new channel. */
	ck_assert_int_eq(kcom_iochannel_get(d, &a), KCOM_OK);
	ck_assert_int_eq(count(&d->creates), 2);
	ck_assert_int_eq(kcom_iochannel_put(a), KCOM_OK);
	ck_assert_int_eq(count(&d->destroys), 2);
	return NULL;
}

START_TEST(test_one_thread)
{
	struct dev d = { 0 };
	testenv_install();
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	on_thread(one_thread_body, &d);
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_OK);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/* A create that fails, and allocations that fail: the error, nothing kept. */
static void *failing_body(void *arg)
{
	struct dev *d = arg;
	struct kcom_iochannel *ch = (void *)1;
	d->fail_create = 1;
	d->fail_with = KCOM_E_ACCESSDENIED;
	ck_assert_int_eq(kcom_iochannel_get(d, &ch), KCOM_E_ACCESSDENIED);
	ck_assert_ptr_null(ch);
	/* Nothing was kept: the device has no channel, so it can go (and come back). */
	ck_assert_int_eq(kcom_iodev_unregister(d), KCOM_OK);
	ck_assert_int_eq(kcom_iodev_register(d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	d->fail_create = 0;
	for (unsigned long nth = 1; nth <= 2; nth++) {
		testenv_fail_at(nth);
		ck_assert_int_eq(kcom_iochannel_get(d, &ch), KCOM_E_OUTOFMEMORY);
		ck_assert(testenv_failure_hit());
		testenv_fail_at(0);
		ck_assert_ptr_null(ch);
	}
	ck_assert_int_eq(count(&d->creates), 0);
	ck_assert_int_eq(kcom_iochannel_get(d, &ch), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_put(ch), KCOM_OK);
	ck_assert_int_eq(count(&d->creates), 1);
	ck_assert_int_eq(count(&d->destroys), 1);
	return NULL;
}

START_TEST(test_create_fails)
{
	struct dev d = { 0 };
	testenv_install();
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	on_thread(failing_body, &d);
	ck_assert_int_eq(count(&d.destroys), 1); /* never for a create that failed */
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_OK);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/* Several threads at once: each its own channel; gets on one thread share it. */
#define NTHREADS 4
#define ROUNDS 2000

struct worker {
	struct dev *d;
	struct kcom_iochannel *seen;
	int keep; /* exit holding the channel */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct kcom_iochannel *ch, *again;
	if (KCOM_FAILED(kcom_iochannel_get(w->d, &ch)))
		return (void *)1;
	for (int r = 0; r < ROUNDS; r++) {
		if (KCOM_FAILED(kcom_iochannel_get(w->d, &again)) || again != ch)
			return (void *)2;
		struct chan_ctx *c = kcom_iochannel_ctx(again);
		if (c->owner != kcom_thread_self())
			return (void *)3;
		c->spare[1]++; /* the thread's own state: no lock */
		if (KCOM_FAILED(kcom_iochannel_put(again)))
			return (void *)4;
	}
	w->seen = ch;
	if (!w->keep && KCOM_FAILED(kcom_iochannel_put(ch)))
		return (void *)5;
	return NULL;
}

static void run_workers(struct dev *d, int keep)
{
	struct worker w[NTHREADS];
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ .d = d, .seen = NULL, .keep = keep };
		ck_assert_int_eq(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		void *ret;
		ck_assert_int_eq(pthread_join(t[i], &ret), 0);
		ck_assert_ptr_null(ret);
	}
	ck_assert_int_eq(count(&d->creates), NTHREADS);
	ck_assert_int_eq(count(&d->destroys), NTHREADS); /* once per channel: by put, or by exit */
}

START_TEST(test_threads)
{
	struct dev d = { 0 };
	testenv_install();
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	run_workers(&d, _i);
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_OK); /* nothing left behind */
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/* A put from a thread that does not own the channel is refused, changing nothing. */
struct stranger {
	struct kcom_iochannel *ch;
	kcom_error_t got;
};

static void *stranger_main(void *arg)
{
	struct stranger *s = arg;
	s->got = kcom_iochannel_put(s->ch);
	return NULL;
}

START_TEST(test_foreign_put)
{
	struct dev d = { 0 };
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	struct kcom_iochannel *ch;
	ck_assert_int_eq(kcom_iochannel_get(&d, &ch), KCOM_OK);
	struct stranger s = { ch, KCOM_OK };
	on_thread(stranger_main, &s);
	ck_assert_int_eq(s.got, KCOM_E_ACCESSDENIED);
	ck_assert_int_eq(count(&d.destroys), 0);
	ck_assert_int_eq(kcom_iochannel_put(ch), KCOM_OK);
	ck_assert_int_eq(count(&d.destroys), 1);
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_OK);
}
END_TEST

/*
 * A host without thread-exit hooks (kcom_osenv.thread_at_exit NULL): a thread's record goes
 * with its last channel instead of at its exit, wherever it sits in the table; and a host
 * whose hook refuses: the get fails and keeps nothing.  The test osenv underneath counts.
 */
static struct kcom_osenv hookless_env;

static kcom_error_t refuse_at_exit(void *ctx, void (*fn)(void *arg), void *arg)
{
	(void)ctx;
	(void)fn;
	(void)arg;
	return KCOM_E_OUTOFMEMORY;
}

static void install_hookless(kcom_error_t (*at_exit)(void *, void (*)(void *), void *))
{
	testenv_install();
	hookless_env = *kcom_osenv_get();
	hookless_env.thread_at_exit = at_exit;
	kcom_osenv_set(&hookless_env);
}

struct holder {
	struct dev *d;
	pthread_barrier_t *got, *go;
};

/* Releases a thread waiting at `go`, joins it (it must return NULL), drops both barriers. */
static void let_go_and_join(pthread_t t, pthread_barrier_t *got, pthread_barrier_t *go)
{
	pthread_barrier_wait(go);
	void *ret;
	ck_assert_int_eq(pthread_join(t, &ret), 0);
	ck_assert_ptr_null(ret);
	pthread_barrier_destroy(got);
	pthread_barrier_destroy(go);
}

/* Gets a channel, lets the main thread drop its own, then puts. */
static void *holder_main(void *arg)
{
	struct holder *h = arg;
	struct kcom_iochannel *ch;
	kcom_error_t err = kcom_iochannel_get(h->d, &ch);
	pthread_barrier_wait(h->got);
	pthread_barrier_wait(h->go);
	if (KCOM_FAILED(err) || KCOM_FAILED(kcom_iochannel_put(ch)))
		return (void *)1;
	return NULL;
}

START_TEST(test_no_exit_hook)
{
	struct dev d = { 0 }, e = { 0 };
	install_hookless(NULL);
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	ck_assert_int_eq(kcom_iodev_register(&e, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);

	/* Two channels on this thread: the older goes first, the record stays for the other. */
	struct kcom_iochannel *cd, *ce;
	ck_assert_int_eq(kcom_iochannel_get(&d, &cd), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_get(&e, &ce), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_put(cd), KCOM_OK);
	ck_assert_int_eq(count(&d.destroys), 1);
	ck_assert_int_eq(kcom_iochannel_put(cd), KCOM_E_INVALIDARG);

	/* Another thread's record in front of this one's when it goes. */
	pthread_barrier_t got, go;
	pthread_barrier_init(&got, NULL, 2);
	pthread_barrier_init(&go, NULL, 2);
	struct holder h = { &d, &got, &go };
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, holder_main, &h), 0);
	pthread_barrier_wait(&got);
	ck_assert_int_eq(kcom_iochannel_put(ce), KCOM_OK); /* this thread's last: its record goes */
	ck_assert_int_eq(count(&e.destroys), 1);
	let_go_and_join(t, &got, &go);
	ck_assert_int_eq(count(&d.destroys), 2);

	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_OK);
	ck_assert_int_eq(kcom_iodev_unregister(&e), KCOM_OK);
	/* No thread record outlived its channels. */
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/*
 * A create callback that calls back into the layer on its thread.  Getting another device's
 * channel (this thread's first) makes the thread's record inside the outer get: the thread
 * keeps one record, and its next get of that device returns the same channel.  Putting the
 * thread's last channel frees the record inside the outer get (on a host without exit hooks):
 * the outer get makes a new one.  Getting the channel being made is refused (it recursed into
 * create without end before).  _i: 0 with the exit hook, 1 without.
 */
static void *calls_back_body(void *arg)
{
	struct dev *devs = arg, *a = &devs[0], *b = &devs[1];
	struct kcom_iochannel *ca, *cb, *again;
	a->get_in_create = b;
	ck_assert_int_eq(kcom_iochannel_get(a, &ca), KCOM_OK);
	a->get_in_create = NULL;
	ck_assert_int_eq(kcom_iochannel_get(b, &cb), KCOM_OK);
	ck_assert_ptr_eq(cb, a->got_in_create);
	ck_assert_int_eq(count(&b->creates), 1);
	ck_assert_int_eq(kcom_iochannel_put(cb), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_put(cb), KCOM_OK);
	ck_assert_int_eq(count(&b->destroys), 1);

	/* Now ca is the thread's only channel, and b's create puts it. */
	b->put_in_create = ca;
	ck_assert_int_eq(kcom_iochannel_get(b, &cb), KCOM_OK);
	b->put_in_create = NULL;
	ck_assert_int_eq(count(&a->destroys), 1);
	ck_assert_int_eq(kcom_iochannel_get(b, &again), KCOM_OK);
	ck_assert_ptr_eq(again, cb);
	ck_assert_int_eq(count(&b->creates), 2);
	ck_assert_ptr_eq(kcom_iochannel_ctx(cb), kcom_iochannel_ctx(again));
	ck_assert_int_eq(kcom_iochannel_put(again), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_put(cb), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_put(cb), KCOM_E_INVALIDARG);
	ck_assert_int_eq(count(&b->destroys), 2);

	/* A create asking for the channel it is making: refused, once, and the outer get works. */
	a->get_in_create = a;
	a->got_in_create = (void *)1;
	a->expect_in_create = KCOM_E_BUSY;
	ck_assert_int_eq(kcom_iochannel_get(a, &ca), KCOM_OK);
	a->get_in_create = NULL;
	ck_assert_ptr_null(a->got_in_create);
	ck_assert_int_eq(count(&a->creates), 2);
	ck_assert_int_eq(kcom_iochannel_get(a, &again), KCOM_OK);
	ck_assert_ptr_eq(again, ca);
	ck_assert_int_eq(kcom_iochannel_put(again), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_put(ca), KCOM_OK);
	ck_assert_int_eq(count(&a->destroys), 2);
	return NULL;
}

START_TEST(test_create_calls_back)
{
	struct dev devs[2] = { { 0 }, { 0 } };
	if (_i == 0)
		testenv_install();
	else
		install_hookless(NULL);
	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(kcom_iodev_register(&devs[k], dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	on_thread(calls_back_body, devs);
	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(kcom_iodev_unregister(&devs[k]), KCOM_OK);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

static void *refused_body(void *arg)
{
	struct dev *d = arg;
	struct kcom_iochannel *ch = (void *)1;
	ck_assert_int_eq(kcom_iochannel_get(d, &ch), KCOM_E_OUTOFMEMORY);
	ck_assert_ptr_null(ch);
	return NULL;
}

START_TEST(test_exit_hook_refused)
{
	struct dev d = { 0 };
	install_hookless(refuse_at_exit);
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	on_thread(refused_body, &d);
	/* The channel was made, then undone: destroyed once, nothing kept. */
	ck_assert_int_eq(count(&d.creates), 1);
	ck_assert_int_eq(count(&d.destroys), 1);
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_OK);
	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

/*
 * Retiring a device (kcom_iodev_retire): at once when no channel is left; else refusing new
 * gets until the last channel goes (a put, or its thread's exit), then `gone`, after that
 * channel's destroy; a destroy callback may retire its own device.  Misuse changes nothing.
 */
struct retiree {
	struct dev *d;
	pthread_barrier_t *got, *go;
	int keep;       /* exit holding the channel */
	kcom_error_t again; /* a second get after the retire */
};

static void *retiree_main(void *arg)
{
	struct retiree *r = arg;
	struct kcom_iochannel *ch, *other = (void *)1;
	kcom_error_t err = kcom_iochannel_get(r->d, &ch);
	pthread_barrier_wait(r->got);
	pthread_barrier_wait(r->go); /* retired meanwhile */
	r->again = kcom_iochannel_get(r->d, &other);
	if (KCOM_FAILED(err) || other != NULL)
		return (void *)1;
	if (((struct chan_ctx *)kcom_iochannel_ctx(ch))->magic != CTX_MAGIC)
		return (void *)2; /* a retired device's channel still works */
	if (!r->keep && KCOM_FAILED(kcom_iochannel_put(ch)))
		return (void *)3;
	return NULL;
}

static void *get_put_body(void *arg)
{
	struct kcom_iochannel *ch;
	ck_assert_int_eq(kcom_iochannel_get(arg, &ch), KCOM_OK);
	ck_assert_int_eq(kcom_iochannel_put(ch), KCOM_OK);
	return NULL;
}

START_TEST(test_retire)
{
	struct dev d = { 0 };
	testenv_install();
	/* No channel: gone at once. */
	ck_assert_int_eq(kcom_iodev_retire(&d, dev_gone), KCOM_E_NOTFOUND); /* not registered */
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	ck_assert_int_eq(kcom_iodev_retire(NULL, dev_gone), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iodev_retire(&d, NULL), KCOM_E_INVALIDARG);
	ck_assert_int_eq(kcom_iodev_retire(&d, dev_gone), KCOM_OK);
	ck_assert_int_eq(d.gones, 1);
	ck_assert_int_eq(kcom_iodev_retire(&d, dev_gone), KCOM_E_NOTFOUND);
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_E_NOTFOUND);
	ck_assert_int_eq(d.gones, 1);

	/* A channel on another thread: 0, it puts; 1, it exits holding the channel. */
	for (int keep = 0; keep <= 1; keep++) {
		d = (struct dev){ 0 };
		ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
		pthread_barrier_t got, go;
		pthread_barrier_init(&got, NULL, 2);
		pthread_barrier_init(&go, NULL, 2);
		struct retiree r = { &d, &got, &go, keep, KCOM_OK };
		pthread_t t;
		ck_assert_int_eq(pthread_create(&t, NULL, retiree_main, &r), 0);
		pthread_barrier_wait(&got);
		ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_E_BUSY);
		ck_assert_int_eq(kcom_iodev_retire(&d, dev_gone), KCOM_OK);
		ck_assert_int_eq(count(&d.gones), 0);
		/* Retired: no new channel, no second retire or unregister, no second registration yet. */
		struct kcom_iochannel *ch = (void *)1;
		ck_assert_int_eq(kcom_iochannel_get(&d, &ch), KCOM_E_NOTFOUND);
		ck_assert_ptr_null(ch);
		ck_assert_int_eq(kcom_iodev_retire(&d, dev_gone), KCOM_E_NOTFOUND);
		ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_E_NOTFOUND);
		ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, 8), KCOM_E_EXISTS);
		let_go_and_join(t, &got, &go);
		ck_assert_int_eq(r.again, KCOM_E_NOTFOUND); /* even on the thread holding one */
		ck_assert_int_eq(count(&d.creates), 1);
		ck_assert_int_eq(count(&d.destroys), 1);
		ck_assert_int_eq(count(&d.gones), 1);
		ck_assert_int_eq(d.destroys_at_gone, 1); /* after the channel's destroy */
		/* Out of the table: the pointer can be registered anew. */
		ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, 8), KCOM_OK);
		ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_OK);
	}

	/* The destroy callback retires its own device: gone once, after that destroy. */
	d = (struct dev){ .retire_in_destroy = 1 };
	ck_assert_int_eq(kcom_iodev_register(&d, dev_create, dev_destroy, sizeof(struct chan_ctx)), KCOM_OK);
	on_thread(get_put_body, &d);
	ck_assert_int_eq(d.destroys, 1);
	ck_assert_int_eq(d.gones, 1);
	ck_assert_int_eq(d.destroys_at_gone, 1);
	ck_assert_int_eq(kcom_iodev_unregister(&d), KCOM_E_NOTFOUND);

	ck_assert_uint_eq(testenv_allocs(), testenv_frees());
	ck_assert_int_eq(testenv_bytes_outstanding(), 0);
	testenv_uninstall();
}
END_TEST

Suite *iochannel_suite(void)
{
	Suite *s = suite_create("iochannel");
	TCase *tc = tcase_create("iochannel");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bad_input);
	tcase_add_test(tc, test_one_thread);
	tcase_add_test(tc, test_create_fails);
	tcase_add_loop_test(tc, test_threads, 0, 2); /* 0: threads put; 1: threads exit holding */
	tcase_add_test(tc, test_foreign_put);
	tcase_add_test(tc, test_no_exit_hook);
	tcase_add_test(tc, test_exit_hook_refused);
	tcase_add_loop_test(tc, test_create_calls_back, 0, 2);
	tcase_add_test(tc, test_retire);
	suite_add_tcase(s, tc);
	return s;
}
