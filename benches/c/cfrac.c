/*
 * cfrac: big-number arithmetic with many short-lived small blocks, one
 * thread. It expands the continued fraction of sqrt(N) for a 38-digit N,
 * as the continued-fraction factoring method does: at each term it
 * computes the next partial quotient, the convergent's numerator modulo N,
 * and trial-divides the term's denominator by the primes below 100 (the
 * factor base of a smoothness test). Every arithmetic operation returns a
 * freshly allocated number (8-40 bytes) and the operands that are no
 * longer needed are freed at once, the allocation pattern of the classic
 * cfrac program.
 *
 * What stresses the allocator: a high rate of malloc/free of tiny blocks
 * on one thread, with lifetimes of a few operations.
 *
 * Each term also checks the identity N - m'^2 = d * d' of the expansion,
 * so a corrupted number stops the program.
 *
 *     cfrac [THREADS, ignored] [WORK=500000 terms]
 */
#include "bench.h"

/* A natural number: `n` 32-bit limbs, least significant first, no leading
 * zero limb (zero has n == 0). */
typedef struct bn {
    uint32_t n;
    uint32_t d[];
} bn;

static bn *bn_new(uint32_t n) {
    bn *r = bench_malloc(sizeof *r + (n ? n : 1) * sizeof(uint32_t));
    r->n = n;
    memset(r->d, 0, (n ? n : 1) * sizeof(uint32_t));
    return r;
}

static bn *bn_trim(bn *r) {
    while (r->n && !r->d[r->n - 1]) r->n--;
    return r;
}

static bn *bn_u64(uint64_t v) {
    bn *r = bn_new(2);
    r->d[0] = (uint32_t)v;
    r->d[1] = (uint32_t)(v >> 32);
    return bn_trim(r);
}

static bn *bn_copy(const bn *a) {
    bn *r = bn_new(a->n);
    memcpy(r->d, a->d, a->n * sizeof(uint32_t));
    return r;
}

static uint64_t bn_low64(const bn *a) {
    return (a->n > 0 ? a->d[0] : 0) | (a->n > 1 ? (uint64_t)a->d[1] << 32 : 0);
}

static int bn_cmp(const bn *a, const bn *b) {
    if (a->n != b->n) return a->n < b->n ? -1 : 1;
    for (uint32_t i = a->n; i-- > 0;)
        if (a->d[i] != b->d[i]) return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

static bn *bn_add(const bn *a, const bn *b) {
    if (a->n < b->n) {
        const bn *t = a;
        a = b;
        b = t;
    }
    bn *r = bn_new(a->n + 1);
    uint64_t carry = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        carry += (uint64_t)a->d[i] + (i < b->n ? b->d[i] : 0);
        r->d[i] = (uint32_t)carry;
        carry >>= 32;
    }
    r->d[a->n] = (uint32_t)carry;
    return bn_trim(r);
}

/* a - b, for a >= b. */
static bn *bn_sub(const bn *a, const bn *b) {
    bn *r = bn_new(a->n);
    int64_t borrow = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        int64_t t = (int64_t)a->d[i] - (i < b->n ? (int64_t)b->d[i] : 0) - borrow;
        borrow = t < 0;
        r->d[i] = (uint32_t)(t + (borrow ? ((int64_t)1 << 32) : 0));
    }
    if (borrow) bench_fail("subtraction below zero: broken arithmetic or allocator");
    return bn_trim(r);
}

static bn *bn_mul(const bn *a, const bn *b) {
    bn *r = bn_new(a->n + b->n);
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t carry = 0;
        for (uint32_t j = 0; j < b->n; j++) {
            uint64_t t = (uint64_t)a->d[i] * b->d[j] + r->d[i + j] + carry;
            r->d[i + j] = (uint32_t)t;
            carry = t >> 32;
        }
        r->d[i + b->n] = (uint32_t)carry;
    }
    return bn_trim(r);
}

/* a / p for a small p; the remainder goes to *rem. */
static bn *bn_div_small(const bn *a, uint32_t p, uint32_t *rem) {
    bn *q = bn_new(a->n);
    uint64_t r = 0;
    for (uint32_t i = a->n; i-- > 0;) {
        uint64_t cur = (r << 32) | a->d[i];
        q->d[i] = (uint32_t)(cur / p);
        r = cur % p;
    }
    *rem = (uint32_t)r;
    return bn_trim(q);
}

/* 2a + bit. */
static bn *bn_shl1(const bn *a, uint32_t bit) {
    bn *r = bn_new(a->n + 1);
    uint32_t carry = bit;
    for (uint32_t i = 0; i < a->n; i++) {
        r->d[i] = (a->d[i] << 1) | carry;
        carry = a->d[i] >> 31;
    }
    r->d[a->n] = carry;
    return bn_trim(r);
}

/* Long division, one bit at a time: *q = a / b, *r = a % b (b > 0). */
static void bn_divmod(const bn *a, const bn *b, bn **q, bn **r) {
    bn *quot = bn_new(a->n), *rem = bn_new(0);
    for (uint32_t i = a->n * 32; i-- > 0;) {
        bn *t = bn_shl1(rem, (a->d[i / 32] >> (i % 32)) & 1);
        free(rem);
        rem = t;
        if (bn_cmp(rem, b) >= 0) {
            t = bn_sub(rem, b);
            free(rem);
            rem = t;
            quot->d[i / 32] |= (uint32_t)1 << (i % 32);
        }
    }
    *q = bn_trim(quot);
    *r = rem;
}

/* a / b when the quotient is usually small (partial quotients, reductions
 * modulo N): repeated subtraction, long division past 16 steps. The
 * remainder replaces *a. */
static uint64_t bn_quot(bn **a, const bn *b) {
    bn *rem = bn_copy(*a);
    uint64_t q = 0;
    while (bn_cmp(rem, b) >= 0) {
        if (q == 16) {
            bn *Q, *R;
            free(rem);
            bn_divmod(*a, b, &Q, &R);
            q = bn_low64(Q);
            free(Q);
            rem = R;
            break;
        }
        bn *t = bn_sub(rem, b);
        free(rem);
        rem = t;
        q++;
    }
    free(*a);
    *a = rem;
    return q;
}

static bn *bn_decimal(const char *s) {
    bn *r = bn_new(0), *ten = bn_u64(10);
    for (; *s; s++) {
        bn *t = bn_mul(r, ten), *digit = bn_u64((uint64_t)(*s - '0'));
        free(r);
        r = bn_add(t, digit);
        free(t);
        free(digit);
    }
    free(ten);
    return r;
}

/* floor(sqrt(n)) for n < 2^126. */
static uint64_t bn_isqrt(const bn *n) {
    uint64_t x = 0;
    for (int bit = 62; bit >= 0; bit--) {
        uint64_t t = x | ((uint64_t)1 << bit);
        bn *tb = bn_u64(t), *sq = bn_mul(tb, tb);
        if (bn_cmp(sq, n) <= 0) x = t;
        free(tb);
        free(sq);
    }
    return x;
}

static const uint32_t PRIMES[] = {2,  3,  5,  7,  11, 13, 17, 19, 23, 29, 31, 37, 41,
                                  43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97};

int main(int argc, char **argv) {
    int threads = 1;
    uint64_t terms = 500000;
    bench_args(argc, argv, &threads, &terms);
    double start = now_s();
    bn *N = bn_decimal("10000000000000000000000000000000000009");
    bn *a0 = bn_u64(bn_isqrt(N));
    /* m_0 = 0, d_0 = 1, d_{-1} = N (so that d_1 = N - a0^2), a_0 = a0;
     * the convergents' numerators P_{-1} = 1, P_0 = a0. */
    bn *m = bn_new(0), *d = bn_u64(1), *d_prev = bn_copy(N), *a = bn_copy(a0);
    bn *p_prev = bn_u64(1), *p = bn_copy(a0);
    uint64_t sum = bn_low64(a0), smooth = 0, factors = 0;
    for (uint64_t k = 0; k < terms; k++) {
        /* m' = a d - m */
        bn *ad = bn_mul(a, d);
        bn *m_next = bn_sub(ad, m);
        free(ad);
        /* d' = d_prev + a (m - m'), m - m' of either sign */
        bn *d_next;
        if (bn_cmp(m, m_next) >= 0) {
            bn *diff = bn_sub(m, m_next), *t = bn_mul(a, diff);
            d_next = bn_add(d_prev, t);
            free(diff);
            free(t);
        } else {
            bn *diff = bn_sub(m_next, m), *t = bn_mul(a, diff);
            d_next = bn_sub(d_prev, t);
            free(diff);
            free(t);
        }
        /* The expansion's invariant: N - m'^2 = d d'. */
        bn *sq = bn_mul(m_next, m_next), *lhs = bn_sub(N, sq), *rhs = bn_mul(d, d_next);
        if (bn_cmp(lhs, rhs) != 0) bench_fail("N - m'^2 != d d': broken allocator");
        free(sq);
        free(lhs);
        free(rhs);
        /* a' = floor((a0 + m') / d') */
        bn *top = bn_add(a0, m_next);
        uint64_t a_next = bn_quot(&top, d_next);
        free(top);
        bn *a_next_bn = bn_u64(a_next);
        /* P' = (a' P + P_prev) mod N */
        bn *ap = bn_mul(a_next_bn, p), *p_next = bn_add(ap, p_prev);
        free(ap);
        bn_quot(&p_next, N);
        /* Trial division of d' by the factor base. */
        bn *rest = bn_copy(d_next);
        for (size_t i = 0; i < sizeof PRIMES / sizeof PRIMES[0]; i++) {
            for (;;) {
                uint32_t rem;
                bn *q = bn_div_small(rest, PRIMES[i], &rem);
                if (rem != 0) {
                    free(q);
                    break;
                }
                free(rest);
                rest = q;
                factors++;
            }
        }
        if (rest->n == 1 && rest->d[0] == 1) smooth++;
        free(rest);
        sum += a_next + bn_low64(p_next);
        free(m);
        free(d_prev);
        free(a);
        free(p_prev);
        m = m_next;
        d_prev = d;
        d = d_next;
        a = a_next_bn;
        p_prev = p;
        p = p_next;
    }
    double elapsed = now_s() - start;
    bn *all[] = {N, a0, m, d, d_prev, a, p_prev, p};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    bench_report(elapsed, sum ^ (smooth << 48) ^ (factors << 32));
    return 0;
}
