/* snnrt_shard.c: data parallelism over the rows of a batch.
 *
 * Every loss snnc knows is the mean over the batch of a per-example term (snnrt.h, contract of
 * forward_backward), and no op of a model mixes examples. So a batch of B rows can be cut into
 * n row blocks of B_k rows, each run by the generated forward_backward on its own thread with
 * its own work area and its own gradient arrays, and the results combined:
 *
 *     loss = sum_k (B_k / B) loss_k        grad = sum_k (B_k / B) grad_k
 *
 * Scores are per row, so each block writes its own rows of the caller's array. Stochastic
 * encoders key their draws by the row's index in the whole batch (snn_batch.row0), so a block
 * draws exactly what the same rows draw in an unsplit run.
 *
 * Why here and not inside the generated code or the matrix kernels: a fork per product or per
 * fused loop (hundreds per iteration) measured slower than one thread on the shared 2-vCPU
 * machine this was tuned on, because every join waits for the slower thread (bench/RESULTS.md,
 * "Threads"). Row blocks need one fork per call (snnrt_pool.c's threads), every thread runs
 * the whole time loop on its rows, and a second fork sums the blocks' gradients, each thread
 * a slice of every parameter. Inside a block the kernels see snnrt_pool_inside() and run
 * single-threaded, but for the products that read the batch input: with equal blocks, one
 * thread each, the blocks' threads form a team (snnrt_team.c) that does those jointly over the
 * whole batch, and a weight gradient so summed is left out of the blocks' sum (joint[i]).
 *
 * The result with n > 1 blocks is the same mathematics as n = 1 but not the same bits (the
 * batch sums are taken in another order), as with any change of thread count in PyTorch. With
 * one block the model's function is called directly: --threads 1 is bit-identical to a build
 * without this file.
 */
#include "snnrt_lib.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

/* Fewer rows than this per block are not worth a thread: the per-step products and loops
 * become too short to amortise the fork and the combine. */
enum { MIN_ROWS_PER_SHARD = 16 };

/* Gradient floats below which the blocks' sum runs on the calling thread alone. */
enum { COMBINE_FORK_MIN = 65536 };

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

int snnrt_shards_init(snnrt_shards *s, const snn_model_desc *m, int32_t threads, int64_t batch,
                      int64_t steps, float *const *grads, void *work, snnrt_error *err) {
    memset(s, 0, sizeof *s);
    int32_t n = threads < 1 ? 1 : threads;
    if (n > SNNRT_MAX_SHARDS) n = SNNRT_MAX_SHARDS;
    while (n > 1 && batch / n < MIN_ROWS_PER_SHARD) n--;
    s->n = n;
    s->m = m;
    s->work[0] = work;
    s->grads[0] = (float **)grads; /* written only by the model, as the caller's own */
    if (n == 1) return 0;
    const int64_t wb = m->work_bytes(ceil_div(batch, n), steps);
    if (wb < 0)
        return snnrt_fail(err, "model %s: work_bytes(%lld, %lld) = %lld", m->model_name,
                          (long long)ceil_div(batch, n), (long long)steps, (long long)wb);
    for (int32_t k = 1; k < n; k++) {
        if (!(s->work[k] = snnrt_alloc((size_t)wb, "work buffer of a row block", err)))
            return -1;
        s->grads[k] = snnrt_alloc(sizeof(float *) * (size_t)(m->n_params ? m->n_params : 1),
                                  "gradient table of a row block", err);
        if (!s->grads[k]) return -1;
        for (int32_t i = 0; i < m->n_params; i++)
            if (!(s->grads[k][i] = snnrt_alloc((size_t)m->params[i].size * 4,
                                                "gradient of a row block", err)))
                return -1;
    }
    if (!(s->team.joint = snnrt_alloc((size_t)(m->n_params ? m->n_params : 1),
                                      "joint-gradient flags", err)))
        return -1;
    return 0;
}

void snnrt_shards_free(snnrt_shards *s) {
    for (int32_t k = 1; k < s->n; k++) {
        snnrt_free(s->work[k]);
        for (int32_t i = 0; s->grads[k] && i < s->m->n_params; i++) snnrt_free(s->grads[k][i]);
        snnrt_free(s->grads[k]);
    }
    snnrt_free(s->team.joint);
    memset(s, 0, sizeof *s);
}

/* Block k of n over rows [0, rows): as even as possible, the first blocks one row longer. */
static void block_of(int64_t rows, int32_t n, int32_t k, int64_t *r0, int64_t *len) {
    const int64_t q = rows / n, r = rows % n;
    *r0 = k * q + (k < r ? k : r);
    *len = q + (k < r ? 1 : 0);
}

static snn_batch block_batch(const snnrt_shards *s, const snn_batch *b, int64_t r0, int64_t len) {
    snn_batch out = *b;
    out.batch = len;
    out.x = b->x + r0 * s->m->n_inputs;
    out.labels = b->labels + r0;
    out.row0 = b->row0 + r0;
    return out;
}

/* grads[0][i][j] = sum_k w[k] grads[k][i][j], k < n (n >= 2), over this thread's share of every parameter,
 * block by block in order (so the sum is the same whatever the team size), each pass a plain
 * vectorizable loop. Parameters whose gradient a joint product already summed (joint[i],
 * when `joint` is given) are left as they are. */
static void combine_grads(const snnrt_shards *s, const float *w, int32_t n, const uint8_t *joint,
                          int32_t tid, int32_t nthreads) {
    for (int32_t i = 0; i < s->m->n_params; i++) {
        if (joint && joint[i]) continue;
        int64_t j0, len;
        block_of(s->m->params[i].size, nthreads, tid, &j0, &len);
        float *restrict g0 = s->grads[0][i] + j0;
        const float *restrict g1 = s->grads[1][i] + j0;
        const float w0 = w[0], w1 = w[1];
        for (int64_t j = 0; j < len; j++) g0[j] = w0 * g0[j] + w1 * g1[j];
        for (int32_t k = 2; k < n; k++) {
            const float *restrict gk = s->grads[k][i] + j0;
            const float wk = w[k];
            for (int64_t j = 0; j < len; j++) g0[j] += wk * gk[j];
        }
    }
}

typedef struct {
    snnrt_shards *s;
    const float *const *params;
    const snn_batch *b;
    snn_result *res;
    bool backward;
    int32_t blocks;   /* blocks run for this batch (fewer than planned for a short batch) */
    snnrt_team *team; /* the blocks' threads as a team, or NULL */
    float loss[SNNRT_MAX_SHARDS], w[SNNRT_MAX_SHARDS];
    int32_t rc[SNNRT_MAX_SHARDS];
} blocks_job;

static void run_block(void *ctx, int32_t k, int32_t n) {
    blocks_job *j = ctx;
    const snn_model_desc *m = j->s->m;
    int64_t r0, len;
    block_of(j->b->batch, n, k, &r0, &len);
    snn_batch bb = block_batch(j->s, j->b, r0, len);
    snn_result rr = {0.0f, j->res->scores ? j->res->scores + r0 * m->n_classes : NULL};
    snnrt_team_join(j->team, k);
    snnrt_profile_call = j->backward;
    const double pt = snnrt_profile_now();
    j->rc[k] = j->backward ? m->forward_backward(j->params, j->s->grads[k], &bb, j->s->work[k], &rr)
                           : m->forward(j->params, &bb, j->s->work[k], &rr);
    if (j->backward && snnrt_profile_on) snnrt_profile_add(k, SNNRT_PROF_FB, snnrt_now() - pt);
    snnrt_profile_call = 0;
    snnrt_team_join(NULL, 0);
    j->loss[k] = rr.loss;
}

static void combine_part(void *ctx, int32_t k, int32_t n) {
    blocks_job *j = ctx;
    combine_grads(j->s, j->w, j->blocks, j->team ? j->team->joint : NULL, k, n);
}

/* The team of the n blocks' threads (snnrt_team.c), or NULL where its members could miss each
 * other at a barrier: blocks of unequal rows (their per-step products differ in number), or
 * fewer threads than blocks (some blocks would run one after another). */
static snnrt_team *team_for(snnrt_shards *s, const snn_batch *b, int32_t n) {
    if (b->batch % n != 0 || snnrt_pool_concurrency(n) != n) return NULL;
    snnrt_team *t = &s->team;
    t->n = n;
    t->rows = b->batch / n;
    t->x = b->x;
    t->x_cols = s->m->n_inputs;
    t->m = s->m;
    t->grads = s->grads;
    memset(t->joint, 0, (size_t)(s->m->n_params ? s->m->n_params : 1));
    return t;
}

/* Runs forward_backward (backward) or forward on every block; see the file comment. */
static int32_t run_blocks(snnrt_shards *s, const float *const *params, const snn_batch *b,
                          snn_result *res, bool backward) {
    const snn_model_desc *m = s->m;
    int32_t n = s->n;
    while (n > 1 && b->batch / n < MIN_ROWS_PER_SHARD) n--;
    if (n == 1) {
        if (!backward) return m->forward(params, b, s->work[0], res);
        const double pt = snnrt_profile_now();
        const int32_t rc = m->forward_backward(params, s->grads[0], b, s->work[0], res);
        if (snnrt_profile_on) snnrt_profile_add(0, SNNRT_PROF_FB, snnrt_now() - pt);
        return rc;
    }
    blocks_job j = {.s = s, .params = params, .b = b, .res = res, .backward = backward, .blocks = n};
    for (int32_t k = 0; k < n; k++) {
        int64_t r0, len;
        block_of(b->batch, n, k, &r0, &len);
        j.w[k] = (float)((double)len / (double)b->batch);
    }
    j.team = team_for(s, b, n);
    snnrt_pool_run(n, run_block, &j);
    if (backward) {
        /* what is left to sum once joint products summed the input layer's gradient is small
         * (Tutorial 5: 11k of 795k floats): not worth waking the workers for */
        int64_t left = 0;
        for (int32_t i = 0; i < m->n_params; i++)
            left += j.team && j.team->joint[i] ? 0 : m->params[i].size;
        const double pt = snnrt_profile_now();
        snnrt_pool_run(left < COMBINE_FORK_MIN ? 1 : n, combine_part, &j);
        if (snnrt_profile_on) snnrt_profile_add(0, SNNRT_PROF_COMBINE, snnrt_now() - pt);
    }
    double total = 0.0;
    int32_t any = 0;
    for (int32_t k = 0; k < n; k++) {
        total += (double)j.w[k] * (double)j.loss[k];
        any |= j.rc[k] != 0;
    }
    res->loss = (float)total;
    return any || !isfinite(res->loss);
}

int32_t snnrt_shards_forward_backward(snnrt_shards *s, const float *const *params,
                                      const snn_batch *b, snn_result *res) {
    return run_blocks(s, params, b, res, true);
}

int32_t snnrt_shards_forward(snnrt_shards *s, const float *const *params, const snn_batch *b,
                             snn_result *res) {
    return run_blocks(s, params, b, res, false);
}
