/* scan_tiling.c: what the hidden layer's fused neuron loops of Tutorial 5 cost, and what row
 * tiling and dropping the membrane tape would save. A design measurement for codegen (see
 * bench/RESULTS.md, "Scan tiling"), not a test.
 *
 * The two loops are written as plain C in the shape the generated code has after `timesum`
 * (docs/passes.md), at B = 128, N = 1000, T = 25:
 *
 *   forward, per step:  mem = 0.95 mem + lin - reset; v = mem - 1; tape[t] = v; spk = v > 0
 *   backward, per step: v = tape[t]; spk = v > 0; acc += dspk * atan'(v) * w(t)
 *
 * Variants:
 *   untiled      each loop runs over all B rows per step (today's generated code);
 *   tiled R      the same, R rows at a time through all T steps (the [R, N] arrays stay in L1/L2);
 *   no tape      every step writes the same slot: the cost without the T x B x N tape, i.e.
 *                with the membrane recomputed instead of stored (backward would then recompute
 *                the forward scan, forward in time, which timesum makes legal);
 *   fused R      per tile of R rows: forward then backward, so the tile's tape is read back
 *                at once;
 *   recompute R  per tile of R rows: forward without a tape, then a backward that runs forward
 *                in time and recomputes the membrane from its own copy of the state (the real
 *                cost of dropping the tape: the forward scan twice).
 *
 *     cc -O3 -march=native -mprefer-vector-width=512 bench/scan_tiling.c -o build/bench/scan_tiling
 *     build/bench/scan_tiling
 *
 * Prints the best of 15 runs of each, in ms per training iteration (one thread).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { B = 128, N = 1000, T = 25, REPS = 15 };

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

typedef struct {
    float *mem, *lin, *spk, *tape, *acc, *dspk;
} arrays;

/* Forward over rows [r0, r1) for all T steps; tape slot t at t * tstride (0: one slot). */
static void forward(arrays *a, long r0, long r1, long tstride) {
    float *restrict mem = a->mem, *restrict spk = a->spk;
    const float *restrict lin = a->lin;
    for (int t = 0; t < T; t++) {
        float *restrict tp = a->tape + t * tstride;
        for (long i = r0 * N; i < r1 * N; i++) {
            float m = mem[i], r = m - 1.0f > 0.0f ? 1.0f : 0.0f;
            m = 0.95f * m + lin[i] - r;
            float v = m - 1.0f;
            tp[i] = v;
            spk[i] = v > 0.0f ? 1.0f : 0.0f;
            mem[i] = m;
        }
    }
}

static void backward(arrays *a, long r0, long r1, long tstride) {
    float *restrict acc = a->acc, *restrict spk = a->spk;
    const float *restrict dspk = a->dspk;
    for (int t = T - 1; t >= 0; t--) {
        const float *restrict tp = a->tape + t * tstride;
        const float w = (float)(t + 1);
        for (long i = r0 * N; i < r1 * N; i++) {
            float v = tp[i], x = 3.14159265f * v;
            spk[i] = v > 0.0f ? 1.0f : 0.0f;
            acc[i] += dspk[i] * (1.0f / (1.0f + x * x)) * w;
        }
    }
}

/* Backward with the membrane recomputed, forward in time (no tape): mem2 starts at 0. */
static void backward_recompute(arrays *a, float *restrict mem2, long r0, long r1) {
    float *restrict acc = a->acc, *restrict spk = a->spk;
    const float *restrict dspk = a->dspk, *restrict lin = a->lin;
    for (long i = r0 * N; i < r1 * N; i++) mem2[i] = 0.0f;
    for (int t = 0; t < T; t++) {
        const float w = (float)(t + 1);
        for (long i = r0 * N; i < r1 * N; i++) {
            float m = mem2[i], r = m - 1.0f > 0.0f ? 1.0f : 0.0f;
            m = 0.95f * m + lin[i] - r;
            mem2[i] = m;
            float v = m - 1.0f, x = 3.14159265f * v;
            spk[i] = v > 0.0f ? 1.0f : 0.0f;
            acc[i] += dspk[i] * (1.0f / (1.0f + x * x)) * w;
        }
    }
}
static double run_recompute(arrays *a, float *mem2, long tile) {
    double best = 1e9;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now();
        for (long r0 = 0; r0 < B; r0 += tile) {
            forward(a, r0, r0 + tile, 0);
            backward_recompute(a, mem2, r0, r0 + tile);
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best * 1e3;
}

/* mode 0: forward all tiles, then backward all tiles; mode 1: per tile forward, backward. */
static double run(arrays *a, long tile, long tstride, int fused) {
    double best = 1e9;
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = now();
        if (fused) {
            for (long r0 = 0; r0 < B; r0 += tile) {
                forward(a, r0, r0 + tile, tstride);
                backward(a, r0, r0 + tile, tstride);
            }
        } else {
            for (long r0 = 0; r0 < B; r0 += tile) forward(a, r0, r0 + tile, tstride);
            for (long r0 = 0; r0 < B; r0 += tile) backward(a, r0, r0 + tile, tstride);
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    return best * 1e3;
}

int main(void) {
    const size_t n = (size_t)B * N;
    arrays a;
    float **all[] = {&a.mem, &a.lin, &a.spk, &a.acc, &a.dspk};
    for (size_t k = 0; k < sizeof all / sizeof *all; k++)
        if (!(*all[k] = aligned_alloc(64, n * sizeof(float)))) return 1;
    if (!(a.tape = aligned_alloc(64, n * T * sizeof(float)))) return 1;
    for (size_t i = 0; i < n; i++) {
        a.mem[i] = 0.0f;
        a.lin[i] = 0.03f * (float)(i % 97);
        a.dspk[i] = 0.01f * (float)(i % 13);
        a.acc[i] = 0.0f;
    }
    for (size_t i = 0; i < n * T; i++) a.tape[i] = 0.0f;
    const long tiles[] = {B, 32, 16};
    float *mem2 = aligned_alloc(64, n * sizeof(float));
    printf("%-12s %10s %14s %14s %14s\n", "rows a pass", "tape", "no tape", "fused fwd+bwd", "recompute");
    for (size_t k = 0; k < sizeof tiles / sizeof *tiles; k++)
        printf("%-12ld %7.3f ms %11.3f ms %11.3f ms %11.3f ms\n", tiles[k], run(&a, tiles[k], (long)n, 0),
               run(&a, tiles[k], 0, 0), run(&a, tiles[k], (long)n, 1), run_recompute(&a, mem2, tiles[k]));
    printf("(acc[7] = %g)\n", (double)a.acc[7]);
    return 0;
}
