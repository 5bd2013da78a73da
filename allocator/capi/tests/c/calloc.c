/* calloc: overflow pairs give NULL and ENOMEM; memory is zero even when it
 * is reused. */
#include "check.h"

#include <malloc.h>

/* Half of the address space, as a count that overflows when doubled. */
#define HALF ((SIZE_MAX >> 1) + 1)
#define HALF_WORD ((size_t)1 << (sizeof(size_t) * 4))

static const size_t overflowing[][2] = {
    {SIZE_MAX, 2},        {2, SIZE_MAX},
    {HALF, 2},            {2, HALF},
    {HALF_WORD, HALF_WORD}, {HALF_WORD + 1, HALF_WORD - 1},
    {SIZE_MAX, SIZE_MAX}, {SIZE_MAX / 3 + 1, 3},
    {65537, SIZE_MAX / 65536},
};

static void overflow_pairs_are_enomem(void) {
    for (size_t i = 0; i < sizeof overflowing / sizeof overflowing[0]; i++) {
        errno = 0;
        CHECK(calloc(overflowing[i][0], overflowing[i][1]) == NULL);
        CHECK(errno == ENOMEM);
    }
}

static void products_just_below_overflow_are_too_big(void) {
    errno = 0;
    CHECK(calloc(SIZE_MAX / 2, 2) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(calloc(1, SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
}

static void zero_counts_give_unique_blocks(void) {
    void *a = calloc(0, 0), *b = calloc(0, SIZE_MAX), *c = calloc(SIZE_MAX, 0);
    CHECK(a != NULL && b != NULL && c != NULL);
    CHECK(a != b && b != c && a != c);
    free(a);
    free(b);
    free(c);
}

static void fresh_memory_is_zero(void) {
    size_t sizes[] = {1, 16, 17, 1000, 8192, 8193, 100000, 131072, 131073, (size_t)3 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = calloc(1, sizes[i]);
        CHECK(p != NULL);
        for (size_t j = 0; j < sizes[i]; j++)
            CHECK(p[j] == 0);
        free(p);
    }
}

/* malloc, dirty, free, then calloc the same size (homing hands the same
 * block back): it must be zero again, whole usable size included. */
static void reused_memory_is_zero(void) {
    for (size_t size = 8; size <= ((size_t)1 << 22); size = size * 3 / 2 + 1) {
        for (int round = 0; round < 3; round++) {
            unsigned char *dirty = malloc(size);
            CHECK(dirty != NULL);
            memset(dirty, 0xAB, malloc_usable_size(dirty));
            free(dirty);
            unsigned char *p = calloc(size, 1);
            CHECK(p != NULL);
            for (size_t j = 0; j < size; j++)
                CHECK(p[j] == 0);
            free(p);
        }
    }
}

static void counts_times_sizes(void) {
    size_t pairs[][2] = {{3, 5}, {1000, 8}, {8, 1000}, {4096, 33}, {7, 65537}};
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        size_t n = pairs[i][0] * pairs[i][1];
        unsigned char *p = calloc(pairs[i][0], pairs[i][1]);
        CHECK(p != NULL);
        CHECK(malloc_usable_size(p) >= n);
        for (size_t j = 0; j < n; j++)
            CHECK(p[j] == 0);
        memset(p, 1, n);
        free(p);
    }
}

static const struct test_case cases[] = {
    CASE(overflow_pairs_are_enomem),
    CASE(products_just_below_overflow_are_too_big),
    CASE(zero_counts_give_unique_blocks),
    CASE(fresh_memory_is_zero),
    CASE(reused_memory_is_zero),
    CASE(counts_times_sizes),
};
MAIN(cases)
