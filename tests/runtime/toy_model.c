/* toy_model.c: a hand-written snn_model descriptor, to test the runtime without the compiler.
 *
 * Softmax regression 784 -> 10 with a learnable temperature, written the way generated code
 * is expected to be: entry points over flat buffers, matrix products through snnrt_sgemm, the
 * work buffer sized by work_bytes. It exercises what the trainer must handle: two init kinds
 * (nn.Linear's uniform fan-in for fc.weight and fc.bias, a constant for fc.scale), parameters
 * of rank 2, 1 and 0-like [1], a loss and per-class scores, a non-finite-loss return.
 *
 *   z = x W^T + b                [B, 10]
 *   logits = s * z               (s = fc.scale, init 1)
 *   loss = mean_r CE(logits_r, label_r), computed stably (max subtracted)
 *   scores = logits              (metric: argmax)
 *   d logits = (softmax - onehot) / B;  dz = s * d logits
 *   dW = dz^T x;  db = column sums of dz;  ds = sum(d logits * z)
 *
 * steps are ignored (no time dimension). Tests get a non-finite loss honestly, from a
 * learning rate so large that the logits overflow.
 */
#include "snnrt.h"

#include <math.h>
#include <string.h>

#define IN 784
#define OUT 10
#ifndef TOY_ABI_VERSION /* check_trainer.sh builds one with another version, to see it refused */
#define TOY_ABI_VERSION SNN_ABI_VERSION
#endif

static const snn_param_desc toy_params[] = {
    {"fc.weight", 2, {OUT, IN}, OUT * IN, SNN_INIT_UNIFORM_FAN_IN, 0.0f, IN},
    {"fc.bias", 1, {OUT}, OUT, SNN_INIT_UNIFORM_FAN_IN, 0.0f, IN},
    {"fc.scale", 1, {1}, 1, SNN_INIT_CONST, 1.0f, 0},
};

static int64_t toy_work_bytes(int64_t batch, int64_t steps) {
    (void)steps;
    return 2 * batch * OUT * (int64_t)sizeof(float); /* z, then probabilities */
}

/* z = x W^T + b and logits into scores; returns the mean cross-entropy, fills p (softmax). */
static float toy_forward_core(const float *const *params, const snn_batch *bt, float *z,
                              float *p, float *scores) {
    const float *W = params[0], *b = params[1], s = params[2][0];
    const int64_t B = bt->batch;
    snnrt_sgemm(0, 1, B, OUT, IN, 1.0f, bt->x, IN, W, IN, 0.0f, z, OUT);
    double loss = 0.0;
    for (int64_t r = 0; r < B; r++) {
        float *zr = z + r * OUT, *pr = p + r * OUT, *lr = scores + r * OUT;
        float mx = -INFINITY;
        for (int c = 0; c < OUT; c++) {
            zr[c] += b[c];
            lr[c] = s * zr[c];
            if (lr[c] > mx) mx = lr[c];
        }
        double sum = 0.0;
        for (int c = 0; c < OUT; c++) sum += exp((double)(lr[c] - mx));
        for (int c = 0; c < OUT; c++) pr[c] = (float)(exp((double)(lr[c] - mx)) / sum);
        loss += log(sum) + mx - lr[bt->labels[r]];
    }
    return (float)(loss / (double)B);
}

static int32_t toy_forward(const float *const *params, const snn_batch *bt, void *work,
                           snn_result *res) {
    float *z = work, *p = z + bt->batch * OUT;
    res->loss = toy_forward_core(params, bt, z, p, res->scores);
    return isfinite(res->loss) ? 0 : 1;
}

static int32_t toy_forward_backward(const float *const *params, float *const *grads,
                                    const snn_batch *bt, void *work, snn_result *res) {
    float *z = work, *p = z + bt->batch * OUT;
    const int64_t B = bt->batch;
    const float s = params[2][0];
    res->loss = toy_forward_core(params, bt, z, p, res->scores);
    if (!isfinite(res->loss)) return 1;
    double ds = 0.0;
    float *db = grads[1];
    memset(db, 0, OUT * sizeof(float));
    for (int64_t r = 0; r < B; r++) {
        float *pr = p + r * OUT, *zr = z + r * OUT;
        pr[bt->labels[r]] -= 1.0f;
        for (int c = 0; c < OUT; c++) {
            const float dl = pr[c] / (float)B;
            ds += (double)dl * zr[c];
            pr[c] = s * dl; /* p now holds dz */
            db[c] += pr[c];
        }
    }
    grads[2][0] = (float)ds;
    snnrt_sgemm(1, 0, OUT, IN, B, 1.0f, p, OUT, bt->x, IN, 0.0f, grads[0], IN);
    return 0;
}

const snn_model_desc snn_model = {
    .abi_version = TOY_ABI_VERSION,
    .model_name = "toy_softmax",
    .source_file = "tests/runtime/toy_model.c",
    .n_inputs = IN,
    .n_classes = OUT,
    .n_params = 3,
    .params = toy_params,
    .defaults = {.data_dir = "/usr/share/datasets/fashion-mnist", .steps = 1, .batch = 128,
                 .epochs = 1, .seed = 0, .optimizer = SNN_OPT_ADAM, .lr = 1e-3f, .beta1 = 0.9f,
                 .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f, .momentum = 0.0f},
    .loss_name = "cross_entropy",
    .metric_name = "accuracy",
    .work_bytes = toy_work_bytes,
    .forward_backward = toy_forward_backward,
    .forward = toy_forward,
};
