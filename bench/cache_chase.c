/* cache_chase.c: how much of an iteration's data this machine's caches can hold, a design
 * measurement (bench/RESULTS.md, "Ninth session"), not a test. A pointer chase over a random
 * cycle through every 64-byte line of a buffer of 1-64 MB: ns per step on CPU 0 once it has
 * walked the buffer twice (what stays cached for the same core), and on CPU 1 right after CPU 0
 * walked it (what the other vCPU finds). An iteration of Tutorial 5 touches about 16 MB (W1,
 * its gradient, Adam's two moments, the work areas, x).
 *
 *   gcc -O2 -pthread -o /tmp/cache_chase bench/cache_chase.c && /tmp/cache_chase
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
static void pin(int c){cpu_set_t s;CPU_ZERO(&s);CPU_SET(c,&s);sched_setaffinity(0,sizeof s,&s);}
typedef struct { uint64_t *buf; size_t lines; int cpu; double ns; } job;
/* one pass over all lines in the permuted cycle; returns ns per line */
static double chase(uint64_t *buf, size_t lines) {
  size_t p = 0; double t0 = now();
  for (size_t i = 0; i < lines; i++) p = buf[p * 8];
  double t = now() - t0;
  if (p == (size_t)-1) printf("x");
  return t * 1e9 / lines;
}
static void *run(void *a) { job *j = a; pin(j->cpu); j->ns = chase(j->buf, j->lines); return NULL; }
static double on(int cpu, uint64_t *buf, size_t lines) { job j = {buf, lines, cpu, 0}; pthread_t t; pthread_create(&t, NULL, run, &j); pthread_join(t, NULL); return j.ns; }
int main(void) {
  size_t sizes_mb[] = {1, 2, 4, 8, 12, 16, 24, 32, 48, 64};
  printf("MB  warm-same(ns)  after-other-cpu(ns)\n");
  for (int si = 0; si < 10; si++) {
    size_t bytes = sizes_mb[si] << 20, lines = bytes / 64;
    uint64_t *buf = aligned_alloc(64, bytes);
    size_t *perm = malloc(lines * sizeof *perm);
    for (size_t i = 0; i < lines; i++) perm[i] = i;
    srand(1); for (size_t i = lines - 1; i > 0; i--) { size_t k = (size_t)rand() % (i + 1), t = perm[i]; perm[i] = perm[k]; perm[k] = t; }
    for (size_t i = 0; i < lines; i++) buf[perm[i] * 8] = perm[(i + 1) % lines];
    free(perm);
    double same = 1e9, other = 1e9;
    for (int r = 0; r < 3; r++) {
      on(0, buf, lines); on(0, buf, lines);               /* warm on CPU 0 */
      double a = on(0, buf, lines); if (a < same) same = a; /* again on CPU 0 */
      on(0, buf, lines);
      double b = on(1, buf, lines); if (b < other) other = b; /* first pass on CPU 1 after CPU 0 */
    }
    printf("%3zu  %8.1f  %8.1f\n", sizes_mb[si], same, other);
    free(buf);
  }
  return 0;
}
