/*
 * kcom-bench: how much kcom's indirection costs, measured against the code it stands in for.
 *
 * One run prints four groups of figures, each beside its baseline measured in the same run on
 * the same memory:
 *   1. sequential membuf write and read in 4 KiB calls (kcom_bufio_write/read) against memcpy
 *      of the same 4 KiB chunks, in MB/s (MB = 10^6 bytes);
 *   2. 64-byte reads at random 64-aligned offsets against memcpy of the same 64 bytes, in ns,
 *      over the whole buffer and again inside a window that stays in cache;
 *   3. the cost of query (with and without the release COM makes the caller owe), of an
 *      addref/release pair, and of the bare atomic increment and decrement under both;
 *   4. with GLib, a GObject interface lookup and a g_object_ref/unref pair, and the ratio of
 *      kcom's query to the GLib lookup.
 * Every figure is the best of several repetitions (the median is printed beside it), because
 * the best is the run least disturbed by the rest of the machine.  The last lines repeat each
 * figure as `bench: name value unit` for scripts.  `--quick` shrinks sizes and counts so
 * `make check` can prove the program runs; its figures mean little.  Any kcom call that fails
 * stops the program with a message and exit status 1.
 *
 * This is a benchmark, never a test: nothing here asserts a speed.
 */
#include "config.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <com/error.h>
#include <com/refcount.h>
#include <impls/membuf.h>

#ifdef HAVE_GLIB
#include <glib-object.h>
#endif

#define BENCH_CHUNK 4096u        /* bytes per sequential call */
#define BENCH_SMALL 64u          /* bytes per random read */
#define BENCH_HOT_WINDOW 32768u  /* the cache-resident variant reads inside this many bytes */
#define BENCH_HOT_OFFS 4096u     /* offsets pregenerated for it (a power of two) */
#define BENCH_MAX_REPS 16        /* no config may ask more */

/* Sizes and counts for one run. */
struct bench_config {
	const char *mode;
	size_t size;        /* bytes of the membuf and of the plain buffer */
	int reps;           /* repetitions of every measurement */
	int seq_reps;       /* repetitions of the sequential passes, which are short and noisy */
	size_t rand_ops;    /* random reads per repetition */
	size_t call_ops;    /* query/addref iterations per repetition */
};

static const struct bench_config bench_full = {
	.mode = "full", .size = 64u << 20, .reps = 7, .seq_reps = 15, .rand_ops = 2000000, .call_ops = 10000000,
};

static const struct bench_config bench_quick = {
	.mode = "quick", .size = 4u << 20, .reps = 3, .seq_reps = 3, .rand_ops = 100000, .call_ops = 200000,
};

/* The results of one measurement: seconds per repetition. */
struct bench_times {
	double t[BENCH_MAX_REPS];
	int n;
};

/* One figure for the final machine-readable lines. */
struct bench_figure {
	const char *name;
	double value;
	const char *unit;
};

static struct bench_figure bench_figures[64];
static size_t bench_nfigures;

/* Results go here so the compiler cannot drop the loops that compute them. */
static volatile uintptr_t bench_sink;

/* Tells the compiler that memory may have been read or written, so no copy is dropped or merged. */
#define BENCH_BARRIER() __asm__ __volatile__("" ::: "memory")
/* The same, and `p` escapes: the bytes it points to must really be stored. */
#define BENCH_USE(p) __asm__ __volatile__("" : : "r"(p) : "memory")

/* ---- plumbing ---- */

static double bench_now(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		perror("kcom-bench: clock_gettime");
		exit(1);
	}
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Stops the run when a kcom call failed: a figure measured over failing calls is meaningless. */
static void bench_check(kcom_error_t err, const char *what)
{
	if (KCOM_FAILED(err)) {
		fprintf(stderr, "kcom-bench: %s failed: %s (0x%08" PRIx32 ")\n", what, kcom_strerror(err),
		        (uint32_t)err);
		exit(1);
	}
}

/*
 * Stops the run when a loop saw a failure or a short transfer.  Loops keep the last failure
 * and OR the differences from the asked length, rather than branching out on every call.
 */
static void bench_check_loop(kcom_error_t err_last, size_t short_or, const char *what)
{
	bench_check(err_last, what);
	if (short_or != 0) {
		fprintf(stderr, "kcom-bench: %s transferred fewer bytes than asked\n", what);
		exit(1);
	}
}

static void *bench_xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL) {
		fprintf(stderr, "kcom-bench: out of memory (%zu bytes)\n", n);
		exit(1);
	}
	return p;
}

static int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double bench_best(const struct bench_times *tm)
{
	double best = tm->t[0];
	for (int i = 1; i < tm->n; i++)
		if (tm->t[i] < best)
			best = tm->t[i];
	return best;
}

static double bench_median(const struct bench_times *tm)
{
	double s[BENCH_MAX_REPS];
	memcpy(s, tm->t, sizeof(double) * (size_t)tm->n);
	qsort(s, (size_t)tm->n, sizeof(double), bench_cmp_double);
	return tm->n % 2 ? s[tm->n / 2] : (s[tm->n / 2 - 1] + s[tm->n / 2]) / 2;
}

static void bench_record(const char *name, double value, const char *unit)
{
	if (bench_nfigures == sizeof(bench_figures) / sizeof(bench_figures[0])) {
		fprintf(stderr, "kcom-bench: too many figures\n");
		exit(1);
	}
	bench_figures[bench_nfigures++] = (struct bench_figure){ name, value, unit };
}

/* Best and median of a repeated measurement as MB/s over `bytes`. */
static double bench_mbps(const struct bench_times *tm, size_t bytes, double *out_median)
{
	*out_median = (double)bytes / bench_median(tm) / 1e6;
	return (double)bytes / bench_best(tm) / 1e6;
}

/* Best and median as ns per operation over `ops`. */
static double bench_nsop(const struct bench_times *tm, size_t ops, double *out_median)
{
	*out_median = bench_median(tm) * 1e9 / (double)ops;
	return bench_best(tm) * 1e9 / (double)ops;
}

/* xorshift64*: cheap, good enough to scatter offsets; run before timing, never inside it. */
static uint64_t bench_rand(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* ---- 1. sequential ---- */

/* The whole buffer in 4 KiB kcom writes, from `src`.  Every call is checked after the loop. */
static double seq_kcom_write(kcom_bufio_t *io, const unsigned char *src, size_t size)
{
	kcom_error_t bad = KCOM_OK;
	size_t short_or = 0, actual;
	double t0 = bench_now();
	for (size_t off = 0; off < size; off += BENCH_CHUNK) {
		kcom_error_t err = kcom_bufio_write(io, src + off, (kcom_off_t)off, BENCH_CHUNK, &actual);
		bad = err ? err : bad;
		short_or |= actual ^ BENCH_CHUNK;
	}
	double t = bench_now() - t0;
	bench_check_loop(bad, short_or, "kcom_bufio_write");
	return t;
}

static double seq_kcom_read(kcom_bufio_t *io, unsigned char *dst, size_t size)
{
	kcom_error_t bad = KCOM_OK;
	size_t short_or = 0, actual;
	double t0 = bench_now();
	for (size_t off = 0; off < size; off += BENCH_CHUNK) {
		kcom_error_t err = kcom_bufio_read(io, dst + off, (kcom_off_t)off, BENCH_CHUNK, &actual);
		bad = err ? err : bad;
		short_or |= actual ^ BENCH_CHUNK;
	}
	double t = bench_now() - t0;
	bench_check_loop(bad, short_or, "kcom_bufio_read");
	return t;
}

/*
 * The baseline: the same 4 KiB copies with memcpy.  The barrier keeps the compiler from fusing
 * the loop into one large copy, which would measure something kcom's callers cannot do.
 */
static double seq_memcpy(unsigned char *dst, const unsigned char *src, size_t size)
{
	double t0 = bench_now();
	for (size_t off = 0; off < size; off += BENCH_CHUNK) {
		memcpy(dst + off, src + off, BENCH_CHUNK);
		BENCH_BARRIER();
	}
	return bench_now() - t0;
}

/*
 * Times writes and reads, kcom and memcpy interleaved repetition by repetition so a change in
 * clock speed hits both alike.  memcpy works on the membuf's own bytes (through a mapping), so
 * both sides touch exactly the same memory and only the call path differs.  The mapping is
 * dropped before kcom's turn: kcom is measured on an unmapped membuf, its normal state.
 */
static void bench_sequential(const struct bench_config *cfg, kcom_bufio_t *io, unsigned char *plain)
{
	struct bench_times kw = { .n = cfg->seq_reps }, kr = { .n = cfg->seq_reps };
	struct bench_times mw = { .n = cfg->seq_reps }, mr = { .n = cfg->seq_reps };
	void *addr;

	/*
	 * One untimed pass of each first: caches, TLBs and branch predictors warm, pages present.
	 * Who goes first alternates, so neither side always inherits the other's cache state.
	 */
	for (int rep = -1; rep < cfg->seq_reps; rep++) {
		double w, r, kwt = 0, krt = 0;
		if (rep & 1) {
			kwt = seq_kcom_write(io, plain, cfg->size);
			krt = seq_kcom_read(io, plain, cfg->size);
		}
		bench_check(kcom_bufio_map(io, &addr, 0, cfg->size), "kcom_bufio_map");
		w = seq_memcpy(addr, plain, cfg->size);
		r = seq_memcpy(plain, addr, cfg->size);
		bench_check(kcom_bufio_unmap(io, addr, 0, cfg->size), "kcom_bufio_unmap");
		if (!(rep & 1)) {
			kwt = seq_kcom_write(io, plain, cfg->size);
			krt = seq_kcom_read(io, plain, cfg->size);
		}
		if (rep >= 0) {
			mw.t[rep] = w;
			mr.t[rep] = r;
			kw.t[rep] = kwt;
			kr.t[rep] = krt;
		}
	}

	double kwm, mwm, krm, mrm;
	double kwb = bench_mbps(&kw, cfg->size, &kwm), mwb = bench_mbps(&mw, cfg->size, &mwm);
	double krb = bench_mbps(&kr, cfg->size, &krm), mrb = bench_mbps(&mr, cfg->size, &mrm);

	printf("1. sequential, %zu MiB in %u-byte calls, %d repetitions, MB/s (MB = 10^6 bytes), best (median)\n",
	       cfg->size >> 20, BENCH_CHUNK, cfg->seq_reps);
	printf("   %-28s %20s %20s %12s\n", "", "kcom", "memcpy", "kcom/memcpy");
	printf("   %-28s %10.1f (%7.1f) %10.1f (%7.1f) %12.3f   target >= 0.95\n", "membuf write",
	       kwb, kwm, mwb, mwm, kwb / mwb);
	printf("   %-28s %10.1f (%7.1f) %10.1f (%7.1f) %12.3f   target >= 0.95\n", "membuf read",
	       krb, krm, mrb, mrm, krb / mrb);
	bench_record("seq_write_kcom", kwb, "MB/s");
	bench_record("seq_write_memcpy", mwb, "MB/s");
	bench_record("seq_write_ratio", kwb / mwb, "x");
	bench_record("seq_read_kcom", krb, "MB/s");
	bench_record("seq_read_memcpy", mrb, "MB/s");
	bench_record("seq_read_ratio", krb / mrb, "x");
}

/* ---- 2. random 64-byte reads ---- */

/*
 * Both loops copy into a 64-byte-aligned buffer, as a caller reading records would.  Without
 * the alignment the result depended on where the stack happened to fall: a 64-byte copy into a
 * buffer that straddles a page makes each store split, which cost the libc memcpy under kcom
 * up to 5x in the cache-hot case while the inlined 16-byte stores of the baseline never split.
 */
static double rand_kcom(kcom_bufio_t *io, const kcom_off_t *offs, size_t mask, size_t ops)
{
	_Alignas(BENCH_SMALL) unsigned char tmp[BENCH_SMALL];
	kcom_error_t bad = KCOM_OK;
	size_t short_or = 0, actual;
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		kcom_error_t err = kcom_bufio_read(io, tmp, offs[i & mask], BENCH_SMALL, &actual);
		bad = err ? err : bad;
		short_or |= actual ^ BENCH_SMALL;
		BENCH_USE(tmp);
	}
	double t = bench_now() - t0;
	bench_check_loop(bad, short_or, "kcom_bufio_read (random)");
	return t;
}

static double rand_memcpy(const unsigned char *base, const kcom_off_t *offs, size_t mask, size_t ops)
{
	_Alignas(BENCH_SMALL) unsigned char tmp[BENCH_SMALL];
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		memcpy(tmp, base + offs[i & mask], BENCH_SMALL);
		BENCH_USE(tmp);
	}
	return bench_now() - t0;
}

/*
 * One random-read comparison over `noffs` pregenerated offsets (a power of two; the loop wraps
 * with a mask, the same instruction on both sides).  memcpy reads the membuf's bytes through a
 * mapping, as in the sequential test.  names[] are the kcom, memcpy and ratio figure names.
 */
static void bench_random_one(const struct bench_config *cfg, kcom_bufio_t *io, const kcom_off_t *offs,
                             size_t noffs, const char *label, const char *const names[3])
{
	struct bench_times k = { .n = cfg->reps }, m = { .n = cfg->reps };
	size_t mask = noffs - 1;
	void *addr;

	for (int rep = -1; rep < cfg->reps; rep++) {
		double kt = 0, mt;
		if (rep & 1)
			kt = rand_kcom(io, offs, mask, cfg->rand_ops);
		bench_check(kcom_bufio_map(io, &addr, 0, cfg->size), "kcom_bufio_map");
		mt = rand_memcpy(addr, offs, mask, cfg->rand_ops);
		bench_check(kcom_bufio_unmap(io, addr, 0, cfg->size), "kcom_bufio_unmap");
		if (!(rep & 1))
			kt = rand_kcom(io, offs, mask, cfg->rand_ops);
		if (rep >= 0) {
			m.t[rep] = mt;
			k.t[rep] = kt;
		}
	}
	double km, mm;
	double kb = bench_nsop(&k, cfg->rand_ops, &km), mb = bench_nsop(&m, cfg->rand_ops, &mm);
	printf("   %-28s %10.2f (%7.2f) %10.2f (%7.2f) %12.3f\n", label, kb, km, mb, mm, mb / kb);
	bench_record(names[0], kb, "ns/op");
	bench_record(names[1], mb, "ns/op");
	bench_record(names[2], mb / kb, "x");
}

/*
 * Random 64-byte reads over the whole buffer (mostly cache and TLB misses: what a server reading
 * small records sees), then inside a 32 KiB window that stays in cache, which leaves little but
 * the cost of the call itself.
 */
static void bench_random(const struct bench_config *cfg, kcom_bufio_t *io)
{
	static const char *const cold[3] = { "rand64_kcom", "rand64_memcpy", "rand64_ratio" };
	static const char *const warm[3] = { "rand64_hot_kcom", "rand64_hot_memcpy", "rand64_hot_ratio" };

	/* Offsets pregenerated so the RNG is not timed; a power of two so the loop can mask. */
	size_t noffs = 1;
	while (noffs < cfg->rand_ops)
		noffs <<= 1;
	kcom_off_t *offs = bench_xmalloc(noffs * sizeof(*offs));
	kcom_off_t *hot = bench_xmalloc(BENCH_HOT_OFFS * sizeof(*hot));
	uint64_t state = 0x9E3779B97F4A7C15ULL;
	for (size_t i = 0; i < noffs; i++)
		offs[i] = (kcom_off_t)((bench_rand(&state) % (cfg->size / BENCH_SMALL)) * BENCH_SMALL);
	for (size_t i = 0; i < BENCH_HOT_OFFS; i++)
		hot[i] = (kcom_off_t)((bench_rand(&state) % (BENCH_HOT_WINDOW / BENCH_SMALL)) * BENCH_SMALL);

	printf("\n2. random %u-byte reads at 64-aligned offsets, %zu per repetition, ns/op, best (median)\n",
	       BENCH_SMALL, cfg->rand_ops);
	printf("   %-28s %20s %20s %12s\n", "", "kcom", "memcpy", "speed k/m");
	char label[64];
	snprintf(label, sizeof(label), "over %zu MiB", cfg->size >> 20);
	bench_random_one(cfg, io, offs, noffs, label, cold);
	bench_random_one(cfg, io, hot, BENCH_HOT_OFFS, "inside 32 KiB (cache-hot)", warm);
	printf("   speed k/m = memcpy ns / kcom ns: 1.00 is as fast as memcpy, lower is slower\n");
	free(hot);
	free(offs);
}

/* ---- 3. query, addref, release ---- */

/* Query and release in one iteration: the caller ends as it began, holding nothing new. */
static double call_query_release(kcom_bufio_t *io, const kcom_iid_t *iid, size_t ops)
{
	kcom_error_t bad = KCOM_OK;
	uintptr_t acc = 0;
	void *p;
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		kcom_error_t err = kcom_bufio_query(io, iid, &p);
		bad = err ? err : bad;
		acc ^= (uintptr_t)p;
		/* Every interface's release is in slot 3, so IUnknown's wrapper serves them all. */
		acc += kcom_iunknown_release(p);
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	bench_check(bad, "kcom_bufio_query");
	return t;
}

/*
 * Query alone, the figure to set beside a lookup that hands out a borrowed pointer.  The `ops`
 * references it takes are released after the clock stops, through the last pointer returned
 * (every one of them is the same interface of the same object).
 */
static double call_query_only(kcom_bufio_t *io, const kcom_iid_t *iid, size_t ops)
{
	kcom_error_t bad = KCOM_OK;
	uintptr_t acc = 0;
	void *p = NULL;
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		kcom_error_t err = kcom_bufio_query(io, iid, &p);
		bad = err ? err : bad;
		acc ^= (uintptr_t)p;
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	bench_check(bad, "kcom_bufio_query");
	for (size_t i = 0; i < ops; i++)
		kcom_iunknown_release(p);
	return t;
}

/*
 * One atomic increment and one decrement with no call around them, as the reference counts do
 * them: the floor under any query that adds a reference and under any addref/release pair.
 */
static double call_atomic_pair(size_t ops)
{
	kcom_refcount_t ref;
	uintptr_t acc = 0;
	kcom_refcount_init(&ref, 1);
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		acc += kcom_refcount_inc(&ref);
		BENCH_BARRIER();
		acc += kcom_refcount_dec(&ref);
		BENCH_BARRIER();
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

static double call_addref_release(kcom_bufio_t *io, size_t ops)
{
	uintptr_t acc = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		acc += kcom_bufio_addref(io);
		acc += kcom_bufio_release(io);
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

/* kcom's call figures, kept for the GLib comparison. */
struct bench_calls {
	double query_release;     /* query absio + release */
	double query_only;        /* query absio, release not counted */
	double addref_release;
	double atomic_pair;       /* the two atomic operations alone */
};

/* Repeats a measurement `cfg->reps` times after one warm-up; returns best ns/op, median too. */
#define BENCH_REPEAT(cfg, tm, expr)                            \
	do {                                                   \
		(tm).n = (cfg)->reps;                          \
		(void)(expr);                                  \
		for (int rep_ = 0; rep_ < (cfg)->reps; rep_++) \
			(tm).t[rep_] = (expr);                 \
	} while (0)

static void bench_print_call(const char *label, const char *name, const struct bench_times *tm, size_t ops,
                             double *out_best)
{
	double med, best = bench_nsop(tm, ops, &med);
	printf("   %-44s %8.2f (%7.2f)\n", label, best, med);
	bench_record(name, best, "ns/op");
	*out_best = best;
}

static void bench_calls(const struct bench_config *cfg, kcom_bufio_t *io, struct bench_calls *out)
{
	struct bench_times tm;
	double unused;
	size_t ops = cfg->call_ops;

	printf("\n3. kcom calls on a membuf, %zu per repetition, ns/op, best (median)\n", ops);
	BENCH_REPEAT(cfg, tm, call_query_release(io, &kcom_absio_iid, ops));
	bench_print_call("query absio + release", "query_absio", &tm, ops, &out->query_release);
	BENCH_REPEAT(cfg, tm, call_query_only(io, &kcom_absio_iid, ops));
	bench_print_call("query absio, no release", "query_absio_norelease", &tm, ops, &out->query_only);
	BENCH_REPEAT(cfg, tm, call_query_release(io, &kcom_bufvec_iid, ops));
	bench_print_call("query bufvec (2nd interface) + release", "query_bufvec", &tm, ops, &unused);
	BENCH_REPEAT(cfg, tm, call_query_only(io, &kcom_bufvec_iid, ops));
	bench_print_call("query bufvec (2nd interface), no release", "query_bufvec_norelease", &tm, ops, &unused);
	BENCH_REPEAT(cfg, tm, call_addref_release(io, ops));
	bench_print_call("addref + release pair", "addref_release", &tm, ops, &out->addref_release);
	BENCH_REPEAT(cfg, tm, call_atomic_pair(ops));
	bench_print_call("atomic inc + dec, inline (the floor)", "atomic_pair", &tm, ops, &out->atomic_pair);
}

/* ---- 4. GLib ---- */

#ifdef HAVE_GLIB

/* A GInterface with one method, and a GObject that implements it: the smallest fair pair. */
typedef struct _BenchIfaceInterface {
	GTypeInterface parent_iface;
	int (*get_value)(GObject *self);
} BenchIfaceInterface;

typedef struct _BenchObj {
	GObject parent_instance;
	int value;
} BenchObj;

typedef struct _BenchObjClass {
	GObjectClass parent_class;
} BenchObjClass;

/* Declared static first so the macros' definitions get internal linkage, as everything here. */
static GType bench_iface_get_type(void);
static GType bench_obj_get_type(void);

G_DEFINE_INTERFACE(BenchIface, bench_iface, G_TYPE_OBJECT)

static void bench_iface_default_init(BenchIfaceInterface *iface)
{
	(void)iface;
}

static int bench_obj_get_value(GObject *self)
{
	return ((BenchObj *)self)->value;
}

static void bench_obj_iface_init(BenchIfaceInterface *iface)
{
	iface->get_value = bench_obj_get_value;
}

G_DEFINE_TYPE_WITH_CODE(BenchObj, bench_obj, G_TYPE_OBJECT,
                        G_IMPLEMENT_INTERFACE(bench_iface_get_type(), bench_obj_iface_init))

static void bench_obj_class_init(BenchObjClass *klass)
{
	(void)klass;
}

static void bench_obj_init(BenchObj *self)
{
	self->value = 42;
}

/*
 * The interface type is looked up once, outside the loop, so only the per-instance lookup is
 * timed: GLib at its cheapest, which makes the comparison harder for kcom, not easier.
 */
static double glib_lookup(GObject *obj, GType iface_type, size_t ops)
{
	uintptr_t acc = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		BenchIfaceInterface *iface = G_TYPE_INSTANCE_GET_INTERFACE(obj, iface_type, BenchIfaceInterface);
		acc ^= (uintptr_t)iface;
		BENCH_BARRIER();
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

static double glib_ref_unref(GObject *obj, size_t ops)
{
	uintptr_t acc = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		acc ^= (uintptr_t)g_object_ref(obj);
		g_object_unref(obj);
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

static void bench_glib(const struct bench_config *cfg, const struct bench_calls *kc)
{
	struct bench_times tm;
	size_t ops = cfg->call_ops;
	double lookup, refpair;

	GType iface_type = bench_iface_get_type();
	GObject *obj = g_object_new(bench_obj_get_type(), NULL);
	BenchIfaceInterface *iface = G_TYPE_INSTANCE_GET_INTERFACE(obj, iface_type, BenchIfaceInterface);
	if (iface == NULL || iface->get_value(obj) != 42) {
		fprintf(stderr, "kcom-bench: the GLib test object does not implement its interface\n");
		exit(1);
	}

	printf("\n4. GLib %d.%d.%d beside kcom, %zu per repetition, ns/op, best (median)\n", glib_major_version,
	       glib_minor_version, glib_micro_version, ops);
	BENCH_REPEAT(cfg, tm, glib_lookup(obj, iface_type, ops));
	bench_print_call("G_TYPE_INSTANCE_GET_INTERFACE", "glib_iface_lookup", &tm, ops, &lookup);
	BENCH_REPEAT(cfg, tm, glib_ref_unref(obj, ops));
	bench_print_call("g_object_ref + g_object_unref pair", "glib_ref_unref", &tm, ops, &refpair);
	g_object_unref(obj);

	printf("   %-44s %8.2f\n", "kcom query absio + release", kc->query_release);
	printf("   %-44s %8.2f\n", "kcom query absio, no release", kc->query_only);
	printf("   %-44s %8.2f\n", "kcom addref + release pair", kc->addref_release);
	printf("   ratio kcom query+release / GLib lookup:     %8.3f   target <= 0.5\n",
	       kc->query_release / lookup);
	printf("   (the target uses query+release: a query adds a reference by COM's rules, a GLib lookup\n"
	       "    does not, so only with the release do both callers end holding what they began with)\n");
	printf("   ratio kcom query alone / GLib lookup:       %8.3f   (for information)\n",
	       kc->query_only / lookup);
	printf("   ratio kcom addref+release / GLib ref+unref: %8.3f\n", kc->addref_release / refpair);
	printf("   (a query that adds a reference pays one atomic increment, about %.2f ns here:\n"
	       "    half the inc + dec floor of section 3)\n", kc->atomic_pair / 2);
	bench_record("query_vs_glib_ratio", kc->query_release / lookup, "x");
	bench_record("query_norelease_vs_glib_ratio", kc->query_only / lookup, "x");
	bench_record("refpair_vs_glib_ratio", kc->addref_release / refpair, "x");
}

#endif /* HAVE_GLIB */

/* ---- main ---- */

static void bench_usage(FILE *f)
{
	fprintf(f, "usage: kcom-bench [--quick]\n"
	           "  --quick   small sizes and counts: proves the program runs, figures mean little\n");
}

int main(int argc, char **argv)
{
	const struct bench_config *cfg = &bench_full;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			cfg = &bench_quick;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			bench_usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "kcom-bench: unknown argument '%s'\n", argv[i]);
			bench_usage(stderr);
			return 2;
		}
	}
	if (cfg->reps > BENCH_MAX_REPS || cfg->seq_reps > BENCH_MAX_REPS) {
		fprintf(stderr, "kcom-bench: more than %d repetitions configured\n", BENCH_MAX_REPS);
		return 1;
	}
	double start = bench_now();

	/*
	 * The membuf is created at full size, so no write below grows it; create zero-fills it,
	 * which also faults every page in before any timing.  The plain buffer is filled for the
	 * same reason.
	 */
	kcom_bufio_t *io;
	bench_check(kcom_membuf_create(cfg->size, &io), "kcom_membuf_create");
	unsigned char *plain = bench_xmalloc(cfg->size);
	for (size_t i = 0; i < cfg->size; i++)
		plain[i] = (unsigned char)(i * 31 + 7);

	printf("kcom-bench %s (%s mode): %d repetitions of each measurement (sequential: %d) after one\n"
	       "warm-up; best = fastest repetition, the headline figure; median in parentheses\n\n",
	       PACKAGE_VERSION, cfg->mode, cfg->reps, cfg->seq_reps);

	bench_sequential(cfg, io, plain);
	bench_random(cfg, io);
	struct bench_calls kc;
	bench_calls(cfg, io, &kc);
#ifdef HAVE_GLIB
	bench_glib(cfg, &kc);
#else
	printf("\n4. GLib comparison skipped: kcom was configured without GObject\n");
#endif

	/* Every reference the loops took is back: the one from create must be the last. */
	uint32_t left = kcom_bufio_release(io);
	free(plain);
	if (left != 0) {
		fprintf(stderr, "kcom-bench: membuf still has %" PRIu32 " references at the end\n", left);
		return 1;
	}

	printf("\ntotal run time %.1f s\n\n", bench_now() - start);
	for (size_t i = 0; i < bench_nfigures; i++)
		printf("bench: %s %.3f %s\n", bench_figures[i].name, bench_figures[i].value, bench_figures[i].unit);
	return 0;
}
