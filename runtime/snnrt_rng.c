/* snnrt_rng.c: the runtime's random numbers, all seeded, none global.
 *
 * Two kinds, for two jobs:
 *
 * - Sequential streams (shuffling, parameter init): xoshiro256** (Blackman and Vigna, 2018), a
 *   fast generator with 256 bits of state that passes BigCrush, seeded through splitmix64
 *   (Steele, Lea and Flood, 2014) as its authors recommend. A stream is named by (seed, stream):
 *   the shuffle of epoch e uses stream e, parameter i's init uses its own stream, so each is
 *   reproducible alone.
 *
 * - Counter-based draws for generated code (snnrt_uniform): Philox4x32-10 (Salmon, Moraes, Dror
 *   and Shaw, SC'11), exactly as Random123 defines it (checked against its known-answer vectors
 *   in tests/unit/test_runtime_rng.c). A draw is a pure function of (key, a, b, c), so a rate
 *   encoder gives the same spikes whatever order the loops run in and however many threads run
 *   them. Mapping: counter = (lo a, hi a, lo b, hi b), Philox key = key XOR mix64(c) (split into
 *   two 32-bit words); for a fixed key the map from (a, b, c) to (counter, Philox key) is
 *   one-to-one over all 192 bits. The result is the top 24 bits of the first output word
 *   times 2^-24: a float in [0, 1) with every value a multiple of 2^-24, never 1.0.
 */
#include "snnrt_lib.h"

uint64_t snnrt_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t snnrt_splitmix64(uint64_t *state) {
    *state += 0x9e3779b97f4a7c15ULL;
    return snnrt_mix64(*state);
}

static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void snnrt_rng_seed(snnrt_rng *r, uint64_t seed, uint64_t stream) {
    uint64_t st = seed ^ snnrt_mix64(stream + 0x632be59bd9b4e019ULL);
    for (int i = 0; i < 4; i++) r->s[i] = snnrt_splitmix64(&st);
    /* splitmix64 outputs are a bijection of distinct inputs: the state cannot be all zero
     * unless four consecutive outputs are zero, which does not happen. */
}

uint64_t snnrt_rng_next(snnrt_rng *r) {
    uint64_t *s = r->s;
    const uint64_t result = rotl64(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl64(s[3], 45);
    return result;
}

/* Lemire's nearly-divisionless method (ACM TOMACS 2019): unbiased, one multiply usually. */
uint64_t snnrt_rng_below(snnrt_rng *r, uint64_t n) {
    unsigned __int128 m = (unsigned __int128)snnrt_rng_next(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t threshold = (0 - n) % n;
        while (lo < threshold) {
            m = (unsigned __int128)snnrt_rng_next(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

float snnrt_rng_float(snnrt_rng *r) {
    return (float)(snnrt_rng_next(r) >> 40) * 0x1.0p-24f;
}

void snnrt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

float snnrt_uniform(uint64_t key, uint64_t a, uint64_t b, uint64_t c) {
    uint64_t k = key ^ snnrt_mix64(c);
    const uint32_t ctr[4] = {(uint32_t)a, (uint32_t)(a >> 32), (uint32_t)b, (uint32_t)(b >> 32)};
    const uint32_t kk[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    uint32_t out[4];
    snnrt_philox4x32_10(ctr, kk, out);
    return (float)(out[0] >> 8) * 0x1.0p-24f;
}
