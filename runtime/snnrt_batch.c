/* snnrt_batch.c: which examples go into which batch.
 *
 * Training visits the training set in a fresh random order every epoch, as PyTorch's
 * DataLoader(shuffle=True) does, and drops the last partial batch (drop_last=True: Tutorial 5's
 * 60000 / 128 gives 468 iterations); testing visits the test set in file order and keeps the
 * last partial batch, so every test image counts.
 *
 * The order of epoch e is PyTorch's, bit for bit (snnrt_torchrng.c): the (e + 1)-th
 * torch.randperm(n, generator=g) of one generator g = torch.Generator().manual_seed(seed + 1),
 * the convention of bench/reference_tutorial5.py and tests/reference/gen_fixtures.py (seed + 1,
 * so the shuffle does not replay the init's draws). Same seed, same batches as the PyTorch run.
 * The order must not depend on how the run got to epoch e (a run resumed from a checkpoint
 * starts at e), so the generator is reseeded and the e earlier permutations' draws are replayed
 * without building them: n - 1 MT19937 outputs per epoch, about 0.2 ms per skipped epoch of
 * Fashion-MNIST, negligible next to an epoch. Orders from elsewhere come from a file
 * (--batch-order, snnrt_batch_order_read): one line per batch, indices separated by spaces.
 *
 * Generated code that draws random numbers (rate encoders) gets a per-batch key,
 * snnrt_batch_seed, mixed from (seed, epoch, iteration, split), so every batch of every epoch
 * draws differently and every run with the same seed draws the same.
 */
#include "snnrt_lib.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

void snnrt_epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *perm) {
    snnrt_torch_gen g;
    snnrt_torch_seed(&g, seed + 1);
    for (int64_t e = 0; e < epoch; e++) snnrt_torch_randperm_skip(&g, n);
    snnrt_torch_randperm(&g, n, perm);
}

int64_t snnrt_n_batches(int64_t n, int64_t batch, int drop_last) {
    if (batch <= 0 || n <= 0) return 0;
    return drop_last ? n / batch : (n + batch - 1) / batch;
}

uint64_t snnrt_batch_seed(uint64_t seed, int64_t epoch, int64_t iter, int split) {
    uint64_t h = snnrt_mix64(seed ^ 0x62617463685f6b65ULL); /* "batch_ke" */
    h = snnrt_mix64(h ^ (uint64_t)split);
    h = snnrt_mix64(h ^ (uint64_t)epoch);
    return snnrt_mix64(h ^ (uint64_t)iter);
}

int snnrt_batch_order_read(const char *path, int64_t n_examples, snnrt_batch_order *out,
                           snnrt_error *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "r");
    if (!f) return snnrt_fail(err, "--batch-order %s: %s", path, strerror(errno));
    int64_t cap = 1024, len = 0, lines = 0, batch = -1;
    int64_t *idx = malloc((size_t)cap * sizeof *idx);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t n;
    int64_t lineno = 0;
    int rc = -1;
    if (!idx) {
        snnrt_fail(err, "--batch-order %s: out of memory", path);
        goto done;
    }
    while ((n = getline(&line, &line_cap, f)) >= 0) {
        lineno++;
        char *p = line;
        while (isspace((unsigned char)*p)) p++;
        if (*p == '\0' || *p == '#') continue;
        int64_t count = 0;
        while (*p) {
            char *end;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno != 0 || (*end && !isspace((unsigned char)*end))) {
                snnrt_fail(err, "%s:%lld: '%.*s' is not an example index", path,
                           (long long)lineno, (int)strcspn(p, " \t\r\n"), p);
                goto done;
            }
            if (v < 0 || v >= n_examples) {
                snnrt_fail(err, "%s:%lld: index %lld is out of range (the training set has %lld "
                           "examples)", path, (long long)lineno, v, (long long)n_examples);
                goto done;
            }
            if (len == cap) {
                cap *= 2;
                int64_t *grown = realloc(idx, (size_t)cap * sizeof *idx);
                if (!grown) {
                    snnrt_fail(err, "--batch-order %s: out of memory", path);
                    goto done;
                }
                idx = grown;
            }
            idx[len++] = v;
            count++;
            p = end;
            while (isspace((unsigned char)*p)) p++;
        }
        if (batch < 0) batch = count;
        else if (count != batch) {
            snnrt_fail(err, "%s:%lld: %lld indices, but earlier lines have %lld (every batch "
                       "must have the same size)", path, (long long)lineno, (long long)count,
                       (long long)batch);
            goto done;
        }
        lines++;
    }
    if (ferror(f)) {
        snnrt_fail(err, "--batch-order %s: read error", path);
        goto done;
    }
    if (lines == 0) {
        snnrt_fail(err, "--batch-order %s: no batches in the file", path);
        goto done;
    }
    out->n_batches = lines;
    out->batch = batch;
    out->idx = idx;
    idx = NULL;
    rc = 0;
done:
    free(line);
    free(idx);
    fclose(f);
    return rc;
}

int snnrt_batch_order_write(const char *path, const int64_t *idx, int64_t n_batches,
                            int64_t batch, snnrt_error *err) {
    FILE *f = fopen(path, "w");
    if (!f) return snnrt_fail(err, "cannot create %s: %s", path, strerror(errno));
    for (int64_t b = 0; b < n_batches; b++)
        for (int64_t k = 0; k < batch; k++)
            fprintf(f, "%lld%c", (long long)idx[b * batch + k], k + 1 < batch ? ' ' : '\n');
    if (ferror(f) | (fclose(f) != 0)) return snnrt_fail(err, "write error on %s", path);
    return 0;
}

void snnrt_batch_order_free(snnrt_batch_order *o) {
    free(o->idx);
    memset(o, 0, sizeof *o);
}
