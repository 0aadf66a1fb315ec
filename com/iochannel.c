/*
 * Per-thread I/O channels (com/iochannel.h).
 *
 * One global table under a spin lock whose zero value is unlocked: the registered devices, and
 * for each thread that holds channels a record listing them.  The lock covers list walks and
 * counters only; allocation and the device's callbacks run outside it.  A device cannot go
 * while it has channels or a channel is being made (`pending`), so a callback never runs for a
 * device that is gone: a channel that goes is first taken off its thread's list, destroyed
 * outside the lock, and only then uncounted.  A device retired while it still has channels
 * (SPDK's deferred unregister) stays in the table, refusing new channels, until the thread that
 * uncounts its last one takes it out and calls its `gone` callback.
 *
 * Thread exit: the first channel a thread gets registers the osenv's thread-exit hook for the
 * thread's record; the hook destroys whatever the thread still holds and frees the record.
 * Without that hook (a kernel with one thread) a record goes with its last channel.
 */
#include "config.h"

#include <com/iochannel.h>
#include <com/osenv.h>
#include "com/com-internal.h"

/* A channel's alignment and size granule: a cache line. */
#define IOCHANNEL_ALIGN 64

struct iodev {
	struct iodev *next;
	void *dev;
	kcom_iochannel_create_fn create;
	kcom_iochannel_destroy_fn destroy;
	size_t ctx_size;
	uint32_t channels; /* live channels, including ones being destroyed */
	uint32_t pending;  /* channels being made */
	kcom_iodev_gone_fn gone; /* retired: called when the last channel has gone; NULL: not retired */
};

struct iothread {
	struct iothread *next;
	uintptr_t tid;
	struct kcom_iochannel *channels;
	int hooked; /* the thread-exit hook owns this record */
};

struct kcom_iochannel {
	struct kcom_iochannel *next; /* in its thread's list */
	struct iodev *dev;
	struct iothread *thread;
	uint64_t refs; /* under the lock; 64 bits, so no count of gets can wrap it */
	size_t alloc;
	_Alignas(16) unsigned char ctx[];
};

/* A channel being made: on the getting thread's stack while the device's create runs. */
struct iomaking {
	struct iomaking *next;
	uintptr_t tid;
	const struct iodev *dev;
};

static struct {
	kcom_spinlock_t lock;
	struct iodev *devs;
	struct iothread *threads;
	struct iomaking *making;
} io;

/* Lock held. */
static struct iodev *iodev_find(void *dev)
{
	for (struct iodev *d = io.devs; d != NULL; d = d->next)
		if (d->dev == dev)
			return d;
	return NULL;
}

/* Lock held: whether thread `tid` is making its channel to `d` (a create calling back). */
static int making_find(uintptr_t tid, const struct iodev *d)
{
	for (const struct iomaking *m = io.making; m != NULL; m = m->next)
		if (m->tid == tid && m->dev == d)
			return 1;
	return 0;
}

/* Lock held: takes `mk` off the list of channels being made. */
static void making_unlink(struct iomaking *mk)
{
	struct iomaking **pp = &io.making;
	while (*pp != mk)
		pp = &(*pp)->next;
	*pp = mk->next;
}

/* Lock held. */
static struct iothread *iothread_find(uintptr_t tid)
{
	for (struct iothread *t = io.threads; t != NULL; t = t->next)
		if (t->tid == tid)
			return t;
	return NULL;
}

/* Lock held: unlinks `t` from the table. */
static void iothread_unlink(struct iothread *t)
{
	for (struct iothread **pp = &io.threads; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == t) {
			*pp = t->next;
			return;
		}
	}
}

/* Lock held: unlinks `ch` from its thread's list. */
static void channel_unlink(struct kcom_iochannel *ch)
{
	for (struct kcom_iochannel **pp = &ch->thread->channels; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == ch) {
			*pp = ch->next;
			return;
		}
	}
}

/* Lock held: unlinks `d` from the table. */
static void iodev_unlink(struct iodev *d)
{
	struct iodev **pp = &io.devs;
	while (*pp != d)
		pp = &(*pp)->next;
	*pp = d->next;
}

/*
 * Lock held: one channel of `d` went, or one being made was not.  A retired device left with
 * none is unlinked and returned: the caller calls its `gone` and frees it, outside the lock.
 */
static struct iodev *iodev_uncount(struct iodev *d, int made)
{
	if (made)
		d->channels--;
	else
		d->pending--;
	if (d->gone == NULL || d->channels != 0 || d->pending != 0)
		return NULL;
	iodev_unlink(d);
	return d;
}

/* Calls a retired device's `gone` and frees its record (lock not held). */
static void iodev_finish(struct iodev *d)
{
	if (d == NULL)
		return;
	kcom_iodev_gone_fn gone = d->gone;
	void *dev = d->dev;
	kcom_free(d, sizeof(*d), 0);
	gone(dev);
}

/* Destroys a channel already off its thread's list (lock not held), then uncounts it. */
static void channel_destroy(struct kcom_iochannel *ch)
{
	struct iodev *d = ch->dev;
	d->destroy(d->dev, ch->ctx);
	kcom_free(ch, ch->alloc, IOCHANNEL_ALIGN);
	kcom_spin_acquire_(&io.lock);
	struct iodev *done = iodev_uncount(d, 1);
	kcom_spin_release_(&io.lock);
	iodev_finish(done);
}

kcom_error_t kcom_iodev_register(void *dev, kcom_iochannel_create_fn create, kcom_iochannel_destroy_fn destroy,
                                 size_t ctx_size)
{
	if (dev == NULL || create == NULL || destroy == NULL)
		return KCOM_E_INVALIDARG;
	if (ctx_size > SIZE_MAX - sizeof(struct kcom_iochannel) - IOCHANNEL_ALIGN)
		return KCOM_E_INVALIDARG;
	struct iodev *d = kcom_alloc(sizeof(*d), 0);
	if (d == NULL)
		return KCOM_E_OUTOFMEMORY;
	d->dev = dev;
	d->create = create;
	d->destroy = destroy;
	d->ctx_size = ctx_size;
	d->channels = 0;
	d->pending = 0;
	d->gone = NULL;
	kcom_spin_acquire_(&io.lock);
	if (iodev_find(dev) != NULL) {
		kcom_spin_release_(&io.lock);
		kcom_free(d, sizeof(*d), 0);
		return KCOM_E_EXISTS;
	}
	d->next = io.devs;
	io.devs = d;
	kcom_spin_release_(&io.lock);
	return KCOM_OK;
}

/* Takes `dev` out of the table now when it has no channel; else, with `gone`, retires it. */
static kcom_error_t iodev_remove(void *dev, kcom_iodev_gone_fn gone)
{
	if (dev == NULL)
		return KCOM_E_INVALIDARG;
	kcom_spin_acquire_(&io.lock);
	struct iodev *d = iodev_find(dev);
	if (d == NULL || d->gone != NULL) { /* not registered, or retired already */
		kcom_spin_release_(&io.lock);
		return KCOM_E_NOTFOUND;
	}
	if (d->channels != 0 || d->pending != 0) {
		d->gone = gone; /* NULL: nothing changes */
		kcom_spin_release_(&io.lock);
		return gone != NULL ? KCOM_OK : KCOM_E_BUSY;
	}
	iodev_unlink(d);
	kcom_spin_release_(&io.lock);
	kcom_free(d, sizeof(*d), 0);
	if (gone != NULL)
		gone(dev);
	return KCOM_OK;
}

kcom_error_t kcom_iodev_unregister(void *dev)
{
	return iodev_remove(dev, NULL);
}

kcom_error_t kcom_iodev_retire(void *dev, kcom_iodev_gone_fn gone)
{
	if (gone == NULL)
		return KCOM_E_INVALIDARG;
	return iodev_remove(dev, gone);
}

/* The osenv's thread-exit hook: destroys what the thread still holds, frees its record. */
static void iothread_exit(void *arg)
{
	struct iothread *t = arg;
	kcom_spin_acquire_(&io.lock);
	iothread_unlink(t);
	struct kcom_iochannel *list = t->channels;
	t->channels = NULL;
	kcom_spin_release_(&io.lock);
	while (list != NULL) {
		struct kcom_iochannel *ch = list;
		list = ch->next;
		channel_destroy(ch);
	}
	kcom_free(t, sizeof(*t), 0);
}

/* Lock held: the caller's channel to `d`, or NULL. */
static struct kcom_iochannel *channel_find(struct iothread *t, struct iodev *d)
{
	if (t == NULL)
		return NULL;
	for (struct kcom_iochannel *ch = t->channels; ch != NULL; ch = ch->next)
		if (ch->dev == d)
			return ch;
	return NULL;
}

/*
 * A record for this thread in `t` (allocated beforehand, or NULL to allocate it now), with the
 * osenv's thread-exit hook when it has one (the hook then owns the record); not yet in the
 * table.  KCOM_E_OUTOFMEMORY, or what the hook said; t is freed then.
 */
static kcom_error_t iothread_new(uintptr_t tid, struct iothread *t, struct iothread **out)
{
	*out = NULL;
	if (t == NULL)
		t = kcom_alloc(sizeof(*t), 0);
	if (t == NULL)
		return KCOM_E_OUTOFMEMORY;
	t->tid = tid;
	t->next = NULL;
	t->channels = NULL;
	t->hooked = 0;
	const struct kcom_osenv *env = kcom_osenv_get();
	if (env != NULL && env->thread_at_exit != NULL) {
		kcom_error_t err = env->thread_at_exit(env->ctx, iothread_exit, t);
		if (KCOM_FAILED(err)) {
			kcom_free(t, sizeof(*t), 0);
			return err;
		}
		t->hooked = 1;
	}
	*out = t;
	return KCOM_OK;
}

kcom_error_t kcom_iochannel_get(void *dev, struct kcom_iochannel **out_ch)
{
	if (out_ch != NULL)
		*out_ch = NULL;
	if (dev == NULL || out_ch == NULL)
		return KCOM_E_INVALIDARG;
	uintptr_t tid = kcom_thread_self();

	kcom_spin_acquire_(&io.lock);
	struct iodev *d = iodev_find(dev);
	if (d == NULL || d->gone != NULL) { /* not registered, or retired */
		kcom_spin_release_(&io.lock);
		return KCOM_E_NOTFOUND;
	}
	if (making_find(tid, d)) { /* asked from d's create on this thread, or a callback within it */
		kcom_spin_release_(&io.lock);
		return KCOM_E_BUSY;
	}
	struct iothread *t = iothread_find(tid);
	struct kcom_iochannel *ch = channel_find(t, d);
	if (ch != NULL) {
		ch->refs++;
		kcom_spin_release_(&io.lock);
		*out_ch = ch;
		return KCOM_OK;
	}
	d->pending++; /* d stays registered until we are done */
	struct iomaking mk = { .next = io.making, .tid = tid, .dev = d };
	io.making = &mk;
	kcom_spin_release_(&io.lock);

	/* A new channel, made outside the lock; channels take whole cache lines, so two threads'
	 * contexts never share one. */
	size_t alloc = (sizeof(*ch) + d->ctx_size + IOCHANNEL_ALIGN - 1) & ~(size_t)(IOCHANNEL_ALIGN - 1);
	kcom_error_t err = KCOM_E_OUTOFMEMORY;
	struct iothread *spare = NULL; /* this thread's record, when it has none yet */
	ch = kcom_alloc(alloc, IOCHANNEL_ALIGN);
	if (ch != NULL && t == NULL)
		spare = kcom_alloc(sizeof(*spare), 0);
	if (ch != NULL && (t != NULL || spare != NULL)) {
		kcom_memset(ch, 0, alloc);
		ch->alloc = alloc;
		ch->dev = d;
		ch->refs = 1;
		err = d->create(dev, ch->ctx);
	}
	/*
	 * create may have called into this layer on this thread: got other devices' channels,
	 * which made the thread's record, or put its last one, which freed it (a get of d itself
	 * was refused above).  So the record is looked up only now.  Only this thread makes or
	 * frees its record, and nothing below calls back, so what is found here stays.
	 */
	kcom_spin_acquire_(&io.lock);
	making_unlink(&mk);
	t = iothread_find(tid);
	kcom_spin_release_(&io.lock);
	struct iothread *fresh = NULL;
	if (KCOM_SUCCEEDED(err) && t == NULL) {
		err = iothread_new(tid, spare, &fresh);
		spare = NULL;
		if (KCOM_FAILED(err))
			d->destroy(dev, ch->ctx);
	}
	kcom_free(spare, sizeof(*spare), 0);
	if (KCOM_SUCCEEDED(err)) {
		kcom_spin_acquire_(&io.lock);
		if (fresh != NULL) {
			fresh->next = io.threads;
			io.threads = fresh;
			t = fresh;
		}
		ch->thread = t;
		ch->next = t->channels;
		t->channels = ch;
		d->pending--;
		d->channels++;
		kcom_spin_release_(&io.lock);
		*out_ch = ch;
		return KCOM_OK;
	}
	if (ch != NULL)
		kcom_free(ch, alloc, IOCHANNEL_ALIGN);
	kcom_spin_acquire_(&io.lock);
	struct iodev *done = iodev_uncount(d, 0);
	kcom_spin_release_(&io.lock);
	iodev_finish(done);
	return err;
}

/* Lock held: whether `ch` is a live channel of any thread. */
static int channel_live(const struct kcom_iochannel *ch)
{
	for (struct iothread *t = io.threads; t != NULL; t = t->next)
		for (struct kcom_iochannel *c = t->channels; c != NULL; c = c->next)
			if (c == ch)
				return 1;
	return 0;
}

kcom_error_t kcom_iochannel_put(struct kcom_iochannel *ch)
{
	return kcom_iochannel_put_of_(ch, NULL);
}

kcom_error_t kcom_iochannel_put_of_(struct kcom_iochannel *ch, kcom_iochannel_create_fn create)
{
	if (ch == NULL)
		return KCOM_E_INVALIDARG;
	uintptr_t tid = kcom_thread_self();
	kcom_spin_acquire_(&io.lock);
	/* Touch ch only once the table says it is alive: a put after the last put is refused. */
	if (!channel_live(ch) || (create != NULL && ch->dev->create != create)) {
		kcom_spin_release_(&io.lock);
		return KCOM_E_INVALIDARG;
	}
	if (ch->thread->tid != tid) {
		kcom_spin_release_(&io.lock);
		return KCOM_E_ACCESSDENIED;
	}
	if (--ch->refs != 0) {
		kcom_spin_release_(&io.lock);
		return KCOM_OK;
	}
	struct iothread *t = ch->thread;
	channel_unlink(ch);
	int drop_thread = t->channels == NULL && !t->hooked;
	if (drop_thread)
		iothread_unlink(t);
	kcom_spin_release_(&io.lock);
	channel_destroy(ch);
	if (drop_thread)
		kcom_free(t, sizeof(*t), 0);
	return KCOM_OK;
}

void *kcom_iochannel_ctx(struct kcom_iochannel *ch)
{
	return ch->ctx;
}

void *kcom_iochannel_dev(struct kcom_iochannel *ch)
{
	return ch->dev->dev;
}

void *kcom_iochannel_ctx_of_(struct kcom_iochannel *ch, const void *dev)
{
	return ch->dev->dev == dev ? ch->ctx : NULL;
}
