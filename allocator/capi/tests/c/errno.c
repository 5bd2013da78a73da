/* errno and error results, one case at a time. */
#include "check.h"

#include <malloc.h>
#include <stdint.h>

/* A size no allocation can have: above PTRDIFF_MAX. */
#define TOO_BIG ((size_t)PTRDIFF_MAX + 1)

static void malloc_size_max_is_enomem(void) {
    errno = 0;
    CHECK(malloc(SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
}

static void malloc_above_ptrdiff_max_is_enomem(void) {
    errno = 0;
    CHECK(malloc(TOO_BIG) == NULL);
    CHECK(errno == ENOMEM);
}

static void malloc_success_keeps_working_after_enomem(void) {
    CHECK(malloc(SIZE_MAX) == NULL);
    void *p = malloc(100);
    CHECK(p != NULL);
    free(p);
}

static void calloc_overflow_is_enomem(void) {
    errno = 0;
    CHECK(calloc(SIZE_MAX / 2 + 1, 2) == NULL);
    CHECK(errno == ENOMEM);
}

static void calloc_too_big_is_enomem(void) {
    errno = 0;
    CHECK(calloc(TOO_BIG / 8, 8) == NULL);
    CHECK(errno == ENOMEM);
}

static void realloc_too_big_is_enomem_and_keeps_block(void) {
    char *p = malloc(32);
    CHECK(p != NULL);
    strcpy(p, "still here");
    errno = 0;
    CHECK(realloc(p, SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(strcmp(p, "still here") == 0);
    free(p);
}

static void reallocarray_overflow_is_enomem_and_keeps_block(void) {
    char *p = malloc(32);
    CHECK(p != NULL);
    strcpy(p, "still here");
    errno = 0;
    CHECK(reallocarray(p, SIZE_MAX / 4, 8) == NULL);
    CHECK(errno == ENOMEM);
    CHECK(strcmp(p, "still here") == 0);
    free(p);
}

/* 0 unless the kernel accepts every size (vm.overcommit_memory = 1). */
static int kernel_checks_commit(void) {
    FILE *f = fopen("/proc/sys/vm/overcommit_memory", "r");
    int mode = 0;
    if (f != NULL) {
        if (fscanf(f, "%d", &mode) != 1)
            mode = 0;
        fclose(f);
    }
    return mode != 1;
}

/* Sizes the machine cannot commit (1 TiB here): the kernel's overcommit
 * check refuses them, as it does for glibc. */
static void sizes_beyond_the_commit_limit_are_enomem(void) {
    if (!kernel_checks_commit()) {
        fprintf(stderr, "skipped: vm.overcommit_memory = 1\n");
        return;
    }
    size_t tib = (size_t)1 << 40;
    errno = 0;
    CHECK(malloc(tib) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(calloc((size_t)1 << 20, (size_t)1 << 20) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(aligned_alloc((size_t)1 << 22, tib) == NULL);
    CHECK(errno == ENOMEM);
    char *p = malloc(1000);
    CHECK(p != NULL);
    p[999] = 5;
    errno = 0;
    CHECK(realloc(p, tib) == NULL);
    CHECK(errno == ENOMEM && p[999] == 5);
    free(p);
}

static void aligned_alloc_bad_alignment_is_einval(void) {
    size_t bad[] = {0, 3, 24, 48, 100, 4097, SIZE_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECK(aligned_alloc(bad[i], 64) == NULL);
        CHECK(errno == EINVAL);
    }
}

static void aligned_alloc_too_big_is_enomem(void) {
    errno = 0;
    CHECK(aligned_alloc(64, TOO_BIG) == NULL);
    CHECK(errno == ENOMEM);
}

/* memalign follows glibc: 0 or a small alignment is malloc, any other is
 * rounded up to a power of two; only one with no power of two above it
 * fails. (aligned_alloc stays strict: see the case above.) */
static void memalign_rounds_like_glibc(void) {
    size_t asked[] = {0, 1, 24, 48, 100, 4097};
    size_t given[] = {16, 16, 32, 64, 128, 8192};
    for (size_t i = 0; i < sizeof asked / sizeof asked[0]; i++) {
        char *p = memalign(asked[i], 64);
        CHECK(p != NULL);
        CHECK((uintptr_t)p % given[i] == 0);
        memset(p, 1, 64);
        free(p);
    }
    errno = 0;
    CHECK(memalign(SIZE_MAX, 64) == NULL);
    CHECK(errno == EINVAL);
}

static void posix_memalign_bad_alignment_returns_einval(void) {
    size_t bad[] = {0, 1, 2, 4, 12, 24, 48, 4097};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *out = (void *)0x1234;
        errno = 0;
        CHECK(posix_memalign(&out, bad[i], 64) == EINVAL);
        CHECK(out == (void *)0x1234);
        CHECK(errno == 0);
    }
}

static void posix_memalign_too_big_returns_enomem(void) {
    void *out = (void *)0x1234;
    errno = 0;
    CHECK(posix_memalign(&out, 64, TOO_BIG) == ENOMEM);
    CHECK(out == (void *)0x1234);
    CHECK(errno == 0);
}

static void pvalloc_overflow_is_enomem(void) {
    errno = 0;
    CHECK(pvalloc(SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
}

static void valloc_too_big_is_enomem(void) {
    errno = 0;
    CHECK(valloc(TOO_BIG) == NULL);
    CHECK(errno == ENOMEM);
}

static void free_null_does_nothing(void) {
    errno = 1234;
    free(NULL);
    call_free_sized(NULL, 0);
    call_free_aligned_sized(NULL, 64, 0);
    CHECK(errno == 1234);
}

static void free_never_changes_errno(void) {
    size_t sizes[] = {1, 100, 5000, 100000, (size_t)1 << 20, (size_t)64 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(sizes[i]);
        CHECK(p != NULL);
        errno = 4321;
        free(p);
        CHECK(errno == 4321);
        p = aligned_alloc(64, sizes[i]);
        CHECK(p != NULL);
        call_free_aligned_sized(p, 64, sizes[i]);
        CHECK(errno == 4321);
        p = malloc(sizes[i]);
        CHECK(p != NULL);
        call_free_sized(p, sizes[i]);
        CHECK(errno == 4321);
    }
}

static void successful_calls_need_not_touch_errno(void) {
    /* Not required by C, but homing sets errno only on failure. */
    errno = 77;
    void *p = malloc(10);
    void *q = calloc(10, 10);
    p = realloc(p, 10000);
    CHECK(p != NULL && q != NULL);
    free(p);
    free(q);
    CHECK(errno == 77);
}

static const struct test_case cases[] = {
    CASE(malloc_size_max_is_enomem),
    CASE(malloc_above_ptrdiff_max_is_enomem),
    CASE(malloc_success_keeps_working_after_enomem),
    CASE(calloc_overflow_is_enomem),
    CASE(sizes_beyond_the_commit_limit_are_enomem),
    CASE(calloc_too_big_is_enomem),
    CASE(realloc_too_big_is_enomem_and_keeps_block),
    CASE(reallocarray_overflow_is_enomem_and_keeps_block),
    CASE(aligned_alloc_bad_alignment_is_einval),
    CASE(aligned_alloc_too_big_is_enomem),
    CASE(memalign_rounds_like_glibc),
    CASE(posix_memalign_bad_alignment_returns_einval),
    CASE(posix_memalign_too_big_returns_enomem),
    CASE(pvalloc_overflow_is_enomem),
    CASE(valloc_too_big_is_enomem),
    CASE(free_null_does_nothing),
    CASE(free_never_changes_errno),
    CASE(successful_calls_need_not_touch_errno),
};
MAIN(cases)
