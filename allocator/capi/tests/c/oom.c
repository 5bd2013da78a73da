/* Out of memory is not final: under RLIMIT_AS, once a program frees what
 * it filled memory with, homing gives back what it holds (empty pages,
 * spare and cached segments) when the OS refuses it memory, and the next
 * allocations succeed, as they do with glibc. */
#include "check.h"

#include <sys/resource.h>

/* Room above what the process maps at the start of a case. */
#define LIMIT_BYTES ((size_t)512 << 20)

/* Address space mapped now (/proc/self/statm, first field). */
static size_t mapped_now(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL);
    unsigned long size = 0;
    CHECK(fscanf(f, "%lu", &size) == 1);
    fclose(f);
    return (size_t)size * (size_t)sysconf(_SC_PAGESIZE);
}

static void limit_address_space(void) {
    struct rlimit r;
    r.rlim_cur = r.rlim_max = mapped_now() + LIMIT_BYTES;
    CHECK(setrlimit(RLIMIT_AS, &r) == 0);
}

/* Allocates `size`-byte blocks until malloc fails (with ENOMEM), linking
 * them through their first word; returns the list and counts them. */
static void *fill_until_null(size_t size, size_t *count) {
    void *list = NULL;
    *count = 0;
    for (;;) {
        errno = 0;
        void **p = malloc(size);
        if (p == NULL) {
            CHECK(errno == ENOMEM);
            return list;
        }
        *p = list;
        list = p;
        ++*count;
    }
}

static void free_list(void *list) {
    while (list != NULL) {
        void *next = *(void **)list;
        free(list);
        list = next;
    }
}

static void recovers_after_frees(void) {
    limit_address_space();
    size_t small = 0, medium = 0, again = 0;
    void *list = fill_until_null(1000, &small);
    CHECK(small > (LIMIT_BYTES / 1000) / 2);
    free_list(list);

    /* A huge block needs address space that freed small pages held. */
    void *big = malloc((size_t)3 << 20);
    CHECK(big != NULL);
    memset(big, 1, (size_t)3 << 20);
    free(big);

    /* Medium blocks, then small ones again: each phase finds room. */
    list = fill_until_null(100000, &medium);
    CHECK(medium > (LIMIT_BYTES / 100000) / 2);
    free_list(list);
    list = fill_until_null(1000, &again);
    if (again < small * 9 / 10) {
        fprintf(stderr, "second fill: %zu blocks, first: %zu\n", again, small);
        CHECK(!"memory held after frees");
    }
    free_list(list);
    big = malloc((size_t)256 << 20);
    CHECK(big != NULL);
    free(big);
}

static const struct test_case cases[] = {
    CASE(recovers_after_frees),
};

MAIN(cases)
