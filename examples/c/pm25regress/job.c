/*
 * pm25regress: a linear model of PM2.5 on the weather, a block job (mode:
 * block).
 *
 * The host splits the privacy units (station-days) of the Beijing
 * air-quality data into k disjoint blocks and calls cove_batch once per
 * block with that block's rows only, from the same fresh state every time.
 * Over the block's rows with no null among PM2.5, TEMP, DEWP and WSPM, the
 * job fits PM2.5 = b0 + b1·TEMP + b2·DEWP + b3·WSPM by ordinary least
 * squares and hands (b0, b1, b2, b3) with cove_result: output coef. The
 * host clamps each coefficient to the manifest's bounds and releases the
 * noisy mean over the blocks. A block with too few rows, or whose
 * regressors are collinear, fails and counts as the default vector.
 *
 * Build (go generate ./examples does):
 *
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -I sdk/guest/c -o job.wasm job.c
 */
#define COVE_DEFINE_EXPORTS
#include "cove.h"

#define P 3 /* regressors */

/* solve solves a·x = b for the symmetric positive definite P×P matrix a by
 * Cholesky; 0 on success, -1 when a is not (numerically) positive definite. */
static int solve(double a[P][P], const double b[P], double x[P]) {
	double l[P][P] = {{0}};
	for (int i = 0; i < P; i++) {
		for (int j = 0; j <= i; j++) {
			double s = a[i][j];
			for (int k = 0; k < j; k++) s -= l[i][k] * l[j][k];
			if (i == j) {
				if (!(s > 1e-9 * (a[i][i] > 0 ? a[i][i] : 1))) return -1;
				l[i][i] = __builtin_sqrt(s);
			} else {
				l[i][j] = s / l[j][j];
			}
		}
	}
	double y[P];
	for (int i = 0; i < P; i++) {
		double s = b[i];
		for (int k = 0; k < i; k++) s -= l[i][k] * y[k];
		y[i] = s / l[i][i];
	}
	for (int i = P - 1; i >= 0; i--) {
		double s = y[i];
		for (int k = i + 1; k < P; k++) s -= l[k][i] * x[k];
		x[i] = s / l[i][i];
	}
	return 0;
}

int cove_process(const cove_batch *b) {
	static const char *names[P + 1] = {"PM2.5", "TEMP", "DEWP", "WSPM"};
	const cove_column *c[P + 1];
	for (int j = 0; j <= P; j++) {
		int i = cove_col(b, names[j]);
		if (i < 0) return 1;
		c[j] = cove_column_get(b, i);
		if (c[j]->type != COVE_FLOAT64) return 1;
	}
	/* Two passes: the means, then the centred cross-products, which keep
	 * the normal equations well conditioned. */
	double mean[P + 1] = {0};
	uint32_t n = 0;
	for (uint32_t r = 0; r < b->rows; r++) {
		int ok = 1;
		for (int j = 0; j <= P; j++) ok &= !cove_is_null(c[j], r);
		if (!ok) continue;
		n++;
		for (int j = 0; j <= P; j++) mean[j] += (cove_f64(c[j], r) - mean[j]) / n;
	}
	if (n <= P + 1) return 1;
	double xx[P][P] = {{0}}, xy[P] = {0};
	for (uint32_t r = 0; r < b->rows; r++) {
		int ok = 1;
		for (int j = 0; j <= P; j++) ok &= !cove_is_null(c[j], r);
		if (!ok) continue;
		double d[P + 1];
		for (int j = 0; j <= P; j++) d[j] = cove_f64(c[j], r) - mean[j];
		for (int i = 0; i < P; i++) {
			xy[i] += d[i + 1] * d[0];
			for (int j = 0; j <= i; j++) xx[i][j] += d[i + 1] * d[j + 1];
		}
	}
	for (int i = 0; i < P; i++)
		for (int j = i + 1; j < P; j++) xx[i][j] = xx[j][i];
	double coef[P + 1], *slope = coef + 1;
	if (solve(xx, xy, slope) != 0) return 1;
	coef[0] = mean[0];
	for (int i = 0; i < P; i++) coef[0] -= slope[i] * mean[i + 1];
	cove_block_result("coef", coef, P + 1);
	return 0;
}
