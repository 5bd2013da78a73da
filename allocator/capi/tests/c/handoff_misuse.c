/* Misuse of the hand-off that homing's checked build reports: a heap used
 * by a thread that does not hold it, and two threads using one heap at
 * once. Each case must die with SIGABRT and a message naming the call.
 * Linked against a checked libhoming.so. */
#include "check.h"

#include <pthread.h>

static homing_heap_t *shared;

static void *malloc_from_shared(void *arg) {
    (void)arg;
    (void)homing_heap_malloc(shared, 100);
    return NULL;
}

static void *acquire_shared(void *arg) {
    (void)arg;
    (void)homing_heap_acquire(shared);
    return NULL;
}

static void run_on_a_thread(void *(*fn)(void *)) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, fn, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

/* The creator holds it; another thread allocates without acquiring. */
static void used_by_a_thread_that_does_not_hold_it(void) {
    shared = homing_heap_new();
    CHECK(shared != NULL);
    run_on_a_thread(malloc_from_shared);
}

/* Released, then used again by the thread that released it. */
static void used_after_release(void) {
    shared = homing_heap_new();
    CHECK(shared != NULL);
    void *p = homing_heap_malloc(shared, 100);
    CHECK(p != NULL);
    CHECK(homing_heap_release(shared) == 0);
    homing_heap_free(shared, p);
}

/* A second thread acquires while the creator still holds it. */
static void acquired_while_another_thread_holds_it(void) {
    shared = homing_heap_new();
    CHECK(shared != NULL);
    run_on_a_thread(acquire_shared);
}

/* A worker releases a heap it never held. */
static void *release_shared(void *arg) {
    (void)arg;
    (void)homing_heap_release(shared);
    return NULL;
}

static void released_by_a_thread_that_does_not_hold_it(void) {
    shared = homing_heap_new();
    CHECK(shared != NULL);
    run_on_a_thread(release_shared);
}

static void *destroy_shared(void *arg) {
    (void)arg;
    homing_heap_destroy(shared);
    return NULL;
}

static void destroyed_by_a_thread_that_does_not_hold_it(void) {
    shared = homing_heap_new();
    CHECK(shared != NULL);
    CHECK(homing_heap_release(shared) == 0);
    run_on_a_thread(destroy_shared);
}

/* The proper hand-off passes the checks (this case must exit 0). */
static void *proper_job(void *arg) {
    (void)arg;
    CHECK(homing_heap_acquire(shared) == 0);
    void *p = homing_heap_malloc(shared, 100);
    CHECK(p != NULL);
    homing_heap_free(shared, p);
    homing_heap_stats_t st;
    homing_heap_stats(shared, &st);
    CHECK(homing_heap_release(shared) == 0);
    return NULL;
}

static void proper_hand_off_passes(void) {
    shared = homing_heap_new();
    CHECK(shared != NULL);
    CHECK(homing_heap_release(shared) == 0);
    for (int i = 0; i < 4; i++)
        run_on_a_thread(proper_job);
    CHECK(homing_heap_acquire(shared) == 0);
    homing_heap_destroy(shared);
}

static const struct test_case cases[] = {
    CASE(used_by_a_thread_that_does_not_hold_it),
    CASE(used_after_release),
    CASE(acquired_while_another_thread_holds_it),
    CASE(released_by_a_thread_that_does_not_hold_it),
    CASE(destroyed_by_a_thread_that_does_not_hold_it),
    CASE(proper_hand_off_passes),
};
MAIN(cases)
