/* The embedding API a VM runtime calls: first-class heaps, regions that
 * move between threads, safe points, statistics. Linked against homing
 * (libhoming.so, or libhoming.a), not preloaded. */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>

/* Objects each heap case allocates. */
#define OBJECTS 10000
/* Nodes of the list built in a region. */
#define NODES 50000

struct node {
    struct node *next;
    size_t value;
};

static void heap_lifecycle(void) {
    homing_heap_t *heap = homing_heap_new();
    CHECK(heap != NULL);
    static void *objects[OBJECTS];
    for (size_t i = 0; i < OBJECTS; i++) {
        objects[i] = homing_heap_malloc(heap, 1 + i % 2000);
        CHECK(objects[i] != NULL);
        CHECK((uintptr_t)objects[i] % HOMING_MALLOC_ALIGN == 0);
        fill(objects[i], 1 + i % 2000 < 16 ? 1 + i % 2000 : 16, i);
    }
    size_t *zeroed = homing_heap_calloc(heap, 1000, sizeof *zeroed);
    CHECK(zeroed != NULL);
    for (int i = 0; i < 1000; i++)
        CHECK(zeroed[i] == 0);
    void *line = homing_heap_aligned_alloc(heap, 4096, 100);
    CHECK(line != NULL && (uintptr_t)line % 4096 == 0);
    void *big = homing_heap_malloc(heap, (size_t)3 << 20); /* huge: owned by the heap */
    CHECK(big != NULL);
    memset(big, 1, (size_t)3 << 20);
    char *grown = homing_heap_realloc(heap, NULL, 10);
    strcpy(grown, "prefix");
    grown = homing_heap_realloc(heap, grown, 100000);
    CHECK(grown != NULL && strcmp(grown, "prefix") == 0);
    for (size_t i = 0; i < OBJECTS; i += 2) {
        CHECK(holds(objects[i], 1 + i % 2000 < 16 ? 1 + i % 2000 : 16, i));
        homing_heap_free(heap, objects[i]);
    }
    homing_heap_free(heap, NULL);
    homing_heap_collect(heap);
    /* Half the objects, the huge block and the rest are still live: the
     * destroy releases them all at once. */
    homing_heap_destroy(heap);
    homing_heap_destroy(NULL);
}

static void heap_errors(void) {
    homing_heap_t *heap = homing_heap_new();
    CHECK(heap != NULL);
    errno = 0;
    CHECK(homing_heap_aligned_alloc(heap, 48, 10) == NULL);
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(homing_heap_malloc(heap, SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
    errno = 0;
    CHECK(homing_heap_calloc(heap, SIZE_MAX, 2) == NULL);
    CHECK(errno == ENOMEM);
    void *p = homing_heap_malloc(heap, 10);
    errno = 5;
    CHECK(homing_heap_realloc(heap, p, 0) == NULL);
    CHECK(errno == 5);
    homing_heap_destroy(heap);
}

struct handoff {
    void **objects;
    size_t n;
};

static void *free_remotely(void *arg) {
    struct handoff *h = arg;
    for (size_t i = 0; i < h->n; i++)
        homing_free(h->objects[i]);
    return NULL;
}

static int compare_pointers(const void *a, const void *b) {
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return (x > y) - (x < y);
}

/* Frees every object on two other threads, which never allocate. */
static void free_on_two_threads(void **objects, size_t n) {
    struct handoff halves[2] = {{objects, n / 2}, {objects + n / 2, n - n / 2}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, free_remotely, &halves[i]) == 0);
    for (int i = 0; i < 2; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
}

/* A VM thread's heap: other threads free its objects with homing_free;
 * the owner reuses the memory (its allocation slow path drains the inbox)
 * and takes the rest back at a safe point. */
static void heap_blocks_freed_by_other_threads(void) {
    homing_heap_t *heap = homing_heap_new();
    CHECK(heap != NULL);
    static void *objects[OBJECTS];
    for (size_t i = 0; i < OBJECTS; i++)
        CHECK((objects[i] = homing_heap_malloc(heap, 64)) != NULL);
    homing_stats_t before, after;
    homing_stats(&before);
    free_on_two_threads(objects, OBJECTS);
    homing_stats(&after);
    CHECK(after.remote_posted >= before.remote_posted + OBJECTS);
    /* Reuse: the new objects are the old blocks, come home. */
    static void *old[OBJECTS];
    memcpy(old, objects, sizeof old);
    qsort(old, OBJECTS, sizeof old[0], compare_pointers);
    size_t reused = 0;
    for (size_t i = 0; i < OBJECTS; i++) {
        CHECK((objects[i] = homing_heap_malloc(heap, 64)) != NULL);
        reused += bsearch(&objects[i], old, OBJECTS, sizeof old[0], compare_pointers) != NULL;
    }
    CHECK(reused >= OBJECTS - OBJECTS / 10);
    homing_stats(&after);
    CHECK(after.remote_drained >= before.remote_drained + OBJECTS);
    /* Again, and this time the owner collects at a safe point. */
    free_on_two_threads(objects, OBJECTS);
    homing_stats(&before);
    homing_heap_collect(heap);
    homing_stats(&after);
    CHECK(after.remote_drained >= before.remote_drained + OBJECTS);
    CHECK(after.live_blocks + OBJECTS <= before.live_blocks);
    homing_heap_destroy(heap);
}

struct vm_thread {
    homing_heap_t *heap;
    void *objects[100];
    atomic_int objects_ready;
    atomic_int objects_freed;
};

static void *vm_thread_main(void *arg) {
    struct vm_thread *vm = arg;
    vm->heap = homing_heap_new();
    if (vm->heap == NULL)
        return (void *)1;
    for (int i = 0; i < 100; i++)
        vm->objects[i] = homing_heap_malloc(vm->heap, 200);
    atomic_store(&vm->objects_ready, 1);
    while (!atomic_load(&vm->objects_freed))
        sched_yield();
    homing_heap_collect(vm->heap);
    homing_heap_destroy(vm->heap);
    return NULL;
}

/* A heap created on one thread (its owner), whose objects the main thread
 * frees, and that the owner destroys afterwards. */
static void heap_owned_by_another_thread(void) {
    static struct vm_thread vm;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, vm_thread_main, &vm) == 0);
    while (!atomic_load(&vm.objects_ready))
        sched_yield();
    for (int i = 0; i < 100; i++) {
        CHECK(vm.objects[i] != NULL);
        memset(vm.objects[i], 9, 200);
        homing_free(vm.objects[i]);
    }
    atomic_store(&vm.objects_freed, 1);
    void *r;
    CHECK(pthread_join(t, &r) == 0);
    CHECK(r == NULL);
}

static void *build_list(void *arg) {
    /* Runs on its own thread: creates a region and fills it. */
    (void)arg;
    homing_region_t *region = homing_region_new();
    if (region == NULL)
        return NULL;
    struct node *head = NULL;
    for (size_t i = 0; i < NODES; i++) {
        struct node *n = homing_region_alloc(region, sizeof *n);
        if (n == NULL)
            return NULL;
        n->value = i;
        n->next = head;
        head = n;
    }
    /* The list's head lives in the region too, at its first allocation:
     * store it in a small root object. */
    struct node **root = homing_region_alloc(region, sizeof *root);
    *root = head;
    void **pair = homing_region_aligned_alloc(region, 64, 2 * sizeof(void *));
    pair[0] = region;
    pair[1] = root;
    return pair;
}

struct consumer_args {
    void **pair;
    homing_region_t *extra;
};

static void *consume_list(void *arg) {
    /* Runs on a third thread: checks the list, allocates more in the
     * region, merges another region into it, and frees it all. */
    struct consumer_args *a = arg;
    homing_region_t *region = a->pair[0];
    struct node *n = *(struct node **)a->pair[1];
    size_t expected = NODES;
    while (n != NULL) {
        expected--;
        if (n->value != expected)
            return (void *)1;
        n = n->next;
    }
    if (expected != 0)
        return (void *)2;
    for (int i = 0; i < 1000; i++)
        if (homing_region_alloc(region, 100) == NULL)
            return (void *)3;
    size_t before = homing_region_capacity(region);
    homing_region_merge(region, a->extra);
    if (homing_region_capacity(region) <= before)
        return (void *)4;
    homing_region_free(region);
    return NULL;
}

/* A region created and filled on one thread, handed to another, which
 * merges a region from a third thread into it and frees it. */
static void region_moves_between_threads(void) {
    pthread_t producer, consumer;
    void *pair;
    CHECK(pthread_create(&producer, NULL, build_list, NULL) == 0);
    CHECK(pthread_join(producer, &pair) == 0);
    CHECK(pair != NULL && (uintptr_t)pair % 64 == 0);
    homing_region_t *extra = homing_region_new();
    CHECK(extra != NULL);
    char *msg = homing_region_alloc(extra, 1 << 20); /* a large object */
    CHECK(msg != NULL);
    strcpy(msg, "merged");
    struct consumer_args args = {pair, extra};
    void *r;
    CHECK(pthread_create(&consumer, NULL, consume_list, &args) == 0);
    CHECK(pthread_join(consumer, &r) == 0);
    CHECK(r == NULL);
}

static void region_reset_and_errors(void) {
    homing_region_t *r = homing_region_new();
    CHECK(r != NULL);
    CHECK(homing_region_capacity(r) == 0);
    for (int round = 0; round < 100; round++) {
        for (int i = 0; i < 1000; i++)
            CHECK(homing_region_alloc(r, 48) != NULL);
        homing_region_reset(r);
    }
    CHECK(homing_region_capacity(r) > 0);
    errno = 0;
    CHECK(homing_region_aligned_alloc(r, 24, 8) == NULL);
    CHECK(errno == EINVAL);
    errno = 0;
    CHECK(homing_region_alloc(r, SIZE_MAX) == NULL);
    CHECK(errno == ENOMEM);
    errno = 3;
    homing_region_free(r);
    homing_region_free(NULL);
    CHECK(errno == 3);
}

static atomic_int fork_stop;

static void *region_churn(void *arg) {
    (void)arg;
    while (!atomic_load(&fork_stop)) {
        homing_region_t *r = homing_region_new();
        if (r == NULL)
            return (void *)1;
        for (int i = 0; i < 2000; i++)
            if (homing_region_alloc(r, (size_t)(i % 300) + 1) == NULL)
                return (void *)2;
        homing_region_free(r);
    }
    return NULL;
}

/* What a forked child does with the parent's region and heap. */
static int fork_child(homing_region_t *parents_region, const char *text) {
    if (strcmp(text, "made before fork") != 0)
        return 20;
    homing_region_free(parents_region);
    homing_heap_t *heap = homing_heap_new();
    if (heap == NULL)
        return 21;
    for (int round = 0; round < 20; round++) {
        homing_region_t *r = homing_region_new();
        for (int i = 0; i < 5000; i++)
            if (homing_heap_malloc(heap, 40) == NULL || homing_region_alloc(r, 40) == NULL)
                return 22;
        homing_region_free(r);
    }
    homing_heap_destroy(heap);
    homing_collect();
    return 0;
}

/* fork() while other threads create and free regions (the chunk pool is
 * shared and lock-free): the child frees a region made by the parent and
 * uses regions and heaps of its own. */
static void regions_and_heaps_across_fork(void) {
    atomic_store(&fork_stop, 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, region_churn, NULL) == 0);
    for (int f = 0; f < 10; f++) {
        homing_region_t *r = homing_region_new();
        char *text = homing_region_alloc(r, 64);
        strcpy(text, "made before fork");
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0)
            _exit(fork_child(r, text));
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        homing_region_free(r);
    }
    atomic_store(&fork_stop, 1);
    for (int i = 0; i < 2; i++) {
        void *r;
        CHECK(pthread_join(t[i], &r) == 0);
        CHECK(r == NULL);
    }
}

static void prefixed_family(void) {
    char *p = homing_malloc(10);
    CHECK(p != NULL && homing_usable_size(p) >= 10);
    strcpy(p, "abc");
    p = homing_realloc(p, 5000);
    CHECK(p != NULL && strcmp(p, "abc") == 0);
    p = homing_reallocarray(p, 100, 100);
    CHECK(p != NULL && strcmp(p, "abc") == 0);
    homing_free(p);
    void *z = homing_calloc(10, 10);
    CHECK(z != NULL);
    homing_free(z);
    void *a = homing_aligned_alloc(256, 1);
    CHECK(a != NULL && (uintptr_t)a % 256 == 0);
    homing_free(a);
    void *out = NULL;
    CHECK(homing_posix_memalign(&out, 8192, 10) == 0 && (uintptr_t)out % 8192 == 0);
    homing_free(out);
    CHECK(homing_posix_memalign(&out, 12, 10) == EINVAL);
    CHECK(homing_usable_size(NULL) == 0);
    /* malloc is homing's too (the library exports the family). */
    void *m = malloc(100);
    CHECK(homing_usable_size(m) >= 100);
    homing_free(m);
}

static void safe_points_and_stats(void) {
    void *p = malloc(100);
    homing_stats_t s;
    homing_stats(&s);
    CHECK(s.heaps >= 1);
    CHECK(s.os_mapped > 0);
    CHECK(s.live_blocks >= 1);
    free(p);
    homing_collect();
    homing_stats_print(); /* to standard error; the harness looks for it */
}

static const struct test_case cases[] = {
    CASE(heap_lifecycle),
    CASE(heap_errors),
    CASE(heap_blocks_freed_by_other_threads),
    CASE(heap_owned_by_another_thread),
    CASE(region_moves_between_threads),
    CASE(region_reset_and_errors),
    CASE(regions_and_heaps_across_fork),
    CASE(prefixed_family),
    CASE(safe_points_and_stats),
};
MAIN(cases)
