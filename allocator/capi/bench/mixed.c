/*
 * A quick C-level comparison of allocators: run it as is (glibc) and with
 * LD_PRELOAD=libhoming.so (bench/run.sh does both). Three workloads, each
 * reported in nanoseconds per operation (one malloc plus one free), by
 * wall clock and by CPU time (the threads' CPU clocks summed, divided by
 * all operations: the figure to trust on a shared, loaded machine):
 *
 *   pairs     one thread: malloc and free at once (the fast paths)
 *   mixed     THREADS threads, each replacing random slots of a working
 *             set of WORKING_SET blocks of random small sizes
 *   prodcons  one producer/consumer pair: the producer mallocs, the
 *             consumer (another thread) frees, through a ring of slots
 *             (CPU time includes the waits, which yield)
 *
 *   mixed [pairs|mixed|prodcons] [operations]
 *
 * The random sizes and orders come from a fixed xorshift generator, so
 * every run does the same work; the Rust twin (examples/mixed.rs) does the
 * same through homing's Rust API.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Default operations of the one-thread pairs workload. */
#define PAIRS_OPS 20000000L
/* Default operations per thread of the mixed workload. */
#define MIXED_OPS 10000000L
/* Threads of the mixed workload. */
#define THREADS 2
/* Blocks each mixed thread keeps live. */
#define WORKING_SET 4096
/* Largest random size (bytes); sizes are 1 ..= MAX_SIZE, skewed small. */
#define MAX_SIZE 1024
/* Default blocks the producer hands over. */
#define PRODCONS_OPS 5000000L
/* Slots of the producer/consumer ring (a power of two). */
#define RING 1024

static long ops_override;

static uint64_t xorshift(uint64_t *s) {
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Mostly small sizes: three quarters below 128 bytes. */
static size_t random_size(uint64_t *s) {
    uint64_t r = xorshift(s);
    return (r & 3) != 0 ? 1 + (r >> 8) % 128 : 1 + (r >> 8) % MAX_SIZE;
}

static double clock_ns(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void report(const char *name, double wall, double cpu, long ops) {
    printf("%-9s %6.1f ns/op wall %6.1f ns/op cpu\n", name, wall / (double)ops, cpu / (double)ops);
}

static volatile uintptr_t sink;

static void pairs(void) {
    long ops = ops_override ? ops_override : PAIRS_OPS;
    uint64_t s = 88172645463325252ull;
    double w0 = clock_ns(CLOCK_MONOTONIC), c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < ops; i++) {
        void *p = malloc(16 + (xorshift(&s) & 63));
        sink ^= (uintptr_t)p;
        free(p);
    }
    report("pairs", clock_ns(CLOCK_MONOTONIC) - w0, clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0, ops);
}

struct worker {
    uintptr_t seed;
    long ops;
    double cpu;
};

static void *mixed_thread(void *arg) {
    struct worker *w = arg;
    double c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t s = 88172645463325252ull + w->seed;
    void **slots = calloc(WORKING_SET, sizeof *slots);
    for (long i = 0; i < w->ops; i++) {
        size_t k = xorshift(&s) % WORKING_SET;
        free(slots[k]);
        size_t n = random_size(&s);
        slots[k] = malloc(n);
        ((char *)slots[k])[0] = (char)n;
    }
    for (size_t k = 0; k < WORKING_SET; k++)
        free(slots[k]);
    free(slots);
    w->cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    return NULL;
}

static void mixed(void) {
    long ops = ops_override ? ops_override : MIXED_OPS;
    pthread_t t[THREADS];
    struct worker w[THREADS];
    double w0 = clock_ns(CLOCK_MONOTONIC), cpu = 0;
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.seed = (uintptr_t)i, .ops = ops};
        pthread_create(&t[i], NULL, mixed_thread, &w[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cpu += w[i].cpu;
    }
    /* Wall per operation of one thread; CPU per operation of all. */
    report("mixed", clock_ns(CLOCK_MONOTONIC) - w0, cpu / THREADS, ops);
}

struct ring {
    _Atomic(void *) slot[RING];
    long ops;
    double cpu[2];
};

static void *producer(void *arg) {
    struct ring *r = arg;
    double c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t s = 1234567;
    for (long i = 0; i < r->ops; i++) {
        void *p = malloc(random_size(&s));
        _Atomic(void *) *slot = &r->slot[i & (RING - 1)];
        while (atomic_load_explicit(slot, memory_order_acquire) != NULL)
            sched_yield();
        atomic_store_explicit(slot, p, memory_order_release);
    }
    r->cpu[0] = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    return NULL;
}

static void *consumer(void *arg) {
    struct ring *r = arg;
    double c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    for (long i = 0; i < r->ops; i++) {
        _Atomic(void *) *slot = &r->slot[i & (RING - 1)];
        void *p;
        while ((p = atomic_load_explicit(slot, memory_order_acquire)) == NULL)
            sched_yield();
        atomic_store_explicit(slot, NULL, memory_order_release);
        free(p);
    }
    r->cpu[1] = clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0;
    return NULL;
}

static void prodcons(void) {
    static struct ring ring;
    ring.ops = ops_override ? ops_override : PRODCONS_OPS;
    pthread_t t[2];
    double w0 = clock_ns(CLOCK_MONOTONIC);
    pthread_create(&t[0], NULL, producer, &ring);
    pthread_create(&t[1], NULL, consumer, &ring);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    report("prodcons", clock_ns(CLOCK_MONOTONIC) - w0, ring.cpu[0] + ring.cpu[1], ring.ops);
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : "";
    ops_override = argc > 2 ? atol(argv[2]) : 0;
    if (!*only || !strcmp(only, "pairs"))
        pairs();
    if (!*only || !strcmp(only, "mixed"))
        mixed();
    if (!*only || !strcmp(only, "prodcons"))
        prodcons();
    return 0;
}
