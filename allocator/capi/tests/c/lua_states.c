/*
 * lua_states.c: Lua 5.4 embedded the way a VM runtime does it: many
 * interpreter states, a pool of worker threads, each job run by whichever
 * worker is free, so states move between threads between jobs. The
 * workload is table and string churn with some data kept across jobs.
 *
 *     lua_states MODE STATES JOBS_PER_STATE
 *
 * MODE is where a state's memory comes from (lua_newstate's allocator):
 *   global  realloc/free: the C library's in a build without homing
 *           (-DNO_HOMING), homing's malloc in a build linked with it;
 *   worker  one homing heap per worker thread (homing_heap_realloc on the
 *           running worker's heap; blocks of other heaps freed remotely);
 *   state   one homing heap per state, handed from worker to worker with
 *           homing_heap_release / homing_heap_acquire, read with
 *           homing_heap_stats after every job, destroyed whole at the end
 *           (no lua_close needed); LUA_STATES_COLLECT=1 in the environment:
 *           homing_heap_collect after every job.
 * One more state runs under a memory limit (homing_heap_set_limit in state
 * mode; the same limit counted in the allocator function otherwise) until
 * Lua raises "not enough memory", then is collected and runs again.
 *
 * Standard output depends only on the workload, never on the mode or the
 * scheduling: the test compares it across modes. Standard error gets the
 * figures: "figures: mode=... seconds=... peak_rss_kib=...".
 * With homing, the process's mapped memory (minus the segment cache) must
 * be back to its baseline when everything is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef NO_HOMING
#include "homing.h"
#endif

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            exit(1);                                                           \
        }                                                                      \
    } while (0)

#define WORKERS 4
#define LIMIT ((size_t)6 << 20)

enum mode { GLOBAL, WORKER, STATE };
static enum mode mode;
/* LUA_STATES_COLLECT=1: homing_heap_collect after every job (STATE mode). */
static int collect_after_job;

struct vm {
    lua_State *L;
    int id;
    int jobs_done;
    unsigned long long checksum;
#ifndef NO_HOMING
    homing_heap_t *heap; /* STATE mode */
#endif
    size_t used;  /* bytes Lua holds, by its own sizes */
    size_t limit; /* 0: none; counted here outside STATE mode */
};

#ifndef NO_HOMING
/* WORKER mode: the heap of the thread running the allocator function. */
static __thread homing_heap_t *worker_heap;
#endif

static void *raw_realloc(struct vm *vm, void *p, size_t n) {
#ifndef NO_HOMING
    if (mode == STATE)
        return homing_heap_realloc(vm->heap, p, n);
    if (mode == WORKER)
        return homing_heap_realloc(worker_heap, p, n);
#endif
    (void)vm;
    return realloc(p, n);
}

static void raw_free(struct vm *vm, void *p) {
#ifndef NO_HOMING
    if (mode == STATE) {
        homing_heap_free(vm->heap, p);
        return;
    }
    if (mode == WORKER) {
        homing_heap_free(worker_heap, p);
        return;
    }
#endif
    (void)vm;
    free(p);
}

/* lua_Alloc. Lua requires that shrinking never fails. */
static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    struct vm *vm = ud;
    if (ptr == NULL)
        osize = 0;
    if (nsize == 0) {
        raw_free(vm, ptr);
        vm->used -= osize;
        return NULL;
    }
    if (vm->limit != 0 && nsize > osize && vm->used - osize + nsize > vm->limit)
        return NULL;
    void *q = raw_realloc(vm, ptr, nsize);
    if (q == NULL) {
        if (ptr != NULL && nsize <= osize)
            q = ptr; /* keep the bigger block */
        else
            return NULL;
    }
    vm->used = vm->used - osize + nsize;
    return q;
}

static const char *script =
    "keep = {}\n"
    "function job(seed, n)\n"
    "  local acc = {}\n"
    "  for i = 1, n do\n"
    "    local s = string.rep(string.char(65 + (seed + i) % 26), (seed * i) % 200 + 1) .. i\n"
    "    acc[#acc + 1] = s\n"
    "    if i % 3 == 0 then\n"
    "      keep[(seed * 31 + i) % 4000] = {s, i, {x = i, y = s:sub(1, 5)}}\n"
    "    end\n"
    "  end\n"
    "  local h = 0\n"
    "  for i = 1, #acc do h = (h * 31 + #acc[i] + acc[i]:byte(1)) % 1000000007 end\n"
    "  local c = 0\n"
    "  for _ in pairs(keep) do c = c + 1 end\n"
    "  local joined = table.concat(acc, ',', 1, math.min(#acc, 200))\n"
    "  return (h + #joined) % 1000000007, c\n"
    "end\n"
    "function hog()\n"
    "  local t, i = {}, 0\n"
    "  while true do i = i + 1; t[i] = string.rep('m', 1000) .. i end\n"
    "end\n"
    "function small(n)\n"
    "  local t = {}\n"
    "  for i = 1, n do t[i] = tostring(i * 7) end\n"
    "  return #table.concat(t, ' ')\n"
    "end\n";

static void vm_open(struct vm *vm, int id, size_t limit) {
    memset(vm, 0, sizeof *vm);
    vm->id = id;
#ifndef NO_HOMING
    if (mode == STATE) {
        vm->heap = homing_heap_new();
        CHECK(vm->heap != NULL);
        if (limit != 0)
            homing_heap_set_limit(vm->heap, limit);
        limit = 0; /* the heap counts it */
    }
#endif
    vm->limit = limit;
    vm->L = lua_newstate(l_alloc, vm);
    CHECK(vm->L != NULL);
    luaL_openlibs(vm->L);
    CHECK(luaL_dostring(vm->L, script) == LUA_OK);
}

static void run_job(struct vm *vm) {
    lua_State *L = vm->L;
    lua_getglobal(L, "job");
    lua_pushinteger(L, vm->id * 1000 + vm->jobs_done);
    lua_pushinteger(L, 1500);
    if (lua_pcall(L, 2, 2, 0) != LUA_OK) {
        fprintf(stderr, "state %d: %s\n", vm->id, lua_tostring(L, -1));
        exit(1);
    }
    long long h = lua_tointeger(L, -2), c = lua_tointeger(L, -1);
    lua_pop(L, 2);
    vm->checksum = vm->checksum * 1000003ULL + (unsigned long long)h * 7 + (unsigned long long)c;
    vm->jobs_done++;
#ifndef NO_HOMING
    if (mode == STATE) {
        /* A GC safe point: the heap's numbers, cheap to read. */
        homing_heap_stats_t st;
        homing_heap_stats(vm->heap, &st);
        size_t lua_bytes = (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
        CHECK(st.live_bytes >= lua_bytes);
        CHECK(st.live_bytes == 0 || st.live_blocks > 0);
        CHECK(st.peak_live_bytes >= st.live_bytes);
        CHECK(st.os_bytes >= st.in_use_bytes && st.in_use_bytes >= st.live_bytes);
    }
#endif
}

/* The scheduler: a FIFO of states ready for a job. */
static struct vm *vms;
static int nvms, jobs_per_state;
static int *ready; /* ring of indices */
static int ready_head, ready_tail, finished;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int moves; /* jobs that ran on another worker than the state's last */
static int *last_worker;

static void *worker(void *arg) {
    int me = (int)(long)arg;
#ifndef NO_HOMING
    if (mode == WORKER) {
        worker_heap = homing_heap_new();
        CHECK(worker_heap != NULL);
    }
#endif
    for (;;) {
        pthread_mutex_lock(&lock);
        while (ready_head == ready_tail && finished < nvms)
            pthread_cond_wait(&cond, &lock);
        if (finished == nvms) {
            pthread_mutex_unlock(&lock);
            break;
        }
        struct vm *vm = &vms[ready[ready_tail++ % nvms]];
        if (last_worker[vm->id] != me && last_worker[vm->id] != -1)
            moves++;
        last_worker[vm->id] = me;
        pthread_mutex_unlock(&lock);

#ifndef NO_HOMING
        if (mode == STATE)
            CHECK(homing_heap_acquire(vm->heap) == 0);
#endif
        run_job(vm);
#ifndef NO_HOMING
        if (mode == STATE) {
            if (collect_after_job)
                homing_heap_collect(vm->heap); /* a safe point */
            CHECK(homing_heap_release(vm->heap) == 0);
        }
#endif

        pthread_mutex_lock(&lock);
        if (vm->jobs_done == jobs_per_state)
            finished++;
        else
            ready[ready_head++ % nvms] = vm->id;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&lock);
    }
#ifndef NO_HOMING
    /* The worker's heap outlives it (states keep blocks in it): the main
     * thread takes it over at the end. */
    if (mode == WORKER)
        CHECK(homing_heap_release(worker_heap) == 0);
    return worker_heap;
#else
    return NULL;
#endif
}

#ifndef NO_HOMING
static size_t mapped_now(void) {
    homing_collect();
    homing_stats_t s;
    homing_stats(&s);
    return s.os_mapped - s.os_cached;
}
#endif

/* A state under a limit: grows a table until Lua raises "not enough
 * memory", then, collected, runs again. */
static void limited_state(void) {
    struct vm vm;
    vm_open(&vm, -1, LIMIT);
    lua_State *L = vm.L;
    lua_getglobal(L, "hog");
    int status = lua_pcall(L, 0, 0, 0);
    printf("limited state: hog() -> %s\n",
           status == LUA_ERRMEM ? "not enough memory (LUA_ERRMEM)" : "no error?");
    CHECK(status == LUA_ERRMEM);
    lua_pop(L, 1);
#ifndef NO_HOMING
    if (mode == STATE) {
        homing_heap_stats_t st;
        homing_heap_stats(vm.heap, &st);
        CHECK(st.limit == LIMIT && st.limit_refusals > 0);
        CHECK(st.peak_live_bytes <= LIMIT && st.in_use_bytes <= LIMIT);
        fprintf(stderr, "limited state: peak %zu KiB, %zu refusals, limit %zu KiB\n",
                st.peak_live_bytes >> 10, st.limit_refusals, st.limit >> 10);
    }
#endif
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_getglobal(L, "small");
    lua_pushinteger(L, 20000);
    CHECK(lua_pcall(L, 1, 1, 0) == LUA_OK);
    printf("limited state: after a collect, small(20000) = %lld\n", (long long)lua_tointeger(L, -1));
    lua_pop(L, 1);
    lua_close(L);
#ifndef NO_HOMING
    if (mode == STATE) {
        homing_heap_stats_t st;
        homing_heap_stats(vm.heap, &st);
        CHECK(st.live_blocks == 0 && st.live_bytes == 0);
        homing_heap_destroy(vm.heap);
    }
#endif
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    CHECK(argc == 4);
    if (strcmp(argv[1], "global") == 0)
        mode = GLOBAL;
#ifndef NO_HOMING
    else if (strcmp(argv[1], "worker") == 0)
        mode = WORKER;
    else if (strcmp(argv[1], "state") == 0)
        mode = STATE;
#endif
    else {
        fprintf(stderr, "unknown mode %s\n", argv[1]);
        return 2;
    }
    collect_after_job = getenv("LUA_STATES_COLLECT") != NULL;
    nvms = atoi(argv[2]);
    jobs_per_state = atoi(argv[3]);
    CHECK(nvms > 0 && jobs_per_state > 0);
    /* The scheduler's own memory comes first: the baseline includes it. */
    vms = calloc((size_t)nvms, sizeof *vms);
    ready = calloc((size_t)nvms, sizeof *ready);
    last_worker = calloc((size_t)nvms, sizeof *last_worker);
    CHECK(vms && ready && last_worker);
#ifndef NO_HOMING
    size_t base = mapped_now();
    homing_heap_t *main_heap = NULL;
    if (mode == WORKER) {
        /* States are made and closed on the main thread: its own heap. */
        main_heap = homing_heap_new();
        CHECK(main_heap != NULL);
        worker_heap = main_heap;
    }
#endif
    double t0 = now_s();
    for (int i = 0; i < nvms; i++) {
        vm_open(&vms[i], i, 0);
        last_worker[i] = -1;
#ifndef NO_HOMING
        if (mode == STATE)
            CHECK(homing_heap_release(vms[i].heap) == 0);
#endif
        ready[ready_head++] = i;
    }
    pthread_t w[WORKERS];
    for (long i = 0; i < WORKERS; i++)
        CHECK(pthread_create(&w[i], NULL, worker, (void *)i) == 0);
#ifndef NO_HOMING
    homing_heap_t *worker_heaps[WORKERS];
#endif
    for (int i = 0; i < WORKERS; i++) {
        void *ret;
        CHECK(pthread_join(w[i], &ret) == 0);
#ifndef NO_HOMING
        worker_heaps[i] = ret;
#endif
    }
    for (int i = 0; i < nvms; i++)
        printf("state %d: %d jobs, checksum %llu\n", i, vms[i].jobs_done, vms[i].checksum);
    size_t os_bytes = 0;
    for (int i = 0; i < nvms; i++) {
#ifndef NO_HOMING
        if (mode == STATE) {
            /* The whole state goes in one call: no lua_close. */
            CHECK(homing_heap_acquire(vms[i].heap) == 0);
            homing_heap_stats_t st;
            homing_heap_stats(vms[i].heap, &st);
            os_bytes += st.os_bytes;
            homing_heap_destroy(vms[i].heap);
            continue;
        }
#endif
        lua_close(vms[i].L);
    }
    double seconds = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    limited_state(); /* in WORKER mode, on the main thread's heap */
#ifndef NO_HOMING
    /* The worker heaps outlived their workers: the main thread takes each
     * over and destroys it. */
    if (mode == WORKER) {
        for (int i = 0; i < WORKERS; i++) {
            CHECK(homing_heap_acquire(worker_heaps[i]) == 0);
            homing_heap_destroy(worker_heaps[i]);
        }
        homing_heap_destroy(main_heap);
        worker_heap = NULL;
    }
#endif
    fprintf(stderr, "figures: mode=%s states=%d jobs=%d seconds=%.3f peak_rss_kib=%ld moves=%d",
            argv[1], nvms, nvms * jobs_per_state, seconds, ru.ru_maxrss, moves);
    if (mode == STATE)
        fprintf(stderr, " heaps_os_kib_at_end=%zu", os_bytes >> 10);
    fprintf(stderr, "\n");
    CHECK(moves > 0 || nvms * jobs_per_state < 2 * WORKERS);
#ifndef NO_HOMING
    size_t end = mapped_now();
    fprintf(stderr, "mapped (minus segment cache): %zu KiB at start, %zu KiB at end\n", base >> 10, end >> 10);
    /* Back to baseline: allow the calling thread's own heap one segment
     * of slack (stdio, the scheduler's blocks). */
    CHECK(end <= base + ((size_t)4 << 20));
#endif
    free(vms);
    free(ready);
    free(last_worker);
    return 0;
}
