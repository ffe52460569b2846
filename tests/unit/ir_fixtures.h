/* ir_fixtures.h: hand-built SNN IR modules for tests (IR, autodiff, codegen, passes).
 *
 * The modules are built with snn_ir_append exactly as lowering is meant to emit them, without the
 * front end, so a test of a later stage does not depend on the parser. The main one is the
 * Tutorial 5 network in small size, with the snnTorch Leaky semantics of tutorial5.md:
 *
 *   r   = detach(heaviside(mem - thr))        reset from the previous membrane
 *   mem = beta * mem + input - r * thr
 *   spk = fire(mem - thr)                      atan surrogate alpha/2 / (1 + (pi/2*alpha*x)^2)
 *
 * linear -> leaky -> linear -> leaky, loss = sum over t of cross_entropy(o.mem) (LOSS_ADD), a
 * spike-count state o.count as the metric's scores. Options switch in variants.
 */
#ifndef SNN_TESTS_IR_FIXTURES_H
#define SNN_TESTS_IR_FIXTURES_H

#include "ir/ir.h"

typedef struct {
    int64_t n_in, n_hidden, n_out;
    float beta, threshold;      /* leaky: 0.95, 1.0 */
    float alpha;                /* atan surrogate alpha (2.0); synaptic alpha is syn_alpha */
    float syn_alpha;            /* synaptic current decay (0.8) */
    bool learn_beta;            /* beta is a learnable per-neuron param [N] in both layers,
                                   used as min(max(beta, 0), 1) (clamp) */
    bool synaptic;              /* the hidden layer is Synaptic (states syn and mem) */
    bool smooth;                /* fire(x) replaced by sigmoid(smooth_k * x): differentiable,
                                   for finite-difference checks */
    float smooth_k;             /* 4.0 */
    bool hoisted;               /* h.cur = linear(x) in the pre region, as hoisting leaves it */
    bool final_loss;            /* also, in the post region: 0.5 * mse_onehot(final o.mem, 1, 0)
                                   and 1e-3 * sum(o.weight^2) */
    bool recurrent;             /* the hidden layer is RLeaky: its input also gets
                                   linear(spk[t-1], h.rweight, h.rbias) (state h.spk.prev) */
} snn_fixture_opts;

/* 7-5-3, beta 0.95, thr 1, atan alpha 2, everything else off. */
snn_fixture_opts snn_fixture_defaults(void);

/* The network above (forward only; run snn_autodiff for the backward function).
 * Params, in order: h.weight [H,I], h.bias [H], o.weight [O,H], o.bias [O], then with
 * learn_beta h.beta [H], o.beta [O], then with recurrent h.rweight [H,H], h.rbias [H].
 * States: h.mem (h.syn first if synaptic, h.spk after if recurrent), o.mem, o.count;
 * scores_state = o.count. Source locations point into "fixture.snn". Free with
 * snn_ir_module_free (and the arena). */
snn_ir_module *snn_fixture_tutorial5(snn_arena *a, const snn_fixture_opts *o);

/* Adds the atan(alpha) surrogate program to m, returns its index. */
int32_t snn_fixture_add_atan(snn_arena *a, snn_ir_module *m, float alpha);

/* A one-op module for gradient-rule tests: inputs 3, classes 3, params p [3] and q [3] and
 * P [3,3], Q [3,3]; in the step region u = x * p + 0.5, w = x * q + 0.25 (both in (0.25, 2)
 * for x, p, q in (0, 1)), y = OP applied to u (and w, and for select gt(x, 0.5)), then
 * loss_add(cross_entropy(y + x)). Matrix ops use P and Q; sum_to and broadcast go to [3] and
 * back; steps gives y = u * T / w. Returns NULL for an op it has no test shape for. */
snn_ir_module *snn_fixture_op(snn_arena *a, snn_op op);

/* Deterministic parameters: the module's params filled from a small LCG (seed): weights and
 * biases uniform in (-scale/sqrt(fan_in), scale/sqrt(fan_in)), CONST-init params at their
 * init_value, other params uniform in (0.1, 0.9). out[i] must hold numel(param i) doubles. */
void snn_fixture_params(const snn_ir_module *m, uint64_t seed, double scale, double *const *out);

/* Deterministic inputs in [lo, hi) and labels in [0, n_classes). */
void snn_fixture_inputs(const snn_ir_module *m, int64_t batch, uint64_t seed, double lo, double hi,
                        double *x, int32_t *labels);

#endif
