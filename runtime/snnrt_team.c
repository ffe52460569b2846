/* snnrt_team.c: the threads of one batch's row blocks as a team, so that the input layer's
 * products can be done jointly instead of once per block.
 *
 * Row blocks (snnrt_shard.c) give each thread a slice of the batch and the whole model. That
 * suits the time loop, but the input layer's two products then run per block: on Tutorial 5
 * with two threads each block transposes all of W1 (784 x 1000) for its own x W1^T, and each
 * writes its own 3 MB weight gradient acc^T x, which a third pass adds up. Done jointly, one
 * product over the whole batch split by output columns, each thread packs half of W1^T, and the
 * weight gradient is written once, already summed over the blocks (snnrt_kernels.c, "joint
 * products", has the measurements). The work is handed out in small units from a shared
 * counter, so a thread on a slower or busier CPU takes fewer of them; row blocks alone are
 * fixed halves, and one vCPU of the shared machine this was tuned on ran the same loop 40 %
 * slower than the other for minutes at a time.
 *
 * The generated code is unchanged: a block calls snnrt_sgemm as before, and the kernels see
 * (snnrt_team_current) that the call's thread is a member of a team and that the product reads
 * the batch input, which every block does at the same point of the same code. A team exists
 * only while every block runs on its own thread at once (snnrt_pool_concurrency) and the blocks
 * have equal rows, so the members meet at every barrier.
 */
#include "snnrt_lib.h"

#include <sched.h>


/* Rounds of pause before yielding: a few microseconds, about what a balanced wait takes. */
enum { TEAM_SPIN = 2000 };

static _Thread_local snnrt_team *cur_team;
static _Thread_local int32_t cur_rank;

void snnrt_team_join(snnrt_team *t, int32_t rank) {
    cur_team = t;
    cur_rank = t ? rank : 0;
}

snnrt_team *snnrt_team_current(int32_t *rank) {
    if (rank) *rank = cur_rank;
    return cur_team;
}

void snnrt_team_pause(int32_t round) {
    if (round < TEAM_SPIN) snnrt_cpu_relax();
    else sched_yield();
}

/* A counting barrier: the last to arrive resets the count and advances the phase. */
void snnrt_team_barrier(snnrt_team *t) {
    if (t->n <= 1) return;
    const unsigned ph = __atomic_load_n(&t->phase, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&t->arrived, 1, __ATOMIC_ACQ_REL) == (unsigned)t->n) {
        __atomic_store_n(&t->arrived, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&t->phase, ph + 1, __ATOMIC_RELEASE);
        return;
    }
    for (int32_t r = 0; __atomic_load_n(&t->phase, __ATOMIC_ACQUIRE) == ph; r++)
        snnrt_team_pause(r);
}
