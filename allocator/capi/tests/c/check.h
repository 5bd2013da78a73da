/*
 * check.h: the tiny harness of homing-capi's C test programs.
 *
 * Each program is a table of cases. `prog --list` prints their names;
 * `prog NAME` runs one; `prog` runs them all. A failed CHECK prints where
 * and what, and exits with status 1; a case that hangs is killed by
 * alarm(). The Rust integration test (tests/c_programs.rs) runs each case
 * as its own process, with LD_PRELOAD=libhoming.so or linked to homing.
 */
#ifndef HOMING_TEST_CHECK_H
#define HOMING_TEST_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "homing.h"


/* Seconds a case may run before SIGALRM kills it. */
#define CASE_TIMEOUT_SECONDS 60

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s (errno %d)\n", __FILE__,  \
                    __LINE__, #cond, errno);                                   \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

/* One named test case. */
struct test_case {
    const char *name;
    void (*run)(void);
};

#define CASE(fn) {#fn, fn}

/* The object (shared library or executable) that defines `symbol`. */
static inline void *defining_object(const char *symbol) {
    Dl_info info;
    void *addr = dlsym(RTLD_DEFAULT, symbol);
    if (addr == NULL || dladdr(addr, &info) == 0)
        return NULL;
    return info.dli_fbase;
}

/* Exits unless `malloc` and `free` are homing's: defined by the same
 * object as homing_malloc (libhoming.so under LD_PRELOAD, the executable
 * when linked with libhoming.a and -rdynamic). */
static inline void require_homing(void) {
    void *homing = defining_object("homing_malloc");
    CHECK(homing != NULL);
    CHECK(defining_object("malloc") == homing);
    CHECK(defining_object("free") == homing);
}

/* homing_stats, found at run time so that programs run under LD_PRELOAD
 * need not link against homing. */
static inline homing_stats_t stats_now(void) {
    homing_stats_t s;
    void (*get)(homing_stats_t *) = (void (*)(homing_stats_t *))dlsym(RTLD_DEFAULT, "homing_stats");
    CHECK(get != NULL);
    get(&s);
    return s;
}

/* C23's free_sized and free_aligned_sized, found at run time: glibc defines
 * them only from 2.38 on, so a program that names them would not link
 * without homing. */
static inline void call_free_sized(void *p, size_t size) {
    void (*f)(void *, size_t) = (void (*)(void *, size_t))dlsym(RTLD_DEFAULT, "free_sized");
    CHECK(f != NULL);
    f(p, size);
}

static inline void call_free_aligned_sized(void *p, size_t alignment, size_t size) {
    void (*f)(void *, size_t, size_t) =
        (void (*)(void *, size_t, size_t))dlsym(RTLD_DEFAULT, "free_aligned_sized");
    CHECK(f != NULL);
    f(p, alignment, size);
}

/* A byte pattern that depends on the block and the offset. */
static inline unsigned char pattern(uintptr_t seed, size_t i) {
    return (unsigned char)((seed * 31u + i * 7u) ^ (i >> 8));
}

static inline void fill(void *p, size_t n, uintptr_t seed) {
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern(seed, i);
}

static inline int holds(const void *p, size_t n, uintptr_t seed) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern(seed, i))
            return 0;
    return 1;
}

/* The main of every test program; `check_malloc`: first require that
 * `malloc` is homing's (all but the programs that dlopen homing). */
static inline int run_cases_checking(int argc, char **argv, const struct test_case *cases,
                                     size_t n, int check_malloc) {
    alarm(CASE_TIMEOUT_SECONDS);
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            printf("%s\n", cases[i].name);
        return 0;
    }
    if (check_malloc)
        require_homing();
    int ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)
            continue;
        cases[i].run();
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "no case named %s\n", argv[1]);
        return 2;
    }
    return 0;
}

static inline int run_cases(int argc, char **argv, const struct test_case *cases, size_t n) {
    return run_cases_checking(argc, argv, cases, n, 1);
}

#define MAIN(cases)                                                            \
    int main(int argc, char **argv) {                                          \
        return run_cases(argc, argv, cases, sizeof cases / sizeof cases[0]);   \
    }

/* For a program that loads homing with dlopen: its malloc stays libc's. */
#define MAIN_WITHOUT_HOMING_MALLOC(cases)                                      \
    int main(int argc, char **argv) {                                          \
        return run_cases_checking(argc, argv, cases,                           \
                                  sizeof cases / sizeof cases[0], 0);          \
    }

#endif
