/* snnrt_torchrng.c: PyTorch's CPU generator, so a seed means what it means in PyTorch.
 *
 * A user who writes `torch.manual_seed(s)`, builds nn.Linear layers and shuffles with
 * `torch.randperm(n, generator=torch.Generator().manual_seed(s + 1))` gets particular initial
 * weights and a particular batch order; the trainer reproduces both bit for bit (snnrt_init.c,
 * snnrt_batch.c), so a comparison with a PyTorch run of the same seed is paired: same start, same
 * batches. Everything below is what torch 1.13's CPU code computes (ATen's CPUGeneratorImpl,
 * at::mt19937, uniform_real_distribution, randperm_cpu), checked against Debian's torch 1.13 by
 * tests/unit/test_runtime_torchrng.c with numbers from tests/reference/gen_torchrng.py:
 *
 * - seeding: the Mersenne Twister MT19937 (Matsumoto and Nishimura, 1998) initialised by
 *   init_genrand with the low 32 bits of the 64-bit seed (torch.manual_seed(2**32 + 5) draws
 *   what manual_seed(5) draws);
 * - random(): one 32-bit MT19937 output; random64(): two, the first in the high half;
 * - uniform_(from, to) on a float32 tensor, element by element in memory order: from and to are
 *   first rounded to float; each element takes one random(), keeps its LOW 24 bits r, and
 *   computes, in float, x = (float)r * 2^-24 (exact) and then fmaf(x, to - from, from): ONE
 *   rounding. The fusion is not in ATen's source (`x * (to - from) + from`) but in how it is
 *   built: the kernel is compiled once per CPU capability, and the AVX2 and AVX-512 builds
 *   (-mfma, GCC's default -ffp-contract=fast) fuse the multiply-add. Torch picks those on any
 *   x86 CPU with AVX2, so that is what users get; checked: with ATEN_CPU_CAPABILITY=avx2 or
 *   avx512 torch matches this file for all 784000 weights of Tutorial 5's fc1 under seed 0,
 *   with =default (the unfused build) only 48 % of them do. fmaf is exact on any CPU (libm
 *   emulates it without the instruction), so this code gives torch's AVX2 numbers everywhere;
 * - randperm(n), n < 2^32 / 20 (= 214748364): the identity, then for i = 0 .. n-2 swap
 *   element i with element i + random() % (n - i) (n - 1 draws); larger n: the "inside-out"
 *   shuffle, for i = 0 .. n-1: z = random64() % (i + 1), p[i] = p[z], p[z] = i (n random64
 *   draws; from ATen's source, too large to check against torch here).
 *
 * The generator is a plain struct (2.5 KB) that callers own; nothing here is global.
 */
#include "snnrt_lib.h"

#include <math.h>

enum { MT_N = SNNRT_MT_N, MT_M = 397 };

void snnrt_torch_seed(snnrt_torch_gen *g, uint64_t seed) {
    g->state[0] = (uint32_t)seed;
    for (int j = 1; j < MT_N; j++)
        g->state[j] = 1812433253u * (g->state[j - 1] ^ (g->state[j - 1] >> 30)) + (uint32_t)j;
    g->next = MT_N; /* the first draw twists */
}

static void mt_twist(snnrt_torch_gen *g) {
    uint32_t *s = g->state;
    for (int i = 0; i < MT_N; i++) {
        const uint32_t y = (s[i] & 0x80000000u) | (s[(i + 1) % MT_N] & 0x7fffffffu);
        s[i] = s[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    g->next = 0;
}

uint32_t snnrt_torch_random(snnrt_torch_gen *g) {
    if (g->next >= MT_N) mt_twist(g);
    uint32_t y = g->state[g->next++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

uint64_t snnrt_torch_random64(snnrt_torch_gen *g) {
    const uint64_t hi = snnrt_torch_random(g);
    return hi << 32 | snnrt_torch_random(g);
}

void snnrt_torch_uniform(snnrt_torch_gen *g, double from, double to, float *out, int64_t n) {
    const float lo = (float)from, width = (float)to - lo;
    for (int64_t i = 0; i < n; i++)
        out[i] = fmaf((float)(snnrt_torch_random(g) & 0xffffffu) * 0x1.0p-24f, width, lo);
}

enum { RANDPERM_SMALL = 214748364 }; /* std::numeric_limits<uint32_t>::max() / 20 */

void snnrt_torch_randperm(snnrt_torch_gen *g, int64_t n, int64_t *perm) {
    if (n < RANDPERM_SMALL) {
        for (int64_t i = 0; i < n; i++) perm[i] = i;
        for (int64_t i = 0; i < n - 1; i++) {
            const int64_t z = (int64_t)(snnrt_torch_random(g) % (uint64_t)(n - i));
            const int64_t t = perm[i];
            perm[i] = perm[z + i];
            perm[z + i] = t;
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        const int64_t z = (int64_t)(snnrt_torch_random64(g) % (uint64_t)(i + 1));
        perm[i] = perm[z];
        perm[z] = i;
    }
}

void snnrt_torch_randperm_skip(snnrt_torch_gen *g, int64_t n) {
    if (n < RANDPERM_SMALL)
        for (int64_t i = 0; i < n - 1; i++) (void)snnrt_torch_random(g);
    else
        for (int64_t i = 0; i < n; i++) (void)snnrt_torch_random64(g);
}
