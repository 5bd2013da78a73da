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

struct worker {
    pthread_t tid;
    int index;
    uint64_t steps;
    uint64_t sum, made;
};

static void *loop(void *arg) {
    struct worker *w = arg;
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
    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers) bench_fail("out of memory");
    double start = now_s();
    for (int t = 0; t < threads; t++) {
        workers[t].index = t;
        workers[t].steps = total / (uint64_t)threads;
        bench_create(&workers[t].tid, loop, &workers[t]);
    }
    uint64_t sum = 0, made = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(workers[t].tid, NULL);
        sum += workers[t].sum;
        made += workers[t].made;
    }
    double elapsed = now_s() - start;
    if (sum != made) bench_fail("the blocks freed are not the blocks allocated: broken allocator");
    free(workers);
    bench_report(elapsed, sum);
    return 0;
}
