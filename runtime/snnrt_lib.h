/* snnrt_lib.h: libsnnrt's own API, for the trainer's main (runtime/trainer_main.c) and tests.
 *
 * snnrt.h is the narrow seam with generated code; this header is the rest of the runtime: the
 * pieces the training loop is built from, each in its own file (snnrt_<concern>.c), each usable
 * alone by a test or a harness with its own main. Nothing here calls exit(): every function that
 * can fail returns 0 on success and -1 on failure, with a one-line message (naming the file or
 * flag concerned) in a caller-provided snnrt_error.
 *
 *   snnrt_error.c    error messages, aligned allocation, clocks, peak RSS
 *   snnrt_rng.c      splitmix64 / xoshiro256** (tests, harnesses), Philox4x32-10 (snnrt_uniform)
 *   snnrt_torchrng.c PyTorch's CPU generator (MT19937): uniform_, randperm (init, shuffling)
 *   snnrt_data.c     IDX / IDX.gz files through zlib; train and test splits; batch gathering
 *   snnrt_batch.c    per-epoch shuffled order, batch counts, --batch-order files, batch seeds
 *   snnrt_init.c     parameter init (torch.nn.Linear's default, constants), --init-from
 *   snnrt_optim.c    Adam, AdamW, SGD with momentum, PyTorch semantics
 *   snnrt_blas.c     snnrt_sgemm (own kernels, snnrt_kernels.h, or OpenBLAS), thread count
 *   snnrt_pool.c     the runtime's worker threads
 *   snnrt_shard.c    a batch as row blocks on threads, their gradients combined
 *   snnrt_team.c     the row blocks' threads as a team: a barrier, products done jointly
 *   snnrt_metrics.c  argmax with ties to the lowest index, correct counts
 *   snnrt_ckpt.c     checkpoints: save atomically, load with every field checked
 *   snnrt_cli.c      the trainer's command line: one option table feeds parser and --help
 *   snnrt_train.c    the training loop (snnrt_run): what `main` does, minus the exit
 *   snnrt_profile.c  --profile: where a training iteration's time goes, per thread
 */
#ifndef SNNRT_LIB_H
#define SNNRT_LIB_H

#include "snnrt.h"
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- errors and utilities */

typedef struct {
    char msg[1024];
} snnrt_error;

/* Formats a message into err (if non-NULL) and returns -1, so `return snnrt_fail(err, ...)`. */
int snnrt_fail(snnrt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 64-byte aligned, zero-filled allocation of `bytes` (0 is allowed); NULL and an error naming
 * `what` when memory is short. Free with snnrt_free. */
void *snnrt_alloc(size_t bytes, const char *what, snnrt_error *err);
void snnrt_free(void *p);

double snnrt_now(void);              /* monotonic seconds */
int64_t snnrt_peak_rss_bytes(void);  /* peak resident set size of this process, -1 if unknown */

/* The double nearest to the shortest decimal that round-trips `f` (0.9f -> 0.9, not
 * 0.899999976...): hyperparameters stored as float in the descriptor then behave as the same
 * Python literals do in PyTorch. */
double snnrt_float_decimal(float f);

/* ---------------------------------------------------------------- random numbers */

/* splitmix64 (Steele, Lea, Flood 2014): advances *state, returns the next output. */
uint64_t snnrt_splitmix64(uint64_t *state);
/* splitmix64's finaliser as a stateless 64-bit mixer (a bijection). */
uint64_t snnrt_mix64(uint64_t x);

/* xoshiro256** (Blackman, Vigna 2018), state seeded from splitmix64(seed ^ mix(stream)).
 * Different streams of one seed are independent for all practical purposes. */
typedef struct {
    uint64_t s[4];
} snnrt_rng;
void snnrt_rng_seed(snnrt_rng *r, uint64_t seed, uint64_t stream);
uint64_t snnrt_rng_next(snnrt_rng *r);
uint64_t snnrt_rng_below(snnrt_rng *r, uint64_t n); /* uniform in [0, n), unbiased; n >= 1 */
float snnrt_rng_float(snnrt_rng *r);               /* uniform in [0, 1), 24 random bits */

/* PyTorch's CPU generator (torch 1.13: at::mt19937 in CPUGeneratorImpl), bit for bit. Seeded
 * as torch.manual_seed(seed) / torch.Generator().manual_seed(seed): only the low 32 bits of
 * seed matter. */
#define SNNRT_MT_N 624
typedef struct {
    uint32_t state[SNNRT_MT_N];
    int next; /* next state word to temper; SNNRT_MT_N: twist first */
} snnrt_torch_gen;
void snnrt_torch_seed(snnrt_torch_gen *g, uint64_t seed);
uint32_t snnrt_torch_random(snnrt_torch_gen *g);   /* CPUGeneratorImpl::random() */
uint64_t snnrt_torch_random64(snnrt_torch_gen *g); /* random64(): first draw is the high half */
/* tensor.uniform_(from, to, generator=g) on n float32 elements in memory order. */
void snnrt_torch_uniform(snnrt_torch_gen *g, double from, double to, float *out, int64_t n);
/* torch.randperm(n, generator=g) into perm[n]. */
void snnrt_torch_randperm(snnrt_torch_gen *g, int64_t n, int64_t *perm);
/* Advances g exactly as snnrt_torch_randperm(g, n, ...) would, without building the order. */
void snnrt_torch_randperm_skip(snnrt_torch_gen *g, int64_t n);

/* Philox4x32 with 10 rounds (Salmon et al., SC'11), as Random123 defines it. */
void snnrt_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* ---------------------------------------------------------------- data */

/* One IDX file: magic 00 00 <type> <ndim>, ndim big-endian uint32 dimensions, then the data.
 * Only unsigned-byte data (type 0x08) is accepted, which is what MNIST-format sets use. */
typedef struct {
    int32_t ndim;
    int64_t dims[4];
    int64_t count;  /* product of dims */
    uint8_t *data;  /* count bytes (malloc'ed; snnrt_idx_free or snnrt_free releases it) */
} snnrt_idx;

/* Reads an IDX file, plain or gzip-compressed (detected from content, not name). Errors name
 * the path: missing/unreadable, not IDX (wrong magic), unsupported type, truncated, corrupt
 * gzip stream, trailing bytes after the data. */
int snnrt_idx_read(const char *path, snnrt_idx *out, snnrt_error *err);
void snnrt_idx_free(snnrt_idx *idx);

/* Finds the file for `base` (e.g. "train-images-idx3-ubyte") in dir: tries base, base.gz, and
 * the dotted spelling ("train-images.idx3-ubyte"[.gz]) some MNIST mirrors use. Writes the path
 * into path[cap]; error lists what was tried. */
int snnrt_idx_find(const char *dir, const char *base, char *path, size_t cap, snnrt_error *err);

/* A split (train or test): images kept as bytes, converted to pixel/255 floats per batch. */
typedef struct {
    int64_t n;       /* examples */
    int64_t dim;     /* rows * cols */
    int32_t rows, cols;
    uint8_t *pixels; /* [n, dim] */
    uint8_t *labels; /* [n] */
    char images_path[1024], labels_path[1024];
} snnrt_split;

/* Loads `<prefix>-images-idx3-ubyte` and `<prefix>-labels-idx1-ubyte` (prefix "train" or
 * "t10k") from dir. Checks: images are 3-D, labels 1-D, equal counts, image size == n_inputs,
 * every label < n_classes. */
int snnrt_split_load(const char *dir, const char *prefix, int64_t n_inputs, int64_t n_classes,
                     snnrt_split *out, snnrt_error *err);
void snnrt_split_free(snnrt_split *s);

/* Copies examples idx[0..n) of s into x[n, dim] (as pixel / 255.0f, exactly as
 * torchvision's ToTensor divides) and labels[n]. Indices must be < s->n. */
void snnrt_gather(const snnrt_split *s, const int64_t *idx, int64_t n, float *x, int32_t *labels);

/* ---------------------------------------------------------------- batches */

/* The training order of epoch `epoch` (0-based), as PyTorch's reference draws it: the
 * (epoch + 1)-th torch.randperm(n, generator=g) of g = torch.Generator().manual_seed(seed + 1).
 * The earlier epochs' draws are replayed (skipped, about 2 ns per example per epoch), so each
 * epoch's order depends only on (seed, epoch) and a run resumed from a checkpoint sees the same
 * order it would have seen uninterrupted. */
void snnrt_epoch_order(uint64_t seed, int64_t epoch, int64_t n, int64_t *perm);

/* Number of batches of `batch` rows in n examples: floor for training (drop_last = 1, the last
 * partial batch is dropped as in DataLoader(drop_last=True)), ceil for testing. */
int64_t snnrt_n_batches(int64_t n, int64_t batch, int drop_last);

/* A --batch-order file: one batch per line, each a whitespace-separated list of training-set
 * indices; every line must have the same count, which is the batch size. Blank lines and
 * lines starting with '#' are skipped. */
typedef struct {
    int64_t n_batches, batch;
    int64_t *idx; /* [n_batches * batch] */
} snnrt_batch_order;
int snnrt_batch_order_read(const char *path, int64_t n_examples, snnrt_batch_order *out,
                           snnrt_error *err);
void snnrt_batch_order_free(snnrt_batch_order *o);
/* Writes n_batches lines of `batch` indices from idx, in the format snnrt_batch_order_read
 * reads. */
int snnrt_batch_order_write(const char *path, const int64_t *idx, int64_t n_batches,
                            int64_t batch, snnrt_error *err);

/* The snn_batch.seed of a batch: a mix of (seed, epoch, iteration, split), split 0 = train,
 * 1 = test. */
uint64_t snnrt_batch_seed(uint64_t seed, int64_t epoch, int64_t iter, int split);

/* ---------------------------------------------------------------- parameters */

/* Checks a descriptor before use: ABI version, sizes, shapes, names (non-empty, unique, no '/'),
 * entry points, n_inputs and n_classes. */
int snnrt_model_check(const snn_model_desc *m, snnrt_error *err);

/* Initialises parameter p: SNN_INIT_CONST fills init_value and draws nothing;
 * SNN_INIT_UNIFORM_FAN_IN draws size values from g exactly as torch.nn.Linear's
 * reset_parameters does for its weight or bias: uniform_(-1/sqrt(fan_in), 1/sqrt(fan_in)) in
 * memory order (snnc's layout is torch's, [out][in] row-major). */
int snnrt_param_init(const snn_param_desc *p, snnrt_torch_gen *g, float *data, snnrt_error *err);

/* Initialises every parameter of m, in descriptor order, from ONE generator seeded with seed:
 * what torch.manual_seed(seed) followed by constructing the same nn.Linear layers in the same
 * order gives (for Tutorial 5: fc1.weight, fc1.bias, fc2.weight, fc2.bias). */
int snnrt_params_init(const snn_model_desc *m, uint64_t seed, float *const *params,
                      snnrt_error *err);

/* Writes every parameter to dir/<name>.f32 in the --init-from format (raw little-endian
 * float32); dir must exist. */
int snnrt_params_save_dir(const snn_model_desc *m, const char *dir, const float *const *params,
                          snnrt_error *err);

/* Loads every parameter from dir/<name>.f32: raw little-endian float32, exactly size*4 bytes. */
int snnrt_params_load_dir(const snn_model_desc *m, const char *dir, float *const *params,
                          snnrt_error *err);

/* ---------------------------------------------------------------- optimizers */

typedef struct {
    int32_t kind; /* snn_optimizer_kind */
    double lr, beta1, beta2, eps, weight_decay, momentum;
} snnrt_optim_config;

/* State of one optimizer over n tensors. PyTorch semantics (torch.optim, defaults otherwise):
 *   Adam:  g += wd*p; m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g*g;
 *          p -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps)
 *   AdamW: p *= 1 - lr*wd, then Adam with no decay term
 *   SGD:   g += wd*p; buf = g at the first step, else momentum*buf + g; p -= lr*buf
 *          (dampening 0, no Nesterov; momentum 0 is plain SGD and keeps no state) */
typedef struct {
    snnrt_optim_config cfg;
    int64_t step;    /* steps taken */
    int32_t n;       /* tensors */
    int64_t *sizes;  /* [n] */
    float **m, **v;  /* [n] state tensors, NULL where the optimizer keeps none */
} snnrt_optim;

int snnrt_optim_init(snnrt_optim *o, const snnrt_optim_config *cfg, int32_t n,
                     const int64_t *sizes, snnrt_error *err);
/* One step over all tensors: params[i] updated in place from grads[i]. */
void snnrt_optim_step(snnrt_optim *o, float *const *params, const float *const *grads);
/* The same step, with side(side_ctx) run by one of the step's threads before it takes its share
 * of the update (the others take more): work that reads neither params nor grads, such as the
 * next batch's gather, overlaps the update, which waits on memory rather than on the cores. */
void snnrt_optim_step_with(snnrt_optim *o, float *const *params, const float *const *grads,
                           void (*side)(void *), void *side_ctx);
/* State tensors per parameter: 2 (Adam, AdamW), 1 (SGD with momentum), 0 (plain SGD). */
int32_t snnrt_optim_n_state(const snnrt_optim_config *cfg);
const char *snnrt_optim_name(int32_t kind);
void snnrt_optim_free(snnrt_optim *o);

/* ---------------------------------------------------------------- BLAS and threads */

/* Sets the thread count of OpenMP and OpenBLAS (n >= 1). */
void snnrt_set_threads(int32_t n);
int32_t snnrt_get_threads(void);

/* ---------------------------------------------------------------- metrics */

/* Index of the largest of x[0..n), ties to the lowest index (as torch.max); NaNs never win
 * unless every element is NaN (then 0). */
int64_t snnrt_argmax(const float *x, int64_t n);
/* Rows r of scores[batch, n_classes] whose argmax equals labels[r]. */
int64_t snnrt_count_correct(const float *scores, const int32_t *labels, int64_t batch,
                            int64_t n_classes);

/* ---------------------------------------------------------------- checkpoints */

/* Where training stood when the checkpoint was written. */
typedef struct {
    int64_t epochs_done;  /* completed epochs */
    int64_t iters_done;   /* optimizer steps over the whole run */
    uint64_t seed;
    int32_t opt_restored; /* load: 1 if optimizer state was restored into the given optimizer */
} snnrt_ckpt_meta;

/* Writes params (and optimizer state, if opt != NULL) to path: first to path.tmp.<pid>, flushed
 * and fsync'ed, then renamed over path, so a crash at any moment leaves the previous checkpoint
 * intact. Format (little-endian), see snnrt_ckpt.c: magic "SNNRTCKP", version, model name,
 * meta, optimizer kind and step, then per parameter its name, rank, shape and data, then the
 * optimizer's state tensors, then a CRC-32 of everything before it. */
int snnrt_ckpt_save(const char *path, const snn_model_desc *m, const float *const *params,
                    const snnrt_optim *opt, const snnrt_ckpt_meta *meta, snnrt_error *err);

/* Reads path into params, checking magic, version, checksum, truncation and that the
 * parameter names, ranks and shapes are the model's. If opt != NULL and the checkpoint holds
 * state of the same optimizer kind, restores it (meta->opt_restored = 1). Nothing is written
 * into params or opt unless the whole file checks out. */
int snnrt_ckpt_load(const char *path, const snn_model_desc *m, float *const *params,
                    snnrt_optim *opt, snnrt_ckpt_meta *meta, snnrt_error *err);

/* ---------------------------------------------------------------- command line */

/* Exit statuses of the trainer. */
enum {
    SNNRT_EXIT_OK = 0,
    SNNRT_EXIT_ERROR = 1,     /* data, file, model or memory error */
    SNNRT_EXIT_USAGE = 2,     /* bad flag or value */
    SNNRT_EXIT_NONFINITE = 3, /* training loss became NaN or infinite */
    SNNRT_EXIT_INTERRUPTED = 130 /* stopped by SIGINT/SIGTERM (after checkpointing, if --save) */
};

/* Parsed command line. Unset values: NULL strings, -1 integers, 0 for has_* flags. */
typedef struct {
    const char *data_dir;
    int64_t epochs, batch, steps, max_iters, threads, progress_every, save_every;
    double lr;
    int has_lr;
    uint64_t seed;
    int has_seed;
    int json, eval_only, help, profile;
    const char *init_from, *batch_order, *loss_log, *save, *load, *log_file;
    const char *dump_init; /* --dump-init DIR: write the starting point there and stop */
    /* Set by the caller (trainer_main's SIGINT/SIGTERM handler): when it becomes non-zero,
     * training stops after the current iteration, checkpoints if --save, and snnrt_run returns
     * SNNRT_EXIT_INTERRUPTED. NULL: never. The library installs no signal handlers. */
    volatile sig_atomic_t *stop;
} snnrt_options;

/* Parses argv[1..argc) into opt. Returns 0 (opt->help set for --help), or -1 with a message
 * naming the flag (the caller exits SNNRT_EXIT_USAGE). Accepts `--flag value` and
 * `--flag=value`. */
int snnrt_cli_parse(int argc, char **argv, snnrt_options *opt, snnrt_error *err);

/* Prints --help, generated from the same option table the parser uses, with the model's
 * defaults (m may be NULL). */
void snnrt_cli_help(FILE *f, const char *prog, const snn_model_desc *m);

/* ---------------------------------------------------------------- training loop */

/* Everything the trainer does after parsing: checks the model, loads data, initialises or
 * loads parameters, trains (unless opt->eval_only), evaluates, checkpoints, reports. Human
 * output on out (epoch summaries, the JSON line last), progress lines on log. Returns an
 * SNNRT_EXIT_* status; on failure err holds the message. */
int snnrt_run(const snn_model_desc *m, const snnrt_options *opt, FILE *out, FILE *log,
              snnrt_error *err);

/* ---------------------------------------------------------------- worker threads (snnrt_pool.c) */

typedef void (*snnrt_task)(void *ctx, int32_t k, int32_t n);

/* Runs fn(ctx, k, n) for k = 0..n-1 on up to n threads (k = 0 on the caller) and returns when
 * all have returned. Inside a task, or with n <= 1, runs them in order on the caller. */
void snnrt_pool_run(int32_t n, snnrt_task fn, void *ctx);

/* Non-zero on a thread that is running a pool task (so it should not fork itself). */
int snnrt_pool_inside(void);

/* One round of a spin-wait: PAUSE on x86 (the sibling hyperthread and the memory system get
 * the cycles), nothing elsewhere. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void snnrt_cpu_relax(void) { _mm_pause(); }
#else
static inline void snnrt_cpu_relax(void) {}
#endif

/* Starts the workers a fork of n tasks needs (if the system allows) and returns how many of
 * the n tasks snnrt_pool_run would then run at the same time, each on its own thread. */
int32_t snnrt_pool_concurrency(int32_t n);


/* ---------------------------------------------------------------- row blocks (snnrt_shard.c) */

#define SNNRT_MAX_SHARDS 64

/* Units 0..n-1 of a parallel loop cut into `parts` contiguous ranges, range k task k's: a task
 * takes its own range's units from the front, then, once it is empty, the others' from their
 * backs. Each task so keeps the same units from one call to the next, and with them their data
 * in its core's caches, while a task on a slower CPU still gets help (snnrt_pool.c has the
 * measurements). */
typedef struct {
    int32_t parts;
    uint64_t range[SNNRT_MAX_SHARDS]; /* front << 32 | back (atomic) */
} snnrt_units;

/* Before the tasks start (parts >= 1, n < 2^32). */
void snnrt_units_init(snnrt_units *s, int64_t n, int32_t parts);
/* The next unit for task k (k >= 0; tasks past `parts` share ranges), or -1 when every unit
 * has been taken. */
int64_t snnrt_units_next(snnrt_units *s, int32_t k);

/* ---------------------------------------------------------------- teams (snnrt_team.c) */

/* The threads running the row blocks of one batch, while they run it (snnrt_team.c has the
 * why). Every block has `rows` rows; block k's rows of the input are x + k * rows * x_cols. */
typedef struct {
    int32_t n;                  /* members: block k runs on the thread of rank k */
    int64_t rows;
    const float *x;             /* the whole batch's input, [n * rows, x_cols] */
    int64_t x_cols;
    const snn_model_desc *m;
    float **const *grads;       /* grads[k][i]: block k's gradient of parameter i */
    uint8_t *joint;             /* joint[i]: block 0's gradient of parameter i is already the
                                 * batch's (weighted) total; the others' were not written */
    unsigned arrived, phase;    /* the barrier (atomic builtins) */
    const void *call[SNNRT_MAX_SHARDS]; /* what each member brought to a joint product */
} snnrt_team;

/* The calling thread is member `rank` of t (NULL: of no team) until the next call. */
void snnrt_team_join(snnrt_team *t, int32_t rank);
/* The calling thread's team and its rank there, or NULL. */
snnrt_team *snnrt_team_current(int32_t *rank);
/* Returns when all t->n members have called it (the same number of times). Spins briefly,
 * then yields the CPU: a member may be waiting for a CPU the others hold. */
void snnrt_team_barrier(snnrt_team *t);
/* One round of a member's wait (round 0, 1, ... of it): a pause while the wait is short, then
 * yielding the CPU, as the barrier does. */
void snnrt_team_pause(int32_t round);

/* ---------------------------------------------------------------- row blocks (snnrt_shard.c) */

/* A batch cut into row blocks run on threads, one work area and one gradient table per block.
 * Block 0 uses the caller's work area and gradients. */
typedef struct {
    int32_t n;                              /* blocks for a full batch, 1 = no split */
    const snn_model_desc *m;
    void *work[SNNRT_MAX_SHARDS];
    float **grads[SNNRT_MAX_SHARDS];
    snnrt_team team;                        /* the blocks' threads, for joint products
                                               (team.joint: allocated with the blocks) */
} snnrt_shards;

/* Plans min(threads, batch / 16) blocks (at least 1) for batches of up to `batch` rows and
 * allocates the extra blocks' work areas and gradients; `grads` and `work` (sized for the full
 * batch) serve block 0. Returns 0, or -1 with err set (then snnrt_shards_free it). */
int snnrt_shards_init(snnrt_shards *s, const snn_model_desc *m, int32_t threads, int64_t batch,
                      int64_t steps, float *const *grads, void *work, snnrt_error *err);
void snnrt_shards_free(snnrt_shards *s);

/* m->forward_backward / m->forward over a batch of at most the planned rows: the blocks run in
 * parallel, the loss and gradients (into the grads given to init) are their row-weighted sums,
 * scores land in res->scores by row. Same return convention as the model's functions. */
int32_t snnrt_shards_forward_backward(snnrt_shards *s, const float *const *params,
                                      const snn_batch *b, snn_result *res);
int32_t snnrt_shards_forward(snnrt_shards *s, const float *const *params, const snn_batch *b,
                             snn_result *res);

/* ---------------------------------------------------------------- --profile (snnrt_profile.c) */

/* Phases of a training iteration. FB, OWN and the JOINT ones are per row block (the block's
 * thread: rank); ITER, COMBINE and OPTIM are the whole step's (rank 0). */
typedef enum {
    SNNRT_PROF_FB,           /* a block's forward_backward */
    SNNRT_PROF_OWN,          /* FB less the joint phases (computed when printed) */
    SNNRT_PROF_JOINT_TILES,  /* joint products (snnrt_kernels.c): the member's tiles */
    SNNRT_PROF_JOINT_LISTS,  /* their kind, masks, row groups and lists */
    SNNRT_PROF_JOINT_WAIT,   /* waiting at their barriers for the other members */
    SNNRT_PROF_COMBINE,      /* the blocks' gradients summed (snnrt_shard.c) */
    SNNRT_PROF_OPTIM,        /* the optimizer step, with the next batch's gather */
    SNNRT_PROF_ITER,         /* the iteration, wall clock */
    SNNRT_PROF_COUNT
} snnrt_prof_phase;

extern int snnrt_profile_on;               /* set by the trainer for --profile */
extern _Thread_local int snnrt_profile_call; /* this thread is in a training forward_backward */

/* Seconds since some fixed point while profiling, else 0 (no clock read). */
static inline double snnrt_profile_now(void) { return snnrt_profile_on ? snnrt_now() : 0.0; }
/* Adds seconds to phase ph of rank (a block's thread; 0 for the step's own phases). */
void snnrt_profile_add(int32_t rank, snnrt_prof_phase ph, double seconds);
double snnrt_profile_get(int32_t rank, snnrt_prof_phase ph); /* seconds so far (tests) */
void snnrt_profile_reset(void);
/* The table: mean microseconds per iteration over `iters` training iterations. */
void snnrt_profile_print(FILE *f, int64_t iters);

#endif
