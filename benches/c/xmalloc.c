/*
 * xmalloc: producers and consumers. Half the THREADS (at least one)
 * allocate blocks of 16-512 B, write them, and pass them in batches of
 * BATCH through a shared queue; the others take the batches and free every
 * block, so every free happens on a thread other than the allocating one.
 * The queue holds at most MAX_QUEUED batches (producers wait when it is
 * full), so the live set stays bounded.
 *
 * What stresses the allocator: a one-way stream of remote frees (the
 * producers' memory must flow back to them), at a high rate.
 *
 *     xmalloc [THREADS=2] [WORK=4000000 blocks in all]
 */
#include "bench.h"

#define BATCH 256
#define MAX_QUEUED 64
#define MIN_SIZE 16
#define MAX_SIZE 512

struct batch {
    struct batch *next;
    size_t count;
    void *blocks[BATCH];
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    struct batch *head, *tail;
    size_t queued;
    int producers_left;
} q = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0, 0};

struct worker {
    pthread_t tid;
    int index;
    uint64_t blocks; /* for a producer: how many to make */
    uint64_t sum;    /* producer: stamps made; consumer: stamps read back */
};

static void *produce(void *arg) {
    struct worker *w = arg;
    uint64_t rng = rng_seed((uint64_t)w->index, 1), made = 0;
    uint64_t left = w->blocks;
    while (left > 0) {
        struct batch *b = bench_malloc(sizeof *b);
        b->next = NULL;
        b->count = left < BATCH ? (size_t)left : BATCH;
        for (size_t i = 0; i < b->count; i++) {
            size_t size = rng_range(&rng, MIN_SIZE, MAX_SIZE);
            b->blocks[i] = bench_malloc(size);
            made += stamp(b->blocks[i], size, left - i);
        }
        left -= b->count;
        pthread_mutex_lock(&q.lock);
        while (q.queued >= MAX_QUEUED) pthread_cond_wait(&q.not_full, &q.lock);
        if (q.tail) q.tail->next = b; else q.head = b;
        q.tail = b;
        q.queued++;
        pthread_cond_signal(&q.not_empty);
        pthread_mutex_unlock(&q.lock);
    }
    pthread_mutex_lock(&q.lock);
    q.producers_left--;
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    w->sum = made;
    return NULL;
}

static void *consume(void *arg) {
    struct worker *w = arg;
    uint64_t sum = 0;
    for (;;) {
        pthread_mutex_lock(&q.lock);
        while (!q.head && q.producers_left > 0) pthread_cond_wait(&q.not_empty, &q.lock);
        struct batch *b = q.head;
        if (b) {
            q.head = b->next;
            if (!q.head) q.tail = NULL;
            q.queued--;
            pthread_cond_signal(&q.not_full);
        }
        pthread_mutex_unlock(&q.lock);
        if (!b) break;
        for (size_t i = 0; i < b->count; i++) sum += release(b->blocks[i]);
        free(b);
    }
    w->sum = sum;
    return NULL;
}

int main(int argc, char **argv) {
    int threads = 2;
    uint64_t total = 4000000;
    bench_args(argc, argv, &threads, &total);
    if (threads < 2) threads = 2;
    int producers = threads / 2;
    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers) bench_fail("out of memory");
    q.producers_left = producers;
    double start = now_s();
    for (int t = 0; t < threads; t++) {
        workers[t].index = t;
        if (t < producers) {
            workers[t].blocks = total / (uint64_t)producers + ((uint64_t)t < total % (uint64_t)producers);
            bench_create(&workers[t].tid, produce, &workers[t]);
        } else {
            bench_create(&workers[t].tid, consume, &workers[t]);
        }
    }
    uint64_t made = 0, sum = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(workers[t].tid, NULL);
        if (t < producers) made += workers[t].sum; else sum += workers[t].sum;
    }
    double elapsed = now_s() - start;
    free(workers);
    bench_finish(elapsed, sum, made);
    return 0;
}
