/* The ABI conformance program (runtime/testdata/conform/job) in C
 * (conform_lazy.c builds it with lazy columns). */
#define COVE_DEFINE_EXPORTS
#include "cove.h"

static cove_emitter rows_out, kern_out;

static uint32_t key1(const char *a) { cove_str p[1] = {cove_s(a)}; return cove_key_join(p, 1); }
static uint32_t key2(const char *a, cove_str b) { cove_str p[2] = {cove_s(a), b}; return cove_key_join(p, 2); }

int cove_process(const cove_batch *b) {
	cove_emitter_init(&rows_out, "rows");
	cove_emitter_init(&kern_out, "kern");
	int ci64 = cove_col(b, "i64"), ci32 = cove_col(b, "i32"), cf64 = cove_col(b, "f64"), cs = cove_col(b, "s");
	int cb = cove_col(b, "b"), cd = cove_col(b, "d"), cts = cove_col(b, "ts"), cdt = cove_col(b, "dt");
	if (ci64 < 0 || ci32 < 0 || cf64 < 0 || cs < 0 || cb < 0 || cd < 0 || cts < 0 || cdt < 0) return 1;
	const cove_column *i64 = cove_column_get(b, ci64), *i32 = cove_column_get(b, ci32), *f64 = cove_column_get(b, cf64);
	const cove_column *s = cove_column_get(b, cs), *bo = cove_column_get(b, cb), *d = cove_column_get(b, cd);
	const cove_column *ts = cove_column_get(b, cts), *dt = cove_column_get(b, cdt);
	for (uint32_t i = 0; i < b->rows; i++) {
		if (!cove_is_null(i64, i)) cove_add(&rows_out, i, key1("i64"), (double)cove_i64(i64, i));
		if (!cove_is_null(i32, i)) cove_add(&rows_out, i, key1("i32"), (double)cove_i32(i32, i));
		if (!cove_is_null(f64, i)) cove_add(&rows_out, i, key1("f64"), cove_f64(f64, i));
		if (!cove_is_null(s, i)) cove_add(&rows_out, i, key2("s", cove_utf8(s, i)), 1);
		if (!cove_is_null(bo, i)) cove_add(&rows_out, i, key2("b", cove_s(cove_bool(bo, i) ? "true" : "false")), 1);
		if (!cove_is_null(d, i)) cove_add(&rows_out, i, key2("d", cove_utf8(d, i)), 1);
		if (!cove_is_null(ts, i)) cove_add(&rows_out, i, key1("ts"), (double)cove_i64(ts, i));
		if (!cove_is_null(dt, i)) cove_add(&rows_out, i, key1("dt"), (double)cove_days(dt, i));
	}
	cove_flush(&rows_out);

	uint32_t cols[2];
	uint32_t h = cove_where_f64(cove_not_null(COVE_ALL, cf64), cf64, COVE_GT, 0);
	cols[0] = cs, cols[1] = ci32;
	cove_k_emit(kern_out.id, cove_k_bucket(h, cols, 2), cf64);

	h = cove_where_str(COVE_ALL, cd, COVE_EQ, "yy");
	cols[0] = cd, cols[1] = cb;
	cove_k_emit(kern_out.id, cove_k_bucket(h, cols, 2), COVE_NO_COLUMN);

	h = cove_where_i64(cove_where_i64(COVE_ALL, cts, COVE_GE, 2000), ci64, COVE_NE, 7);
	cols[0] = cdt;
	cove_k_emit(kern_out.id, cove_k_bucket(h, cols, 1), ci64);

	uint32_t *even = malloc(4 * (b->rows / 2 + 1));
	uint32_t n = 0;
	for (uint32_t i = 0; i < b->rows; i += 2) even[n++] = i;
	cove_k_emit(kern_out.id, cove_k_bucket(cove_k_select(even, n), cols, 0), ci32);
	free(even);

	cols[0] = cb;
	cove_k_emit(kern_out.id, cove_k_bucket(cove_null(COVE_ALL, cs), cols, 1), cts);

	h = cove_where_i64(cove_where_str(COVE_ALL, cs, COVE_LT, "b"), cb, COVE_EQ, 1);
	cols[0] = cf64;
	cove_k_emit(kern_out.id, cove_k_bucket(h, cols, 1), COVE_NO_COLUMN);

	cols[0] = cd;
	uint32_t g = cove_k_bucket(COVE_ALL, cols, 1), len = cove_k_len(g);
	uint32_t *idx = malloc(4 * (len + 1));
	cove_k_read(g, 0, 0, idx, len);
	double sum = 0;
	for (uint32_t j = 0; j < len; j++) sum += idx[j];
	uint32_t *ids = malloc(4 * (len + 1));
	uint32_t nids = cove_k_read(g, 1, 0, ids, len);
	if (b->rows > 0) {
		cove_add(&kern_out, 0, key1("len"), (double)len);
		cove_add(&kern_out, 0, key1("sumidx"), sum);
		cove_add(&kern_out, 0, key1("keyids"), (double)nids);
	}
	free(idx);
	free(ids);
	cove_flush(&kern_out);
	return 0;
}
