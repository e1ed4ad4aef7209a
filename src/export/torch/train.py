"""Train a heed job with PyTorch (written by `heed export torch`; README.md in this folder says how to run it).

    torchrun --standalone --nproc_per_node N train.py [--model-impl auto|heed|hf] [--fsdp] [--resume]
    bash launch.sh --nproc_per_node N            (the same, with the right defaults)

The same run as `heed train` on the job's config: the data exactly as heed prepared it (data/, read with numpy
only), the same step composition (batch_size x grad_accum sequences per optimizer step, in heed's seeded
order, split over the processes), the same loss normalisation (token: sum w*nll / sum w over the whole
optimizer step; sequence: mean over rows of each row's token mean), schedule (linear warmup, then constant /
linear / cosine, per stage or over all stages), AdamW (torch.optim.AdamW; weight decay only on matrices,
never on norms or biases; bias correction counts all steps, moments carry across stages), global gradient-norm
clipping (heed's rule: scale by clip/(norm+1e-6) when norm > clip), stages and seeds. Writes the run folder as
heed does: metrics.jsonl (one line per step, heed's keys), step-N/ checkpoints (Hugging Face folders +
optimizer.pt + trainer_state.json, written to .tmp-step-N and renamed), summary.json. Stops cleanly after the
current step when <run>/STOP appears (heed watch writes it when IFS early stopping fires), and on SIGINT /
SIGTERM (a checkpoint is saved; --resume continues exactly).
"""

import argparse
import bisect
import json
import math
import os
import re
import shutil
import signal
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

HEED_VERSION = "__HEED_VERSION__"
JOB_FORMAT = 1
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt", "tokenizer.model", "generation_config.json"]

HERE = os.path.dirname(os.path.abspath(__file__))


class JobError(Exception):
    """A one-line error naming what is wrong and the fix."""


# ----------------------------------------------------------------------------------------------
# the job folder


def load_job(job_dir):
    path = os.path.join(job_dir, "job.json")
    if not os.path.exists(path):
        raise JobError(f"{job_dir}: no job.json (fix: pass the folder `heed export torch` wrote, --job DIR)")
    with open(path) as f:
        job = json.load(f)
    if job.get("format") != "heed-torch-job" or job.get("format_version") != JOB_FORMAT:
        raise JobError(f"{path}: not a heed torch job of format {JOB_FORMAT} (fix: re-export with `heed export torch`)")
    if job.get("heed_version") != HEED_VERSION:
        raise JobError(f"{path}: written by heed {job.get('heed_version')}, this train.py belongs to heed {HEED_VERSION} (fix: re-export the job with one heed version)")
    return job


class Rows:
    """Rows of one data folder (shards of flat token ids, loss weights and row offsets; numpy .npy)."""

    def __init__(self, folder):
        with open(os.path.join(folder, "index.json")) as f:
            self.index = json.load(f)
        self.shards = []
        self.first = []
        for s in self.index["shards"]:
            ids = np.load(os.path.join(folder, s["ids"]), mmap_mode="r")
            w = np.load(os.path.join(folder, s["weights"]), mmap_mode="r")
            off = np.load(os.path.join(folder, s["offsets"]))
            if ids.shape != w.shape or off[-1] != ids.shape[0] or len(off) != s["rows"] + 1:
                raise JobError(f"{folder}: shard {s['ids']} does not match its index (fix: re-export the job)")
            self.first.append(s["first_row"])
            self.shards.append((ids, w, off))
        self.n = self.index["rows"]
        self.folder = folder

    def row(self, r):
        k = bisect.bisect_right(self.first, r) - 1
        ids, w, off = self.shards[k]
        i = r - self.first[k]
        return np.asarray(ids[off[i]:off[i + 1]], dtype=np.int64), np.asarray(w[off[i]:off[i + 1]], dtype=np.float64)


class Stage:
    def __init__(self, job_dir, spec):
        self.spec = spec
        self.dir = os.path.join(job_dir, spec["dir"])
        self.rows = Rows(self.dir)
        self.steps = np.load(os.path.join(self.dir, "steps.npy"))
        if self.steps.shape != (spec["steps"], 5):
            raise JobError(f"{self.dir}/steps.npy has shape {self.steps.shape}, expected ({spec['steps']}, 5) (fix: re-export the job)")
        self.epochs = {}

    def epoch(self, e):
        if e not in self.epochs:
            order = np.load(os.path.join(self.dir, f"epoch-{e}.order.npy"))
            offs = np.load(os.path.join(self.dir, f"epoch-{e}.seq_offsets.npy"))
            self.epochs = {e: (order, offs)}  # one epoch in memory at a time
        return self.epochs[e]

    def sequence(self, e, s):
        """Rows of sequence s of epoch e, as (row ids arrays, weight arrays)."""
        order, offs = self.epoch(e)
        return [self.rows.row(int(r)) for r in order[offs[s]:offs[s + 1]]]


def row_weights(rows, mode):
    """Loss weights of the rows of one sequence under the normalisation (heed's normalisedWeights)."""
    out = []
    for ids, w in rows:
        w = w.copy()
        w[0] = 0.0
        if mode == "sequence":
            s = w.sum()
            w = w / s if s > 0 else w
        out.append(w)
    return out


def step_norm(seqs, mode):
    """The step's normaliser: sum of loss weights (token) or number of loss-bearing rows (sequence)."""
    tot = 0.0
    for rows in seqs:
        for ids, w in rows:
            ws = float(w[1:].sum())
            tot += (1.0 if ws > 0 else 0.0) if mode == "sequence" else ws
    return tot


def make_batch(seqs, mode, pad_id, device):
    """Sequences of rows -> ids, weights, positions, segments [B, T] (right-padded; padding segment -1)."""
    lens = [sum(len(ids) for ids, _ in rows) for rows in seqs]
    B, T = len(seqs), max(lens)
    ids = np.full((B, T), pad_id, np.int64)
    wts = np.zeros((B, T), np.float64)
    pos = np.zeros((B, T), np.int64)
    seg = np.full((B, T), -1, np.int64)
    for b, rows in enumerate(seqs):
        o = 0
        for s, ((rid, _), w) in enumerate(zip(rows, row_weights(rows, mode))):
            n = len(rid)
            ids[b, o:o + n] = rid
            wts[b, o:o + n] = w
            pos[b, o:o + n] = np.arange(n)
            seg[b, o:o + n] = s
            o += n
    t = lambda a, dt: torch.from_numpy(a).to(device=device, dtype=dt)  # noqa: E731
    return t(ids, torch.long), t(wts, torch.float32), t(pos, torch.long), t(seg, torch.long)


def lr_at(kind, lr, warmup, total, min_ratio, t):
    """heed's schedule (src/train/schedule.ts) for the update at 1-based step t."""
    if warmup > 0 and t <= warmup:
        return lr * t / warmup
    if kind == "constant":
        return lr
    span = max(1, total - warmup)
    frac = min(1.0, max(0.0, (t - 1 - warmup) / span))
    lo = lr * min_ratio
    if kind == "linear":
        return lo + (lr - lo) * (1 - frac)
    return lo + (lr - lo) * 0.5 * (1 + math.cos(math.pi * frac))


def decays(name, shape):
    """heed's rule (src/train/adamw.ts): weight decay on matrices only, never norms or biases."""
    return len(shape) >= 2 and not re.search(r"norm|ln_", name)


# ----------------------------------------------------------------------------------------------
# model implementations


def transformers_available():
    try:
        import transformers  # noqa: F401
        return True
    except Exception:
        return False


class HfWrapper(torch.nn.Module):
    """transformers' AutoModelForCausalLM with heed's packed batches: a 4-D block-diagonal causal mask."""

    def __init__(self, model_dir):
        super().__init__()
        from transformers import AutoModelForCausalLM
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
        self.gradient_checkpointing = False

    def named_hf_parameters(self):
        return list(self.model.named_parameters())

    def forward(self, ids, positions, segments):
        T = ids.shape[1]
        i = torch.arange(T, device=ids.device)
        ok = (i[None, :] <= i[:, None])[None] & (segments[:, :, None] == segments[:, None, :])
        mask = torch.zeros(ok.shape, dtype=torch.float32, device=ids.device).masked_fill(~ok, torch.finfo(torch.float32).min)[:, None]
        return self.model(input_ids=ids, position_ids=positions, attention_mask=mask).logits

    def hf_state(self):
        return {k: v.detach().cpu().float().numpy() for k, v in self.model.state_dict().items()}


def build_model(impl, model_dir):
    if impl == "auto":
        impl = "hf" if transformers_available() else "heed"
    if impl == "hf":
        if not transformers_available():
            raise JobError("--model-impl hf: transformers is not importable (fix: pip install transformers, or --model-impl heed)")
        return HfWrapper(model_dir), "hf"
    sys.path.insert(0, HERE)
    from heed_model import load_heed_model
    return load_heed_model(model_dir), "heed"


# ----------------------------------------------------------------------------------------------
# run folder


def atomic_write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_metrics(path):
    """Complete, parseable lines of metrics.jsonl (a line cut mid-write is ignored)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def list_checkpoints(run_dir):
    out = []
    if os.path.isdir(run_dir):
        for f in os.listdir(run_dir):
            m = re.match(r"^step-(\d+)$", f)
            if m and os.path.exists(os.path.join(run_dir, f, "trainer_state.json")):
                out.append(int(m.group(1)))
    return sorted(out)


def best_from_metrics(run_dir, metric, mode):
    """The best value of `metric` over every record (train.py's own and heed watch's)."""
    best = None
    for r in read_metrics(os.path.join(run_dir, "metrics.jsonl")):
        v = r.get(metric)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if best is None or (v < best["value"] if mode == "min" else v > best["value"]):
                best = {"metric": metric, "value": v, "step": r["step"], "checkpoint": f"step-{r['step']}"}
    return best


def protected_steps(run_dir, metric, mode, job=None):
    keep = set()
    if job is not None and job.get("early_stopping"):
        # checkpoints at evaluation points stay until heed watch has evaluated them
        watched = {r["step"] for r in read_metrics(os.path.join(run_dir, "metrics.jsonl")) if r.get("source") == "heed watch"}
        ends, acc = set(), 0
        for s in job["stages"]:
            acc += s["steps"]
            ends.add(acc)
        every = job["train"]["eval_every"]
        keep |= {s for s in list_checkpoints(run_dir) if (s % every == 0 or s in ends) and s not in watched}
    b = best_from_metrics(run_dir, metric, mode)
    if b:
        keep.add(b["step"])
    try:  # heed watch names the checkpoint it is evaluating
        with open(os.path.join(run_dir, "WATCHING")) as f:
            keep.add(int(f.read().strip() or -1))
    except (OSError, ValueError):
        pass
    return keep


# ----------------------------------------------------------------------------------------------
# training


def main(argv=None):
    ap = argparse.ArgumentParser(description="train a heed job with PyTorch (DDP by default)")
    ap.add_argument("--job", default=HERE, help="the job folder (default: this file's folder)")
    ap.add_argument("--run-dir", help="the run folder (default: <job>/run)")
    ap.add_argument("--model-impl", choices=["auto", "heed", "hf"], default="auto", help="hf: transformers AutoModelForCausalLM; heed: heed_model.py (torch only); auto: hf when transformers is importable")
    ap.add_argument("--fsdp", action="store_true", help="FullyShardedDataParallel instead of DistributedDataParallel")
    ap.add_argument("--deepspeed", metavar="CONFIG.json", help="train through DeepSpeed with this config (accelerate/ds_zero3.json: ZeRO-3)")
    ap.add_argument("--micro-batch-size", type=int, help="sequences per forward pass on each process (default: the config's batch_size); does not change the numbers")
    ap.add_argument("--resume", action="store_true", help="continue the run folder from its last complete checkpoint")
    ap.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        return train(args)
    except JobError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def train(args):
    job_dir = os.path.abspath(args.job)
    job = load_job(job_dir)
    tc = job["train"]
    run_dir = os.path.abspath(args.run_dir or os.path.join(job_dir, "run"))

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    master = rank == 0
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if master and not args.quiet else (lambda s: None)

    # --- run folder: new or resumed
    ckpts = list_checkpoints(run_dir)
    metrics_path = os.path.join(run_dir, "metrics.jsonl")
    if not args.resume and (ckpts or os.path.exists(metrics_path)):
        raise JobError(f"{run_dir} already holds a run (fix: add --resume to continue it, or pass another --run-dir)")
    resume = None
    if args.resume and ckpts:
        last = os.path.join(run_dir, f"step-{ckpts[-1]}")
        with open(os.path.join(last, "trainer_state.json")) as f:
            st = json.load(f)
        if st.get("done"):
            raise JobError(f"{run_dir}: the run already finished at step {st['step']} (fix: export and start a new run to train further)")
        resume = (last, st)
    if args.resume and os.path.exists(os.path.join(run_dir, "STOP")):
        raise JobError(f"{run_dir}/STOP exists: the run was told to stop (fix: delete it to continue training)")
    if master:
        os.makedirs(run_dir, exist_ok=True)
        atomic_write(os.path.join(run_dir, "job.json"), json.dumps({**job, "job_dir": job_dir}, indent=2) + "\n")  # heed watch reads it
    if world > 1:
        dist.barrier()

    # --- model and optimizer
    model_dir = os.path.join(job_dir, job["model"]) if not os.path.isabs(job["model"]) else job["model"]
    model, impl = build_model(args.model_impl, model_dir)  # a resume then copies the exact f32 parameters in
    model.gradient_checkpointing = tc["checkpointing"] == "layers"
    named = model.named_hf_parameters()
    if resume and not args.deepspeed:
        blob = torch.load(os.path.join(resume[0], "optimizer.pt"), map_location="cpu")
        with torch.no_grad():
            for n, p in named:
                p.copy_(blob["params"][n])
    model.to(device)
    a = tc["adamw"]
    groups = [
        {"params": [p for n, p in named if decays(n, p.shape)], "weight_decay": a["weight_decay"]},
        {"params": [p for n, p in named if not decays(n, p.shape)], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    engine = None
    if args.deepspeed and args.fsdp:
        raise JobError("--deepspeed and --fsdp both given (fix: choose one)")
    if args.deepspeed:
        # DeepSpeed (ZeRO-3 with accelerate/ds_zero3.json): train.py keeps its own step composition and loss
        # normalisation; DeepSpeed shards, reduces, clips (gradient_clipping = grad_clip) and steps.
        import deepspeed
        with open(args.deepspeed) as f:
            ds_cfg = json.load(f)
        ds_cfg.update({"gradient_accumulation_steps": 1, "train_micro_batch_size_per_gpu": args.micro_batch_size or tc["batch_size"], "gradient_clipping": tc["grad_clip"]})
        base_opt = torch.optim.AdamW(groups, lr=tc["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"], foreach=False)
        engine, opt, _, _ = deepspeed.initialize(model=model, optimizer=base_opt, config=ds_cfg)
        wrapped = engine
        opt_params = None
        if resume:
            engine.load_checkpoint(os.path.join(run_dir, "deepspeed"), tag=f"step-{resume[1]['step']}")
    elif args.fsdp and world > 1:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        if int(torch.__version__.split(".")[0]) < 2:
            raise JobError(f"--fsdp needs torch >= 2.0 (use_orig_params keeps heed's per-parameter weight decay); this is torch {torch.__version__} (fix: upgrade torch or drop --fsdp)")
        wrapped = FSDP(model, use_orig_params=True, device_id=device if use_cuda else None)
        decay_names = {n for n, p in named if decays(n, p.shape)}  # decided on the unsharded shapes
        groups = [{"params": [p for n, p in wrapped.named_parameters() if hf_name(impl, n) in decay_names], "weight_decay": a["weight_decay"]},
                  {"params": [p for n, p in wrapped.named_parameters() if hf_name(impl, n) not in decay_names], "weight_decay": 0.0}]
        opt_params = [g for g in groups if g["params"]]
    elif world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(model, device_ids=[local_rank] if use_cuda else None)
        opt_params = groups
    else:
        wrapped = model
        opt_params = groups
    if engine is None:
        opt = torch.optim.AdamW(opt_params, lr=tc["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"], foreach=False)
        if resume:
            opt.load_state_dict(blob["optimizer"])

    # --- data and plan
    stages = [Stage(job_dir, s) for s in job["stages"]]
    eval_rows = Rows(os.path.join(job_dir, job["eval"]["dir"])) if job.get("eval") else None
    stage_steps = [s.spec["steps"] for s in stages]
    total = sum(stage_steps)
    mbs = args.micro_batch_size or tc["batch_size"]
    pad_id = job["pad_id"]
    mode = tc["loss_norm"]
    st = resume[1] if resume else {"version": 1, "step": 0, "stage": 0, "epoch": 0, "micro": 0, "stageStep": 0, "tokens": 0, "best": None, "stopped": None, "done": False}
    if master:
        kept = [r for r in read_metrics(metrics_path) if r.get("step", 0) <= st["step"]]
        atomic_write(metrics_path, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept))
    log(f"heed torch job {job['name']}: model {job['model']} ({impl} implementation), {world} process(es) on {device.type}, {'DeepSpeed' if engine is not None else 'FSDP' if args.fsdp and world > 1 else 'DDP' if world > 1 else 'one process'}")
    plan = ", ".join("%s %d steps" % (s.spec["name"], s.spec["steps"]) for s in stages)
    log(f"plan: {plan}; batch {tc['batch_size']}x{tc['grad_accum']} per step" + (f"; resuming from step {st['step']}" if resume else ""))

    flags = {"interrupt": False}

    def on_signal(sig, frame):
        flags["interrupt"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def forward_loss(seqs, norm):
        ids, w, pos, seg = make_batch(seqs, mode, pad_id, device)
        logits = wrapped(ids, pos, seg)
        nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
        return (nll * w[:, 1:].reshape(-1)).sum() / norm

    def eval_loss():
        if eval_rows is None or eval_rows.n == 0:
            return None
        wrapped.eval()
        s = torch.zeros(2, dtype=torch.float64)
        mine = list(range(rank, eval_rows.n, world))
        bs = tc["batch_size"]
        n_batches = -(-(-(-eval_rows.n // world)) // bs)  # the same on every process (sharded models gather per forward)
        with torch.no_grad():
            for i in range(0, n_batches * bs, bs):
                rows = mine[i:i + bs]
                seqs = [[eval_rows.row(r)] for r in rows] or [[(eval_rows.row(0)[0], np.zeros(len(eval_rows.row(0)[0])))]]
                ids, w, pos, seg = make_batch(seqs, "token", pad_id, device)
                logits = wrapped(ids, pos, seg)
                nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), reduction="none")
                s[0] += float((nll.double() * w[:, 1:].reshape(-1).double()).sum())
                s[1] += float(w[:, 1:].double().sum())
        if world > 1:
            dist.all_reduce(s)
        wrapped.train()
        return float(s[0] / s[1]) if s[1] > 0 else None

    def save_checkpoint():
        weights = None
        opt_state = None
        if engine is not None:
            import deepspeed
            with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
                if master:
                    weights = model.hf_state()
            engine.save_checkpoint(os.path.join(run_dir, "deepspeed"), tag=f"step-{st['step']}")  # sharded state for --resume
        elif args.fsdp and world > 1:
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP, StateDictType, FullStateDictConfig
            with FSDP.state_dict_type(wrapped, StateDictType.FULL_STATE_DICT, FullStateDictConfig(offload_to_cpu=True, rank0_only=True)):
                sd = wrapped.state_dict()
            weights = {hf_name(impl, k): v.detach().cpu().float().numpy() for k, v in sd.items()} if master else None
            opt_state = FSDP.full_optim_state_dict(wrapped, opt)
        else:
            weights = model.hf_state() if master else None
            opt_state = opt.state_dict()
        path = None
        if master:
            path = write_checkpoint(run_dir, st, weights, impl, model_dir, tc, opt_state)
            prune(run_dir, tc, job)
        if world > 1:
            dist.barrier()
        return path or os.path.join(run_dir, f"step-{st['step']}")

    wrapped.train()
    t0 = time.time()
    tokens0 = st["tokens"]
    last_ckpt = resume[0] if resume else None
    stopped = None
    interrupted = False
    last = {}
    while st["stage"] < len(stages):
        si = st["stage"]
        stage = stages[si]
        sp = stage.spec
        while st["stageStep"] < sp["steps"]:
            ts = time.time()
            epoch, s0, s1, micro_end, n_micro = (int(x) for x in stage.steps[st["stageStep"]])
            seqs = [stage.sequence(epoch, s) for s in range(s0, s1)]
            norm = step_norm(seqs, mode)
            mine = seqs[rank::world]
            # the same number of forward/backward passes on every process (FSDP / ZeRO-3 gather per pass); a
            # process with fewer sequences adds passes of weight 0
            n_chunks = max(1, -(-(-(-len(seqs) // world)) // mbs))
            chunks = [mine[i * mbs:(i + 1) * mbs] or None for i in range(n_chunks)]
            loss_sum = torch.zeros(1, dtype=torch.float64)
            for ci, chunk in enumerate(chunks):
                sync = ci == len(chunks) - 1
                ctx = wrapped.no_sync() if (engine is None and world > 1 and not sync and hasattr(wrapped, "no_sync")) else _null()
                with ctx:
                    l = forward_loss([seqs[0]], norm) * 0.0 if chunk is None else forward_loss(chunk, norm)
                    if engine is not None:
                        engine.set_gradient_accumulation_boundary(sync)
                        engine.backward(l * world)
                    else:
                        (l * world).backward()  # DDP/FSDP/DeepSpeed average over processes; the step's loss is their sum
                loss_sum += float(l.detach())
            if world > 1:
                dist.all_reduce(loss_sum)
            gnorm = None
            if engine is None:
                grads = [p.grad for p in wrapped.parameters() if p.grad is not None]
                sq = torch.zeros(1, dtype=torch.float64, device=device)
                for g in grads:
                    sq += g.detach().double().pow(2).sum()
                if args.fsdp and world > 1:
                    dist.all_reduce(sq)
                gnorm = float(sq.sqrt())
                clip = tc["grad_clip"]
                if clip > 0 and gnorm > clip:
                    for g in grads:
                        g.mul_(clip / (gnorm + 1e-6))
            t = st["stageStep"] + 1
            if tc["lr_reset_per_stage"]:
                lr = lr_at(sp["schedule"], sp["lr"], sp["warmup_steps"], sp["steps"], tc["min_lr_ratio"], t)
            else:
                lr = lr_at(tc["schedule"], tc["lr"], tc["warmup_steps"], total, tc["min_lr_ratio"], sum(stage_steps[:si]) + t)
            for g in opt.param_groups:
                g["lr"] = lr
            if engine is not None:
                engine.step()
                gnorm = float(engine.get_global_grad_norm() or 0.0)
            else:
                opt.step()
                opt.zero_grad(set_to_none=True)
            ntok = sum(sum(len(ids) for ids, _ in rows) for rows in seqs)
            st = {**st, "step": st["step"] + 1, "stageStep": t, "epoch": epoch, "micro": micro_end, "tokens": st["tokens"] + ntok}
            loss = float(loss_sum[0])
            secs = max(1e-9, time.time() - ts)
            rec = {"step": st["step"], "stage": si, "stage_name": sp["name"], "epoch": round(epoch + micro_end / max(1, n_micro), 4), "lr": lr, "loss": loss, "grad_norm": gnorm, "tokens": st["tokens"], "tokens_per_s": ntok / secs}
            last = {"loss": loss, "lr": lr}
            stage_end = t >= sp["steps"]
            eval_point = st["step"] % tc["eval_every"] == 0 or stage_end
            new_best = False
            if eval_point:
                el = eval_loss()
                if el is not None:
                    rec["eval_loss"] = el
                    last["eval_loss"] = el
                b = st["best"]
                v = rec.get(tc["best_metric"])
                if isinstance(v, float) and (b is None or (v < b["value"] if tc["best_mode"] == "min" else v > b["value"])):
                    st = {**st, "best": {"metric": tc["best_metric"], "value": v, "step": st["step"], "checkpoint": f"step-{st['step']}"}}
                    new_best = True
            if master:
                with open(metrics_path, "a") as f:
                    f.write(json.dumps(rec, separators=(",", ":")) + "\n")
                elapsed = time.time() - t0
                done_here = st["step"] - (resume[1]["step"] if resume else 0)
                eta = elapsed / max(1, done_here) * (total - st["step"])
                log(f"step {st['step']}/{total}  loss {loss:.4f}" + (f"  eval {rec['eval_loss']:.4f}" if "eval_loss" in rec else "") + f"  lr {lr:.3g}  {rec['tokens_per_s']:.0f} tok/s  ETA {eta:.0f} s")
            # stop requests: STOP file (heed watch) or a signal on any process; every process agrees
            flag = torch.zeros(2)
            if master and os.path.exists(os.path.join(run_dir, "STOP")):
                flag[0] = 1
            if flags["interrupt"]:
                flag[1] = 1
            if world > 1:
                dist.all_reduce(flag)
            stop_now, interrupt_now = bool(flag[0] > 0), bool(flag[1] > 0)
            if stop_now:
                stopped = read_stop(run_dir, st["step"])
            last_stage = stage_end and si == len(stages) - 1
            if last_stage or stop_now:
                st = {**st, "done": True, "stopped": {"reason": stopped["reason"]} if stopped else None}
            elif stage_end:
                st = {**st, "stage": si + 1, "stageStep": 0, "epoch": 0, "micro": 0}
            watch_point = eval_point and job.get("early_stopping") is not None
            if st["step"] % tc["save_every"] == 0 or stage_end or stop_now or interrupt_now or new_best or watch_point:
                last_ckpt = save_checkpoint()
            if stop_now or last_stage:
                break
            if interrupt_now:
                interrupted = True
                break
            if stage_end:
                break
        if st["done"] or interrupted:
            break

    if master:
        secs = time.time() - t0
        best = best_from_metrics(run_dir, tc["best_metric"], tc["best_mode"]) or st["best"]
        summary = {
            "run_dir": run_dir, "steps": st["step"], "tokens": st["tokens"], "seconds": secs,
            "tokens_per_s": (st["tokens"] - tokens0) / max(1e-9, secs), "final": last, "best": best,
            "last_checkpoint": last_ckpt, "stopped_early": stopped, "interrupted": interrupted,
            "stages": [{"name": s.spec["name"], "steps": s.spec["steps"]} for s in stages],
            "trainer": "torch", "world_size": world, "model_impl": impl, "fsdp": bool(args.fsdp and world > 1), "deepspeed": bool(engine is not None), "heed_version": HEED_VERSION,
        }
        atomic_write(os.path.join(run_dir, "summary.json"), json.dumps(summary, indent=2) + "\n")
        log(f"run: {run_dir}\nsteps: {st['step']}   tokens: {st['tokens']}   time: {secs:.1f} s")
        if stopped:
            log(f"stopped early at step {stopped['step']}: {stopped['reason']}")
        if interrupted:
            log(f"interrupted: checkpoint {last_ckpt}; continue with: bash launch.sh ... -- --resume")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return 130 if interrupted else 0


def hf_name(impl, module_name):
    """A wrapped module's parameter / state-dict name -> its Hugging Face name."""
    n = re.sub(r"^(_fsdp_wrapped_module\.|module\.)+", "", module_name)
    if impl == "heed":
        return re.sub(r"^params\.", "", n).replace("__", ".")
    return re.sub(r"^model\.", "", n, count=1)


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def read_stop(run_dir, step):
    reason = "STOP file"
    at = step
    try:
        with open(os.path.join(run_dir, "STOP")) as f:
            txt = f.read()
        try:
            j = json.loads(txt)
            reason = j.get("reason", reason)
            at = int(j.get("step", step))
        except ValueError:
            reason = txt.strip() or reason
    except OSError:
        pass
    return {"reason": reason, "step": at, "stopped_at_step": step}


def write_checkpoint(run_dir, st, weights, impl, model_dir, tc, opt_state):
    step = st["step"]
    final = os.path.join(run_dir, f"step-{step}")
    tmp = os.path.join(run_dir, f".tmp-step-{step}")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    cfg["torch_dtype"] = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}[tc["save_dtype"]]
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    for fn in TOKENIZER_FILES:
        if os.path.exists(os.path.join(model_dir, fn)):
            shutil.copyfile(os.path.join(model_dir, fn), os.path.join(tmp, fn))
    sys.path.insert(0, HERE)
    from heed_model import write_safetensors
    if impl == "hf" and cfg.get("tie_word_embeddings", cfg.get("model_type") == "gpt2"):
        weights.pop("lm_head.weight", None)
    write_safetensors(os.path.join(tmp, "model.safetensors"), weights, tc["save_dtype"], {"format": "pt"})
    params = {n: torch.from_numpy(np.array(a, dtype=np.float32)) for n, a in weights.items()}
    if opt_state is not None:  # (DeepSpeed keeps its sharded state in <run>/deepspeed/step-N)
        torch.save({"optimizer": opt_state, "params": params}, os.path.join(tmp, "optimizer.pt"))
    with open(os.path.join(tmp, "trainer_state.json"), "w") as f:
        json.dump({**st, "trainer": "torch"}, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    return final


def prune(run_dir, tc, job):
    cks = list_checkpoints(run_dir)
    keep = set(cks[-tc["keep_last"]:]) | protected_steps(run_dir, tc["best_metric"], tc["best_mode"], job)
    for s in cks:
        if s not in keep:
            shutil.rmtree(os.path.join(run_dir, f"step-{s}"), ignore_errors=True)
            shutil.rmtree(os.path.join(run_dir, "deepspeed", f"step-{s}"), ignore_errors=True)
    for f in os.listdir(run_dir):
        if f.startswith(".tmp-step-"):
            shutil.rmtree(os.path.join(run_dir, f), ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
