/*
 * mstress: rounds of short-lived threads that allocate objects from 16 B
 * up to 2.5 MiB and pass them to each other through a shared array.
 *
 * Each of ROUNDS rounds starts THREADS threads and waits for them. A thread
 * keeps LOCAL objects of its own, replacing a random one at each step (most
 * objects small, one in 50 between 4 and 256 KiB, one in 500 between 256
 * KiB and 2.5 MiB, every page of those written), and one step in four
 * swaps one of its objects with a random slot of the shared array, so
 * objects are freed by other threads, often after their allocating thread
 * has exited. What stresses the allocator: large blocks allocated and freed
 * at a high rate (mapping and unmapping, zeroed pages), frees from other
 * and from dead threads, and the caches of exiting threads.
 *
 *     mstress [THREADS=2] [WORK=1000000 allocations in all]
 */
#include "bench.h"

#define ROUNDS 10
#define LOCAL 200
#define SHARED 1000

static void *_Atomic shared_slots[SHARED];
static int nthreads;
static uint64_t steps_per_thread;

struct worker {
    pthread_t tid;
    uint64_t seed;
    uint64_t sum; /* stamps read back from the blocks this thread freed */
    uint64_t made; /* stamps of the blocks it allocated */
};

static size_t object_size(uint64_t *rng) {
    uint64_t r = rng_below(rng, 500);
    if (r == 0) return rng_range(rng, 256 << 10, 2560 << 10);
    if (r < 10) return rng_range(rng, 4 << 10, 256 << 10);
    return rng_log_size(rng, 16, 1024);
}

static void *work(void *arg) {
    struct worker *w = arg;
    uint64_t rng = w->seed, sum = 0, made = 0;
    void *local[LOCAL] = {0};
    for (uint64_t step = 0; step < steps_per_thread; step++) {
        size_t i = (size_t)rng_below(&rng, LOCAL);
        if (local[i]) sum += release(local[i]);
        size_t size = object_size(&rng);
        void *p = bench_malloc(size);
        made += stamp(p, size, step ^ (w->seed << 20));
        if (size > 4096) touch_pages(p, size);
        local[i] = p;
        if (rng_below(&rng, 4) == 0) {
            size_t j = (size_t)rng_below(&rng, LOCAL);
            size_t k = (size_t)rng_below(&rng, SHARED);
            /* seq_cst: the exchange hands a block (and its stamp, written
             * before) to whichever thread takes it next. */
            local[j] = atomic_exchange(&shared_slots[k], local[j]);
        }
    }
    for (size_t i = 0; i < LOCAL; i++)
        if (local[i]) sum += release(local[i]);
    w->sum = sum;
    w->made = made;
    return NULL;
}

int main(int argc, char **argv) {
    uint64_t total = 1000000;
    nthreads = 2;
    bench_args(argc, argv, &nthreads, &total);
    steps_per_thread = total / ((uint64_t)ROUNDS * (uint64_t)nthreads);
    if (steps_per_thread == 0) steps_per_thread = 1;
    struct worker *workers = calloc((size_t)nthreads, sizeof *workers);
    if (!workers) bench_fail("out of memory");
    uint64_t sum = 0, made = 0;
    double start = now_s();
    for (int round = 0; round < ROUNDS; round++) {
        for (int t = 0; t < nthreads; t++) {
            workers[t].seed = rng_seed((uint64_t)t, (uint64_t)round);
            bench_create(&workers[t].tid, work, &workers[t]);
        }
        for (int t = 0; t < nthreads; t++) {
            pthread_join(workers[t].tid, NULL);
            sum += workers[t].sum;
            made += workers[t].made;
        }
    }
    for (size_t k = 0; k < SHARED; k++) {
        void *p = atomic_exchange(&shared_slots[k], NULL);
        if (p) sum += release(p);
    }
    double elapsed = now_s() - start;
    free(workers);
    bench_finish(elapsed, sum, made);
    return 0;
}
