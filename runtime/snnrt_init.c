/* snnrt_init.c: parameters before the first step.
 *
 * A descriptor is checked once (snnrt_model_check) so the rest of the runtime can trust it:
 * everything here comes from generated code or a hand-written harness, and a wrong size found
 * as a heap overflow mid-epoch is much harder to explain than a message at start-up.
 *
 * Default init is torch.nn.Linear.reset_parameters, number for number: for a seed s the trainer
 * starts from exactly the weights `torch.manual_seed(s)` and then the model's nn.Linear layers,
 * built in the model's order, would hold. The weight gets kaiming_uniform_(a = sqrt(5)), whose
 * bound gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)) is 1 / sqrt(fan_in) (torch
 * computes it through the gain in double; rounded to float, as uniform_ rounds its bounds, the
 * two agree for every fan_in up to 200000: tests/reference/gen_torchrng.py checks), and the bias
 * gets uniform_(-1 / sqrt(fan_in), 1 / sqrt(fan_in)) with the weight's fan_in. All parameters
 * draw, in descriptor order, from ONE PyTorch generator (snnrt_torchrng.c) seeded with s, as
 * torch's global generator serves the layers one after another; snnc lays a weight out as torch
 * does ([out][in], row-major), so memory order is torch's draw order. The descriptor says which
 * parameters are drawn (SNN_INIT_UNIFORM_FAN_IN, with fan_in) and which are constants
 * (SNN_INIT_CONST: learnable beta or threshold; they draw nothing, as snnTorch's Leaky
 * registers its beta from a given value). Runs that start elsewhere load their numbers
 * (--init-from DIR, DIR/<name>.f32 raw little-endian float32 as
 * tests/reference/gen_fixtures.py writes them); snnrt_params_save_dir writes that format
 * (the trainer's --dump-init).
 */
#include "snnrt_lib.h"

#include <errno.h>
#include <math.h>
#include <string.h>

int snnrt_model_check(const snn_model_desc *m, snnrt_error *err) {
    if (!m) return snnrt_fail(err, "no model descriptor");
    if (m->abi_version != SNN_ABI_VERSION)
        return snnrt_fail(err, "model ABI version %d, but this runtime implements version %d: "
                          "recompile the model with a matching snnc, or relink with a matching "
                          "libsnnrt", m->abi_version, SNN_ABI_VERSION);
    const char *name = m->model_name ? m->model_name : "(unnamed)";
    if (m->n_inputs <= 0 || m->n_classes <= 0)
        return snnrt_fail(err, "model %s: n_inputs (%lld) and n_classes (%lld) must be positive",
                          name, (long long)m->n_inputs, (long long)m->n_classes);
    if (m->n_params < 0 || (m->n_params > 0 && !m->params))
        return snnrt_fail(err, "model %s: bad parameter table", name);
    if (!m->work_bytes || !m->forward_backward || !m->forward)
        return snnrt_fail(err, "model %s: missing entry point", name);
    for (int32_t i = 0; i < m->n_params; i++) {
        const snn_param_desc *p = &m->params[i];
        if (!p->name || !p->name[0] || strchr(p->name, '/'))
            return snnrt_fail(err, "model %s: parameter %d has no usable name", name, i);
        for (int32_t j = 0; j < i; j++)
            if (strcmp(m->params[j].name, p->name) == 0)
                return snnrt_fail(err, "model %s: two parameters named %s", name, p->name);
        if (p->rank < 0 || p->rank > SNN_MAX_RANK)
            return snnrt_fail(err, "model %s: parameter %s has rank %d", name, p->name, p->rank);
        int64_t size = 1;
        for (int32_t d = 0; d < p->rank; d++) {
            if (p->shape[d] <= 0)
                return snnrt_fail(err, "model %s: parameter %s has dimension %d of size %lld",
                                  name, p->name, d, (long long)p->shape[d]);
            size *= p->shape[d];
        }
        if (size != p->size)
            return snnrt_fail(err, "model %s: parameter %s: size %lld is not the product of its "
                              "shape (%lld)", name, p->name, (long long)p->size, (long long)size);
        if (p->init != SNN_INIT_CONST && p->init != SNN_INIT_UNIFORM_FAN_IN)
            return snnrt_fail(err, "model %s: parameter %s: unknown init kind %d", name, p->name,
                              p->init);
        if (p->init == SNN_INIT_UNIFORM_FAN_IN && p->fan_in <= 0)
            return snnrt_fail(err, "model %s: parameter %s: uniform init needs fan_in > 0", name,
                              p->name);
    }
    return 0;
}

int snnrt_param_init(const snn_param_desc *p, snnrt_torch_gen *g, float *data, snnrt_error *err) {
    if (p->init == SNN_INIT_CONST) {
        for (int64_t k = 0; k < p->size; k++) data[k] = p->init_value;
        return 0;
    }
    if (p->init != SNN_INIT_UNIFORM_FAN_IN || p->fan_in <= 0)
        return snnrt_fail(err, "parameter %s: cannot initialise (init kind %d, fan_in %lld)",
                          p->name, p->init, (long long)p->fan_in);
    const double bound = 1.0 / sqrt((double)p->fan_in); /* Python: 1 / math.sqrt(fan_in) */
    snnrt_torch_uniform(g, -bound, bound, data, p->size);
    return 0;
}

int snnrt_params_init(const snn_model_desc *m, uint64_t seed, float *const *params,
                      snnrt_error *err) {
    snnrt_torch_gen g;
    snnrt_torch_seed(&g, seed);
    for (int32_t i = 0; i < m->n_params; i++)
        if (snnrt_param_init(&m->params[i], &g, params[i], err) != 0) return -1;
    return 0;
}

/* DIR/<param name>.f32, the --init-from / --dump-init file of p, opened in mode; path gets its
 * name for messages. */
static FILE *param_file(const char *dir, const snn_param_desc *p, const char *mode, char *path,
                        size_t cap) {
    snprintf(path, cap, "%s/%s.f32", dir, p->name);
    return fopen(path, mode);
}

int snnrt_params_save_dir(const snn_model_desc *m, const char *dir, const float *const *params,
                          snnrt_error *err) {
    for (int32_t i = 0; i < m->n_params; i++) {
        const snn_param_desc *p = &m->params[i];
        char path[4096];
        FILE *f = param_file(dir, p, "wb", path, sizeof path);
        if (!f) return snnrt_fail(err, "--dump-init: cannot create %s: %s", path, strerror(errno));
        int bad = 0;
        for (int64_t k = 0; k < p->size && !bad; k++) {
            uint32_t u;
            memcpy(&u, &params[i][k], 4);
            const unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8),
                                        (unsigned char)(u >> 16), (unsigned char)(u >> 24)};
            bad = fwrite(b, 1, 4, f) != 4;
        }
        if (fclose(f) != 0 || bad) return snnrt_fail(err, "--dump-init: write error on %s", path);
    }
    return 0;
}

int snnrt_params_load_dir(const snn_model_desc *m, const char *dir, float *const *params,
                          snnrt_error *err) {
    for (int32_t i = 0; i < m->n_params; i++) {
        const snn_param_desc *p = &m->params[i];
        char path[4096];
        FILE *f = param_file(dir, p, "rb", path, sizeof path);
        if (!f) return snnrt_fail(err, "--init-from: cannot open %s: %s", path, strerror(errno));
        long have = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
        rewind(f);
        if (have != (long)(p->size * 4)) {
            fclose(f);
            return snnrt_fail(err, "--init-from: %s has %ld bytes, but parameter %s needs exactly "
                              "%lld (%lld float32)", path, have, p->name,
                              (long long)(p->size * 4), (long long)p->size);
        }
        size_t got = fread(params[i], sizeof(float), (size_t)p->size, f);
        int bad = ferror(f) || (int64_t)got != p->size;
        fclose(f);
        if (bad) return snnrt_fail(err, "--init-from: read error on %s", path);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        for (int64_t k = 0; k < p->size; k++) {
            uint32_t u;
            memcpy(&u, &params[i][k], 4);
            u = __builtin_bswap32(u);
            memcpy(&params[i][k], &u, 4);
        }
#endif
    }
    return 0;
}
