/*
 * kcom-bench: how much kcom's indirection costs, measured against the code it stands in for.
 *
 * What it measures, each beside a baseline that does the same work on the same memory:
 *   1. sequential membuf write and read in 4 KiB calls (kcom_bufio_write/read) against the C
 *      library's memcpy of the same 4 KiB chunks, in MB/s (MB = 10^6 bytes).  The baseline's
 *      size is read at run time, so the compiler cannot inline the copy (a constant 4 KiB
 *      memcpy becomes `rep movsq`): both sides call the same library memcpy.
 *   2. 64-byte reads at random 64-aligned offsets of the membuf through kcom_bufio_read, against
 *      an inline memcpy of the same bytes (same pregenerated offsets, same destination), in ns,
 *      over the whole buffer and again inside a window that stays in cache.
 *   3. the cost of query (with and without the release COM makes the caller owe), of an
 *      addref/release pair, and of the bare atomic increment and decrement under both.
 *   4. with GLib, equal work on both sides: query + release against an interface lookup plus
 *      g_object_ref/g_object_unref, and addref + release against g_object_ref/g_object_unref.
 *   5. dmabuf: creating one (allocate, pin, build the physical table) against posix_memalign +
 *      mlock of the same size, per MiB, at 1 MiB and at a quarter of the big size; wire of a
 *      1 MiB contiguous range and wire_vec of the whole big buffer (wire + unwire each) against
 *      translating the same pages with one pread of /proc/self/pagemap a page.  Wiring needs
 *      physical addresses (root); without them that part says so and is skipped.
 *
 * How: the host's speed swings by tens of percent from one second to the next, so no figure is a
 * best-of and no ratio divides figures taken at different times.  Each comparison runs its two
 * sides interleaved in every repetition, kcom baseline baseline kcom (the mirror order in every
 * other repetition, so neither side always inherits the other's cache state; one untimed
 * warm-up pair first), each side's figure for the repetition is the mean of its two runs, and
 * each repetition gives its own ratio.  Every figure is printed as the median of its
 * per-repetition values with the smallest and largest beside it, `median (min..max)`; a ratio
 * is the median of the per-repetition ratios, not the ratio of two medians.  The last lines
 * repeat each median as `bench: name value unit` for scripts.  `--quick` shrinks sizes and
 * counts so `make check` can prove the program runs; its figures mean little.  Any kcom call
 * that fails stops the program with a message and exit status 1.
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
#include <impls/dmabuf.h>
#include <impls/membuf.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef HAVE_GLIB
#include <glib-object.h>
#endif

#define BENCH_CHUNK 4096u        /* bytes per sequential call */
#define BENCH_SMALL 64u          /* bytes per random read */
#define BENCH_HOT_WINDOW 32768u  /* the cache-resident variant reads inside this many bytes */
#define BENCH_HOT_OFFS 4096u     /* offsets pregenerated for it (a power of two) */
#define BENCH_MAX_REPS 32        /* no config may ask more */

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
	.mode = "full", .size = 64u << 20, .reps = 11, .seq_reps = 21, .rand_ops = 2000000, .call_ops = 10000000,
};

static const struct bench_config bench_quick = {
	.mode = "quick", .size = 4u << 20, .reps = 3, .seq_reps = 3, .rand_ops = 100000, .call_ops = 200000,
};

/* One value per repetition: seconds as measured, or a figure derived from them. */
struct bench_series {
	double v[BENCH_MAX_REPS];
	int n;
};

/* What is printed of a series. */
struct bench_summary {
	double med, min, max;
};

/* One figure for the final machine-readable lines: its median. */
struct bench_figure {
	const char *name;
	double value;
	const char *unit;
};

static struct bench_figure bench_figures[64];
static size_t bench_nfigures;

/* Results go here so the compiler cannot drop the loops that compute them. */
static volatile uintptr_t bench_sink;

/*
 * The sequential baseline's chunk size, read at run time: with a size it cannot see, the
 * compiler must call the C library's memcpy, the routine membuf's read and write call, instead
 * of inlining its own copy.
 */
static volatile size_t bench_chunk_rt = BENCH_CHUNK;

/* The destination of every random read, kcom's and memcpy's alike (64-aligned: see section 2). */
static _Alignas(BENCH_SMALL) unsigned char bench_small_dst[BENCH_SMALL];

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

static struct bench_summary bench_summarize(const struct bench_series *s)
{
	double sorted[BENCH_MAX_REPS];
	int n = s->n;
	memcpy(sorted, s->v, sizeof(double) * (size_t)n);
	qsort(sorted, (size_t)n, sizeof(double), bench_cmp_double);
	return (struct bench_summary){
		.med = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2,
		.min = sorted[0],
		.max = sorted[n - 1],
	};
}

/* Per repetition, `num / den * scale`: a rate from seconds, or the ratio of two sides. */
static struct bench_series bench_div(const struct bench_series *num, const struct bench_series *den, double scale)
{
	struct bench_series out = { .n = den->n };
	for (int i = 0; i < den->n; i++)
		out.v[i] = (num != NULL ? num->v[i] : 1.0) / den->v[i] * scale;
	return out;
}

/* Per repetition, MB/s of `bytes` moved in the series' seconds. */
static struct bench_series bench_mbps(const struct bench_series *secs, size_t bytes)
{
	return bench_div(NULL, secs, (double)bytes / 1e6);
}

/* Per repetition, ns per operation over `ops`. */
static struct bench_series bench_nsop(const struct bench_series *secs, size_t ops)
{
	struct bench_series out = { .n = secs->n };
	for (int i = 0; i < secs->n; i++)
		out.v[i] = secs->v[i] * 1e9 / (double)ops;
	return out;
}

/* Keeps the median for the final lines and returns the summary for the table. */
static struct bench_summary bench_record(const char *name, const struct bench_series *s, const char *unit)
{
	struct bench_summary sum = bench_summarize(s);
	if (bench_nfigures == sizeof(bench_figures) / sizeof(bench_figures[0])) {
		fprintf(stderr, "kcom-bench: too many figures\n");
		exit(1);
	}
	bench_figures[bench_nfigures++] = (struct bench_figure){ name, sum.med, unit };
	return sum;
}

/* Prints `median (min..max)` in a fixed-width cell. */
static void bench_cell(const struct bench_summary *s, int prec)
{
	char buf[64];
	snprintf(buf, sizeof(buf), "%.*f (%.*f..%.*f)", prec, s->med, prec, s->min, prec, s->max);
	printf(" %26s", buf);
}

/*
 * One side of a comparison: runs its loop once over `ctx` and returns the seconds it took.
 * Setup a side needs (a mapping) is done outside its clock.
 */
typedef double (*bench_side_fn)(const void *ctx);

/*
 * Runs `a` and `b` back to back `reps` times after one untimed warm-up pair, storing in `ta` and
 * `tb` the seconds of each repetition.  A repetition runs the sides in the order a b b a (b a a b
 * in every other one, so neither side always runs on the cache, TLB and clock state the other
 * left) and keeps each side's mean of its two runs: a drift of the host's speed that is steady
 * across the repetition hits both sides alike, and the per-repetition ratio cancels it.
 */
static void bench_pair(int reps, bench_side_fn a, bench_side_fn b, const void *ctx, struct bench_series *ta,
                       struct bench_series *tb)
{
	(void)a(ctx);
	(void)b(ctx);
	for (int rep = 0; rep < reps; rep++) {
		double x, y;
		if (rep & 1) {
			y = b(ctx);
			x = a(ctx);
			x += a(ctx);
			y += b(ctx);
		} else {
			x = a(ctx);
			y = b(ctx);
			y += b(ctx);
			x += a(ctx);
		}
		ta->v[rep] = x / 2;
		tb->v[rep] = y / 2;
	}
	ta->n = tb->n = reps;
}

/* Runs `a` alone `reps` times after one untimed warm-up: for figures with no baseline. */
static void bench_single(int reps, bench_side_fn a, const void *ctx, struct bench_series *ta)
{
	(void)a(ctx);
	for (int rep = 0; rep < reps; rep++)
		ta->v[rep] = a(ctx);
	ta->n = reps;
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

/* Everything a side may need; each side reads its own fields. */
struct bench_ctx {
	kcom_bufio_t *io;
	unsigned char *plain;    /* sequential: the buffer outside kcom */
	size_t size;             /* bytes of the membuf and of `plain` */
	const kcom_off_t *offs;  /* random: pregenerated offsets, a power of two of them */
	size_t mask;             /* random: number of offsets - 1 */
	size_t ops;              /* iterations per repetition (random reads, calls) */
	const kcom_iid_t *iid;   /* query: the interface asked */
#ifdef HAVE_GLIB
	GObject *obj;
	GType iface_type;
#endif
};

/* ---- 1. sequential ---- */

/* The whole buffer in 4 KiB kcom writes, from `plain`.  Every call is checked after the loop. */
static double seq_kcom_write(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	kcom_error_t bad = KCOM_OK;
	size_t short_or = 0, actual;
	double t0 = bench_now();
	for (size_t off = 0; off < c->size; off += BENCH_CHUNK) {
		kcom_error_t err = kcom_bufio_write(c->io, c->plain + off, (kcom_off_t)off, BENCH_CHUNK, &actual);
		bad = err ? err : bad;
		short_or |= actual ^ BENCH_CHUNK;
	}
	double t = bench_now() - t0;
	bench_check_loop(bad, short_or, "kcom_bufio_write");
	return t;
}

static double seq_kcom_read(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	kcom_error_t bad = KCOM_OK;
	size_t short_or = 0, actual;
	double t0 = bench_now();
	for (size_t off = 0; off < c->size; off += BENCH_CHUNK) {
		kcom_error_t err = kcom_bufio_read(c->io, c->plain + off, (kcom_off_t)off, BENCH_CHUNK, &actual);
		bad = err ? err : bad;
		short_or |= actual ^ BENCH_CHUNK;
	}
	double t = bench_now() - t0;
	bench_check_loop(bad, short_or, "kcom_bufio_read");
	return t;
}

/*
 * The baseline: the same 4 KiB copies with the C library's memcpy (the size comes from
 * bench_chunk_rt, so the call is not inlined; `objdump -d` shows `call memcpy`).  The barrier
 * keeps the compiler from fusing the loop into one large copy, which would measure something
 * kcom's callers cannot do.
 */
static double seq_memcpy(unsigned char *dst, const unsigned char *src, size_t size)
{
	size_t chunk = bench_chunk_rt;
	double t0 = bench_now();
	for (size_t off = 0; off < size; off += chunk) {
		memcpy(dst + off, src + off, chunk);
		BENCH_BARRIER();
	}
	return bench_now() - t0;
}

/*
 * memcpy works on the membuf's own bytes, through a mapping taken and dropped outside the clock,
 * so both sides touch exactly the same memory and only the call path differs; kcom is measured
 * on an unmapped membuf, its normal state.
 */
static double seq_memcpy_write(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	void *addr;
	bench_check(kcom_bufio_map(c->io, &addr, 0, c->size), "kcom_bufio_map");
	double t = seq_memcpy(addr, c->plain, c->size);
	bench_check(kcom_bufio_unmap(c->io, addr, 0, c->size), "kcom_bufio_unmap");
	return t;
}

static double seq_memcpy_read(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	void *addr;
	bench_check(kcom_bufio_map(c->io, &addr, 0, c->size), "kcom_bufio_map");
	double t = seq_memcpy(c->plain, addr, c->size);
	bench_check(kcom_bufio_unmap(c->io, addr, 0, c->size), "kcom_bufio_unmap");
	return t;
}

/* Prints and records one sequential comparison; the ratio is kcom's MB/s over memcpy's. */
static void bench_seq_report(const char *label, const char *const names[3], const struct bench_series *tk,
                             const struct bench_series *tm, size_t size)
{
	struct bench_series k = bench_mbps(tk, size), m = bench_mbps(tm, size), r = bench_div(tm, tk, 1.0);
	struct bench_summary ks = bench_record(names[0], &k, "MB/s");
	struct bench_summary ms = bench_record(names[1], &m, "MB/s");
	struct bench_summary rs = bench_record(names[2], &r, "x");
	printf("   %-26s", label);
	bench_cell(&ks, 0);
	bench_cell(&ms, 0);
	bench_cell(&rs, 3);
	printf("\n");
}

static void bench_sequential(const struct bench_config *cfg, kcom_bufio_t *io, unsigned char *plain)
{
	static const char *const wn[3] = { "seq_write_kcom", "seq_write_memcpy", "seq_write_ratio" };
	static const char *const rn[3] = { "seq_read_kcom", "seq_read_memcpy", "seq_read_ratio" };
	struct bench_ctx c = { .io = io, .plain = plain, .size = cfg->size };
	struct bench_series kw, mw, kr, mr;

	bench_pair(cfg->seq_reps, seq_kcom_write, seq_memcpy_write, &c, &kw, &mw);
	bench_pair(cfg->seq_reps, seq_kcom_read, seq_memcpy_read, &c, &kr, &mr);

	printf("1. sequential, %zu MiB in %u-byte calls, %d repetitions, MB/s (MB = 10^6 bytes)\n",
	       cfg->size >> 20, BENCH_CHUNK, cfg->seq_reps);
	printf("   %-26s %26s %26s %26s\n", "", "kcom", "libc memcpy", "kcom/memcpy speed");
	bench_seq_report("membuf write", wn, &kw, &mw, cfg->size);
	bench_seq_report("membuf read", rn, &kr, &mr, cfg->size);
	printf("   speed ratio = per-repetition kcom MB/s / memcpy MB/s; target >= 0.95\n");
}

/* ---- 2. random 64-byte reads ---- */

/*
 * Both loops copy into bench_small_dst, a 64-byte-aligned buffer, as a caller reading records
 * would.  Without the alignment the result depended on where the stack happened to fall: a
 * 64-byte copy into a buffer that straddles a page makes each store split, which cost the libc
 * memcpy under kcom up to 5x in the cache-hot case while the inlined 16-byte stores of the
 * baseline never split.
 */
static double rand_kcom(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	unsigned char *dst = bench_small_dst;
	kcom_error_t bad = KCOM_OK;
	size_t short_or = 0, actual;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		kcom_error_t err = kcom_bufio_read(c->io, dst, c->offs[i & c->mask], BENCH_SMALL, &actual);
		bad = err ? err : bad;
		short_or |= actual ^ BENCH_SMALL;
		BENCH_USE(dst);
	}
	double t = bench_now() - t0;
	bench_check_loop(bad, short_or, "kcom_bufio_read (random)");
	return t;
}

/* The baseline: an inline 64-byte copy of the same bytes, through a mapping taken off the clock. */
static double rand_memcpy(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	unsigned char *dst = bench_small_dst;
	void *addr;
	bench_check(kcom_bufio_map(c->io, &addr, 0, c->size), "kcom_bufio_map");
	const unsigned char *base = addr;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		memcpy(dst, base + c->offs[i & c->mask], BENCH_SMALL);
		BENCH_USE(dst);
	}
	double t = bench_now() - t0;
	bench_check(kcom_bufio_unmap(c->io, addr, 0, c->size), "kcom_bufio_unmap");
	return t;
}

/*
 * One random-read comparison over `noffs` pregenerated offsets (a power of two; the loop wraps
 * with a mask, the same instruction on both sides).  names[] are the kcom, memcpy and ratio
 * figure names; the ratio is kcom's ns over memcpy's, per repetition.
 */
static void bench_random_one(const struct bench_config *cfg, kcom_bufio_t *io, const kcom_off_t *offs,
                             size_t noffs, const char *label, const char *const names[3])
{
	struct bench_ctx c = { .io = io, .size = cfg->size, .offs = offs, .mask = noffs - 1, .ops = cfg->rand_ops };
	struct bench_series tk, tm;

	bench_pair(cfg->reps, rand_kcom, rand_memcpy, &c, &tk, &tm);
	struct bench_series k = bench_nsop(&tk, cfg->rand_ops), m = bench_nsop(&tm, cfg->rand_ops);
	struct bench_series r = bench_div(&tk, &tm, 1.0);
	struct bench_summary ks = bench_record(names[0], &k, "ns/op");
	struct bench_summary ms = bench_record(names[1], &m, "ns/op");
	struct bench_summary rs = bench_record(names[2], &r, "x");
	printf("   %-26s", label);
	bench_cell(&ks, 2);
	bench_cell(&ms, 2);
	bench_cell(&rs, 3);
	printf("\n");
}

/*
 * Random 64-byte reads over the whole buffer (mostly cache and TLB misses: what a server reading
 * small records sees), then inside a 32 KiB window that stays in cache, which leaves little but
 * the cost of the call itself.
 */
static void bench_random(const struct bench_config *cfg, kcom_bufio_t *io)
{
	static const char *const cold[3] = { "rand64_kcom", "rand64_memcpy", "rand64_cost_ratio" };
	static const char *const warm[3] = { "rand64_hot_kcom", "rand64_hot_memcpy", "rand64_hot_cost_ratio" };

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

	printf("\n2. random %u-byte reads at 64-aligned offsets, %zu per repetition, %d repetitions, ns/op\n",
	       BENCH_SMALL, cfg->rand_ops, cfg->reps);
	printf("   %-26s %26s %26s %26s\n", "", "kcom_bufio_read", "inline memcpy", "kcom/memcpy time");
	char label[64];
	snprintf(label, sizeof(label), "over %zu MiB", cfg->size >> 20);
	bench_random_one(cfg, io, offs, noffs, label, cold);
	bench_random_one(cfg, io, hot, BENCH_HOT_OFFS, "inside 32 KiB (cache-hot)", warm);
	printf("   time ratio = per-repetition kcom ns / memcpy ns: 1.00 is as fast as memcpy, higher is\n"
	       "   slower; target <= 1.4 over the whole buffer\n");
	free(hot);
	free(offs);
}

/* ---- 3. query, addref, release ---- */

/* Query and release in one iteration: the caller ends as it began, holding nothing new. */
static double call_query_release(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	kcom_error_t bad = KCOM_OK;
	uintptr_t acc = 0;
	void *p;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		kcom_error_t err = kcom_bufio_query(c->io, c->iid, &p);
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
 * Query alone, for information: the release COM makes the caller owe is left out.  The `ops`
 * references it takes are released after the clock stops, through the last pointer returned
 * (every one of them is the same interface of the same object).
 */
static double call_query_only(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	kcom_error_t bad = KCOM_OK;
	uintptr_t acc = 0;
	void *p = NULL;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		kcom_error_t err = kcom_bufio_query(c->io, c->iid, &p);
		bad = err ? err : bad;
		acc ^= (uintptr_t)p;
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	bench_check(bad, "kcom_bufio_query");
	for (size_t i = 0; i < c->ops; i++)
		kcom_iunknown_release(p);
	return t;
}

/*
 * One atomic increment and one decrement with no call around them, as the reference counts do
 * them: the floor under any query that adds a reference and under any addref/release pair.
 */
static double call_atomic_pair(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	kcom_refcount_t ref;
	uintptr_t acc = 0;
	kcom_refcount_init(&ref, 1);
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		acc += kcom_refcount_inc(&ref);
		BENCH_BARRIER();
		acc += kcom_refcount_dec(&ref);
		BENCH_BARRIER();
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

static double call_addref_release(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	uintptr_t acc = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		acc += kcom_bufio_addref(c->io);
		acc += kcom_bufio_release(c->io);
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

/* Times `fn` alone over `iid` and prints and records it in ns/op. */
static void bench_call_one(const struct bench_config *cfg, kcom_bufio_t *io, bench_side_fn fn,
                           const kcom_iid_t *iid, const char *label, const char *name)
{
	struct bench_ctx c = { .io = io, .ops = cfg->call_ops, .iid = iid };
	struct bench_series t;
	bench_single(cfg->reps, fn, &c, &t);
	struct bench_series ns = bench_nsop(&t, cfg->call_ops);
	struct bench_summary s = bench_record(name, &ns, "ns/op");
	printf("   %-44s", label);
	bench_cell(&s, 2);
	printf("\n");
}

static void bench_calls(const struct bench_config *cfg, kcom_bufio_t *io)
{
	printf("\n3. kcom calls on a membuf, %zu per repetition, %d repetitions, ns/op\n", cfg->call_ops, cfg->reps);
	bench_call_one(cfg, io, call_query_release, &kcom_absio_iid, "query absio + release", "query_absio");
	bench_call_one(cfg, io, call_query_only, &kcom_absio_iid, "query absio, no release", "query_absio_norelease");
	bench_call_one(cfg, io, call_query_release, &kcom_bufvec_iid, "query bufvec (2nd interface) + release",
	               "query_bufvec");
	bench_call_one(cfg, io, call_query_only, &kcom_bufvec_iid, "query bufvec (2nd interface), no release",
	               "query_bufvec_norelease");
	bench_call_one(cfg, io, call_addref_release, NULL, "addref + release pair", "addref_release");
	bench_call_one(cfg, io, call_atomic_pair, NULL, "atomic inc + dec, inline (the floor)", "atomic_pair");
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
 * The interface type is looked up once, outside the loops, so only the per-instance lookup is
 * timed: GLib at its cheapest, which makes the comparison harder for kcom, not easier.
 */
static double glib_lookup(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	uintptr_t acc = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		BenchIfaceInterface *iface = G_TYPE_INSTANCE_GET_INTERFACE(c->obj, c->iface_type, BenchIfaceInterface);
		acc ^= (uintptr_t)iface;
		BENCH_BARRIER();
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

/*
 * The work of a kcom query + release done the GLib way: find the interface, take a reference
 * the caller can keep, drop it.  Both callers end holding what they began with, and both paid a
 * lookup, an atomic increment and an atomic decrement.
 */
static double glib_lookup_ref_unref(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	uintptr_t acc = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		BenchIfaceInterface *iface = G_TYPE_INSTANCE_GET_INTERFACE(c->obj, c->iface_type, BenchIfaceInterface);
		acc ^= (uintptr_t)iface;
		acc ^= (uintptr_t)g_object_ref(c->obj);
		g_object_unref(c->obj);
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

static double glib_ref_unref(const void *vctx)
{
	const struct bench_ctx *c = vctx;
	uintptr_t acc = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		acc ^= (uintptr_t)g_object_ref(c->obj);
		g_object_unref(c->obj);
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	return t;
}

/* One interleaved kcom-against-GLib comparison; the ratio is kcom's ns over GLib's, per repetition. */
static void bench_glib_pair(const struct bench_config *cfg, const struct bench_ctx *c, bench_side_fn kfn,
                            bench_side_fn gfn, const char *label, const char *const names[3], const char *target)
{
	struct bench_series tk, tg;
	bench_pair(cfg->reps, kfn, gfn, c, &tk, &tg);
	struct bench_series k = bench_nsop(&tk, cfg->call_ops), g = bench_nsop(&tg, cfg->call_ops);
	struct bench_series r = bench_div(&tk, &tg, 1.0);
	struct bench_summary ks = bench_record(names[0], &k, "ns/op");
	struct bench_summary gs = bench_record(names[1], &g, "ns/op");
	struct bench_summary rs = bench_record(names[2], &r, "x");
	printf("   %s\n   %-26s", label, "");
	bench_cell(&ks, 2);
	bench_cell(&gs, 2);
	bench_cell(&rs, 3);
	printf("   %s\n", target);
}

static void bench_glib(const struct bench_config *cfg, kcom_bufio_t *io)
{
	static const char *const qn[3] = { "query_absio_paired", "glib_lookup_ref_unref", "query_vs_glib_lookupref_ratio" };
	static const char *const rn[3] = { "addref_release_paired", "glib_ref_unref", "refpair_vs_glib_ratio" };
	struct bench_ctx c = { .io = io, .ops = cfg->call_ops, .iid = &kcom_absio_iid };

	c.iface_type = bench_iface_get_type();
	c.obj = g_object_new(bench_obj_get_type(), NULL);
	BenchIfaceInterface *iface = G_TYPE_INSTANCE_GET_INTERFACE(c.obj, c.iface_type, BenchIfaceInterface);
	if (iface == NULL || iface->get_value(c.obj) != 42) {
		fprintf(stderr, "kcom-bench: the GLib test object does not implement its interface\n");
		exit(1);
	}

	printf("\n4. GLib %d.%d.%d beside kcom, equal work, %zu per repetition, %d repetitions, ns/op\n",
	       glib_major_version, glib_minor_version, glib_micro_version, cfg->call_ops, cfg->reps);
	printf("   %-26s %26s %26s %26s\n", "", "kcom", "GLib", "kcom/GLib time");
	bench_glib_pair(cfg, &c, call_query_release, glib_lookup_ref_unref,
	                "kcom query absio + release | G_TYPE_INSTANCE_GET_INTERFACE + g_object_ref + g_object_unref",
	                qn, "target <= 0.8");
	bench_glib_pair(cfg, &c, call_addref_release, glib_ref_unref,
	                "kcom addref + release      | g_object_ref + g_object_unref", rn, "target <= 0.95");

	struct bench_series tl;
	bench_single(cfg->reps, glib_lookup, &c, &tl);
	struct bench_series l = bench_nsop(&tl, cfg->call_ops);
	struct bench_summary ls = bench_record("glib_iface_lookup", &l, "ns/op");
	printf("   %-26s %26s", "GLib lookup alone (info)", "");
	bench_cell(&ls, 2);
	printf("\n   (kcom's query adds a reference by COM's rules and a GLib lookup does not, so the GLib\n"
	       "    side takes and drops one too: both callers end holding what they began with)\n");
	g_object_unref(c.obj);
}

#endif /* HAVE_GLIB */

#define BENCH_MAX(a, b) ((a) > (b) ? (a) : (b))

/* ---- 5. DMA: dmabuf's wiring against per-page pagemap translation; creation against mlock ---- */

/* Everything a DMA side needs. */
struct bench_dma_ctx {
	kcom_bufio_t *io;          /* the dmabuf wired */
	kcom_bufvec_t *vec;        /* its bufvec */
	const unsigned char *mem;  /* its memory, for the baseline's translation */
	size_t len;                /* bytes wired / translated */
	size_t ops;                /* wirings per repetition */
	int use_vec;               /* wire_vec instead of wire */
	struct kcom_physseg *segs; /* wire_vec's list */
	size_t max;
	int fd;                    /* /proc/self/pagemap, open for the baseline */
	size_t sys_page;
	size_t create_size;        /* creation: bytes per object */
	size_t create_ops;         /* creations per repetition */
};

/* `ops` wirings of the range and their unwirings: each a lookup in the dmabuf's table. */
static double dma_kcom_wire(const void *vctx)
{
	const struct bench_dma_ctx *c = vctx;
	kcom_error_t bad = KCOM_OK;
	uintptr_t acc = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < c->ops; i++) {
		kcom_error_t err;
		if (c->use_vec) {
			size_t count = 0;
			err = kcom_bufvec_wire_vec(c->vec, 0, c->len, c->segs, c->max, &count);
			if (KCOM_SUCCEEDED(err)) {
				acc ^= (uintptr_t)c->segs[count - 1].addr;
				err = kcom_bufvec_unwire_vec(c->vec, 0, c->len, c->segs, count);
			}
		} else {
			kcom_phys_t phys = 0;
			err = kcom_bufio_wire(c->io, &phys, 0, c->len);
			acc ^= (uintptr_t)phys;
			if (KCOM_SUCCEEDED(err))
				err = kcom_bufio_unwire(c->io, phys, 0, c->len);
		}
		if (KCOM_FAILED(err))
			bad = err;
	}
	double t = bench_now() - t0;
	bench_sink = acc;
	bench_check(bad, c->use_vec ? "kcom_bufvec_wire_vec" : "kcom_bufio_wire");
	return t;
}

/* The same pages translated the way a process without a table would: one pagemap pread a page. */
static double dma_pagemap_per_page(const void *vctx)
{
	const struct bench_dma_ctx *c = vctx;
	uint64_t acc = 0;
	int bad = 0;
	double t0 = bench_now();
	for (size_t off = 0; off < c->len; off += c->sys_page) {
		uint64_t entry = 0, vpn = (uint64_t)(uintptr_t)(c->mem + off) / c->sys_page;
		if (pread(c->fd, &entry, sizeof(entry), (off_t)(vpn * sizeof(entry))) != (ssize_t)sizeof(entry))
			bad = 1;
		acc ^= entry;
	}
	double t = bench_now() - t0;
	bench_sink = (uintptr_t)acc;
	if (bad) {
		fprintf(stderr, "kcom-bench: reading /proc/self/pagemap failed\n");
		exit(1);
	}
	return t;
}

/* `create_ops` dmabufs of create_size bytes made and released: allocation, pin, table. */
static double dma_create(const void *vctx)
{
	const struct bench_dma_ctx *c = vctx;
	double t0 = bench_now();
	for (size_t i = 0; i < c->create_ops; i++) {
		kcom_bufio_t *io;
		bench_check(kcom_dmabuf_create(0, c->create_size, NULL, &io), "kcom_dmabuf_create");
		kcom_bufio_release(io);
	}
	return bench_now() - t0;
}

/* The same memory allocated, mlocked, munlocked and freed: the floor a pinned buffer costs. */
static double dma_mlock(const void *vctx)
{
	const struct bench_dma_ctx *c = vctx;
	double t0 = bench_now();
	for (size_t i = 0; i < c->create_ops; i++) {
		void *p = NULL;
		if (posix_memalign(&p, 4096, c->create_size) != 0 || mlock(p, c->create_size) != 0) {
			perror("kcom-bench: posix_memalign/mlock");
			exit(1);
		}
		BENCH_USE(p);
		munlock(p, c->create_size);
		free(p);
	}
	return bench_now() - t0;
}

/* One wiring comparison: kcom's ns per wiring of `len` bytes against the per-page translation. */
static void bench_dma_wire_pair(const struct bench_config *cfg, struct bench_dma_ctx *c, const char *label,
                                const char *const names[3])
{
	struct bench_series tk, tp;
	bench_pair(cfg->reps, dma_kcom_wire, dma_pagemap_per_page, c, &tk, &tp);
	struct bench_series k = bench_nsop(&tk, c->ops), p = bench_nsop(&tp, 1);
	struct bench_series r = bench_div(&p, &k, 1.0);
	struct bench_summary ks = bench_record(names[0], &k, "ns/op");
	struct bench_summary ps = bench_record(names[1], &p, "ns/op");
	struct bench_summary rs = bench_record(names[2], &r, "x");
	printf("   %-26s", label);
	bench_cell(&ks, 1);
	bench_cell(&ps, 0);
	bench_cell(&rs, 0);
	printf("   target >= 1000\n");
}

static void bench_dma(const struct bench_config *cfg)
{
	static const char *const wn[3] = { "dmabuf_wire_1m", "pagemap_per_page_1m", "wire_vs_pagemap_1m_speedup" };
	static const char *const vn[3] = { "dmabuf_wire_vec_big", "pagemap_per_page_big", "wire_vec_vs_pagemap_big_speedup" };
	static const char *const wvn[3] = { "dmabuf_wire_vec_1m", "pagemap_per_page_1m", "wire_vec_vs_pagemap_1m_speedup" };
	static const char *const cn[3] = { "dmabuf_create_1m_per_mib", "mlock_1m_per_mib", "create_vs_mlock_1m_ratio" };
	static const char *const cbn[3] = { "dmabuf_create_big_per_mib", "mlock_big_per_mib", "create_vs_mlock_big_ratio" };
	size_t big = cfg->size, one = (size_t)1 << 20;
	struct bench_dma_ctx c = { .sys_page = (size_t)sysconf(_SC_PAGESIZE), .fd = -1 };

	printf("\n5. dmabuf (DMA), %d repetitions: wiring against translating the same pages by one pread of\n"
	       "   /proc/self/pagemap a page (file kept open), ns per whole range; creation against\n"
	       "   posix_memalign + mlock + munlock + free of the same size, us per MiB\n", cfg->reps);
	printf("   %-26s %26s %26s %26s\n", "", "kcom", "baseline", "speedup / ratio");

	/*
	 * Creation first: it needs no physical addresses.  1 MiB takes small pages; the big size
	 * takes huge pages where the host has them (the baseline's mlock never does).
	 */
	char label[64];
	for (int k = 0; k < 2; k++) {
		c.create_size = k == 0 ? one : cfg->size / 4;
		c.create_ops = k == 0 ? 16 : 4;
		struct bench_series tc, tm;
		bench_pair(cfg->reps, dma_create, dma_mlock, &c, &tc, &tm);
		/* us per MiB: ns per 1/1000 MiB. */
		size_t mib = (c.create_size >> 20) * c.create_ops;
		struct bench_series kc = bench_nsop(&tc, mib * 1000), km = bench_nsop(&tm, mib * 1000);
		struct bench_series rc = bench_div(&tc, &tm, 1.0);
		struct bench_summary s1 = bench_record(k == 0 ? cn[0] : cbn[0], &kc, "us/MiB");
		struct bench_summary s2 = bench_record(k == 0 ? cn[1] : cbn[1], &km, "us/MiB");
		struct bench_summary s3 = bench_record(k == 0 ? cn[2] : cbn[2], &rc, "x");
		snprintf(label, sizeof(label), "create %zu MiB, us/MiB", c.create_size >> 20);
		printf("   %-26s", label);
		bench_cell(&s1, 1);
		bench_cell(&s2, 1);
		bench_cell(&s3, 3);
		printf("   target <= 1.5\n");
	}

	c.fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (c.fd < 0) {
		printf("   wiring: skipped, /proc/self/pagemap cannot be opened\n");
		return;
	}

	/* wire of 1 MiB: one physical segment, so a contiguous dmabuf (huge pages where the host has them). */
	struct kcom_dma_constraints contig = { .contiguous = 1 };
	kcom_error_t err = kcom_dmabuf_create(one, 0, &contig, &c.io);
	if (err == KCOM_E_NOTCONTIG) {
		printf("   wire 1 MiB: no contiguous 1 MiB here (no huge pages): measuring wire_vec of 1 MiB\n");
		bench_check(kcom_dmabuf_create(one, 0, NULL, &c.io), "kcom_dmabuf_create");
	} else {
		bench_check(err, "kcom_dmabuf_create (contiguous)");
	}
	void *mem;
	bench_check(kcom_bufio_map(c.io, &mem, 0, one), "kcom_bufio_map");
	bench_check(kcom_bufio_unmap(c.io, mem, 0, one), "kcom_bufio_unmap");
	c.mem = mem;
	c.len = one;
	c.ops = cfg->call_ops / 10;
	c.max = big / 4096;
	c.segs = bench_xmalloc(c.max * sizeof(*c.segs));
	bench_check(kcom_bufio_query(c.io, &kcom_bufvec_iid, (void **)&c.vec), "query bufvec");
	kcom_phys_t probe;
	err = kcom_bufio_wire(c.io, &probe, 0, one);
	if (err == KCOM_E_NOPHYS) {
		printf("   wiring: skipped, the host gives no physical addresses (run as root)\n");
	} else {
		if (KCOM_SUCCEEDED(err))
			bench_check(kcom_bufio_unwire(c.io, probe, 0, one), "kcom_bufio_unwire");
		c.use_vec = err == KCOM_E_NOTCONTIG;
		bench_dma_wire_pair(cfg, &c, c.use_vec ? "wire_vec 1 MiB, ns/op" : "wire 1 MiB, ns/op", c.use_vec ? wvn : wn);
	}
	kcom_bufvec_release(c.vec);
	kcom_bufio_release(c.io);
	if (err == KCOM_E_NOPHYS) {
		free(c.segs);
		close(c.fd);
		return;
	}

	/* wire_vec of the whole big buffer (4 KiB pages, whatever runs the host gave). */
	bench_check(kcom_dmabuf_create(big, 0, NULL, &c.io), "kcom_dmabuf_create (big)");
	bench_check(kcom_bufio_map(c.io, &mem, 0, big), "kcom_bufio_map");
	bench_check(kcom_bufio_unmap(c.io, mem, 0, big), "kcom_bufio_unmap");
	bench_check(kcom_bufio_query(c.io, &kcom_bufvec_iid, (void **)&c.vec), "query bufvec");
	size_t count = 0;
	bench_check(kcom_bufvec_wire_vec(c.vec, 0, big, c.segs, c.max, &count), "kcom_bufvec_wire_vec");
	bench_check(kcom_bufvec_unwire_vec(c.vec, 0, big, c.segs, count), "kcom_bufvec_unwire_vec");
	c.mem = mem;
	c.len = big;
	c.use_vec = 1;
	c.ops = BENCH_MAX(cfg->call_ops / 100000, 2);
	snprintf(label, sizeof(label), "wire_vec %zu MiB (%zu segs)", big >> 20, count);
	bench_dma_wire_pair(cfg, &c, label, vn);
	kcom_bufvec_release(c.vec);
	kcom_bufio_release(c.io);
	free(c.segs);
	close(c.fd);
}

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
	       "warm-up; figures are median (min..max) of the repetitions.  A comparison runs its sides\n"
	       "interleaved (kcom base base kcom, mirrored every other repetition); its ratio is the\n"
	       "median (min..max) of the per-repetition ratios\n\n",
	       PACKAGE_VERSION, cfg->mode, cfg->reps, cfg->seq_reps);

	bench_sequential(cfg, io, plain);
	bench_random(cfg, io);
	bench_calls(cfg, io);
#ifdef HAVE_GLIB
	bench_glib(cfg, io);
#else
	printf("\n4. GLib comparison skipped: kcom was configured without GObject\n");
#endif
	bench_dma(cfg);

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
