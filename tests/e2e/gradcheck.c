/* gradcheck.c: checks a compiled model's loss and gradients against a PyTorch-made fixture.
 *
 * A model object compiled by snnc exports one symbol, `snn_model` (runtime/snnrt.h). This
 * program is linked with such an object (and build/libsnnrt.a for the runtime services the
 * generated code calls) in place of the runtime's trainer main, and does what the trainer's
 * first iteration does, with the fixture's numbers instead of data and random init:
 *
 *     gradcheck [--tol X] [--quiet] FIXTURE_DIR
 *
 * FIXTURE_DIR is one of tests/reference/fixtures/<case>/ written by
 * tests/reference/gen_fixtures.py: `<param>.f32` initial parameters and `grad.<param>.f32`
 * gradients (raw little-endian float32, row-major, named as the descriptor names them:
 * h.weight, h.bias, o.weight, o.bias, h.beta), `x.f32` [batch,in], `labels.i32` [batch],
 * optional `scores.f32` [batch,out] (output spike counts), and `meta.txt` (`key = value`:
 * in, out, batch, steps and the reference loss are read here).
 *
 * Checks, each printed on its own line:
 *   - the descriptor's ABI version, n_inputs and n_classes agree with the fixture;
 *   - every descriptor parameter has both files of exactly size * 4 bytes, and every
 *     grad.*.f32 in the fixture names a descriptor parameter (so none goes unchecked);
 *   - forward_backward returns 0, overwrites every gradient (they are pre-filled with NaN),
 *     and gives the loss and every gradient to relative error <= tol (default 1e-4), where
 *     for a tensor a against reference b: rel = max_i |a_i - b_i| / max(max_i |b_i|, 1e-12);
 *     the worst element is reported with its index and both values;
 *   - the output spike counts (res.scores) equal scores.f32, if present;
 *   - forward, if the model has one, gives the same loss and scores.
 * Exit status: 0 all passed, 1 a mismatch, 2 the fixture or the model could not be used.
 * The relative error is per tensor (normalised by the tensor's largest reference magnitude)
 * rather than per element, because gradient elements that are tiny by cancellation carry
 * float32 rounding of the large terms they cancel; a per-element test would flag noise.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snnrt.h"

#define TINY 1e-12

static int quiet;

/* Reads a whole file of exactly `bytes` bytes into a fresh buffer; NULL (with a message) if the
 * file is missing or its size differs. */
static void *read_exact(const char *dir, const char *name, size_t bytes, int required)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (required)
            fprintf(stderr, "gradcheck: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    void *buf = malloc(bytes ? bytes : 1);
    size_t got = fread(buf, 1, bytes, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if (got != bytes || extra) {
        fprintf(stderr, "gradcheck: %s: expected exactly %zu bytes, file is %s\n", path, bytes,
                extra ? "larger" : "smaller");
        free(buf);
        return NULL;
    }
    return buf;
}

typedef struct {
    long in, out, batch, steps;
    double loss;
    int have_loss;
} meta_t;

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r')) *--e = 0;
    return s;
}

static int read_meta(const char *dir, meta_t *m)
{
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/meta.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "gradcheck: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    memset(m, 0, sizeof *m);
    m->in = m->out = m->batch = m->steps = -1;
    while (fgets(line, sizeof line, f)) {
        char *eq = strchr(line, '=');
        if (!eq || line[0] == '#') continue;
        *eq = 0;
        char *k = trim(line), *v = trim(eq + 1);
        if (!strcmp(k, "in")) m->in = atol(v);
        else if (!strcmp(k, "out")) m->out = atol(v);
        else if (!strcmp(k, "batch")) m->batch = atol(v);
        else if (!strcmp(k, "steps")) m->steps = atol(v);
        else if (!strcmp(k, "loss")) { m->loss = strtod(v, NULL); m->have_loss = 1; }
    }
    fclose(f);
    if (m->in <= 0 || m->out <= 0 || m->batch <= 0 || m->steps <= 0 || !m->have_loss) {
        fprintf(stderr, "gradcheck: %s lacks one of in, out, batch, steps, loss\n", path);
        return -1;
    }
    return 0;
}

/* Writes the multi-index of flat element `i` of a tensor of the given shape into buf. */
static void fmt_index(char *buf, size_t n, const int64_t *shape, int rank, int64_t i)
{
    int64_t idx[SNN_MAX_RANK];
    for (int d = rank - 1; d >= 0; d--) {
        idx[d] = shape[d] ? i % shape[d] : 0;
        i = shape[d] ? i / shape[d] : 0;
    }
    size_t off = (size_t)snprintf(buf, n, "[");
    for (int d = 0; d < rank && off < n; d++)
        off += (size_t)snprintf(buf + off, n - off, d ? ",%lld" : "%lld", (long long)idx[d]);
    if (off < n) snprintf(buf + off, n - off, "]");
}

/* Compares a (computed) with b (reference); prints one line; returns 1 if within tol. */
static int compare(const char *what, const float *a, const float *b, int64_t n,
                   const int64_t *shape, int rank, double tol, double *worst_rel)
{
    double maxb = 0, maxd = -1;
    int64_t worst = 0, nonfinite = 0;
    for (int64_t i = 0; i < n; i++) {
        double bi = fabs((double)b[i]);
        if (bi > maxb) maxb = bi;
        if (!isfinite(a[i])) { if (!nonfinite++) worst = i; continue; }
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > maxd && !nonfinite) { maxd = d; worst = i; }
    }
    double denom = maxb > TINY ? maxb : TINY;
    double rel = nonfinite ? INFINITY : maxd / denom;
    int ok = rel <= tol;
    char shp[128], wi[128];
    {   /* the shape as text */
        size_t off = (size_t)snprintf(shp, sizeof shp, "[");
        for (int d = 0; d < rank && off < sizeof shp; d++)
            off += (size_t)snprintf(shp + off, sizeof shp - off, d ? ",%lld" : "%lld",
                                    (long long)shape[d]);
        if (off < sizeof shp) snprintf(shp + off, sizeof shp - off, "]");
    }
    fmt_index(wi, sizeof wi, shape, rank, worst);
    if (!ok || !quiet) {
        if (nonfinite)
            printf("  %-5s %-12s %-10s %lld non-finite elements, first at %s  FAIL\n",
                   ok ? "ok" : "FAIL", what, shp, (long long)nonfinite, wi);
        else
            printf("  %-5s %-12s %-10s rel %.2e  worst %s got %.9g want %.9g (max|ref| %.3g)\n",
                   ok ? "ok" : "FAIL", what, shp, rel, wi, (double)a[worst], (double)b[worst],
                   maxb);
    }
    if (rel > *worst_rel) *worst_rel = rel;
    return ok;
}

/* Spike counts are exact small integers: every element must agree to within 0.5. */
static int compare_counts(const char *what, const float *a, const float *b, int64_t n, int64_t cols)
{
    int64_t nbad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (!(fabsf(a[i] - b[i]) <= 0.5f)) { if (!nbad++) first = i; }
    if (nbad)
        printf("  FAIL  %-12s %lld of %lld counts differ, first [%lld,%lld] got %g want %g\n", what,
               (long long)nbad, (long long)n, (long long)(first / cols), (long long)(first % cols),
               (double)a[first], (double)b[first]);
    else if (!quiet)
        printf("  ok    %-12s all %lld output spike counts equal\n", what, (long long)n);
    return nbad == 0;
}

static void *alloc64(size_t bytes)
{
    size_t b = (bytes + 63) / 64 * 64;
    void *p = aligned_alloc(64, b ? b : 64);
    if (!p) { fprintf(stderr, "gradcheck: out of memory (%zu bytes)\n", bytes); exit(2); }
    return p;
}

static void fill_nan(float *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) p[i] = NAN;
}

int main(int argc, char **argv)
{
    double tol = 1e-4;
    const char *dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tol") && i + 1 < argc) tol = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (!strcmp(argv[i], "--help") || argv[i][0] == '-') {
            fprintf(stderr, "usage: gradcheck [--tol X] [--quiet] FIXTURE_DIR\n");
            return 2;
        } else dir = argv[i];
    }
    if (!dir) { fprintf(stderr, "usage: gradcheck [--tol X] [--quiet] FIXTURE_DIR\n"); return 2; }

    const snn_model_desc *m = &snn_model;
    meta_t meta;
    if (read_meta(dir, &meta)) return 2;
    printf("gradcheck %s: model %s (%s), %d params, batch %ld, steps %ld, tol %.1e\n", dir,
           m->model_name ? m->model_name : "?", m->source_file ? m->source_file : "?",
           m->n_params, meta.batch, meta.steps, tol);
    if (m->abi_version != SNN_ABI_VERSION) {
        fprintf(stderr, "gradcheck: model ABI version %d, harness %d\n", m->abi_version,
                SNN_ABI_VERSION);
        return 2;
    }
    if (m->n_inputs != meta.in || m->n_classes != meta.out) {
        fprintf(stderr, "gradcheck: model has %lld inputs and %lld classes, fixture %ld and %ld\n",
                (long long)m->n_inputs, (long long)m->n_classes, meta.in, meta.out);
        return 2;
    }
    if (!m->forward_backward || !m->work_bytes) {
        fprintf(stderr, "gradcheck: model lacks forward_backward or work_bytes\n");
        return 2;
    }

    /* Parameters and reference gradients, by name. */
    int np = m->n_params, bad = 0;
    float **params = calloc((size_t)np + 1, sizeof *params);
    float **grads = calloc((size_t)np + 1, sizeof *grads);
    float **ref = calloc((size_t)np + 1, sizeof *ref);
    for (int i = 0; i < np; i++) {
        const snn_param_desc *p = &m->params[i];
        int64_t n = 1;
        for (int d = 0; d < p->rank; d++) n *= p->shape[d];
        if (n != p->size) {
            fprintf(stderr, "gradcheck: descriptor param %s: size %lld but shape product %lld\n",
                    p->name, (long long)p->size, (long long)n);
            bad = 1;
            continue;
        }
        char gname[512], pname[512];
        snprintf(pname, sizeof pname, "%s.f32", p->name);
        snprintf(gname, sizeof gname, "grad.%s.f32", p->name);
        float *v = read_exact(dir, pname, (size_t)n * 4, 1);
        float *g = read_exact(dir, gname, (size_t)n * 4, 1);
        if (!v || !g) { bad = 1; continue; }
        params[i] = alloc64((size_t)n * 4);
        memcpy(params[i], v, (size_t)n * 4);
        free(v);
        ref[i] = g;
        grads[i] = alloc64((size_t)n * 4);
        fill_nan(grads[i], n);
    }
    /* Every gradient in the fixture must belong to a descriptor param. */
    DIR *dd = opendir(dir);
    if (dd) {
        struct dirent *e;
        while ((e = readdir(dd))) {
            size_t len = strlen(e->d_name);
            if (strncmp(e->d_name, "grad.", 5) || len < 10 || strcmp(e->d_name + len - 4, ".f32"))
                continue;
            int found = 0;
            for (int i = 0; i < np; i++) {
                size_t nl = strlen(m->params[i].name);
                if (nl == len - 9 && !strncmp(e->d_name + 5, m->params[i].name, nl)) found = 1;
            }
            if (!found) {
                fprintf(stderr, "gradcheck: fixture has %s but the model has no such param\n",
                        e->d_name);
                bad = 1;
            }
        }
        closedir(dd);
    }
    int64_t B = meta.batch, T = meta.steps, I = meta.in, O = meta.out;
    float *x = read_exact(dir, "x.f32", (size_t)(B * I) * 4, 1);
    int32_t *labels = read_exact(dir, "labels.i32", (size_t)B * 4, 1);
    char spath[4096];
    snprintf(spath, sizeof spath, "%s/scores.f32", dir);
    float *ref_scores = NULL;
    FILE *sf = fopen(spath, "rb");
    if (sf) {
        fclose(sf);
        ref_scores = read_exact(dir, "scores.f32", (size_t)(B * O) * 4, 1);
        if (!ref_scores) bad = 1;
    }
    if (!x || !labels) bad = 1;
    for (int64_t b = 0; labels && b < B; b++)
        if (labels[b] < 0 || labels[b] >= O) {
            fprintf(stderr, "gradcheck: label %d out of range\n", labels[b]);
            bad = 1;
        }
    if (bad) return 2;

    int64_t wb = m->work_bytes(B, T);
    if (wb < 0) { fprintf(stderr, "gradcheck: work_bytes returned %lld\n", (long long)wb); return 2; }
    void *work = alloc64((size_t)wb);
    memset(work, 0xA5, (size_t)wb); /* contents on entry are irrelevant: make them garbage */
    float *scores = alloc64((size_t)(B * O) * 4);
    fill_nan(scores, B * O);
    snn_batch batch = { .batch = B, .steps = T, .x = x, .labels = labels, .seed = 0 };
    snn_result res = { .loss = NAN, .scores = scores };

    int32_t rc = m->forward_backward((const float *const *)params, grads, &batch, work, &res);
    int ok = 1;
    double worst_rel = 0;
    if (rc != 0) {
        printf("  FAIL  forward_backward returned %d\n", rc);
        ok = 0;
    }
    float want_loss = (float)meta.loss;
    int64_t one = 1;
    ok &= compare("loss", &res.loss, &want_loss, 1, &one, 0, tol, &worst_rel);
    for (int i = 0; i < np; i++) {
        const snn_param_desc *p = &m->params[i];
        char what[300];
        snprintf(what, sizeof what, "d/%s", p->name);
        ok &= compare(what, grads[i], ref[i], p->size, p->shape, p->rank, tol, &worst_rel);
    }
    if (ref_scores) ok &= compare_counts("scores", scores, ref_scores, B * O, O);
    if (m->forward) {
        float *scores2 = alloc64((size_t)(B * O) * 4);
        fill_nan(scores2, B * O);
        snn_result r2 = { .loss = NAN, .scores = scores2 };
        memset(work, 0x5A, (size_t)wb);
        int32_t rc2 = m->forward((const float *const *)params, &batch, work, &r2);
        if (rc2 != 0) { printf("  FAIL  forward returned %d\n", rc2); ok = 0; }
        ok &= compare("fwd.loss", &r2.loss, &want_loss, 1, &one, 0, tol, &worst_rel);
        if (ref_scores) ok &= compare_counts("fwd.scores", scores2, ref_scores, B * O, O);
        free(scores2);
    }
    printf("gradcheck %s: %s (worst relative error %.2e, tolerance %.1e)\n", dir,
           ok ? "PASS" : "FAIL", worst_rel, tol);
    for (int i = 0; i < np; i++) { free(params[i]); free(grads[i]); free(ref[i]); }
    free(params); free(grads); free(ref); free(x); free(labels); free(ref_scores); free(work);
    free(scores);
    return ok ? 0 : 1;
}
