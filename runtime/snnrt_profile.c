/* snnrt_profile.c: the trainer's --profile: where a training iteration's time goes, per thread.
 *
 * Speed work on the trainer kept needing the same temporary timers (bench/RESULTS.md, eighth
 * to eleventh sessions): how long each row block's forward_backward takes on its thread, how
 * much of that is the joint products' tiles, their row groups and lists, and waiting for the
 * other thread, and what the optimizer step and the blocks' combine cost. Off (the default),
 * every hook is one predictable branch; on, a monotonic clock read at each phase boundary
 * (about 20 ns, some 30 a training iteration).
 *
 * Only training iterations count: the evaluation's forward passes run the same joint
 * products, and run_block marks which calls are forward_backward (snnrt_profile_call). */
#include "snnrt_lib.h"

#include <string.h>

int snnrt_profile_on = 0;
_Thread_local int snnrt_profile_call = 0;

/* Each rank's slots are written by its own thread only; nothing else is shared. */
static double acc[SNNRT_MAX_SHARDS][SNNRT_PROF_COUNT];

void snnrt_profile_reset(void) { memset(acc, 0, sizeof acc); }

void snnrt_profile_add(int32_t rank, snnrt_prof_phase ph, double seconds) {
    if (rank < 0 || rank >= SNNRT_MAX_SHARDS || ph < 0 || ph >= SNNRT_PROF_COUNT) return;
    acc[rank][ph] += seconds;
}

double snnrt_profile_get(int32_t rank, snnrt_prof_phase ph) {
    if (rank < 0 || rank >= SNNRT_MAX_SHARDS || ph < 0 || ph >= SNNRT_PROF_COUNT) return 0.0;
    return acc[rank][ph];
}

/* One line: the label, then the phase's mean microseconds per iteration for each thread
 * (per_thread) or for the whole step. */
static void line(FILE *f, const char *label, snnrt_prof_phase ph, int per_thread, int64_t iters,
                 int32_t n) {
    fprintf(f, "  %-48s", label);
    for (int32_t r = 0; r < (per_thread ? n : 1); r++)
        fprintf(f, " %9.1f", acc[r][ph] * 1e6 / (double)iters);
    fputc('\n', f);
}

void snnrt_profile_print(FILE *f, int64_t iters) {
    if (iters <= 0) return;
    int32_t n = 1; /* the blocks: the ranks whose forward_backward was timed */
    for (int32_t r = 1; r < SNNRT_MAX_SHARDS; r++)
        if (acc[r][SNNRT_PROF_FB] > 0.0) n = r + 1;
    int joint = 0;
    for (int32_t r = 0; r < n; r++) { /* the block's own loops: what the joint phases leave */
        const double j = acc[r][SNNRT_PROF_JOINT_TILES] + acc[r][SNNRT_PROF_JOINT_LISTS] +
                         acc[r][SNNRT_PROF_JOINT_WAIT];
        acc[r][SNNRT_PROF_OWN] = acc[r][SNNRT_PROF_FB] > j ? acc[r][SNNRT_PROF_FB] - j : 0.0;
        joint |= j > 0.0;
    }
    fprintf(f, "profile: %lld training iterations, %d row block%s; mean microseconds per "
               "iteration%s\n",
            (long long)iters, (int)n, n == 1 ? "" : "s",
            n == 1 ? "" : " (a column per block's thread)");
    line(f, "iteration (wall clock)", SNNRT_PROF_ITER, 0, iters, n);
    line(f, "forward_backward", SNNRT_PROF_FB, 1, iters, n);
    if (joint) { /* only where the blocks' threads did products jointly (snnrt_kernels.c) */
        line(f, "  the block's own loops and products", SNNRT_PROF_OWN, 1, iters, n);
        line(f, "  joint products: tiles", SNNRT_PROF_JOINT_TILES, 1, iters, n);
        line(f, "  joint products: kind, masks, groups, lists", SNNRT_PROF_JOINT_LISTS, 1, iters, n);
        line(f, "  joint products: waiting for other threads", SNNRT_PROF_JOINT_WAIT, 1, iters, n);
    }
    if (n > 1) line(f, "combining the blocks' gradients", SNNRT_PROF_COMBINE, 0, iters, n);
    line(f, "optimizer step (with the next batch's gather)", SNNRT_PROF_OPTIM, 0, iters, n);
}
