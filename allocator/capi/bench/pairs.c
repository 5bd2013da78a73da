/* pairs.c: the instructions of one malloc+free pair through the C ABI, for
 * callgrind (see callgrind.sh, which runs it).
 *
 *   pairs malloc <size> <n>   n pairs of malloc(size) + free, through the
 *                             PLT, as any C program calls them (run it
 *                             under LD_PRELOAD=libhoming.so)
 *   pairs nop <size> <n>      the same loop calling nop_malloc/nop_free of
 *                             libpairs_nop.so (bench/pairs_nop.c), which do
 *                             nothing: the loop's and the calls' own cost
 *
 * Under callgrind, (I(2n) - I(n)) / n is one iteration; the same for `nop`
 * is the loop alone, which callgrind.sh subtracts (as the Rust `pairs`
 * binary subtracts its no-op allocator). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *nop_malloc(size_t size);
void nop_free(void *p);

int main(int argc, char **argv) {
    if (argc != 4 || (strcmp(argv[1], "malloc") != 0 && strcmp(argv[1], "nop") != 0)) {
        fprintf(stderr, "usage: pairs <malloc|nop> <size> <n>\n");
        return 2;
    }
    size_t size = strtoul(argv[2], NULL, 10);
    long n = strtol(argv[3], NULL, 10);
    if (strcmp(argv[1], "nop") == 0) {
        for (long i = 0; i < n; i++) {
            void *volatile p = nop_malloc(size);
            nop_free(p);
        }
    } else {
        for (long i = 0; i < n; i++) {
            void *volatile p = malloc(size);
            free(p);
        }
    }
    return 0;
}
