/* Threads: a C thread that only frees; frees into the heaps of exited
 * threads; thread churn (heaps are reused, not leaked); allocation in
 * pthread key destructors during thread exit. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

/* Blocks handed between threads in each case. */
#define BLOCKS 20000
/* Threads created one after another by the churn case. */
#define CHURN_THREADS 300
/* Threads alive at once in the churn case. */
#define CHURN_WIDTH 4

static size_t size_of_block(size_t i) {
    /* Mostly small, some medium, a few huge. */
    if (i % 1000 == 999)
        return ((size_t)1 << 20) + i;
    if (i % 50 == 49)
        return 10000 + i % 5000;
    return 1 + i % 300;
}

struct batch {
    void **blocks;
    size_t n;
};

static void *free_all(void *arg) {
    /* This thread never calls malloc: it only frees blocks another thread
     * allocated (and checks them first). */
    struct batch *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        if (!holds(b->blocks[i], size_of_block(i) < 64 ? size_of_block(i) : 64, i))
            return (void *)1;
        free(b->blocks[i]);
    }
    return NULL;
}

static void a_thread_that_only_frees(void) {
    static void *blocks[BLOCKS];
    for (size_t i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(size_of_block(i));
        CHECK(blocks[i] != NULL);
        fill(blocks[i], size_of_block(i) < 64 ? size_of_block(i) : 64, i);
    }
    struct batch b = {blocks, BLOCKS};
    homing_stats_t before = stats_now();
    pthread_t t;
    void *result;
    CHECK(pthread_create(&t, NULL, free_all, &b) == 0);
    CHECK(pthread_join(t, &result) == 0);
    CHECK(result == NULL);
    homing_stats_t after = stats_now();
    CHECK(after.remote_posted >= before.remote_posted + BLOCKS - BLOCKS / 1000);
    /* The blocks come home: allocating again reuses them. */
    for (size_t i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(size_of_block(i));
        CHECK(blocks[i] != NULL);
    }
    for (size_t i = 0; i < BLOCKS; i++)
        free(blocks[i]);
}

static void *allocate_and_exit(void *arg) {
    struct batch *b = arg;
    for (size_t i = 0; i < b->n; i++) {
        b->blocks[i] = malloc(size_of_block(i));
        if (b->blocks[i] == NULL)
            return (void *)1;
        fill(b->blocks[i], size_of_block(i) < 64 ? size_of_block(i) : 64, i);
    }
    return NULL;
}

static void frees_into_heaps_of_exited_threads(void) {
    static void *blocks[BLOCKS];
    struct batch b = {blocks, BLOCKS};
    pthread_t t;
    void *result;
    CHECK(pthread_create(&t, NULL, allocate_and_exit, &b) == 0);
    CHECK(pthread_join(t, &result) == 0);
    CHECK(result == NULL);
    /* The thread is gone; its heap is abandoned with every block live. */
    for (size_t i = 0; i < BLOCKS; i++) {
        CHECK(holds(blocks[i], size_of_block(i) < 64 ? size_of_block(i) : 64, i));
        free(blocks[i]);
    }
    homing_stats_t s = stats_now();
    CHECK(s.live_blocks < BLOCKS / 2);
}

static atomic_size_t churned;

static void *churn_one(void *arg) {
    (void)arg;
    void *keep[64];
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 64; i++) {
            keep[i] = malloc((size_t)(16 + i * 24));
            if (keep[i] == NULL)
                return (void *)1;
        }
        for (int i = 0; i < 64; i++)
            free(keep[i]);
    }
    /* Leave one block behind for the main thread to free. */
    void *left = malloc(100);
    atomic_fetch_add(&churned, 1);
    return left;
}

static void thread_churn_reuses_heaps(void) {
    pthread_t t[CHURN_WIDTH];
    for (int i = 0; i < CHURN_THREADS / CHURN_WIDTH; i++) {
        for (int j = 0; j < CHURN_WIDTH; j++)
            CHECK(pthread_create(&t[j], NULL, churn_one, NULL) == 0);
        for (int j = 0; j < CHURN_WIDTH; j++) {
            void *left;
            CHECK(pthread_join(t[j], &left) == 0);
            CHECK(left != NULL && left != (void *)1);
            free(left);
        }
    }
    CHECK(atomic_load(&churned) == CHURN_THREADS);
    homing_stats_t s = stats_now();
    /* Exited threads' heaps are adopted or reused, not piled up. */
    CHECK(s.heaps <= 4 * CHURN_WIDTH + 4);
}

static pthread_key_t late_key;

static void late_destructor(void *value) {
    /* Runs at thread exit, possibly after homing's own key destructor:
     * allocating and freeing here must neither recurse nor leak a heap. */
    free(value);
    void *p = malloc(1000);
    memset(p, 1, 1000);
    free(p);
    char *again = strdup("one more round");
    if (again != NULL && atomic_fetch_add(&churned, 1) % 2 == 0) {
        /* Set the key again: glibc runs destructors another round. */
        pthread_setspecific(late_key, again);
    } else {
        free(again);
    }
}

static void *with_late_destructor(void *arg) {
    (void)arg;
    pthread_setspecific(late_key, malloc(50));
    void *p = malloc(5000);
    free(p);
    return NULL;
}

static void allocation_in_key_destructors_at_exit(void) {
    CHECK(pthread_key_create(&late_key, late_destructor) == 0);
    for (int i = 0; i < 100; i++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, with_late_destructor, NULL) == 0);
        CHECK(pthread_join(t, NULL) == 0);
    }
    homing_stats_t s = stats_now();
    CHECK(s.heaps <= 8);
}

static void *detached_worker(void *arg) {
    void **slot = arg;
    void *p = malloc(300);
    memset(p, 3, 300);
    free(*slot); /* a block the main thread allocated */
    *slot = NULL;
    free(p);
    return NULL;
}

static void detached_threads_exit_while_main_allocates(void) {
    enum { N = 200 };
    static void *slots[N];
    for (int i = 0; i < N; i++) {
        slots[i] = malloc((size_t)(i + 1) * 8);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        CHECK(pthread_create(&t, &attr, detached_worker, &slots[i]) == 0);
        pthread_attr_destroy(&attr);
        free(malloc((size_t)(i + 1) * 16));
    }
    /* Give the last workers a moment; then the process exits with
     * detached threads possibly still running. */
    usleep(10000);
}

static const struct test_case cases[] = {
    CASE(a_thread_that_only_frees),
    CASE(frees_into_heaps_of_exited_threads),
    CASE(thread_churn_reuses_heaps),
    CASE(allocation_in_key_destructors_at_exit),
    CASE(detached_threads_exit_while_main_allocates),
};
MAIN(cases)
