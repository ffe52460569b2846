/* backward_interchange.c: what backward's tiled loop of Tutorial 5 (the recomputed membrane,
 * the atan surrogate, d.h.spk = d.o.mem W2 with K = 10, the time sum of d.h.linear) and the
 * output layer's weight gradient dW2 += d.o.mem^T h.spk would cost in three loop nests, per
 * 32-row tile, one thread. A design measurement for codegen (bench/RESULTS.md, "Sixth
 * session"), not a test:
 *
 *   step-outer  what snnc generates today: per step, column chunks of 256 -> rows -> columns
 *               (vectorized), h.spk stored, then snnrt_sgemm's dW2 for the tile and step;
 *   time-inner  chunks -> rows -> steps -> columns, dW2 added into C inside the loop
 *               (10 loads and 10 stores of C per 16 elements);
 *   vec-outer   16 columns -> rows -> steps: the state, the time sum, h.linear, the 10 W2 values
 *               and the 10 dW2 accumulators of the 16 columns stay in registers, only d.o.mem's
 *               row of step t is read.
 *
 *     clang-16 -O3 -march=native -mprefer-vector-width=512 -ffp-contract=off -Iruntime -c \
 *         bench/backward_interchange.c -o build/bench/bi.o
 *     cc build/bench/bi.o build/libsnnrt.a -lopenblas -lz -lm -fopenmp -o build/bench/bi
 *
 * (clang: LLVM's vectorizer, as the generated code has; gcc leaves these loops scalar.)
 * First checks that vec-outer computes what step-outer does (the time sum exactly, dW2 to
 * rounding: its rows and steps are summed in another order), then prints the best of 21 runs
 * of each, in ms per training iteration (B = 128). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include "snnrt_kernels.h"
enum { B = 128, R = 32, N = 1000, NP = 1008, K = 10, T = 25, CH = 256, REPS = 21 };
static double now(void){struct timespec ts;clock_gettime(CLOCK_MONOTONIC,&ts);return ts.tv_sec+1e-9*ts.tv_nsec;}
static float *lin, *st, *acc, *spk, *dY, *w2p, *C, *wt;
/* One element at one step, the same in every nest: the membrane recomputed (*m), the time sum
 * *a += (d . w) * atan'(v) * wgt with w[k * ws] for k < K; returns the spike. */
static inline float elem(float *m, float l, const float *d, const float *w, long ws, float wgt,
                         float *a) {
  float mm = *m, rr = mm - 1.0f > 0.0f ? 1.0f : 0.0f;
  mm = 0.95f * mm + l - rr; *m = mm;
  float v = mm - 1.0f, h = v > 0.0f ? 1.0f : 0.0f;
  float ds = d[0] * w[0];
  _Pragma("GCC unroll 16") for (int k = 1; k < K; k++) ds = fmaf(d[k], w[k * ws], ds);
  float x = 3.1415927f * v; float sg = 1.0f / (1.0f + x * x);
  *a = *a + ds * sg * wgt;
  return h;
}
/* today: per step: chunk -> row -> j body (+ spk store), then dW2 += dY_t^T spk */
static void step_outer(long r0) {
  for (int t = 0; t < T; t++) {
    const float wgt = wt[t];
    const float *dy = dY + (long)t * B * K + r0 * K;
    for (long c0 = 0; c0 < N; c0 += CH) {
      long cw = N - c0 < CH ? N - c0 : CH;
      for (int r = 0; r < R; r++) {
        float *restrict s = st + (r0 + r) * N, *restrict a = acc + (r0 + r) * N, *restrict sp = spk + r * N;
        const float *restrict l = lin + (r0 + r) * N;
        const float *restrict d = dy + r * K;
        for (long j = c0; j < c0 + cw; j++) sp[j] = elem(&s[j], l[j], d, w2p + j, NP, wgt, &a[j]);
      }
    }
    snnrt_kernel_sgemm(1, 0, K, N, R, 1.0f, dy, K, spk, N, 1.0f, C, N);
  }
}
/* time-inner: chunk -> row -> t -> j body, dW2 accumulated in place (C chunk stays in L1) */
static void time_inner(long r0) {
  for (long c0 = 0; c0 < N; c0 += CH) {
    long cw = N - c0 < CH ? N - c0 : CH;
    for (int r = 0; r < R; r++) {
      float *restrict s = st + (r0 + r) * N, *restrict a = acc + (r0 + r) * N;
      const float *restrict l = lin + (r0 + r) * N;
      for (int t = 0; t < T; t++) {
        const float wgt = wt[t];
        const float *restrict d = dY + (long)t * B * K + (r0 + r) * K;
        float *restrict cc = C;
        for (long j = c0; j < c0 + cw; j++) {
          const float h = elem(&s[j], l[j], d, w2p + j, NP, wgt, &a[j]);
          _Pragma("GCC unroll 16") for (int k = 0; k < K; k++) cc[k * NP + j] = fmaf(d[k], h, cc[k * NP + j]);
        }
      }
    }
  }
}
/* column-vector outer: 16 columns -> row -> t, everything but dY in registers */
static void vec_outer(long r0) {
  for (long c0 = 0; c0 < N; c0 += 16) {
    float cacc[K][16];
    for (int k = 0; k < K; k++) for (int jj = 0; jj < 16; jj++) cacc[k][jj] = c0 + jj < N ? C[k * NP + c0 + jj] : 0.0f;
    float wv[K][16];
    for (int k = 0; k < K; k++) for (int jj = 0; jj < 16; jj++) wv[k][jj] = w2p[k * NP + c0 + jj];
    for (int r = 0; r < R; r++) {
      float sv[16], av[16], lv[16];
      for (int jj = 0; jj < 16; jj++) { long j = c0 + jj < N ? c0 + jj : N - 1; sv[jj] = st[(r0 + r) * N + j]; av[jj] = acc[(r0 + r) * N + j]; lv[jj] = lin[(r0 + r) * N + j]; }
      for (int t = 0; t < T; t++) {
        const float wgt = wt[t];
        const float *restrict d = dY + (long)t * B * K + (r0 + r) * K;
        for (int jj = 0; jj < 16; jj++) {
          const float h = elem(&sv[jj], lv[jj], d, &wv[0][jj], 16, wgt, &av[jj]);
          _Pragma("GCC unroll 16") for (int k = 0; k < K; k++) cacc[k][jj] = fmaf(d[k], h, cacc[k][jj]);
        }
      }
      for (int jj = 0; jj < 16 && c0 + jj < N; jj++) { st[(r0 + r) * N + c0 + jj] = sv[jj]; acc[(r0 + r) * N + c0 + jj] = av[jj]; }
    }
    for (int k = 0; k < K; k++) for (int jj = 0; jj < 16 && c0 + jj < N; jj++) C[k * NP + c0 + jj] = cacc[k][jj];
  }
}
static void init(void) {
  srand(1);
  #define AL(n) aligned_alloc(64, ((n) * 4 + 63) / 64 * 64)
  lin = AL(B*N); st = AL(B*N); acc = AL(B*N); spk = AL(R*N); dY = AL(T*B*K); w2p = AL(K*NP); C = AL(K*NP); wt = AL(T);
  for (long i = 0; i < B*N; i++) { lin[i] = 0.1f * (rand() % 100) / 100.0f; acc[i] = 0; }
  for (long i = 0; i < T*B*K; i++) dY[i] = (rand() % 100 - 50) / 1000.0f;
  for (long i = 0; i < K*NP; i++) { w2p[i] = (rand() % 100 - 50) / 500.0f; C[i] = 0; }
  for (int t = 0; t < T; t++) wt[t] = 1.0f - t * 0.01f;
}
int main(void) {
  init();
  { /* check: vec-outer against step-outer */
    float *a1 = malloc(B*N*4), *c1 = malloc(K*NP*4);
    memset(st, 0, B*N*4); memset(acc, 0, B*N*4); memset(C, 0, K*NP*4);
    for (long r0 = 0; r0 < B; r0 += R) step_outer(r0);
    memcpy(a1, acc, B*N*4); memcpy(c1, C, K*NP*4);
    memset(st, 0, B*N*4); memset(acc, 0, B*N*4); memset(C, 0, K*NP*4);
    for (long r0 = 0; r0 < B; r0 += R) vec_outer(r0);
    double ma = 0, mc = 0, sa = 0;
    for (long i = 0; i < B*N; i++) { double d = fabs(a1[i]-acc[i]); if (d > ma) ma = d; sa += fabs(a1[i]); }
    for (int k = 0; k < K; k++) for (int j = 0; j < N; j++) { double d = fabs(c1[k*N+j]-C[k*NP+j]) / (fabs(c1[k*N+j]) + 1e-3); if (d > mc) mc = d; }
    printf("check: acc max abs diff %g (mean |acc| %g), dW2 max rel diff %g\n", ma, sa/(B*N), mc);
  }
  double best[3] = {1e9, 1e9, 1e9};
  for (int rep = 0; rep < REPS; rep++) {
    for (int v = 0; v < 3; v++) {
      memset(st, 0, B * N * 4);
      double t0 = now();
      for (long r0 = 0; r0 < B; r0 += R) v == 2 ? vec_outer(r0) : v ? time_inner(r0) : step_outer(r0);
      double dt = now() - t0;
      if (dt < best[v]) best[v] = dt;
    }
  }
  printf("step-outer %.3f ms  time-inner %.3f ms  vec-outer %.3f ms (per iteration, B=%d, one thread)\n", best[0]*1e3, best[1]*1e3, best[2]*1e3, B);
}
