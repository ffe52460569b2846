/* handmade_model.c: a hand-written model object, standing in for what snnc will generate.
 *
 * It exports `snn_model` (runtime/snnrt.h) for the fixture network of
 * tests/reference/gen_fixtures.py: x -> linear h -> neuron -> linear o -> neuron, direct input,
 * reset by subtraction from the previous membrane (detached), ATan(2) surrogate, loss = sum over
 * steps of CrossEntropy(o.mem[t], label) averaged over the batch. Forward and backward through
 * time are written out by hand, plainly, in float32 (as generated code would compute), so that
 *   - tests/e2e/gradcheck.c can be tested before the compiler's back end exists, and
 *   - the PyTorch fixtures are cross-checked by an independent implementation.
 * Sizes and neuron settings are compile-time macros (tests/e2e/check_gradcheck_harness.sh sets
 * them from each fixture's meta.txt); the defaults are the (7,5,3) leaky case:
 *   HM_IN, HM_HID, HM_OUT         layer widths
 *   HM_BETA, HM_THR               beta and threshold of both layers
 *   HM_SYNAPTIC, HM_ALPHA         snn.Synaptic neurons (syn = alpha*syn + input) instead of Leaky
 *   HM_LEARN_BETA                 h.beta is a learnable per-neuron parameter (5th param)
 *   HM_BUG                        1: a wrong surrogate (pi/2 instead of pi), 2: reset not
 *                                 detached; the harness test builds these and expects FAIL
 *
 * Backward, with r detached and the output layer's spikes unused by the loss:
 *   dmem_o[t] = dCE_t/dmem_o[t] + beta_o * dmem_o[t+1]        (leaky; synaptic: dsyn below)
 *   dspk_h[t] = dcur_o[t] W_o,   dmem_h[t] = dspk_h[t] * sg(mem_h[t] - thr) + beta_h * dmem_h[t+1]
 *   synaptic:  dsyn[t] = dmem[t] + alpha * dsyn[t+1], and the layer input gets dsyn
 *   dW_o = sum_t dcur_o[t]^T spk_h[t];  dW_h = (sum_t dcur_h[t])^T x  (x is the same every step)
 *   dbeta_h[n] = sum_{t,b} dmem_h[t][b][n] * mem_h[t-1][b][n]
 */
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "snnrt.h"

#ifndef HM_IN
#define HM_IN 7
#endif
#ifndef HM_HID
#define HM_HID 5
#endif
#ifndef HM_OUT
#define HM_OUT 3
#endif
#ifndef HM_BETA
#define HM_BETA 0.95f
#endif
#ifndef HM_THR
#define HM_THR 1.0f
#endif
#ifndef HM_ALPHA
#define HM_ALPHA 0.9f
#endif
#ifndef HM_SYNAPTIC
#define HM_SYNAPTIC 0
#endif
#ifndef HM_BUG
#define HM_BUG 0
#endif
#ifndef HM_LEARN_BETA
#define HM_LEARN_BETA 0
#endif

enum { I = HM_IN, H = HM_HID, O = HM_OUT };
static const float PI_F = 3.14159265358979323846f;

static float clamp01(float b) { return b < 0 ? 0 : b > 1 ? 1 : b; }
static float sg(float u) /* ATan, alpha 2 */
{
    float a = (HM_BUG == 1 ? PI_F / 2 : PI_F) * u;
    return 1.0f / (1.0f + a * a);
}

/* Work layout (floats): mem_h[T+1][B][H], mem_o[T+1][B][O], syn_h[B][H], syn_o[B][O],
 * cur_h[B][H], dmem_h[B][H], dsyn_h[B][H], dcur_h[B][H], dmem_o[B][O], dsyn_o[B][O]. */
static int64_t hm_work_bytes(int64_t B, int64_t T)
{
    return (int64_t)sizeof(float) * ((T + 1) * B * (H + O) + 5 * B * H + 3 * B * O);
}

/* Forward; fills the tape, the loss and the output spike counts. Returns 0 if the loss is finite. */
static int32_t hm_forward(const float *const *p, const snn_batch *bt, void *work, snn_result *res)
{
    const int64_t B = bt->batch, T = bt->steps;
    const float *Wh = p[0], *bh = p[1], *Wo = p[2], *bo = p[3];
    float *mem_h = work, *mem_o = mem_h + (T + 1) * B * H, *syn_h = mem_o + (T + 1) * B * O;
    float *syn_o = syn_h + B * H, *cur_h = syn_o + B * O;
    float beta_h[H];
    for (int n = 0; n < H; n++) beta_h[n] = clamp01(HM_LEARN_BETA ? p[4][n] : HM_BETA);
    const float beta_o = clamp01(HM_BETA), alpha = clamp01(HM_ALPHA), thr = HM_THR;

    memset(mem_h, 0, sizeof(float) * B * H);
    memset(mem_o, 0, sizeof(float) * B * O);
    memset(syn_h, 0, sizeof(float) * B * H);
    memset(syn_o, 0, sizeof(float) * B * O);
    if (res->scores) memset(res->scores, 0, sizeof(float) * B * O);
    for (int64_t b = 0; b < B; b++)
        for (int n = 0; n < H; n++) {
            float s = bh[n];
            for (int i = 0; i < I; i++) s += Wh[n * I + i] * bt->x[b * I + i];
            cur_h[b * H + n] = s;
        }
    float loss = 0;
    for (int64_t t = 1; t <= T; t++) {
        const float *mh0 = mem_h + (t - 1) * B * H, *mo0 = mem_o + (t - 1) * B * O;
        float *mh = mem_h + t * B * H, *mo = mem_o + t * B * O;
        float lt = 0;
        for (int64_t b = 0; b < B; b++) {
            float spk[H];
            for (int n = 0; n < H; n++) {
                float m0 = mh0[b * H + n], r = m0 - thr > 0 ? 1.0f : 0.0f, in = cur_h[b * H + n];
                if (HM_SYNAPTIC) in = syn_h[b * H + n] = alpha * syn_h[b * H + n] + in;
                float m = beta_h[n] * m0 + in - r * thr;
                mh[b * H + n] = m;
                spk[n] = m - thr > 0 ? 1.0f : 0.0f;
            }
            float mx = -INFINITY;
            for (int k = 0; k < O; k++) {
                float in = bo[k];
                for (int n = 0; n < H; n++) in += Wo[k * H + n] * spk[n];
                float m0 = mo0[b * O + k], r = m0 - thr > 0 ? 1.0f : 0.0f;
                if (HM_SYNAPTIC) in = syn_o[b * O + k] = alpha * syn_o[b * O + k] + in;
                float m = beta_o * m0 + in - r * thr;
                mo[b * O + k] = m;
                if (res->scores && m - thr > 0) res->scores[b * O + k] += 1;
                if (m > mx) mx = m;
            }
            float se = 0;
            for (int k = 0; k < O; k++) se += expf(mo[b * O + k] - mx);
            lt += mx + logf(se) - mo[b * O + bt->labels[b]];
        }
        loss += lt / (float)B;
    }
    res->loss = loss;
    return isfinite(loss) ? 0 : 1;
}

static int32_t hm_forward_backward(const float *const *p, float *const *g, const snn_batch *bt,
                                   void *work, snn_result *res)
{
    int32_t rc = hm_forward(p, bt, work, res);
    const int64_t B = bt->batch, T = bt->steps;
    const float *Wo = p[2];
    float *mem_h = work, *mem_o = mem_h + (T + 1) * B * H, *syn_h = mem_o + (T + 1) * B * O;
    float *syn_o = syn_h + B * H, *cur_h = syn_o + B * O, *dmem_h = cur_h + B * H;
    float *dsyn_h = dmem_h + B * H, *dcur_h = dsyn_h + B * H, *dmem_o = dcur_h + B * H;
    float *dsyn_o = dmem_o + B * O;
    float *gWh = g[0], *gbh = g[1], *gWo = g[2], *gbo = g[3], *gbeta = HM_LEARN_BETA ? g[4] : NULL;
    float beta_h[H];
    for (int n = 0; n < H; n++) beta_h[n] = clamp01(HM_LEARN_BETA ? p[4][n] : HM_BETA);
    const float beta_o = clamp01(HM_BETA), alpha = clamp01(HM_ALPHA), thr = HM_THR;

    memset(gWh, 0, sizeof(float) * H * I);
    memset(gbh, 0, sizeof(float) * H);
    memset(gWo, 0, sizeof(float) * O * H);
    memset(gbo, 0, sizeof(float) * O);
    if (gbeta) memset(gbeta, 0, sizeof(float) * H);
    memset(dmem_h, 0, sizeof(float) * B * H);
    memset(dsyn_h, 0, sizeof(float) * B * H);
    memset(dcur_h, 0, sizeof(float) * B * H);
    memset(dmem_o, 0, sizeof(float) * B * O);
    memset(dsyn_o, 0, sizeof(float) * B * O);
    for (int64_t t = T; t >= 1; t--) {
        const float *mh = mem_h + t * B * H, *mh0 = mem_h + (t - 1) * B * H;
        const float *mo = mem_o + t * B * O;
        for (int64_t b = 0; b < B; b++) {
            /* output layer: CE gradient + carried membrane gradient */
            float mx = -INFINITY, se = 0, dcur_o[O];
            for (int k = 0; k < O; k++) if (mo[b * O + k] > mx) mx = mo[b * O + k];
            for (int k = 0; k < O; k++) se += expf(mo[b * O + k] - mx);
            for (int k = 0; k < O; k++) {
                float d = (expf(mo[b * O + k] - mx) / se - (k == bt->labels[b] ? 1.0f : 0.0f))
                          / (float)B;
                float dm = d + beta_o * dmem_o[b * O + k];
                dmem_o[b * O + k] = dm;
                if (HM_SYNAPTIC) dm = dsyn_o[b * O + k] = dm + alpha * dsyn_o[b * O + k];
                dcur_o[k] = dm;
                gbo[k] += dm;
            }
            for (int n = 0; n < H; n++) {
                float spk = mh[b * H + n] - thr > 0 ? 1.0f : 0.0f, ds = 0;
                for (int k = 0; k < O; k++) {
                    gWo[k * H + n] += dcur_o[k] * spk;
                    ds += dcur_o[k] * Wo[k * H + n];
                }
                float dm = ds * sg(mh[b * H + n] - thr) + beta_h[n] * dmem_h[b * H + n];
                if (HM_BUG == 2) /* as if the reset were not detached: r's surrogate too */
                    dm -= thr * sg(mh[b * H + n] - thr) * dmem_h[b * H + n];
                dmem_h[b * H + n] = dm;
                if (gbeta) gbeta[n] += dm * mh0[b * H + n];
                if (HM_SYNAPTIC) dm = dsyn_h[b * H + n] = dm + alpha * dsyn_h[b * H + n];
                dcur_h[b * H + n] += dm;
            }
        }
    }
    for (int64_t b = 0; b < B; b++)
        for (int n = 0; n < H; n++) {
            float d = dcur_h[b * H + n];
            gbh[n] += d;
            for (int i = 0; i < I; i++) gWh[n * I + i] += d * bt->x[b * I + i];
        }
    if (gbeta) /* d clamp(beta,0,1)/d beta: 1 inside [0,1] (as torch.clamp), 0 outside */
        for (int n = 0; n < H; n++) if (p[4][n] < 0 || p[4][n] > 1) gbeta[n] = 0;
    return rc;
}

static const snn_param_desc hm_params[] = {
    { "h.weight", 2, { H, I }, (int64_t)H * I, SNN_INIT_UNIFORM_FAN_IN, 0, I },
    { "h.bias", 1, { H }, H, SNN_INIT_UNIFORM_FAN_IN, 0, I },
    { "o.weight", 2, { O, H }, (int64_t)O * H, SNN_INIT_UNIFORM_FAN_IN, 0, H },
    { "o.bias", 1, { O }, O, SNN_INIT_UNIFORM_FAN_IN, 0, H },
    { "h.beta", 1, { H }, H, SNN_INIT_CONST, HM_BETA, 0 },
};

const snn_model_desc snn_model = {
    .abi_version = SNN_ABI_VERSION,
    .model_name = "handmade",
    .source_file = "tests/e2e/handmade_model.c",
    .n_inputs = I,
    .n_classes = O,
    .n_params = HM_LEARN_BETA ? 5 : 4,
    .params = hm_params,
    .defaults = { .data_dir = "/usr/share/datasets/fashion-mnist", .steps = 6, .batch = 4,
                  .epochs = 1, .seed = 0, .optimizer = SNN_OPT_ADAM, .lr = 5e-4f,
                  .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f },
    .loss_name = "ce_membrane",
    .metric_name = "rate_accuracy",
    .work_bytes = hm_work_bytes,
    .forward_backward = hm_forward_backward,
    .forward = hm_forward,
};
