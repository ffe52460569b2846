/* toy_gradcheck.c: a harness with its own main, linked with toy_model.c and libsnnrt.a.
 *
 * Two things are checked: that a program defining main links against the runtime library
 * without pulling in the trainer's main (trainer_main.o stays out of the link), and that the
 * toy model's analytic gradient (which check_trainer.sh then trains with) agrees with central
 * finite differences of its loss. Exit 0 if all checked coordinates agree.
 */
#include "snnrt_lib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
    const snn_model_desc *m = &snn_model;
    snnrt_error err = {{0}};
    if (snnrt_model_check(m, &err) != 0) {
        fprintf(stderr, "toy_gradcheck: %s\n", err.msg);
        return 1;
    }
    enum { B = 16 };
    float *params[8], *grads[8];
    for (int i = 0; i < m->n_params; i++) {
        params[i] = calloc((size_t)m->params[i].size, 4);
        grads[i] = calloc((size_t)m->params[i].size, 4);
    }
    snnrt_params_init(m, 3, params, &err);
    params[2][0] = 1.3f; /* a scale other than 1, so its gradient path is exercised */
    float *x = malloc(sizeof(float) * B * (size_t)m->n_inputs), scores[B * 10];
    int32_t labels[B];
    snnrt_rng r;
    snnrt_rng_seed(&r, 11, 0);
    for (int64_t i = 0; i < B * m->n_inputs; i++) x[i] = snnrt_rng_float(&r);
    for (int b = 0; b < B; b++) labels[b] = (int32_t)snnrt_rng_below(&r, 10);
    void *work = snnrt_alloc((size_t)m->work_bytes(B, 1), "work", &err);
    snn_batch bt = {B, 1, x, labels, 0, 0};
    snn_result res = {0, scores};
    if (m->forward_backward((const float *const *)params, grads, &bt, work, &res) != 0) return 1;
    const float loss0 = res.loss;
    int checked = 0, bad = 0;
    double worst = 0;
    for (int i = 0; i < m->n_params; i++) {
        const int64_t n = m->params[i].size;
        const int64_t picks = n < 40 ? n : 40;
        for (int64_t k = 0; k < picks; k++) {
            int64_t j = n < 40 ? k : (int64_t)snnrt_rng_below(&r, (uint64_t)n);
            const float keep = params[i][j], h = 1e-2f;
            params[i][j] = keep + h;
            m->forward((const float *const *)params, &bt, work, &res);
            const double up = res.loss;
            params[i][j] = keep - h;
            m->forward((const float *const *)params, &bt, work, &res);
            const double down = res.loss;
            params[i][j] = keep;
            const double fd = (up - down) / (2.0 * h), g = grads[i][j];
            const double e = fabs(fd - g) / (1e-3 + fabs(g));
            if (e > worst) worst = e;
            if (fabs(fd - g) > 2e-4 + 2e-2 * fabs(g)) {
                if (bad < 5)
                    fprintf(stderr, "toy_gradcheck: %s[%lld]: analytic %.6g, finite difference %.6g\n",
                            m->params[i].name, (long long)j, g, fd);
                bad++;
            }
            checked++;
        }
    }
    printf("toy_gradcheck: loss %.6f, %d coordinates checked, %d bad, worst relative error %.2g\n",
           loss0, checked, bad, worst);
    return bad ? 1 : 0;
}
