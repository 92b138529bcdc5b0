/* Per-row sum of column pm in C (benchmark). */
#define COVE_DEFINE_EXPORTS
#include "cove.h"

static cove_emitter out;

int cove_process(const cove_batch *b) {
	int cp = cove_col(b, "pm");
	if (cp < 0) return 1;
	const cove_column *pm = &b->cols[cp];
	cove_emitter_init(&out, "out");
	uint32_t key = cove_key("all", 3);
	for (uint32_t i = 0; i < b->rows; i++)
		if (!cove_is_null(pm, i)) cove_add(&out, i, key, cove_f64(pm, i));
	cove_flush(&out);
	return 0;
}
