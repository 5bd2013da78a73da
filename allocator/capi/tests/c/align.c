/* Alignment: every malloc is 16-byte aligned; every aligned call honours
 * its alignment, from 1 byte to 64 MiB, for small, medium and huge sizes. */
#include "check.h"

#include <malloc.h>

/* Largest alignment swept: four homing segments. */
#define MAX_ALIGN_SHIFT 26
/* Sizes around each power of two up to this shift. */
#define MAX_SIZE_SHIFT 25
/* Blocks kept alive at once by the sweeps. */
#define KEEP 64

static size_t page(void) { return (size_t)sysconf(_SC_PAGESIZE); }

static void check_block(void *p, size_t size, size_t align) {
    CHECK(p != NULL);
    CHECK((uintptr_t)p % align == 0);
    CHECK((uintptr_t)p % HOMING_MALLOC_ALIGN == 0);
    CHECK(malloc_usable_size(p) >= size);
    if (size > 0) {
        ((unsigned char *)p)[0] = 1;
        ((unsigned char *)p)[size - 1] = 2;
    }
}

static void malloc_every_small_size(void) {
    void *keep[KEEP] = {0};
    for (size_t size = 0; size <= 9000; size++) {
        void *p = malloc(size);
        check_block(p, size, HOMING_MALLOC_ALIGN);
        free(keep[size % KEEP]);
        keep[size % KEEP] = p;
    }
    for (size_t i = 0; i < KEEP; i++)
        free(keep[i]);
}

static void malloc_around_powers_of_two(void) {
    for (int shift = 0; shift <= MAX_SIZE_SHIFT; shift++) {
        size_t base = (size_t)1 << shift;
        void *p[3] = {malloc(base - 1), malloc(base), malloc(base + 1)};
        check_block(p[0], base - 1, HOMING_MALLOC_ALIGN);
        check_block(p[1], base, HOMING_MALLOC_ALIGN);
        check_block(p[2], base + 1, HOMING_MALLOC_ALIGN);
        for (int i = 0; i < 3; i++)
            free(p[i]);
    }
}

/* The sizes tried at each alignment: tiny, odd, exactly it, just above. */
static size_t sizes_for(size_t align, size_t out[4]) {
    out[0] = 1;
    out[1] = 100;
    out[2] = align;
    out[3] = align + 1;
    return 4;
}

static void aligned_alloc_sweep(void) {
    for (int shift = 0; shift <= MAX_ALIGN_SHIFT; shift++) {
        size_t align = (size_t)1 << shift, sizes[4];
        size_t n = sizes_for(align, sizes);
        for (size_t i = 0; i < n; i++) {
            void *p = aligned_alloc(align, sizes[i]);
            check_block(p, sizes[i], align);
            free(p);
        }
    }
}

static void posix_memalign_sweep(void) {
    for (int shift = 3; shift <= MAX_ALIGN_SHIFT; shift++) {
        size_t align = (size_t)1 << shift, sizes[4];
        size_t n = sizes_for(align, sizes);
        for (size_t i = 0; i < n; i++) {
            void *p = NULL;
            CHECK(posix_memalign(&p, align, sizes[i]) == 0);
            check_block(p, sizes[i], align);
            free(p);
        }
    }
}

static void memalign_sweep(void) {
    for (int shift = 0; shift <= MAX_ALIGN_SHIFT; shift++) {
        size_t align = (size_t)1 << shift, sizes[4];
        size_t n = sizes_for(align, sizes);
        for (size_t i = 0; i < n; i++) {
            void *p = memalign(align, sizes[i]);
            check_block(p, sizes[i], align);
            free(p);
        }
    }
}

static void valloc_and_pvalloc(void) {
    size_t pg = page();
    size_t sizes[] = {0, 1, 100, pg - 1, pg, pg + 1, 10 * pg + 3, (size_t)5 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *v = valloc(sizes[i]);
        check_block(v, sizes[i], pg);
        void *pv = pvalloc(sizes[i]);
        size_t rounded = sizes[i] == 0 ? pg : (sizes[i] + pg - 1) / pg * pg;
        check_block(pv, rounded, pg);
        free(v);
        free(pv);
    }
}

/* Aligned blocks of many alignments alive together, freed out of order:
 * no block overlaps another. */
static void aligned_blocks_do_not_overlap(void) {
    enum { N = 400 };
    void *p[N];
    size_t size[N];
    for (int i = 0; i < N; i++) {
        size_t align = (size_t)1 << (i % 17);
        size[i] = (size_t)(i * 37 % 3000) + 1;
        p[i] = aligned_alloc(align, size[i]);
        check_block(p[i], size[i], align);
        fill(p[i], size[i], (uintptr_t)i);
    }
    for (int i = 0; i < N; i += 2)
        free(p[i]);
    for (int i = 1; i < N; i += 2) {
        CHECK(holds(p[i], size[i], (uintptr_t)i));
        free(p[i]);
    }
}

static const struct test_case cases[] = {
    CASE(malloc_every_small_size),
    CASE(malloc_around_powers_of_two),
    CASE(aligned_alloc_sweep),
    CASE(posix_memalign_sweep),
    CASE(memalign_sweep),
    CASE(valloc_and_pvalloc),
    CASE(aligned_blocks_do_not_overlap),
};
MAIN(cases)
