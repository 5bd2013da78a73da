/* malloc_usable_size: at least the size asked for, all of it writable
 * without touching a neighbour; 0 for NULL. */
#include "check.h"

#include <malloc.h>

static void null_is_zero(void) { CHECK(malloc_usable_size(NULL) == 0); }

static void at_least_the_size_asked(void) {
    for (size_t size = 0; size <= 140000; size += (size < 1024 ? 1 : 97)) {
        void *p = malloc(size);
        CHECK(p != NULL);
        size_t usable = malloc_usable_size(p);
        CHECK(usable >= size);
        /* Size classes waste at most a quarter above 64 bytes. */
        CHECK(size < 64 || usable <= size + size / 4 + HOMING_MALLOC_ALIGN);
        free(p);
    }
}

static void huge_blocks(void) {
    size_t sizes[] = {((size_t)1 << 17) + 1, (size_t)1 << 20, ((size_t)7 << 20) + 5, (size_t)100 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = malloc(sizes[i]);
        CHECK(p != NULL);
        size_t usable = malloc_usable_size(p);
        CHECK(usable >= sizes[i]);
        p[usable - 1] = 1;
        free(p);
    }
}

/* Neighbouring blocks of one class: filling one's whole usable size leaves
 * the others' bytes alone. */
static void usable_bytes_belong_to_the_block(void) {
    enum { N = 50 };
    size_t sizes[] = {1, 24, 100, 1000, 5000, 20000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        unsigned char *p[N];
        for (int i = 0; i < N; i++) {
            p[i] = malloc(sizes[s]);
            CHECK(p[i] != NULL);
            fill(p[i], malloc_usable_size(p[i]), (uintptr_t)i);
        }
        for (int i = 0; i < N; i++)
            CHECK(holds(p[i], malloc_usable_size(p[i]), (uintptr_t)i));
        for (int i = 0; i < N; i++)
            free(p[i]);
    }
}

static void aligned_blocks_too(void) {
    for (size_t align = 16; align <= ((size_t)1 << 22); align <<= 1) {
        void *p = aligned_alloc(align, 3 * align / 2);
        CHECK(p != NULL);
        CHECK(malloc_usable_size(p) >= 3 * align / 2);
        memset(p, 0x5A, malloc_usable_size(p));
        free(p);
    }
}

/* A program that clears its environment before it exits (PHP does): the
 * options homing read when it was loaded still hold. */
static void clears_its_environment(void) {
    free(malloc(100));
    CHECK(clearenv() == 0);
    CHECK(getenv("HOMING_SHOW_STATS") == NULL);
}

static const struct test_case cases[] = {
    CASE(null_is_zero),
    CASE(clears_its_environment),
    CASE(at_least_the_size_asked),
    CASE(huge_blocks),
    CASE(usable_bytes_belong_to_the_block),
    CASE(aligned_blocks_too),
};
MAIN(cases)
