/* libpairs_nop.so: an allocator that does nothing, called like malloc and
 * free from another object (call, PLT jump, return), so that bench/pairs.c
 * can measure its loop without an allocator in it. */
#include <stddef.h>

static char block[64] __attribute__((aligned(16)));

void *nop_malloc(size_t size) {
    (void)size;
    return block;
}

void nop_free(void *p) {
    (void)p;
}
