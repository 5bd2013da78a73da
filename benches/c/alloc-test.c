/*
 * alloc-test: mixed sizes and lifetimes, on 1 thread or several. Each
 * thread keeps a large working set (SLOTS blocks) and, at each step,
 * replaces a random block: three quarters of the new blocks are 16-128 B,
 * a fifth 128 B-4 KiB, the rest 4-64 KiB; one step in eight grows or
 * shrinks a block with realloc instead (keeping its stamp), and one step
 * in 64 frees a run of 32 neighbouring slots and refills them, a burst.
 *
 * What stresses the allocator: a working set too large for the caches
 * (metadata misses), every size-class range at once, realloc across size
 * classes, and bursts that empty and refill pages.
 *
 *     alloc-test [THREADS=1] [WORK=4000000 steps in all]
 */
#include "bench.h"

#define SLOTS 16384
#define BURST 32

static size_t mixed_size(uint64_t *rng) {
    uint64_t r = rng_below(rng, 20);
    if (r < 15) return rng_range(rng, 16, 128);
    if (r < 19) return rng_range(rng, 129, 4096);
    return rng_range(rng, 4097, 64 << 10);
}

static void *loop(void *arg) {
    struct bench_worker *w = arg;
    uint64_t rng = rng_seed((uint64_t)w->index, 11), sum = 0, made = 0;
    void **slots = calloc(SLOTS, sizeof *slots);
    if (!slots) bench_fail("out of memory");
    for (uint64_t step = 0; step < w->steps; step++) {
        uint64_t kind = rng_below(&rng, 64);
        size_t i = (size_t)rng_below(&rng, SLOTS);
        if (kind == 0) {
            size_t from = i > SLOTS - BURST ? SLOTS - BURST : i;
            for (size_t j = from; j < from + BURST; j++)
                if (slots[j]) sum += release(slots[j]);
            for (size_t j = from; j < from + BURST; j++) {
                size_t size = mixed_size(&rng);
                slots[j] = bench_malloc(size);
                made += stamp(slots[j], size, step + j);
            }
        } else if (kind < 9 && slots[i]) {
            /* realloc keeps the old contents: take the stamp off, move,
             * and stamp the block for its new size. */
            uint64_t head = unstamp(slots[i]);
            size_t size = mixed_size(&rng);
            void *p = realloc(slots[i], size);
            if (!p) bench_fail("realloc returned NULL");
            uint64_t kept;
            memcpy(&kept, p, 8);
            if (kept != head) bench_fail("realloc lost a block's contents: broken allocator");
            sum += head;
            slots[i] = p;
            made += stamp(p, size, step);
        } else {
            if (slots[i]) sum += release(slots[i]);
            size_t size = mixed_size(&rng);
            slots[i] = bench_malloc(size);
            made += stamp(slots[i], size, step);
        }
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i]) sum += release(slots[i]);
    free(slots);
    w->sum = sum;
    w->made = made;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = 1;
    uint64_t total = 4000000;
    bench_args(argc, argv, &threads, &total);
    return bench_run_workers(threads, total, loop);
}
