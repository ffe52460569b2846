/* fma_peak.c: the float32 FMA peak of this machine, the denominator of "snnc's time as a multiple
 * of the FLOP floor" (issue 4; bench/run.sh).
 *
 * Each thread runs independent chains of vector fused multiply-adds on registers (no memory
 * traffic): 16 accumulators hide the FMA latency. Built with -O2 -march=native the vector type
 * below becomes zmm registers on AVX-512 hosts and ymm pairs on AVX2 hosts, so the number is
 * the peak the generated code could reach on this host, not a theoretical one.
 *
 *     fma_peak [THREADS] [SECONDS]     -> one JSON line: {"threads": N, "gflops": X, ...}
 *
 * One FMA counts as 2 FLOPs. The result is the best of 5 repetitions of about SECONDS / 5
 * (default 1 s in all), so a neighbour's build briefly taking the core costs little.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef float v16 __attribute__((vector_size(64)));
#define NACC 16

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* Runs `iters` rounds of NACC vector FMAs; returns a value depending on all of them. */
static float chains(long iters, float seed)
{
    v16 acc[NACC], a, b;
    for (int i = 0; i < 16; i++) { a[i] = 0.999999f; b[i] = 1e-7f * seed; }
    for (int k = 0; k < NACC; k++)
        for (int i = 0; i < 16; i++) acc[k][i] = seed + (float)k;
    for (long it = 0; it < iters; it++) {
#pragma GCC unroll 16
        for (int k = 0; k < NACC; k++) acc[k] = acc[k] * a + b;
        __asm__ volatile("" : "+x"(a)); /* keep the multiplier opaque: no folding of the chain */
    }
    float s = 0;
    for (int k = 0; k < NACC; k++)
        for (int i = 0; i < 16; i++) s += acc[k][i];
    return s;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    double seconds = argc > 2 ? atof(argv[2]) : 1.0;
    if (threads < 1) threads = 1;
    omp_set_num_threads(threads);
    long iters = 1000000;
    /* calibrate: about seconds / 5 per repetition */
    for (;;) {
        double t0 = now();
        volatile float sink = chains(iters, 1.0f);
        (void)sink;
        double dt = now() - t0;
        if (dt > 0.02) { iters = (long)(iters * (seconds / 5) / dt) + 1; break; }
        iters *= 4;
    }
    double best = 0;
    float total = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
#pragma omp parallel reduction(+ : total)
        total += chains(iters, 1.0f + (float)omp_get_thread_num());
        double dt = now() - t0;
        double gf = 2.0 * 16 * NACC * (double)iters * threads / dt / 1e9;
        if (gf > best) best = gf;
    }
    printf("{\"threads\": %d, \"gflops\": %.1f, \"vector_floats\": 16, \"accumulators\": %d, "
           "\"finite\": %s}\n", threads, best, NACC, total == total ? "true" : "false");
    return 0;
}
