/* print.c: the text form of the SNN IR (see ir.h), read back by parse_ir.c.
 *
 * The text is meant to read like the model and to be compared with golden files, so it is
 * deterministic (no addresses, no hash order) and exact: every field of every value, param and
 * state is printed, floats in the shortest decimal form that reads back to the same bits.
 * A module prints as
 *
 *   module tutorial5
 *   source "tutorial5.snn"
 *   inputs 784 classes 10
 *   loss "ce_membrane" metric "rate_accuracy" scores o.count
 *   train data="..." steps=25 batch=128 epochs=1 seed=0 optimizer=0 lr=0.0005 ...
 *
 *   param h.weight : f32[1000,784] = uniform_fan_in(784)        # tutorial5.snn:3:5
 *
 *   surrogate 0 "atan(alpha=2)" {
 *     %x = arg : f32[]
 *     ...
 *     return %g
 *   }
 *
 *   func forward {
 *     state h.mem : f32[B,1000] = 0 next %h.mem                   # tutorial5.snn:7:9
 *   pre:
 *     %x = input : f32[B,784]
 *   step:
 *     %h.mem = sub %h.mem.pre, %h.reset : f32[B,1000]             # tutorial5.snn:12:5
 *     %h.spk = fire %h.v, surrogate=0 : f32[B,1000]
 *     %loss_add = loss_add %ce, scale=1
 *   post:
 *   }
 *   func backward reverse { ... }
 *
 * One value a line: `%name = mnemonic operands[, extras] : type   # file:line:col`. Extras are
 * op-specific (a constant's value, a param's or state's name, `surrogate=K`, `scale=X`,
 * `param=NAME`, `on=X, off=Y`); any other field that is non-zero is printed as `fval=`, `ival=`,
 * `attrK=` so nothing is lost. Sinks (loss_add, grad_acc) have no type. Names made only of
 * letters, digits, '_' and '.' print bare; others are quoted.
 */
#include "ir/ir.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COMMENT_COL 60

/* A small growable line buffer, so a value line can be padded before its location comment. */
typedef struct { char buf[1024]; size_t n; } line_buf;

static void lb_add(line_buf *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void lb_add(line_buf *l, const char *fmt, ...) {
    if (l->n >= sizeof l->buf - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->buf + l->n, sizeof l->buf - l->n, fmt, ap);
    va_end(ap);
    if (k > 0) l->n += (size_t)k;
    if (l->n > sizeof l->buf - 1) l->n = sizeof l->buf - 1;
}

/* Shortest %g form that reads back (strtof) to the same float. */
static const char *fmt_float(char *buf, size_t cap, float f) {
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, cap, "%.*g", p, (double)f);
        if (strtof(buf, NULL) == f) return buf;
    }
    return buf;   /* nan */
}

static bool bare_name(const char *s) {
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.'))
            return false;
    return true;
}

static void lb_quoted(line_buf *l, const char *s) {
    lb_add(l, "\"");
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '"' || *p == '\\') lb_add(l, "\\%c", *p);
        else if (*p == '\n') lb_add(l, "\\n");
        else lb_add(l, "%c", *p);
    }
    lb_add(l, "\"");
}

static void lb_name(line_buf *l, const char *s) {
    if (bare_name(s)) lb_add(l, "%s", s);
    else lb_quoted(l, s);
}

static void lb_shape(line_buf *l, snn_shape s) {
    lb_add(l, "f32[");
    for (int i = 0; i < s.rank; i++) {
        if (i) lb_add(l, ",");
        if (s.dim[i] == SNN_DIM_B) lb_add(l, "B");
        else lb_add(l, "%lld", (long long)s.dim[i]);
    }
    lb_add(l, "]");
}

static void lb_float(line_buf *l, float f) {
    char b[48];
    lb_add(l, "%s", fmt_float(b, sizeof b, f));
}

/* Ends the line: pads to the comment column and prints the location, if any. */
static void lb_flush(line_buf *l, snn_loc loc, FILE *out) {
    if (loc.file || loc.line || loc.col) {
        while (l->n < COMMENT_COL) lb_add(l, " ");
        if (l->buf[l->n - 1] != ' ') lb_add(l, " ");
        lb_add(l, "# ");
        if (loc.file) {
            if (bare_name(loc.file) || (strpbrk(loc.file, " \"\\\n#") == NULL && *loc.file)) lb_add(l, "%s", loc.file);
            else lb_quoted(l, loc.file);
        }
        lb_add(l, ":%d:%d", (int)loc.line, (int)loc.col);
    }
    fwrite(l->buf, 1, l->n, out);
    fputc('\n', out);
    l->n = 0;
}

static const char *value_name(const snn_ir_value *vals, int32_t n, int32_t id) {
    return id >= 0 && id < n ? vals[id].name : "?";
}

/* The body of one value line after "%name = ". vals: the array operands refer to. */
static void print_value(const snn_ir_module *m, const snn_ir_value *vals, int32_t n, int32_t id,
                        bool is_fwd_func, const snn_ir_func *states_of, FILE *out) {
    const snn_ir_value *v = &vals[id];
    line_buf l = {.n = 0};
    lb_add(&l, "  %%");
    lb_name(&l, v->name);
    lb_add(&l, " = %s", (int)v->op >= 0 && v->op < SNN_OP_COUNT_ ? snn_op_infos[v->op].mnemonic : "?");
    bool first = true;
#define SEP() (lb_add(&l, first ? " " : ", "), first = false)
    for (int k = 0; k < v->nargs; k++) {
        SEP();
        lb_add(&l, "%%");
        lb_name(&l, value_name(vals, n, v->args[k]));
    }
    bool fval_done = false, ival_done = false, attr_done = false;
    switch (v->op) {
    case SNN_OP_CONST: SEP(); lb_float(&l, v->fval); fval_done = true; break;
    case SNN_OP_PARAM:
        if (v->ival >= 0 && v->ival < m->n_params) {
            SEP(); lb_name(&l, m->params[v->ival].name); ival_done = true;
        }
        break;
    case SNN_OP_STATE:
        if (states_of && v->ival >= 0 && v->ival < states_of->n_states) {
            SEP(); lb_name(&l, states_of->states[v->ival].name); ival_done = true;
        }
        break;
    case SNN_OP_FWD:
        if (!is_fwd_func && v->ival >= 0 && v->ival < m->forward.n_values) {
            SEP(); lb_add(&l, "%%"); lb_name(&l, m->forward.values[v->ival].name); ival_done = true;
        }
        break;
    case SNN_OP_FIRE: SEP(); lb_add(&l, "surrogate=%d", (int)v->ival); ival_done = true; break;
    case SNN_OP_LOSS_ADD: SEP(); lb_add(&l, "scale="); lb_float(&l, v->fval); fval_done = true; break;
    case SNN_OP_GRAD_ACC:
        if (v->ival >= 0 && v->ival < m->n_params) {
            SEP(); lb_add(&l, "param="); lb_name(&l, m->params[v->ival].name); ival_done = true;
        }
        break;
    case SNN_OP_MSE_ONEHOT: case SNN_OP_MSE_ONEHOT_GRAD:
        SEP(); lb_add(&l, "on="); lb_float(&l, v->attr[0]);
        SEP(); lb_add(&l, "off="); lb_float(&l, v->attr[1]);
        if (v->attr[2] != 0) { SEP(); lb_add(&l, "attr2="); lb_float(&l, v->attr[2]); }
        if (v->attr[3] == 0) attr_done = true;
        break;
    default: break;
    }
    /* whatever the op-specific syntax did not cover, so the text stays exact */
    if (!fval_done && (v->fval != 0 || signbit(v->fval))) { SEP(); lb_add(&l, "fval="); lb_float(&l, v->fval); }
    if (!ival_done && v->ival != 0) { SEP(); lb_add(&l, "ival=%d", (int)v->ival); }
    if (!attr_done)
        for (int k = 0; k < SNN_IR_MAX_ATTRS; k++)
            if (v->attr[k] != 0 || signbit(v->attr[k])) { SEP(); lb_add(&l, "attr%d=", k); lb_float(&l, v->attr[k]); }
#undef SEP
    if ((int)v->op >= 0 && v->op < SNN_OP_COUNT_ && snn_op_infos[v->op].cls != SNN_CLASS_SINK) {
        lb_add(&l, " : ");
        lb_shape(&l, v->shape);
    } else if (v->shape.rank != 0) {      /* a malformed sink: keep the text exact anyway */
        lb_add(&l, " : ");
        lb_shape(&l, v->shape);
    }
    lb_flush(&l, v->loc, out);
}

void snn_ir_print_func(const snn_ir_module *m, const snn_ir_func *f, void *file) {
    FILE *out = file;
    bool is_fwd = f == &m->forward;
    line_buf l = {.n = 0};
    lb_add(&l, "func ");
    lb_name(&l, f->name ? f->name : "");
    if (f->time_dir < 0) lb_add(&l, " reverse");
    lb_add(&l, " {");
    lb_flush(&l, (snn_loc){0}, out);
    for (int i = 0; i < f->n_states; i++) {
        const snn_ir_state *s = &f->states[i];
        lb_add(&l, "  state ");
        lb_name(&l, s->name);
        lb_add(&l, " : ");
        lb_shape(&l, s->shape);
        lb_add(&l, " = ");
        if (s->init_from >= 0) {
            lb_add(&l, "%%");
            lb_name(&l, value_name(f->values, f->n_values, s->init_from));
            if (s->init != 0) { lb_add(&l, " init="); lb_float(&l, s->init); }
        } else {
            lb_float(&l, s->init);
        }
        lb_add(&l, " next %%");
        lb_name(&l, value_name(f->values, f->n_values, s->next));
        lb_flush(&l, s->loc, out);
    }
    static const char *const region_names[] = {"pre:", "step:", "post:"};
    int i = 0;
    for (int r = SNN_REGION_PRE; r <= SNN_REGION_POST; r++) {
        fprintf(out, "%s\n", region_names[r]);
        for (; i < f->n_values && (int)f->values[i].region <= r; i++)
            print_value(m, f->values, f->n_values, i, is_fwd, f, out);
    }
    for (; i < f->n_values; i++)   /* a bad region number: print rather than lose it */
        print_value(m, f->values, f->n_values, i, is_fwd, f, out);
    fprintf(out, "}\n");
}

static void print_surrogate(const snn_ir_module *m, int idx, FILE *out) {
    const snn_ir_surrogate *s = &m->surrogates[idx];
    line_buf l = {.n = 0};
    lb_add(&l, "surrogate %d ", idx);
    lb_quoted(&l, s->name);
    lb_add(&l, " {");
    lb_flush(&l, (snn_loc){0}, out);
    for (int i = 0; i < s->n_values; i++) print_value(m, s->values, s->n_values, i, true, NULL, out);
    lb_add(&l, "  return %%");
    lb_name(&l, value_name(s->values, s->n_values, s->ret));
    lb_flush(&l, (snn_loc){0}, out);
    fprintf(out, "}\n");
}

void snn_ir_print(const snn_ir_module *m, void *file, bool with_backward) {
    FILE *out = file;
    line_buf l = {.n = 0};
    char fb[48];
    lb_add(&l, "module ");
    lb_name(&l, m->name ? m->name : "");
    lb_flush(&l, (snn_loc){0}, out);
    if (m->source_file) { lb_add(&l, "source "); lb_quoted(&l, m->source_file); lb_flush(&l, (snn_loc){0}, out); }
    fprintf(out, "inputs %lld classes %lld\n", (long long)m->n_inputs, (long long)m->n_classes);
    if (m->loss_name || m->metric_name || m->scores_state >= 0) {
        const char *sep = "";
        if (m->loss_name) { lb_add(&l, "loss "); lb_quoted(&l, m->loss_name); sep = " "; }
        if (m->metric_name) { lb_add(&l, "%smetric ", sep); lb_quoted(&l, m->metric_name); sep = " "; }
        if (m->scores_state >= 0) {
            lb_add(&l, "%sscores ", sep);
            if (m->scores_state < m->forward.n_states) lb_name(&l, m->forward.states[m->scores_state].name);
            else lb_add(&l, "#%d", (int)m->scores_state);
        }
        lb_flush(&l, (snn_loc){0}, out);
    }
    lb_add(&l, "train");
    if (m->train.data_dir) { lb_add(&l, " data="); lb_quoted(&l, m->train.data_dir); }
    lb_add(&l, " steps=%lld batch=%lld epochs=%lld seed=%llu optimizer=%d", (long long)m->train.steps,
           (long long)m->train.batch, (long long)m->train.epochs, (unsigned long long)m->train.seed,
           (int)m->train.optimizer);
    lb_add(&l, " lr=%s", fmt_float(fb, sizeof fb, m->train.lr));
    lb_add(&l, " beta1=%s", fmt_float(fb, sizeof fb, m->train.beta1));
    lb_add(&l, " beta2=%s", fmt_float(fb, sizeof fb, m->train.beta2));
    lb_add(&l, " eps=%s", fmt_float(fb, sizeof fb, m->train.eps));
    lb_add(&l, " weight_decay=%s", fmt_float(fb, sizeof fb, m->train.weight_decay));
    lb_add(&l, " momentum=%s", fmt_float(fb, sizeof fb, m->train.momentum));
    lb_flush(&l, (snn_loc){0}, out);
    if (m->n_params) fputc('\n', out);
    for (int i = 0; i < m->n_params; i++) {
        const snn_ir_param *p = &m->params[i];
        lb_add(&l, "param ");
        lb_name(&l, p->name);
        lb_add(&l, " : ");
        lb_shape(&l, p->shape);
        if (p->init == SNN_PINIT_UNIFORM_FAN_IN) {
            lb_add(&l, " = uniform_fan_in(%lld)", (long long)p->fan_in);
            if (p->init_value != 0) lb_add(&l, " value=%s", fmt_float(fb, sizeof fb, p->init_value));
        } else {
            lb_add(&l, " = const(%s)", fmt_float(fb, sizeof fb, p->init_value));
            if (p->fan_in != 0) lb_add(&l, " fan_in=%lld", (long long)p->fan_in);
        }
        lb_flush(&l, p->loc, out);
    }
    for (int i = 0; i < m->n_surrogates; i++) { fputc('\n', out); print_surrogate(m, i, out); }
    fputc('\n', out);
    snn_ir_print_func(m, &m->forward, out);
    if (with_backward && (m->backward.n_values > 0 || m->backward.n_states > 0)) {
        fputc('\n', out);
        snn_ir_print_func(m, &m->backward, out);
    }
}
