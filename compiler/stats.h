/* stats.h: `snnc --stats`: what the compiled program costs (compiler/stats.c). */
#ifndef SNN_STATS_H
#define SNN_STATS_H

#include "ir/ir.h"

#include <stdio.h>

/* Per-layer work of one training iteration at the train block's batch and steps. */
typedef struct {
    char layer[32];             /* the model's layer name ("h", "o"), or "(other)" */
    double fwd_flops, bwd_flops;
    double tape_bytes;          /* forward values of the layer kept for backward (the tape) */
} snn_layer_stats;

/* Counts FLOPs of every value of m's forward and backward functions for a batch of `batch`
 * examples over `steps` steps (step-region values count `steps` times) and groups them by
 * layer. Returns the number of entries written to out (at most cap). A multiply-add counts
 * as 2 FLOPs; an elementwise op as 1 per element; exp/log/tanh/pow as 1 as well. */
int snn_stats_flops(const snn_ir_module *m, int64_t batch, int64_t steps, snn_layer_stats *out,
                    int cap);

/* Adds `bytes` of the tape of forward value `name` to its layer's entry of out (n entries,
 * at most cap; a new entry if the layer has none yet). Returns the new number of entries. */
int snn_stats_add_tape(const snn_ir_module *m, const char *name, double bytes,
                       snn_layer_stats *out, int n, int cap);

/* Adds `flops` of backward work on forward value `name` (codegen's recomputation) to its
 * layer's backward FLOPs, as snn_stats_add_tape adds bytes. Returns the new number of entries. */
int snn_stats_add_bwd_flops(const snn_ir_module *m, const char *name, double flops,
                            snn_layer_stats *out, int n, int cap);

/* The FLOPs of value id of f for one execution of it (its region decides how often). */
double snn_stats_value_flops(const snn_ir_module *m, const snn_ir_func *f, int32_t id,
                             int64_t batch);

#endif
