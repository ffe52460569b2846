/* sema.h: semantic analysis of a loaded .snn program (compiler/sema.c).
 *
 * snn_sema walks every unit of an snn_program (the main file, its imports, the standard
 * library), builds the table of definitions, resolves every name, checks arguments, types and
 * shapes, and annotates the AST in place (the [sema] fields of ast.h). All errors go to the
 * diagnostics sink; it never stops at the first one.
 *
 * Scopes. Definitions (surrogate, neuron, def, builtin, model) of the main file and of every
 * imported file share one namespace: defining a name twice there is an error, with a note at
 * the previous definition. The standard library is an outer scope: a user definition with the
 * same name as a stdlib one shadows it (for the whole program, stdlib included). Inside a
 * definition the names are, innermost first: locals (LET), states, the step input / grad
 * variable, parameters, then intrinsics (exp, fire, ...), constants (pi) and symbols
 * (subtract, zero, none), then definitions.
 *
 * What later stages may rely on when snn_sema returns true (no errors):
 *  - Every IDENT has ident.ref set (never SNN_REF_NONE), every CALL has either call.def or
 *    call.intrinsic, and every MEMBER has member.layer and member.out_index.
 *  - Every CALL of a definition has call.bound with one non-NULL expression per parameter of
 *    call.def, in the definition's parameter order: the argument given (named or positional)
 *    or the parameter's default. Bound expressions of neuron, encoder, loss, optimizer,
 *    metric, data, layer and surrogate calls in a model or train block are compile-time
 *    constants (is_const and cval set), except: SURROGATE-typed params (bound to a CALL of a
 *    SURROGATE def, itself bound), TENSOR params (model expressions), PAIR params (a TUPLE of
 *    constant NUMs), STR params (STR nodes), SPIKES/MEMBRANE params (IDENT of an output LAYER).
 *  - Identifiers used as values that name definitions (`encode x = direct`) have been
 *    rewritten to CALL nodes with no arguments.
 *  - Each NEURON call has call.input (its input tensor expression).
 *  - Model level: every INPUT, ENCODE, LAYER and every tensor expression in a model has its
 *    width (> 0). linear(x, N) has width N; a neuron call keeps its input's width; elementwise
 *    arithmetic of tensors requires equal widths. LAYER.layer.neuron is the neuron CALL when
 *    the layer's value is one. Layers are defined before use (no forward references) and
 *    each name is defined once.
 *  - Neurons: parameters are typed (PARAM.type); every `fire` has a surrogate parameter to
 *    use (fire(x) uses the neuron's only SURROGATE-typed parameter); IF conditions and state
 *    initializers do not depend on learn parameters, states, locals or the input; states are
 *    assigned only in `step`; locals are defined before use and once; every `out` name is a
 *    state or a top-level local of step.
 *  - No definition calls itself directly or indirectly, and none grows past a million calls
 *    once every call in it is inlined (so inlining terminates and stays small).
 *  - Constant arguments and defaults of type num/int are finite (no 1/0, no log(-1)).
 *  - Model outputs are listed once each; no input or layer is named pi, subtract, zero or none.
 *  - The program has at most one train block; program->train is it and program->model its
 *    model (if there is no train block, program->model is the only model, or NULL).
 *    Settings steps, batch, epochs are positive INT constants, seed a non-negative INT;
 *    data, loss and optimizer are present; loss is a CALL of a LOSS builtin, or a sum of
 *    such calls and REGULARIZER calls (optionally scaled by constants); every SPIKES/MEMBRANE
 *    argument names a model output; a MEMBRANE argument's layer has an out named `mem`.
 */
#ifndef SNN_SEMA_H
#define SNN_SEMA_H

#include "ast.h"

/* Checks and annotates prog (see above). Returns true if no error was reported. */
bool snn_sema(snn_arena *a, snn_diag *d, snn_program *prog);

/* The definition (SURROGATE, NEURON, FUNC, BUILTIN or MODEL node) visible under the interned
 * name in the program's namespace (user definitions shadowing the stdlib), or NULL. Valid
 * after snn_sema. */
snn_ast *snn_program_lookup(const snn_program *prog, const char *name);

/* The setting named key (a C string) of a TRAIN node, or NULL. */
snn_ast *snn_train_setting(const snn_ast *train, const char *key);

/* The index of the parameter named param (a C string) of definition def, or -1. */
int32_t snn_def_param_index(const snn_ast *def, const char *param);

/* The expression bound to parameter param of a sema-checked CALL of a definition, or NULL if
 * the definition has no such parameter. */
snn_ast *snn_call_bound(const snn_ast *call, const char *param);

/* If e is a compile-time constant (literals, pi, symbols, bools, arithmetic and comparisons
 * and selects of constants, intrinsic math on constants), stores its value and returns true.
 * env, if non-NULL, gives the values of a definition's parameters: env[i] is the bound
 * expression of parameter i (e.g. call->call.bound), so a neuron body expression can be
 * folded for one layer. */
bool snn_const_eval(const snn_ast *e, snn_ast *const *env, double *out);

#endif
