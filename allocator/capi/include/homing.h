/*
 * homing.h: the C interface of homing, a multithreaded memory allocator.
 *
 * Library: libhoming.so (dynamic) or libhoming.a (static), built with
 *     cargo build --release -p homing-capi
 *
 *     cc -O2 app.c -I allocator/capi/include -L target/release -lhoming
 *     cc -O2 app.c -I allocator/capi/include target/release/libhoming.a -lpthread -ldl -lm
 *     LD_PRELOAD=target/release/libhoming.so ./any-program
 *
 * Two interfaces live here.
 *
 * 1. The malloc family. Built with the (default) `malloc` feature, the
 *    library exports malloc, free, calloc, realloc, reallocarray,
 *    posix_memalign, aligned_alloc, memalign, valloc, pvalloc,
 *    malloc_usable_size, free_sized, free_aligned_sized (and malloc_trim,
 *    malloc_stats, glibc's __libc_* aliases) under their standard names:
 *    loading or linking it makes homing the process's C allocator. Their
 *    declarations are the C library's (<stdlib.h>, <malloc.h>); this header
 *    only declares the homing_-prefixed equivalents below, which are
 *    exported whether or not the feature is on.
 *
 * 2. The embedding API for a runtime (a VM, an actor system):
 *    first-class heaps (homing_heap_*), regions (homing_region_*), a safe
 *    point (homing_collect) and statistics (homing_stats*).
 *
 * The C contract (every allocation function here and in the malloc family)
 *
 *   - Every block is aligned to HOMING_MALLOC_ALIGN (16 bytes,
 *     alignof(max_align_t)) or to the alignment asked for, if larger.
 *   - Size 0 gives a unique block that must be freed.
 *   - Failure returns NULL and sets errno to ENOMEM (out of memory, a size
 *     above PTRDIFF_MAX, or a count * size product that overflows), or to
 *     EINVAL (an alignment that is not a power of two; 0 is not one).
 *   - posix_memalign returns EINVAL or ENOMEM instead, and then writes
 *     neither *out nor errno.
 *   - realloc(NULL, n) is malloc(n). realloc(p, 0) frees p and returns NULL
 *     without touching errno, as glibc does (C23 leaves it undefined; do
 *     not rely on it in new code). A failed realloc leaves p valid.
 *   - free(NULL) does nothing; free never changes errno.
 *   - Any block may be freed by any thread, including threads that never
 *     allocated; it flies home to the heap that owns it.
 *
 * HOMING_SHOW_STATS=1 in the environment prints statistics at exit; the
 * other HOMING_* options are described in allocator/README.md.
 */
#ifndef HOMING_H
#define HOMING_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The alignment of every block malloc and homing_malloc return. */
#define HOMING_MALLOC_ALIGN 16

/* ------------------------------------------------------------------------
 * The malloc family, homing_-prefixed (always exported)
 * ------------------------------------------------------------------------ */

/* size bytes, 16-byte aligned; NULL and errno = ENOMEM on failure. */
void *homing_malloc(size_t size);

/* count * size zeroed bytes; NULL and errno = ENOMEM on overflow or
 * failure. */
void *homing_calloc(size_t count, size_t size);

/* Resizes p to size bytes, keeping the first min(old, size) bytes.
 * NULL p: homing_malloc(size). size 0: frees p, returns NULL.
 * Failure: NULL, errno = ENOMEM, p untouched. */
void *homing_realloc(void *p, size_t size);

/* homing_realloc(p, count * size); NULL and errno = ENOMEM (p untouched)
 * if the product overflows. */
void *homing_reallocarray(void *p, size_t count, size_t size);

/* Frees a block of homing's (from any homing_* or malloc-family call), on
 * any thread. NULL does nothing; errno is never changed. */
void homing_free(void *p);

/* size bytes aligned to alignment (a power of two; any size). NULL with
 * errno = EINVAL for a bad alignment, ENOMEM on failure. */
void *homing_aligned_alloc(size_t alignment, size_t size);

/* POSIX posix_memalign: 0 and *out = the block; EINVAL if alignment is not
 * a power of two multiple of sizeof(void *); ENOMEM on failure. On failure
 * *out is not written. errno is never changed. */
int homing_posix_memalign(void **out, size_t alignment, size_t size);

/* Bytes usable in block p (>= the size asked for; all may be written).
 * 0 for NULL. */
size_t homing_usable_size(void *p);

/* ------------------------------------------------------------------------
 * First-class heaps
 *
 * A heap is held by one thread at a time (its holder; at first the thread
 * that created it; "owner thread only" below means the holder). Only the
 * holder allocates from it, calls homing_heap_free / homing_heap_collect /
 * homing_heap_stats / homing_heap_set_limit on it and destroys it. To move
 * a heap to another thread (a VM state moving between workers), the holder
 * calls homing_heap_release and the new thread homing_heap_acquire. Any
 * thread may free one of its blocks with homing_free (or free) at any time,
 * also while the heap is between two holders: the block goes back to the
 * heap's inbox, and the holder reuses it after its next allocation slow
 * path or homing_heap_collect. homing_heap_destroy releases all the heap's
 * blocks at once. The checked build (cargo feature "checked") aborts with
 * a message when a thread uses a heap it does not hold, or acquires one
 * another thread holds.
 *
 *     homing_heap_t *heap = homing_heap_new();
 *     struct obj *o = homing_heap_malloc(heap, sizeof *o);
 *     ...                        // another thread may homing_free(o)
 *     homing_heap_release(heap); // worker A, end of a job
 *     homing_heap_acquire(heap); // worker B, start of the next job
 *     homing_heap_destroy(heap); // everything left goes at once
 * ------------------------------------------------------------------------ */

/* An opaque heap handle. */
typedef struct HomingHeap homing_heap_t;

/* A new heap owned by the calling thread; NULL and errno = ENOMEM if there
 * is no memory. */
homing_heap_t *homing_heap_new(void);

/* size bytes (16-byte aligned) from heap. Owner thread only. NULL and
 * errno = ENOMEM on failure. */
void *homing_heap_malloc(homing_heap_t *heap, size_t size);

/* count * size zeroed bytes from heap. Owner thread only. NULL and
 * errno = ENOMEM on overflow or failure. */
void *homing_heap_calloc(homing_heap_t *heap, size_t count, size_t size);

/* size bytes aligned to alignment (a power of two) from heap. Owner thread
 * only. NULL and errno = EINVAL / ENOMEM on failure. */
void *homing_heap_aligned_alloc(homing_heap_t *heap, size_t alignment, size_t size);

/* Resizes p (NULL or any homing block) into a block of heap, keeping the
 * prefix; the policies of homing_realloc. Owner thread only. */
void *homing_heap_realloc(homing_heap_t *heap, void *p, size_t size);

/* Frees p on heap's owner thread: a block of heap goes back without any
 * atomic operation; any other homing block is passed to homing_free. NULL
 * does nothing. On other threads, use homing_free. */
void homing_heap_free(homing_heap_t *heap, void *p);

/* Takes back the blocks other threads freed into heap, returns its empty
 * pages, purges free memory, also the OS pages of pages in use that only
 * free blocks touch. Owner thread only; call it at safe points. */
void homing_heap_collect(homing_heap_t *heap);

/* Destroys heap and releases every block it still holds, at once. Owner
 * thread only; no block of the heap may be used afterwards, and no other
 * thread may still be freeing one. NULL does nothing. */
void homing_heap_destroy(homing_heap_t *heap);

/* The calling thread, which holds heap, lets it go (its writes are
 * published to the next homing_heap_acquire). The heap first gives back the
 * memory it does not use, as homing_heap_collect does, so a heap between
 * two holders keeps resident little more than its live blocks. 0, or EPERM
 * if the calling thread does not hold heap (the checked build aborts
 * instead; nothing is given back then). */
int homing_heap_release(homing_heap_t *heap);

/* The calling thread takes heap, released by its previous holder, and sees
 * all that holder's writes. 0 (also if it holds heap already), or EBUSY if
 * another thread holds it (the checked build aborts instead). */
int homing_heap_acquire(homing_heap_t *heap);

/* One heap's numbers (homing_heap_stats). Live numbers count blocks freed
 * by other threads until the heap takes them back (homing_heap_collect
 * first for exact numbers); live, peak and remote_frees need the "stats"
 * feature (on by default). */
typedef struct homing_heap_stats {
    size_t live_blocks;     /* blocks handed out and not taken back */
    size_t live_bytes;      /* their bytes (class sizes) */
    size_t peak_live_bytes; /* highest live_bytes seen (sampled when the heap grows) */
    size_t in_use_bytes;    /* pages and huge blocks in use: what the limit counts */
    size_t os_bytes;        /* held from the OS: segments and huge mappings */
    size_t remote_frees;    /* blocks other threads freed into the heap, taken back */
    size_t limit;           /* HOMING_HEAP_NO_LIMIT: none */
    size_t limit_refusals;  /* allocations the limit refused */
} homing_heap_stats_t;

/* No limit (homing_heap_set_limit). */
#define HOMING_HEAP_NO_LIMIT ((size_t)-1)

/* Writes heap's numbers to *out: a few loads, no walk of pages (cheap at
 * every GC safe point). Owner thread only. */
void homing_heap_stats(homing_heap_t *heap, homing_heap_stats_t *out);

/* Caps heap's in_use_bytes at limit (HOMING_HEAP_NO_LIMIT: no limit). An
 * allocation that would go over returns NULL with errno = ENOMEM; the heap
 * stays usable (free, then allocate again). Counted in whole pages (64 KiB
 * small, 512 KiB medium, huge blocks by size) when the heap takes a fresh
 * page, so live_bytes never exceeds the limit and the fast path never
 * looks at it. Owner thread only. */
void homing_heap_set_limit(homing_heap_t *heap, size_t limit);

/* ------------------------------------------------------------------------
 * Regions
 *
 * A region is a bump arena whose memory belongs to the region, not to a
 * thread. One thread at a time uses it, but the handle may be passed to
 * another thread, which may allocate more in it, merge it or free it.
 * Freeing a region releases all its memory at once; there is no per-object
 * free.
 *
 *     homing_region_t *msg = homing_region_new();
 *     struct node *n = homing_region_alloc(msg, sizeof *n);
 *     ...                               // send msg to another thread
 *     homing_region_merge(actor, msg);  // there: msg's memory joins actor's
 *     homing_region_free(actor);        // all of it at once
 * ------------------------------------------------------------------------ */

/* An opaque region handle. */
typedef struct HomingRegion homing_region_t;

/* An empty region (no memory taken until the first allocation); NULL and
 * errno = ENOMEM if there is no memory for the handle. */
homing_region_t *homing_region_new(void);

/* size bytes, 16-byte aligned, valid until the region is freed or reset.
 * NULL and errno = ENOMEM on failure. Size 0 gives a valid pointer that may
 * equal the next allocation's. */
void *homing_region_alloc(homing_region_t *region, size_t size);

/* size bytes aligned to alignment (a power of two). NULL and
 * errno = EINVAL / ENOMEM on failure. */
void *homing_region_aligned_alloc(homing_region_t *region, size_t alignment, size_t size);

/* Moves everything `from` holds into `into`, in O(1), and frees the `from`
 * handle: its allocations now live as long as `into`. The two must differ;
 * `from` must not be used afterwards. */
void homing_region_merge(homing_region_t *into, homing_region_t *from);

/* Releases every allocation of region at once, keeping its largest chunk
 * for reuse. */
void homing_region_reset(homing_region_t *region);

/* Bytes of memory the region holds. */
size_t homing_region_capacity(const homing_region_t *region);

/* Frees region and all its allocations, on whichever thread calls it.
 * NULL does nothing; errno is not changed. */
void homing_region_free(homing_region_t *region);

/* ------------------------------------------------------------------------
 * Safe points and statistics
 * ------------------------------------------------------------------------ */

/* A safe point for the calling thread: posts its pending cross-thread
 * frees, takes back the blocks other threads freed to it, returns empty
 * pages and purges free memory. Never needed for correctness. */
void homing_collect(void);

/* Process-wide counters. */
typedef struct homing_stats {
    size_t live_blocks;     /* blocks handed out and not yet freed home */
    size_t live_bytes;      /* bytes of those blocks */
    size_t huge_blocks;     /* huge blocks (straight from the OS) live now */
    size_t os_mapped;       /* bytes mapped from the OS now */
    size_t os_purged;       /* bytes given back with MADV_DONTNEED so far */
    size_t remote_posted;   /* cross-thread frees posted so far */
    size_t remote_drained;  /* cross-thread frees taken back by owners */
    size_t pages_purged;    /* pages purged so far */
    size_t heaps;           /* heaps ever created (thread and first-class) */
    size_t heaps_abandoned; /* heaps of exited threads not yet adopted */
    size_t os_cached;       /* of os_mapped, released segments and huge
                               mappings kept for reuse (segments purged;
                               huge mappings until the purge delay) */
    size_t huge_cached;     /* of os_cached, released huge mappings */
    size_t huge_reused;     /* huge blocks served from a cached mapping */
    size_t huge_mapped;     /* huge mappings made from the OS so far */
} homing_stats_t;

/* Writes a snapshot of the counters to *out. */
void homing_stats(homing_stats_t *out);

/* Prints the counters to standard error. */
void homing_stats_print(void);

#ifdef __cplusplus
}
#endif

#endif /* HOMING_H */
