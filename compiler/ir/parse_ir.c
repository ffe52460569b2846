/* parse_ir.c: reads the text form of the SNN IR (see print.c for the format) back into a module.
 *
 * The format is line-oriented, so this is a small hand-written scanner driven by what the
 * grammar expects next (a name, a number, a value reference), one line at a time:
 *
 *   module   := 'module' NAME  ['source' STR]  'inputs' INT 'classes' INT
 *               ['loss' STR] ['metric' STR] ['scores' NAME]  'train' KEY=VALUE...
 *               { param | surrogate | func }
 *   param    := 'param' NAME ':' type '=' ('uniform_fan_in(' INT ')' ['value=' F]
 *                                         | 'const(' F ')' ['fan_in=' INT])
 *   surrogate:= 'surrogate' INT STR '{' { value } 'return' REF '}'
 *   func     := 'func' ('forward' | 'backward') ['reverse'] '{' { state }
 *               'pre:' { value } 'step:' { value } 'post:' { value } '}'
 *   state    := 'state' NAME ':' type '=' (F | REF ['init=' F]) 'next' REF
 *   value    := REF '=' MNEMONIC [item {',' item}] [':' type]
 *   item     := REF (operand) | F (const) | NAME (param, state) | KEY '=' VALUE
 *   type     := 'f32[' [dim {',' dim}] ']'       dim := 'B' | INT
 *
 * Any line may end in `# file:line:col`, which becomes the location of what the line declares.
 * Names are [A-Za-z0-9_.]+ or a double-quoted string; REF is '%' NAME. Operands must precede
 * their users (as in the printed form); state `next`/`init` references and the module's `scores`
 * state are resolved at the end of their function. The first error stops the parse: it is
 * reported as `file:line:col: error: ...` and NULL is returned. The result is not verified: run
 * snn_ir_verify on it.
 */
#include "ir/ir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    snn_arena *a;
    snn_diag *d;
    const char *file;
    const char *p;              /* current position */
    const char *line_start;
    int line;
    bool failed;
    snn_ir_module *m;
} P;

static bool fail(P *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail(P *ps, const char *fmt, ...) {
    if (ps->failed) return false;
    ps->failed = true;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snn_loc loc = {ps->file, ps->line, (int32_t)(ps->p - ps->line_start) + 1};
    snn_error(ps->d, loc, "%s", msg);
    return false;
}

static void skip_ws(P *ps) { while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r') ps->p++; }

static bool name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
}

static bool at_eol(P *ps) { skip_ws(ps); return *ps->p == '\n' || *ps->p == 0 || *ps->p == '#'; }

static void next_line(P *ps) {
    while (*ps->p && *ps->p != '\n') ps->p++;
    if (*ps->p == '\n') ps->p++;
    ps->line++;
    ps->line_start = ps->p;
}

/* Skips blank lines; true if not at the end of the text. */
static bool skip_blank(P *ps) {
    for (;;) {
        const char *q = ps->p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q == 0) { ps->p = q; return false; }
        if (*q != '\n') return true;
        next_line(ps);
    }
}

/* Does the line continue with keyword kw (followed by a non-name character)? Consumes it. */
static bool accept_kw(P *ps, const char *kw) {
    skip_ws(ps);
    size_t n = strlen(kw);
    if (strncmp(ps->p, kw, n) != 0) return false;
    if (name_char(kw[n - 1]) && name_char(ps->p[n])) return false;
    ps->p += n;
    return true;
}

static bool expect_kw(P *ps, const char *kw) {
    if (accept_kw(ps, kw)) return true;
    return fail(ps, "'%s' expected", kw);
}

static bool accept_ch(P *ps, char c) {
    skip_ws(ps);
    if (*ps->p != c) return false;
    ps->p++;
    return true;
}

static bool expect_ch(P *ps, char c) {
    if (accept_ch(ps, c)) return true;
    return fail(ps, "'%c' expected", c);
}

static const char *parse_string(P *ps) {
    skip_ws(ps);
    if (*ps->p != '"') { fail(ps, "string expected"); return NULL; }
    ps->p++;
    char *buf = NULL; int n = 0, cap = 0;
    while (*ps->p != '"') {
        char c = *ps->p;
        if (c == 0 || c == '\n') { free(buf); fail(ps, "unterminated string"); return NULL; }
        if (c == '\\') {
            ps->p++;
            c = *ps->p == 'n' ? '\n' : *ps->p;
            if (c == 0 || c == '\n') { free(buf); fail(ps, "unterminated string"); return NULL; }
        }
        SNN_PUSH(buf, n, cap, c);
        ps->p++;
    }
    ps->p++;
    const char *s = snn_intern(ps->a, buf ? buf : "", (size_t)n);
    free(buf);
    return s;
}

static const char *parse_name(P *ps) {
    skip_ws(ps);
    if (*ps->p == '"') return parse_string(ps);
    const char *b = ps->p;
    while (name_char(*ps->p)) ps->p++;
    if (ps->p == b) { fail(ps, "name expected"); return NULL; }
    return snn_intern(ps->a, b, (size_t)(ps->p - b));
}

static const char *parse_ref(P *ps) {
    skip_ws(ps);
    if (*ps->p != '%') { fail(ps, "value reference '%%name' expected"); return NULL; }
    ps->p++;
    return parse_name(ps);
}

static bool parse_float(P *ps, float *out) {
    skip_ws(ps);
    errno = 0;
    char *end;
    float f = strtof(ps->p, &end);
    if (end == ps->p) return fail(ps, "number expected");
    ps->p = end;
    *out = f;
    return true;
}

static bool parse_int(P *ps, int64_t *out) {
    skip_ws(ps);
    char *end;
    errno = 0;
    long long v = strtoll(ps->p, &end, 10);
    if (end == ps->p || errno) return fail(ps, "integer expected");
    ps->p = end;
    *out = v;
    return true;
}

static bool parse_uint(P *ps, uint64_t *out) {
    skip_ws(ps);
    char *end;
    errno = 0;
    if (*ps->p == '-') return fail(ps, "unsigned integer expected");
    unsigned long long v = strtoull(ps->p, &end, 10);
    if (end == ps->p || errno) return fail(ps, "unsigned integer expected");
    ps->p = end;
    *out = v;
    return true;
}

static bool parse_shape(P *ps, snn_shape *s) {
    if (!expect_kw(ps, "f32") || !expect_ch(ps, '[')) return false;
    *s = snn_shape_scalar();
    if (accept_ch(ps, ']')) return true;
    for (;;) {
        if (s->rank == SNN_IR_MAX_RANK) return fail(ps, "at most %d dimensions", SNN_IR_MAX_RANK);
        if (accept_kw(ps, "B")) s->dim[s->rank++] = SNN_DIM_B;
        else {
            int64_t v;
            if (!parse_int(ps, &v)) return false;
            if (v <= 0) return fail(ps, "dimension must be positive");
            s->dim[s->rank++] = v;
        }
        if (accept_ch(ps, ']')) return true;
        if (!expect_ch(ps, ',')) return false;
    }
}

/* End of a line: an optional `# file:line:col` location, then the newline. */
static bool parse_eol(P *ps, snn_loc *loc) {
    skip_ws(ps);
    if (*ps->p == '#') {
        ps->p++;
        skip_ws(ps);
        const char *file = NULL;
        const char *b = ps->p;
        if (*ps->p == '"') {
            file = parse_string(ps);
            if (!file) return false;
            b = ps->p;
        }
        const char *e = b;
        while (*e && *e != '\n') e++;
        while (e > b && (e[-1] == ' ' || e[-1] == '\r' || e[-1] == '\t')) e--;
        /* file:line:col, split at the last two colons */
        const char *c2 = e, *c1;
        while (c2 > b && c2[-1] != ':') c2--;
        c1 = c2 > b ? c2 - 1 : b;
        while (c1 > b && c1[-1] != ':') c1--;
        if (c2 == b || c1 == b || c1[-1] != ':') return fail(ps, "location 'file:line:col' expected");
        if (!file && c1 - 1 > b) file = snn_intern(ps->a, b, (size_t)(c1 - 1 - b));
        if (loc) {
            loc->file = file;
            loc->line = (int32_t)strtol(c1, NULL, 10);
            loc->col = (int32_t)strtol(c2, NULL, 10);
        }
        ps->p = e;
        skip_ws(ps);
    }
    if (*ps->p != '\n' && *ps->p != 0) return fail(ps, "end of line expected");
    next_line(ps);
    return true;
}

static int32_t find_value(const snn_ir_value *vals, int32_t n, const char *name) {
    for (int32_t i = n - 1; i >= 0; i--)
        if (vals[i].name == name || strcmp(vals[i].name, name) == 0) return i;
    return -1;
}

static int32_t find_param(const snn_ir_module *m, const char *name) {
    for (int32_t i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].name, name) == 0) return i;
    return -1;
}

static int32_t find_state(const snn_ir_func *f, const char *name) {
    for (int32_t i = 0; i < f->n_states; i++)
        if (strcmp(f->states[i].name, name) == 0) return i;
    return -1;
}

static bool lookup_op(const char *mn, snn_op *op) {
    for (int i = 0; i < SNN_OP_COUNT_; i++)
        if (strcmp(snn_op_infos[i].mnemonic, mn) == 0) { *op = (snn_op)i; return true; }
    return false;
}

/* One value line into f (states_of: the function whose states STATE names; NULL in surrogates). */
static bool parse_value(P *ps, snn_ir_func *f, snn_region region, bool is_backward) {
    snn_ir_module *m = ps->m;
    const char *name = parse_ref(ps);
    if (!name) return false;
    if (find_value(f->values, f->n_values, name) >= 0) return fail(ps, "value %%%s defined twice", name);
    if (!expect_ch(ps, '=')) return false;
    skip_ws(ps);
    const char *mb = ps->p;
    while ((*ps->p >= 'a' && *ps->p <= 'z') || *ps->p == '_') ps->p++;
    char mn[32];
    size_t ml = (size_t)(ps->p - mb);
    if (ml == 0 || ml >= sizeof mn) { ps->p = mb; return fail(ps, "op name expected"); }
    memcpy(mn, mb, ml);
    mn[ml] = 0;
    snn_ir_value v = {.name = name, .region = region};
    if (!lookup_op(mn, &v.op)) { ps->p = mb; return fail(ps, "unknown op '%s'", mn); }
    const snn_op_info *oi = &snn_op_infos[v.op];
    bool first = true;
    /* operands */
    int max_args = oi->arity < 0 ? 3 : oi->arity;
    while (v.nargs < max_args) {
        skip_ws(ps);
        const char *save = ps->p;
        if (!first) {
            if (*ps->p != ',') break;
            ps->p++;
            skip_ws(ps);
        }
        if (*ps->p != '%') { ps->p = save; break; }
        const char *an = parse_ref(ps);
        if (!an) return false;
        int32_t id = find_value(f->values, f->n_values, an);
        if (id < 0) return fail(ps, "unknown value %%%s", an);
        v.args[v.nargs++] = id;
        first = false;
    }
    if (oi->arity >= 0 ? v.nargs != oi->arity : v.nargs < 2)
        return fail(ps, "%s takes %s operands, found %d", mn, oi->arity < 0 ? "2 or 3" : oi->arity == 0 ? "no" :
                    oi->arity == 1 ? "1" : oi->arity == 2 ? "2" : "3", (int)v.nargs);
#define SEP() do { if (!first && !expect_ch(ps, ',')) return false; first = false; } while (0)
    switch (v.op) {
    case SNN_OP_CONST: SEP(); if (!parse_float(ps, &v.fval)) return false; break;
    case SNN_OP_PARAM: {
        SEP();
        const char *pn = parse_name(ps);
        if (!pn) return false;
        if ((v.ival = find_param(m, pn)) < 0) return fail(ps, "unknown param %s", pn);
        break;
    }
    case SNN_OP_STATE: {
        SEP();
        const char *sn = parse_name(ps);
        if (!sn) return false;
        if ((v.ival = find_state(f, sn)) < 0) return fail(ps, "unknown state %s", sn);
        break;
    }
    case SNN_OP_FWD: {
        SEP();
        if (!is_backward) return fail(ps, "fwd is only meaningful in the backward function");
        const char *fn = parse_ref(ps);
        if (!fn) return false;
        if ((v.ival = find_value(m->forward.values, m->forward.n_values, fn)) < 0) return fail(ps, "unknown forward value %%%s", fn);
        break;
    }
    default: break;
    }
    /* key=value extras */
    for (;;) {
        skip_ws(ps);
        if (*ps->p == ':' || at_eol(ps)) break;
        SEP();
        skip_ws(ps);
        const char *kb = ps->p;
        while (name_char(*ps->p) && *ps->p != '.') ps->p++;
        char key[16];
        size_t kl = (size_t)(ps->p - kb);
        if (kl == 0 || kl >= sizeof key) { ps->p = kb; return fail(ps, "'key=value' expected"); }
        memcpy(key, kb, kl);
        key[kl] = 0;
        if (!expect_ch(ps, '=')) return false;
        int64_t iv;
        if (strcmp(key, "surrogate") == 0 || strcmp(key, "ival") == 0) {
            if (!parse_int(ps, &iv)) return false;
            v.ival = (int32_t)iv;
        } else if (strcmp(key, "scale") == 0 || strcmp(key, "fval") == 0) {
            if (!parse_float(ps, &v.fval)) return false;
        } else if (strcmp(key, "on") == 0) {
            if (!parse_float(ps, &v.attr[0])) return false;
        } else if (strcmp(key, "off") == 0) {
            if (!parse_float(ps, &v.attr[1])) return false;
        } else if (strncmp(key, "attr", 4) == 0 && key[4] >= '0' && key[4] < '0' + SNN_IR_MAX_ATTRS && key[5] == 0) {
            if (!parse_float(ps, &v.attr[key[4] - '0'])) return false;
        } else if (strcmp(key, "param") == 0) {
            const char *pn = parse_name(ps);
            if (!pn) return false;
            if ((v.ival = find_param(m, pn)) < 0) return fail(ps, "unknown param %s", pn);
        } else {
            ps->p = kb;
            return fail(ps, "unknown attribute '%s'", key);
        }
    }
#undef SEP
    if (accept_ch(ps, ':')) {
        if (!parse_shape(ps, &v.shape)) return false;
    } else if (oi->cls != SNN_CLASS_SINK) {
        return fail(ps, "': type' expected");
    }
    if (!parse_eol(ps, &v.loc)) return false;
    snn_ir_append(ps->a, f, v);
    return true;
}

typedef struct { const char *next, *init; } pending_state;

static bool parse_func(P *ps) {
    snn_ir_module *m = ps->m;
    const char *fname = parse_name(ps);
    if (!fname) return false;
    snn_ir_func *f;
    if (strcmp(fname, "forward") == 0) f = &m->forward;
    else if (strcmp(fname, "backward") == 0) f = &m->backward;
    else return fail(ps, "function 'forward' or 'backward' expected");
    if (f->n_values || f->n_states) return fail(ps, "function %s defined twice", fname);
    if (f == &m->backward && m->forward.n_values == 0 && m->forward.n_states == 0)
        return fail(ps, "the backward function must follow the forward function");
    f->time_dir = accept_kw(ps, "reverse") ? -1 : 1;
    if (!expect_ch(ps, '{') || !parse_eol(ps, NULL)) return false;
    pending_state *pend = NULL; int np = 0, cap = 0;
    bool ok = false;
    /* states */
    while (skip_blank(ps) && accept_kw(ps, "state")) {
        snn_ir_state s = {.init_from = -1, .next = -1};
        pending_state pe = {NULL, NULL};
        if (!(s.name = parse_name(ps))) goto out;
        if (find_state(f, s.name) >= 0) { fail(ps, "state %s declared twice", s.name); goto out; }
        if (!expect_ch(ps, ':') || !parse_shape(ps, &s.shape) || !expect_ch(ps, '=')) goto out;
        skip_ws(ps);
        if (*ps->p == '%') {
            if (!(pe.init = parse_ref(ps))) goto out;
            if (accept_kw(ps, "init")) {
                if (!expect_ch(ps, '=') || !parse_float(ps, &s.init)) goto out;
            }
        } else if (!parse_float(ps, &s.init)) goto out;
        if (!expect_kw(ps, "next") || !(pe.next = parse_ref(ps))) goto out;
        if (!parse_eol(ps, &s.loc)) goto out;
        snn_ir_add_state(f, s);
        SNN_PUSH(pend, np, cap, pe);
    }
    static const char *const heads[] = {"pre", "step", "post"};
    for (int r = SNN_REGION_PRE; r <= SNN_REGION_POST; r++) {
        if (!skip_blank(ps)) { fail(ps, "'%s:' expected", heads[r]); goto out; }
        if (!expect_kw(ps, heads[r]) || !expect_ch(ps, ':') || !parse_eol(ps, NULL)) goto out;
        while (skip_blank(ps)) {
            skip_ws(ps);
            if (*ps->p != '%') break;
            if (!parse_value(ps, f, (snn_region)r, f == &m->backward)) goto out;
        }
    }
    if (!skip_blank(ps) || !expect_ch(ps, '}')) { fail(ps, "'}' expected (to close func %s)", fname); goto out; }
    if (!parse_eol(ps, NULL)) goto out;
    for (int i = 0; i < np; i++) {
        snn_ir_state *s = &f->states[i];
        s->next = find_value(f->values, f->n_values, pend[i].next);
        if (s->next < 0) { fail(ps, "state %s: unknown next value %%%s", s->name, pend[i].next); goto out; }
        if (pend[i].init) {
            s->init_from = find_value(f->values, f->n_values, pend[i].init);
            if (s->init_from < 0) { fail(ps, "state %s: unknown init value %%%s", s->name, pend[i].init); goto out; }
        }
    }
    ok = true;
out:
    free(pend);
    return ok;
}

static bool parse_surrogate(P *ps) {
    snn_ir_module *m = ps->m;
    int64_t idx;
    if (!parse_int(ps, &idx)) return false;
    if (idx != m->n_surrogates) return fail(ps, "surrogate %d expected here", (int)m->n_surrogates);
    snn_ir_surrogate s = {.ret = -1};
    if (!(s.name = parse_string(ps))) return false;
    if (!expect_ch(ps, '{') || !parse_eol(ps, NULL)) return false;
    snn_ir_func tmp = {.name = s.name};
    bool ok = false;
    while (skip_blank(ps)) {
        skip_ws(ps);
        if (*ps->p != '%') break;
        if (!parse_value(ps, &tmp, SNN_REGION_PRE, false)) goto out;
    }
    if (!expect_kw(ps, "return")) goto out;
    const char *rn = parse_ref(ps);
    if (!rn) goto out;
    if ((s.ret = find_value(tmp.values, tmp.n_values, rn)) < 0) { fail(ps, "unknown value %%%s", rn); goto out; }
    if (!parse_eol(ps, NULL)) goto out;
    if (!skip_blank(ps) || !expect_ch(ps, '}') || !parse_eol(ps, NULL)) goto out;
    ok = true;
out:
    s.values = tmp.values; s.n_values = tmp.n_values; s.cap_values = tmp.cap_values;
    free(tmp.states);
    SNN_PUSH(m->surrogates, m->n_surrogates, m->cap_surrogates, s);   /* freed with the module */
    return ok;
}

static bool parse_train(P *ps) {
    snn_ir_module *m = ps->m;
    while (!at_eol(ps)) {
        const char *kb = ps->p;
        while (name_char(*ps->p)) ps->p++;
        size_t kl = (size_t)(ps->p - kb);
        char key[16];
        if (kl == 0 || kl >= sizeof key) { ps->p = kb; return fail(ps, "'key=value' expected"); }
        memcpy(key, kb, kl);
        key[kl] = 0;
        if (!expect_ch(ps, '=')) return false;
        int64_t iv;
        bool ok;
        if (!strcmp(key, "data")) ok = (m->train.data_dir = parse_string(ps)) != NULL;
        else if (!strcmp(key, "steps")) ok = parse_int(ps, &m->train.steps);
        else if (!strcmp(key, "batch")) ok = parse_int(ps, &m->train.batch);
        else if (!strcmp(key, "epochs")) ok = parse_int(ps, &m->train.epochs);
        else if (!strcmp(key, "seed")) ok = parse_uint(ps, &m->train.seed);
        else if (!strcmp(key, "optimizer")) { ok = parse_int(ps, &iv); m->train.optimizer = (int32_t)iv; }
        else if (!strcmp(key, "lr")) ok = parse_float(ps, &m->train.lr);
        else if (!strcmp(key, "beta1")) ok = parse_float(ps, &m->train.beta1);
        else if (!strcmp(key, "beta2")) ok = parse_float(ps, &m->train.beta2);
        else if (!strcmp(key, "eps")) ok = parse_float(ps, &m->train.eps);
        else if (!strcmp(key, "weight_decay")) ok = parse_float(ps, &m->train.weight_decay);
        else if (!strcmp(key, "momentum")) ok = parse_float(ps, &m->train.momentum);
        else { ps->p = kb; return fail(ps, "unknown train setting '%s'", key); }
        if (!ok) return false;
    }
    return parse_eol(ps, NULL);
}

static bool parse_param(P *ps) {
    snn_ir_param p = {0};
    if (!(p.name = parse_name(ps))) return false;
    if (find_param(ps->m, p.name) >= 0) return fail(ps, "param %s declared twice", p.name);
    if (!expect_ch(ps, ':') || !parse_shape(ps, &p.shape) || !expect_ch(ps, '=')) return false;
    if (accept_kw(ps, "uniform_fan_in")) {
        p.init = SNN_PINIT_UNIFORM_FAN_IN;
        if (!expect_ch(ps, '(') || !parse_int(ps, &p.fan_in) || !expect_ch(ps, ')')) return false;
        if (accept_kw(ps, "value") && (!expect_ch(ps, '=') || !parse_float(ps, &p.init_value))) return false;
    } else if (accept_kw(ps, "const")) {
        p.init = SNN_PINIT_CONST;
        if (!expect_ch(ps, '(') || !parse_float(ps, &p.init_value) || !expect_ch(ps, ')')) return false;
        if (accept_kw(ps, "fan_in") && (!expect_ch(ps, '=') || !parse_int(ps, &p.fan_in))) return false;
    } else {
        return fail(ps, "'uniform_fan_in(N)' or 'const(X)' expected");
    }
    if (!parse_eol(ps, &p.loc)) return false;
    snn_ir_add_param(ps->m, p);
    return true;
}

snn_ir_module *snn_ir_parse(snn_arena *a, snn_diag *d, const char *file, const char *text) {
    P ps = {.a = a, .d = d, .file = file ? snn_intern_cstr(a, file) : NULL, .p = text, .line_start = text, .line = 1};
    const char *scores = NULL;
    snn_ir_module *m = NULL;
    if (!skip_blank(&ps) || !expect_kw(&ps, "module")) { fail(&ps, "'module' expected"); return NULL; }
    const char *name = parse_name(&ps);
    if (!name || !parse_eol(&ps, NULL)) return NULL;
    m = ps.m = snn_ir_module_new(a, name);
    skip_blank(&ps);
    if (accept_kw(&ps, "source")) {
        if (!(m->source_file = parse_string(&ps)) || !parse_eol(&ps, NULL)) goto bad;
        skip_blank(&ps);
    }
    if (!expect_kw(&ps, "inputs") || !parse_int(&ps, &m->n_inputs) || !expect_kw(&ps, "classes") ||
        !parse_int(&ps, &m->n_classes) || !parse_eol(&ps, NULL))
        goto bad;
    skip_blank(&ps);
    bool any = false;
    if (accept_kw(&ps, "loss")) { if (!(m->loss_name = parse_string(&ps))) goto bad; any = true; }
    if (accept_kw(&ps, "metric")) { if (!(m->metric_name = parse_string(&ps))) goto bad; any = true; }
    if (accept_kw(&ps, "scores")) { if (!(scores = parse_name(&ps))) goto bad; any = true; }
    if (any && !parse_eol(&ps, NULL)) goto bad;
    skip_blank(&ps);
    if (!expect_kw(&ps, "train") || !parse_train(&ps)) goto bad;
    while (skip_blank(&ps)) {
        if (accept_kw(&ps, "param")) { if (!parse_param(&ps)) goto bad; }
        else if (accept_kw(&ps, "surrogate")) { if (!parse_surrogate(&ps)) goto bad; }
        else if (accept_kw(&ps, "func")) { if (!parse_func(&ps)) goto bad; }
        else { skip_ws(&ps); fail(&ps, "'param', 'surrogate' or 'func' expected"); goto bad; }
    }
    if (scores && (m->scores_state = find_state(&m->forward, scores)) < 0) {
        fail(&ps, "scores: unknown forward state %s", scores);
        goto bad;
    }
    return m;
bad:
    snn_ir_module_free(m);
    return NULL;
}
