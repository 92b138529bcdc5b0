/*
 * cove.h: the Cove guest ABI, version 1, for C (docs/abi.md).
 *
 * A job is a WASI reactor built with
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -o job.wasm job.c
 *
 * Define COVE_DEFINE_EXPORTS in exactly one file before including this
 * header and write
 *
 *   int cove_process(const cove_batch *b);   // 0 = success
 *
 * The header then defines the exports cove_abi_version, cove_alloc and
 * cove_batch. Everything else is static inline: column access over the batch
 * region (read in place, never copied), key interning, buffered emits, and
 * the host kernels (filter, bucket, emit over the batch's Arrow buffers on
 * the host, without a host call per row).
 *
 * Lazy columns (docs/abi.md, "Lazy columns"): define COVE_LAZY_COLUMNS
 * beside COVE_DEFINE_EXPORTS and the header asks the host for lazy batch
 * regions (export cove_features): a column's data is copied in (import
 * "column") the first time cove_column_get returns it in a batch, so a job
 * copies only the columns it reads, and a kernels-only job none. Read
 * columns through cove_column_get, which works either way; with lazy
 * columns, b->cols[i] has only its name and type until then.
 *
 * Modes (the manifest's mode:). A C job runs in
 *
 *   - unit mode: the host calls cove_batch once per privacy unit, with
 *     only that unit's rows, and restores the module's whole state (linear
 *     memory, globals: statics, the heap, everything) to the snapshot taken
 *     after _initialize before every call. A job sees fresh state each
 *     time and can keep nothing from one unit to the next; memory has a
 *     fixed size (memory.grow fails past the manifest's guest.memory_mib);
 *     each call has a CPU limit. A unit whose call fails (nonzero return,
 *     trap, refused host call, time) contributes nothing. Emit as in batch
 *     mode (cove_add, cove_emit, the kernels). For per-row logic a plan
 *     cannot say.
 *   - block mode: the same, once per block of units (k disjoint blocks,
 *     chosen by the host), from the same snapshot each time; instead of
 *     emitting, the job hands each block output's vector once per block
 *     with cove_result (or cove_block_result), as many doubles as the
 *     output's dimension. The host clamps them and releases their mean
 *     over the blocks. For whole-sample estimates (regressions).
 *   - batch mode (mock-data runs only): cove_batch gets each record batch
 *     whole, and state persists from batch to batch.
 * Plan mode, the default, needs a planning call (export cove_plan), which
 * this header does not provide: write the plan in the manifest instead, or
 * use the Go SDK. The same C code can serve unit and batch mode.
 *
 * A refused host call stops the guest: the functions below return only
 * successful values. Nothing here prints; stdout and stderr reach an
 * operator only on mock-data runs.
 */
#ifndef COVE_H
#define COVE_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define COVE_ABI_VERSION 1

/* Column type codes. */
enum {
	COVE_INT64 = 1,
	COVE_INT32 = 2,
	COVE_FLOAT64 = 3,
	COVE_UTF8 = 4,
	COVE_BOOL = 5,
	COVE_DICT_UTF8 = 6,
	COVE_TIMESTAMP_S = 7,
	COVE_TIMESTAMP_MS = 8,
	COVE_TIMESTAMP_US = 9,
	COVE_TIMESTAMP_NS = 10,
	COVE_DATE32 = 11,
	COVE_DATE64 = 12
};

/* Filter operators of cove_k_filter. Nulls never pass a comparison. */
enum { COVE_NOT_NULL = 0, COVE_EQ, COVE_NE, COVE_LT, COVE_LE, COVE_GT, COVE_GE, COVE_IS_NULL };

#define COVE_ALL 0u                /* the handle of every row of the batch */
#define COVE_NO_COLUMN 0xffffffffu /* cove_k_emit: count (every value 1) */
#define COVE_KEY_SEPARATOR '\x1f'

/* Imports, module "cove". */
#define COVE_IMPORT(name) __attribute__((import_module("cove"), import_name(name)))
COVE_IMPORT("output") uint32_t cove_output(const char *name, uint32_t len);
COVE_IMPORT("key") uint32_t cove_key(const void *key, uint32_t len);
COVE_IMPORT("emit")
void cove_emit(uint32_t output, const uint32_t *rows, const uint32_t *keys, const double *values, uint32_t n);
COVE_IMPORT("k_filter") uint32_t cove_k_filter(uint32_t sel, uint32_t col, uint32_t op, const void *arg, uint32_t len);
COVE_IMPORT("k_bucket") uint32_t cove_k_bucket(uint32_t sel, const uint32_t *cols, uint32_t ncols);
COVE_IMPORT("k_emit") void cove_k_emit(uint32_t output, uint32_t handle, uint32_t value_col);
COVE_IMPORT("k_select") uint32_t cove_k_select(const uint32_t *rows, uint32_t n);
COVE_IMPORT("k_len") uint32_t cove_k_len(uint32_t handle);
COVE_IMPORT("k_read") uint32_t cove_k_read(uint32_t handle, uint32_t what, uint32_t from, uint32_t *dst, uint32_t n);
/* Block mode: the current block's vector for a block output (n doubles,
 * the output's dimension, 8-aligned), once per output and block. A job
 * that never calls it does not import it. */
COVE_IMPORT("result") void cove_result(uint32_t output, const double *values, uint32_t n);
#ifdef COVE_LAZY_COLUMNS
COVE_IMPORT("column") void cove_column_import(uint32_t col, void *dst, uint32_t len);
#endif

#ifndef COVE_MAX_COLUMNS
#define COVE_MAX_COLUMNS 64
#endif

typedef struct {
	const char *ptr;
	uint32_t len;
} cove_str;

typedef struct {
	cove_str name;
	uint32_t type;
	const uint8_t *validity; /* NULL: no row is null */
	const uint8_t *values;
	uint32_t values_len;
	const uint8_t *data; /* utf8 bytes; dictionary: the dictionary's bytes */
	uint32_t data_len;
	uint32_t dict_len;           /* dictionary entries */
	const int32_t *dict_offsets; /* dict_len+1 */
} cove_column;

typedef struct {
	uint32_t rows, ncols;
	cove_column cols[COVE_MAX_COLUMNS];
	/* Lazy regions: which columns are copied in, and the lengths of each
	 * column's validity, values and data (the lazy descriptor's). */
	uint32_t lazy;
	uint32_t loaded[(COVE_MAX_COLUMNS + 31) / 32];
	uint32_t lens[COVE_MAX_COLUMNS][3];
} cove_batch;

static inline uint32_t cove__u32(const uint8_t *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* cove__check checks a column's buffers against its type and rows (and
 * finds a dictionary's entries); 0 when they are sound. */
static inline int cove__check(cove_column *c, uint32_t rows) {
	uint64_t bitmap = ((uint64_t)rows + 7) / 8;
	uint64_t want;
	switch (c->type) {
	case COVE_INT64: case COVE_FLOAT64: case COVE_TIMESTAMP_S: case COVE_TIMESTAMP_MS:
	case COVE_TIMESTAMP_US: case COVE_TIMESTAMP_NS: case COVE_DATE64:
		want = 8ull * rows; break;
	case COVE_INT32: case COVE_DATE32: case COVE_DICT_UTF8:
		want = 4ull * rows; break;
	case COVE_BOOL: want = bitmap; break;
	case COVE_UTF8: want = 4ull * rows + 4; break;
	default: return -1;
	}
	if (c->values_len != want) return -1;
	if (c->type == COVE_UTF8) {
		const int32_t *o = (const int32_t *)c->values;
		for (uint32_t r = 0; r <= rows; r++)
			if (o[r] < (r ? o[r - 1] : 0) || (uint32_t)o[r] > c->data_len) return -1;
	}
	if (c->type == COVE_DICT_UTF8) {
		if (c->data_len < 8) return -1;
		uint32_t n = cove__u32(c->data);
		if ((uint64_t)8 + 4ull * (n + 1) > c->data_len) return -1;
		c->dict_len = n;
		c->dict_offsets = (const int32_t *)(c->data + 8);
		uint32_t start = (8 + 4 * (n + 1) + 7) & ~7u;
		uint32_t bytes = c->data_len > start ? c->data_len - start : 0;
		for (uint32_t j = 0; j <= n; j++)
			if (c->dict_offsets[j] < (j ? c->dict_offsets[j - 1] : 0) || (uint32_t)c->dict_offsets[j] > bytes) return -1;
		c->data += start;
		c->data_len = bytes;
		const int32_t *ix = (const int32_t *)c->values;
		for (uint32_t r = 0; r < rows; r++)
			if ((ix[r] < 0 || (uint32_t)ix[r] >= n) && !(ix[r] == 0 && n == 0)) return -1;
	}
	return 0;
}

/* cove_decode parses a batch region; 0 on success. */
static inline int cove_decode(cove_batch *b, const uint8_t *region, uint32_t size) {
	if (size < 16 || cove__u32(region) != COVE_ABI_VERSION || cove__u32(region + 12) != size) return -1;
	b->rows = cove__u32(region + 4);
	b->ncols = cove__u32(region + 8);
	b->lazy = 0;
	if (b->ncols > COVE_MAX_COLUMNS || (uint64_t)16 + 32ull * b->ncols > size) return -1;
	uint64_t bitmap = ((uint64_t)b->rows + 7) / 8;
	for (uint32_t i = 0; i < b->ncols; i++) {
		const uint8_t *d = region + 16 + 32 * i;
		uint32_t f[8];
		for (int k = 0; k < 8; k++) f[k] = cove__u32(d + 4 * k);
		for (int k = 0; k < 8; k += 2)
			if ((uint64_t)f[k] + f[k + 1] > size) return -1;
		if (f[3] && (uint64_t)f[3] + bitmap > size) return -1;
		if (f[4] % 8) return -1;
		cove_column *c = &b->cols[i];
		memset(c, 0, sizeof *c);
		c->name.ptr = (const char *)region + f[0];
		c->name.len = f[1];
		c->type = f[2];
		c->validity = f[3] ? region + f[3] : NULL;
		c->values = region + f[4];
		c->values_len = f[5];
		c->data = region + f[6];
		c->data_len = f[7];
		if (f[6] % 8 && c->type == COVE_DICT_UTF8) return -1;
		if (cove__check(c, b->rows) != 0) return -1;
	}
	return 0;
}

/* cove_decode_lazy parses a lazy batch region (names, types and lengths;
 * no data); 0 on success. */
static inline int cove_decode_lazy(cove_batch *b, const uint8_t *region, uint32_t size) {
	if (size < 16 || cove__u32(region) != COVE_ABI_VERSION || cove__u32(region + 12) != size) return -1;
	b->rows = cove__u32(region + 4);
	b->ncols = cove__u32(region + 8);
	b->lazy = 1;
	memset(b->loaded, 0, sizeof b->loaded);
	if (b->ncols > COVE_MAX_COLUMNS || (uint64_t)16 + 32ull * b->ncols > size) return -1;
	uint64_t bitmap = ((uint64_t)b->rows + 7) / 8;
	for (uint32_t i = 0; i < b->ncols; i++) {
		const uint8_t *d = region + 16 + 32 * i;
		uint32_t f[8];
		for (int k = 0; k < 8; k++) f[k] = cove__u32(d + 4 * k);
		if ((uint64_t)f[0] + f[1] > size || (f[3] != 0 && f[3] != bitmap)) return -1;
		cove_column *c = &b->cols[i];
		memset(c, 0, sizeof *c);
		c->name.ptr = (const char *)region + f[0];
		c->name.len = f[1];
		c->type = f[2];
		b->lens[i][0] = f[3], b->lens[i][1] = f[5], b->lens[i][2] = f[7];
	}
	return 0;
}

#ifdef COVE_LAZY_COLUMNS
/* cove__load copies column i of a lazy batch in, into a buffer kept for
 * column i from batch to batch. A block the host sent unsound traps. */
static inline void cove__load(cove_batch *b, uint32_t i) {
	static uint64_t *bufs[COVE_MAX_COLUMNS];
	static size_t caps[COVE_MAX_COLUMNS];
	static uint64_t empty;
	const uint32_t *l = b->lens[i];
	size_t pv = ((size_t)l[0] + 7) & ~(size_t)7, pa = ((size_t)l[1] + 7) & ~(size_t)7, pd = ((size_t)l[2] + 7) & ~(size_t)7;
	size_t n = pv + pa + pd;
	uint8_t *dst = (uint8_t *)&empty;
	if (n) {
		if (n > caps[i]) {
			free(bufs[i]);
			bufs[i] = aligned_alloc(8, n);
			caps[i] = bufs[i] ? n : 0;
			if (!bufs[i]) __builtin_trap();
		}
		dst = (uint8_t *)bufs[i];
	}
	cove_column_import(i, dst, (uint32_t)n);
	cove_column *c = &b->cols[i];
	c->validity = l[0] ? dst : NULL;
	c->values = dst + pv;
	c->values_len = l[1];
	c->data = dst + pv + pa;
	c->data_len = l[2];
	if (cove__check(c, b->rows) != 0) __builtin_trap();
	b->loaded[i >> 5] |= 1u << (i & 31);
}
#endif

/* cove_column_get is column i (0 <= i < ncols) of the batch, its data
 * copied in first when the batch is lazy. */
static inline const cove_column *cove_column_get(const cove_batch *b, int i) {
#ifdef COVE_LAZY_COLUMNS
	if (b->lazy && !(b->loaded[(uint32_t)i >> 5] >> ((uint32_t)i & 31) & 1)) cove__load((cove_batch *)b, (uint32_t)i);
#endif
	return &b->cols[i];
}

/* cove_col is the index of the column named name, or -1. */
static inline int cove_col(const cove_batch *b, const char *name) {
	size_t n = strlen(name);
	for (uint32_t i = 0; i < b->ncols; i++)
		if (b->cols[i].name.len == n && memcmp(b->cols[i].name.ptr, name, n) == 0) return (int)i;
	return -1;
}

static inline int cove_is_null(const cove_column *c, uint32_t r) {
	return c->validity && !(c->validity[r >> 3] & (1u << (r & 7)));
}
/* int64, timestamps, date64 */
static inline int64_t cove_i64(const cove_column *c, uint32_t r) { return ((const int64_t *)c->values)[r]; }
/* int32, date32 */
static inline int32_t cove_i32(const cove_column *c, uint32_t r) { return ((const int32_t *)c->values)[r]; }
static inline double cove_f64(const cove_column *c, uint32_t r) { return ((const double *)c->values)[r]; }
static inline int cove_bool(const cove_column *c, uint32_t r) { return (c->values[r >> 3] >> (r & 7)) & 1; }
/* utf8 or dictionary utf8: a view into the batch region. */
static inline cove_str cove_utf8(const cove_column *c, uint32_t r) {
	const int32_t *o = (const int32_t *)c->values;
	if (c->type == COVE_DICT_UTF8) {
		o = c->dict_offsets;
		r = (uint32_t)((const int32_t *)c->values)[r];
		if (r >= c->dict_len) return (cove_str){"", 0};
	}
	return (cove_str){(const char *)c->data + o[r], (uint32_t)(o[r + 1] - o[r])};
}
/* date32 or date64 as days since 1970-01-01 */
static inline int64_t cove_days(const cove_column *c, uint32_t r) {
	if (c->type == COVE_DATE32) return cove_i32(c, r);
	int64_t v = cove_i64(c, r), q = v / 86400000;
	return (v % 86400000 < 0) ? q - 1 : q;
}

/* cove_key_join interns the key made of n parts joined by U+001F (a U+001F
 * inside a part becomes U+FFFD), exactly like the Go SDK's guest.Key. */
static inline uint32_t cove_key_join(const cove_str *parts, int n) {
	static char buf[4096 * 3 + 64];
	uint32_t len = 0;
	for (int i = 0; i < n; i++) {
		if (i && len < sizeof buf) buf[len++] = COVE_KEY_SEPARATOR;
		for (uint32_t j = 0; j < parts[i].len && len + 3 <= sizeof buf; j++) {
			char ch = parts[i].ptr[j];
			if (ch == COVE_KEY_SEPARATOR) {
				buf[len++] = (char)0xEF; buf[len++] = (char)0xBF; buf[len++] = (char)0xBD;
			} else {
				buf[len++] = ch;
			}
		}
	}
	return cove_key(buf, len);
}

static inline cove_str cove_s(const char *s) { return (cove_str){s, (uint32_t)strlen(s)}; }

/* An emitter buffers contributions (row, key id, value) to one output and
 * hands them to the host in one call per COVE_EMIT_BUF of them. */
#ifndef COVE_EMIT_BUF
#define COVE_EMIT_BUF 8192
#endif
typedef struct {
	uint32_t id, n;
	uint32_t rows[COVE_EMIT_BUF];
	uint32_t keys[COVE_EMIT_BUF];
	double values[COVE_EMIT_BUF];
} cove_emitter;

static inline void cove_emitter_init(cove_emitter *e, const char *output) {
	e->id = cove_output(output, (uint32_t)strlen(output));
	e->n = 0;
}
static inline void cove_flush(cove_emitter *e) {
	if (e->n) cove_emit(e->id, e->rows, e->keys, e->values, e->n);
	e->n = 0;
}
static inline void cove_add(cove_emitter *e, uint32_t row, uint32_t key, double value) {
	e->rows[e->n] = row;
	e->keys[e->n] = key;
	e->values[e->n] = value;
	if (++e->n == COVE_EMIT_BUF) cove_flush(e);
}

/* cove_block_result hands the current block's vector v (n values) for the
 * block output named output (block mode). */
static inline void cove_block_result(const char *output, const double *v, uint32_t n) {
	cove_result(cove_output(output, (uint32_t)strlen(output)), v, n);
}

/* Kernels. */
static inline uint32_t cove_where_i64(uint32_t sel, uint32_t col, uint32_t op, int64_t v) {
	return cove_k_filter(sel, col, op, &v, 8);
}
static inline uint32_t cove_where_f64(uint32_t sel, uint32_t col, uint32_t op, double v) {
	return cove_k_filter(sel, col, op, &v, 8);
}
static inline uint32_t cove_where_str(uint32_t sel, uint32_t col, uint32_t op, const char *v) {
	return cove_k_filter(sel, col, op, v, (uint32_t)strlen(v));
}
static inline uint32_t cove_not_null(uint32_t sel, uint32_t col) { return cove_k_filter(sel, col, COVE_NOT_NULL, 0, 0); }
static inline uint32_t cove_null(uint32_t sel, uint32_t col) { return cove_k_filter(sel, col, COVE_IS_NULL, 0, 0); }

int cove_process(const cove_batch *b);

#ifdef COVE_DEFINE_EXPORTS
static void *cove__region;
static cove_batch cove__batch;

__attribute__((export_name("cove_abi_version"))) uint32_t cove__abi_version(void) { return COVE_ABI_VERSION; }

static uint32_t cove__lazy;
#ifdef COVE_LAZY_COLUMNS
/* Lazy columns, when the host offers them (bit 1). */
__attribute__((export_name("cove_features"))) uint32_t cove__features(uint32_t offered) {
	cove__lazy = offered & 1;
	return cove__lazy;
}
#endif

/* One region, grown when a batch needs more, reused batch after batch: the
 * views of a batch (cove_str, column pointers) are valid until the next. */
static size_t cove__cap;

__attribute__((export_name("cove_alloc"))) uint8_t *cove__alloc(uint32_t size) {
	size_t need = ((size_t)size + 15) & ~(size_t)7;
	if (need > cove__cap) {
		free(cove__region);
		cove__region = aligned_alloc(8, need);
		cove__cap = cove__region ? need : 0;
	}
	return cove__region;
}

__attribute__((export_name("cove_batch"))) uint32_t cove__batch_export(const uint8_t *ptr, uint32_t size) {
	if (!ptr || ptr != cove__region) return 1;
	if ((cove__lazy ? cove_decode_lazy(&cove__batch, ptr, size) : cove_decode(&cove__batch, ptr, size)) != 0) return 1;
	return cove_process(&cove__batch) == 0 ? 0 : 1;
}
#endif

#endif /* COVE_H */
