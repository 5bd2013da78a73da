/* Heaps that move with a VM's state: a pool of worker threads runs jobs on
 * "states", each with its own first-class heap, handing the heap from
 * worker to worker with homing_heap_release / homing_heap_acquire while
 * another thread frees the states' blocks; per-heap statistics and the
 * per-heap limit. Linked against libhoming.so. */
#include "check.h"

#include <pthread.h>

#define STATES 8
#define WORKERS 4
#define JOBS 400
#define PER_JOB 300
#define KEEP_MAX 2000

struct state {
    homing_heap_t *heap;
    void *kept[KEEP_MAX];
    size_t nkept;
    size_t given; /* blocks handed to the freer thread */
    unsigned long long rng;
};

static unsigned rnd(struct state *s) {
    s->rng = s->rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)(s->rng >> 33);
}

/* The scheduler: a queue of states (a mutex and a condition variable). */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static struct state *queue[STATES];
static size_t queued;
static int jobs_left = JOBS;

/* The freer: blocks of any state, freed with plain free() whenever they
 * arrive, also while their heap is between two workers. */
#define RING 4096
static void *ring[RING];
static size_t ring_head, ring_tail;
static int freer_stop;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;

static void give_away(void *p) {
    for (;;) {
        pthread_mutex_lock(&ring_lock);
        if (ring_head - ring_tail < RING) {
            ring[ring_head++ % RING] = p;
            pthread_mutex_unlock(&ring_lock);
            return;
        }
        pthread_mutex_unlock(&ring_lock);
        sched_yield();
    }
}

static void *freer(void *arg) {
    (void)arg;
    for (;;) {
        void *p = NULL;
        int stop;
        pthread_mutex_lock(&ring_lock);
        if (ring_tail < ring_head)
            p = ring[ring_tail++ % RING];
        stop = freer_stop;
        pthread_mutex_unlock(&ring_lock);
        if (p != NULL)
            free(p);
        else if (stop)
            return NULL;
        else
            sched_yield();
    }
}

static void job(struct state *s) {
    for (int i = 0; i < PER_JOB; i++) {
        size_t size = 8 + rnd(s) % (rnd(s) % 8 == 0 ? 40000 : 600);
        unsigned char *p = homing_heap_malloc(s->heap, size);
        CHECK(p != NULL);
        memset(p, 0xA5, size);
        switch (rnd(s) % 4) {
        case 0:
            if (s->nkept < KEEP_MAX) {
                s->kept[s->nkept++] = p;
                break;
            }
            /* fall through */
        case 1:
            homing_heap_free(s->heap, p);
            break;
        case 2:
            s->given++;
            give_away(p);
            break;
        default:
            /* Free an older block of ours. */
            if (s->nkept > 0) {
                size_t k = rnd(s) % s->nkept;
                homing_heap_free(s->heap, s->kept[k]);
                s->kept[k] = s->kept[--s->nkept];
            }
            homing_heap_free(s->heap, p);
            break;
        }
    }
}

static void *worker(void *arg) {
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (queued == 0 && jobs_left > 0)
            pthread_cond_wait(&ready, &lock);
        if (jobs_left <= 0) {
            pthread_mutex_unlock(&lock);
            return NULL;
        }
        jobs_left--;
        struct state *s = queue[--queued];
        pthread_mutex_unlock(&lock);

        CHECK(homing_heap_acquire(s->heap) == 0);
        job(s);
        homing_heap_stats_t st;
        homing_heap_stats(s->heap, &st);
        CHECK(st.live_blocks >= s->nkept);
        CHECK(homing_heap_release(s->heap) == 0);
        /* Released: using it now would be a bug; releasing again fails. */
        CHECK(homing_heap_release(s->heap) == EPERM);

        pthread_mutex_lock(&lock);
        queue[queued++] = s;
        pthread_cond_broadcast(&ready);
        pthread_mutex_unlock(&lock);
    }
}

static void states_move_between_workers(void) {
    static struct state states[STATES];
    for (int i = 0; i < STATES; i++) {
        states[i].heap = homing_heap_new();
        CHECK(states[i].heap != NULL);
        states[i].rng = (unsigned long long)i * 7919 + 1;
        CHECK(homing_heap_release(states[i].heap) == 0);
        queue[queued++] = &states[i];
    }
    pthread_t f, w[WORKERS];
    CHECK(pthread_create(&f, NULL, freer, NULL) == 0);
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&w[i], NULL, worker, NULL) == 0);
    for (int i = 0; i < WORKERS; i++)
        CHECK(pthread_join(w[i], NULL) == 0);
    pthread_mutex_lock(&ring_lock);
    freer_stop = 1;
    pthread_mutex_unlock(&ring_lock);
    CHECK(pthread_join(f, NULL) == 0);
    size_t given = 0;
    for (int i = 0; i < STATES; i++) {
        struct state *s = &states[i];
        CHECK(homing_heap_acquire(s->heap) == 0);
        CHECK(homing_heap_acquire(s->heap) == 0); /* already ours */
        homing_heap_collect(s->heap);
        homing_heap_stats_t st;
        homing_heap_stats(s->heap, &st);
        /* Every block the freer gave up came home, whichever worker held
         * the heap (or none) when it was freed. */
        CHECK(st.live_blocks == s->nkept);
        CHECK(st.remote_frees == s->given);
        CHECK(st.peak_live_bytes >= st.live_bytes);
        CHECK(st.in_use_bytes >= st.live_bytes && st.os_bytes >= st.in_use_bytes);
        CHECK(st.limit == HOMING_HEAP_NO_LIMIT);
        for (size_t k = 0; k < s->nkept; k++)
            CHECK(((unsigned char *)s->kept[k])[0] == 0xA5);
        given += s->given;
        homing_heap_destroy(s->heap);
    }
    CHECK(given > 0);
}

struct holder_arg {
    homing_heap_t *heap;
    pthread_mutex_t m;
    pthread_cond_t c;
    int phase;
};

static void *hold_then_release(void *p) {
    struct holder_arg *a = p;
    CHECK(homing_heap_acquire(a->heap) == 0);
    pthread_mutex_lock(&a->m);
    a->phase = 1;
    pthread_cond_broadcast(&a->c);
    while (a->phase != 2)
        pthread_cond_wait(&a->c, &a->m);
    pthread_mutex_unlock(&a->m);
    CHECK(homing_heap_release(a->heap) == 0);
    return NULL;
}

/* Without the checked build, misuse of the hand-off is refused with an
 * error code and changes nothing. */
static void hand_off_refusals(void) {
    struct holder_arg a = {homing_heap_new(), PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    CHECK(a.heap != NULL);
    CHECK(homing_heap_acquire(a.heap) == 0); /* the creator holds it */
    CHECK(homing_heap_release(a.heap) == 0);
    CHECK(homing_heap_release(a.heap) == EPERM);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, hold_then_release, &a) == 0);
    pthread_mutex_lock(&a.m);
    while (a.phase != 1)
        pthread_cond_wait(&a.c, &a.m);
    pthread_mutex_unlock(&a.m);
    CHECK(homing_heap_acquire(a.heap) == EBUSY);
    CHECK(homing_heap_release(a.heap) == EPERM);
    pthread_mutex_lock(&a.m);
    a.phase = 2;
    pthread_cond_broadcast(&a.c);
    pthread_mutex_unlock(&a.m);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK(homing_heap_acquire(a.heap) == 0);
    homing_heap_destroy(a.heap);
}

/* The limit: NULL and ENOMEM once the next page would not fit, live bytes
 * never over it, usable again after frees; stats follow. */
static void limit_and_stats(void) {
    enum { LIMIT = 4 << 20, SIZE = 1000, MAX = 2 * LIMIT / SIZE };
    static void *blocks[MAX];
    homing_heap_t *heap = homing_heap_new();
    CHECK(heap != NULL);
    homing_heap_stats_t st;
    homing_heap_stats(heap, &st);
    CHECK(st.live_blocks == 0 && st.live_bytes == 0 && st.in_use_bytes == 0);
    homing_heap_set_limit(heap, LIMIT);
    size_t n = 0;
    for (;;) {
        CHECK(n < MAX);
        errno = 0;
        void *p = homing_heap_malloc(heap, SIZE);
        if (p == NULL) {
            CHECK(errno == ENOMEM);
            break;
        }
        blocks[n++] = p;
    }
    homing_heap_stats(heap, &st);
    CHECK(st.live_blocks == n);
    CHECK(st.live_bytes <= LIMIT && st.in_use_bytes <= LIMIT);
    CHECK(st.live_bytes >= n * SIZE);
    CHECK(st.limit == LIMIT && st.limit_refusals >= 1);
    CHECK(st.peak_live_bytes >= st.live_bytes);
    errno = 0;
    CHECK(homing_heap_malloc(heap, 8 << 20) == NULL && errno == ENOMEM);
    CHECK(homing_heap_calloc(heap, 100, 1000) == NULL && errno == ENOMEM);
    /* Free all, allocate the same again. */
    for (size_t i = 0; i < n; i++)
        homing_heap_free(heap, blocks[i]);
    homing_heap_stats(heap, &st);
    CHECK(st.live_blocks == 0 && st.live_bytes == 0);
    size_t again = 0;
    while (again < n && (blocks[again] = homing_heap_malloc(heap, SIZE)) != NULL)
        again++;
    CHECK(again == n);
    for (size_t i = 0; i < n; i++)
        homing_heap_free(heap, blocks[i]);
    homing_heap_set_limit(heap, HOMING_HEAP_NO_LIMIT);
    void *big = homing_heap_malloc(heap, 8 << 20);
    CHECK(big != NULL);
    homing_heap_stats(heap, &st);
    CHECK(st.live_blocks == 1 && st.live_bytes >= (8 << 20));
    CHECK(st.os_bytes >= (8 << 20) && st.limit == HOMING_HEAP_NO_LIMIT);
    homing_heap_free(heap, big);
    homing_heap_destroy(heap);
}

static const struct test_case cases[] = {
    CASE(states_move_between_workers),
    CASE(hand_off_refusals),
    CASE(limit_and_stats),
};
MAIN(cases)
