/* trajcheck.c: replays the 20-step Tutorial 5 training trajectory fixture through a model object.
 *
 * tests/reference/fixtures/trajectory/ (written by tests/reference/gen_fixtures.py) holds the
 * initial weights of the 784-1000-10 Tutorial 5 network, the training-set indices of 20
 * batches of 128 (batch_order.txt) and the loss PyTorch computed on each batch before its Adam
 * update (losses.txt). This program is linked with a model object exporting `snn_model`
 * (runtime/snnrt.h) and, like tests/e2e/gradcheck.c, uses nothing else of the runtime: it
 * reads Fashion-MNIST itself (IDX through zlib, pixel / 255), calls forward_backward on each
 * batch and applies Adam exactly as torch.optim.Adam (1.13, single-tensor path) does:
 *     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g
 *     p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 * It therefore checks the model's loss and gradients at full scale over a real trajectory;
 * the runtime's own optimizer and data path are checked when the trainer replays the same
 * fixture (issue 3: --init-from / --batch-order).
 *
 *     trajcheck [--data DIR] [--first N] [--tol-first X] [--tol-all Y] [--quiet] TRAJ_DIR
 *
 * Criterion: the first N losses within relative error X, all within Y (defaults N = 3,
 * X = 1e-3, Y = 2 %). Issue 3 asked for N = 10, which no float32 implementation can promise:
 * the trajectory is chaotic in float32, because Adam's first steps are sign-like
 * (m / sqrt(v) = sign(g) at step 1), so gradient elements that are tiny by cancellation get
 * full lr-sized updates whose sign is decided by rounding. Measured relative deviations from
 * losses.txt of correct implementations (tests/e2e/handmade_model.c built four ways, -O2,
 * -march=native with and without FMA contraction, -ffast-math; snnc's own code at -O0 and
 * -O1; PyTorch float64, hoisted and re-rounded variants and 8 runs whose initial weights are
 * nudged by 1 ulp, losses_noise.txt), by step:
 *     step 0: <= 2e-6   1: <= 2e-5   2: <= 6.3e-5   3: <= 7.2e-4   4: <= 1.1e-3
 *     5: <= 1.8e-3      9: <= 2.6e-3   all 20: <= 1.1e-2 (snnc -O1 at step 19)
 * while deliberately wrong models (HM_BUG=1 surrogate pi/2, HM_BUG=2 reset not detached) are
 * 9e-3 and 1.4e-2 off at step 1 and up to 4e-2 and 6e-2 later. So N = 3 at 1e-3 (a 16x margin
 * over rounding) is what catches wrong gradients; 2 % for all 20 (issue 3's number) has only
 * about a 2x margin late in the run. Every line prints the step's noise floor from
 * losses_noise.txt.
 * Exit status: 0 pass, 1 mismatch, 2 unusable fixture, data or model.
 */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "snnrt.h"

#define MAXB 64

static void *xmalloc(size_t n)
{
    size_t r = (n + 63) / 64 * 64;
    void *p = aligned_alloc(64, r > 0 ? r : 64);
    if (!p) { fprintf(stderr, "trajcheck: out of memory\n"); exit(2); }
    return p;
}

static float *read_f32(const char *dir, const char *name, int64_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.f32", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "trajcheck: cannot open %s\n", path); return NULL; }
    float *p = xmalloc((size_t)n * 4);
    size_t got = fread(p, 4, (size_t)n, f);
    int extra = fgetc(f) != EOF;
    fclose(f);
    if ((int64_t)got != n || extra) {
        fprintf(stderr, "trajcheck: %s: expected exactly %lld bytes\n", path, (long long)n * 4);
        free(p);
        return NULL;
    }
    return p;
}

/* Reads an IDX file (gzip or raw) of unsigned bytes; returns the data and its dims. */
static unsigned char *read_idx(const char *dir, const char *stem, int64_t dims[3], int *ndim)
{
    char path[4096];
    gzFile g = NULL;
    const char *suffix[] = { ".gz", "" };
    for (int i = 0; i < 2 && !g; i++) {
        snprintf(path, sizeof path, "%s/%s%s", dir, stem, suffix[i]);
        FILE *t = fopen(path, "rb");
        if (t) { fclose(t); g = gzopen(path, "rb"); }
    }
    if (!g) { fprintf(stderr, "trajcheck: %s/%s[.gz] not found\n", dir, stem); return NULL; }
    unsigned char h[4];
    if (gzread(g, h, 4) != 4 || h[0] || h[1] || h[2] != 8 || h[3] < 1 || h[3] > 3) {
        fprintf(stderr, "trajcheck: %s: not an IDX file of unsigned bytes\n", path);
        gzclose(g);
        return NULL;
    }
    *ndim = h[3];
    int64_t n = 1;
    for (int d = 0; d < *ndim; d++) {
        unsigned char b[4];
        if (gzread(g, b, 4) != 4) { gzclose(g); return NULL; }
        dims[d] = ((int64_t)b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
        n *= dims[d];
    }
    unsigned char *data = malloc((size_t)n);
    if (!data || gzread(g, data, (unsigned)n) != (int)n) {
        fprintf(stderr, "trajcheck: %s: truncated\n", path);
        gzclose(g);
        free(data);
        return NULL;
    }
    gzclose(g);
    return data;
}

static double meta_num(const char *dir, const char *key, double dflt)
{
    char path[4096], line[1024];
    snprintf(path, sizeof path, "%s/meta.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) return dflt;
    double v = dflt;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, key, kl) && (line[kl] == ' ' || line[kl] == '=')) {
            char *eq = strchr(line, '=');
            if (eq) v = strtod(eq + 1, NULL);
        }
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *data = "/usr/share/datasets/fashion-mnist";
    int first = 3, quiet = 0;
    double tol_first = 1e-3, tol_all = 0.02;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--data") && i + 1 < argc) data = argv[++i];
        else if (!strcmp(argv[i], "--first") && i + 1 < argc) first = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tol-first") && i + 1 < argc) tol_first = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--tol-all") && i + 1 < argc) tol_all = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--quiet")) quiet = 1;
        else if (argv[i][0] == '-') {
            fprintf(stderr, "usage: trajcheck [--data DIR] [--first N] [--tol-first X] "
                            "[--tol-all Y] [--quiet] TRAJ_DIR\n");
            return 2;
        } else dir = argv[i];
    }
    if (!dir) { fprintf(stderr, "usage: trajcheck [options] TRAJ_DIR\n"); return 2; }
    const snn_model_desc *m = &snn_model;
    if (m->abi_version != SNN_ABI_VERSION) { fprintf(stderr, "trajcheck: ABI mismatch\n"); return 2; }
    const int64_t B = (int64_t)meta_num(dir, "batch", 128), T = (int64_t)meta_num(dir, "steps", 25);
    const double lr = meta_num(dir, "lr", 5e-4), b1 = meta_num(dir, "beta1", 0.9);
    const double b2 = meta_num(dir, "beta2", 0.999), eps = meta_num(dir, "eps", 1e-8);
    const int64_t I = m->n_inputs, O = m->n_classes;

    /* reference losses and noise floor */
    double ref[MAXB], noise[MAXB];
    int nb = 0;
    char path[4096], line[1 << 16];
    snprintf(path, sizeof path, "%s/losses.txt", dir);
    FILE *f = fopen(path, "r");
    if (!f) { fprintf(stderr, "trajcheck: cannot open %s\n", path); return 2; }
    while (nb < MAXB && fgets(line, sizeof line, f)) ref[nb++] = strtod(line, NULL);
    fclose(f);
    for (int i = 0; i < nb; i++) noise[i] = -1;
    snprintf(path, sizeof path, "%s/losses_noise.txt", dir);
    if ((f = fopen(path, "r"))) {
        while (fgets(line, sizeof line, f)) {
            int s; double a, b, c;
            if (line[0] != '#' && sscanf(line, "%d %lf %lf %lf", &s, &a, &b, &c) == 4 && s >= 0 && s < nb)
                noise[s] = c;
        }
        fclose(f);
    }
    /* batch order */
    int32_t *order = malloc(sizeof(int32_t) * (size_t)(nb * B));
    snprintf(path, sizeof path, "%s/batch_order.txt", dir);
    if (!(f = fopen(path, "r"))) { fprintf(stderr, "trajcheck: cannot open %s\n", path); return 2; }
    for (int64_t i = 0; i < nb * B; i++)
        if (fscanf(f, "%d", &order[i]) != 1) { fprintf(stderr, "trajcheck: %s: short\n", path); return 2; }
    fclose(f);
    /* data */
    int64_t di[3], dl[3];
    int ni, nl;
    unsigned char *img = read_idx(data, "train-images-idx3-ubyte", di, &ni);
    unsigned char *lab = read_idx(data, "train-labels-idx1-ubyte", dl, &nl);
    if (!img || !lab) return 2;
    if (ni != 3 || nl != 1 || di[0] != dl[0] || di[1] * di[2] != I) {
        fprintf(stderr, "trajcheck: data shape does not match the model (%lld inputs)\n", (long long)I);
        return 2;
    }
    /* params, grads, Adam state */
    int np = m->n_params;
    float **p = calloc((size_t)np, sizeof *p), **g = calloc((size_t)np, sizeof *g);
    float **mm = calloc((size_t)np, sizeof *mm), **vv = calloc((size_t)np, sizeof *vv);
    for (int i = 0; i < np; i++) {
        int64_t n = m->params[i].size;
        if (!(p[i] = read_f32(dir, m->params[i].name, n))) return 2;
        g[i] = xmalloc((size_t)n * 4);
        mm[i] = calloc((size_t)n, 4);
        vv[i] = calloc((size_t)n, 4);
    }
    float *x = xmalloc((size_t)(B * I) * 4), *scores = xmalloc((size_t)(B * O) * 4);
    int32_t *y = xmalloc((size_t)B * 4);
    void *work = xmalloc((size_t)m->work_bytes(B, T));
    int ok = 1;
    double worst_first = 0, worst_all = 0;
    printf("trajcheck %s: model %s, %d batches of %lld, T = %lld, Adam lr %g\n", dir,
           m->model_name ? m->model_name : "?", nb, (long long)B, (long long)T, lr);
    for (int it = 0; it < nb; it++) {
        for (int64_t b = 0; b < B; b++) {
            int32_t k = order[it * B + b];
            if (k < 0 || k >= di[0]) { fprintf(stderr, "trajcheck: index %d out of range\n", k); return 2; }
            for (int64_t j = 0; j < I; j++) x[b * I + j] = (float)img[(int64_t)k * I + j] / 255.0f;
            y[b] = lab[k];
        }
        snn_batch bt = { .batch = B, .steps = T, .x = x, .labels = y, .seed = 0 };
        snn_result res = { .loss = NAN, .scores = scores };
        int32_t rc = m->forward_backward((const float *const *)p, g, &bt, work, &res);
        double rel = fabs((double)res.loss - ref[it]) / fabs(ref[it]);
        double tol = it < first ? tol_first : tol_all;
        int good = rc == 0 && rel <= tol;
        ok &= good;
        if (it < first && rel > worst_first) worst_first = rel;
        if (rel > worst_all) worst_all = rel;
        if (!quiet || !good)
            printf("  %-4s step %2d loss %.9g want %.9g rel %.2e (tol %.0e; float32 noise floor %.1e)\n",
                   good ? "ok" : "FAIL", it, (double)res.loss, ref[it], rel, tol, noise[it]);
        /* Adam, as torch.optim.Adam */
        int t = it + 1;
        double bc1 = 1 - pow(b1, t), bc2s = sqrt(1 - pow(b2, t));
        float step = (float)(lr / bc1);
        for (int i = 0; i < np; i++)
            for (int64_t k = 0; k < m->params[i].size; k++) {
                float gk = g[i][k];
                mm[i][k] = mm[i][k] * (float)b1 + gk * (float)(1 - b1);
                vv[i][k] = vv[i][k] * (float)b2 + gk * gk * (float)(1 - b2);
                float denom = sqrtf(vv[i][k]) / (float)bc2s + (float)eps;
                p[i][k] += -step * (mm[i][k] / denom);
            }
    }
    printf("trajcheck %s: %s (worst relative error: first %d steps %.2e, all %.2e)\n", dir,
           ok ? "PASS" : "FAIL", first, worst_first, worst_all);
    return ok ? 0 : 1;
}
