/*
 * A quick C-level comparison of allocators: run it as is (glibc) and with
 * LD_PRELOAD=libhoming.so (see bench/README.md). Three workloads, each
 * timed with CLOCK_MONOTONIC and reported in nanoseconds per operation
 * (one malloc plus one free):
 *
 *   pairs     one thread: malloc and free at once (the fast paths)
 *   mixed     THREADS threads, each replacing random slots of a working
 *             set of WORKING_SET blocks of random small sizes
 *   prodcons  PAIRS producer/consumer pairs: producers malloc, consumers
 *             (other threads) free, through a single-producer ring
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

/* Operations of the one-thread pairs workload. */
#define PAIRS_OPS 20000000L
/* Operations per thread of the mixed workload. */
#define MIXED_OPS 10000000L
/* Threads of the mixed workload. */
#define THREADS 2
/* Blocks each mixed thread keeps live. */
#define WORKING_SET 4096
/* Largest random size (bytes); sizes are 1 ..= MAX_SIZE, skewed small. */
#define MAX_SIZE 1024
/* Blocks each producer hands over. */
#define PRODCONS_OPS 5000000L
/* Producer/consumer pairs. */
#define PAIRS 1
/* Slots of each producer/consumer ring (a power of two). */
#define RING 1024

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

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static volatile uintptr_t sink;

static void pairs(void) {
    uint64_t s = 88172645463325252ull;
    double t0 = now_ns();
    for (long i = 0; i < PAIRS_OPS; i++) {
        void *p = malloc(16 + (xorshift(&s) & 63));
        sink ^= (uintptr_t)p;
        free(p);
    }
    printf("pairs     %6.1f ns/op\n", (now_ns() - t0) / PAIRS_OPS);
}

static void *mixed_thread(void *arg) {
    uint64_t s = 88172645463325252ull + (uintptr_t)arg;
    void **slots = calloc(WORKING_SET, sizeof *slots);
    for (long i = 0; i < MIXED_OPS; i++) {
        size_t k = xorshift(&s) % WORKING_SET;
        free(slots[k]);
        size_t n = random_size(&s);
        slots[k] = malloc(n);
        ((char *)slots[k])[0] = (char)n;
    }
    for (size_t k = 0; k < WORKING_SET; k++)
        free(slots[k]);
    free(slots);
    return NULL;
}

static void mixed(void) {
    pthread_t t[THREADS];
    double t0 = now_ns();
    for (uintptr_t i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, mixed_thread, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    printf("mixed     %6.1f ns/op (%d threads, per thread)\n", (now_ns() - t0) / MIXED_OPS, THREADS);
}

struct ring {
    _Atomic(void *) slot[RING];
    char pad[64];
};

static void *producer(void *arg) {
    struct ring *r = arg;
    uint64_t s = 1234567;
    for (long i = 0; i < PRODCONS_OPS; i++) {
        void *p = malloc(random_size(&s));
        _Atomic(void *) *slot = &r->slot[i & (RING - 1)];
        while (atomic_load_explicit(slot, memory_order_acquire) != NULL)
            sched_yield();
        atomic_store_explicit(slot, p, memory_order_release);
    }
    return NULL;
}

static void *consumer(void *arg) {
    struct ring *r = arg;
    for (long i = 0; i < PRODCONS_OPS; i++) {
        _Atomic(void *) *slot = &r->slot[i & (RING - 1)];
        void *p;
        while ((p = atomic_load_explicit(slot, memory_order_acquire)) == NULL)
            sched_yield();
        atomic_store_explicit(slot, NULL, memory_order_release);
        free(p);
    }
    return NULL;
}

static void prodcons(void) {
    static struct ring rings[PAIRS];
    pthread_t t[2 * PAIRS];
    double t0 = now_ns();
    for (int i = 0; i < PAIRS; i++) {
        pthread_create(&t[2 * i], NULL, producer, &rings[i]);
        pthread_create(&t[2 * i + 1], NULL, consumer, &rings[i]);
    }
    for (int i = 0; i < 2 * PAIRS; i++)
        pthread_join(t[i], NULL);
    printf("prodcons  %6.1f ns/op (%d pair)\n", (now_ns() - t0) / PRODCONS_OPS, PAIRS);
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : "";
    if (!*only || !strcmp(only, "pairs"))
        pairs();
    if (!*only || !strcmp(only, "mixed"))
        mixed();
    if (!*only || !strcmp(only, "prodcons"))
        prodcons();
    return 0;
}
