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
 *   6. buffer pools: get + put of one page through the thread's cache against the pool's lock
 *      every time, and two threads at once against one, as an aggregate rate.
 *   7. mbufchain built from 4 KiB appends at 1..64 MiB beside membuf, libevent's evbuffer and
 *      absl::Cord (each peer when configure found it): sequential reads and writes, random
 *      64-byte reads, copy(), copy then a 1-byte write, appends (doc/performance.md).
 *
 * How: the host's speed swings by tens of percent from one second to the next, so no figure is a
 * best-of and no ratio divides figures taken at different times.  Each comparison runs its two
 * sides interleaved in every repetition, kcom baseline baseline kcom (the mirror order in every
 * other repetition, so neither side always inherits the other's cache state; one untimed
 * warm-up pair first), each side's figure for the repetition is the mean of its two runs, and
 * each repetition gives its own ratio.  Every figure is printed as the median of its
 * per-repetition values with the smallest and largest beside it, `median (min..max)`; a ratio
 * is the median of the per-repetition ratios, not the ratio of two medians.  The last lines
 * repeat each median as `bench: name value unit` for scripts.  `--only` runs the named sections.
 * `--quick` shrinks sizes and counts so `make check` can prove the program runs; its figures
 * mean little.  Any kcom call
 * that fails stops the program with a message and exit status 1.
 *
 * This is a benchmark, never a test: nothing here asserts a speed.
 */
#include "config.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/error.h>
#include <com/refcount.h>
#include <impls/dmabuf.h>
#include <impls/mbufchain.h>
#include <impls/membuf.h>
#include <impls/pool.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef HAVE_GLIB
#include <glib-object.h>
#endif
#ifdef HAVE_LIBEVENT
#include <event2/buffer.h>
#endif
#ifdef __GLIBC__
#include <malloc.h>
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

static struct bench_figure bench_figures[128];
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

/* The same for a call outside kcom: stops the program when `bad`. */
static void bench_check_peer(int bad, const char *what)
{
	if (bad) {
		fprintf(stderr, "kcom-bench: %s failed\n", what);
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

/* One labelled figure: recorded under `name` for the summary lines (NULL: printed only). */
static void bench_row(const char *label, const char *name, const struct bench_series *s, const char *unit, int prec)
{
	struct bench_summary sum = name != NULL ? bench_record(name, s, unit) : bench_summarize(s);
	printf("   %-44s", label);
	bench_cell(&sum, prec);
	printf(" %s\n", unit);
}

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
	bench_check_peer(bad, "reading /proc/self/pagemap");
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

/* ---- 7. mbufchain beside membuf, libevent's evbuffer and absl::Cord ---- */

#ifdef HAVE_ABSL
/* bench/cord-bench.cc */
void *cord_bench_build(const unsigned char *src, size_t size, size_t chunk);
void cord_bench_free(void *cord);
void cord_bench_rand(void *cord, const int64_t *offs, size_t mask, size_t ops, unsigned char *dst, size_t n);
void cord_bench_copy(void *cord, size_t ops);
#endif

/* Sizes of the chains compared: 1, 4, 16, 64 MiB (quick: 1 MiB). */
static const size_t mc_sizes_full[] = { 1u << 20, 4u << 20, 16u << 20, 64u << 20 };
static const size_t mc_sizes_quick[] = { 1u << 20 };

/* Everything the section's sides need, for one size. */
struct mc_bench {
	size_t size;
	const unsigned char *src;   /* the bytes every structure is built from */
	struct bench_ctx chain;     /* random reads of the chain (rand_kcom) */
	struct bench_ctx membuf;    /* ... of a membuf with the same bytes */
	kcom_bufio_t *chain_io;
	kcom_bufio_t *membuf_io;
	unsigned char *plain;       /* sequential: a plain buffer of `size` bytes */
	unsigned char *plain2;      /* ... and a second one, memcpy's destination */
	size_t ops;                 /* copies, copy-and-writes per repetition */
	size_t slow_ops;            /* membuf copy-and-write, evbuffer reference copies */
	size_t evb_reads;           /* evbuffer random reads per repetition (the table's first ones) */
	const kcom_off_t *offs;
	size_t mask;
	struct kcom_iovec *pieces;  /* sequential: the chain's map_vec, whole */
	size_t npieces;
	void *cord;
#ifdef HAVE_LIBEVENT
	struct evbuffer *evb;
#endif
};

/* Figure names live as long as the program: bench_record keeps the pointer. */
static const char *mc_name(const char *what, size_t size)
{
	static char pool[48][40];
	static size_t used;
	if (used == sizeof(pool) / sizeof(pool[0])) {
		fprintf(stderr, "kcom-bench: too many mbufchain figures\n");
		exit(1);
	}
	snprintf(pool[used], sizeof(pool[used]), "%s_%zu", what, size >> 20);
	return pool[used++];
}

/* A chain built from 4 KiB writes at the end (appends), as a receive path builds one. */
static kcom_bufio_t *mc_build(const unsigned char *src, size_t size)
{
	kcom_bufio_t *io;
	bench_check(kcom_mbufchain_create(0, &io), "kcom_mbufchain_create");
	kcom_error_t bad = KCOM_OK;
	size_t short_or = 0, actual;
	for (size_t off = 0; off < size; off += BENCH_CHUNK) {
		kcom_error_t err = kcom_bufio_write(io, src + off, (kcom_off_t)off, BENCH_CHUNK, &actual);
		bad = err ? err : bad;
		short_or |= actual ^ BENCH_CHUNK;
	}
	bench_check_loop(bad, short_or, "kcom_bufio_write (append)");
	return io;
}

/* Appending: the whole chain built by 4 KiB appends; the release is off the clock. */
static double mc_side_append(const void *vctx)
{
	const struct mc_bench *b = vctx;
	double t0 = bench_now();
	kcom_bufio_t *io = mc_build(b->src, b->size);
	double t = bench_now() - t0;
	kcom_bufio_release(io);
#ifdef __GLIBC__
	/* Hand the freed clusters' pages back, so the next build faults fresh pages as memcpy does. */
	malloc_trim(0);
#endif
	return t;
}

/* Its baseline: 4 KiB memcpy calls into never-touched pages (a fresh mapping: the same faults). */
static double mc_side_append_memcpy(const void *vctx)
{
	const struct mc_bench *b = vctx;
	unsigned char *dst = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (dst == MAP_FAILED) {
		perror("kcom-bench: mmap");
		exit(1);
	}
	double t = seq_memcpy(dst, b->src, b->size);
	munmap(dst, b->size);
	return t;
}

static double mc_side_rand_chain(const void *vctx)
{
	return rand_kcom(&((const struct mc_bench *)vctx)->chain);
}

static double mc_side_rand_membuf(const void *vctx)
{
	return rand_kcom(&((const struct mc_bench *)vctx)->membuf);
}

/* Sequential 4 KiB calls over the chain, against memcpy between two plain buffers. */
static double mc_side_seq_write(const void *vctx)
{
	const struct mc_bench *b = vctx;
	struct bench_ctx c = { .io = b->chain_io, .plain = b->plain, .size = b->size };
	return seq_kcom_write(&c);
}

static double mc_side_seq_read(const void *vctx)
{
	const struct mc_bench *b = vctx;
	struct bench_ctx c = { .io = b->chain_io, .plain = b->plain, .size = b->size };
	return seq_kcom_read(&c);
}

static double mc_side_seq_memcpy(const void *vctx)
{
	const struct mc_bench *b = vctx;
	return seq_memcpy(b->plain2, b->plain, b->size);
}

/*
 * The same copies as mc_side_seq_read with memcpy alone, from the chain's own clusters (its
 * map_vec pieces, taken outside the clock) into the same destination: what is left between
 * the two is the call path, as for membuf's sequential rows.
 */
static double mc_side_seq_memcpy_clusters(const void *vctx)
{
	const struct mc_bench *b = vctx;
	size_t chunk = bench_chunk_rt, off = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < b->npieces; i++) {
		for (size_t k = 0; k < b->pieces[i].len; k += chunk) {
			memcpy(b->plain + off + k, (const unsigned char *)b->pieces[i].base + k, chunk);
			BENCH_BARRIER();
		}
		off += b->pieces[i].len;
	}
	return bench_now() - t0;
}

/* copy() of the whole chain and the release of the copy. */
static double mc_side_copy(const void *vctx)
{
	const struct mc_bench *b = vctx;
	kcom_error_t bad = KCOM_OK;
	double t0 = bench_now();
	for (size_t i = 0; i < b->ops; i++) {
		kcom_bufio_t *copy;
		kcom_error_t err = kcom_bufio_copy(b->chain_io, 0, b->size, &copy);
		bad = err ? err : bad;
		if (err == KCOM_OK)
			kcom_bufio_release(copy);
	}
	double t = bench_now() - t0;
	bench_check(bad, "kcom_bufio_copy");
	return t;
}

/* copy(), a 1-byte write in the middle of the copy, and the release of the copy. */
static double mc_cow_loop(kcom_bufio_t *io, size_t size, size_t ops)
{
	kcom_error_t bad = KCOM_OK;
	size_t actual;
	double t0 = bench_now();
	for (size_t i = 0; i < ops; i++) {
		kcom_bufio_t *copy;
		kcom_error_t err = kcom_bufio_copy(io, 0, size, &copy);
		bad = err ? err : bad;
		if (err != KCOM_OK)
			continue;
		err = kcom_bufio_write(copy, "!", (kcom_off_t)(size / 2 + (i * 4099) % 4096), 1, &actual);
		bad = err ? err : bad;
		kcom_bufio_release(copy);
	}
	double t = bench_now() - t0;
	bench_check(bad, "copy and write");
	return t;
}

static double mc_side_cow(const void *vctx)
{
	const struct mc_bench *b = vctx;
	return mc_cow_loop(b->chain_io, b->size, b->ops);
}

static double mc_side_cow_membuf(const void *vctx)
{
	const struct mc_bench *b = vctx;
	return mc_cow_loop(b->membuf_io, b->size, b->slow_ops);
}

#ifdef HAVE_ABSL
static double mc_side_rand_cord(const void *vctx)
{
	const struct mc_bench *b = vctx;
	double t0 = bench_now();
	cord_bench_rand(b->cord, b->offs, b->mask, b->chain.ops, bench_small_dst, BENCH_SMALL);
	return bench_now() - t0;
}

static double mc_side_copy_cord(const void *vctx)
{
	const struct mc_bench *b = vctx;
	double t0 = bench_now();
	cord_bench_copy(b->cord, b->ops);
	return bench_now() - t0;
}
#endif

#ifdef HAVE_LIBEVENT
/* evbuffer: evbuffer_ptr_set to the offset (a walk over its chains), then copy out from there. */
static double mc_side_rand_evbuffer(const void *vctx)
{
	const struct mc_bench *b = vctx;
	int bad = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < b->evb_reads; i++) {
		struct evbuffer_ptr p;
		bad |= evbuffer_ptr_set(b->evb, &p, (size_t)b->offs[i & b->mask], EVBUFFER_PTR_SET) != 0;
		bad |= evbuffer_copyout_from(b->evb, &p, bench_small_dst, BENCH_SMALL) != BENCH_SMALL;
		BENCH_USE(bench_small_dst);
	}
	double t = bench_now() - t0;
	bench_check_peer(bad, "evbuffer read");
	return t;
}

/* evbuffer's reference copy: evbuffer_add_buffer_reference into a new buffer, then its free. */
static double mc_side_copy_evbuffer(const void *vctx)
{
	const struct mc_bench *b = vctx;
	int bad = 0;
	double t0 = bench_now();
	for (size_t i = 0; i < b->slow_ops; i++) {
		struct evbuffer *out = evbuffer_new();
		bad |= out == NULL || evbuffer_add_buffer_reference(out, b->evb) != 0;
		if (out != NULL)
			evbuffer_free(out);
	}
	double t = bench_now() - t0;
	bench_check_peer(bad, "evbuffer reference copy");
	return t;
}
#endif

/*
 * Prints `label` and the cells; the figures a target names (and the peers' at the largest size)
 * are also recorded under name_<MiB> for the final lines (`name` NULL: printed only, since
 * to keep the final lines short).
 */
static void mc_row(const char *label, size_t size, const char *name, const struct bench_series *s, const char *unit,
                   int prec)
{
	bench_row(label, name != NULL ? mc_name(name, size) : NULL, s, unit, prec);
}

static void bench_mbufchain_one(const struct bench_config *cfg, size_t size, int last, const unsigned char *src,
                                const kcom_off_t *offs, size_t mask, size_t rand_ops)
{
	struct mc_bench b = { .size = size, .src = src, .offs = offs, .mask = mask };
	int quick = cfg->reps < 5;
	b.ops = quick ? 1000 : 100000;
	b.slow_ops = quick ? 2 : size >= (16u << 20) ? 20 : 100;
	/*
	 * evbuffer's walk costs in proportion to the offset, so the reads must average about half
	 * the size: the table's first 20 offsets average 0.57 of it, its first 200 0.52 (printed).
	 */
	b.evb_reads = quick ? 2 : 200;
	b.chain_io = mc_build(src, size);
	bench_check(kcom_membuf_create(size, &b.membuf_io), "kcom_membuf_create");
	size_t actual;
	bench_check(kcom_bufio_write(b.membuf_io, src, 0, size, &actual), "kcom_bufio_write");
	/* Offsets inside this size: the shared table is for the largest; mask them down. */
	kcom_off_t *mine = bench_xmalloc((mask + 1) * sizeof(*mine));
	for (size_t i = 0; i <= mask; i++)
		mine[i] = offs[i] % (kcom_off_t)(size - BENCH_SMALL + 1) / BENCH_SMALL * BENCH_SMALL;
	b.offs = mine;
	b.chain = (struct bench_ctx){ .io = b.chain_io, .size = size, .offs = mine, .mask = mask, .ops = rand_ops };
	b.membuf = (struct bench_ctx){ .io = b.membuf_io, .size = size, .offs = mine, .mask = mask, .ops = rand_ops };

	printf("\n   -- %zu MiB (%zu segments of 4 KiB)\n", size >> 20, size / BENCH_CHUNK);
	struct bench_series ta, tb, x, y, r;

	bench_pair(cfg->reps, mc_side_append, mc_side_append_memcpy, &b, &ta, &tb);
	x = bench_nsop(&ta, size / BENCH_CHUNK);
	y = bench_nsop(&tb, size / BENCH_CHUNK);
	r = bench_div(&ta, &tb, 1.0);
	mc_row("append 4 KiB: chain", size, NULL, &x, "ns/op", 1);
	mc_row("append 4 KiB: memcpy into fresh pages", size, NULL, &y, "ns/op", 1);
	mc_row("append: chain/memcpy time (target <= 1.3)", size, "mc_append_ratio", &r, "x", 3);

	bench_pair(cfg->reps, mc_side_rand_chain, mc_side_rand_membuf, &b, &ta, &tb);
	x = bench_nsop(&ta, rand_ops);
	y = bench_nsop(&tb, rand_ops);
	r = bench_div(&ta, &tb, 1.0);
	mc_row("random 64 B read: chain", size, "mc_rand", &x, "ns/op", 1);
	mc_row("random 64 B read: membuf", size, NULL, &y, "ns/op", 1);
	mc_row("random read: chain/membuf time (target <= 2)", size, "mc_rand_vs_membuf", &r, "x", 3);
#ifdef HAVE_ABSL
	b.cord = cord_bench_build(src, size, BENCH_CHUNK);
	bench_pair(cfg->reps, mc_side_rand_chain, mc_side_rand_cord, &b, &ta, &tb);
	y = bench_nsop(&tb, rand_ops);
	r = bench_div(&tb, &ta, 1.0);
	mc_row("random 64 B read: absl::Cord", size, NULL, &y, "ns/op", 1);
	mc_row("random read: Cord/chain time (target >= 4)", size, "cord_over_mc_rand", &r, "x", 2);
#endif
#ifdef HAVE_LIBEVENT
	b.evb = evbuffer_new();
	for (size_t off = 0; off < size; off += BENCH_CHUNK)
		if (b.evb == NULL || evbuffer_add(b.evb, src + off, BENCH_CHUNK) != 0) {
			fprintf(stderr, "kcom-bench: evbuffer_add failed\n");
			exit(1);
		}
	if (last) {
		bench_pair(cfg->reps, mc_side_rand_chain, mc_side_rand_evbuffer, &b, &ta, &tb);
		y = bench_nsop(&tb, b.evb_reads);
		x = bench_nsop(&ta, rand_ops);
		r = bench_div(&y, &x, 1.0);
		double mean = 0;
		for (size_t i = 0; i < b.evb_reads; i++)
			mean += (double)mine[i & mask];
		printf("   evbuffer: %zu reads a repetition, at offsets averaging %.3f of the size\n", b.evb_reads,
		       mean / (double)b.evb_reads / (double)size);
		mc_row("random 64 B read: evbuffer", size, NULL, &y, "ns/op", 0);
		mc_row("random read: evbuffer/chain (target >= 1000)", size, "evbuffer_over_mc_rand", &r, "x", 0);
		/* The same against flat memory behind the same call: what any bufio could reach here. */
		bench_pair(cfg->reps, mc_side_rand_membuf, mc_side_rand_evbuffer, &b, &ta, &tb);
		y = bench_nsop(&tb, b.evb_reads);
		x = bench_nsop(&ta, rand_ops);
		r = bench_div(&y, &x, 1.0);
		mc_row("random read: evbuffer/membuf (for scale)", size, "evbuffer_over_membuf_rand", &r, "x", 0);
	}
#endif

	bench_single(cfg->reps, mc_side_copy, &b, &ta);
	x = bench_nsop(&ta, b.ops);
	mc_row("copy() of the whole chain + release (<= 100)", size, "mc_copy", &x, "ns/op", 1);
#ifdef HAVE_ABSL
	bench_single(cfg->reps, mc_side_copy_cord, &b, &ta);
	x = bench_nsop(&ta, b.ops);
	mc_row("absl::Cord copy construction + destruction", size, last ? "cord_copy" : NULL, &x, "ns/op", 1);
#endif
#ifdef HAVE_LIBEVENT
	bench_single(cfg->reps, mc_side_copy_evbuffer, &b, &tb);
	y = bench_nsop(&tb, b.slow_ops);
	mc_row("evbuffer_add_buffer_reference + free", size, last ? "evbuffer_refcopy" : NULL, &y, "ns/op", 0);
#endif
	bench_single(cfg->reps, mc_side_cow, &b, &ta);
	x = bench_nsop(&ta, b.ops);
	mc_row("copy + 1-byte write in the middle + release", size, "mc_cow_write", &x, "ns/op", 1);
	if (last) {
		bench_single(quick ? 1 : 3, mc_side_cow_membuf, &b, &tb);
		y = bench_nsop(&tb, b.slow_ops);
		mc_row("the same on a membuf", size, "membuf_cow_write", &y, "ns/op", 0);

		b.plain = bench_xmalloc(size);
		b.plain2 = bench_xmalloc(size);
		memcpy(b.plain, src, size);
		memset(b.plain2, 1, size);
		bench_pair(cfg->seq_reps, mc_side_seq_write, mc_side_seq_memcpy, &b, &ta, &tb);
		r = bench_div(&tb, &ta, 1.0);
		x = bench_mbps(&ta, size);
		mc_row("sequential 4 KiB writes into the chain", size, NULL, &x, "MB/s", 0);
		mc_row("  chain/memcpy speed (target >= 0.95)", size, "mc_seq_write_ratio", &r, "x", 3);
		bench_pair(cfg->seq_reps, mc_side_seq_read, mc_side_seq_memcpy, &b, &ta, &tb);
		r = bench_div(&tb, &ta, 1.0);
		x = bench_mbps(&ta, size);
		y = bench_mbps(&tb, size);
		mc_row("sequential 4 KiB reads from the chain", size, NULL, &x, "MB/s", 0);
		mc_row("4 KiB memcpy between plain buffers", size, NULL, &y, "MB/s", 0);
		mc_row("  chain/memcpy speed (target >= 0.95)", size, "mc_seq_read_ratio", &r, "x", 3);
		/* The chain's clusters are page-aligned and the destination is not: against memcpy over the same memory. */
		kcom_bufvec_t *vec;
		size_t most = size / BENCH_CHUNK;
		b.pieces = bench_xmalloc(most * sizeof(*b.pieces));
		bench_check(kcom_bufio_query(b.chain_io, &kcom_bufvec_iid, (void **)&vec), "query bufvec");
		bench_check(kcom_bufvec_map_vec(vec, 0, size, KCOM_MAP_READ, b.pieces, most, &b.npieces), "map_vec");
		for (size_t i = 0; i < b.npieces; i++)
			if (b.pieces[i].len % BENCH_CHUNK != 0) {
				fprintf(stderr, "kcom-bench: a piece of the chain is not whole 4 KiB blocks\n");
				exit(1);
			}
		bench_pair(cfg->seq_reps, mc_side_seq_read, mc_side_seq_memcpy_clusters, &b, &ta, &tb);
		bench_check(kcom_bufvec_unmap_vec(vec, 0, size, KCOM_MAP_READ, b.pieces, b.npieces), "unmap_vec");
		kcom_bufvec_release(vec);
		free(b.pieces);
		r = bench_div(&tb, &ta, 1.0);
		y = bench_mbps(&tb, size);
		mc_row("memcpy from the chain's own clusters", size, NULL, &y, "MB/s", 0);
		mc_row("  chain/that memcpy speed", size, "mc_seq_read_vs_clusters", &r, "x", 3);
		/*
		 * The same two sides with both buffers page-aligned: the reads' destination then sits
		 * where the clusters do in their pages, as the baseline's does relative to its source.
		 */
		void *pa, *pb;
		if (posix_memalign(&pa, 4096, size) != 0 || posix_memalign(&pb, 4096, size) != 0) {
			fprintf(stderr, "kcom-bench: posix_memalign failed\n");
			exit(1);
		}
		memcpy(pa, src, size);
		memset(pb, 1, size);
		unsigned char *keep = b.plain, *keep2 = b.plain2;
		b.plain = pa;
		b.plain2 = pb;
		bench_pair(cfg->seq_reps, mc_side_seq_read, mc_side_seq_memcpy, &b, &ta, &tb);
		b.plain = keep;
		b.plain2 = keep2;
		free(pa);
		free(pb);
		r = bench_div(&tb, &ta, 1.0);
		x = bench_mbps(&ta, size);
		mc_row("reads into a page-aligned buffer", size, NULL, &x, "MB/s", 0);
		mc_row("  chain/memcpy speed, both page-aligned", size, "mc_seq_read_aligned_ratio", &r, "x", 3);
		free(b.plain);
		free(b.plain2);
	}

#ifdef HAVE_LIBEVENT
	evbuffer_free(b.evb);
#endif
#ifdef HAVE_ABSL
	cord_bench_free(b.cord);
#endif
	free(mine);
	if (kcom_bufio_release(b.chain_io) != 0 || kcom_bufio_release(b.membuf_io) != 0) {
		fprintf(stderr, "kcom-bench: a reference was left behind\n");
		exit(1);
	}
}

static void bench_mbufchain(const struct bench_config *cfg)
{
	int quick = cfg->reps < 5;
	const size_t *sizes = quick ? mc_sizes_quick : mc_sizes_full;
	size_t nsizes = quick ? 1 : sizeof(mc_sizes_full) / sizeof(mc_sizes_full[0]);
	size_t largest = sizes[nsizes - 1];
	size_t rand_ops = quick ? 10000 : 200000;
	size_t noffs = 1;
	while (noffs < rand_ops)
		noffs <<= 1;
	unsigned char *src = bench_xmalloc(largest);
	for (size_t i = 0; i < largest; i++)
		src[i] = (unsigned char)(i * 31 + 7);
	kcom_off_t *offs = bench_xmalloc(noffs * sizeof(*offs));
	uint64_t state = 0x2545F4914F6CDD1DULL;
	for (size_t i = 0; i < noffs; i++)
		offs[i] = (kcom_off_t)((bench_rand(&state) % (largest / BENCH_SMALL)) * BENCH_SMALL);

	printf("\n7. mbufchain (4 KiB clusters, built from 4 KiB appends) beside membuf%s%s; %d repetitions,\n"
	       "   median (min..max); every ratio is per repetition, its two sides interleaved\n",
#ifdef HAVE_LIBEVENT
	       ", libevent evbuffer",
#else
	       " (no libevent)",
#endif
#ifdef HAVE_ABSL
	       ", absl::Cord",
#else
	       " (no absl)",
#endif
	       cfg->reps);
	for (size_t i = 0; i < nsizes; i++)
		bench_mbufchain_one(cfg, sizes[i], i == nsizes - 1, src, offs, noffs - 1, rand_ops);
	free(offs);
	free(src);
}

/* ---- main ---- */

/* ---- 6. buffer pools ---- */

struct pool_bench {
	kcom_pool_t *pool;
	size_t ops;
	int cached;
};

/* get + put of one page, `ops` times, with the calling thread's cache or without (the lock). */
static double pool_get_put(const void *vctx)
{
	const struct pool_bench *b = vctx;
	struct kcom_iochannel *cache = NULL;
	if (b->cached)
		bench_check(kcom_pool_cache_open(b->pool, &cache), "kcom_pool_cache_open");
	kcom_error_t bad = KCOM_OK;
	kcom_off_t off;
	double t0 = bench_now();
	for (size_t i = 0; i < b->ops; i++) {
		kcom_error_t e1 = kcom_pool_get(b->pool, cache, 1, &off);
		kcom_error_t e2 = kcom_pool_put(b->pool, cache, 1, &off);
		bad = e1 ? e1 : e2 ? e2 : bad;
	}
	double t = bench_now() - t0;
	bench_check(bad, "kcom_pool_get/put");
	if (cache != NULL)
		bench_check(kcom_pool_cache_close(cache), "kcom_pool_cache_close");
	return t;
}

static double pool_cached(const void *vctx)
{
	struct pool_bench b = *(const struct pool_bench *)vctx;
	b.cached = 1;
	return pool_get_put(&b);
}

static double pool_uncached(const void *vctx)
{
	struct pool_bench b = *(const struct pool_bench *)vctx;
	b.cached = 0;
	return pool_get_put(&b);
}

static void *pool_thread(void *arg)
{
	*(double *)((char *)arg + sizeof(struct pool_bench)) = pool_cached(arg);
	return NULL;
}

/* Two threads at once, each with its own cache: wall-clock seconds for both to finish. */
static double pool_two_threads(const void *vctx)
{
	struct {
		struct pool_bench b;
		double t;
	} arg[2] = { { *(const struct pool_bench *)vctx, 0 }, { *(const struct pool_bench *)vctx, 0 } };
	pthread_t t[2];
	double t0 = bench_now();
	for (int i = 0; i < 2; i++)
		if (pthread_create(&t[i], NULL, pool_thread, &arg[i]) != 0)
			bench_check(KCOM_E_FAIL, "pthread_create");
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	return bench_now() - t0;
}

/* A 1 MB message in 16 pages of the pool, built `ops` times either way (and released). */
struct pool_msg {
	kcom_pool_t *pool;
	kcom_bufio_t *region;
	size_t ops;
};

#define POOL_MSG 1000000u

static double pool_msg_chain(const void *vctx)
{
	const struct pool_msg *m = vctx;
	kcom_off_t offs[16];
	double t = 0;
	for (size_t i = 0; i < m->ops; i++) {
		bench_check(kcom_pool_get(m->pool, NULL, 16, offs), "kcom_pool_get");
		double t0 = bench_now();
		kcom_bufio_t *chain;
		bench_check(kcom_pool_chain(m->pool, offs, 16, POOL_MSG, &chain), "kcom_pool_chain");
		t += bench_now() - t0;
		kcom_bufio_release(chain); /* the pages go back */
	}
	return t;
}

static double pool_msg_copy(const void *vctx)
{
	const struct pool_msg *m = vctx;
	kcom_off_t offs[16];
	double t = 0;
	for (size_t i = 0; i < m->ops; i++) {
		bench_check(kcom_pool_get(m->pool, NULL, 16, offs), "kcom_pool_get");
		double t0 = bench_now();
		kcom_bufio_t *copy;
		bench_check(kcom_membuf_create(0, &copy), "kcom_membuf_create");
		size_t done;
		for (size_t p = 0; p < 16; p++) {
			size_t len = p < 15 ? KCOM_POOL_PAGE_SIZE : POOL_MSG - 15 * KCOM_POOL_PAGE_SIZE;
			bench_check(kcom_absio_copy_range(kcom_bufio_absio(copy), (kcom_off_t)(p * KCOM_POOL_PAGE_SIZE),
			                                  kcom_bufio_absio(m->region), offs[p], len, &done),
			            "kcom_absio_copy_range");
		}
		t += bench_now() - t0;
		kcom_bufio_release(copy);
		bench_check(kcom_pool_put(m->pool, NULL, 16, offs), "kcom_pool_put");
	}
	return t;
}

/*
 * Pool get+put of one page: with the thread's cache against the same pool without (the lock
 * every time), and two threads at once against one, as aggregate rates.
 */
static void bench_pool(const struct bench_config *cfg)
{
	kcom_pool_t *pool;
	bench_check(kcom_pool_create(0, 256, NULL, &pool), "kcom_pool_create");
	struct pool_bench b = { .pool = pool, .ops = cfg->call_ops / 2 };
	struct bench_series tc, tu, t1, t2;
	printf("\n6. buffer pool (256 pages of 64 KiB): get + put of one page, %zu per repetition, ns/op\n", b.ops);
	bench_pair(cfg->reps, pool_cached, pool_uncached, &b, &tc, &tu);
	struct bench_series c = bench_nsop(&tc, b.ops), u = bench_nsop(&tu, b.ops);
	struct bench_series r = bench_div(&tu, &tc, 1.0);
	bench_row("cached (thread's I/O channel)", "pool_get_put_cached", &c, "ns/op", 2);
	bench_row("no cache (pool lock each time)", "pool_get_put_locked", &u, "ns/op", 2);
	bench_row("locked / cached time", "pool_locked_over_cached", &r, "x", 3);

	/* Aggregate rate of two threads over one thread's, per repetition: 2 * t1 / t2. */
	bench_pair(cfg->reps, pool_cached, pool_two_threads, &b, &t1, &t2);
	struct bench_series agg = bench_div(&t1, &t2, 2.0);
	bench_row("two threads' aggregate rate / one thread's", "pool_two_threads_speedup", &agg, "x", 3);

	/* A 1 MB message: a chain over its 16 pages against copying it into a membuf. */
	struct pool_msg m = { .pool = pool, .ops = 200 };
	bench_check(kcom_pool_region(pool, &m.region), "kcom_pool_region");
	struct bench_series tb, tm;
	bench_pair(cfg->reps, pool_msg_chain, pool_msg_copy, &m, &tb, &tm);
	struct bench_series bs = bench_nsop(&tb, m.ops), ms = bench_nsop(&tm, m.ops);
	struct bench_series br = bench_div(&tb, &tm, 1.0);
	bench_row("1 MB message: chain over its 16 pages", "pool_msg_chain", &bs, "ns/op", 1);
	bench_row("1 MB message: copied into a membuf", "pool_msg_copy", &ms, "ns/op", 1);
	bench_row("chain / copy time", "pool_msg_chain_over_copy", &br, "x", 4);
	kcom_bufio_release(m.region);
	printf("   target: cached get+put <= 25 ns; two threads >= 1.8x where two cores are free;\n"
	       "   chain building <= 1/20 of the copy\n");
	if (kcom_pool_release(pool) != 0)
		bench_check(KCOM_E_UNEXPECTED, "pool references left");
}

static void bench_usage(FILE *f)
{
	fprintf(f, "usage: kcom-bench [--quick] [--only SECTION[,SECTION...]]\n"
	           "  --quick   small sizes and counts: proves the program runs, figures mean little\n"
	           "  --only    run only these sections: sequential, random, calls, glib, dma, pool, mbufchain\n");
}

/* The sections --only names; NULL runs them all. */
static const char *bench_only;

/* Whether section `name` runs: a whole word of the --only list, or every section without one. */
static int bench_runs(const char *name)
{
	if (bench_only == NULL)
		return 1;
	size_t n = strlen(name);
	for (const char *p = bench_only; p != NULL; p = strchr(p, ',')) {
		p += *p == ',';
		if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
			return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct bench_config *cfg = &bench_full;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--quick") == 0) {
			cfg = &bench_quick;
		} else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
			bench_only = argv[++i];
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

	if (bench_runs("sequential"))
		bench_sequential(cfg, io, plain);
	if (bench_runs("random"))
		bench_random(cfg, io);
	if (bench_runs("calls"))
		bench_calls(cfg, io);
#ifdef HAVE_GLIB
	if (bench_runs("glib"))
		bench_glib(cfg, io);
#else
	printf("\n4. GLib comparison skipped: kcom was configured without GObject\n");
#endif
	if (bench_runs("dma"))
		bench_dma(cfg);
	if (bench_runs("pool"))
		bench_pool(cfg);
	if (bench_runs("mbufchain"))
		bench_mbufchain(cfg);

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
