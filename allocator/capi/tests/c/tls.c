/* Dynamic TLS of dlopen'ed libraries while homing is the allocator: the
 * dynamic loader allocates a thread's TLS blocks and grows its DTV with
 * malloc, lazily, from inside __tls_get_addr, which homing's own
 * thread-local access also goes through when the library is built without
 * feature initial-exec-tls (or off x86-64). Threads created before the
 * dlopens, after them, and while libraries are closed and reopened.
 * The harness puts TLS_COPIES copies of tls_lib.so in $HOMING_TEST_TLS_DIR. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

/* Copies of tls_lib.so: more than the DTV's spare slots (14 in glibc), so
 * threads' DTVs must grow. */
#define TLS_COPIES 40
/* Threads per case. */
#define THREADS 4

typedef long (*bump_fn)(void);

static void *libs[TLS_COPIES];
static bump_fn bumps[TLS_COPIES];
static atomic_int go;

static void open_copies(void) {
    const char *dir = getenv("HOMING_TEST_TLS_DIR");
    CHECK(dir != NULL);
    for (int i = 0; i < TLS_COPIES; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/libtls%d.so", dir, i);
        libs[i] = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        if (libs[i] == NULL)
            fprintf(stderr, "%s\n", dlerror());
        CHECK(libs[i] != NULL);
        bumps[i] = (bump_fn)dlsym(libs[i], "tls_bump");
        CHECK(bumps[i] != NULL);
        CHECK(bumps[i]() == 6); /* the main thread's first access */
    }
}

static void close_copies(void) {
    for (int i = 0; i < TLS_COPIES; i++)
        CHECK(dlclose(libs[i]) == 0);
}

static void *churn(void) {
    for (int i = 0; i < 2000; i++) {
        void *p = malloc((size_t)(i % 700) + 1);
        if (p == NULL)
            return (void *)1;
        memset(p, i, (size_t)(i % 700) + 1);
        free(p);
    }
    return NULL;
}

static void *allocate_after_go(void *touch_tls) {
    free(malloc(10)); /* bind a heap before the dlopens */
    while (!atomic_load(&go))
        sched_yield();
    if (touch_tls != NULL) {
        /* This thread's first access to the new modules: the loader
         * grows its DTV and allocates its TLS blocks with malloc. */
        for (int i = TLS_COPIES - 1; i >= 0; i--)
            if (bumps[i]() != 6)
                return (void *)2;
    }
    return churn();
}

static void run_threads_created_before(int touch_tls) {
    atomic_store(&go, 0);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, allocate_after_go, touch_tls ? (void *)1 : NULL) == 0);
    open_copies();
    atomic_store(&go, 1);
    for (int i = 0; i < THREADS; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0);
        CHECK(r == NULL);
    }
    close_copies();
}

static void threads_created_before_dlopen_allocate(void) { run_threads_created_before(0); }

static void threads_created_before_dlopen_touch_new_tls(void) { run_threads_created_before(1); }

static void *touch_then_allocate(void *arg) {
    (void)arg;
    for (int i = 0; i < TLS_COPIES; i++)
        if (bumps[i]() != 6)
            return (void *)2;
    return churn();
}

static void threads_created_after_dlopen(void) {
    open_copies();
    for (int round = 0; round < 10; round++) {
        pthread_t t[THREADS];
        for (int i = 0; i < THREADS; i++)
            CHECK(pthread_create(&t[i], NULL, touch_then_allocate, NULL) == 0);
        for (int i = 0; i < THREADS; i++) {
            void *r;
            CHECK(pthread_join(t[i], &r) == 0);
            CHECK(r == NULL);
        }
    }
    close_copies();
}

static atomic_int stop;

static void *allocate_until_stop(void *arg) {
    (void)arg;
    while (!atomic_load(&stop))
        if (churn() != NULL)
            return (void *)1;
    return NULL;
}

static void dlopen_dlclose_while_threads_allocate(void) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, allocate_until_stop, NULL) == 0);
    for (int round = 0; round < 5; round++) {
        open_copies();
        close_copies();
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < THREADS; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0);
        CHECK(r == NULL);
    }
}

static const struct test_case cases[] = {
    CASE(threads_created_before_dlopen_allocate),
    CASE(threads_created_before_dlopen_touch_new_tls),
    CASE(threads_created_after_dlopen),
    CASE(dlopen_dlclose_while_threads_allocate),
};
MAIN(cases)
