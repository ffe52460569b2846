/* snnrt_rng.c: the runtime's random numbers, all seeded, none global.
 *
 * Two kinds here, for two jobs (the trainer's parameter init and shuffling use neither: they
 * use PyTorch's own generator, snnrt_torchrng.c, so that --seed s starts from exactly the
 * weights and batch order that torch.manual_seed(s) and the reference's randperm give):
 *
 * - Sequential streams (test data, harnesses, benchmarks): xoshiro256** (Blackman and Vigna,
 *   2018), a fast generator with 256 bits of state that passes BigCrush, seeded through
 *   splitmix64 (Steele, Lea and Flood, 2014) as its authors recommend. A stream is named by
 *   (seed, stream), so independent uses of one seed do not overlap.
 *
 * - Counter-based draws for generated code (snnrt_uniform, snnrt_uniform_fill): Philox4x32-10
 *   (Salmon, Moraes, Dror and Shaw, SC'11), exactly as Random123 defines it (checked against
 *   its known-answer vectors in tests/unit/test_runtime_rng.c). A draw is a pure function of
 *   (key, a, b, c), so a rate encoder gives the same spikes whatever order the loops run in and
 *   however many threads run them. Mapping: Philox key = key XOR mix64(a) (two 32-bit words),
 *   counter = (lo q, hi q, lo b, hi b) with q = c / 4, and the draw is output word c % 4: one
 *   Philox block serves four consecutive c, as Random123 and cuRAND use all four words. For a
 *   fixed key the map from (a, b, c) to (Philox key, counter, word) is one-to-one (mix64 is a
 *   bijection). Generated code passes (step, row, column) as (a, b, c), so a row of one step
 *   shares the Philox key and walks the counter: snnrt_uniform_fill computes a row 32 draws
 *   (eight Philox blocks) at a time with AVX2. Measured on this project's machine: about
 *   12 ns a draw through the scalar call, about 1-2 ns filled.
 *   The result is the top 24 bits of the output word times 2^-24: a float in [0, 1), every
 *   value a multiple of 2^-24, never 1.0.
 */
#include "snnrt_lib.h"

#ifdef __AVX2__
#include <immintrin.h>
#endif

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
    const uint64_t k = key ^ snnrt_mix64(a), q = c >> 2;
    const uint32_t ctr[4] = {(uint32_t)q, (uint32_t)(q >> 32), (uint32_t)b, (uint32_t)(b >> 32)};
    const uint32_t kk[2] = {(uint32_t)k, (uint32_t)(k >> 32)};
    uint32_t out[4];
    snnrt_philox4x32_10(ctr, kk, out);
    return (float)(out[c & 3] >> 8) * 0x1.0p-24f;
}

#ifdef __AVX2__
/* 32x32 -> 64-bit products of eight lanes by a constant: the high and low halves. */
static inline void mulhilo8(__m256i x, __m256i m, __m256i *hi, __m256i *lo) {
    const __m256i pe = _mm256_mul_epu32(x, m);                        /* lanes 0, 2, 4, 6 */
    const __m256i po = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), m); /* lanes 1, 3, 5, 7 */
    *lo = _mm256_blend_epi32(pe, _mm256_slli_epi64(po, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(pe, 32), po, 0xAA);
}

static inline __m256 to_unit(__m256i x) {
    return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(x, 8)), _mm256_set1_ps(0x1.0p-24f));
}
#endif

void snnrt_uniform_fill(uint64_t key, uint64_t a, uint64_t b, uint64_t c0, int64_t n,
                        float *out) {
    int64_t i = 0;
#ifdef __AVX2__
    /* head: single draws until c is a multiple of 4 (the start of a Philox block) */
    for (; i < n && ((c0 + (uint64_t)i) & 3) != 0; i++) out[i] = snnrt_uniform(key, a, b, c0 + (uint64_t)i);
    const uint64_t k = key ^ snnrt_mix64(a);
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (; i + 32 <= n; i += 32) { /* eight blocks, lane j = block q + j = draws 4(q+j) .. +3 */
        const uint64_t q = (c0 + (uint64_t)i) >> 2;
        if ((uint32_t)q > 0xFFFFFFF8u) break; /* the low counter word would carry in the block */
        __m256i x0 = _mm256_add_epi32(_mm256_set1_epi32((int)(uint32_t)q), lane);
        __m256i x1 = _mm256_set1_epi32((int)(uint32_t)(q >> 32));
        __m256i x2 = _mm256_set1_epi32((int)(uint32_t)b), x3 = _mm256_set1_epi32((int)(uint32_t)(b >> 32));
        uint32_t k0 = (uint32_t)k, k1 = (uint32_t)(k >> 32);
        for (int r = 0; r < 10; r++) {
            __m256i hi0, lo0, hi1, lo1;
            mulhilo8(x0, m0, &hi0, &lo0);
            mulhilo8(x2, m1, &hi1, &lo1);
            x0 = _mm256_xor_si256(_mm256_xor_si256(hi1, x1), _mm256_set1_epi32((int)k0));
            x1 = lo1;
            x2 = _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32((int)k1));
            x3 = lo0;
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        /* transpose words (x0..x3) x lanes (0..7) into draw order: out[4j + w] = word w of lane j */
        const __m256 f0 = to_unit(x0), f1 = to_unit(x1), f2 = to_unit(x2), f3 = to_unit(x3);
        const __m256 t0 = _mm256_unpacklo_ps(f0, f1), t1 = _mm256_unpackhi_ps(f0, f1);
        const __m256 t2 = _mm256_unpacklo_ps(f2, f3), t3 = _mm256_unpackhi_ps(f2, f3);
        const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
        const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
        _mm256_storeu_ps(out + i, _mm256_permute2f128_ps(u0, u1, 0x20));
        _mm256_storeu_ps(out + i + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
        _mm256_storeu_ps(out + i + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
        _mm256_storeu_ps(out + i + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
    }
#endif
    for (; i < n; i++) out[i] = snnrt_uniform(key, a, b, c0 + (uint64_t)i);
}
