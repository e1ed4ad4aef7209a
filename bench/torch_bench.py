"""PyTorch side of `npm run bench`: the same Llama / GPT-2 math as src/models/transformer.ts, one measurement
per process. Usage: python3 bench/torch_bench.py '<spec json>' | --version

spec (written by bench/bench.ts and bench/train-bench.ts): measure (fwd | decode | train), config (a Hugging Face
config.json object), batch [B, T], warmup, iters, budgetS, threads, promptLen, newTokens, seed; for train also
(optional, bench/train-bench.ts) adamw {lr, beta1, beta2, eps, weightDecay} (default lr 1e-3, betas 0.9/0.95,
eps 1e-8, weight decay 0.1 on matrices), gradClip (global norm, 0 = off, default 0) and lora {r, alpha, targets}
(freeze the base model; adapters A [r, in] / B [out, r] on the targeted projections, scale alpha / r, AdamW on
the adapters only, as src/train/lora.ts).
Prints one line "@@BENCH {json}" (tokPerS, medianMs, peakRssMb, ...). Random weights (normal 0.02, norms 1).
"""
import json
import math
import resource
import statistics
import sys
import time

TAG = '@@BENCH '


def emit(res):
    print(TAG + json.dumps(res), flush=True)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s():
    ru = resource.getrusage(resource.RUSAGE_SELF)  # the whole process, all threads
    return ru.ru_utime + ru.ru_stime


if len(sys.argv) > 1 and sys.argv[1] == '--version':
    try:
        import torch
        emit({'ok': True, 'version': torch.__version__})
    except Exception as e:  # noqa: BLE001
        emit({'ok': False, 'error': f'{type(e).__name__}: {e}'})
        sys.exit(1)
    sys.exit(0)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402


class Llama(nn.Module):
    """Llama / SmolLM2: RMSNorm, RoPE (rotate_half), grouped-query attention, SwiGLU, optional tied head."""

    def __init__(self, c):
        super().__init__()
        self.V, self.D, self.L = c['vocab_size'], c['hidden_size'], c['num_hidden_layers']
        self.H = c['num_attention_heads']
        self.KV = c.get('num_key_value_heads') or self.H
        self.hd = c.get('head_dim') or self.D // self.H
        self.I = c['intermediate_size']
        self.eps = c.get('rms_norm_eps', 1e-6)
        self.tied = c.get('tie_word_embeddings', False)
        qkv_bias = c['model_type'] == 'qwen2' or c.get('attention_bias', False)
        theta = c.get('rope_theta', 10000.0)
        self.register_buffer('inv_freq', 1.0 / theta ** (torch.arange(0, self.hd, 2, dtype=torch.float32) / self.hd), persistent=False)
        self.embed = nn.Embedding(self.V, self.D)
        self.layers = nn.ModuleList()
        for _ in range(self.L):
            m = nn.Module()
            m.ln1 = nn.Parameter(torch.ones(self.D))
            m.q = nn.Linear(self.D, self.H * self.hd, bias=qkv_bias)
            m.k = nn.Linear(self.D, self.KV * self.hd, bias=qkv_bias)
            m.v = nn.Linear(self.D, self.KV * self.hd, bias=qkv_bias)
            m.o = nn.Linear(self.H * self.hd, self.D, bias=False)
            m.ln2 = nn.Parameter(torch.ones(self.D))
            m.gate = nn.Linear(self.D, self.I, bias=False)
            m.up = nn.Linear(self.D, self.I, bias=False)
            m.down = nn.Linear(self.I, self.D, bias=False)
            self.layers.append(m)
        self.norm = nn.Parameter(torch.ones(self.D))
        self.head = None if self.tied else nn.Linear(self.D, self.V, bias=False)

    def rms(self, x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * w

    @staticmethod
    def rope(x, cos, sin):
        x1, x2 = x.chunk(2, dim=-1)
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)

    def forward(self, ids, pos0=0, cache=None):
        """ids [B,T]; cache: list of (k, v) buffers [B,KV,cap,hd] filled up to pos0 (updated in place)."""
        B, T = ids.shape
        pos = torch.arange(pos0, pos0 + T, dtype=torch.float32)
        ang = pos[:, None] * self.inv_freq[None, :]  # [T, hd/2]
        cos, sin = ang.cos(), ang.sin()
        S = pos0 + T
        mask = None
        if T > 1:
            mask = torch.full((T, S), float('-inf')).triu(pos0 + 1)
        x = self.embed(ids)
        rep = self.H // self.KV
        for i, m in enumerate(self.layers):
            h = self.rms(x, m.ln1)
            q = self.rope(m.q(h).view(B, T, self.H, self.hd).transpose(1, 2), cos, sin)
            k = self.rope(m.k(h).view(B, T, self.KV, self.hd).transpose(1, 2), cos, sin)
            v = m.v(h).view(B, T, self.KV, self.hd).transpose(1, 2)
            if cache is not None:
                ck, cv = cache[i]
                ck[:, :, pos0:S] = k
                cv[:, :, pos0:S] = v
                k, v = ck[:, :, :S], cv[:, :, :S]
            q = q.reshape(B, self.KV, rep, T, self.hd)
            att = (q @ k.unsqueeze(2).transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
            if mask is not None:
                att = att + mask
            y = att.softmax(-1) @ v.unsqueeze(2)  # [B,KV,rep,T,hd]
            y = y.reshape(B, self.H, T, self.hd).transpose(1, 2).reshape(B, T, self.H * self.hd)
            x = x + m.o(y)
            h = self.rms(x, m.ln2)
            x = x + m.down(F.silu(m.gate(h)) * m.up(h))
        x = self.rms(x, self.norm)
        return x @ self.embed.weight.t() if self.head is None else self.head(x)

    def new_cache(self, B, cap):
        return [(torch.zeros(B, self.KV, cap, self.hd), torch.zeros(B, self.KV, cap, self.hd)) for _ in range(self.L)]


class Gpt2(nn.Module):
    """GPT-2: learned positions, pre-LayerNorm, GELU (tanh), tied head (Linear layers stand in for Conv1D)."""

    def __init__(self, c):
        super().__init__()
        self.V, self.D, self.L, self.H = c['vocab_size'], c['n_embd'], c['n_layer'], c['n_head']
        self.hd = self.D // self.H
        self.I = c.get('n_inner') or 4 * self.D
        eps = c.get('layer_norm_epsilon', 1e-5)
        self.wte = nn.Embedding(self.V, self.D)
        self.wpe = nn.Embedding(c['n_positions'], self.D)
        self.layers = nn.ModuleList()
        for _ in range(self.L):
            m = nn.Module()
            m.ln1 = nn.LayerNorm(self.D, eps=eps)
            m.attn = nn.Linear(self.D, 3 * self.D)
            m.proj = nn.Linear(self.D, self.D)
            m.ln2 = nn.LayerNorm(self.D, eps=eps)
            m.fc = nn.Linear(self.D, self.I)
            m.fc2 = nn.Linear(self.I, self.D)
            self.layers.append(m)
        self.lnf = nn.LayerNorm(self.D, eps=eps)

    def forward(self, ids, pos0=0, cache=None):
        B, T = ids.shape
        S = pos0 + T
        x = self.wte(ids) + self.wpe(torch.arange(pos0, S))
        mask = torch.full((T, S), float('-inf')).triu(pos0 + 1) if T > 1 else None
        for i, m in enumerate(self.layers):
            q, k, v = m.attn(m.ln1(x)).split(self.D, dim=2)
            q = q.view(B, T, self.H, self.hd).transpose(1, 2)
            k = k.view(B, T, self.H, self.hd).transpose(1, 2)
            v = v.view(B, T, self.H, self.hd).transpose(1, 2)
            if cache is not None:
                ck, cv = cache[i]
                ck[:, :, pos0:S] = k
                cv[:, :, pos0:S] = v
                k, v = ck[:, :, :S], cv[:, :, :S]
            att = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.hd))
            if mask is not None:
                att = att + mask
            y = (att.softmax(-1) @ v).transpose(1, 2).reshape(B, T, self.D)
            x = x + m.proj(y)
            x = x + m.fc2(F.gelu(m.fc(m.ln2(x)), approximate='tanh'))
        return self.lnf(x) @ self.wte.weight.t()

    def new_cache(self, B, cap):
        return [(torch.zeros(B, self.H, cap, self.hd), torch.zeros(B, self.H, cap, self.hd)) for _ in range(self.L)]


def build(c, seed):
    torch.manual_seed(seed)
    model = Gpt2(c) if c['model_type'] == 'gpt2' else Llama(c)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                nn.init.normal_(p, std=0.02)
            elif 'ln' in name or 'norm' in name:
                p.fill_(1.0)
            else:
                p.zero_()
    return model


class LoraLinear(nn.Module):
    """y = base(x) + scale * (x A^T) B^T with the base frozen; A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0 (as PEFT / heed)."""

    def __init__(self, base, r, scale):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        bound = 1.0 / math.sqrt(base.in_features)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features).uniform_(-bound, bound))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r))
        self.scale = scale

    def forward(self, x):
        return self.base(x) + (x @ self.lora_A.t() @ self.lora_B.t()) * self.scale


def add_lora(model, lc):
    """Freeze every parameter, then wrap the targeted projections of every layer (Llama family only)."""
    if not isinstance(model, Llama):
        raise ValueError('LoRA in torch_bench.py is implemented for the Llama family only')
    for p in model.parameters():
        p.requires_grad_(False)
    scale = lc['alpha'] / lc['r']
    for m in model.layers:
        for t in lc['targets']:
            setattr(m, t, LoraLinear(getattr(m, t), lc['r'], scale))


def time_loop(fn, warmup, iters, budget_s):
    first = None
    for i in range(warmup):
        t0 = time.perf_counter()
        fn()
        if i == 0:
            first = (time.perf_counter() - t0) * 1e3
    times, spent = [], 0.0
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        times.append(dt * 1e3)
        spent += dt
        if spent > budget_s and len(times) >= 2:
            break
    return times, first


def main(spec):
    torch.set_num_threads(spec['threads'])
    c = spec['config']
    model = build(c, spec['seed'])
    params = sum(p.numel() for p in model.parameters())
    base = {'ok': True, 'engine': f'PyTorch {torch.__version__} (CPU, {torch.get_num_threads()} threads)', 'version': torch.__version__,
            'threads': torch.get_num_threads(), 'params': params}
    g = torch.Generator().manual_seed(spec['seed'] + 1)
    V = model.V
    B, T = spec['batch']
    m = spec['measure']

    if m == 'fwd':
        ids = torch.randint(0, V, (B, T), generator=g)

        def fwd():
            with torch.no_grad():
                model(ids).sum().item()  # .item() waits for the result, as heed waits for the logits
        times, first = time_loop(fwd, spec['warmup'], spec['iters'], spec['budgetS'])
        md = statistics.median(times)
        return {**base, 'batch': [B, T], 'tokPerS': B * T / (md / 1e3), 'medianMs': md, 'timesMs': times, 'firstMs': first, 'peakRssMb': peak_rss_mb()}

    if m == 'decode':
        P, N = spec['promptLen'], spec['newTokens']
        prompt = torch.randint(0, V, (1, P), generator=g)
        step_times, prefills, runs, gen = [], [], [], []
        for r in range(spec['warmup'] + spec['iters']):
            with torch.no_grad():
                t0 = time.perf_counter()
                cache = model.new_cache(1, P + N)
                logits = model(prompt, 0, cache)[:, -1]
                tok = int(logits.argmax(-1))
                t_prev = time.perf_counter()
                pf = t_prev - t0
                out, steps = [tok], []
                for i in range(N - 1):
                    logits = model(torch.tensor([[tok]]), P + i, cache)[:, -1]
                    tok = int(logits.argmax(-1))
                    out.append(tok)
                    now = time.perf_counter()
                    steps.append((now - t_prev) * 1e3)
                    t_prev = now
                t1 = time.perf_counter()
            gen = out
            if r < spec['warmup']:
                continue
            prefills.append(pf * 1e3)
            runs.append((t1 - t0) * 1e3)
            step_times += steps
            if sum(runs) / 1e3 > spec['budgetS']:
                break
        md = statistics.median(step_times)
        return {**base, 'promptLen': P, 'newTokens': N, 'tokPerS': 1e3 / md, 'medianMs': md, 'meanTokPerS': len(step_times) / (sum(step_times) / 1e3),
                'prefillMs': statistics.median(prefills), 'runMs': runs, 'generated': gen[:8], 'peakRssMb': peak_rss_mb()}

    # train: loss (mean next-token cross-entropy) + backward [+ clipping] + AdamW (no decay on norms / biases / LoRA factors, as heed)
    ids = torch.randint(0, V, (B, T), generator=g)
    lora = spec.get('lora')
    if lora:
        add_lora(model, lora)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    a = {'lr': 1e-3, 'beta1': 0.9, 'beta2': 0.95, 'eps': 1e-8, 'weightDecay': 0.1, **(spec.get('adamw') or {})}
    decay = [p for n, p in trainable if p.dim() >= 2 and 'lora_' not in n]
    no_decay = [p for n, p in trainable if p.dim() < 2 or 'lora_' in n]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': a['weightDecay']}, {'params': no_decay, 'weight_decay': 0.0}], lr=a['lr'], betas=(a['beta1'], a['beta2']), eps=a['eps'])
    clip = spec.get('gradClip') or 0
    params_t = [p for _, p in trainable]
    losses, norms = [], []
    base['trainableParams'] = sum(p.numel() for p in params_t)

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(ids)
        loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1))
        loss.backward()
        if clip > 0:
            norms.append(float(torch.nn.utils.clip_grad_norm_(params_t, clip)))
        opt.step()
        losses.append(loss.item())
    times, first = time_loop(step, spec['warmup'], spec['iters'], spec['budgetS'])
    md = statistics.median(times)
    return {**base, 'batch': [B, T], 'tokPerS': B * T / (md / 1e3), 'medianMs': md, 'timesMs': times, 'firstMs': first, 'loss': losses, 'gradNorm': norms, 'peakRssMb': peak_rss_mb()}


if __name__ == '__main__':
    spec = json.loads(sys.argv[1])
    try:
        res = main(spec)
    except Exception as e:  # noqa: BLE001
        emit({'ok': False, 'error': f'{type(e).__name__}: {e}'[:600], 'doesNotFit': isinstance(e, MemoryError), 'peakRssMb': peak_rss_mb()})
        sys.exit(1)
    res['cpuS'] = cpu_s()
    emit(res)
