/*
 * The airquality job in C: the mean PM2.5 per station and year (output
 * pm25_mean), skipping null readings, with per-row logic in the guest.
 * Build (go generate ./examples does):
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -I sdk/guest/c -o job.wasm job.c
 */
#define COVE_DEFINE_EXPORTS
#include "cove.h"

static cove_emitter out;

int cove_process(const cove_batch *b) {
	int cs = cove_col(b, "station"), cy = cove_col(b, "year"), cp = cove_col(b, "PM2.5");
	if (cs < 0 || cy < 0 || cp < 0 || b->cols[cy].type != COVE_INT64 || b->cols[cp].type != COVE_FLOAT64) return 1;
	const cove_column *station = &b->cols[cs], *year = &b->cols[cy], *pm = &b->cols[cp];
	cove_emitter_init(&out, "pm25_mean");
	/* Rows come ordered by station and time: intern a key only when it changes. */
	cove_str last = {0, 0};
	int64_t last_year = -1;
	uint32_t key = 0;
	for (uint32_t i = 0; i < b->rows; i++) {
		if (cove_is_null(pm, i)) continue;
		cove_str s = cove_utf8(station, i);
		int64_t y = cove_i64(year, i);
		if (y != last_year || s.len != last.len || !last.ptr || memcmp(s.ptr, last.ptr, s.len) != 0) {
			char digits[24];
			int n = 0;
			uint64_t v = y < 0 ? (uint64_t)(-y) : (uint64_t)y;
			do { digits[sizeof digits - 1 - n++] = (char)('0' + v % 10); v /= 10; } while (v);
			if (y < 0) digits[sizeof digits - 1 - n++] = '-';
			cove_str parts[2] = {s, {digits + sizeof digits - n, (uint32_t)n}};
			key = cove_key_join(parts, 2);
			last = s;
			last_year = y;
		}
		cove_add(&out, i, key, cove_f64(pm, i));
	}
	cove_flush(&out);
	return 0;
}
