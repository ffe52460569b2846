/* rewrite.h: rebuilding one function of an SNN IR module, the one tool every pass uses.
 *
 * Value ids are positions in func->values and values are stored region by region, so a pass
 * that moves a value to another region, deletes one or replaces one by another cannot edit the
 * array in place: it rebuilds it. A rewriter (snn_ir_rw) walks the old values in any order the
 * pass likes and, for each, either copies it (possibly into another region), makes it stand for
 * an already emitted value (an alias: CSE, simplification), emits new values, or drops it. The
 * old array stays readable (rw->old) during the walk; operands of copied values are mapped from
 * old ids to new ids automatically. snn_ir_rw_finish installs the new array and fixes up every
 * reference that lives outside the values:
 *
 *   - the function's states: next and init_from (mapped), states dropped on request, STATE
 *     ops' state indices renumbered;
 *   - if the function is the forward one: m->scores_state, and the backward function's FWD ops
 *     (their ival is a forward value id), so passes may run on the forward function after
 *     autodiff too;
 *
 * and reports an internal error (returning false, the function left as it was) if something
 * still referenced was dropped, or a copied value's operand was never emitted.
 *
 * Typical use (a pass that drops some values):
 *
 *   snn_ir_rw rw;
 *   snn_ir_rw_begin(&rw, a, d, m, f);
 *   for (int32_t i = 0; i < rw.n_old; i++)
 *       if (keep[i]) snn_ir_rw_copy(&rw, i, rw.old[i].region);
 *   return snn_ir_rw_finish(&rw, NULL) && rw.changed;
 *
 * The rewriter owns its scratch arrays (malloc); finish and abort free them.
 */
#ifndef SNN_IR_REWRITE_H
#define SNN_IR_REWRITE_H

#include "ir/ir.h"

typedef struct {
    snn_arena *a;
    snn_diag *d;
    snn_ir_module *m;
    snn_ir_func *f;
    const snn_ir_value *old;    /* the old values (still f->values until finish) */
    int32_t n_old;
    snn_ir_value *vals;         /* the new values */
    int32_t n, cap;
    int32_t *map;               /* old id -> new id, or -1 while not emitted / dropped */
    bool changed;               /* anything moved, merged, added or dropped */
    bool failed;                /* an internal error was reported */
} snn_ir_rw;

/* Starts rebuilding f (a function of m: &m->forward or &m->backward). */
void snn_ir_rw_begin(snn_ir_rw *rw, snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f);

/* Copies old value `old_id` into region r (not before the last emitted value's region), with
 * its operands mapped to their new ids. Returns the new id, or -1 after an internal error (an
 * operand not emitted yet, or regions out of order). */
int32_t snn_ir_rw_copy(snn_ir_rw *rw, int32_t old_id, snn_region r);

/* Emits a new value whose operands are NEW ids (v.region as given, v.name made unique against
 * both the old and the new values; NULL: the op's mnemonic). Returns its new id or -1. */
int32_t snn_ir_rw_emit(snn_ir_rw *rw, snn_ir_value v);

/* Emits v (operands are NEW ids, region as given) as the replacement of old value `old_id`:
 * it takes the old value's name, and its location if v has none, and the old id maps to it
 * (constant folding). Returns the new id or -1. */
int32_t snn_ir_rw_replace(snn_ir_rw *rw, int32_t old_id, snn_ir_value v);

/* From now on old value `old_id` stands for new value `new_id` (its users, the states and the
 * backward function's FWD ops are redirected there). The shapes must be equal. */
void snn_ir_rw_alias(snn_ir_rw *rw, int32_t old_id, int32_t new_id);

/* The new id of old value `old_id` (-1 if not emitted). */
static inline int32_t snn_ir_rw_get(const snn_ir_rw *rw, int32_t old_id) {
    return old_id >= 0 && old_id < rw->n_old ? rw->map[old_id] : -1;
}
/* The new value with new id `new_id`. */
static inline const snn_ir_value *snn_ir_rw_new(const snn_ir_rw *rw, int32_t new_id) {
    return &rw->vals[new_id];
}

/* Installs the new values. keep_states (NULL: keep all) says which of f's states survive; the
 * others must no longer be read. Returns false (f unchanged, internal errors reported) if the
 * result would be inconsistent. Frees the rewriter's scratch either way. */
bool snn_ir_rw_finish(snn_ir_rw *rw, const bool *keep_states);

/* Discards the rewrite, leaving f as it was. */
void snn_ir_rw_abort(snn_ir_rw *rw);

/* ---- small analyses the passes share ---- */

/* mask[i] = value i of f is some state's next (malloc'd, n_values entries; caller frees). */
bool *snn_ir_state_next_mask(const snn_ir_func *f);

/* mask[i] = forward value i is read by a FWD op of the backward function (malloc'd, forward
 * n_values entries; all false if there is no backward function; caller frees). */
bool *snn_ir_fwd_read_mask(const snn_ir_module *m);

/* Does op compute a value that depends only on its operands and attributes (no randomness, no
 * side effect, not a leaf whose value depends on where it is read)? CONST, PARAM, INPUT and
 * STEPS are pure; STATE, STEP, FWD, ARG, RATE and the sinks are not. hoist, cse and dce rely on it:
 * a new op of ops.def whose value depends on the step (t) or on a random draw must be listed
 * as impure here, or hoist would compute it once for all steps. */
bool snn_ir_op_is_pure(snn_op op);

/* Are two values the same computation: op, operands, shape and every attribute (not name,
 * region or location)? Commutative ops (add, mul, eq, ne) match with operands swapped. */
bool snn_ir_value_same(const snn_ir_value *x, const snn_ir_value *y);

#endif
