/* Allocation at the edges of a process: ELF constructors and destructors
 * (the program's and a preloaded library's), the dynamic loader (dlopen,
 * dlsym, dlerror, dlclose), libc functions that allocate internally, and
 * atexit handlers. The harness preloads early_lib.so next to homing. */
#include "check.h"

#include <dirent.h>
#include <locale.h>
#include <pthread.h>
#include <search.h>
#include <stdarg.h>

/* Blocks this program's constructor allocates. */
#define CTOR_BLOCKS 50

static char *ctor_blocks[CTOR_BLOCKS];

__attribute__((constructor(101))) static void program_constructor(void) {
    for (int i = 0; i < CTOR_BLOCKS; i++) {
        ctor_blocks[i] = malloc((size_t)(i + 1) * 100);
        if (ctor_blocks[i] != NULL)
            memset(ctor_blocks[i], 'c', (size_t)(i + 1) * 100);
    }
}

__attribute__((destructor)) static void program_destructor(void) {
    for (int i = 0; i < CTOR_BLOCKS; i++)
        free(ctor_blocks[i]);
}

static void constructor_allocations(void) {
    for (int i = 0; i < CTOR_BLOCKS; i++) {
        CHECK(ctor_blocks[i] != NULL);
        CHECK(ctor_blocks[i][(i + 1) * 100 - 1] == 'c');
    }
    int (*early_check)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "early_lib_check");
    CHECK(early_check != NULL);
    CHECK(early_check() == 1);
}

static void dlopen_dlsym_dlerror(void) {
    for (int round = 0; round < 50; round++) {
        void *lib = dlopen("libm.so.6", RTLD_NOW | RTLD_LOCAL);
        CHECK(lib != NULL);
        double (*cosine)(double) = (double (*)(double))dlsym(lib, "cos");
        CHECK(cosine != NULL && cosine(0.0) == 1.0);
        CHECK(dlsym(lib, "no_such_symbol_anywhere") == NULL);
        const char *err = dlerror(); /* allocated by libdl */
        CHECK(err != NULL && strstr(err, "no_such_symbol_anywhere") != NULL);
        CHECK(dlopen("libno-such-library.so.42", RTLD_NOW) == NULL);
        CHECK(dlerror() != NULL);
        CHECK(dlclose(lib) == 0);
    }
}

static void *dlerror_in_thread(void *arg) {
    (void)arg;
    /* dlerror's per-thread buffer is allocated on this thread and freed at
     * its exit by libc. */
    dlsym(RTLD_DEFAULT, "no_such_symbol_in_thread");
    return dlerror() != NULL ? NULL : (void *)1;
}

static void dlerror_on_threads(void) {
    for (int i = 0; i < 20; i++) {
        pthread_t t;
        void *r;
        CHECK(pthread_create(&t, NULL, dlerror_in_thread, NULL) == 0);
        CHECK(pthread_join(t, &r) == 0);
        CHECK(r == NULL);
    }
}

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static void libc_functions_that_allocate(void) {
    char *s = strdup("homing");
    CHECK(s != NULL && strcmp(s, "homing") == 0);
    free(s);
    char *t = NULL;
    CHECK(asprintf(&t, "%s-%d-%0500d", "x", 42, 7) > 500);
    free(t);
    CHECK(setenv("HOMING_TEST_VARIABLE", "a fairly long value for the environment", 1) == 0);
    for (int i = 0; i < 100; i++) {
        char name[32];
        snprintf(name, sizeof name, "HOMING_TEST_%d", i);
        CHECK(setenv(name, "v", 1) == 0);
    }
    CHECK(strcmp(getenv("HOMING_TEST_99"), "v") == 0);
    /* qsort allocates a buffer for large arrays. */
    enum { N = 200000 };
    int *v = malloc(N * sizeof *v);
    CHECK(v != NULL);
    for (int i = 0; i < N; i++)
        v[i] = (int)((unsigned)i * 2654435761u % N);
    qsort(v, N, sizeof *v, compare_ints);
    for (int i = 1; i < N; i++)
        CHECK(v[i - 1] <= v[i]);
    free(v);
    /* stdio buffers, directory streams, locales. */
    FILE *f = tmpfile();
    CHECK(f != NULL);
    for (int i = 0; i < 10000; i++)
        fprintf(f, "line %d\n", i);
    rewind(f);
    char *line = NULL;
    size_t cap = 0;
    int lines = 0;
    while (getline(&line, &cap, f) > 0)
        lines++;
    CHECK(lines == 10000);
    free(line);
    fclose(f);
    DIR *d = opendir("/");
    CHECK(d != NULL);
    while (readdir(d) != NULL) {
    }
    closedir(d);
    CHECK(setlocale(LC_ALL, "C.UTF-8") != NULL || setlocale(LC_ALL, "C") != NULL);
    hcreate(1000);
    ENTRY e = {.key = "key", .data = NULL};
    CHECK(hsearch(e, ENTER) != NULL);
    hdestroy();
}

static char *at_exit_block;

static void free_at_exit(void) {
    /* Runs after main returns: homing must still work. */
    CHECK(at_exit_block != NULL && at_exit_block[0] == 'x');
    free(at_exit_block);
    void *p = malloc(12345);
    CHECK(p != NULL);
    free(p);
}

static void atexit_handlers_allocate(void) {
    at_exit_block = malloc(1000);
    CHECK(at_exit_block != NULL);
    at_exit_block[0] = 'x';
    CHECK(atexit(free_at_exit) == 0);
}

static const struct test_case cases[] = {
    CASE(constructor_allocations),
    CASE(dlopen_dlsym_dlerror),
    CASE(dlerror_on_threads),
    CASE(libc_functions_that_allocate),
    CASE(atexit_handlers_allocate),
};
MAIN(cases)
