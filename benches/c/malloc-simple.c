/*
 * malloc-simple: one thread, tight loops of small blocks. For each size of
 * SIZES and each count of COUNTS in turn, it repeatedly allocates `count`
 * blocks of that size, stamps them, and frees them in the order they came
 * (the pattern of glibc's malloc-simple benchmark); between the rounds it
 * also runs malloc/free pairs with nothing live in between.
 *
 * What stresses the allocator: the single-thread fast path of malloc and
 * free, per size class, at working sets from a few cache lines to a few
 * hundred KiB.
 *
 *     malloc-simple [THREADS, ignored] [WORK=20000000 mallocs in all]
 */
#include "bench.h"

static const size_t SIZES[] = {16, 32, 48, 64, 128, 256, 512, 1024};
static const size_t COUNTS[] = {25, 100, 400, 1600};
#define NSIZES (sizeof SIZES / sizeof SIZES[0])
#define NCOUNTS (sizeof COUNTS / sizeof COUNTS[0])
#define PAIRS_PER_ROUND 64

int main(int argc, char **argv) {
    int threads = 1;
    uint64_t total = 20000000;
    bench_args(argc, argv, &threads, &total);
    /* Each (size, count) pair gets the same share of the mallocs; half of
     * each share goes to rounds of `count` live blocks, half to pairs. */
    uint64_t share = total / (NSIZES * NCOUNTS);
    if (share == 0) share = 1;
    void **blocks = bench_malloc(COUNTS[NCOUNTS - 1] * sizeof *blocks);
    uint64_t sum = 0, made = 0;
    double start = now_s();
    for (size_t s = 0; s < NSIZES; s++) {
        size_t size = SIZES[s];
        for (size_t c = 0; c < NCOUNTS; c++) {
            size_t count = COUNTS[c];
            uint64_t rounds = share / 2 / count, pairs = share / 2;
            if (rounds == 0) rounds = 1;
            for (uint64_t r = 0; r < rounds; r++) {
                for (size_t i = 0; i < count; i++) {
                    blocks[i] = bench_malloc(size);
                    made += stamp(blocks[i], size, r + i);
                }
                for (size_t i = 0; i < count; i++) sum += release(blocks[i]);
            }
            for (uint64_t i = 0; i < pairs; i++) {
                void *p = bench_malloc(size);
                made += stamp(p, size, i);
                sum += release(p);
            }
        }
    }
    double elapsed = now_s() - start;
    free(blocks);
    bench_finish(elapsed, sum, made);
    return 0;
}
