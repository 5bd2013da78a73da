/*
 * malloc-thread: per-thread loops, THREADS threads at once. Each thread
 * keeps a working set of SLOTS blocks and, at every step, frees a random
 * one and allocates a new block of a random size, log-uniform between 16
 * B and 32 KiB (as many blocks of 16-31 B as of 16-32 KiB), the loop of
 * glibc's malloc-thread benchmark. No block leaves its thread.
 *
 * What stresses the allocator: the per-thread fast paths of malloc and
 * free over all the small and medium size classes at once, with the
 * threads running side by side (contention on anything shared, false
 * sharing of allocator metadata).
 *
 *     malloc-thread [THREADS=2] [WORK=5000000 steps in all]
 */
#include "bench.h"

#define SLOTS 1024
#define MIN_SIZE 16
#define MAX_SIZE (32 << 10)

static void *loop(void *arg) {
    struct bench_worker *w = arg;
    uint64_t rng = rng_seed((uint64_t)w->index, 7), sum = 0, made = 0;
    void *slots[SLOTS] = {0};
    for (uint64_t step = 0; step < w->steps; step++) {
        size_t i = (size_t)rng_below(&rng, SLOTS);
        if (slots[i]) sum += release(slots[i]);
        size_t size = rng_log_size(&rng, MIN_SIZE, MAX_SIZE);
        slots[i] = bench_malloc(size);
        made += stamp(slots[i], size, step);
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i]) sum += release(slots[i]);
    w->sum = sum;
    w->made = made;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = 2;
    uint64_t total = 5000000;
    bench_args(argc, argv, &threads, &total);
    return bench_run_workers(threads, total, loop);
}
