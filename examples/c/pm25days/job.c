/*
 * pm25days: days by air-quality category, a per-unit job (mode: unit).
 *
 * The privacy unit is one station-day (station, year, month, day) of the
 * Beijing air-quality data; the host calls cove_batch once per unit with
 * that day's hourly readings only (at most 24 rows), from the same fresh
 * state every time. The job takes the day's mean PM2.5 over its non-null
 * readings, skips days with fewer than 18 of them, maps the mean to the
 * Chinese AQI category for 24-hour PM2.5 (HJ 633-2012: up to 35 µg/m³
 * excellent, 75 good, 115 lightly polluted, 150 moderately, 250 heavily,
 * above severely polluted) and counts the day once under (station, year,
 * category): output days_by_category.
 *
 * Build (go generate ./examples does):
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -I sdk/guest/c -o job.wasm job.c
 */
#define COVE_DEFINE_EXPORTS
#include "cove.h"

/* The fewest non-null hourly readings that make a day's mean. */
#define MIN_READINGS 18

static const char *category(double mean) {
	if (mean <= 35) return "excellent";
	if (mean <= 75) return "good";
	if (mean <= 115) return "lightly-polluted";
	if (mean <= 150) return "moderately-polluted";
	if (mean <= 250) return "heavily-polluted";
	return "severely-polluted";
}

/* decimal writes v in decimal at the end of buf (24 bytes) and returns it. */
static cove_str decimal(char *buf, int64_t v) {
	int n = 0;
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do { buf[23 - n++] = (char)('0' + u % 10); u /= 10; } while (u);
	if (v < 0) buf[23 - n++] = '-';
	return (cove_str){buf + 24 - n, (uint32_t)n};
}

int cove_process(const cove_batch *b) {
	int cs = cove_col(b, "station"), cy = cove_col(b, "year"), cp = cove_col(b, "PM2.5");
	if (cs < 0 || cy < 0 || cp < 0) return 1;
	const cove_column *station = cove_column_get(b, cs), *year = cove_column_get(b, cy), *pm = cove_column_get(b, cp);
	if ((station->type != COVE_UTF8 && station->type != COVE_DICT_UTF8) || year->type != COVE_INT64 || pm->type != COVE_FLOAT64)
		return 1;
	if (b->rows == 0) return 0;
	double sum = 0;
	uint32_t n = 0;
	for (uint32_t i = 0; i < b->rows; i++) {
		if (cove_is_null(pm, i)) continue;
		sum += cove_f64(pm, i);
		n++;
	}
	if (n < MIN_READINGS) return 0; /* too few readings: the day counts nowhere */
	char digits[24];
	cove_str parts[3] = {cove_utf8(station, 0), decimal(digits, cove_i64(year, 0)), cove_s(category(sum / n))};
	uint32_t row = 0, key = cove_key_join(parts, 3);
	double one = 1;
	cove_emit(cove_output("days_by_category", 16), &row, &key, &one, 1);
	return 0;
}
