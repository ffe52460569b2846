/* lower.h: AST -> SNN IR (compiler/lower.c).
 *
 * Lowering turns a sema-checked program into an IR module holding the forward function only
 * (autodiff builds backward afterwards). It is deliberately naive about time: every value of
 * the model, the direct-encoded input and `linear(x)` of it included, is computed in the step
 * region; the optimization passes (compiler/passes/) move what does not depend on t.
 *
 *  - each neuron call of the model is inlined: its learn parameters become IR parameters named
 *    "<layer>.<param>", its constant parameters constants, its states IR states
 *    "<layer>.<state>", its step statements per-step elementwise equations (constants folded,
 *    compile-time `if`s resolved);
 *  - `linear(src, N)` becomes a LINEAR with parameters "<layer>.weight" [N, in] and
 *    "<layer>.bias" [N] (torch.nn.Linear init); a neuron's recurrent `linear(v)` becomes
 *    "<layer>.recurrent.weight" [N, N] and "<layer>.recurrent.bias";
 *  - `fire(x)` becomes FIRE with the neuron's surrogate, lowered once per distinct instance
 *    into a straight-line program of its argument;
 *  - the train block's loss becomes LOSS_ADD sinks (per step, or in the post region for losses
 *    of time-reduced values), its metric a spike-count state that provides the scores, and its
 *    settings the module's train defaults.
 */
#ifndef SNN_LOWER_H
#define SNN_LOWER_H

#include "ast.h"
#include "ir/ir.h"

/* Lowers prog (snn_sema must have returned true). Returns NULL after reporting errors to d,
 * e.g. for constructs the back end does not support. */
snn_ir_module *snn_lower(snn_arena *a, snn_diag *d, const snn_program *prog);

#endif
