/* Per-row filter (pm not null, year >= 2014) and group by station, year in C
 * (benchmark). */
#define COVE_DEFINE_EXPORTS
#include "cove.h"

static cove_emitter out;

int cove_process(const cove_batch *b) {
	int cs = cove_col(b, "station"), cy = cove_col(b, "year"), cp = cove_col(b, "pm");
	if (cs < 0 || cy < 0 || cp < 0) return 1;
	const cove_column *station = &b->cols[cs], *year = &b->cols[cy], *pm = &b->cols[cp];
	cove_emitter_init(&out, "out");
	cove_str last = {0, 0};
	int64_t last_year = -1;
	uint32_t key = 0;
	for (uint32_t i = 0; i < b->rows; i++) {
		int64_t y = cove_i64(year, i);
		if (cove_is_null(pm, i) || y < 2014) continue;
		cove_str s = cove_utf8(station, i);
		if (y != last_year || s.len != last.len || !last.ptr || memcmp(s.ptr, last.ptr, s.len) != 0) {
			char d[24];
			int n = 0;
			uint64_t v = (uint64_t)y;
			do { d[sizeof d - 1 - n++] = (char)('0' + v % 10); v /= 10; } while (v);
			cove_str parts[2] = {s, {d + sizeof d - n, (uint32_t)n}};
			key = cove_key_join(parts, 2);
			last = s;
			last_year = y;
		}
		cove_add(&out, i, key, cove_f64(pm, i));
	}
	cove_flush(&out);
	return 0;
}
