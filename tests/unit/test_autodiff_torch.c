/* test_autodiff_torch.c: autodiff and the reference interpreter against PyTorch.
 *
 * For every gradient fixture in tests/reference/fixtures/<case>/ (made by
 * tests/reference/gen_fixtures.py with snnTorch's exact semantics in float64: model.snn, the
 * parameters, x, labels, the loss in meta.txt, grad.<param>.f32 and the output spike counts),
 * the model is loaded, lowered, differentiated (with and without the forward passes) and run
 * by the interpreter in double; its loss, every gradient and the spike counts must match.
 * This checks the gradient rules and BPTT against PyTorch without going through codegen
 * (tests/e2e/check_gradients.sh checks the compiled trainer the same way). The tolerance is
 * per tensor, |a - b| / max |b| <= 1e-5 (the references are stored as float32); the float32
 * entry point (snn_interp_forward_backward) must be within the 1e-4.
 * Runs from the repository root (as tests/run.sh does); without the fixtures it does nothing.
 */
#include <CUnit/CUnit.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "ir/interp.h"
#include "ir/ir.h"
#include "lower.h"
#include "passes/passes.h"
#include "sema.h"
#include "unit_util.h"

#define FIXTURES "tests/reference/fixtures"

static char *slurp(const char *dir, const char *name, size_t *len) {
    char path[1024];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path) return NULL;
    return unit_read_file(path, len);
}

/* float32 file of exactly n elements, as doubles; NULL if missing or the wrong size */
static double *read_f32(const char *dir, const char *name, int64_t n) {
    size_t len = 0;
    char *s = slurp(dir, name, &len);
    if (!s || len != (size_t)n * 4) { free(s); return NULL; }
    double *out = calloc((size_t)n, sizeof *out);
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, s + i * 4, 4);
        out[i] = v;
    }
    free(s);
    return out;
}

static bool meta_num(const char *meta, const char *key, double *out) {
    size_t kl = strlen(key);
    for (const char *p = meta; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, key, kl) == 0 && (p[kl] == ' ' || p[kl] == '=')) {
            const char *e = strchr(p, '=');
            if (!e) return false;
            *out = strtod(e + 1, NULL);
            return true;
        }
    }
    return false;
}

static int check_case(const char *dir, bool opt) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    size_t len;
    char *src = slurp(dir, "model.snn", &len), *meta = slurp(dir, "meta.txt", NULL);
    int checked = 0;
    double B, T, ref_loss;
    if (!src || !meta || !meta_num(meta, "batch", &B) || !meta_num(meta, "steps", &T) || !meta_num(meta, "loss", &ref_loss)) {
        CU_FAIL("fixture unreadable");
        goto out;
    }
    snn_program *prog = snn_load_program(a, d, snn_intern_cstr(a, "model.snn"), src, len, NULL);
    snn_ir_module *m = prog && snn_sema(a, d, prog) ? snn_lower(a, d, prog) : NULL;
    if (m && opt) {
        snn_pass_options po = snn_pass_options_default();
        po.verify = true;
        if (!snn_run_passes(a, d, m, &po)) { snn_ir_module_free(m); m = NULL; }
    }
    if (m && !(snn_autodiff(a, d, m) && snn_ir_verify(m, d))) { snn_ir_module_free(m); m = NULL; }
    if (!m) {
        printf("\n  %s: does not compile:\n", dir);
        snn_diag_print(d, stdout);
        CU_FAIL("fixture model does not lower and differentiate");
        goto out;
    }
    const int64_t nb = (int64_t)B;
    double **p = calloc((size_t)m->n_params + 1, sizeof *p), **g = calloc((size_t)m->n_params + 1, sizeof *g);
    double *x = read_f32(dir, "x.f32", nb * m->n_inputs);
    double *scores_ref = read_f32(dir, "scores.f32", nb * m->n_classes);
    int32_t *labels = NULL;
    size_t llen = 0;
    char *lraw = slurp(dir, "labels.i32", &llen);
    if (lraw && llen == (size_t)nb * 4) { labels = malloc(llen); memcpy(labels, lraw, llen); }
    free(lraw);
    bool ok = x && labels;
    for (int i = 0; i < m->n_params && ok; i++) {
        int64_t n = snn_shape_numel(m->params[i].shape, 1);
        p[i] = read_f32(dir, snn_sprintf(a, "%s.f32", m->params[i].name), n);
        g[i] = calloc((size_t)n, sizeof(double));
        if (!p[i]) { printf("\n  %s: no %s.f32 of %lld elements\n", dir, m->params[i].name, (long long)n); ok = false; }
    }
    CU_ASSERT_TRUE(ok);
    if (ok) {
        double loss = NAN, *scores = calloc((size_t)(nb * m->n_classes), sizeof(double));
        snn_interp_batch b = {nb, (int64_t)T, x, labels, 0};
        CU_ASSERT_EQUAL(snn_interp_run_f64(m, (const double *const *)p, g, &b, &loss, scores, NULL), 0);
        double lerr = fabs(loss - ref_loss) / fmax(fabs(ref_loss), 1e-12);
        if (getenv("SNN_VERBOSE")) printf("\n  %s: loss relative error %.3g", dir, lerr);
        if (lerr > 1e-6) printf("\n  %s: loss %.9g, PyTorch %.9g", dir, loss, ref_loss);
        CU_ASSERT_TRUE(lerr <= 1e-6);
        for (int i = 0; i < m->n_params; i++) {
            int64_t n = snn_shape_numel(m->params[i].shape, 1);
            double *ref = read_f32(dir, snn_sprintf(a, "grad.%s.f32", m->params[i].name), n);
            CU_ASSERT_PTR_NOT_NULL(ref);
            if (!ref) continue;
            double worst = 0, mx = 1e-12;
            for (int64_t k = 0; k < n; k++) { worst = fmax(worst, fabs(g[i][k] - ref[k])); mx = fmax(mx, fabs(ref[k])); }
            if (getenv("SNN_VERBOSE")) printf("\n  %s%s: grad %s: relative error %.3g", dir, opt ? " (passes)" : "", m->params[i].name, worst / mx);
            if (worst / mx > 1e-5) printf("\n  %s%s: grad %s: relative error %.3g", dir, opt ? " (passes)" : "", m->params[i].name, worst / mx);
            CU_ASSERT_TRUE(worst / mx <= 1e-5);
            checked++;
            free(ref);
        }
        if (scores_ref && m->scores_state >= 0)
            for (int64_t k = 0; k < nb * m->n_classes; k++) CU_ASSERT_DOUBLE_EQUAL(scores[k], scores_ref[k], 0);
        free(scores);
        /* the float32 entry point (what codegen is compared with) to the 1e-4 */
        float **fp = calloc((size_t)m->n_params + 1, sizeof *fp), **fg = calloc((size_t)m->n_params + 1, sizeof *fg);
        float *fx = calloc((size_t)(nb * m->n_inputs), sizeof(float)), *fs = calloc((size_t)(nb * m->n_classes), sizeof(float));
        for (int i = 0; i < m->n_params; i++) {
            int64_t n = snn_shape_numel(m->params[i].shape, 1);
            fp[i] = calloc((size_t)n, sizeof(float));
            fg[i] = calloc((size_t)n, sizeof(float));
            for (int64_t k = 0; k < n; k++) fp[i][k] = (float)p[i][k];
        }
        for (int64_t k = 0; k < nb * m->n_inputs; k++) fx[k] = (float)x[k];
        snn_batch fb = {nb, (int64_t)T, fx, labels, 0, 0};
        snn_result res = {0, fs};
        CU_ASSERT_EQUAL(snn_interp_forward_backward(m, (const float *const *)fp, fg, &fb, &res), 0);
        CU_ASSERT_TRUE(fabs(res.loss - ref_loss) <= 1e-4 * fabs(ref_loss));
        for (int i = 0; i < m->n_params; i++) {
            int64_t n = snn_shape_numel(m->params[i].shape, 1);
            double worst = 0, mx = 1e-12;
            for (int64_t k = 0; k < n; k++) { worst = fmax(worst, fabs(fg[i][k] - g[i][k])); mx = fmax(mx, fabs(g[i][k])); }
            if (worst / mx > 1e-4) printf("\n  %s: float32 grad %s: relative error %.3g", dir, m->params[i].name, worst / mx);
            CU_ASSERT_TRUE(worst / mx <= 1e-4);
            free(fp[i]);
            free(fg[i]);
        }
        free(fp); free(fg); free(fx); free(fs);
    }
    for (int i = 0; i < m->n_params; i++) { free(p[i]); free(g[i]); }
    free(p); free(g); free(x); free(labels); free(scores_ref);
    snn_ir_module_free(m);
out:
    free(src);
    free(meta);
    snn_arena_free(a);
    return checked;
}

static void test_torch_fixtures(void) {
    DIR *dd = opendir(FIXTURES);
    if (!dd) { printf("\n  (no %s: skipped)\n", FIXTURES); return; }
    char *names[64];
    int n = 0;
    for (struct dirent *e; (e = readdir(dd)) && n < 64;) {
        if (e->d_name[0] == '.') continue;
        char path[1024];
        snprintf(path, sizeof path, FIXTURES "/%s/model.snn", e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fclose(f);
        snprintf(path, sizeof path, FIXTURES "/%s/x.f32", e->d_name);
        if (!(f = fopen(path, "rb"))) continue;
        fclose(f);
        names[n++] = strdup(e->d_name);
    }
    closedir(dd);
    int cases = 0, grads = 0;
    for (int i = 0; i < n; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, FIXTURES "/%s", names[i]);
        for (int opt = 0; opt < 2; opt++) grads += check_case(dir, opt);
        cases++;
        free(names[i]);
    }
    CU_ASSERT_TRUE(cases >= 5);
    CU_ASSERT_TRUE(grads >= 4 * 2 * cases);
}

void test_autodiff_torch_register(void) {
    CU_pSuite s = CU_add_suite("autodiff_torch", NULL, NULL);
    CU_add_test(s, "interpreted gradients equal PyTorch's on every fixture", test_torch_fixtures);
}
