/* snnrt_train.c: the training loop every generated trainer runs (snnrt_run).
 *
 * The generated object supplies the mathematics (forward_backward, forward); this file owns
 * everything around it, in the order a run meets it:
 *
 *   1. settings: the model's `train` block, overridden by the command line;
 *   2. data: train and test splits (snnrt_data.c), checked against the model's sizes;
 *   3. parameters: --load checkpoint, else --init-from DIR, else the descriptor's init;
 *   4. epochs: an order (shuffled per epoch, or --batch-order), then per iteration: gather
 *      the batch, forward_backward, check the loss is finite, optimizer step, log;
 *      a progress line on stderr every --progress iterations (loss and batch accuracy averaged
 *      over the line's window, iterations per second, ETA of the whole run);
 *   5. end of epoch: the running training loss and accuracy (over the epoch's batches, from
 *      the forward pass before each update), a full test-set evaluation (the last partial test
 *      batch included), a checkpoint if --save;
 *   6. end: peak RSS, and with --json one JSON object as the last line of stdout.
 *
 * SIGINT/SIGTERM (through opt->stop, set by trainer_main's handler) stop training after the
 * current iteration, with a checkpoint if --save. A NaN or infinite loss stops training at once
 * with the epoch and iteration in the message; no checkpoint is written after it, so the last
 * one written (atomically, snnrt_ckpt.c) is the last good state. Every failure returns an
 * SNNRT_EXIT_* status and a message; nothing here exits, so a test can call snnrt_run many
 * times in one process.
 */
#include "snnrt_kernels.h"
#include "snnrt_lib.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const snn_model_desc *m;
    int64_t batch, steps;
    float **params, **grads;
    void *work;
    float *x, *scores;
    float *x_stage; /* the next batch's gather, threads > 1 (gather_task) */
    int32_t *labels;
    int64_t *order; /* [n_train] or NULL */
    snnrt_shards shards; /* row blocks on threads (snnrt_shard.c); work and grads are block 0's */
} trainer;

typedef struct {
    int64_t epochs, batch, steps;
    uint64_t seed;
    const char *data_dir;
    snnrt_optim_config opt;
} settings;

static void trainer_free(trainer *t) {
    if (t->shards.m) snnrt_shards_free(&t->shards);
    for (int32_t i = 0; t->params && i < t->m->n_params; i++) snnrt_free(t->params[i]);
    for (int32_t i = 0; t->grads && i < t->m->n_params; i++) snnrt_free(t->grads[i]);
    snnrt_free(t->params);
    snnrt_free(t->grads);
    snnrt_free(t->work);
    snnrt_free(t->x);
    snnrt_free(t->x_stage);
    snnrt_free(t->scores);
    snnrt_free(t->labels);
    snnrt_free(t->order);
}

/* The next training batch's gather, as the optimizer step's side task (snnrt_optim_step_with):
 * its rows are scattered over the data set and arrive from memory at their own pace, so one
 * thread gathers them while the other starts the update. Tutorial 5, 2 threads: the gather had
 * taken 65 us of a 2.6 ms iteration on the main thread alone, the worker waiting. */
typedef struct {
    const snnrt_split *split;
    const int64_t *idx;
    int64_t n;
    float *x;
    int32_t *labels;
    float *stage; /* NULL: straight into x */
} gather_job;

/* With more than one thread every member's kernels read x, so its lines sit in the other
 * core's caches too, and converting straight into it made each store wait for that core to
 * give its line up: Tutorial 5 at 2 threads, 74-80 us a batch. Converted into a buffer of this
 * thread's own and then copied over (a copy writes whole lines): 29-33 + 12-14 us. */
static void gather_task(void *ctx) {
    const gather_job *g = ctx;
    if (!g->stage) {
        snnrt_gather(g->split, g->idx, g->n, g->x, g->labels);
        return;
    }
    snnrt_gather(g->split, g->idx, g->n, g->stage, g->labels);
    memcpy(g->x, g->stage, (size_t)(g->n * g->split->dim) * sizeof(float));
}

/* Evaluates the whole split in file order, batches of t->batch, the last one partial.
 * *loss is the mean over examples (each batch's loss weighted by its rows; NaN if any batch's
 * loss was not finite), *acc the fraction predicted right. */
static void evaluate(trainer *t, const snnrt_split *s, uint64_t seed, int64_t epoch, double *loss,
                     double *acc) {
    const snn_model_desc *m = t->m;
    int64_t correct = 0, nb = snnrt_n_batches(s->n, t->batch, 0);
    double loss_sum = 0.0;
    int64_t *idx = (int64_t *)t->order; /* scratch: at least t->batch long */
    for (int64_t b = 0; b < nb; b++) {
        const int64_t lo = b * t->batch, rows = s->n - lo < t->batch ? s->n - lo : t->batch;
        for (int64_t r = 0; r < rows; r++) idx[r] = lo + r;
        snnrt_gather(s, idx, rows, t->x, t->labels);
        snn_batch bt = {rows, t->steps, t->x, t->labels, snnrt_batch_seed(seed, epoch, b, 1), 0};
        snn_result res = {0.0f, t->scores};
        int32_t rc = snnrt_shards_forward(&t->shards, (const float *const *)t->params, &bt, &res);
        loss_sum += (rc != 0 || !isfinite(res.loss)) ? NAN : (double)res.loss * (double)rows;
        correct += snnrt_count_correct(t->scores, t->labels, rows, m->n_classes);
    }
    *loss = s->n > 0 ? loss_sum / (double)s->n : NAN;
    *acc = s->n > 0 ? (double)correct / (double)s->n : 0.0;
}

/* Prints a human-readable line to f and, if tee (--log FILE) is open, to tee as well. */
static void say(FILE *f, FILE *tee, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(FILE *f, FILE *tee, const char *fmt, ...) {
    char line[2048]; /* the longest line printed is a few hundred bytes */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fputs(line, f);
    fflush(f);
    if (tee) {
        fputs(line, tee);
        fflush(tee);
    }
}

static void fmt_duration(char *buf, size_t cap, double s) {
    if (!isfinite(s) || s < 0) {
        snprintf(buf, cap, "?");
        return;
    }
    long long t = (long long)(s + 0.5);
    if (t >= 3600) snprintf(buf, cap, "%lldh%02lldm%02llds", t / 3600, t / 60 % 60, t % 60);
    else if (t >= 60) snprintf(buf, cap, "%lldm%02llds", t / 60, t % 60);
    else snprintf(buf, cap, "%llds", t);
}

static void json_num(FILE *f, const char *key, double v) {
    if (isfinite(v)) fprintf(f, ", \"%s\": %.9g", key, v);
    else fprintf(f, ", \"%s\": null", key);
}

static void json_str(FILE *f, const char *key, const char *s) {
    fprintf(f, ", \"%s\": \"", key);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if ((unsigned char)*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

typedef struct {
    const char *status;
    double test_acc, test_loss, train_loss, train_acc, epoch_seconds, eval_seconds;
    double first_loss, last_loss;
    int64_t iters, epochs, iters_last_epoch;
} summary;

static void print_json(FILE *out, const snn_model_desc *m, const settings *s, const summary *r,
                       int64_t n_params) {
    fprintf(out, "{\"status\": \"%s\"", r->status);
    json_str(out, "model", m->model_name);
    json_num(out, "test_accuracy", r->test_acc);
    json_num(out, "test_loss", r->test_loss);
    json_num(out, "train_loss", r->train_loss);
    json_num(out, "train_accuracy", r->train_acc);
    json_num(out, "epoch_seconds", r->epoch_seconds);
    json_num(out, "eval_seconds", r->eval_seconds);
    fprintf(out, ", \"iters\": %lld, \"iters_last_epoch\": %lld, \"epochs\": %lld",
            (long long)r->iters, (long long)r->iters_last_epoch, (long long)r->epochs);
    json_num(out, "ms_per_iter",
             r->iters_last_epoch > 0 ? 1e3 * r->epoch_seconds / (double)r->iters_last_epoch : NAN);
    json_num(out, "first_loss", r->first_loss);
    json_num(out, "last_loss", r->last_loss);
    fprintf(out, ", \"batch\": %lld, \"steps\": %lld", (long long)s->batch, (long long)s->steps);
    json_num(out, "lr", s->opt.lr);
    json_str(out, "optimizer", snnrt_optim_name(s->opt.kind));
    fprintf(out, ", \"seed\": %" PRIu64 ", \"threads\": %d, \"params\": %lld", s->seed,
            snnrt_get_threads(), (long long)n_params);
    json_num(out, "peak_rss_mb", (double)snnrt_peak_rss_bytes() / (1024.0 * 1024.0));
    fprintf(out, "}\n");
    fflush(out);
}

int snnrt_run(const snn_model_desc *m, const snnrt_options *o, FILE *out, FILE *log,
              snnrt_error *err) {
    if (snnrt_model_check(m, err) != 0) return SNNRT_EXIT_ERROR;
    const snn_train_defaults *d = &m->defaults;
    settings s = {0};
    s.data_dir = o->data_dir ? o->data_dir : d->data_dir;
    s.epochs = o->epochs > 0 ? o->epochs : (d->epochs > 0 ? d->epochs : 1);
    s.batch = o->batch > 0 ? o->batch : d->batch;
    s.steps = o->steps > 0 ? o->steps : (d->steps > 0 ? d->steps : 1);
    s.seed = o->has_seed ? o->seed : d->seed;
    s.opt = (snnrt_optim_config){
        .kind = d->optimizer,
        .lr = o->has_lr ? o->lr : snnrt_float_decimal(d->lr),
        .beta1 = snnrt_float_decimal(d->beta1),
        .beta2 = snnrt_float_decimal(d->beta2),
        .eps = snnrt_float_decimal(d->eps),
        .weight_decay = snnrt_float_decimal(d->weight_decay),
        .momentum = snnrt_float_decimal(d->momentum),
    };
    if (!s.data_dir || !*s.data_dir) {
        snnrt_fail(err, "no data directory: the model names none, give --data DIR");
        return SNNRT_EXIT_USAGE;
    }
    if (o->threads > 0) snnrt_set_threads((int32_t)o->threads);

    int status = SNNRT_EXIT_ERROR;
    trainer t = {.m = m};
    snnrt_split train = {0}, test = {0};
    snnrt_batch_order bo = {0};
    snnrt_optim opt = {0};
    FILE *loss_log = NULL, *tee = NULL;
    summary r = {.status = "ok", .test_acc = NAN, .test_loss = NAN, .train_loss = NAN,
                 .train_acc = NAN, .epoch_seconds = NAN, .eval_seconds = NAN,
                 .first_loss = NAN, .last_loss = NAN};
    int64_t n_params_total = 0;
    for (int32_t i = 0; i < m->n_params; i++) n_params_total += m->params[i].size;

    if (o->log_file && !(tee = fopen(o->log_file, "a"))) {
        snnrt_fail(err, "--log %s: %s", o->log_file, strerror(errno));
        goto done;
    }

    if (o->save) { /* fail now, not after the first epoch */
        char d[4096];
        snprintf(d, sizeof d, "%s", o->save);
        char *slash = strrchr(d, '/');
        const char *dir = slash ? (slash == d ? "/" : (*slash = '\0', d)) : ".";
        if (access(dir, W_OK) != 0) {
            snnrt_fail(err, "--save %s: cannot write in directory %s: %s", o->save, dir,
                       strerror(errno));
            goto done;
        }
    }

    /* ---- data */
    double t0 = snnrt_now();
    if (snnrt_split_load(s.data_dir, "t10k", m->n_inputs, m->n_classes, &test, err) != 0)
        goto done;
    if (!o->eval_only &&
        snnrt_split_load(s.data_dir, "train", m->n_inputs, m->n_classes, &train, err) != 0)
        goto done;
    if (o->batch_order) {
        if (snnrt_batch_order_read(o->batch_order, train.n, &bo, err) != 0) goto done;
        if (o->batch > 0 && o->batch != bo.batch) {
            snnrt_fail(err, "--batch %lld, but the batches in --batch-order %s have %lld examples",
                       (long long)o->batch, o->batch_order, (long long)bo.batch);
            status = SNNRT_EXIT_USAGE;
            goto done;
        }
        s.batch = bo.batch;
    }
    if (s.batch <= 0) {
        snnrt_fail(err, "no batch size: the model gives none, use --batch N");
        status = SNNRT_EXIT_USAGE;
        goto done;
    }
    if (test.n == 0) {
        snnrt_fail(err, "%s: the test set is empty", test.images_path);
        goto done;
    }
    const int64_t iters_full = o->eval_only ? 0
                               : bo.idx ? bo.n_batches
                                        : snnrt_n_batches(train.n, s.batch, 1);
    if (!o->eval_only && iters_full == 0) {
        snnrt_fail(err, "%s: %lld training examples, fewer than one batch of %lld",
                   train.images_path, (long long)train.n, (long long)s.batch);
        goto done;
    }
    const int64_t iters_per_epoch =
        o->max_iters > 0 && o->max_iters < iters_full ? o->max_iters : iters_full;

    say(out, tee, "model %s (%s): %d tensors, %lld parameters; loss %s, metric %s\n",
        m->model_name ? m->model_name : "?", m->source_file ? m->source_file : "?",
        m->n_params, (long long)n_params_total, m->loss_name ? m->loss_name : "?",
        m->metric_name ? m->metric_name : "?");
    say(out, tee, "data %s: %lld train, %lld test, %dx%d (%.2f s to load)\n", s.data_dir,
        (long long)train.n, (long long)test.n, test.rows, test.cols, snnrt_now() - t0);
    if (!o->eval_only)
        say(out, tee, "training: %lld epoch%s x %lld iterations%s, batch %lld, %lld steps, %s lr "
            "%g, seed %" PRIu64 ", %d threads\n", (long long)s.epochs, s.epochs > 1 ? "s" : "",
            (long long)iters_per_epoch, bo.idx ? " (--batch-order)" : "", (long long)s.batch,
            (long long)s.steps, snnrt_optim_name(s.opt.kind), s.opt.lr, s.seed,
            snnrt_get_threads());
    fflush(out);

    /* ---- buffers and parameters */
    const int32_t np = m->n_params;
    t.batch = s.batch;
    t.steps = s.steps;
    t.params = snnrt_alloc(sizeof(float *) * (size_t)(np ? np : 1), "parameter table", err);
    t.grads = snnrt_alloc(sizeof(float *) * (size_t)(np ? np : 1), "gradient table", err);
    if (!t.params || !t.grads) goto done;
    int64_t *sizes = snnrt_alloc(sizeof(int64_t) * (size_t)(np ? np : 1), "sizes", err);
    if (!sizes) goto done;
    for (int32_t i = 0; i < np; i++) {
        sizes[i] = m->params[i].size;
        if (!(t.params[i] = snnrt_alloc((size_t)sizes[i] * 4, m->params[i].name, err)) ||
            !(t.grads[i] = snnrt_alloc((size_t)sizes[i] * 4, m->params[i].name, err))) {
            snnrt_free(sizes);
            goto done;
        }
    }
    int orc = snnrt_optim_init(&opt, &s.opt, np, sizes, err);
    snnrt_free(sizes);
    if (orc != 0) goto done;

    int64_t start_epoch = 0, global_iter = 0;
    if (o->load) {
        snnrt_ckpt_meta meta;
        if (snnrt_ckpt_load(o->load, m, t.params, &opt, &meta, err) != 0) goto done;
        start_epoch = meta.epochs_done;
        global_iter = meta.iters_done;
        say(out, tee, "loaded %s: after %lld epochs, %lld iterations%s\n", o->load,
            (long long)meta.epochs_done, (long long)meta.iters_done,
            meta.opt_restored ? ", optimizer state restored" : ", fresh optimizer state");
    } else if (o->init_from) {
        if (snnrt_params_load_dir(m, o->init_from, t.params, err) != 0) goto done;
        say(out, tee, "initial parameters from %s\n", o->init_from);
    } else {
        if (snnrt_params_init(m, s.seed, t.params, err) != 0) goto done;
    }
    if (o->dump_init) { /* the starting point, in the --init-from and --batch-order formats */
        char path[4096];
        snprintf(path, sizeof path, "%s/batch_order.txt", o->dump_init);
        int64_t *ord = bo.idx ? bo.idx : snnrt_alloc((size_t)train.n * 8, "order", err);
        if (!ord) goto done;
        if (!bo.idx) snnrt_epoch_order(s.seed, start_epoch, train.n, ord);
        int drc = snnrt_params_save_dir(m, o->dump_init, (const float *const *)t.params, err);
        if (drc == 0) drc = snnrt_batch_order_write(path, ord, iters_full, s.batch, err);
        if (!bo.idx) snnrt_free(ord);
        if (drc != 0) goto done;
        say(out, tee, "initial parameters and epoch %lld's batch order written to %s\n",
            (long long)start_epoch, o->dump_init);
        status = SNNRT_EXIT_OK;
        goto done;
    }

    int64_t wb = m->work_bytes(s.batch, s.steps);
    const int64_t last_test = test.n % s.batch;
    if (last_test > 0) {
        int64_t wl = m->work_bytes(last_test, s.steps);
        if (wl > wb) wb = wl;
    }
    if (wb < 0) {
        snnrt_fail(err, "model %s: work_bytes(%lld, %lld) = %lld", m->model_name,
                   (long long)s.batch, (long long)s.steps, (long long)wb);
        goto done;
    }
    const int64_t order_len = train.n > s.batch ? train.n : s.batch;
    if (!(t.work = snnrt_alloc((size_t)wb, "work buffer", err)) ||
        !(t.x = snnrt_alloc((size_t)(s.batch * m->n_inputs) * 4, "input batch", err)) ||
        !(t.scores = snnrt_alloc((size_t)(s.batch * m->n_classes) * 4, "scores", err)) ||
        !(t.labels = snnrt_alloc((size_t)s.batch * 4, "labels", err)) ||
        !(t.order = snnrt_alloc((size_t)order_len * 8, "order", err)) ||
        (snnrt_get_threads() > 1 &&
         !(t.x_stage = snnrt_alloc((size_t)(s.batch * m->n_inputs) * 4, "input batch", err))))
        goto done;
    if (snnrt_shards_init(&t.shards, m, snnrt_get_threads(), s.batch, s.steps, t.grads, t.work,
                          err) != 0)
        goto done;
    if (t.shards.n > 1)
        say(out, tee, "threads: each batch runs as %d row blocks of about %lld rows in parallel\n",
            (int)t.shards.n, (long long)((s.batch + t.shards.n - 1) / t.shards.n));

    /* ---- evaluation only */
    if (o->eval_only) {
        double e0 = snnrt_now();
        evaluate(&t, &test, s.seed, start_epoch, &r.test_loss, &r.test_acc);
        r.eval_seconds = snnrt_now() - e0;
        say(out, tee, "test: loss %.4f, accuracy %.2f%% (%lld examples, %.2f s)\n", r.test_loss,
            100.0 * r.test_acc, (long long)test.n, r.eval_seconds);
        status = SNNRT_EXIT_OK;
        goto done;
    }

    if (o->loss_log && !(loss_log = fopen(o->loss_log, "w"))) {
        snnrt_fail(err, "--loss-log %s: %s", o->loss_log, strerror(errno));
        goto done;
    }

    /* ---- training */
    const char *last_ckpt = NULL;
    int64_t last_ckpt_iter = 0;
    const double run_start = snnrt_now();
    int64_t run_iters = 0;
    snnrt_profile_on = o->profile;
    snnrt_profile_reset();
    for (int64_t e = 0; e < s.epochs; e++) {
        const int64_t epoch = start_epoch + e;
        if (!bo.idx) snnrt_epoch_order(s.seed, epoch, train.n, t.order);
        const double ep0 = snnrt_now();
        double loss_sum = 0.0, win_loss = 0.0, win_t0 = ep0;
        int64_t correct = 0, win_correct = 0, win_n = 0;
        bool gathered = false; /* this iteration's batch came in during the last step */
        for (int64_t it = 0; it < iters_per_epoch; it++) {
            const double prof_it0 = snnrt_profile_now();
            const int64_t *idx = bo.idx ? bo.idx + it * s.batch : t.order + it * s.batch;
            if (!gathered) snnrt_gather(&train, idx, s.batch, t.x, t.labels);
            snn_batch bt = {s.batch, s.steps, t.x, t.labels,
                            snnrt_batch_seed(s.seed, epoch, it, 0), 0};
            snn_result res = {0.0f, t.scores};
            int32_t rc = snnrt_shards_forward_backward(&t.shards, (const float *const *)t.params,
                                                       &bt, &res);
            if (loss_log) fprintf(loss_log, "%.9g\n", (double)res.loss);
            if (rc != 0 || !isfinite(res.loss)) {
                char ck[1200];
                if (!o->save) snprintf(ck, sizeof ck, "no checkpoint (no --save)");
                else if (last_ckpt)
                    snprintf(ck, sizeof ck, "the last good checkpoint %s (after iteration %lld) "
                             "is kept", last_ckpt, (long long)last_ckpt_iter);
                else snprintf(ck, sizeof ck, "no checkpoint had been written yet; %s is unchanged",
                              o->save);
                const char *what = isnan(res.loss)   ? "NaN"
                                   : isinf(res.loss) ? "infinite"
                                                     : "not finite (forward_backward returned an error)";
                snnrt_fail(err, "training loss is %s at epoch %lld, iteration %lld (iteration "
                           "%lld overall); stopped, %s", what, (long long)(epoch + 1),
                           (long long)(it + 1), (long long)(global_iter + 1), ck);
                r.status = "nonfinite_loss";
                r.iters = run_iters;
                r.last_loss = res.loss;
                status = SNNRT_EXIT_NONFINITE;
                goto done;
            }
            /* this batch's labels are read before the step gathers the next one over them */
            const int64_t c = snnrt_count_correct(t.scores, t.labels, s.batch, m->n_classes);
            gathered = it + 1 < iters_per_epoch;
            gather_job next = {&train, idx + s.batch, s.batch, t.x, t.labels, t.x_stage};
            const double prof_opt0 = snnrt_profile_now();
            snnrt_optim_step_with(&opt, t.params, (const float *const *)t.grads,
                                  gathered ? gather_task : NULL, &next);
            if (snnrt_profile_on) {
                const double now = snnrt_now();
                snnrt_profile_add(0, SNNRT_PROF_OPTIM, now - prof_opt0);
                snnrt_profile_add(0, SNNRT_PROF_ITER, now - prof_it0);
            }
            global_iter++;
            run_iters++;
            correct += c;
            loss_sum += res.loss;
            win_loss += res.loss;
            win_correct += c;
            win_n++;
            if (run_iters == 1) r.first_loss = res.loss;
            r.last_loss = res.loss;

            if (o->save && o->save_every > 0 && global_iter % o->save_every == 0) {
                snnrt_ckpt_meta meta = {epoch, global_iter, s.seed, 0};
                if (snnrt_ckpt_save(o->save, m, (const float *const *)t.params, &opt, &meta, err))
                    goto done;
                last_ckpt = o->save;
                last_ckpt_iter = global_iter;
            }
            if (o->stop && *o->stop) {
                char ck[1200] = "no checkpoint (no --save)";
                if (o->save) {
                    snnrt_ckpt_meta meta = {epoch, global_iter, s.seed, 0};
                    if (snnrt_ckpt_save(o->save, m, (const float *const *)t.params, &opt, &meta,
                                        err))
                        goto done;
                    snprintf(ck, sizeof ck, "checkpoint %s saved", o->save);
                }
                snnrt_fail(err, "interrupted at epoch %lld, iteration %lld (iteration %lld "
                           "overall); %s", (long long)(epoch + 1), (long long)(it + 1),
                           (long long)global_iter, ck);
                r.status = "interrupted";
                r.iters = run_iters;
                status = SNNRT_EXIT_INTERRUPTED;
                goto done;
            }
            if (o->progress_every > 0 &&
                ((it + 1) % o->progress_every == 0 || it + 1 == iters_per_epoch)) {
                const double now = snnrt_now();
                const double rate = (double)(it + 1) / (now - ep0);
                const int64_t left = (iters_per_epoch - it - 1) + (s.epochs - e - 1) * iters_per_epoch;
                char eta[32];
                fmt_duration(eta, sizeof eta, (double)left / rate);
                say(log, tee, "epoch %lld/%lld  iter %lld/%lld  loss %.4f  batch_acc %.2f%%  "
                    "%.1f it/s  ETA %s\n", (long long)(e + 1), (long long)s.epochs,
                    (long long)(it + 1), (long long)iters_per_epoch, win_loss / (double)win_n,
                    100.0 * (double)win_correct / (double)(win_n * s.batch),
                    (double)win_n / (now - win_t0), eta);
                win_loss = 0.0;
                win_correct = win_n = 0;
                win_t0 = now;
            }
        }
        r.epoch_seconds = snnrt_now() - ep0;
        r.iters_last_epoch = iters_per_epoch;
        r.train_loss = loss_sum / (double)iters_per_epoch;
        r.train_acc = (double)correct / (double)(iters_per_epoch * s.batch);
        if (loss_log) fflush(loss_log);

        const double ev0 = snnrt_now();
        evaluate(&t, &test, s.seed, epoch, &r.test_loss, &r.test_acc);
        r.eval_seconds = snnrt_now() - ev0;
        say(out, tee, "epoch %lld/%lld: train loss %.4f, train acc %.2f%% (running, %lld iters, "
            "%.2f s, %.1f it/s) | test loss %.4f, test acc %.2f%% (%.2f s)\n",
            (long long)(e + 1), (long long)s.epochs, r.train_loss, 100.0 * r.train_acc,
            (long long)iters_per_epoch, r.epoch_seconds,
            (double)iters_per_epoch / r.epoch_seconds, r.test_loss, 100.0 * r.test_acc,
            r.eval_seconds);
        fflush(out);
        r.epochs = e + 1;
        if (o->save) {
            snnrt_ckpt_meta meta = {epoch + 1, global_iter, s.seed, 0};
            if (snnrt_ckpt_save(o->save, m, (const float *const *)t.params, &opt, &meta, err))
                goto done;
            last_ckpt = o->save;
            last_ckpt_iter = global_iter;
            say(out, tee, "saved %s\n", o->save);
        }
    }
    r.iters = run_iters;
    say(out, tee, "trained %lld iterations in %.2f s\n", (long long)run_iters,
        snnrt_now() - run_start);
    status = SNNRT_EXIT_OK;

done:
    if (loss_log) {
        if (fclose(loss_log) != 0 && status == SNNRT_EXIT_OK) {
            snnrt_fail(err, "--loss-log %s: write error", o->loss_log);
            status = SNNRT_EXIT_ERROR;
        }
    }
    if (status != SNNRT_EXIT_OK && tee) fprintf(tee, "error: %s\n", err->msg);
    if (status == SNNRT_EXIT_OK || status == SNNRT_EXIT_NONFINITE ||
        status == SNNRT_EXIT_INTERRUPTED) {
        say(out, tee, "peak RSS %.1f MiB\n", (double)snnrt_peak_rss_bytes() / (1024.0 * 1024.0));
        /* SNNRT_KERNEL_REPORT=1: which matrix kernel served each product (snnrt_kernels.c) */
        if (snnrt_kernel_report_requested()) snnrt_kernel_report(log ? log : stderr);
        if (o->profile) snnrt_profile_print(out, r.iters);
        if (o->json) print_json(out, m, &s, &r, n_params_total);
    }
    fflush(out);
    if (tee) fclose(tee);
    snnrt_optim_free(&opt);
    trainer_free(&t);
    snnrt_batch_order_free(&bo);
    snnrt_split_free(&train);
    snnrt_split_free(&test);
    return status;
}
