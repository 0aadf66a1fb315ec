/*
 * kcom-inspect: lists the classes kcom knows (built in, and from the modules on the module
 * path or named with --module), the interfaces a live instance of each answers, and for buffer
 * classes which optional methods work natively and which fall back to read/write.  Modelled on
 * GStreamer's gst-inspect-1.0; the manual is tools/kcom-inspect.1.
 *
 * Nothing is taken on trust: interfaces are found by querying an instance, and each optional
 * buffer method is tried on a small instance; when the instance answers buffer info, its
 * claimed natives are compared with what the trials found.  Two tables drive the work and are
 * where a new interface or a new extension goes: known_ifaces[] (names for IIDs) and
 * buffer_probes[] (one trial per optional method).
 */
#include "config.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <absio/absio.h>
#include <bufio/bufinfo.h>
#include <bufio/bufio.h>
#include <bufio/bufvec.h>
#include <bufio/helpers.h>
#include <com/com.h>
#include <com/debug.h>
#include <com/module.h>
#include <com/registry.h>
#include <impls/filebuf.h>
#include <impls/mbufchain.h>
#include <impls/pool.h>

/* ---- the tables ---- */

static const kcom_iid_t fileio_iid = KCOM_FILEIO_IID;

/* Names for the IIDs kcom defines; an IID not listed is shown as its GUID text. */
static const struct known_iface {
	const char *name;
	const kcom_iid_t *iid;
} known_ifaces[] = {
	{ "IUnknown", &kcom_iunknown_iid },
	{ "absio", &kcom_absio_iid },
	{ "bufio", &kcom_bufio_iid },
	{ "bufvec", &kcom_bufvec_iid },
	{ "bufinfo", &kcom_bufinfo_iid },
	{ "debug", &kcom_debug_iid },
	{ "registry", &kcom_registry_iid },
	{ "fileio", &fileio_iid },
	{ "pool", &kcom_pool_iid },
	{ "dmaalloc", &kcom_dmaalloc_iid },
	{ "chain", &kcom_chain_iid },
};
#define NKNOWN (sizeof(known_ifaces) / sizeof(known_ifaces[0]))

enum verdict { NATIVE, FALLBACK };

/* One optional buffer method: try it on `io`; on FALLBACK, *why says what the object said. */
struct buffer_probe {
	const char *name;
	unsigned native_bit; /* its KCOM_NATIVE_* bit in buffer info */
	enum verdict (*try)(kcom_bufio_t *io, kcom_error_t *why);
};

/* The bytes a trial instance holds: two pages, so a range can span them. */
#define TRIAL_SIZE 8192u
#define TRIAL_RANGE 64u

static enum verdict try_map(kcom_bufio_t *io, kcom_error_t *why)
{
	void *addr;
	*why = kcom_bufio_map(io, &addr, 0, TRIAL_RANGE);
	if (KCOM_FAILED(*why))
		return FALLBACK;
	kcom_bufio_unmap(io, addr, 0, TRIAL_RANGE);
	return NATIVE;
}

static enum verdict try_wire(kcom_bufio_t *io, kcom_error_t *why)
{
	kcom_phys_t phys;
	*why = kcom_bufio_wire(io, &phys, 0, TRIAL_RANGE);
	if (KCOM_FAILED(*why))
		return FALLBACK;
	kcom_bufio_unwire(io, phys, 0, TRIAL_RANGE);
	return NATIVE;
}

static enum verdict try_copy(kcom_bufio_t *io, kcom_error_t *why)
{
	kcom_bufio_t *copy;
	*why = kcom_bufio_copy(io, 0, TRIAL_RANGE, &copy);
	if (KCOM_FAILED(*why))
		return FALLBACK;
	kcom_bufio_release(copy);
	return NATIVE;
}

static enum verdict try_bufvec(kcom_bufio_t *io, kcom_error_t *why)
{
	kcom_bufvec_t *vec;
	*why = kcom_bufio_query(io, &kcom_bufvec_iid, (void **)&vec);
	if (KCOM_FAILED(*why))
		return FALLBACK;
	struct kcom_iovec iov[16];
	size_t count;
	*why = kcom_bufvec_map_vec(vec, 0, TRIAL_SIZE, KCOM_MAP_READ, iov, 16, &count);
	if (KCOM_SUCCEEDED(*why))
		kcom_bufvec_unmap_vec(vec, 0, TRIAL_SIZE, KCOM_MAP_READ, iov, count);
	kcom_bufvec_release(vec);
	return KCOM_SUCCEEDED(*why) ? NATIVE : FALLBACK;
}

/* The chain extension's IID is not defined in this build: no object can answer it yet. */
static enum verdict try_chain(kcom_bufio_t *io, kcom_error_t *why)
{
	kcom_chain_t *ch;
	*why = kcom_bufio_query(io, &kcom_chain_iid, (void **)&ch);
	if (KCOM_FAILED(*why))
		return FALLBACK;
	kcom_chain_release(ch);
	return NATIVE;
}

static const struct buffer_probe buffer_probes[] = {
	{ "map", KCOM_NATIVE_MAP, try_map },
	{ "wire", KCOM_NATIVE_WIRE, try_wire },
	{ "copy", KCOM_NATIVE_COPY, try_copy },
	{ "bufvec", KCOM_NATIVE_BUFVEC, try_bufvec },
	{ "chain", KCOM_NATIVE_CHAIN, try_chain },
};
#define NPROBES (sizeof(buffer_probes) / sizeof(buffer_probes[0]))

/* ---- what is learnt about one class ---- */

#define MAX_IFACES 32

struct report {
	const struct kcom_class *cls;
	char clsid[KCOM_GUID_STRLEN];
	const char *origin;                  /* "built-in", a module's file, or "registered" */
	kcom_error_t create_err;             /* the factory's answer */
	size_t nifaces;
	const char *iface_name[MAX_IFACES];  /* NULL: unnamed, show the GUID */
	char iface_guid[MAX_IFACES][KCOM_GUID_STRLEN];
	int buffer;                          /* answers bufio */
	kcom_error_t fill_err;               /* writing the trial bytes */
	enum verdict verdict[NPROBES];
	kcom_error_t why[NPROBES];
	int has_info;
	struct kcom_buffer_info info;
	int agrees[NPROBES];                 /* verdict matches buffer info (when has_info) */
	int consistent;
};

static const char *iface_name_of(const kcom_iid_t *iid)
{
	for (size_t k = 0; k < NKNOWN; k++)
		if (kcom_guid_equal(known_ifaces[k].iid, iid))
			return known_ifaces[k].name;
	return NULL;
}

static void add_iface(struct report *r, const kcom_iid_t *iid)
{
	char text[KCOM_GUID_STRLEN];
	kcom_guid_format(iid, text, sizeof(text));
	for (size_t i = 0; i < r->nifaces; i++)
		if (strcmp(r->iface_guid[i], text) == 0)
			return;
	if (r->nifaces == MAX_IFACES)
		return;
	r->iface_name[r->nifaces] = iface_name_of(iid);
	memcpy(r->iface_guid[r->nifaces], text, sizeof(text));
	r->nifaces++;
}

static void inspect(const struct kcom_class *cls, struct report *r)
{
	memset(r, 0, sizeof(*r));
	r->cls = cls;
	r->consistent = 1;
	kcom_guid_format(&cls->clsid, r->clsid, sizeof(r->clsid));
	kcom_module_t *m = kcom_module_of_class(cls);
	r->origin = m != NULL ? kcom_module_file(m) : "built-in";

	kcom_iunknown_t *obj;
	r->create_err = kcom_create(&cls->clsid, &kcom_iunknown_iid, (void **)&obj);
	if (KCOM_FAILED(r->create_err))
		return;

	/* Every IID we can name, and every IID the class lists: keep those the instance answers. */
	void *itf;
	for (size_t k = 0; k < NKNOWN; k++) {
		if (KCOM_SUCCEEDED(kcom_iunknown_query(obj, known_ifaces[k].iid, &itf))) {
			add_iface(r, known_ifaces[k].iid);
			kcom_iunknown_release(itf);
		}
	}
	for (const struct kcom_class_iface *f = cls->ifaces; f != NULL && f->iid != NULL; f++) {
		if (KCOM_SUCCEEDED(kcom_iunknown_query(obj, f->iid, &itf))) {
			add_iface(r, f->iid);
			kcom_iunknown_release(itf);
		}
	}

	kcom_bufio_t *io;
	if (KCOM_SUCCEEDED(kcom_iunknown_query(obj, &kcom_bufio_iid, (void **)&io))) {
		r->buffer = 1;
		static unsigned char bytes[TRIAL_SIZE];
		for (size_t i = 0; i < TRIAL_SIZE; i++)
			bytes[i] = (unsigned char)(i * 7u + 3u);
		size_t put = 0;
		r->fill_err = kcom_bufio_write(io, bytes, 0, TRIAL_SIZE, &put);
		if (KCOM_SUCCEEDED(r->fill_err) && put != TRIAL_SIZE)
			r->fill_err = KCOM_E_NOSPACE;
		for (size_t p = 0; p < NPROBES; p++)
			r->verdict[p] = buffer_probes[p].try(io, &r->why[p]);
		kcom_bufinfo_t *bi;
		if (KCOM_SUCCEEDED(kcom_bufio_query(io, &kcom_bufinfo_iid, (void **)&bi))) {
			r->has_info = KCOM_SUCCEEDED(kcom_bufinfo_get(bi, &r->info));
			kcom_bufinfo_release(bi);
		}
		for (size_t p = 0; p < NPROBES; p++) {
			r->agrees[p] = !r->has_info ||
			               ((r->info.natives & buffer_probes[p].native_bit) != 0) == (r->verdict[p] == NATIVE);
			if (!r->agrees[p])
				r->consistent = 0;
		}
		kcom_bufio_release(io);
	}
	kcom_iunknown_release(obj);
}

/* ---- output ---- */

/* Bytes in the well-formed UTF-8 sequence at s (RFC 3629: no overlong form, no surrogate), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n;
	unsigned long cp;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1fu;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0fu;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	static const unsigned long least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < least[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* A JSON string; a byte that is not part of well-formed UTF-8 (a path can hold any) is U+FFFD. */
static void json_string(const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	putchar('"');
	while (*s != '\0') {
		size_t n = utf8_len(s);
		if (n == 0) {
			fputs("\\ufffd", stdout);
			s++;
		} else if (*s == '"' || *s == '\\') {
			printf("\\%c", *s++);
		} else if (*s < 0x20) {
			printf("\\u%04x", *s++);
		} else {
			fwrite(s, 1, n, stdout);
			s += n;
		}
	}
	putchar('"');
}

static const struct {
	unsigned bit;
	const char *name;
} info_flags[] = {
	{ KCOM_BUFINFO_RESIZABLE, "resizable" }, { KCOM_BUFINFO_CONTIGUOUS, "contiguous" },
	{ KCOM_BUFINFO_PINNED, "pinned" },       { KCOM_BUFINFO_COW_SHARED, "cow-shared" },
	{ KCOM_BUFINFO_BACKED, "backed" },
};
#define NINFO_FLAGS (sizeof(info_flags) / sizeof(info_flags[0]))

static void print_json(const struct report *r, size_t n)
{
	printf("{\n  \"classes\": [");
	for (size_t i = 0; i < n; i++) {
		const struct report *c = &r[i];
		printf("%s\n    {\n      \"name\": ", i != 0 ? "," : "");
		json_string(c->cls->name);
		printf(",\n      \"clsid\": \"%s\",\n      \"origin\": ", c->clsid);
		json_string(c->origin);
		if (KCOM_FAILED(c->create_err)) {
			printf(",\n      \"error\": ");
			json_string(kcom_strerror(c->create_err));
			printf("\n    }");
			continue;
		}
		printf(",\n      \"interfaces\": [");
		for (size_t k = 0; k < c->nifaces; k++) {
			printf("%s\n        { \"name\": ", k != 0 ? "," : "");
			json_string(c->iface_name[k] != NULL ? c->iface_name[k] : c->iface_guid[k]);
			printf(", \"iid\": \"%s\" }", c->iface_guid[k]);
		}
		printf("\n      ],\n      \"buffer\": ");
		if (!c->buffer) {
			printf("null\n    }");
			continue;
		}
		printf("{");
		for (size_t p = 0; p < NPROBES; p++) {
			printf("%s\n        \"%s\": { \"native\": %s", p != 0 ? "," : "", buffer_probes[p].name,
			       c->verdict[p] == NATIVE ? "true" : "false");
			if (c->verdict[p] == FALLBACK) {
				printf(", \"refusal\": ");
				json_string(kcom_strerror(c->why[p]));
			}
			printf(", \"agrees_with_info\": %s }", c->agrees[p] ? "true" : "false");
		}
		printf(",\n        \"info\": ");
		if (c->has_info) {
			printf("{ \"name\": ");
			json_string(c->info.name);
			printf(", \"size\": %zu, \"flags\": [", c->info.size);
			int first = 1;
			for (size_t f = 0; f < NINFO_FLAGS; f++) {
				if (c->info.flags & info_flags[f].bit) {
					printf("%s\"%s\"", first ? "" : ", ", info_flags[f].name);
					first = 0;
				}
			}
			printf("], \"natives\": [");
			first = 1;
			for (size_t p = 0; p < NPROBES; p++) {
				if (c->info.natives & buffer_probes[p].native_bit) {
					printf("%s\"%s\"", first ? "" : ", ", buffer_probes[p].name);
					first = 0;
				}
			}
			printf("] }");
		} else {
			printf("null");
		}
		printf(",\n        \"consistent\": %s\n      }\n    }", c->consistent ? "true" : "false");
	}
	printf("\n  ]\n}\n");
}

/* The interfaces as "a, b, c" into buf. */
static const char *iface_list(const struct report *r, char *buf, size_t len)
{
	size_t at = 0;
	buf[0] = '\0';
	for (size_t k = 0; k < r->nifaces && at < len; k++) {
		int w = snprintf(buf + at, len - at, "%s%s", k != 0 ? "," : "",
		                 r->iface_name[k] != NULL ? r->iface_name[k] : r->iface_guid[k]);
		if (w < 0)
			break;
		at += (size_t)w;
	}
	return buf;
}

static const char *verdict_word(const struct report *r, size_t p)
{
	if (!r->buffer)
		return "-";
	if (!r->agrees[p])
		return r->verdict[p] == NATIVE ? "native!" : "fallback!";
	return r->verdict[p] == NATIVE ? "native" : "fallback";
}

/* One line per class, columns aligned to the widest cell. */
static void print_table(const struct report *r, size_t n)
{
	char ifaces[512];
	size_t wname = strlen("CLASS"), worigin = strlen("ORIGIN"), wverdict = strlen("fallback!");
	for (size_t i = 0; i < n; i++) {
		wname = strlen(r[i].cls->name) > wname ? strlen(r[i].cls->name) : wname;
		worigin = strlen(r[i].origin) > worigin ? strlen(r[i].origin) : worigin;
	}
	printf("%-*s  %-38s  %-*s", (int)wname, "CLASS", "CLSID", (int)worigin, "ORIGIN");
	for (size_t p = 0; p < NPROBES; p++) {
		char head[16];
		snprintf(head, sizeof(head), "%s", buffer_probes[p].name);
		for (char *h = head; *h != '\0'; h++)
			*h = (char)(*h >= 'a' && *h <= 'z' ? *h - 'a' + 'A' : *h);
		printf("  %-*s", (int)wverdict, head);
	}
	printf("  INTERFACES\n");
	for (size_t i = 0; i < n; i++) {
		printf("%-*s  %-38s  %-*s", (int)wname, r[i].cls->name, r[i].clsid, (int)worigin, r[i].origin);
		if (KCOM_FAILED(r[i].create_err)) {
			printf("  cannot create an instance: %s\n", kcom_strerror(r[i].create_err));
			continue;
		}
		for (size_t p = 0; p < NPROBES; p++)
			printf("  %-*s", (int)wverdict, verdict_word(&r[i], p));
		printf("  %s\n", iface_list(&r[i], ifaces, sizeof(ifaces)));
	}
	int mismatch = 0;
	for (size_t i = 0; i < n; i++)
		mismatch |= !r[i].consistent;
	if (mismatch)
		printf("\n'!': the trial and the object's buffer info disagree.\n");
}

/* Everything about one class, one fact a line. */
static void print_detail(const struct report *r)
{
	printf("%s\n  CLSID       %s\n  origin      %s\n", r->cls->name, r->clsid, r->origin);
	if (KCOM_FAILED(r->create_err)) {
		printf("  instance    cannot be created: %s\n", kcom_strerror(r->create_err));
		return;
	}
	for (size_t k = 0; k < r->nifaces; k++)
		printf("  %-11s %-9s %s\n", k == 0 ? "interfaces" : "", r->iface_name[k] != NULL ? r->iface_name[k] : "?",
		       r->iface_guid[k]);
	if (!r->buffer)
		return;
	for (size_t p = 0; p < NPROBES; p++) {
		printf("  %-11s %-9s %s", p == 0 ? "buffer" : "", buffer_probes[p].name,
		       r->verdict[p] == NATIVE ? "native" : "fallback to read/write");
		if (r->verdict[p] == FALLBACK)
			printf(" (%s)", kcom_strerror(r->why[p]));
		if (!r->agrees[p])
			printf("  [buffer info disagrees]");
		printf("\n");
	}
	if (r->has_info) {
		printf("  buffer info name \"%s\", size %zu, flags", r->info.name, r->info.size);
		int any = 0;
		for (size_t f = 0; f < NINFO_FLAGS; f++)
			if (r->info.flags & info_flags[f].bit) {
				printf(" %s", info_flags[f].name);
				any = 1;
			}
		printf("%s; %s the trials\n", any ? "" : " none", r->consistent ? "agrees with" : "DISAGREES with");
	} else {
		printf("  buffer info not answered\n");
	}
}

/* ---- modules ---- */

/* Loads every module in the folders of the module path; a bad one is a warning, not an end. */
static void load_path_modules(void)
{
	const char *env = getenv("KCOM_MODULE_PATH");
	size_t len = (env != NULL ? strlen(env) : 0) + strlen(kcom_module_dir()) + 2;
	char *dirs = malloc(len);
	if (dirs == NULL)
		return;
	snprintf(dirs, len, "%s%s%s", env != NULL ? env : "", env != NULL && *env != '\0' ? ":" : "", kcom_module_dir());
	char **tried = NULL; /* names already loaded (or refused): X.la and X.so are one module */
	size_t ntried = 0;
	char *save = NULL;
	for (char *dir = strtok_r(dirs, ":", &save); dir != NULL; dir = strtok_r(NULL, ":", &save)) {
		DIR *d = opendir(dir);
		if (d == NULL)
			continue;
		struct dirent *e;
		while ((e = readdir(d)) != NULL) {
			size_t n = strlen(e->d_name);
			const char *ext = strrchr(e->d_name, '.');
			if (ext == NULL || (strcmp(ext, ".la") != 0 && strcmp(ext, ".so") != 0) || n > 255)
				continue;
			char name[256];
			memcpy(name, e->d_name, (size_t)(ext - e->d_name));
			name[ext - e->d_name] = '\0';
			int seen = 0;
			for (size_t t = 0; t < ntried && !seen; t++)
				seen = strcmp(tried[t], name) == 0;
			char **more = seen ? NULL : realloc(tried, (ntried + 1) * sizeof(*tried));
			if (more == NULL)
				continue;
			tried = more;
			if ((tried[ntried] = strdup(name)) == NULL)
				continue;
			ntried++;
			kcom_module_t *m;
			/* By name: the first folder of the path that has it wins, as for every client. */
			if (KCOM_FAILED(kcom_module_load(name, &m)))
				fprintf(stderr, "kcom-inspect: warning: %s\n", kcom_module_error());
		}
		closedir(d);
	}
	for (size_t t = 0; t < ntried; t++)
		free(tried[t]);
	free(tried);
	free(dirs);
}

static void usage(FILE *to)
{
	fprintf(to, "usage: kcom-inspect [--json] [--module FILE]... [NAME-OR-CLSID]\n"
	            "Lists kcom's classes (built in and from modules), the interfaces their objects answer,\n"
	            "and which buffer methods they do natively.  See kcom-inspect(1).\n");
}

int main(int argc, char **argv)
{
	int json = 0, explicit_modules = 0;
	const char *want = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			json = 1;
		} else if (strcmp(argv[i], "--module") == 0 || strncmp(argv[i], "--module=", 9) == 0) {
			const char *file = argv[i][8] == '=' ? argv[i] + 9 : (i + 1 < argc ? argv[++i] : NULL);
			if (file == NULL) {
				usage(stderr);
				return 2;
			}
			kcom_module_t *m;
			if (KCOM_FAILED(kcom_module_load(file, &m))) {
				fprintf(stderr, "kcom-inspect: %s\n", kcom_module_error());
				return 1;
			}
			explicit_modules = 1;
		} else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "kcom-inspect: unknown option %s\n", argv[i]);
			usage(stderr);
			return 2;
		} else if (want == NULL) {
			want = argv[i];
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!explicit_modules)
		load_path_modules();

	size_t n = 0;
	const struct kcom_class *cls;
	while (KCOM_SUCCEEDED(kcom_class_enum(n, &cls)))
		n++;
	struct report *reports = calloc(n != 0 ? n : 1, sizeof(*reports));
	if (reports == NULL) {
		fprintf(stderr, "kcom-inspect: out of memory\n");
		return 1;
	}
	kcom_guid_t want_id;
	int by_id = want != NULL && KCOM_SUCCEEDED(kcom_guid_parse(want, &want_id));
	size_t shown = 0;
	for (size_t i = 0; i < n && KCOM_SUCCEEDED(kcom_class_enum(i, &cls)); i++) {
		if (want != NULL && strcmp(cls->name, want) != 0 && !(by_id && kcom_guid_equal(&cls->clsid, &want_id)))
			continue;
		inspect(cls, &reports[shown++]);
	}
	if (want != NULL && shown == 0) {
		fprintf(stderr, "kcom-inspect: no class named or with the ID '%s' (run kcom-inspect to list them)\n", want);
		free(reports);
		return 1;
	}
	if (json)
		print_json(reports, shown);
	else if (want != NULL)
		for (size_t i = 0; i < shown; i++)
			print_detail(&reports[i]);
	else
		print_table(reports, shown);
	free(reports);
	return 0;
}
