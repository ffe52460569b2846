#!/usr/bin/python3
"""gen_fixtures.py: PyTorch-made reference fixtures for snnc's gradient and trajectory checks.

Why this file exists
--------------------
snnc must compute exactly what snnTorch's Tutorial 5 computes (../shared/design/tutorial5.md).
The only trustworthy way to show that is to compare numbers: this script builds the same
networks in plain PyTorch (Debian's python3-torch; snnTorch is not installed, so `snn.Leaky`,
`snn.Synaptic` and `snn.RLeaky`, their reset modes and the ATan and fast-sigmoid surrogates
are re-implemented here line by line from tutorial5.md) and writes what a
C harness needs to check a compiled model, as raw little-endian files that C reads with one
fread. The fixtures are committed, so CI never needs torch; rerun this script only to change
or add a case (it is deterministic: the same seeds give byte-identical files).

    /usr/bin/python3 tests/reference/gen_fixtures.py            # all cases + trajectory
    /usr/bin/python3 tests/reference/gen_fixtures.py --no-trajectory

Gradient fixtures: tests/reference/fixtures/<case>/
    <param>.f32          initial parameter, float32 LE, row-major. Params are named
                         layer.role with layers `h` (hidden) and `o` (output):
                         h.weight [hidden,in], h.bias [hidden], o.weight [out,hidden],
                         o.bias [out]; h.beta [hidden] in the learnable-beta case;
                         h.recurrent.weight [hidden,hidden], h.recurrent.bias [hidden] for
                         rleaky
    grad.<param>.f32     d loss / d param, same shape (computed in float64, stored float32)
    x.f32                input [batch,in], float32 (direct encoding: same x at every step)
    labels.i32           int32 LE [batch]
    scores.f32           output spike counts summed over steps [batch,out] (rate_accuracy's
                         per-class score; exact small integers)
    meta.txt             `key = value` lines: case, in, hidden, out, batch, steps, neuron
                         (h's kind), neuron.o, beta, threshold, alpha (synaptic only),
                         learn_beta, params, surrogate, surrogate_alpha or surrogate_slope,
                         reset, encoding, loss_fn, loss (9 significant digits), spikes.h,
                         spikes.h.total, spikes.o, spikes.o.total, min_margin, x_scale, seed,
                         x_source
    model.snn            the same network in snnc's language

The network: x -> linear h -> neuron -> linear o -> neuron, T steps, mem[0] = syn[0] = 0,
reset by subtraction from the previous membrane (detached; reset = zero in two cases), ATan
surrogate with alpha 2 (dS/dU = 1/(1+(pi*U)^2); fast-sigmoid in one case), loss = sum over t
of CrossEntropy(o.mem[t], label), mean over batch. x is uniform [0,1) times a scale, or real
Fashion-MNIST images (the fashion_* case).
The forward uses the float32-rounded parameters and inputs converted to float64, so a float32
implementation differs from the fixture only by its own rounding. Every membrane value stays
at least `min_margin` (>= 1e-4 here) away from the threshold, so float32 rounding cannot flip
a spike decision; inputs are scaled (and seeds tried in turn) until both layers spike, but
not always.

Trajectory fixture: tests/reference/fixtures/trajectory/
    h.weight.f32 ...     Tutorial 5 network 784-1000-10, nn.Linear default init under
                         torch.manual_seed(0)
    batch_order.txt      20 lines, each 128 training-set indices separated by spaces
    losses.txt           the loss of each of the 20 batches, computed before that batch's Adam
                         update (lr 5e-4, betas (0.9, 0.999), eps 1e-8), float32 as PyTorch
                         trains by default, tutorial form (fc1(x) inside the time loop),
                         %.9g, one per line
    model.snn            the same network in snnc's language (layers h and o)
    losses_noise.txt     per step: fixture loss, the float64 loss, and the largest relative
                         deviation from the fixture of float64 training, of two float32
                         variants that differ only in rounding, and of 8 float32 runs whose
                         initial weights are nudged by -1/0/+1 ulp: the noise floor a float32
                         reimplementation should be judged against
    meta.txt             the settings, and test_accuracy_init: the rate accuracy of the
                         initial weights on the 10000 test images (with test_ties_init images
                         tied: a check of the evaluation path and its tie rule)
Data: Fashion-MNIST IDX .gz files in /usr/share/datasets/fashion-mnist (pixel / 255).
"""
import argparse
import gzip
import math
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "fixtures")
DATA_DIR = "/usr/share/datasets/fashion-mnist"
MIN_MARGIN = 1e-4


# ---------------------------------------------------------------- neuron semantics (tutorial5.md)

class ATanSpike(torch.autograd.Function):
    """Heaviside forward (x > 0), ATan surrogate backward: (a/2) / (1 + (pi/2 * a * x)^2)."""

    @staticmethod
    def forward(ctx, x, alpha):
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        a = ctx.alpha
        return g * ((a / 2) / (1 + (math.pi / 2 * a * x) ** 2)), None


class FastSigmoidSpike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid surrogate backward: g / (slope * |x| + 1)^2 (snnTorch)."""

    @staticmethod
    def forward(ctx, x, slope):
        ctx.save_for_backward(x)
        ctx.slope = slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (ctx.slope * torch.abs(x) + 1.0) ** 2, None


def fire(x, alpha=2.0):
    return ATanSpike.apply(x, alpha)


def fire_sg(x, c):
    """fire() with the case's surrogate: atan (alpha 2) unless c['surrogate'] says otherwise."""
    if c.get("surrogate", "atan") == "fast_sigmoid":
        return FastSigmoidSpike.apply(x, c["slope"])
    return fire(x)


def clamp01(b):
    return b.clamp(0, 1) if torch.is_tensor(b) else min(max(b, 0.0), 1.0)


def leaky_step(inp, mem, beta, thr):
    """snn.Leaky, reset_mechanism='subtract': reset from the previous membrane, detached."""
    reset = (mem - thr > 0).to(inp.dtype).detach()
    mem = clamp01(beta) * mem + inp - reset * thr
    return fire(mem - thr), mem


def synaptic_step(inp, syn, mem, alpha, beta, thr):
    """snn.Synaptic, reset_mechanism='subtract': syn is never reset."""
    reset = (mem - thr > 0).to(inp.dtype).detach()
    syn = clamp01(alpha) * syn + inp
    mem = clamp01(beta) * mem + syn - reset * thr
    return fire(mem - thr), syn, mem


def layer_step(kind, inp, st, beta, c, rec=None):
    """One step of a layer of `kind` (leaky, synaptic, rleaky) with c's reset and surrogate.
    st holds the layer's states (mem, syn, spk); returns the new spk and updates st.
    rec: (W_r, b_r) of rleaky's recurrent linear map."""
    thr, zero = c["threshold"], c.get("reset", "subtract") == "zero"
    mem = st["mem"]
    reset = (mem - thr > 0).to(inp.dtype).detach()  # from the previous membrane, detached
    b = clamp01(beta)
    if kind == "synaptic":
        st["syn"] = clamp01(c["alpha"]) * st["syn"] + inp
        mem = (1 - reset) * (b * mem + st["syn"]) if zero else b * mem + st["syn"] - reset * thr
    elif kind == "rleaky":
        r_in = F.linear(st["spk"], rec[0], rec[1])  # spk[t-1], not detached; bias at every step
        mem = (1 - reset) * (b * mem + inp + r_in) if zero else b * mem + inp + r_in - reset * thr
    else:
        mem = b * (1 - reset) * mem + inp if zero else b * mem + inp - reset * thr
    st["mem"] = mem
    st["spk"] = fire_sg(mem - thr, c)
    return st["spk"]


def latency_spikes(x32, c):
    """snnTorch spikegen.latency(x32, num_steps=T, tau, threshold, linear, normalize, clip) in
    float32, written out (snnTorch 0.7 spikegen.latency / latency_code_log / _linear, first
    spike time 0, no interpolation): [T, B, I] of 0/1."""
    T, thr, tau = c["steps"], c["lat_threshold"], c["tau"]
    idx = x32 < thr
    if c["linear"]:
        if c["normalize"]:
            tau = T - 1
        spike_time = torch.clamp_max(-tau * (x32 - 1), -tau * (thr - 1))
    else:
        assert not c["normalize"], "log-code normalize divides by the batch maximum"
        d = torch.clamp(x32, thr + 1e-7)
        spike_time = tau * torch.log(d / (d - thr))
    rm_idx = torch.round(spike_time).long() > T - 1
    spike_data = torch.zeros((T,) + tuple(x32.shape), dtype=torch.float32).scatter(
        0, torch.round(torch.clamp_max(spike_time, T - 1)).long().unsqueeze(0), 1) * ~rm_idx
    if c["clip"]:
        spike_data = spike_data * ~idx
    return spike_data


def run_net(p, x, labels, c):
    """Forward over c['steps'] steps; returns (loss, spk_h[T], spk_o[T], mem_h[T], mem_o[T])."""
    B = x.shape[0]
    dt = x.dtype
    zeros = lambda n: torch.zeros(B, n, dtype=dt)
    H, O = p["h.weight"].shape[0], p["o.weight"].shape[0]
    mem_h, mem_o, syn_h, syn_o = zeros(H), zeros(O), zeros(H), zeros(O)
    beta_h = p["h.beta"] if "h.beta" in p else c["beta"]
    thr = c["threshold"]
    cur_h = F.linear(x, p["h.weight"], p["h.bias"])  # direct input: the same every step
    lat = latency_spikes(x.float(), c) if c.get("encoding") == "latency" else None
    loss = torch.zeros((), dtype=dt)
    rec = {"spk_h": [], "spk_o": [], "mem_h": [], "mem_o": []}
    generic = (c.get("reset", "subtract") != "subtract" or c.get("surrogate", "atan") != "atan"
               or "rleaky" in (c["neuron"], c.get("neuron_o", c["neuron"])))
    st_h = {"mem": mem_h, "syn": syn_h, "spk": zeros(H)}
    st_o = {"mem": mem_o, "syn": syn_o, "spk": zeros(O)}
    rec_h = (p["h.recurrent.weight"], p["h.recurrent.bias"]) if "h.recurrent.weight" in p else None
    spk_o_all = []
    for step in range(c["steps"]):
        if lat is not None:  # latency-coded input: this step's spikes
            cur_h = F.linear(lat[step].to(x.dtype), p["h.weight"], p["h.bias"])
        if generic:
            spk_h = layer_step(c["neuron"], cur_h, st_h, beta_h, c, rec_h)
            cur_o = F.linear(spk_h, p["o.weight"], p["o.bias"])
            spk_o = layer_step(c.get("neuron_o", c["neuron"]), cur_o, st_o, c["beta"], c)
            mem_h, mem_o = st_h["mem"], st_o["mem"]
        elif c["neuron"] == "synaptic":
            spk_h, syn_h, mem_h = synaptic_step(cur_h, syn_h, mem_h, c["alpha"], beta_h, thr)
            cur_o = F.linear(spk_h, p["o.weight"], p["o.bias"])
            spk_o, syn_o, mem_o = synaptic_step(cur_o, syn_o, mem_o, c["alpha"], c["beta"], thr)
        else:
            spk_h, mem_h = leaky_step(cur_h, mem_h, beta_h, thr)
            cur_o = F.linear(spk_h, p["o.weight"], p["o.bias"])
            spk_o, mem_o = leaky_step(cur_o, mem_o, c["beta"], thr)
        spk_o_all.append(spk_o)
        if c.get("loss", "ce_membrane") == "ce_membrane":
            loss = loss + F.cross_entropy(mem_o, labels)
        for k, v in (("spk_h", spk_h), ("spk_o", spk_o), ("mem_h", mem_h), ("mem_o", mem_o)):
            rec[k].append(v.detach())
    rec = {k: torch.stack(v) for k, v in rec.items()}
    if c.get("loss") == "mse_count":
        # snnTorch SF.mse_count_loss(correct_rate, incorrect_rate): the spike count over the
        # steps against int(T * rate) for the label class and int(T * incorrect_rate) for the
        # others, nn.MSELoss (mean over batch and classes), divided by T
        T = c["steps"]
        on, off = int(T * c["correct_rate"]), int(T * c["incorrect_rate"])
        count = torch.stack(spk_o_all).sum(0)
        target = torch.full_like(count, float(off))
        target[torch.arange(B), labels] = float(on)
        loss = F.mse_loss(count, target) / T
    return loss, rec


# ---------------------------------------------------------------- writing

def write_f32(path, t):
    np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<f4").tofile(path)


def write_i32(path, t):
    np.ascontiguousarray(t.detach().cpu().numpy(), dtype="<i4").tofile(path)


def fmt(v):
    return "%.9g" % v


# ---------------------------------------------------------------- the .snn sources
# Written against the grammar in compiler/parse.y and ast.h as of this commit (docs/language.md
# and stdlib/ did not exist yet): stdlib neurons `leaky` and `synaptic`, surrogate `atan`, and
# a user-defined neuron for the learnable per-neuron beta (`learn[n]`), whose parameter the
# compiler names `h.beta`. REVISIT when docs/language.md and stdlib/*.snn land.

LEARN_BETA_NEURON = """\
# snn.Leaky with a learnable per-neuron beta (snnTorch learn_beta=True with a tensor beta)
neuron leaky_learn_beta(learn[n] beta = 0.95, threshold = 1.0, surrogate = atan()) {
    state mem = 0
    step(input) {
        let r = detach(heaviside(mem - threshold))     # reset from the previous membrane
        mem = clamp(beta, 0, 1) * mem + input - r * threshold
        let spk = fire(mem - threshold)
    }
    out spk, mem
}

"""

SNN_TEMPLATE = """\
# {case}: gradient-check fixture network, written by tests/reference/gen_fixtures.py.
# Same network as the PyTorch reference: {desc}.
# The fixture's *.f32 files hold its parameters (h.weight, h.bias, o.weight, o.bias{extra}).

{neuron_def}model {case_id} {{
    input  x[{n_in}]
    encode x = {encode_line}
    h = {neuron_h}(linear(x, {n_hidden}){args_h})
    o = {neuron_o}(linear(h, {n_out}){args_o})
    output o
}}

train {case_id} {{
    data      idx("/usr/share/datasets/fashion-mnist")
    steps     {steps}
    batch     {batch}
    epochs    1
    loss      {loss_line}
    optimizer adam(lr = 5e-4, betas = (0.9, 0.999))
    metric    rate_accuracy(o)
    seed      0
}}
"""


def encode_line(c):
    if c.get("encoding") == "latency":
        return "latency(tau = %g, threshold = %g, linear = %s, normalize = %s, clip = %s)" % (
            c["tau"], c["lat_threshold"], str(c["linear"]).lower(), str(c["normalize"]).lower(),
            str(c["clip"]).lower())
    return "direct"


def loss_line(c):
    if c.get("loss") == "mse_count":
        return "mse_count(o, correct_rate = %g, incorrect_rate = %g)" % (
            c["correct_rate"], c["incorrect_rate"])
    return "ce_membrane(o)"


def loss_desc(c):
    if c.get("loss") == "mse_count":
        return ("MSE(spike count of o, int(T * %g) for the label, int(T * %g) else) / T "
                "(snnTorch mse_count_loss)" % (c["correct_rate"], c["incorrect_rate"]))
    return "sum over t of CE(o.mem[t], label)"


def snn_source(case, c):
    thr = c["threshold"]
    if c["neuron"] == "synaptic":
        common = ", alpha = %g, beta = %g" % (c["alpha"], c["beta"])
    else:
        common = ", beta = %g" % c["beta"]
    if thr != 1.0:
        common += ", threshold = %g" % thr
    if c.get("reset", "subtract") != "subtract":
        common += ", reset = %s" % c["reset"]
    if c.get("surrogate", "atan") == "fast_sigmoid":
        common += ", surrogate = fast_sigmoid(slope = %g)" % c["slope"]
    neuron_h = c["neuron"]
    if c.get("learn_beta"):
        neuron_h = "leaky_learn_beta"  # h.beta's initial values come from the fixture
    neuron_o = c.get("neuron_o", c["neuron"])
    kinds = c["neuron"] if neuron_o == c["neuron"] else "h %s, o %s" % (c["neuron"], neuron_o)
    sg = ("fast-sigmoid(%g)" % c["slope"]) if c.get("surrogate") == "fast_sigmoid" else "ATan(2)"
    desc = ("%s neurons%s, beta %g, threshold %g, %s surrogate, reset %s, "
            "loss %s") % (
        kinds, " (h.beta learnable per neuron)" if c.get("learn_beta") else "",
        c["beta"], thr, sg, c.get("reset", "subtract"), loss_desc(c))
    return SNN_TEMPLATE.format(case=case, case_id=case.replace("-", "_").replace(".", "_"),
                               desc=desc, n_in=c["in"], n_hidden=c["hidden"], n_out=c["out"],
                               neuron_def=LEARN_BETA_NEURON if c.get("learn_beta") else "",
                               extra=(", h.beta" if c.get("learn_beta") else "")
                               + (", h.recurrent.weight, h.recurrent.bias"
                                  if c["neuron"] == "rleaky" else ""),
                               neuron_h=neuron_h, neuron_o=neuron_o, args_h=common,
                               args_o=common, steps=c["steps"], batch=c["batch"],
                               loss_line=loss_line(c), encode_line=encode_line(c))


# ---------------------------------------------------------------- gradient cases

CASES = [
    # name, in, hidden, out, batch, steps, extra
    ("leaky_7_5_3_b4_t6", dict(sizes=(7, 5, 3, 4, 6))),
    ("leaky_20_16_10_b8_t25", dict(sizes=(20, 16, 10, 8, 25))),
    ("leaky_beta0.8_thr0.5_12_10_4_b6_t12",
     dict(sizes=(12, 10, 4, 6, 12), beta=0.8, threshold=0.5)),
    ("synaptic_10_8_4_b5_t15",
     dict(sizes=(10, 8, 4, 5, 15), neuron="synaptic", alpha=0.9, beta=0.8)),
    ("learnbeta_9_6_3_b4_t10", dict(sizes=(9, 6, 3, 4, 10), learn_beta=True)),
    # stdlib variants (tutorial5.md "Other snnTorch neurons"); names must not start with
    # leaky_ (tests/codegen/check_codegen.sh builds every leaky_* case as plain Tutorial 5)
    ("resetzero_leaky_8_6_3_b4_t12", dict(sizes=(8, 6, 3, 4, 12), reset="zero")),
    ("resetzero_synaptic_8_6_3_b4_t12",
     dict(sizes=(8, 6, 3, 4, 12), neuron="synaptic", alpha=0.9, beta=0.8, reset="zero")),
    ("rleaky_8_6_3_b4_t12", dict(sizes=(8, 6, 3, 4, 12), neuron="rleaky", neuron_o="leaky")),
    ("fastsigmoid_8_6_3_b4_t12", dict(sizes=(8, 6, 3, 4, 12), surrogate="fast_sigmoid",
                                      slope=25.0)),
    # Tutorial 5 at reduced width on real Fashion-MNIST images (784 inputs, about half of the
    # pixels 0: the zero-skipping and hoisting paths of issue 4 on realistic data)
    ("fashion_784_64_10_b16_t25", dict(sizes=(784, 64, 10, 16, 25), data="fashion")),
    # snnTorch's mse_count_loss (spike-count targets int(T * rate), divided by T); rates whose
    # T * rate is not whole (13.5 -> 13, 1.8 -> 1), so the truncation is checked too
    ("msecount_12_10_4_b6_t18", dict(sizes=(12, 10, 4, 6, 18), loss="mse_count",
                                     correct_rate=0.75, incorrect_rate=0.1)),
    # snnTorch's spikegen.latency input: the log code with clip, and the normalized linear code
    ("latencylog_16_12_4_b6_t20", dict(sizes=(16, 12, 4, 6, 20), encoding="latency", tau=5.0,
                                       lat_threshold=0.01)),
    ("latencyclip_16_12_4_b6_t20", dict(sizes=(16, 12, 4, 6, 20), encoding="latency", tau=1.5,
                                        lat_threshold=0.01, clip=True)),
    ("latencylin_16_12_4_b6_t20", dict(sizes=(16, 12, 4, 6, 20), encoding="latency", tau=1.0,
                                       lat_threshold=0.05, linear=True, normalize=True)),
]


_FASHION = None


def fashion_train():
    global _FASHION
    if _FASHION is None:
        _FASHION = load_fashion("train")
    return _FASHION


def make_case(name, spec):
    n_in, n_h, n_o, B, T = spec["sizes"]
    c = dict(name=name, neuron=spec.get("neuron", "leaky"), beta=spec.get("beta", 0.95),
             threshold=spec.get("threshold", 1.0), alpha=spec.get("alpha", None),
             learn_beta=spec.get("learn_beta", False), steps=T, batch=B,
             reset=spec.get("reset", "subtract"), surrogate=spec.get("surrogate", "atan"),
             slope=spec.get("slope", None),
             neuron_o=spec.get("neuron_o", spec.get("neuron", "leaky")),
             loss=spec.get("loss", "ce_membrane"), correct_rate=spec.get("correct_rate"),
             encoding=spec.get("encoding", "direct"), tau=spec.get("tau"),
             lat_threshold=spec.get("lat_threshold"), linear=spec.get("linear", False),
             normalize=spec.get("normalize", False), clip=spec.get("clip", False),
             incorrect_rate=spec.get("incorrect_rate"),
             **{"in": n_in, "hidden": n_h, "out": n_o})
    for seed in range(200):
        torch.manual_seed(seed)
        h = torch.nn.Linear(n_in, n_h)
        o = torch.nn.Linear(n_h, n_o)
        x01 = torch.rand(B, n_in)
        labels = torch.randint(0, n_o, (B,), dtype=torch.int64)
        scales = (1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
        if spec.get("encoding") == "latency":
            # spike times need inputs in [0, 1] (snnTorch requires it); many small values and
            # zeros, so that late spikes, spikes past the last step and clipped inputs all occur
            u = torch.rand(B, n_in)
            x01 = torch.where(torch.rand(B, n_in) < 0.2, torch.zeros_like(u), u ** 3)
            scales = (1.0,)
        if spec.get("data") == "fashion":  # real images: pixel / 255, about half of them 0
            xtr, ytr = fashion_train()
            c["x_indices"] = torch.randperm(xtr.shape[0], generator=torch.Generator().manual_seed(
                1000 + seed))[:B]
            x01, labels, scales = xtr[c["x_indices"]], ytr[c["x_indices"]], (1.0,)
        p32 = {"h.weight": h.weight.data.clone(), "h.bias": h.bias.data.clone(),
               "o.weight": o.weight.data.clone(), "o.bias": o.bias.data.clone()}
        if c["learn_beta"]:
            p32["h.beta"] = (0.7 + 0.28 * torch.rand(n_h)).float()  # varied, all in (0.7, 0.98)
        if c["neuron"] == "rleaky":
            r = torch.nn.Linear(n_h, n_h)  # snn.RLeaky(all_to_all): nn.Linear default init
            p32["h.recurrent.weight"] = r.weight.data.clone()
            p32["h.recurrent.bias"] = r.bias.data.clone()
        for scale in scales:
            x32 = (x01 * scale).float()
            p = {k: v.double().requires_grad_(True) for k, v in p32.items()}
            loss, rec = run_net(p, x32.double(), labels, c)
            sh, so = int(rec["spk_h"].sum()), int(rec["spk_o"].sum())
            th, to = rec["spk_h"].numel(), rec["spk_o"].numel()
            margin = min(float((rec["mem_h"] - c["threshold"]).abs().min()),
                         float((rec["mem_o"] - c["threshold"]).abs().min()))
            # both layers spike but not always; at least a few percent of the other kind too
            ok = (0.03 * th <= sh <= 0.97 * th and 0.03 * to <= so <= 0.97 * to
                  and margin >= MIN_MARGIN)
            # every output neuron should be spiking somewhere or the o.weight gradient is thin;
            # require at least two output classes to spike
            ok = ok and int((rec["spk_o"].sum(dim=(0, 1)) > 0).sum()) >= min(2, n_o)
            if not ok:
                continue
            loss.backward()
            return c, seed, scale, p32, x32, labels, loss, rec, margin, p
    raise SystemExit("gen_fixtures: no seed/scale made both layers spike for %s" % name)


def write_case(name, spec):
    c, seed, scale, p32, x32, labels, loss, rec, margin, p = make_case(name, spec)
    d = os.path.join(FIXTURES, name)
    os.makedirs(d, exist_ok=True)
    for k, v in p32.items():
        write_f32(os.path.join(d, k + ".f32"), v)
        write_f32(os.path.join(d, "grad." + k + ".f32"), p[k].grad)
    write_f32(os.path.join(d, "x.f32"), x32)
    write_i32(os.path.join(d, "labels.i32"), labels.to(torch.int32))
    write_f32(os.path.join(d, "scores.f32"), rec["spk_o"].sum(dim=0))
    meta = [("case", name), ("in", c["in"]), ("hidden", c["hidden"]), ("out", c["out"]),
            ("batch", c["batch"]), ("steps", c["steps"]), ("neuron", c["neuron"]),
            ("neuron.o", c["neuron_o"]),
            ("beta", fmt(c["beta"])), ("threshold", fmt(c["threshold"]))]
    if "synaptic" in (c["neuron"], c["neuron_o"]):
        meta.append(("alpha", fmt(c["alpha"])))
    meta += [("learn_beta", "h" if c["learn_beta"] else "none"),
             ("params", " ".join(p32.keys())),
             ("surrogate", c["surrogate"])]
    meta += ([("surrogate_slope", fmt(c["slope"]))] if c["surrogate"] == "fast_sigmoid"
             else [("surrogate_alpha", "2")])
    meta += [("reset", c["reset"]), ("encoding", encode_line(c)),
             ("loss_fn", "ce_membrane (sum over steps of CE(o.mem[t], label), mean over batch)"
              if c["loss"] == "ce_membrane" else "mse_count: " + loss_desc(c)),
             ("loss", fmt(float(loss))),
             ("spikes.h", int(rec["spk_h"].sum())), ("spikes.h.total", rec["spk_h"].numel()),
             ("spikes.o", int(rec["spk_o"].sum())), ("spikes.o.total", rec["spk_o"].numel()),
             ("min_margin", "%.3g" % margin), ("x_scale", fmt(scale)), ("seed", seed),
             ("x_source", "fashion-mnist train images " + " ".join(
                 str(int(i)) for i in c["x_indices"]) if "x_indices" in c else "uniform [0,1)"),
             ("reference_dtype", "float64"),
             ("generator", "tests/reference/gen_fixtures.py (torch %s)" % torch.__version__)]
    with open(os.path.join(d, "meta.txt"), "w") as f:
        for k, v in meta:
            f.write("%s = %s\n" % (k, v))
    with open(os.path.join(d, "model.snn"), "w") as f:
        f.write(snn_source(name, c))
    print("%-40s loss %s  spikes h %d/%d o %d/%d  margin %.2g  seed %d scale %g" % (
        name, fmt(float(loss)), int(rec["spk_h"].sum()), rec["spk_h"].numel(),
        int(rec["spk_o"].sum()), rec["spk_o"].numel(), margin, seed, scale))


# ---------------------------------------------------------------- trajectory

def read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load_fashion(split="train"):
    pre = "train" if split == "train" else "t10k"
    imgs = read_idx_gz(os.path.join(DATA_DIR, pre + "-images-idx3-ubyte.gz"))
    labs = read_idx_gz(os.path.join(DATA_DIR, pre + "-labels-idx1-ubyte.gz"))
    x = torch.from_numpy(imgs.reshape(imgs.shape[0], -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labs.astype(np.int64))


class ATanSpikeAlt(torch.autograd.Function):
    """The same surrogate written as g / (1 + (pi x)^2): other float32 roundings (noise study)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (1 + (math.pi * x) ** 2)


class Tutorial5Net(torch.nn.Module):
    """Tutorial 5's Net with snn.Leaky semantics; fc1(x) inside the time loop (tutorial form)
    unless hoisted; alt_sg selects ATanSpikeAlt. Only the default form writes the fixture; the
    variants measure how far float32 rounding alone moves the trajectory."""

    def __init__(self, beta=0.95, steps=25, hoisted=False, alt_sg=False):
        super().__init__()
        self.fc1 = torch.nn.Linear(784, 1000)
        self.fc2 = torch.nn.Linear(1000, 10)
        self.beta, self.steps, self.hoisted, self.alt_sg = beta, steps, hoisted, alt_sg

    def lif(self, inp, mem):
        if not self.alt_sg:
            return leaky_step(inp, mem, self.beta, 1.0)
        reset = (mem - 1.0 > 0).to(inp.dtype).detach()
        mem = self.beta * mem + inp - reset * 1.0
        return ATanSpikeAlt.apply(mem - 1.0), mem

    def forward(self, x):
        mem1 = torch.zeros(x.shape[0], 1000, dtype=x.dtype)
        mem2 = torch.zeros(x.shape[0], 10, dtype=x.dtype)
        spk2_rec, mem2_rec = [], []
        cur1_once = self.fc1(x) if self.hoisted else None
        for _ in range(self.steps):
            cur1 = cur1_once if self.hoisted else self.fc1(x)
            spk1, mem1 = self.lif(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec), torch.stack(mem2_rec)


def train_trajectory(xtr, ytr, perm, seed, dtype=torch.float32, ulp_seed=None, **variant):
    """The 20-step Adam trajectory; returns the loss of each batch before its update.
    ulp_seed: nudge every initial weight by -1, 0 or +1 ulp (a rounding-sized perturbation)."""
    torch.manual_seed(seed)
    net = Tutorial5Net(**variant)
    init = {"h.weight": net.fc1.weight.data.clone(), "h.bias": net.fc1.bias.data.clone(),
            "o.weight": net.fc2.weight.data.clone(), "o.bias": net.fc2.bias.data.clone()}
    if ulp_seed is not None:
        g = torch.Generator().manual_seed(ulp_seed)
        for prm in net.parameters():
            step = torch.randint(-1, 2, prm.shape, generator=g).to(prm.dtype)
            up = torch.nextafter(prm.data, torch.full_like(prm.data, math.inf))
            down = torch.nextafter(prm.data, torch.full_like(prm.data, -math.inf))
            prm.data = torch.where(step > 0, up, torch.where(step < 0, down, prm.data))
    net = net.to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for i in range(perm.shape[0]):
        idx = perm[i]
        x, y = xtr[idx].to(dtype), ytr[idx]
        spk, mem = net(x)
        loss_val = torch.zeros((1,), dtype=dtype)
        for t in range(net.steps):
            loss_val += F.cross_entropy(mem[t], y)
        opt.zero_grad()
        loss_val.backward()
        opt.step()
        losses.append(float(loss_val))
    return losses, init


def eval_init(seed):
    """Rate accuracy of the initial network on the whole test set, and how many images tie."""
    xte, yte = load_fashion("test")
    torch.manual_seed(seed)
    net = Tutorial5Net()
    counts = []
    with torch.no_grad():
        for i in range(0, xte.shape[0], 128):
            spk, _ = net(xte[i:i + 128])
            counts.append(spk.sum(dim=0))
    c = torch.cat(counts).numpy()
    pred = np.argmax(c, axis=1)  # first maximal index: ties go to the lowest class
    ties = int(((c == c.max(axis=1, keepdims=True)).sum(axis=1) > 1).sum())
    return float((pred == yte.numpy()).mean()), ties


def write_trajectory(n_batches=20, batch=128, seed=0):
    torch.set_num_threads(1)
    d = os.path.join(FIXTURES, "trajectory")
    os.makedirs(d, exist_ok=True)
    xtr, ytr = load_fashion("train")
    g = torch.Generator().manual_seed(seed + 1)
    perm = torch.randperm(xtr.shape[0], generator=g)[: n_batches * batch].view(n_batches, batch)
    with open(os.path.join(d, "batch_order.txt"), "w") as f:
        for row in perm.tolist():
            f.write(" ".join(str(i) for i in row) + "\n")
    losses, init = train_trajectory(xtr, ytr, perm, seed)
    acc0, ties0 = eval_init(seed)
    for k, v in init.items():
        write_f32(os.path.join(d, k + ".f32"), v)
    with open(os.path.join(d, "losses.txt"), "w") as f:
        for v in losses:
            f.write(fmt(v) + "\n")
    # How far float32 rounding alone moves the trajectory: the same training in float64, and two
    # float32 variants that differ only in rounding (fc1 hoisted; the surrogate written
    # g / (1 + (pi x)^2)). losses_noise.txt: step, fixture loss, float64 loss, and the largest
    # relative deviation of any variant (float64 included) from the fixture at that step.
    variants = {"float64": train_trajectory(xtr, ytr, perm, seed, torch.float64)[0],
                "hoisted": train_trajectory(xtr, ytr, perm, seed, hoisted=True)[0],
                "alt_surrogate": train_trajectory(xtr, ytr, perm, seed, alt_sg=True)[0]}
    for k in range(8):
        variants["ulp%d" % k] = train_trajectory(xtr, ytr, perm, seed, ulp_seed=100 + k)[0]
    with open(os.path.join(d, "losses_noise.txt"), "w") as f:
        f.write("# step fixture_loss float64_loss max_rel_dev(float64, hoisted f32, "
                "alt-surrogate f32, 8 runs with initial weights nudged by 1 ulp)\n")
        for i, v in enumerate(losses):
            dev = max(abs(var[i] - v) / abs(v) for var in variants.values())
            f.write("%d %s %s %.2e\n" % (i, fmt(v), fmt(variants["float64"][i]), dev))
            print("trajectory batch %2d loss %s  float64 %s  float32-noise %.1e" % (
                i, fmt(v), fmt(variants["float64"][i]), dev))
    meta = [("case", "trajectory"), ("in", 784), ("hidden", 1000), ("out", 10),
            ("batch", batch), ("steps", 25), ("neuron", "leaky"), ("beta", "0.95"),
            ("threshold", "1"), ("surrogate", "atan"), ("surrogate_alpha", "2"),
            ("loss_fn", "ce_membrane"), ("optimizer", "adam"), ("lr", "0.0005"),
            ("beta1", "0.9"), ("beta2", "0.999"), ("eps", "1e-08"), ("weight_decay", "0"),
            ("n_batches", n_batches), ("data", DATA_DIR + " (train split, pixel / 255)"),
            ("init", "torch.manual_seed(%d); nn.Linear(784,1000); nn.Linear(1000,10)" % seed),
            ("batch_order", "torch.randperm(60000, generator=manual_seed(%d))[:%d]"
             % (seed + 1, n_batches * batch)),
            ("losses", "loss of each batch before its update, float32, tutorial form"),
            ("losses_noise", "losses_noise.txt: float64 and float32-rounding variants"),
            ("test_accuracy_init", "%.4f" % acc0),
            ("test_ties_init", ties0),
            ("test_accuracy_init_note", "rate accuracy on the 10000 test images at the initial "
             "weights (argmax of output spike counts, ties to the lowest class index); "
             "test_ties_init images have a tied maximum"),
            ("generator", "tests/reference/gen_fixtures.py (torch %s)" % torch.__version__)]
    with open(os.path.join(d, "meta.txt"), "w") as f:
        for k, v in meta:
            f.write("%s = %s\n" % (k, v))


TRAJECTORY_SNN = """\
# trajectory: the Tutorial 5 network with the layer names of the fixture (h, o), written by
# tests/reference/gen_fixtures.py; tests/e2e/check_trajectory.sh compiles it with snnc.
model trajectory {
    input  x[784]
    encode x = direct
    h = leaky(linear(x, 1000), beta = 0.95)
    o = leaky(linear(h, 10), beta = 0.95)
    output o
}

train trajectory {
    data      idx("/usr/share/datasets/fashion-mnist")
    steps     25
    batch     128
    epochs    1
    loss      ce_membrane(o)
    optimizer adam(lr = 5e-4, betas = (0.9, 0.999))
    metric    rate_accuracy(o)
    seed      0
}
"""


def write_trajectory_snn():
    d = os.path.join(FIXTURES, "trajectory")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "model.snn"), "w") as f:
        f.write(TRAJECTORY_SNN)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--no-trajectory", action="store_true", help="skip the trajectory fixture")
    ap.add_argument("--only-trajectory", action="store_true")
    ap.add_argument("--only", metavar="CASE", help="write only this gradient case")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if not args.only_trajectory:
        for name, spec in CASES:
            if args.only is None or args.only == name:
                write_case(name, spec)
        if args.only is not None:
            return
    if not args.no_trajectory:
        write_trajectory()
    write_trajectory_snn()


if __name__ == "__main__":
    main()
