/* A shared object preloaded next to libhoming.so by the `early` tests: its
 * ELF constructor allocates before the program (and possibly before
 * libhoming's own constructors) has run, and its destructor frees after
 * the program's main has returned. */
#include <stdlib.h>
#include <string.h>

/* Blocks the constructor leaves for the program to check. */
#define EARLY_BLOCKS 100

static char *blocks[EARLY_BLOCKS];

__attribute__((constructor)) static void early_allocate(void) {
    for (int i = 0; i < EARLY_BLOCKS; i++) {
        blocks[i] = malloc((size_t)(i + 1) * 33);
        if (blocks[i] != NULL)
            memset(blocks[i], i, (size_t)(i + 1) * 33);
    }
}

/* How many blocks the constructor made, and whether each still holds its
 * bytes (1) or not (0). */
int early_lib_check(void) {
    for (int i = 0; i < EARLY_BLOCKS; i++) {
        if (blocks[i] == NULL)
            return 0;
        for (size_t j = 0; j < (size_t)(i + 1) * 33; j++)
            if (blocks[i][j] != (char)i)
                return 0;
    }
    return 1;
}

__attribute__((destructor)) static void late_free(void) {
    for (int i = 0; i < EARLY_BLOCKS; i++)
        free(blocks[i]);
}
