/* fork() while other threads allocate and free: every child can allocate,
 * free (its own blocks and blocks of the parent's other threads), start
 * threads and fork again; the parent goes on. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* Allocating threads running during the forks. */
#define WORKERS 4
/* Slots through which workers swap blocks (cross-thread frees). */
#define SLOTS 256
/* Children forked per case. */
#define FORKS 30
/* Allocations each child makes. */
#define CHILD_ALLOCS 20000

static _Atomic(void *) slots[SLOTS];
static atomic_int stop;

/* Blocks carry their size and a pattern in the first bytes. */
struct head {
    size_t size;
    uintptr_t seed;
};

static void *new_block(uintptr_t seed) {
    size_t size = sizeof(struct head) + (seed * 2654435761u) % 3000;
    if (seed % 997 == 0)
        size += (size_t)1 << 18; /* now and then a huge one */
    struct head *h = malloc(size);
    if (h == NULL)
        return NULL;
    h->size = size;
    h->seed = seed;
    fill(h + 1, size - sizeof *h < 32 ? size - sizeof *h : 32, seed);
    return h;
}

static int block_ok(const struct head *h) {
    size_t n = h->size - sizeof *h;
    return holds(h + 1, n < 32 ? n : 32, h->seed);
}

static void *worker(void *arg) {
    uintptr_t seed = (uintptr_t)arg * 1000003u;
    while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
        seed++;
        void *fresh = new_block(seed);
        if (fresh == NULL)
            return (void *)1;
        struct head *old = atomic_exchange(&slots[seed % SLOTS], fresh);
        if (old != NULL) {
            if (!block_ok(old))
                return (void *)2;
            free(old);
        }
        free(malloc(seed % 500));
    }
    return NULL;
}

static void *child_thread(void *arg) {
    (void)arg;
    for (uintptr_t i = 0; i < CHILD_ALLOCS / 4; i++) {
        void *p = new_block(i);
        if (p == NULL || !block_ok(p))
            return (void *)1;
        free(p);
    }
    return NULL;
}

/* What a child does; returns its exit status. */
static int child(int depth) {
    void *mine[64] = {0};
    for (uintptr_t i = 0; i < CHILD_ALLOCS; i++) {
        void *p = new_block(i);
        if (p == NULL)
            return 10;
        free(mine[i % 64]);
        mine[i % 64] = p;
    }
    for (int i = 0; i < 64; i++) {
        if (!block_ok(mine[i]))
            return 16;
        free(mine[i]);
    }
    /* Blocks the parent's other threads allocated (their heaps have no
     * thread in the child): check and free them. */
    for (int i = 0; i < SLOTS; i++) {
        struct head *h = atomic_exchange(&slots[i], NULL);
        if (h != NULL) {
            if (!block_ok(h))
                return 11;
            free(h);
        }
    }
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        if (pthread_create(&t[i], NULL, child_thread, NULL) != 0)
            return 12;
    for (int i = 0; i < 2; i++) {
        void *r;
        if (pthread_join(t[i], &r) != 0 || r != NULL)
            return 13;
    }
    if (depth > 0) {
        pid_t pid = fork();
        if (pid < 0)
            return 14;
        if (pid == 0)
            _exit(child(depth - 1));
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return 15;
    }
    return 0;
}

static void run_forks(int depth, int forks) {
    memset(slots, 0, sizeof slots);
    atomic_store(&stop, 0);
    pthread_t t[WORKERS];
    for (uintptr_t i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(i + 1)) == 0);
    for (int f = 0; f < forks; f++) {
        usleep(2000);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(child(depth));
        /* The parent allocates while the child runs. */
        for (uintptr_t i = 0; i < 1000; i++)
            free(new_block(i));
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "child %d: exited %d, signal %d\n", f,
                    WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < WORKERS; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0);
        CHECK(r == NULL);
    }
    for (int i = 0; i < SLOTS; i++)
        free(atomic_exchange(&slots[i], NULL));
}

static void fork_while_threads_allocate(void) { run_forks(0, FORKS); }

static void children_fork_again(void) { run_forks(2, FORKS / 6); }

/* A child that exits through exit() (atexit handlers, stdio flush, ELF
 * destructors) rather than _exit(). */
static void child_exits_normally(void) {
    atomic_store(&stop, 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, worker, (void *)7) == 0);
    for (int f = 0; f < 10; f++) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            char *s = malloc(100);
            snprintf(s, 100, "child %d", f);
            free(s);
            exit(child(0));
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&stop, 1);
    CHECK(pthread_join(t, NULL) == 0);
}

static const struct test_case cases[] = {
    CASE(fork_while_threads_allocate),
    CASE(children_fork_again),
    CASE(child_exits_normally),
};
MAIN(cases)
