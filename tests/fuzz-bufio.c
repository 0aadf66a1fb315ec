/*
 * Differential fuzzing of every buffer implementation in the contract table against a plain
 * byte array.
 *
 * An input is a sequence of operations (read, write, setsize, copy, map/unmap with stores
 * through the mapping, map_vec, view acquire/release, range copy within an object and to a
 * second one, duplicate, query, release of the second object, and the chain operations
 * prepend, append, split and trim where the object answers kcom_chain).  Each row of contract_impls[]
 * (or the one named by KCOM_FUZZ_ROW) gets the same sequence; after every step the object's
 * size, bytes and the error class of the call must equal the model's, and the object's sanity
 * check (kcom_debug_check) must pass.  A difference aborts with a message naming the row, the
 * step and the operation.
 *
 * Built two ways: with clang's libFuzzer (`make fuzz`: tests/fuzz-bufio-libfuzzer), and as a
 * plain program (tests/fuzz-bufio-replay, run by `make check`) that replays the files named on
 * its command line (the corpus in tests/fuzz-corpus/, crash inputs kept as regressions) and
 * then a bounded number of inputs from a seeded generator.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/com.h>
#include <com/debug.h>
#include <impls/mbufchain.h>
#include "tests/contract.h"

#define MAX_OFF 3000u   /* offsets and lengths stay small: bugs live at edges, not at sizes */
#define MAX_LEN 1200u
#define MAX_SIZE 8192u  /* the model's room: any object larger is a difference already */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct model {
	uint8_t bytes[MAX_SIZE];
	size_t size;
	size_t cap;  /* SIZE_MAX: grows without limit */
	int fixed;   /* setsize is KCOM_E_NOTIMPL */
};

struct input {
	const uint8_t *p;
	size_t left;
};

static unsigned take(struct input *in, unsigned range)
{
	unsigned v = 0;
	for (int i = 0; i < 2 && in->left > 0; i++, in->left--, in->p++)
		v = (v << 8) | *in->p;
	return range != 0 ? v % range : v;
}

static int row;
static unsigned step;
static const char *op_name;

#define CHECK(cond, ...)                                                                              \
	do {                                                                                          \
		if (!(cond)) {                                                                        \
			fprintf(stderr, "fuzz: %s, step %u (%s): ", contract_impls[row].name, step, op_name); \
			fprintf(stderr, __VA_ARGS__);                                                 \
			fprintf(stderr, "\n");                                                        \
			abort();                                                                      \
		}                                                                                     \
	} while (0)

/* The model's write: what fits below its capacity, zeros in a gap; the count written. */
static kcom_error_t model_write(struct model *m, const uint8_t *src, size_t off, size_t n, size_t *put)
{
	*put = 0;
	if (n == 0)
		return KCOM_OK;
	if (off >= m->cap)
		return KCOM_E_NOSPACE;
	size_t len = n < m->cap - off ? n : m->cap - off;
	if (off + len > MAX_SIZE)
		len = off < MAX_SIZE ? MAX_SIZE - off : 0;
	if (len == 0)
		return KCOM_E_NOSPACE;
	if (off > m->size)
		memset(m->bytes + m->size, 0, off - m->size);
	memmove(m->bytes + off, src, len);
	if (off + len > m->size)
		m->size = off + len;
	*put = len;
	return KCOM_OK;
}

static void assert_same(kcom_bufio_t *io, const struct model *m, const char *which)
{
	size_t size = 0, got = 0;
	CHECK(kcom_bufio_getsize(io, &size) == KCOM_OK, "%s: getsize failed", which);
	CHECK(size == m->size, "%s: size %zu, model %zu", which, size, m->size);
	static uint8_t buf[MAX_SIZE];
	CHECK(kcom_bufio_read(io, buf, 0, size, &got) == KCOM_OK && got == size, "%s: read back failed", which);
	for (size_t i = 0; i < size; i++)
		CHECK(buf[i] == m->bytes[i], "%s: byte %zu is %u, model %u", which, i, buf[i], m->bytes[i]);
	kcom_debug_t *dbg;
	if (KCOM_SUCCEEDED(kcom_bufio_query(io, &kcom_debug_iid, (void **)&dbg))) {
		char why[160];
		kcom_error_t err = kcom_debug_check(dbg, why, sizeof(why));
		kcom_debug_release(dbg);
		CHECK(err == KCOM_OK, "%s: sanity: %s", which, why);
	}
}

static void fill(uint8_t *buf, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)(seed * 31u + i * 7u + 1u);
}

/* The expected answer for a range that must lie inside a `size`-byte object. */
static kcom_error_t range_err(size_t off, size_t n, size_t size)
{
	return off > size || n > size - off ? KCOM_E_RANGE : KCOM_OK;
}

enum { OP_READ, OP_WRITE, OP_SETSIZE, OP_COPY, OP_MAP, OP_MAP_VEC, OP_VIEW, OP_RANGE_SELF, OP_RANGE_OTHER,
       OP_DUPLICATE, OP_QUERY, OP_RELEASE_OTHER, OP_WRITE_OTHER, OP_PREPEND, OP_APPEND, OP_SPLIT, OP_TRIM, NOPS };

/*
 * A new second object `fresh` holding bytes [off, off + n) of `m`: it replaces `other` (dropped)
 * and its model `o`.  Returns the new second object.
 */
static kcom_bufio_t *adopt_other(kcom_bufio_t *other, kcom_bufio_t *fresh, struct model *o, const struct model *m,
                                 size_t off, size_t n)
{
	if (other != NULL)
		kcom_bufio_release(other);
	memcpy(o->bytes, m->bytes + off, n);
	o->size = n;
	return fresh;
}

static void run_row(const uint8_t *data, size_t size)
{
	const struct contract_impl *impl = &contract_impls[row];
	if (impl->probe != NULL && impl->probe(0) != NULL)
		return;
	struct input in = { data, size };
	size_t initial = 16 + take(&in, 2000);
	static struct model m, o;
	kcom_bufio_t *io = NULL, *other = NULL;
	op_name = "make";
	step = 0;
	CHECK(impl->make(initial, &io) == KCOM_OK, "factory failed");
	m.size = initial;
	for (size_t i = 0; i < initial; i++)
		m.bytes[i] = contract_pattern(i);
	m.cap = (impl->caps & CAP_GROWS) ? SIZE_MAX : initial;
	m.fixed = (impl->caps & CAP_FIXED) != 0;
	static uint8_t buf[MAX_SIZE], want[MAX_SIZE];
	int trace = getenv("KCOM_FUZZ_TRACE") != NULL; /* each step on stderr, to read a failure */

	for (step = 1; in.left > 0 && step < 400; step++) {
		unsigned op = take(&in, NOPS);
		size_t off = take(&in, MAX_OFF), n = take(&in, MAX_LEN);
		unsigned seed = take(&in, 0);
		if (trace)
			fprintf(stderr, "fuzz: %s step %u: op %u off %zu n %zu (size %zu)\n", impl->name, step, op, off, n,
			        m.size);
		size_t got = 99;
		kcom_error_t err, exp;
		switch (op) {
		case OP_READ:
			op_name = "read";
			err = kcom_bufio_read(io, buf, (kcom_off_t)off, n, &got);
			CHECK(err == KCOM_OK, "read said %s", kcom_strerror(err));
			exp = 0;
			{
				size_t len = off < m.size ? (n < m.size - off ? n : m.size - off) : 0;
				CHECK(got == len, "read %zu, model %zu", got, len);
				CHECK(len == 0 || memcmp(buf, m.bytes + off, len) == 0, "read bytes differ");
			}
			break;
		case OP_WRITE:
			op_name = "write";
			fill(want, n, seed);
			err = kcom_bufio_write(io, want, (kcom_off_t)off, n, &got);
			{
				size_t put;
				exp = model_write(&m, want, off, n, &put);
				CHECK(err == exp, "write said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
				CHECK(got == put, "wrote %zu, model %zu", got, put);
			}
			break;
		case OP_SETSIZE:
			op_name = "setsize";
			n = take(&in, MAX_OFF + MAX_LEN);
			err = kcom_bufio_setsize(io, n);
			exp = m.fixed ? KCOM_E_NOTIMPL : n > m.cap ? KCOM_E_NOSPACE : KCOM_OK;
			if (m.fixed && n == m.size)
				exp = err; /* a fixed object may accept its own size */
			CHECK(err == exp, "setsize said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
			if (err == KCOM_OK) {
				if (n > m.size)
					memset(m.bytes + m.size, 0, n - m.size);
				m.size = n;
			}
			break;
		case OP_COPY: {
			op_name = "copy";
			kcom_bufio_t *c = NULL;
			err = kcom_bufio_copy(io, (kcom_off_t)off, n, &c);
			exp = !(impl->caps & CAP_COPIES) ? KCOM_E_NOTIMPL : range_err(off, n, m.size);
			CHECK(err == exp, "copy said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
			if (err == KCOM_OK)
				other = adopt_other(other, c, &o, &m, off, n);
			break;
		}
		case OP_MAP: {
			op_name = "map";
			void *addr = NULL;
			err = kcom_bufio_map(io, &addr, (kcom_off_t)off, n);
			exp = !(impl->caps & CAP_MAPS) ? KCOM_E_NOTIMPL : range_err(off, n, m.size);
			CHECK(err == exp, "map said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
			if (err == KCOM_OK) {
				CHECK(n == 0 || memcmp(addr, m.bytes + off, n) == 0, "mapped bytes differ");
				fill(addr, n, seed);
				fill(m.bytes + off, n, seed);
				err = kcom_bufio_unmap(io, addr, (kcom_off_t)off, n);
				CHECK(err == KCOM_OK, "unmap said %s", kcom_strerror(err));
			}
			break;
		}
		case OP_MAP_VEC: {
			op_name = "map_vec";
			kcom_bufvec_t *vec;
			if (KCOM_FAILED(kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec))) {
				CHECK(!(impl->caps & CAP_BUFVEC), "no bufvec");
				break;
			}
			struct kcom_iovec iov[64];
			size_t count = 0;
			err = kcom_bufvec_map_vec(vec, (kcom_off_t)off, n, KCOM_MAP_READ, iov, 64, &count);
			exp = range_err(off, n, m.size);
			CHECK(err == exp || (exp == KCOM_OK && err == KCOM_E_TOOSMALL), "map_vec said %s, model %s",
			      kcom_strerror(err), kcom_strerror(exp));
			if (err == KCOM_OK) {
				size_t at = off;
				for (size_t k = 0; k < count; k++) {
					CHECK(memcmp(iov[k].base, m.bytes + at, iov[k].len) == 0, "piece %zu differs", k);
					at += iov[k].len;
				}
				CHECK(at == off + n, "pieces cover %zu bytes, not %zu", at - off, n);
				CHECK(kcom_bufvec_unmap_vec(vec, (kcom_off_t)off, n, KCOM_MAP_READ, iov, count) == KCOM_OK,
				      "unmap_vec failed");
			}
			kcom_bufvec_release(vec);
			break;
		}
		case OP_VIEW: {
			op_name = "view";
			struct kcom_view v;
			err = kcom_view_acquire(&v, kcom_bufio_absio(io), (kcom_off_t)off, n,
			                        KCOM_VIEW_READ | KCOM_VIEW_WRITE);
			exp = range_err(off, n, m.size);
			CHECK(err == exp, "view said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
			if (err == KCOM_OK) {
				CHECK(n == 0 || memcmp(v.addr, m.bytes + off, n) == 0, "view bytes differ");
				fill(v.addr, n, seed);
				fill(m.bytes + off, n, seed);
				err = kcom_view_release(&v);
				CHECK(err == KCOM_OK, "view release said %s", kcom_strerror(err));
			}
			break;
		}
		case OP_RANGE_SELF: {
			op_name = "copy_range(self)";
			size_t dst = take(&in, MAX_OFF);
			err = kcom_absio_copy_range(kcom_bufio_absio(io), (kcom_off_t)dst, kcom_bufio_absio(io),
			                            (kcom_off_t)off, n, &got);
			size_t len = off < m.size ? (n < m.size - off ? n : m.size - off) : 0;
			memcpy(want, m.bytes + off, len); /* as memmove: from the bytes before the copy */
			size_t put;
			exp = model_write(&m, want, dst, len, &put);
			if (exp == KCOM_E_NOSPACE)
				exp = KCOM_OK; /* a range copy that fits nothing is short, not failed */
			CHECK(err == exp, "copy_range said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
			CHECK(got == put, "copied %zu, model %zu", got, put);
			break;
		}
		case OP_RANGE_OTHER:
			op_name = "copy_range(other)";
			if (other == NULL)
				break;
			/* Only inside the other object: its capacity is its own class's business. */
			off = o.size != 0 ? off % (o.size + 1) : 0;
			n = n < o.size - off ? n : o.size - off;
			{
				size_t src = take(&in, MAX_OFF);
				err = kcom_absio_copy_range(kcom_bufio_absio(other), (kcom_off_t)off, kcom_bufio_absio(io),
				                            (kcom_off_t)src, n, &got);
				size_t len = src < m.size ? (n < m.size - src ? n : m.size - src) : 0;
				CHECK(err == KCOM_OK, "copy_range said %s", kcom_strerror(err));
				CHECK(got == len, "copied %zu, model %zu", got, len);
				memcpy(o.bytes + off, m.bytes + src, len);
			}
			break;
		case OP_DUPLICATE: {
			op_name = "duplicate";
			kcom_bufio_t *d = NULL;
			err = kcom_bufio_duplicate(kcom_bufio_absio(io), (kcom_off_t)off, n, &d);
			exp = range_err(off, n, m.size);
			CHECK(err == exp, "duplicate said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
			if (err == KCOM_OK)
				other = adopt_other(other, d, &o, &m, off, n);
			break;
		}
		case OP_QUERY: {
			op_name = "query";
			void *unk, *again;
			CHECK(kcom_bufio_query(io, &kcom_iunknown_iid, &unk) == KCOM_OK, "no IUnknown");
			CHECK(kcom_iunknown_query(unk, &kcom_bufio_iid, &again) == KCOM_OK && again == io,
			      "bufio through IUnknown is not the object");
			kcom_bufio_release(again);
			kcom_iunknown_release(unk);
			break;
		}
		case OP_RELEASE_OTHER:
			op_name = "release(other)";
			if (other != NULL)
				CHECK(kcom_bufio_release(other) == 0, "other object still referenced");
			other = NULL;
			break;
		case OP_PREPEND:
		case OP_APPEND:
		case OP_SPLIT:
		case OP_TRIM: {
			kcom_chain_t *ch;
			op_name = op == OP_PREPEND ? "prepend" : op == OP_APPEND ? "append" : op == OP_SPLIT ? "split" : "trim";
			if (KCOM_FAILED(kcom_bufio_query(io, &kcom_chain_iid, (void **)&ch)))
				break; /* not a chain: nothing to compare */
			if (op == OP_PREPEND)
				n %= 200;
			if ((op == OP_PREPEND || op == OP_APPEND) && m.size + n > MAX_OFF + MAX_LEN) {
				kcom_chain_release(ch); /* the model's room is bounded: keep sizes as writes do */
				break;
			}
			if (op == OP_PREPEND) {
				fill(want, n, seed);
				err = kcom_chain_prepend(ch, want, n);
				CHECK(err == KCOM_OK, "prepend said %s", kcom_strerror(err));
				memmove(m.bytes + n, m.bytes, m.size);
				memcpy(m.bytes, want, n);
				m.size += n;
			} else if (op == OP_APPEND) {
				/* A range of the object itself, or of the other object when there is one. */
				int from_other = other != NULL && (seed & 1);
				struct model *src = from_other ? &o : &m;
				err = kcom_chain_append(ch, from_other ? other : io, (kcom_off_t)off, n);
				exp = range_err(off, n, src->size);
				CHECK(err == exp, "append said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
				if (err == KCOM_OK) {
					memmove(m.bytes + m.size, src->bytes + off, n);
					m.size += n;
				}
			} else if (op == OP_SPLIT) {
				kcom_bufio_t *tail = NULL;
				err = kcom_chain_split(ch, (kcom_off_t)off, &tail);
				exp = off > m.size ? KCOM_E_RANGE : KCOM_OK;
				CHECK(err == exp, "split said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
				if (err == KCOM_OK) {
					if (other != NULL)
						kcom_bufio_release(other);
					other = tail;
					memcpy(o.bytes, m.bytes + off, m.size - off);
					o.size = m.size - off;
					m.size = off;
				}
			} else {
				size_t front = off % 1500, back = n;
				err = kcom_chain_trim(ch, front, back);
				exp = front + back > m.size ? KCOM_E_RANGE : KCOM_OK;
				CHECK(err == exp, "trim said %s, model %s", kcom_strerror(err), kcom_strerror(exp));
				if (err == KCOM_OK) {
					memmove(m.bytes, m.bytes + front, m.size - front - back);
					m.size -= front + back;
				}
			}
			kcom_chain_release(ch);
			break;
		}
		case OP_WRITE_OTHER:
			op_name = "write(other)";
			if (other == NULL || o.size == 0)
				break;
			off %= o.size;
			n = n < o.size - off ? n : o.size - off;
			fill(want, n, seed);
			err = kcom_bufio_write(other, want, (kcom_off_t)off, n, &got);
			CHECK(err == KCOM_OK && got == n, "write to the other said %s, %zu", kcom_strerror(err), got);
			memcpy(o.bytes + off, want, n);
			break;
		}
		assert_same(io, &m, "object");
		if (other != NULL)
			assert_same(other, &o, "other");
	}
	op_name = "release";
	if (other != NULL)
		CHECK(kcom_bufio_release(other) == 0, "other object still referenced at the end");
	CHECK(kcom_bufio_release(io) == 0, "object still referenced at the end");
	if (impl->teardown != NULL)
		impl->teardown();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *only = getenv("KCOM_FUZZ_ROW");
	int ran = 0;
	for (row = 0; row < (int)contract_nimpls; row++)
		if (only == NULL || strcmp(only, contract_impls[row].name) == 0) {
			run_row(data, size);
			ran++;
		}
	if (ran == 0) {
		/* A misspelt row would otherwise fuzz nothing and pass. */
		fprintf(stderr, "fuzz: KCOM_FUZZ_ROW=%s names no row of the contract table\n", only);
		abort();
	}
	return 0;
}

#ifndef KCOM_LIBFUZZER
/* The replay program: the files named, then KCOM_FUZZ_RUNS generated inputs (default 300). */
static uint64_t next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int main(int argc, char **argv)
{
	static uint8_t data[4096];
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			perror(argv[i]);
			return 1;
		}
		size_t len = fread(data, 1, sizeof(data), f);
		fclose(f);
		LLVMFuzzerTestOneInput(data, len);
	}
	const char *runs_env = getenv("KCOM_FUZZ_RUNS"), *seed_env = getenv("KCOM_SEED");
	unsigned long runs = runs_env != NULL ? strtoul(runs_env, NULL, 10) : 300;
	uint64_t seed = seed_env != NULL ? strtoull(seed_env, NULL, 0) : 0x6b636f6dULL;
	printf("fuzz-bufio: %d corpus files, %lu generated inputs from seed 0x%llx, %zu rows\n", argc - 1, runs,
	       (unsigned long long)seed, contract_nimpls);
	for (unsigned long r = 0; r < runs; r++) {
		uint64_t s = seed + r * 0x9E3779B97F4A7C15ULL;
		size_t len = 8 + next(&s) % (sizeof(data) - 8);
		for (size_t i = 0; i < len; i++)
			data[i] = (uint8_t)next(&s);
		LLVMFuzzerTestOneInput(data, len);
	}
	printf("fuzz-bufio: no difference\n");
	return 0;
}
#endif
