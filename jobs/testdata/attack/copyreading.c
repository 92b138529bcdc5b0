/*
 * The reading-copy attack: find one hourly reading (Dongsi, 2015-01-15
 * 14:00) in what the guest is given and emit its PM2.5 on behalf of every
 * row. It keeps what it found in a static (linear memory), so in unit mode
 * it also tries to carry the reading from the target's call to later units.
 * On whole batches (mode batch) it moves every station's mean to the
 * reading; per unit, from a restored snapshot, it can move only the
 * target's own contribution.
 */
#define COVE_DEFINE_EXPORTS
#include "cove.h"

static int found;
static double reading;
static cove_emitter out;

static int is(cove_str s, const char *lit) {
	uint32_t n = (uint32_t)strlen(lit);
	return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

int cove_process(const cove_batch *b) {
	int cs = cove_col(b, "station"), cy = cove_col(b, "year"), cm = cove_col(b, "month"), cd = cove_col(b, "day"),
	    ch = cove_col(b, "hour"), cp = cove_col(b, "PM2.5");
	if (cs < 0 || cy < 0 || cm < 0 || cd < 0 || ch < 0 || cp < 0) return 1;
	const cove_column *st = &b->cols[cs], *pm = &b->cols[cp];
	for (uint32_t i = 0; i < b->rows; i++) {
		if (is(cove_utf8(st, i), "Dongsi") && cove_i64(&b->cols[cy], i) == 2015 && cove_i64(&b->cols[cm], i) == 1 &&
		    cove_i64(&b->cols[cd], i) == 15 && cove_i64(&b->cols[ch], i) == 14) {
			found = 1;
			reading = cove_f64(pm, i);
		}
	}
	cove_emitter_init(&out, "pm25_mean");
	for (uint32_t i = 0; i < b->rows; i++) {
		if (cove_is_null(pm, i)) continue;
		cove_str s = cove_utf8(st, i);
		cove_str parts[2] = {s, {"2015", 4}};
		cove_add(&out, i, cove_key_join(parts, 2), found ? reading : cove_f64(pm, i));
	}
	cove_flush(&out);
	return 0;
}
