#!/usr/bin/env python3
"""N AdamW steps on a tiny checkpoint with torch.optim.AdamW: the llm.c-style reference for heed's optimizer core.

    /usr/bin/python3 reference/adamw_reference.py <model_dir> --spec spec.json --out out.json [--dtype float64|float32]

spec.json (written by test/optim.test.ts):
    {"steps": [{"ids": [[...T] * B], "weights": [[...T] * B]}, ...],      one batch per optimizer step
     "adamw": {"lr", "beta1", "beta2", "eps", "weight_decay"},
     "schedule": {"kind": "constant"|"linear"|"cosine", "warmup_steps", "total_steps", "min_lr_ratio"},
     "grad_clip": max global L2 norm (0 = off),
     "decay": [names of the tensors that get weight decay]}           the mask is the caller's choice

`weights[b][t]` is the loss weight of token t as a target (heed's host batch): position t-1 predicts ids[t].
Loss of a step = sum(w * nll) / sum(w) over the batch. Per step: loss and gradients (autograd through the
model of hf_reference.py), global-norm clipping (torch.nn.utils.clip_grad_norm_), the learning rate of the
documented schedule set on both param groups, then optimizer.step() with two param groups (decay / no decay).

out.json: {"losses": [N], "lrs": [N], "grad_norms": [N] (before clipping), "clipped": [N bools],
           "params": {name: flat list of the final values}, "dtype", "torch"}.
"""
import argparse
import json
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hf_reference import ARCHITECTURES, load_weights  # noqa: E402


def lr_at(sched, lr, step):
    """heed's schedule (src/train/schedule.ts), written again: lr of the update with 0-based index `step`."""
    W, N, lo = sched["warmup_steps"], sched["total_steps"], lr * sched["min_lr_ratio"]
    if W > 0 and step < W:
        return lr * (step + 1) / W
    if sched["kind"] == "constant":
        return lr
    frac = min(1.0, max(0.0, (step - W) / max(1, N - W)))
    if sched["kind"] == "linear":
        return lo + (lr - lo) * (1 - frac)
    return lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * frac))


def step_loss(model, ids, weights, dtype):
    num = torch.zeros((), dtype=dtype)
    den = 0.0
    for row, w in zip(ids, weights):
        logits = model.forward(row)  # [T, V]
        tw = torch.tensor(w[1:] + [0.0], dtype=dtype)  # weight of the prediction at t = weight of target t+1
        targets = torch.tensor(row[1:] + [0])
        nll = torch.nn.functional.cross_entropy(logits, targets, reduction="none")
        num = num + (nll * tw).sum()
        den += float(sum(w[1:]))
    return num / den


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    args = ap.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    with open(args.spec) as f:
        spec = json.load(f)
    with open(os.path.join(args.model_dir, "config.json")) as f:
        cfg = json.load(f)
    arrays = {k: np.array(v, dtype=np.float64) for k, v in load_weights(args.model_dir).items()}
    model = ARCHITECTURES[cfg["model_type"]](cfg, arrays, dtype)
    params = dict(model.params)  # every tensor of the checkpoint trains, as in heed train
    for t in params.values():
        t.requires_grad_(True)
    decay = set(spec["decay"])
    unknown = decay - set(params)
    if unknown:
        raise ValueError(f"decay names not in the checkpoint: {sorted(unknown)}")
    a = spec["adamw"]
    groups = [
        {"params": [t for k, t in params.items() if k in decay], "weight_decay": a["weight_decay"]},
        {"params": [t for k, t in params.items() if k not in decay], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=a["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"])
    out = {"losses": [], "lrs": [], "grad_norms": [], "clipped": []}
    for i, st in enumerate(spec["steps"]):
        opt.zero_grad(set_to_none=True)
        loss = step_loss(model, st["ids"], st["weights"], dtype)
        loss.backward()
        for t in params.values():  # a tensor the loss does not reach has a zero gradient (heed's too)
            if t.grad is None:
                t.grad = torch.zeros_like(t)
        gnorm = float(torch.sqrt(sum((t.grad ** 2).sum() for t in params.values())))
        clip = spec["grad_clip"]
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(list(params.values()), clip)
        lr = lr_at(spec["schedule"], a["lr"], i)
        for g in opt.param_groups:
            g["lr"] = lr
        opt.step()
        out["losses"].append(float(loss))
        out["lrs"].append(lr)
        out["grad_norms"].append(gnorm)
        out["clipped"].append(bool(clip > 0 and gnorm > clip))
    out["params"] = {k: t.detach().to(torch.float64).reshape(-1).tolist() for k, t in params.items()}
    out["dtype"] = args.dtype
    out["torch"] = torch.__version__
    with open(args.out, "w") as f:
        json.dump(out, f)
    print(f"wrote {args.out}: {len(spec['steps'])} steps, loss {out['losses'][0]:.6f} -> {out['losses'][-1]:.6f}, "
          f"{sum(out['clipped'])} clipped", file=sys.stderr)


if __name__ == "__main__":
    main()
