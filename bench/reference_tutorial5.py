#!/usr/bin/python3
"""reference_tutorial5.py: PyTorch reference of snnTorch Tutorial 5, exact snn.Leaky semantics.

snnc's speed and learning are judged against this (issues 3 and 4). It is plain PyTorch
(Debian's python3-torch; snnTorch is not installed) with the semantics of
../shared/design/tutorial5.md written out: Linear(784,1000) -> Leaky -> Linear(1000,10) ->
Leaky, beta 0.95, threshold 1, reset by subtraction from the previous membrane (detached),
Heaviside spikes with the ATan surrogate (alpha 2: dS/dU = 1/(1+(pi*U)^2)), 25 steps of direct
input, loss = sum over steps of CrossEntropy(output membrane, label) (mean over the batch),
Adam lr 5e-4, betas (0.9, 0.999), eps 1e-8, batch 128, last partial training batch dropped
(468 iterations per epoch), rate-decoded accuracy on the whole test set (argmax of output
spike counts over steps, ties to the lowest class index), float32.

Two forms of the same mathematics:
    --form tutorial   fc1(x) inside the time loop, as the tutorial writes it (about 10 GFLOP
                      per iteration: fc1 of the same image is recomputed at each of the 25 steps)
    --form hoisted    fc1(x) computed once per batch, by hand (what a PyTorch user who knows the
                      trick writes; autograd then does one fc1 backward matmul instead of 25)
Both give the same numbers up to float32 rounding.

Determinism: torch.manual_seed(seed) before building the network (nn.Linear default init);
the batch order of epoch e is the e-th torch.randperm(60000) of a generator seeded seed + 1.
For seed 0 the first 20 batches and the initial weights are exactly those of the trajectory
fixture tests/reference/fixtures/trajectory (written by tests/reference/gen_fixtures.py), and
--print-losses reproduces its losses.txt.

Usage:
    reference_tutorial5.py --iters 50 --threads 1           # timing run: 50 training
        # iterations after 2 untimed warm-up ones; seconds_per_epoch = ms_per_iter * 468,
        # extrapolated (epoch_extrapolated: true), no test accuracy unless --eval
    reference_tutorial5.py --seed 3 --epochs 1              # full epoch(s) + test accuracy
Flags: --form tutorial|hoisted, --seed N, --threads N, --iters N (0 = full epochs), --epochs N,
       --eval (test accuracy after an --iters run), --data DIR, --print-losses (per-iteration
       loss on stderr), --batch N, --steps N, --hidden N (scaling runs; default 1000).
Output: progress on stderr, then ONE JSON line on stdout with: form, seed, threads, iters,
ms_per_iter (mean over the timed training iterations: forward + backward + Adam step; data is
decoded into memory beforehand and not counted), seconds_per_epoch (training only, not
evaluation), epoch_extrapolated (true if from --iters), test_accuracy (null if not evaluated),
eval_seconds, train_loss (mean loss of the timed iterations), final_loss, loss_finite,
peak_rss_mb (max resident set size of the process), torch version.
"""
import argparse
import gzip
import json
import math
import os
import resource
import struct
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"


class ATanSpike(torch.autograd.Function):
    """Heaviside forward (x > 0); ATan surrogate backward, alpha = 2: 1 / (1 + (pi * x)^2)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        # snnTorch's expression, alpha / 2 / (1 + (pi / 2 * alpha * x)^2) * g, with alpha = 2:
        # the same float32 roundings, so seed 0 reproduces the trajectory fixture bit for bit
        return 1.0 / (1 + (math.pi * x) ** 2) * g


class Leaky(nn.Module):
    """snn.Leaky(beta, threshold=1, spike_grad=atan(), reset_mechanism='subtract')."""

    def __init__(self, beta, threshold=1.0):
        super().__init__()
        self.beta, self.threshold = min(max(beta, 0.0), 1.0), threshold

    def forward(self, inp, mem):
        reset = (mem - self.threshold > 0).to(inp.dtype).detach()  # from the previous membrane
        mem = self.beta * mem + inp - reset * self.threshold
        return ATanSpike.apply(mem - self.threshold), mem


class Net(nn.Module):
    def __init__(self, steps=25, beta=0.95, hoisted=False, hidden=1000):
        super().__init__()
        self.hidden = hidden
        self.fc1 = nn.Linear(784, hidden)
        self.lif1 = Leaky(beta)
        self.fc2 = nn.Linear(hidden, 10)
        self.lif2 = Leaky(beta)
        self.steps, self.hoisted = steps, hoisted

    def forward(self, x):
        mem1 = torch.zeros(x.shape[0], self.hidden)
        mem2 = torch.zeros(x.shape[0], 10)
        spk2_rec, mem2_rec = [], []
        cur1_once = self.fc1(x) if self.hoisted else None
        for _ in range(self.steps):
            cur1 = cur1_once if self.hoisted else self.fc1(x)
            spk1, mem1 = self.lif1(cur1, mem1)
            cur2 = self.fc2(spk1)
            spk2, mem2 = self.lif2(cur2, mem2)
            spk2_rec.append(spk2)
            mem2_rec.append(mem2)
        return torch.stack(spk2_rec), torch.stack(mem2_rec)


def read_idx_gz(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = struct.unpack(">I", data[:4])[0] & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, split):
    pre = "train" if split == "train" else "t10k"

    def find(stem):
        for suffix in (".gz", ""):
            p = os.path.join(data_dir, stem + suffix)
            if os.path.exists(p):
                return p
        raise SystemExit("reference_tutorial5: %s[.gz] not found in %s" % (stem, data_dir))

    imgs = read_idx_gz(find(pre + "-images-idx3-ubyte"))
    labs = read_idx_gz(find(pre + "-labels-idx1-ubyte"))
    x = torch.from_numpy(imgs.reshape(imgs.shape[0], -1).astype(np.float32) / 255.0)
    return x, torch.from_numpy(labs.astype(np.int64))


def rate_predict(spk_rec):
    """argmax over classes of spike counts summed over steps; ties to the lowest class index."""
    counts = spk_rec.sum(dim=0).numpy()
    return torch.from_numpy(np.argmax(counts, axis=1))  # numpy: first maximal index


def evaluate(net, xte, yte, batch):
    correct = 0
    with torch.no_grad():
        for i in range(0, xte.shape[0], batch):  # the whole test set, last partial batch kept
            spk, _ = net(xte[i:i + batch])
            correct += int((rate_predict(spk) == yte[i:i + batch]).sum())
    return correct / xte.shape[0]


def main():
    ap = argparse.ArgumentParser(description="PyTorch reference of snnTorch Tutorial 5 "
                                 "(see the file header)")
    ap.add_argument("--form", choices=("tutorial", "hoisted"), default="tutorial")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=0,
                    help="timed training iterations (extrapolated per epoch); 0 = full epochs")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations before --iters")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--eval", action="store_true", help="test accuracy after an --iters run")
    ap.add_argument("--data", default=DATA_DIR)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--hidden", type=int, default=1000, help="hidden layer width (scaling runs)")
    ap.add_argument("--print-losses", action="store_true")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "test")
    iters_per_epoch = xtr.shape[0] // args.batch

    torch.manual_seed(args.seed)
    net = Net(steps=args.steps, hoisted=args.form == "hoisted", hidden=args.hidden)
    opt = torch.optim.Adam(net.parameters(), lr=5e-4, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator().manual_seed(args.seed + 1)

    timed_mode = args.iters > 0
    n_epochs = 1 if timed_mode else args.epochs
    timed, losses, it_global = [], [], 0
    train_seconds = 0.0
    for epoch in range(n_epochs):
        perm = torch.randperm(xtr.shape[0], generator=gen)
        n_it = min(iters_per_epoch, args.warmup + args.iters) if timed_mode else iters_per_epoch
        t_epoch = time.perf_counter()
        for it in range(n_it):
            idx = perm[it * args.batch:(it + 1) * args.batch]
            x, y = xtr[idx], ytr[idx]
            t0 = time.perf_counter()
            net.train()
            spk_rec, mem_rec = net(x)
            loss_val = torch.zeros((1,), dtype=torch.float32)
            for step in range(args.steps):
                loss_val += F.cross_entropy(mem_rec[step], y)
            opt.zero_grad()
            loss_val.backward()
            opt.step()
            dt = time.perf_counter() - t0
            lv = float(loss_val)
            if not timed_mode or it >= args.warmup:
                timed.append(dt)
                losses.append(lv)
            if args.print_losses:
                print("iter %d loss %.9g" % (it_global, lv), file=sys.stderr)
            elif it % 50 == 0:
                print("epoch %d iter %d/%d loss %.4f %.1f ms" % (epoch, it, n_it, lv, dt * 1e3),
                      file=sys.stderr)
            it_global += 1
        train_seconds += time.perf_counter() - t_epoch

    ms = 1e3 * sum(timed) / max(len(timed), 1)
    acc, eval_s = None, None
    if not timed_mode or args.eval:
        t0 = time.perf_counter()
        net.eval()
        acc = evaluate(net, xte, yte, args.batch)
        eval_s = time.perf_counter() - t0
        print("test accuracy %.4f (%.1f s)" % (acc, eval_s), file=sys.stderr)
    out = {
        "impl": "pytorch-reference",
        "form": args.form,
        "seed": args.seed,
        "threads": args.threads,
        "steps": args.steps,
        "hidden": args.hidden,
        "iters": len(timed),
        "ms_per_iter": round(ms, 3),
        "seconds_per_epoch": round(ms * iters_per_epoch / 1e3 if timed_mode
                                   else train_seconds / n_epochs, 3),
        "epoch_extrapolated": timed_mode,
        "epochs": n_epochs if not timed_mode else None,
        "test_accuracy": acc,
        "eval_seconds": None if eval_s is None else round(eval_s, 3),
        "train_loss": sum(losses) / max(len(losses), 1),
        "final_loss": losses[-1] if losses else None,
        "loss_finite": all(math.isfinite(v) for v in losses),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "torch": torch.__version__,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
