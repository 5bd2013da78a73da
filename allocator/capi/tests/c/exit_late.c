/* Frees after a thread's exit hook: glibc frees a thread's strerror,
 * strsignal and dlerror buffers in __libc_thread_freeres, after every
 * pthread key destructor (homing's included) has run. Those late frees must
 * not tie a heap to the dead thread: the blocks other threads free into the
 * heap it gave up must come home, and heaps must be reused, not leaked. */
#include "check.h"

#include <pthread.h>
#include <signal.h>

/* Threads that each hand out BLOCKS_PER_THREAD blocks of BLOCK_SIZE bytes
 * (8 MB a thread), make glibc buffers, and exit. */
#define HANDING_THREADS 20
#define BLOCKS_PER_THREAD 8000
#define BLOCK_SIZE 1000
/* Threads in the many-threads case (two alive at a time). */
#define MANY_THREADS 1000
/* What may stay resident or mapped after everything was freed. */
#define SLACK_BYTES ((size_t)24 << 20)

/* Resident bytes now (/proc/self/statm, second field, in pages). */
static size_t rss_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL);
    unsigned long size = 0, resident = 0;
    CHECK(fscanf(f, "%lu %lu", &size, &resident) == 2);
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* Makes glibc allocate the per-thread buffers it frees only after every
 * key destructor: strerror and strsignal of unknown numbers, and the
 * dlerror message of a failed dlsym. */
static void make_glibc_thread_buffers(int serial) {
    CHECK(strerror(100000 + serial) != NULL);
    CHECK(strsignal(1000 + serial) != NULL);
    CHECK(dlsym(RTLD_DEFAULT, "homing_test_no_such_symbol") == NULL);
}

struct handing {
    int serial;
    void **blocks;
};

static void *hand_out_and_exit(void *arg) {
    struct handing *h = arg;
    for (size_t i = 0; i < BLOCKS_PER_THREAD; i++) {
        h->blocks[i] = malloc(BLOCK_SIZE);
        if (h->blocks[i] == NULL)
            return (void *)1;
        fill(h->blocks[i], 16, (uintptr_t)h->serial * BLOCKS_PER_THREAD + i);
    }
    make_glibc_thread_buffers(h->serial);
    return NULL;
}

static void *late_buffers_only(void *arg) {
    make_glibc_thread_buffers((int)(intptr_t)arg);
    return NULL;
}

/* What glibc keeps for the rest of the process once threads have run (a
 * cached thread stack and its DTV, a block of ours), made before a case
 * takes its baseline. */
static void warm_up(void) {
    pthread_t t;
    free(malloc(1));
    CHECK(pthread_create(&t, NULL, late_buffers_only, (void *)(intptr_t)-1) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

/* homing_collect, then the statistics (found at run time, as stats_now). */
static homing_stats_t settled(void) {
    void (*collect)(void) = (void (*)(void))dlsym(RTLD_DEFAULT, "homing_collect");
    CHECK(collect != NULL);
    collect();
    return stats_now();
}

/* 20 threads each hand 8 MB to the main thread, make glibc's late buffers,
 * and exit; the main thread frees everything. RSS, address space and the
 * live set come back to where they were. */
static void blocks_of_exited_threads_come_home(void) {
    static void *blocks[BLOCKS_PER_THREAD];
    warm_up();
    homing_stats_t base = settled();
    size_t rss_base = rss_now();
    for (int t = 0; t < HANDING_THREADS; t++) {
        struct handing h = {t, blocks};
        pthread_t thread;
        void *result;
        CHECK(pthread_create(&thread, NULL, hand_out_and_exit, &h) == 0);
        CHECK(pthread_join(thread, &result) == 0);
        CHECK(result == NULL);
        for (size_t i = 0; i < BLOCKS_PER_THREAD; i++) {
            CHECK(holds(blocks[i], 16, (uintptr_t)t * BLOCKS_PER_THREAD + i));
            free(blocks[i]);
        }
    }
    homing_stats_t end = settled();
    size_t rss_end = rss_now();
    if (end.live_blocks != base.live_blocks || end.heaps_abandoned != base.heaps_abandoned ||
        rss_end > rss_base + SLACK_BYTES ||
        end.os_mapped - end.os_cached > base.os_mapped - base.os_cached + SLACK_BYTES) {
        fprintf(stderr,
                "live blocks %zu -> %zu, abandoned heaps %zu -> %zu, RSS %zu -> %zu KiB, "
                "held %zu -> %zu KiB\n",
                base.live_blocks, end.live_blocks, base.heaps_abandoned, end.heaps_abandoned,
                rss_base >> 10, rss_end >> 10, (base.os_mapped - base.os_cached) >> 10,
                (end.os_mapped - end.os_cached) >> 10);
        CHECK(!"memory of exited threads stranded");
    }
    CHECK(end.heaps <= base.heaps + 2);
}


/* 1,000 threads, two alive at a time, each with one failed dlsym (and the
 * other late buffers): heaps are reused, never one per thread. */
static void many_threads_reuse_heaps(void) {
    warm_up();
    homing_stats_t base = settled();
    for (int t = 0; t < MANY_THREADS; t += 2) {
        pthread_t a, b;
        CHECK(pthread_create(&a, NULL, late_buffers_only, (void *)(intptr_t)t) == 0);
        CHECK(pthread_create(&b, NULL, late_buffers_only, (void *)(intptr_t)(t + 1)) == 0);
        CHECK(pthread_join(a, NULL) == 0);
        CHECK(pthread_join(b, NULL) == 0);
    }
    homing_stats_t end = settled();
    if (end.heaps > base.heaps + 4 || end.heaps_abandoned > base.heaps_abandoned + 2) {
        fprintf(stderr, "heaps %zu -> %zu (abandoned %zu -> %zu) over %d threads\n", base.heaps,
                end.heaps, base.heaps_abandoned, end.heaps_abandoned, MANY_THREADS);
        CHECK(!"a heap per exited thread");
    }
}

static const struct test_case cases[] = {
    CASE(blocks_of_exited_threads_come_home),
    CASE(many_threads_reuse_heaps),
};

MAIN(cases)
