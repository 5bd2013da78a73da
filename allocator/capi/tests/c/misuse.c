/* Misuse that homing's checked mode (feature `checked`) reports and aborts
 * on: each case must die with SIGABRT and a message naming the problem.
 * Without checked mode these are undefined behaviour; the harness runs
 * this program only against a checked build. */
#include "check.h"

#include <malloc.h>
#include <sys/mman.h>

static void free_of_a_foreign_pointer(void) {
    /* Memory homing never handed out: an anonymous mapping. */
    void *foreign = mmap(NULL, 1 << 22, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(foreign != MAP_FAILED);
    free((char *)foreign + 4096);
}

static void free_of_a_stack_pointer(void) {
    char on_stack[64];
    free(on_stack + 16);
}

static void free_of_an_interior_pointer(void) {
    char *p = malloc(100);
    CHECK(p != NULL);
    free(p + 16);
}

static void double_free(void) {
    char *p = malloc(100);
    CHECK(p != NULL);
    free(p);
    free(p);
}

static void double_free_of_a_huge_block(void) {
    char *p = malloc((size_t)8 << 20);
    CHECK(p != NULL);
    free(p);
    free(p);
}

static void realloc_of_a_foreign_pointer(void) {
    void *foreign = mmap(NULL, 1 << 22, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(foreign != MAP_FAILED);
    CHECK(realloc((char *)foreign + 4096, 100) != NULL);
}

static void usable_size_of_a_freed_block(void) {
    char *p = malloc(100);
    CHECK(p != NULL);
    free(p);
    CHECK(malloc_usable_size(p) > 0);
}

static const struct test_case cases[] = {
    CASE(free_of_a_foreign_pointer),
    CASE(free_of_a_stack_pointer),
    CASE(free_of_an_interior_pointer),
    CASE(double_free),
    CASE(double_free_of_a_huge_block),
    CASE(realloc_of_a_foreign_pointer),
    CASE(usable_size_of_a_freed_block),
};
MAIN(cases)
