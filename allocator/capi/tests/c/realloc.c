/* realloc: grows and shrinks keep the prefix, across every kind of block;
 * the NULL and zero-size policies; failure leaves the block alone. */
#include "check.h"

#include <malloc.h>

/* Largest size the grow/shrink walks reach. */
#define WALK_MAX ((size_t)48 << 20)

static void grow_then_shrink_keeps_prefix(void) {
    size_t size = 1;
    unsigned char *p = malloc(size);
    CHECK(p != NULL);
    fill(p, size, 42);
    while (size < WALK_MAX) {
        size_t next = size + size / 3 + 1;
        p = realloc(p, next);
        CHECK(p != NULL);
        CHECK((uintptr_t)p % HOMING_MALLOC_ALIGN == 0);
        CHECK(holds(p, size, 42));
        fill(p, next, 42);
        size = next;
    }
    while (size > 1) {
        size_t next = size / 2;
        p = realloc(p, next);
        CHECK(p != NULL);
        CHECK(holds(p, next, 42));
        size = next;
    }
    free(p);
}

static void every_size_step_small(void) {
    unsigned char *p = NULL;
    size_t size = 0;
    for (size_t next = 1; next <= 20000; next += 7) {
        p = realloc(p, next);
        CHECK(p != NULL);
        CHECK(holds(p, size, 9));
        fill(p, next, 9);
        size = next;
    }
    free(p);
}

static void realloc_null_is_malloc(void) {
    char *p = realloc(NULL, 100);
    CHECK(p != NULL);
    CHECK(malloc_usable_size(p) >= 100);
    memset(p, 1, 100);
    free(p);
}

static void realloc_zero_frees_and_returns_null(void) {
    /* homing's documented policy (glibc's): p is freed, NULL comes back,
     * errno is untouched. Freeing p again would be a double free. */
    for (int i = 0; i < 1000; i++) {
        void *p = malloc((size_t)i * 10);
        CHECK(p != NULL);
        errno = 99;
        CHECK(realloc(p, 0) == NULL);
        CHECK(errno == 99);
    }
    homing_stats_t s = stats_now();
    CHECK(s.live_blocks < 1000);
}

static void realloc_of_aligned_block_keeps_data(void) {
    unsigned char *p = aligned_alloc(4096, 5000);
    CHECK(p != NULL);
    fill(p, 5000, 3);
    p = realloc(p, 200000);
    CHECK(p != NULL);
    CHECK(holds(p, 5000, 3));
    p = realloc(p, 10);
    CHECK(p != NULL);
    CHECK(holds(p, 10, 3));
    free(p);
}

static void failed_realloc_keeps_block(void) {
    size_t sizes[] = {10, 5000, 300000, (size_t)5 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = malloc(sizes[i]);
        CHECK(p != NULL);
        fill(p, sizes[i], i);
        errno = 0;
        CHECK(realloc(p, SIZE_MAX - 4096) == NULL);
        CHECK(errno == ENOMEM);
        CHECK(holds(p, sizes[i], i));
        free(p);
    }
}

static void reallocarray_multiplies(void) {
    int *v = reallocarray(NULL, 10, sizeof *v);
    CHECK(v != NULL);
    for (int i = 0; i < 10; i++)
        v[i] = i;
    v = reallocarray(v, 100000, sizeof *v);
    CHECK(v != NULL);
    for (int i = 0; i < 10; i++)
        CHECK(v[i] == i);
    free(v);
}

static void in_place_when_it_fits(void) {
    /* A shrink by a little stays where it is (homing keeps a block that
     * is at most twice too big), and the prefix is of course intact. */
    unsigned char *p = malloc(1000);
    CHECK(p != NULL);
    fill(p, 1000, 5);
    unsigned char *q = realloc(p, 900);
    CHECK(q == p);
    CHECK(holds(q, 900, 5));
    free(q);
}

/* A buffer grown by realloc in small steps (the common C idiom) is not
 * copied at every step once it is huge: homing grows moving huge blocks
 * geometrically, so the number of moves stays logarithmic. */
static void growing_in_small_steps_moves_rarely(void) {
    enum { STEP = 1000 };
    size_t len = 0, moves = 0;
    unsigned char *buf = NULL;
    while (len < ((size_t)32 << 20)) {
        unsigned char *bigger = realloc(buf, len + STEP);
        CHECK(bigger != NULL);
        moves += bigger != buf;
        buf = bigger;
        memset(buf + len, (int)(len / STEP), STEP);
        len += STEP;
    }
    CHECK(moves < 100);
    for (size_t i = 0; i < len; i += STEP)
        CHECK(buf[i] == (unsigned char)(i / STEP));
    free(buf);
}

static const struct test_case cases[] = {
    CASE(grow_then_shrink_keeps_prefix),
    CASE(every_size_step_small),
    CASE(realloc_null_is_malloc),
    CASE(realloc_zero_frees_and_returns_null),
    CASE(realloc_of_aligned_block_keeps_data),
    CASE(failed_realloc_keeps_block),
    CASE(reallocarray_multiplies),
    CASE(in_place_when_it_fits),
    CASE(growing_in_small_steps_moves_rarely),
};
MAIN(cases)
