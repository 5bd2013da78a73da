/* libhoming.so loaded with dlopen by a program that is not linked with it
 * (and does not preload it), so its malloc stays the C library's and only
 * the homing_* API is used, through dlsym.
 *
 * libhoming.so uses initial-exec TLS for its thread heap pointer (it is
 * marked STATIC_TLS): loaded late, its TLS block comes from the surplus of
 * static TLS glibc reserves, and the loader must copy its TLS image, with
 * the heap pointer's initial value relocated, into every thread that
 * already runs. The cases: threads that existed before the dlopen, threads
 * created and exiting after it (their heaps are released at exit and
 * reused), and, with the surplus used up by other initial-exec libraries,
 * a dlopen that fails cleanly with the loader's message (or, for a build
 * with feature tls-descriptors, that loads and works on dynamic TLS).
 *
 * The harness passes the library in $HOMING_TEST_LIB and, for the last
 * case, FILLER_COPIES copies of tls_filler.c built with 256 and with 8
 * bytes of TLS (libfillbig<i>.so, libfillsmall<i>.so) in
 * $HOMING_TEST_FILLER_DIR. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

/* Threads running before the dlopen. */
#define EARLY_THREADS 4
/* Threads created (and joined) one batch after another after it. */
#define CHURN_THREADS 200
/* Threads alive at once in the churn. */
#define CHURN_WIDTH 4
/* Blocks each thread allocates per round. */
#define BLOCKS 1000
/* Copies of each tls_filler.so the harness makes (more than the surplus
 * holds of either). */
#define FILLER_COPIES 64

static void *(*h_malloc)(size_t);
static void (*h_free)(void *);
static void (*h_stats)(homing_stats_t *);
static atomic_int go;

static void *open_homing(void) {
    const char *path = getenv("HOMING_TEST_LIB");
    CHECK(path != NULL);
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        fprintf(stderr, "dlopen: %s\n", dlerror());
    return lib;
}

static void bind_api(void *lib) {
    h_malloc = (void *(*)(size_t))dlsym(lib, "homing_malloc");
    h_free = (void (*)(void *))dlsym(lib, "homing_free");
    h_stats = (void (*)(homing_stats_t *))dlsym(lib, "homing_stats");
    CHECK(h_malloc != NULL && h_free != NULL && h_stats != NULL);
    /* The process's malloc is still the C library's. */
    CHECK(dlsym(RTLD_DEFAULT, "malloc") != dlsym(lib, "malloc"));
}

/* Allocates BLOCKS blocks through homing, checks and frees them; returns
 * nonzero on a failure (threads cannot CHECK). */
static int churn(uintptr_t seed) {
    void *blocks[BLOCKS];
    for (size_t i = 0; i < BLOCKS; i++) {
        size_t size = 1 + (i * 37 + seed) % 2000;
        blocks[i] = h_malloc(size);
        if (blocks[i] == NULL || (uintptr_t)blocks[i] % 16 != 0)
            return 1;
        fill(blocks[i], size < 32 ? size : 32, seed + i);
    }
    for (size_t i = 0; i < BLOCKS; i++) {
        size_t size = 1 + (i * 37 + seed) % 2000;
        if (!holds(blocks[i], size < 32 ? size : 32, seed + i))
            return 1;
        h_free(blocks[i]);
    }
    return 0;
}

static void *early_thread(void *arg) {
    while (!atomic_load(&go))
        sched_yield();
    return (void *)(uintptr_t)churn((uintptr_t)arg);
}

static void *churn_thread(void *arg) {
    return (void *)(uintptr_t)churn((uintptr_t)arg);
}

static void threads_before_and_after_the_dlopen(void) {
    pthread_t early[EARLY_THREADS];
    for (uintptr_t i = 0; i < EARLY_THREADS; i++)
        CHECK(pthread_create(&early[i], NULL, early_thread, (void *)i) == 0);
    void *lib = open_homing();
    CHECK(lib != NULL);
    bind_api(lib);
    CHECK(churn(99) == 0);
    /* Threads that ran before the library was loaded got its TLS image. */
    atomic_store(&go, 1);
    for (int i = 0; i < EARLY_THREADS; i++) {
        void *failed;
        CHECK(pthread_join(early[i], &failed) == 0);
        CHECK(failed == NULL);
    }
    /* Threads created after it, exiting batch after batch. */
    for (int done = 0; done < CHURN_THREADS; done += CHURN_WIDTH) {
        pthread_t t[CHURN_WIDTH];
        for (uintptr_t i = 0; i < CHURN_WIDTH; i++)
            CHECK(pthread_create(&t[i], NULL, churn_thread, (void *)(done + i)) == 0);
        for (int i = 0; i < CHURN_WIDTH; i++) {
            void *failed;
            CHECK(pthread_join(t[i], &failed) == 0);
            CHECK(failed == NULL);
        }
    }
    homing_stats_t s;
    h_stats(&s);
    /* Exited threads' heaps were released and reused, not piled up. */
    CHECK(s.heaps <= EARLY_THREADS + 4 * CHURN_WIDTH + 4);
    CHECK(s.live_blocks == 0);
}

/* Loads copies of an initial-exec TLS library of `bytes` bytes of TLS
 * ("big" or "small") until the loader refuses one, with its "static TLS"
 * message. Returns how many were loaded. */
static int fill_static_tls(const char *kind, long bytes) {
    const char *dir = getenv("HOMING_TEST_FILLER_DIR");
    CHECK(dir != NULL);
    for (int i = 0; i < FILLER_COPIES; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/libfill%s%d.so", dir, kind, i);
        void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (lib == NULL) {
            const char *why = dlerror();
            CHECK(why != NULL && strstr(why, "static TLS") != NULL);
            return i;
        }
        long (*touch)(void) = (long (*)(void))dlsym(lib, "filler_touch");
        CHECK(touch != NULL && touch() == bytes);
    }
    fprintf(stderr, "%d initial-exec libraries of %s TLS all fit\n", FILLER_COPIES, kind);
    exit(1);
}

/* With the surplus used up, $HOMING_TEST_STATIC_TLS says what must happen:
 * "refused" for the initial-exec library (STATIC_TLS), "loads" for the
 * TLS-descriptor build, whose words then live in dynamic TLS. */
static void static_tls_used_up(void) {
    const char *expect = getenv("HOMING_TEST_STATIC_TLS");
    CHECK(expect != NULL);
    /* Big fillers until one is refused, then small ones: what is left is
     * less than a small filler's 8 bytes, less than libhoming.so needs. */
    int big = fill_static_tls("big", 256);
    int small = fill_static_tls("small", 8);
    fprintf(stderr, "static TLS used up by %d + %d fillers\n", big, small);
    void *lib = open_homing();
    if (strcmp(expect, "refused") == 0) {
        CHECK(lib == NULL);
        /* The process goes on, with its own malloc. */
        void *p = malloc(100);
        CHECK(p != NULL);
        free(p);
        return;
    }
    CHECK(strcmp(expect, "loads") == 0);
    CHECK(lib != NULL);
    bind_api(lib);
    CHECK(churn(7) == 0);
    for (int done = 0; done < 40; done += CHURN_WIDTH) {
        pthread_t t[CHURN_WIDTH];
        for (uintptr_t i = 0; i < CHURN_WIDTH; i++)
            CHECK(pthread_create(&t[i], NULL, churn_thread, (void *)(done + i)) == 0);
        for (int i = 0; i < CHURN_WIDTH; i++) {
            void *failed;
            CHECK(pthread_join(t[i], &failed) == 0);
            CHECK(failed == NULL);
        }
    }
}

static const struct test_case cases[] = {
    CASE(threads_before_and_after_the_dlopen),
    CASE(static_tls_used_up),
};

MAIN_WITHOUT_HOMING_MALLOC(cases)
