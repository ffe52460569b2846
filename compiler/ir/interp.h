/* interp.h: the reference interpreter of the SNN IR.
 *
 * Runs a module's forward function (and, for gradients, its backward function) value by value,
 * with plain loops and no cleverness, so it can be the independent reference that codegen tests
 * and the optimization passes compare against. Every value is computed in double; with
 * round_f32 each element is rounded to float after every op, which is float32 arithmetic up to
 * the order of summation in reductions. Its API is shaped like the runtime seam (snnrt.h):
 * snn_interp_forward_backward / snn_interp_forward take and fill the same structs as the
 * generated entry points.
 *
 * Semantics (ops.def): the pre region runs once, the step region for t = 0..T-1 (backward:
 * T-1..0), the post region once. A STATE read in the step region is the state's value from the
 * previous step (its init, or the pre value init_from, at the first step); in the post region it
 * is the final value. After each step every state takes the value of its `next`. RATE draws
 * snnrt_uniform(seed, t, b, i) < clamp(x, 0, 1) with b the batch row and i the index within the
 * row (t = 0 outside the step region). STEPS is T. CROSS_ENTROPY is the batch mean of
 * logsumexp(logits) - logits[label]. FWD in the backward function reads the forward value at
 * the same step (forward pre and post values: their one value). GRAD_ACC adds into grads, which
 * the interpreter zeroes first. LOSS_ADD adds fval * v into the loss.
 *
 * The module must have passed snn_ir_verify; the interpreter does not check it again.
 */
#ifndef SNN_IR_INTERP_H
#define SNN_IR_INTERP_H

#include "ir/ir.h"
#include "snnrt.h"

/* One batch, in double. x is [batch, n_inputs] row-major, labels [batch]. */
typedef struct {
    int64_t batch, steps;
    const double *x;
    const int32_t *labels;
    uint64_t seed;
} snn_interp_batch;

/* Optional hooks. observe (if set) is called after every value is computed, with the function,
 * the value id, the step t (-1 in the pre and post regions) and the value's elements. */
typedef struct {
    bool round_f32;
    void (*observe)(void *ctx, const snn_ir_func *f, int32_t id, int64_t t, const double *data,
                    int64_t n);
    void *ctx;
} snn_interp_opts;

/* The core: runs forward, then (if grads != NULL) backward. params[i] and grads[i] have the shape
 * of m->params[i]; grads are overwritten. *loss gets the loss; scores (if not NULL and the
 * module has a scores state) gets its final value [batch, n_classes]. opts may be NULL.
 * Returns 0; 1 if the loss is not finite (everything is still filled in); -1 if grads were
 * asked for but the module has no backward function. */
int snn_interp_run_f64(const snn_ir_module *m, const double *const *params, double *const *grads,
                       const snn_interp_batch *b, double *loss, double *scores,
                       const snn_interp_opts *opts);

/* As snn_model_desc.forward_backward (snnrt.h), in float32 arithmetic (round_f32): fills grads,
 * res->loss and res->scores (if not NULL). Returns what snn_interp_run_f64 returns. */
int32_t snn_interp_forward_backward(const snn_ir_module *m, const float *const *params,
                                    float *const *grads, const snn_batch *batch, snn_result *res);

/* As snn_model_desc.forward: the forward function only. */
int32_t snn_interp_forward(const snn_ir_module *m, const float *const *params,
                           const snn_batch *batch, snn_result *res);

#endif
