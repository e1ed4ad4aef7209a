#!/usr/bin/python3
"""Independent PyTorch reference for the Hugging Face causal-LM architectures heed supports.

Test tooling only (it produces expected logits for parity fixtures); it is not part of the
heed runtime. One file, no `transformers`, no `safetensors` package: torch + numpy + json + struct.

Usage
-----
    /usr/bin/python3 reference/hf_reference.py <model_dir> --ids 1,2,3,4 [--ids 5,6,7 ...] \
        --out expected.json [--dtype float64|float32] [--digits 7] [--hf-rope-f32]
    /usr/bin/python3 reference/hf_reference.py --self-test

<model_dir> holds config.json and model.safetensors, or model.safetensors.index.json + shards.
Every id sequence gets one full-sequence forward pass (batch 1, no KV cache, positions 0..T-1).
Output JSON:
    {"model_dir": ..., "config": <config.json as read>, "dtype": "float64", "digits": 7,
     "cases": [{"ids": [...], "logits": [[vocab floats] for each position]}]}

Architectures (the math of transformers' modeling_llama.py / modeling_mistral.py /
modeling_qwen2.py / modeling_gpt2.py, eager attention path):

  llama, mistral, qwen2
    h = embed_tokens[ids]
    per layer:  h = h + o_proj(attn(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))  n = rmsnorm(h)
                h = h + down_proj(act(gate_proj(n)) * up_proj(n))                   n = rmsnorm(h)
    logits = lm_head(rmsnorm(h))   (lm_head = embed_tokens when tie_word_embeddings)
    rmsnorm(x) = x * rsqrt(mean(x^2) + rms_norm_eps) * weight
    rope: non-interleaved "rotate_half"; inv_freq = 1 / theta^(arange(0, d, 2) / d)
    attention: causal, GQA (query head h reads kv head h // (n_heads / n_kv_heads)),
               scale 1/sqrt(head_dim); optional sliding window (see `allowed_keys`).
  gpt2
    h = wte[ids] + wpe[0..T-1]
    per layer:  h = h + c_proj(attn(split(c_attn(ln_1(h)))))
                h = h + mlp.c_proj(act(mlp.c_fc(ln_2(h))))         (Conv1D: y = x W + b, W is [in, out])
    logits = ln_f(h) @ wte^T
"""

import argparse
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch

# ----------------------------------------------------------------------------------------------
# safetensors (read + write), parsed by hand

# safetensors dtype name -> (numpy storage dtype, bytes per element)
_ST_DTYPES = {"F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (np.uint16, 2)}


def read_safetensors(path):
    """Return {name: float32-or-float64 numpy array} for one .safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len].decode("utf-8"))
    base = 8 + header_len
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        if dtype not in _ST_DTYPES:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dtype}")
        np_dtype, size = _ST_DTYPES[dtype]
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * size:
            raise ValueError(f"{path}: tensor {name!r} byte range does not match shape {shape} / {dtype}")
        arr = np.frombuffer(raw, dtype=np.dtype(np_dtype).newbyteorder("<"), count=count, offset=base + begin)
        if dtype == "BF16":  # bfloat16 = the high 16 bits of a float32
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        elif dtype == "F16":
            arr = arr.astype(np.float32)
        out[name] = arr.reshape(shape).copy()
    return out


def load_weights(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        weights = {}
        for shard in sorted(set(weight_map.values())):
            for name, arr in read_safetensors(os.path.join(model_dir, shard)).items():
                if name in weights:
                    raise ValueError(f"tensor {name!r} appears in more than one shard")
                weights[name] = arr
        missing = set(weight_map) - set(weights)
        if missing:
            raise ValueError(f"index lists tensors absent from the shards: {sorted(missing)[:5]}")
        return weights
    raise FileNotFoundError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """Write {name: numpy array} with every tensor stored as `dtype` (F32, F16 or BF16)."""
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype=np.float32)
        if dtype == "F32":
            data = a.astype("<f4").tobytes()
        elif dtype == "F16":
            data = a.astype("<f2").tobytes()
        elif dtype == "BF16":  # round to nearest even, as torch does
            bits = a.view(np.uint32).astype(np.uint64)
            bits = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
            data = bits.astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    head = json.dumps(header).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for blob in blobs:
            f.write(blob)


# ----------------------------------------------------------------------------------------------
# building blocks


def linear(x, w, b=None):
    """nn.Linear: w is [out, in]."""
    y = x @ w.T
    return y if b is None else y + b


def conv1d(x, w, b):
    """transformers' GPT-2 Conv1D: w is [in, out]."""
    return x @ w + b


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = (x - mu).pow(2).mean(-1, keepdim=True)  # biased, as nn.LayerNorm
    return (x - mu) * torch.rsqrt(var + eps) * w + b


def _gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


ACTIVATIONS = {  # transformers' ACT2FN names
    "silu": lambda x: x * torch.sigmoid(x),
    "swish": lambda x: x * torch.sigmoid(x),
    "gelu": lambda x: 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0))),
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "gelu_fast": _gelu_tanh,
    "relu": torch.relu,
    "quick_gelu": lambda x: x * torch.sigmoid(1.702 * x),
}


def activation(name):
    if name not in ACTIVATIONS:
        raise ValueError(f"unsupported activation {name!r}")
    return ACTIVATIONS[name]


def rope_inv_freq(theta, head_dim, scaling, hf_f32=False):
    """inv_freq as transformers' ROPE_INIT_FUNCTIONS (default / linear / llama3).

    hf_f32=True does the arithmetic in float32 like transformers; otherwise float64.
    """
    dt = torch.float32 if hf_f32 else torch.float64
    exponent = torch.arange(0, head_dim, 2, dtype=torch.int64).to(dt) / head_dim
    inv_freq = 1.0 / (theta ** exponent)
    rope_type = "default" if scaling is None else scaling.get("rope_type", scaling.get("type", "default"))
    if rope_type == "default":
        return inv_freq
    if rope_type == "linear":  # == dividing positions by factor
        return inv_freq / scaling["factor"]
    if rope_type == "llama3":
        factor = scaling["factor"]
        low_freq_factor = scaling["low_freq_factor"]
        high_freq_factor = scaling["high_freq_factor"]
        old_context_len = scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        # wavelen < high_freq_wavelen: keep; wavelen > low_freq_wavelen: divide by factor
        scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        # in between: interpolate with a smooth factor
        smooth = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        is_medium = ~(wavelen < high_freq_wavelen) & ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium, smoothed, scaled)
    raise ValueError(f"unsupported rope scaling type {rope_type!r}")


def rope_cos_sin(inv_freq, T, dtype):
    pos = torch.arange(T, dtype=inv_freq.dtype)
    freqs = pos[:, None] * inv_freq[None, :]  # [T, d/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [T, d]
    return emb.cos().to(dtype), emb.sin().to(dtype)


def rotate_half(x):
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):  # x [H, T, d], cos/sin [T, d]
    return x * cos + rotate_half(x) * sin


def allowed_keys(T, window):
    """Bool [T, T]: query i may read key j.

    Causal: j <= i. With a sliding window W (transformers' masking_utils.sliding_window_overlay):
    also j > i - W, i.e. each query reads at most W keys, itself included.
    """
    i = torch.arange(T)[:, None]
    j = torch.arange(T)[None, :]
    ok = j <= i
    if window is not None:
        ok = ok & (j > i - window)
    return ok


def attention(q, k, v, scale, window):
    """Vectorized eager attention. q [H, T, d]; k, v [Hkv, T, d]."""
    n_rep = q.shape[0] // k.shape[0]
    k = k.repeat_interleave(n_rep, dim=0)  # == transformers' repeat_kv
    v = v.repeat_interleave(n_rep, dim=0)
    scores = (q @ k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed_keys(q.shape[1], window), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def attention_naive(q, k, v, scale, window):
    """Per-position, per-head loop with a hand-written softmax (self-test cross-check)."""
    H, T, _ = q.shape
    n_rep = H // k.shape[0]
    out = torch.zeros_like(q)
    for h in range(H):
        kh = h // n_rep
        for t in range(T):
            first = 0 if window is None else max(0, t - window + 1)
            keys = range(first, t + 1)
            scores = [float(torch.dot(q[h, t], k[kh, j])) * scale for j in keys]
            m = max(scores)
            e = [math.exp(s - m) for s in scores]
            z = sum(e)
            acc = torch.zeros_like(q[h, t])
            for w, j in zip(e, keys):
                acc = acc + (w / z) * v[kh, j]
            out[h, t] = acc
    return out


# ----------------------------------------------------------------------------------------------
# models


class Weights:
    """Name -> tensor (in the compute dtype); tracks which names were used."""

    IGNORABLE_SUFFIXES = (".rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias")

    def __init__(self, arrays, dtype):
        self.t = {k: torch.from_numpy(np.asarray(v)).to(dtype) for k, v in arrays.items()}
        self.used = set()

    def has(self, name):
        return name in self.t

    def get(self, name, shape):
        if name not in self.t:
            raise KeyError(f"missing tensor {name!r}")
        w = self.t[name]
        if list(w.shape) != list(shape):
            raise ValueError(f"tensor {name!r} has shape {list(w.shape)}, expected {list(shape)}")
        self.used.add(name)
        return w

    def unused(self):
        return sorted(k for k in self.t if k not in self.used and not k.endswith(self.IGNORABLE_SUFFIXES))


def _required(cfg, key):
    if cfg.get(key) is None:
        raise ValueError(f"config.json lacks {key!r}")
    return cfg[key]


class LlamaFamily:
    """model_type llama, mistral, qwen2."""

    # transformers' config-class defaults for keys a config.json may omit
    KV_HEADS_DEFAULT = {"llama": None, "mistral": 8, "qwen2": 32}  # None -> num_attention_heads

    def __init__(self, cfg, arrays, dtype, hf_rope_f32=False):
        mt = cfg["model_type"]
        self.dtype = dtype
        self.V = _required(cfg, "vocab_size")
        self.D = _required(cfg, "hidden_size")
        self.L = _required(cfg, "num_hidden_layers")
        self.H = _required(cfg, "num_attention_heads")
        self.I = _required(cfg, "intermediate_size")
        kv = cfg.get("num_key_value_heads", self.KV_HEADS_DEFAULT[mt])
        self.Hkv = self.H if kv is None else kv
        if self.H % self.Hkv:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        self.hd = cfg.get("head_dim") or self.D // self.H
        self.eps = cfg.get("rms_norm_eps", 1e-6)
        self.act = activation(cfg.get("hidden_act", "silu"))
        if cfg.get("partial_rotary_factor", 1.0) != 1.0:
            raise ValueError("partial_rotary_factor != 1 is not supported for " + mt)

        # rope: legacy keys (rope_theta, rope_scaling) or transformers v5 `rope_parameters`
        rp = cfg.get("rope_parameters")
        theta = cfg.get("rope_theta", (rp or {}).get("rope_theta", 10000.0))
        scaling = cfg.get("rope_scaling") or rp
        self.inv_freq = rope_inv_freq(float(theta), self.hd, scaling, hf_rope_f32)

        # per-layer sliding window
        if mt == "mistral":
            sw = cfg.get("sliding_window", 4096)
            self.windows = [sw] * self.L
        elif mt == "qwen2":
            sw = cfg.get("sliding_window", 4096) if cfg.get("use_sliding_window", False) else None
            types = cfg.get("layer_types") or [
                "sliding_attention" if sw is not None and i >= cfg.get("max_window_layers", 28) else "full_attention"
                for i in range(self.L)
            ]
            self.windows = [sw if t == "sliding_attention" else None for t in types]
        else:
            self.windows = [None] * self.L

        qkv_bias = mt == "qwen2" or (mt == "llama" and cfg.get("attention_bias", False))
        o_bias = mt == "llama" and cfg.get("attention_bias", False)
        mlp_bias = mt == "llama" and cfg.get("mlp_bias", False)

        W = Weights(arrays, dtype)
        p = "model." if W.has("model.embed_tokens.weight") else ""
        D, I, H, Hkv, hd = self.D, self.I, self.H, self.Hkv, self.hd
        self.embed = W.get(p + "embed_tokens.weight", [self.V, D])
        self.layers = []
        for i in range(self.L):
            q = f"{p}layers.{i}."
            g = lambda n, s: W.get(q + n, s)  # noqa: E731
            b = lambda n, s, on: W.get(q + n, s) if on else None  # noqa: E731
            self.layers.append(dict(
                ln1=g("input_layernorm.weight", [D]),
                wq=g("self_attn.q_proj.weight", [H * hd, D]), bq=b("self_attn.q_proj.bias", [H * hd], qkv_bias),
                wk=g("self_attn.k_proj.weight", [Hkv * hd, D]), bk=b("self_attn.k_proj.bias", [Hkv * hd], qkv_bias),
                wv=g("self_attn.v_proj.weight", [Hkv * hd, D]), bv=b("self_attn.v_proj.bias", [Hkv * hd], qkv_bias),
                wo=g("self_attn.o_proj.weight", [D, H * hd]), bo=b("self_attn.o_proj.bias", [D], o_bias),
                ln2=g("post_attention_layernorm.weight", [D]),
                wg=g("mlp.gate_proj.weight", [I, D]), bg=b("mlp.gate_proj.bias", [I], mlp_bias),
                wu=g("mlp.up_proj.weight", [I, D]), bu=b("mlp.up_proj.bias", [I], mlp_bias),
                wd=g("mlp.down_proj.weight", [D, I]), bd=b("mlp.down_proj.bias", [D], mlp_bias),
            ))
        self.norm = W.get(p + "norm.weight", [D])
        if cfg.get("tie_word_embeddings", False):
            self.lm_head = self.embed
            W.used.add("lm_head.weight")  # transformers re-ties it to embed_tokens after loading
        else:
            self.lm_head = W.get("lm_head.weight", [self.V, D])
        self.unused = W.unused()
        self.params = W.t  # name -> tensor (reference/adamw_reference.py trains them)

    def forward(self, ids, attn=attention):
        T = len(ids)
        cos, sin = rope_cos_sin(self.inv_freq, T, self.dtype)
        x = self.embed[torch.tensor(ids)]  # [T, D]
        scale = self.hd ** -0.5
        for lw, window in zip(self.layers, self.windows):
            n = rms_norm(x, lw["ln1"], self.eps)
            q = linear(n, lw["wq"], lw["bq"]).view(T, self.H, self.hd).transpose(0, 1)
            k = linear(n, lw["wk"], lw["bk"]).view(T, self.Hkv, self.hd).transpose(0, 1)
            v = linear(n, lw["wv"], lw["bv"]).view(T, self.Hkv, self.hd).transpose(0, 1)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
            y = attn(q, k, v, scale, window).transpose(0, 1).reshape(T, self.H * self.hd)
            x = x + linear(y, lw["wo"], lw["bo"])
            n = rms_norm(x, lw["ln2"], self.eps)
            x = x + linear(self.act(linear(n, lw["wg"], lw["bg"])) * linear(n, lw["wu"], lw["bu"]), lw["wd"], lw["bd"])
        return linear(rms_norm(x, self.norm, self.eps), self.lm_head)


class GPT2:
    def __init__(self, cfg, arrays, dtype, hf_rope_f32=False):
        self.dtype = dtype
        self.V = cfg.get("vocab_size", 50257)
        self.D = cfg.get("n_embd", 768)
        self.L = cfg.get("n_layer", 12)
        self.H = cfg.get("n_head", 12)
        self.P = cfg.get("n_positions", 1024)
        self.I = cfg.get("n_inner") or 4 * self.D
        self.hd = self.D // self.H
        self.eps = cfg.get("layer_norm_epsilon", 1e-5)
        self.act = activation(cfg.get("activation_function", "gelu_new"))
        self.scale_attn_weights = cfg.get("scale_attn_weights", True)
        self.inverse_layer_idx = cfg.get("scale_attn_by_inverse_layer_idx", False)
        # reorder_and_upcast_attn only changes where the scale is applied and upcasts to float32:
        # the same math, so nothing to do here.

        W = Weights(arrays, dtype)
        p = "transformer." if W.has("transformer.wte.weight") else ""
        D, I = self.D, self.I
        self.wte = W.get(p + "wte.weight", [self.V, D])
        self.wpe = W.get(p + "wpe.weight", [self.P, D])
        self.layers = []
        for i in range(self.L):
            g = lambda n, s: W.get(f"{p}h.{i}.{n}", s)  # noqa: E731
            self.layers.append(dict(
                ln1w=g("ln_1.weight", [D]), ln1b=g("ln_1.bias", [D]),
                wqkv=g("attn.c_attn.weight", [D, 3 * D]), bqkv=g("attn.c_attn.bias", [3 * D]),
                wo=g("attn.c_proj.weight", [D, D]), bo=g("attn.c_proj.bias", [D]),
                ln2w=g("ln_2.weight", [D]), ln2b=g("ln_2.bias", [D]),
                wfc=g("mlp.c_fc.weight", [D, I]), bfc=g("mlp.c_fc.bias", [I]),
                wproj=g("mlp.c_proj.weight", [I, D]), bproj=g("mlp.c_proj.bias", [D]),
            ))
        self.lnfw = W.get(p + "ln_f.weight", [D])
        self.lnfb = W.get(p + "ln_f.bias", [D])
        if cfg.get("tie_word_embeddings", True):
            self.lm_head = self.wte
            W.used.add("lm_head.weight")  # transformers re-ties it to wte after loading
        else:
            self.lm_head = W.get("lm_head.weight", [self.V, D])
        self.unused = W.unused()
        self.params = W.t  # name -> tensor (reference/adamw_reference.py trains them)

    def forward(self, ids, attn=attention):
        T = len(ids)
        if T > self.P:
            raise ValueError(f"sequence of {T} tokens exceeds n_positions={self.P}")
        x = self.wte[torch.tensor(ids)] + self.wpe[:T]
        for i, lw in enumerate(self.layers):
            n = layer_norm(x, lw["ln1w"], lw["ln1b"], self.eps)
            q, k, v = conv1d(n, lw["wqkv"], lw["bqkv"]).split(self.D, dim=-1)
            q, k, v = (t.view(T, self.H, self.hd).transpose(0, 1) for t in (q, k, v))
            scale = 1.0
            if self.scale_attn_weights:
                scale /= self.hd ** 0.5
            if self.inverse_layer_idx:
                scale /= float(i + 1)
            y = attn(q, k, v, scale, None).transpose(0, 1).reshape(T, self.D)
            x = x + conv1d(y, lw["wo"], lw["bo"])
            n = layer_norm(x, lw["ln2w"], lw["ln2b"], self.eps)
            x = x + conv1d(self.act(conv1d(n, lw["wfc"], lw["bfc"])), lw["wproj"], lw["bproj"])
        return linear(layer_norm(x, self.lnfw, self.lnfb, self.eps), self.lm_head)


ARCHITECTURES = {"llama": LlamaFamily, "mistral": LlamaFamily, "qwen2": LlamaFamily, "gpt2": GPT2}


def load_model(model_dir, dtype=torch.float64, hf_rope_f32=False):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    mt = cfg.get("model_type")
    if mt not in ARCHITECTURES:
        raise ValueError(f"unsupported model_type {mt!r} (supported: {sorted(ARCHITECTURES)})")
    model = ARCHITECTURES[mt](cfg, load_weights(model_dir), dtype, hf_rope_f32)
    return cfg, model


def run_cases(model, id_lists, attn=attention):
    with torch.no_grad():
        outs = []
        for ids in id_lists:
            if not ids:
                raise ValueError("empty id sequence")
            bad = [i for i in ids if not 0 <= i < model.V]
            if bad:
                raise ValueError(f"token ids out of range [0, {model.V}): {bad}")
            outs.append(model.forward(ids, attn))
        return outs


# ----------------------------------------------------------------------------------------------
# CLI


def round_sig(values, digits):
    return [float(f"{v:.{digits}g}") for v in values]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir", nargs="?")
    ap.add_argument("--ids", action="append", default=[], help="comma-separated token ids; repeatable")
    ap.add_argument("--out", help="output JSON path")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--digits", type=int, default=7, help="significant digits kept in the JSON (default 7)")
    ap.add_argument("--hf-rope-f32", action="store_true",
                    help="build RoPE frequencies/angles in float32 exactly as transformers does")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args(argv)

    if args.self_test:
        return self_test()
    if not args.model_dir or not args.ids or not args.out:
        ap.error("model_dir, at least one --ids and --out are required (or --self-test)")

    id_lists = [[int(s) for s in arg.split(",") if s.strip()] for arg in args.ids]
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    cfg, model = load_model(args.model_dir, dtype, args.hf_rope_f32)
    if model.unused:
        print(f"warning: unused tensors in checkpoint: {model.unused}", file=sys.stderr)
    logits = run_cases(model, id_lists)
    cases = []
    for ids, lg in zip(id_lists, logits):
        if not torch.isfinite(lg).all():
            raise ValueError(f"non-finite logits for ids {ids}")
        cases.append({"ids": ids, "logits": [round_sig(row.tolist(), args.digits) for row in lg]})
    result = {"model_dir": args.model_dir, "config": cfg, "dtype": args.dtype, "digits": args.digits,
              "cases": cases}
    with open(args.out, "w") as f:
        json.dump(result, f)
    print(f"wrote {args.out}: model_type={cfg['model_type']} cases={len(cases)} "
          f"positions={sum(len(c['ids']) for c in cases)} vocab={model.V}", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------------------
# self-test


def _rand_tensors(spec, seed, std=0.3):
    """Random float32 weights: norm gains near 1, norm biases near 0, everything else N(0, std^2)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in spec.items():
        is_norm = "norm." in name or ".ln_" in name or name.startswith(("ln_f.", "transformer.ln_f."))
        if is_norm and name.endswith(".weight"):
            t = 1.0 + 0.2 * torch.randn(shape, generator=g)
        elif is_norm:
            t = 0.1 * torch.randn(shape, generator=g)
        else:
            t = std * torch.randn(shape, generator=g)
        out[name] = t.to(torch.float32).numpy()
    return out


def _llama_spec(cfg, prefix="model."):
    D, I, H, L, V = (cfg[k] for k in ("hidden_size", "intermediate_size", "num_attention_heads",
                                      "num_hidden_layers", "vocab_size"))
    Hkv = cfg.get("num_key_value_heads", H)
    hd = cfg.get("head_dim") or D // H
    mt = cfg["model_type"]
    qkv_bias = mt == "qwen2" or cfg.get("attention_bias", False)
    spec = {prefix + "embed_tokens.weight": [V, D], prefix + "norm.weight": [D]}
    for i in range(L):
        q = f"{prefix}layers.{i}."
        spec.update({q + "input_layernorm.weight": [D], q + "post_attention_layernorm.weight": [D],
                     q + "self_attn.q_proj.weight": [H * hd, D], q + "self_attn.k_proj.weight": [Hkv * hd, D],
                     q + "self_attn.v_proj.weight": [Hkv * hd, D], q + "self_attn.o_proj.weight": [D, H * hd],
                     q + "mlp.gate_proj.weight": [I, D], q + "mlp.up_proj.weight": [I, D],
                     q + "mlp.down_proj.weight": [D, I]})
        if qkv_bias:
            spec.update({q + "self_attn.q_proj.bias": [H * hd], q + "self_attn.k_proj.bias": [Hkv * hd],
                         q + "self_attn.v_proj.bias": [Hkv * hd]})
        if mt == "llama" and cfg.get("attention_bias", False):
            spec[q + "self_attn.o_proj.bias"] = [D]
        if mt == "llama" and cfg.get("mlp_bias", False):
            spec.update({q + "mlp.gate_proj.bias": [I], q + "mlp.up_proj.bias": [I], q + "mlp.down_proj.bias": [D]})
    if not cfg.get("tie_word_embeddings", False):
        spec["lm_head.weight"] = [V, D]
    return spec


def _gpt2_spec(cfg, prefix=""):
    D, L, V, P = cfg["n_embd"], cfg["n_layer"], cfg["vocab_size"], cfg["n_positions"]
    I = cfg.get("n_inner") or 4 * D
    spec = {prefix + "wte.weight": [V, D], prefix + "wpe.weight": [P, D],
            prefix + "ln_f.weight": [D], prefix + "ln_f.bias": [D]}
    for i in range(L):
        q = f"{prefix}h.{i}."
        spec.update({q + "ln_1.weight": [D], q + "ln_1.bias": [D], q + "ln_2.weight": [D], q + "ln_2.bias": [D],
                     q + "attn.c_attn.weight": [D, 3 * D], q + "attn.c_attn.bias": [3 * D],
                     q + "attn.c_proj.weight": [D, D], q + "attn.c_proj.bias": [D],
                     q + "mlp.c_fc.weight": [D, I], q + "mlp.c_fc.bias": [I],
                     q + "mlp.c_proj.weight": [I, D], q + "mlp.c_proj.bias": [D]})
    return spec


def _write_model(root, name, cfg, tensors, dtype="F32", shards=1):
    d = os.path.join(root, name)
    os.makedirs(d)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    if shards == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), tensors, dtype, {"format": "pt"})
    else:
        names = list(tensors)
        weight_map = {}
        for s in range(shards):
            fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
            part = {n: tensors[n] for n in names[s::shards]}
            write_safetensors(os.path.join(d, fname), part, dtype)
            weight_map.update({n: fname for n in part})
        with open(os.path.join(d, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f)
    return d


def _self_test_models(root):
    """(name, model_dir) for a spread of tiny configs covering every supported feature."""
    models = []
    llama3 = dict(model_type="llama", vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, head_dim=16, rms_norm_eps=1e-5,
                  rope_theta=10000.0, max_position_embeddings=256, tie_word_embeddings=False,
                  rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                    original_max_position_embeddings=64))
    models.append(("llama-gqa-llama3rope-headdim-sharded",
                   _write_model(root, "llama1", llama3, _rand_tensors(_llama_spec(llama3), 1), "F32", shards=3)))
    llama_bias = dict(model_type="llama", vocab_size=61, hidden_size=24, intermediate_size=40, num_hidden_layers=2,
                      num_attention_heads=3, rms_norm_eps=1e-6, rope_theta=500.0, attention_bias=True,
                      mlp_bias=True, tie_word_embeddings=True, rope_scaling=dict(type="linear", factor=2.0))
    models.append(("llama-bias-linearrope-tied",
                   _write_model(root, "llama2", llama_bias, _rand_tensors(_llama_spec(llama_bias), 2))))
    mistral = dict(model_type="mistral", vocab_size=83, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=1, rms_norm_eps=1e-5, rope_theta=1000.0,
                   sliding_window=3, tie_word_embeddings=False)
    models.append(("mistral-mqa-window3-f16",
                   _write_model(root, "mistral", mistral, _rand_tensors(_llama_spec(mistral), 3), "F16")))
    qwen2 = dict(model_type="qwen2", vocab_size=71, hidden_size=32, intermediate_size=56, num_hidden_layers=3,
                 num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6, rope_theta=1000000.0,
                 tie_word_embeddings=True, use_sliding_window=False, sliding_window=2, max_window_layers=1)
    models.append(("qwen2-bias-tied-bf16",
                   _write_model(root, "qwen2", qwen2, _rand_tensors(_llama_spec(qwen2), 4), "BF16")))
    gpt2 = dict(model_type="gpt2", vocab_size=89, n_embd=32, n_layer=2, n_head=4, n_positions=16,
                layer_norm_epsilon=1e-5, activation_function="gelu_new")
    models.append(("gpt2-plain-f16", _write_model(root, "gpt2a", gpt2, _rand_tensors(_gpt2_spec(gpt2), 5), "F16")))
    gpt2b = dict(gpt2, n_layer=3, n_inner=40, scale_attn_by_inverse_layer_idx=True, reorder_and_upcast_attn=True)
    t = _rand_tensors(_gpt2_spec(gpt2b, "transformer."), 6)
    t["lm_head.weight"] = t["transformer.wte.weight"].copy()
    models.append(("gpt2-prefixed-invlayer-lmhead", _write_model(root, "gpt2b", gpt2b, t)))
    return models


def self_test():
    results = []

    def check(name, ok, detail=""):
        results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'} {name}" + (f"  ({detail})" if detail else ""), flush=True)

    torch.manual_seed(0)

    # safetensors round trip, including bf16 rounding and header metadata
    with tempfile.TemporaryDirectory() as root:
        a = {"x": np.array([[1.0, -2.5, 3.14159], [1e-3, 65504.0, -0.0]], np.float32), "y": np.arange(5, dtype=np.float32)}
        for dt, tol in (("F32", 0.0), ("F16", 1e-3), ("BF16", 8e-3)):
            p = os.path.join(root, f"t_{dt}.safetensors")
            write_safetensors(p, a, dt, {"format": "pt"})
            b = read_safetensors(p)
            err = max(float(np.max(np.abs(b[k] - a[k]) / np.maximum(1.0, np.abs(a[k])))) for k in a)
            ref_bf16 = torch.from_numpy(a["x"]).to(torch.bfloat16).to(torch.float32).numpy()
            exact = dt != "BF16" or np.array_equal(b["x"], ref_bf16)
            check(f"safetensors round trip {dt}", err <= tol and exact, f"max rel err {err:.2e}")

    # rotate_half RoPE == complex rotation of (x[i], x[i + d/2]) pairs
    d, T = 8, 5
    inv = rope_inv_freq(10000.0, d, None)
    cos, sin = rope_cos_sin(inv, T, torch.float64)
    x = torch.randn(2, T, d, dtype=torch.float64)
    z = torch.complex(x[..., : d // 2], x[..., d // 2:]) * torch.polar(
        torch.ones(T, d // 2, dtype=torch.float64), torch.arange(T, dtype=torch.float64)[:, None] * inv)
    err = float((apply_rope(x, cos, sin) - torch.cat([z.real, z.imag], -1)).abs().max())
    check("rope rotate_half == complex rotation of split halves", err < 1e-12, f"max err {err:.1e}")

    # llama3 rope scaling == Meta's scalar loop, all three branches exercised
    sc = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
              original_max_position_embeddings=8192)
    vec = rope_inv_freq(500000.0, 128, sc)
    loop, branches = [], set()
    for i in range(0, 128, 2):
        f = 1.0 / (500000.0 ** (i / 128))
        wl = 2 * math.pi / f
        if wl < 8192 / 4.0:
            loop.append(f), branches.add("high")
        elif wl > 8192 / 1.0:
            loop.append(f / 8.0), branches.add("low")
        else:
            s = (8192 / wl - 1.0) / (4.0 - 1.0)
            loop.append((1 - s) * f / 8.0 + s * f), branches.add("mid")
    err = float((vec - torch.tensor(loop, dtype=torch.float64)).abs().max() / vec.abs().max())
    check("llama3 inv_freq == scalar loop", err < 1e-12 and len(branches) == 3, f"branches={sorted(branches)}")
    err = float(((rope_inv_freq(500000.0, 128, sc, hf_f32=True).double() - vec) / vec).abs().max())
    check("llama3 inv_freq float32 path ~ float64 path", err < 1e-6, f"max rel err {err:.1e}")

    with tempfile.TemporaryDirectory() as root:
        for name, model_dir in _self_test_models(root):
            _, m64 = load_model(model_dir, torch.float64)
            _, m32 = load_model(model_dir, torch.float32)
            check(f"{name}: every checkpoint tensor used", not m64.unused, str(m64.unused) if m64.unused else "")
            g = torch.Generator().manual_seed(7)
            long_ids = torch.randint(0, m64.V, (9,), generator=g).tolist()
            prefix = long_ids[:5]
            full64, pre64 = run_cases(m64, [long_ids, prefix])
            (full32,) = run_cases(m32, [long_ids])
            scale = float(full64.abs().max())
            check(f"{name}: logits non-trivial", scale > 1.0 and float(full64.std()) > 0.3,
                  f"max |logit| {scale:.2f}")
            err = float((pre64 - full64[: len(prefix)]).abs().max())
            check(f"{name}: (a) prefix logits == leading rows of longer sequence", err < 1e-10, f"max err {err:.1e}")
            err = float((full32.double() - full64).abs().max())
            check(f"{name}: (b) float32 vs float64 agree to 1e-4", err < 1e-4, f"max err {err:.1e}")
            (naive,) = run_cases(m64, [long_ids], attn=attention_naive)
            err = float((naive - full64).abs().max())
            check(f"{name}: (c) vectorized attention == naive per-position loop", err < 1e-10, f"max err {err:.1e}")

        # sliding-window boundary, made observable with a one-layer mistral (window W=3):
        # the logits at position t must ignore token t-W and depend on token t-W+1.
        mcfg = dict(model_type="mistral", vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                    num_attention_heads=2, num_key_value_heads=2, sliding_window=3, tie_word_embeddings=False)
        _, m = load_model(_write_model(root, "mistral1", mcfg, _rand_tensors(_llama_spec(mcfg), 8)))
        ids = [3, 14, 15, 9, 26, 5, 35, 8]
        t, W = 7, 3
        base, = run_cases(m, [ids])
        far, near = list(ids), list(ids)
        far[t - W] = (far[t - W] + 1) % 50
        near[t - W + 1] = (near[t - W + 1] + 1) % 50
        lf, ln = run_cases(m, [far, near])
        d_far = float((lf[t] - base[t]).abs().max())
        d_near = float((ln[t] - base[t]).abs().max())
        check("mistral window W=3: query t reads keys t-2..t only", d_far == 0.0 and d_near > 1e-6,
              f"change at t-W: {d_far:.1e}, at t-W+1: {d_near:.1e}")

        # qwen2 use_sliding_window + max_window_layers: layer 0 full, layer 1 windowed
        qcfg = dict(model_type="qwen2", vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, use_sliding_window=True, sliding_window=2,
                    max_window_layers=1)
        _, q = load_model(_write_model(root, "qwen2w", qcfg, _rand_tensors(_llama_spec(qcfg), 9)))
        check("qwen2 sliding window only on layers >= max_window_layers", q.windows == [None, 2], str(q.windows))

        # the CLI end to end
        out = os.path.join(root, "expected.json")
        rc = main([os.path.join(root, "gpt2a"), "--ids", "1,2,3", "--ids", "4,5", "--out", out])
        with open(out) as f:
            res = json.load(f)
        shapes = [(len(c["logits"]), len(c["logits"][0])) for c in res["cases"]]
        check("CLI writes expected JSON", rc == 0 and shapes == [(3, 89), (2, 89)] and res["config"]["n_embd"] == 32,
              f"shapes {shapes}")

    n_fail = results.count(False)
    print(f"{'PASS' if n_fail == 0 else 'FAIL'}: {len(results) - n_fail}/{len(results)} checks passed")
    return 0 if n_fail == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
