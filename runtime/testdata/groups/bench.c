/*
 * bench.c is the per-unit benchmark's guest: for each unit it sums column 0
 * (int64), writes the sum over the first d bytes of a scratch buffer (d is
 * row 0's value of column 1: the memory it dirties, beside its stack and
 * the batch region) and emits one contribution, the sum, to key "k".
 */
#define COVE_DEFINE_EXPORTS
#define COVE_EMIT_BUF 16
#include "cove.h"

static unsigned char scratch[1 << 20];

int cove_process(const cove_batch *b) {
	static cove_emitter e;
	cove_emitter_init(&e, "out");
	if (b->rows == 0) return 0;
	const cove_column *v = cove_column_get(b, 0);
	int64_t sum = 0;
	for (uint32_t r = 0; r < b->rows; r++) sum += cove_i64(v, r);
	size_t d = (size_t)cove_i64(cove_column_get(b, 1), 0);
	if (d > sizeof scratch) d = sizeof scratch;
	memset(scratch, (int)(sum & 0xff), d);
	cove_add(&e, 0, cove_key("k", 1), (double)sum + (double)scratch[d ? d - 1 : 0]);
	cove_flush(&e);
	return 0;
}
