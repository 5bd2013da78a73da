/*
 * larson: a server simulation. THREADS threads each own an array of
 * SLOTS objects (16-1000 B) and replace random ones, as a server replaces
 * the objects of its requests; after each of GENERATIONS bursts a thread
 * starts a successor, hands it the array and exits, so every object
 * outlives the thread that allocated it and is freed by another.
 *
 * What stresses the allocator: a steady rate of small mallocs and frees
 * where nearly every free is of a block allocated by a thread that has
 * since exited (orphaned memory, remote frees), with threads starting and
 * ending all the time.
 *
 *     larson [THREADS=2] [WORK=20000000 replacements in all]
 */
#include "bench.h"

#define SLOTS 1000
#define GENERATIONS 20
#define MIN_SIZE 16
#define MAX_SIZE 1000

struct server {
    int index;
    int generation;
    uint64_t steps; /* replacements per generation */
    void *slots[SLOTS];
    uint64_t sum;  /* stamps read back from freed blocks */
    uint64_t made; /* stamps of allocated blocks */
    pthread_t tids[GENERATIONS];
};

static void *serve(void *arg) {
    struct server *s = arg;
    uint64_t rng = rng_seed((uint64_t)s->index, (uint64_t)s->generation);
    uint64_t sum = 0, made = 0;
    for (uint64_t step = 0; step < s->steps; step++) {
        size_t i = (size_t)rng_below(&rng, SLOTS);
        sum += release(s->slots[i]);
        size_t size = rng_range(&rng, MIN_SIZE, MAX_SIZE);
        void *p = bench_malloc(size);
        made += stamp(p, size, step + ((uint64_t)s->generation << 24));
        s->slots[i] = p;
    }
    s->sum += sum;
    s->made += made;
    s->generation++;
    /* The successor's id is stored before this thread ends; `main` reads
     * it after joining this thread (the join orders the two). */
    if (s->generation < GENERATIONS) bench_create(&s->tids[s->generation], serve, s);
    return NULL;
}

int main(int argc, char **argv) {
    int threads = 2;
    uint64_t total = 20000000;
    bench_args(argc, argv, &threads, &total);
    struct server *servers = calloc((size_t)threads, sizeof *servers);
    if (!servers) bench_fail("out of memory");
    uint64_t steps = total / ((uint64_t)threads * GENERATIONS);
    if (steps == 0) steps = 1;
    /* The first objects are allocated by the main thread, as larson's
     * warm-up does. */
    for (int t = 0; t < threads; t++) {
        struct server *s = &servers[t];
        uint64_t rng = rng_seed((uint64_t)t, 999);
        s->index = t;
        s->steps = steps;
        for (size_t i = 0; i < SLOTS; i++) {
            size_t size = rng_range(&rng, MIN_SIZE, MAX_SIZE);
            s->slots[i] = bench_malloc(size);
            s->made += stamp(s->slots[i], size, i);
        }
    }
    double start = now_s();
    for (int t = 0; t < threads; t++) bench_create(&servers[t].tids[0], serve, &servers[t]);
    for (int g = 0; g < GENERATIONS; g++)
        for (int t = 0; t < threads; t++) pthread_join(servers[t].tids[g], NULL);
    double elapsed = now_s() - start;
    uint64_t sum = 0, made = 0;
    for (int t = 0; t < threads; t++) {
        struct server *s = &servers[t];
        for (size_t i = 0; i < SLOTS; i++) s->sum += release(s->slots[i]);
        sum += s->sum;
        made += s->made;
    }
    free(servers);
    bench_finish(elapsed, sum, made);
    return 0;
}
