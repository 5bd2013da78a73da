/*
 * rptest: mixed sizes, cross-thread, after rpmalloc's benchmark. THREADS
 * threads stand in a ring. At each step a thread replaces LOCAL_OPS random
 * blocks of its own working set (SLOTS blocks), allocates a batch of BATCH
 * blocks and posts it to the next thread's mailbox, and frees every block
 * of the batches waiting in its own mailbox. Sizes are mixed: 7 in 8 of
 * 16 B-1 KiB, the rest 1-16 KiB, and one in 64 of those 16-64 KiB.
 * A mailbox holds at most MAX_WAITING batches; a thread that finds the
 * next one full frees its batch itself (the work is the same whoever frees).
 *
 * What stresses the allocator: local churn and cross-thread frees of
 * every size class at once, with each thread both a producer and a
 * consumer of remote frees.
 *
 *     rptest [THREADS=2] [WORK=400000 steps in all]
 */
#include "bench.h"

#define SLOTS 2048
#define LOCAL_OPS 8
#define BATCH 16
#define MAX_WAITING 32

struct batch {
    struct batch *next;
    void *blocks[BATCH];
};

struct worker {
    pthread_t tid;
    int index;
    uint64_t steps;
    pthread_mutex_t lock;
    struct batch *mailbox; /* under `lock` */
    size_t waiting;        /* under `lock` */
    struct worker *next;
    uint64_t sum, made;
};

static size_t mixed_size(uint64_t *rng) {
    uint64_t r = rng_below(rng, 512);
    if (r < 448) return rng_log_size(rng, 16, 1024);
    if (r < 504) return rng_range(rng, 1025, 16 << 10);
    return rng_range(rng, (16 << 10) + 1, 64 << 10);
}

static uint64_t free_batches(struct batch *b) {
    uint64_t sum = 0;
    while (b) {
        struct batch *next = b->next;
        for (size_t i = 0; i < BATCH; i++) sum += release(b->blocks[i]);
        free(b);
        b = next;
    }
    return sum;
}

static void *ring(void *arg) {
    struct worker *w = arg;
    uint64_t rng = rng_seed((uint64_t)w->index, 5), sum = 0, made = 0;
    void **slots = calloc(SLOTS, sizeof *slots);
    if (!slots) bench_fail("out of memory");
    for (uint64_t step = 0; step < w->steps; step++) {
        for (size_t op = 0; op < LOCAL_OPS; op++) {
            size_t i = (size_t)rng_below(&rng, SLOTS);
            if (slots[i]) sum += release(slots[i]);
            size_t size = mixed_size(&rng);
            slots[i] = bench_malloc(size);
            made += stamp(slots[i], size, step + op);
        }
        struct batch *b = bench_malloc(sizeof *b);
        for (size_t i = 0; i < BATCH; i++) {
            size_t size = mixed_size(&rng);
            b->blocks[i] = bench_malloc(size);
            made += stamp(b->blocks[i], size, step ^ i);
        }
        struct worker *to = w->next;
        pthread_mutex_lock(&to->lock);
        int posted = to->waiting < MAX_WAITING;
        if (posted) {
            b->next = to->mailbox;
            to->mailbox = b;
            to->waiting++;
        }
        pthread_mutex_unlock(&to->lock);
        if (!posted) {
            b->next = NULL;
            sum += free_batches(b);
        }
        pthread_mutex_lock(&w->lock);
        struct batch *mine = w->mailbox;
        w->mailbox = NULL;
        w->waiting = 0;
        pthread_mutex_unlock(&w->lock);
        sum += free_batches(mine);
    }
    for (size_t i = 0; i < SLOTS; i++)
        if (slots[i]) sum += release(slots[i]);
    free(slots);
    w->sum = sum;
    w->made = made;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = 2;
    uint64_t total = 400000;
    bench_args(argc, argv, &threads, &total);
    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers) bench_fail("out of memory");
    for (int t = 0; t < threads; t++) {
        workers[t].index = t;
        workers[t].steps = total / (uint64_t)threads;
        pthread_mutex_init(&workers[t].lock, NULL);
        workers[t].next = &workers[(t + 1) % threads];
    }
    double start = now_s();
    for (int t = 0; t < threads; t++) bench_create(&workers[t].tid, ring, &workers[t]);
    uint64_t sum = 0, made = 0;
    for (int t = 0; t < threads; t++) pthread_join(workers[t].tid, NULL);
    /* Batches posted to threads that had already finished. */
    for (int t = 0; t < threads; t++) {
        sum += workers[t].sum + free_batches(workers[t].mailbox);
        made += workers[t].made;
    }
    double elapsed = now_s() - start;
    free(workers);
    bench_finish(elapsed, sum, made);
    return 0;
}
