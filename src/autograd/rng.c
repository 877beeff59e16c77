/* rng.c -- xoshiro256** seeded by SplitMix64, and tensor fills.
 * Tangled from doc/10-engine.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void ag_rng_seed(ag_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

uint64_t ag_rng_next(ag_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double ag_rng_uniform(ag_rng *r) { return (double)(ag_rng_next(r) >> 11) * 0x1.0p-53; }

double ag_rng_normal(ag_rng *r)
{
    double u1 = 1.0 - ag_rng_uniform(r); /* in (0, 1]: log(u1) is finite */
    double u2 = ag_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint32_t ag_rng_below(ag_rng *r, uint32_t n)
{
    uint64_t m = (ag_rng_next(r) >> 32) * n;
    if ((uint32_t)m < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while ((uint32_t)m < threshold) m = (ag_rng_next(r) >> 32) * n;
    }
    return (uint32_t)(m >> 32);
}

void ag_rng_shuffle(ag_rng *r, int *items, int n)
{
    for (int i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)ag_rng_below(r, (uint32_t)i + 1);
        int tmp = items[i];
        items[i] = items[j];
        items[j] = tmp;
    }
}

void ag_fill_uniform(ag_tensor *x, ag_rng *r, double lo, double hi)
{
    for (long i = 0; i < x->size; i++) x->value[i] = (ag_real)(lo + (hi - lo) * ag_rng_uniform(r));
}

void ag_fill_normal(ag_tensor *x, ag_rng *r, double mean, double std)
{
    for (long i = 0; i < x->size; i++) x->value[i] = (ag_real)(mean + std * ag_rng_normal(r));
}

void ag_fill(ag_tensor *x, double value)
{
    for (long i = 0; i < x->size; i++) x->value[i] = (ag_real)value;
}
