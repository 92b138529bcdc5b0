/*
 * leaky.c tries, as a C program would, to carry what one group's rows hold
 * to the next group: a static variable, the heap (malloc, which grows
 * memory), the clock, the random source, stdio's state, key ids and the
 * allocator's own state. Each group emits, on behalf of its row 0, what it
 * finds in each channel (key: the channel), then leaves its row 0's value v
 * (column 0, int64) in every channel.
 */
#define COVE_DEFINE_EXPORTS
#define COVE_EMIT_BUF 64
#include "cove.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static int64_t last;      /* a static */
static char *blob;        /* the heap */
static size_t blob_len;
static int closed_stdout; /* stdio's state, as the program sees it */

static void put(cove_emitter *e, const char *channel, double v) {
	cove_add(e, 0, cove_key(channel, (uint32_t)strlen(channel)), v);
}

int cove_process(const cove_batch *b) {
	static cove_emitter e;
	cove_emitter_init(&e, "out");
	if (b->rows == 0) return 0;
	int64_t v = cove_i64(cove_column_get(b, 0), 0);

	put(&e, "static", (double)last);
	put(&e, "heap", blob ? (double)(unsigned char)blob[blob_len - 1] + (double)blob_len * 256 : -1);
	put(&e, "size", (double)__builtin_wasm_memory_size(0));
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	put(&e, "clock", (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec);
	clock_gettime(CLOCK_REALTIME, &ts);
	put(&e, "wall", (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec);
	uint32_t r = 0;
	getentropy(&r, sizeof r);
	put(&e, "random", (double)r);
	put(&e, "rand", (double)rand());
	put(&e, "stdout", (double)closed_stdout + (double)write(1, "x", 1) * 10);
	put(&e, "keyid", (double)cove_key(&v, sizeof v));
	void *p = malloc(24);
	put(&e, "malloc", (double)(uintptr_t)p);
	put(&e, "v", (double)v);
	cove_add(&e, 0, cove_key(&v, sizeof v), 1);
	cove_flush(&e);

	/* Leave v everywhere. */
	last = v;
	blob_len = (size_t)(v % 200000) + 1;
	blob = malloc(blob_len);
	if (blob) memset(blob, (int)(v & 0xff), blob_len);
	srand((unsigned)v);
	for (int64_t k = 0; k < (v & 7); k++) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		getentropy(&r, sizeof r);
	}
	if (v & 8) {
		close(1);
		closed_stdout = 1;
	}
	return 0;
}
