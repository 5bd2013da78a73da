/*
 * Helpers shared by the C workloads of `compare --c` (homing-bench).
 *
 * Every program is called as `program THREADS WORK` (both optional), runs
 * its timed section once, and prints one line
 *
 *     elapsed_s=<seconds> checksum=<u64>
 *
 * the same line the Rust workloads print. The checksum depends only on
 * THREADS and WORK, never on the allocator or the schedule: it sums the
 * stamps read back from every block when it is freed, and a stamp damaged
 * by a broken allocator (two live blocks overlapping, a block reused while
 * live) stops the program with an error before it can print a wrong sum.
 *
 * The programs are built with `cc -O2 -pthread`, dynamically linked
 * against the C library, so `LD_PRELOAD` replaces their malloc.
 */
#ifndef HOMING_BENCH_H
#define HOMING_BENCH_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The seed every program starts from ("homing" in ASCII, as in Rust). */
#define BENCH_SEED 0x686F6D696E67ULL

/* SplitMix64: small, fast, and the same sequence on every allocator. */
static inline uint64_t rng_next(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A seed for stream `a`, `b` (thread index, round, ...). */
static inline uint64_t rng_seed(uint64_t a, uint64_t b) {
    uint64_t s = BENCH_SEED ^ (a * 0x100000001B3ULL) ^ (b << 32);
    return rng_next(&s);
}

/* Uniform in [0, n). */
static inline uint64_t rng_below(uint64_t *state, uint64_t n) {
    return rng_next(state) % n;
}

/* Uniform in [lo, hi]. */
static inline size_t rng_range(uint64_t *state, size_t lo, size_t hi) {
    return lo + (size_t)rng_below(state, (uint64_t)(hi - lo + 1));
}

/* Log-uniform in [lo, hi] (lo >= 1): as many blocks of 16-31 bytes as of
 * 1024-2047, the small-block bias of real programs. */
static inline size_t rng_log_size(uint64_t *state, size_t lo, size_t hi) {
    unsigned lo_bit = 63 - __builtin_clzll(lo), hi_bit = 63 - __builtin_clzll(hi);
    unsigned bit = lo_bit + (unsigned)rng_below(state, hi_bit - lo_bit + 1);
    size_t from = (size_t)1 << bit, to = ((size_t)2 << bit) - 1;
    if (from < lo) from = lo;
    if (to > hi) to = hi;
    return rng_range(state, from, to);
}

static inline double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static const char *bench_name = "bench";

static inline void bench_fail(const char *what) {
    fprintf(stderr, "%s: %s\n", bench_name, what);
    exit(2);
}

/* Reads `THREADS WORK`; either may be left out (then the defaults). */
static inline void bench_args(int argc, char **argv, int *threads, uint64_t *work) {
    bench_name = argv[0];
    if (argc > 3) bench_fail("usage: program [THREADS] [WORK]");
    if (argc > 1) {
        char *end;
        long t = strtol(argv[1], &end, 10);
        if (*end || t < 1 || t > 1024) bench_fail("THREADS must be 1..1024");
        *threads = (int)t;
    }
    if (argc > 2) {
        char *end;
        errno = 0;
        unsigned long long w = strtoull(argv[2], &end, 10);
        if (*end || w < 1 || errno) bench_fail("WORK must be a positive count");
        *work = (uint64_t)w;
    }
}

static inline void bench_report(double elapsed_s, uint64_t checksum) {
    printf("elapsed_s=%.9f checksum=%llu\n", elapsed_s, (unsigned long long)checksum);
}

/* Checks that the stamps read back from the blocks freed are those of the
 * blocks allocated, then reports with them as the checksum. */
static inline void bench_finish(double elapsed_s, uint64_t freed, uint64_t made) {
    if (freed != made) bench_fail("the blocks freed are not the blocks allocated: broken allocator");
    bench_report(elapsed_s, freed);
}

/* Smallest block a stamp fits in: a head word and a tail word. */
#define STAMP_MIN 16
/* Block sizes fit in the low 28 bits of the head word (up to 256 MiB). */
#define STAMP_SIZE_BITS 28

static inline void *bench_malloc(size_t size) {
    void *p = malloc(size);
    if (!p) bench_fail("malloc returned NULL");
    return p;
}

/* Marks a block of `size` (>= STAMP_MIN) bytes with `tag`: the head word
 * holds the tag and the size, the last word its complement. Returns the
 * head word, which is what `unstamp` gives back. */
static inline uint64_t stamp(void *p, size_t size, uint64_t tag) {
    uint64_t head = (tag << STAMP_SIZE_BITS) | (uint64_t)size;
    uint64_t tail = ~head;
    memcpy(p, &head, 8);
    memcpy((char *)p + size - 8, &tail, 8);
    return head;
}

/* Checks a block's stamp and returns its head word; stops the program if
 * the stamp is damaged. */
static inline uint64_t unstamp(const void *p) {
    uint64_t head, tail;
    memcpy(&head, p, 8);
    size_t size = (size_t)(head & (((uint64_t)1 << STAMP_SIZE_BITS) - 1));
    if (size < STAMP_MIN) bench_fail("a block's stamp is damaged (bad size): broken allocator");
    memcpy(&tail, (const char *)p + size - 8, 8);
    if (tail != ~head) bench_fail("a block's stamp is damaged (head and tail differ): broken allocator");
    return head;
}

/* Checks and frees a stamped block; returns its head word. */
static inline uint64_t release(void *p) {
    uint64_t head = unstamp(p);
    free(p);
    return head;
}

/* Writes one byte per 4 KiB page of a block, as a program filling it would
 * touch every page. */
static inline void touch_pages(void *p, size_t size) {
    for (size_t off = 4096; off + 8 < size; off += 4096) ((volatile char *)p)[off] = (char)off;
}

static inline void bench_create(pthread_t *t, void *(*fn)(void *), void *arg) {
    int e = pthread_create(t, NULL, fn, arg);
    if (e) {
        errno = e;
        perror("pthread_create");
        exit(2);
    }
}

/* A thread of a program whose threads all run one loop on their own share
 * of the work: `steps` to do; `sum` and `made`, the stamps it read back and
 * the stamps it wrote. */
struct bench_worker {
    pthread_t tid;
    int index;
    uint64_t steps;
    uint64_t sum, made;
};

/* Runs `threads` workers of `fn` (each gets a `struct bench_worker`), each
 * doing `total / threads` steps, and finishes the program's report. */
static inline int bench_run_workers(int threads, uint64_t total, void *(*fn)(void *)) {
    struct bench_worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!workers) bench_fail("out of memory");
    double start = now_s();
    for (int t = 0; t < threads; t++) {
        workers[t].index = t;
        workers[t].steps = total / (uint64_t)threads;
        bench_create(&workers[t].tid, fn, &workers[t]);
    }
    uint64_t sum = 0, made = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(workers[t].tid, NULL);
        sum += workers[t].sum;
        made += workers[t].made;
    }
    double elapsed = now_s() - start;
    free(workers);
    bench_finish(elapsed, sum, made);
    return 0;
}

#endif
