/*
 * The cross-block attack (mode block): a block's vector says whether the
 * target (a value of 462) was in this block or in any block the guest saw
 * before, through a static. From a restored snapshot only the target's own
 * block can say so; with state kept across blocks every later block would.
 */
#define COVE_DEFINE_EXPORTS
#include "cove.h"

static int seen;

int cove_process(const cove_batch *b) {
	int c = cove_col(b, "v");
	if (c < 0) return 1;
	for (uint32_t i = 0; i < b->rows; i++) {
		if (!cove_is_null(&b->cols[c], i) && cove_f64(&b->cols[c], i) == 462) seen = 1;
	}
	double v[1] = {seen ? 1.0 : 0.0};
	cove_block_result("flag", v, 1);
	return 0;
}
