/* snnrt_pool.c: the runtime's own worker threads, for the few forks per training iteration.
 *
 * The trainer forks about three times per iteration: the batch's row blocks
 * (snnrt_shard.c), their gradient sum, and the optimizer step. OpenMP would do, but libgomp's
 * idle workers spin for about 3 ms after every parallel region before they sleep, and its
 * wait policy can only be chosen through OMP_WAIT_POLICY before the library initialises
 * (a setenv from main, or even from .preinit_array, comes too late: measured). On a machine
 * with as many threads as CPUs and anything else running, a spinning worker takes the CPU
 * that the thread it waits for needs: the Tutorial 5 trainer ran 16.4 ms per iteration on two
 * threads next to another busy process with spinning waits against 9.7 ms with sleeping
 * ones (bench/RESULTS.md, "Row blocks"). These workers spin a bounded while (SPIN_ROUNDS pauses,
 * about 300 us at 21 ns a pause on Zen 5: a fork that follows as soon as the trainer has gathered
 * the next batch is caught without a system call) and then sleep on a condition variable. Waking
 * a sleeping worker took 36-69 us on this VM, seen as the main thread's wait at the first joint
 * product of each batch (snnrt_team.c); spinning through the gap cut that wait to 4-6 us.
 *
 * snnrt_pool_run(n, fn, ctx) runs fn(ctx, k, n) for k = 0..n-1, k = 0 on the calling thread,
 * and returns when all have returned. A call from inside a task (or with n = 1) runs every k
 * on the calling thread, in order. Calls from two unrelated threads at once are serialised by
 * a lock (the trainer never does this; a test harness might).
 */
#include "snnrt_lib.h"

#include <pthread.h>
#include <stdatomic.h>


enum { SPIN_ROUNDS = 15000 };

static pthread_mutex_t run_lock = PTHREAD_MUTEX_INITIALIZER;   /* one fork at a time */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;       /* guards the fields below */
static pthread_cond_t start_cv = PTHREAD_COND_INITIALIZER, done_cv = PTHREAD_COND_INITIALIZER;
static int32_t n_workers;                 /* started so far (worker i runs k = i + 1) */
static atomic_uint generation;            /* bumped by every fork that uses workers */
static atomic_uint go[SNNRT_MAX_SHARDS];  /* go[k]: the last fork worker k takes part in; only
                                             participants are told, so only they read job_* */
static atomic_int pending;                /* tasks of the current fork not yet finished */
static snnrt_task job_fn;
static void *job_ctx;
static int32_t job_n;
static _Thread_local int inside_task;

int snnrt_pool_inside(void) { return inside_task; }

static void *worker_main(void *arg) {
    const int32_t k = (int32_t)(intptr_t)arg;
    unsigned seen = 0;
    inside_task = 1;
    for (;;) {
        unsigned g = atomic_load_explicit(&go[k], memory_order_acquire);
        for (int r = 0; g == seen && r < SPIN_ROUNDS; r++) {
            snnrt_cpu_relax();
            g = atomic_load_explicit(&go[k], memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&lock);
            while ((g = atomic_load_explicit(&go[k], memory_order_acquire)) == seen)
                pthread_cond_wait(&start_cv, &lock);
            pthread_mutex_unlock(&lock);
        }
        seen = g;
        {   /* the fork cannot finish before this task, so job_* stay as they were set */
            job_fn(job_ctx, k, job_n);
            if (atomic_fetch_sub_explicit(&pending, 1, memory_order_acq_rel) == 1) {
                pthread_mutex_lock(&lock);
                pthread_cond_signal(&done_cv);
                pthread_mutex_unlock(&lock);
            }
        }
    }
    return NULL;
}

/* Starts missing workers for a fork of n (lock held); if the system refuses, fewer run. */
static void start_workers(int32_t n) {
    while (n_workers < n - 1 && n_workers < SNNRT_MAX_SHARDS - 1) {
        pthread_t th;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&th, &at, worker_main, (void *)(intptr_t)(n_workers + 1));
        pthread_attr_destroy(&at);
        if (rc != 0) break;
        n_workers++;
    }
}

int32_t snnrt_pool_concurrency(int32_t n) {
    if (n <= 1 || inside_task) return 1;
    pthread_mutex_lock(&lock);
    start_workers(n);
    const int32_t threads = n_workers + 1 < n ? n_workers + 1 : n;
    pthread_mutex_unlock(&lock);
    return threads;
}

void snnrt_pool_run(int32_t n, snnrt_task fn, void *ctx) {
    if (n <= 1 || inside_task) {
        for (int32_t k = 0; k < (n < 1 ? 1 : n); k++) fn(ctx, k, n < 1 ? 1 : n);
        return;
    }
    pthread_mutex_lock(&run_lock);
    pthread_mutex_lock(&lock);
    start_workers(n);
    const int32_t threads = n_workers + 1 < n ? n_workers + 1 : n;
    job_fn = fn;
    job_ctx = ctx;
    job_n = n;
    atomic_store_explicit(&pending, threads - 1, memory_order_relaxed);
    const unsigned gen = atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed) + 1;
    for (int32_t k = 1; k < threads; k++) atomic_store_explicit(&go[k], gen, memory_order_release);
    pthread_cond_broadcast(&start_cv);
    pthread_mutex_unlock(&lock);

    inside_task = 1;
    /* tasks beyond the workers (more than SNNRT_MAX_SHARDS, or the system refused threads) run
     * here after k = 0 */
    fn(ctx, 0, n);
    for (int32_t k = threads; k < n; k++) fn(ctx, k, n);
    inside_task = 0;

    for (int r = 0; atomic_load_explicit(&pending, memory_order_acquire) > 0 && r < SPIN_ROUNDS; r++)
        snnrt_cpu_relax();
    if (atomic_load_explicit(&pending, memory_order_acquire) > 0) {
        pthread_mutex_lock(&lock);
        while (atomic_load_explicit(&pending, memory_order_acquire) > 0)
            pthread_cond_wait(&done_cv, &lock);
        pthread_mutex_unlock(&lock);
    }
    pthread_mutex_unlock(&run_lock);
}

/* ---------------------------------------------------------------- affine units */

/* Why: a unit's data (rows of W1, its gradient and Adam's moments, each 3 MB for Tutorial 5)
 * stays in the cache of the core that last touched it only if the same core touches it next.
 * With every unit from one shared counter, who took which changed from call to call, and the
 * optimizer, x W1^T's panel pack and acc^T x's tiles met their data in the other core's cache
 * or in memory. Fixed halves, the same rows of W1 for the same thread in all three: 2 threads,
 * 7 alternating pairs, 2.333 -> 2.241 ms/iter (every pair faster); the step 254 -> 226 us, the
 * rest 2085 -> 2019. Fixed halves alone would make a thread on a slower vCPU hold the other up
 * (the shared machine's vCPUs were at times 30 % apart); taking from the others' backs once
 * one's own range is done keeps that help and touches only the units it must. */
void snnrt_units_init(snnrt_units *s, int64_t n, int32_t parts) {
    if (parts < 1) parts = 1;
    if (parts > SNNRT_MAX_SHARDS) parts = SNNRT_MAX_SHARDS;
    s->parts = parts;
    for (int32_t k = 0; k < parts; k++) {
        const uint64_t lo = (uint64_t)(n * k / parts), hi = (uint64_t)(n * (k + 1) / parts);
        __atomic_store_n(&s->range[k], lo << 32 | hi, __ATOMIC_RELAXED);
    }
}

/* One unit from range k: the front one (own) or the back one (another task's); -1 if empty. */
static int64_t units_take(snnrt_units *s, int32_t k, int front) {
    uint64_t v = __atomic_load_n(&s->range[k], __ATOMIC_ACQUIRE);
    for (;;) {
        const uint64_t f = v >> 32, b = v & 0xFFFFFFFFu;
        if (f >= b) return -1;
        const uint64_t nv = front ? (f + 1) << 32 | b : f << 32 | (b - 1);
        if (__atomic_compare_exchange_n(&s->range[k], &v, nv, 0, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE))
            return (int64_t)(front ? f : b - 1);
    }
}

int64_t snnrt_units_next(snnrt_units *s, int32_t k) {
    k %= s->parts; /* more tasks than ranges (more than SNNRT_MAX_SHARDS): some share one */
    const int64_t u = units_take(s, k, 1);
    if (u >= 0) return u;
    for (int32_t d = 1; d < s->parts; d++) {
        const int64_t w = units_take(s, (k + d) % s->parts, 0);
        if (w >= 0) return w;
    }
    return -1;
}
