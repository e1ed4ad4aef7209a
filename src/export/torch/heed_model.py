"""heed's PyTorch implementation of its architectures, as a trainable nn.Module (`train.py --model-impl heed`).

Copied into every job folder by `heed export torch`; needs torch + numpy only (no transformers, no safetensors
package). The math is the project's independent reference (reference/hf_reference.py, which the parity tests
check against heed's engine to 1e-4 in logits), extended to what training needs: batches of packed rows
(positions reset per row, a block-diagonal causal mask from segment ids), trainable parameters under their
Hugging Face names, and safetensors read/write so checkpoints are Hugging Face folders.

  llama, mistral, qwen2 : RMSNorm, RoPE (default / linear / llama3), GQA, SwiGLU, optional q/k/v/o/MLP biases,
                          tied or untied head, optional sliding window (mistral; qwen2 per layer)
  gpt2                  : learned positions, LayerNorm, GELU-tanh, Conv1D layout ([in, out] weights)

Attention: token i reads token j iff segments[i] == segments[j] and j <= i (and i - j < window); padding has
segment -1, so padded positions read only padding and never carry loss.
"""

import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ----------------------------------------------------------------------------------------------
# safetensors, parsed by hand (as reference/hf_reference.py)

_ST = {"F64": (np.float64, 8), "F32": (np.float32, 4), "F16": (np.float16, 2), "BF16": (np.uint16, 2)}


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        if dt not in _ST:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {dt}")
        npdt, size = _ST[dt]
        count = int(np.prod(shape)) if shape else 1
        if e - b != count * size:
            raise ValueError(f"{path}: tensor {name!r}: byte range does not match its shape")
        a = np.frombuffer(raw, dtype=np.dtype(npdt).newbyteorder("<"), count=count, offset=base + b)
        if dt == "BF16":
            a = (a.astype(np.uint32) << 16).view(np.float32)
        out[name] = a.astype(np.float32).reshape(shape)
    return out


def load_weights(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(single):
        return read_safetensors(single)
    if os.path.exists(index):
        with open(index) as f:
            wm = json.load(f)["weight_map"]
        w = {}
        for shard in sorted(set(wm.values())):
            w.update(read_safetensors(os.path.join(model_dir, shard)))
        return w
    raise FileNotFoundError(f"{model_dir}: neither model.safetensors nor model.safetensors.index.json")


def write_safetensors(path, tensors, dtype="F32", metadata=None):
    """{name: float32 numpy array} -> safetensors, every tensor stored as dtype (F32, F16, BF16)."""
    header, blobs, off = {}, [], 0
    for name, arr in tensors.items():
        a = np.ascontiguousarray(arr, dtype=np.float32)
        if dtype == "F32":
            data = a.astype("<f4").tobytes()
        elif dtype == "F16":
            data = a.astype("<f2").tobytes()
        elif dtype == "BF16":  # round to nearest even, as torch does
            bits = a.view(np.uint32).astype(np.uint64)
            data = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    header["__metadata__"] = dict(metadata or {"format": "pt"})
    head = json.dumps(header).encode("utf-8")
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())


# ----------------------------------------------------------------------------------------------
# building blocks


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def gelu_tanh(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


def rope_inv_freq(theta, head_dim, scaling):
    """float64 inv_freq as transformers' default / linear / llama3 rope init (heed stores it as float32)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    kind = "default" if scaling is None else scaling.get("rope_type", scaling.get("type", "default"))
    if kind == "default":
        return inv
    if kind == "linear":
        return inv / scaling["factor"]
    if kind == "llama3":
        f, lo, hi, old = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"], scaling["original_max_position_embeddings"]
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > old / lo, inv / f, inv)
        smooth = (old / wl - lo) / (hi - lo)
        mid = ~(wl < old / hi) & ~(wl > old / lo)
        return torch.where(mid, (1 - smooth) * scaled / f + smooth * scaled, scaled)
    raise ValueError(f"unsupported rope scaling type {kind!r}")


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def attention_allowed(segments, window=None):
    """Bool [B, 1, T, T]: same segment (padding -1 reads padding), causal, optional sliding window."""
    T = segments.shape[1]
    i = torch.arange(T, device=segments.device)[:, None]
    j = torch.arange(T, device=segments.device)[None, :]
    ok = (j <= i)[None]
    if window is not None:
        ok = ok & (j > i - window)[None]
    return (ok & (segments[:, :, None] == segments[:, None, :]))[:, None]


def attend(q, k, v, allowed):
    """q [B, H, T, d]; k, v [B, Hkv, T, d]; allowed [B, 1, T, T]."""
    rep = q.shape[1] // k.shape[1]
    if rep > 1:
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    s = (q @ k.transpose(-1, -2)) * (q.shape[-1] ** -0.5)
    s = s.masked_fill(~allowed, float("-inf"))
    return torch.softmax(s, dim=-1) @ v


# ----------------------------------------------------------------------------------------------
# the model


def _key(name):  # nn.ParameterDict keys cannot hold "."
    return name.replace(".", "__")


class HeedCausalLM(nn.Module):
    """One class for every supported architecture; parameters keep their Hugging Face names (hf_names())."""

    def __init__(self, config, weights):
        super().__init__()
        self.config = config
        mt = config.get("model_type")
        if mt not in ("llama", "mistral", "qwen2", "gpt2"):
            raise ValueError(f"model_type {mt!r} is not supported by --model-impl heed (llama, mistral, qwen2, gpt2)")
        self.arch = "gpt2" if mt == "gpt2" else "llama"
        self.gradient_checkpointing = False
        self.names = sorted(weights)
        self.params = nn.ParameterDict({_key(n): nn.Parameter(torch.from_numpy(np.array(weights[n], dtype=np.float32))) for n in self.names})
        if self.arch == "gpt2":
            self.p = "transformer." if "transformer.wte.weight" in weights else ""
            self.L, self.H, self.D = config.get("n_layer", 12), config.get("n_head", 12), config.get("n_embd", 768)
            self.eps = config.get("layer_norm_epsilon", 1e-5)
            self.hd = self.D // self.H
            self.inv_layer = config.get("scale_attn_by_inverse_layer_idx", False)
            self.tied = "lm_head.weight" not in weights or config.get("tie_word_embeddings", True)
        else:
            self.p = "model." if "model.embed_tokens.weight" in weights else ""
            self.L, self.H = config["num_hidden_layers"], config["num_attention_heads"]
            self.D = config["hidden_size"]
            kv = config.get("num_key_value_heads", {"llama": None, "mistral": 8, "qwen2": 32}[mt])
            self.Hkv = self.H if kv is None else kv
            self.hd = config.get("head_dim") or self.D // self.H
            self.eps = config.get("rms_norm_eps", 1e-6)
            rp = config.get("rope_parameters")
            theta = config.get("rope_theta", (rp or {}).get("rope_theta", 10000.0))
            inv = rope_inv_freq(float(theta), self.hd, config.get("rope_scaling") or rp).to(torch.float32)
            self.register_buffer("inv_freq", inv, persistent=False)
            if mt == "mistral":
                self.windows = [config.get("sliding_window", 4096)] * self.L
            elif mt == "qwen2" and config.get("use_sliding_window", False):
                sw = config.get("sliding_window", 4096)
                types = config.get("layer_types") or ["sliding_attention" if i >= config.get("max_window_layers", 28) else "full_attention" for i in range(self.L)]
                self.windows = [sw if t == "sliding_attention" else None for t in types]
            else:
                self.windows = [None] * self.L
            self.tied = "lm_head.weight" not in weights

    def w(self, name):
        return self.params[_key(name)]

    def b(self, name):
        k = _key(name)
        return self.params[k] if k in self.params else None

    def hf_state(self):
        """{hf name: float32 numpy array} of the current weights."""
        return {n: self.params[_key(n)].detach().cpu().float().numpy() for n in self.names}

    def named_hf_parameters(self):
        return [(n, self.params[_key(n)]) for n in self.names]

    def forward(self, ids, positions, segments):
        return self._gpt2(ids, positions, segments) if self.arch == "gpt2" else self._llama(ids, positions, segments)

    def _run(self, fn, *args):
        if self.gradient_checkpointing and self.training:
            from torch.utils.checkpoint import checkpoint
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def _llama(self, ids, positions, segments):
        B, T = ids.shape
        p, w, b = self.p, self.w, self.b
        ang = positions.to(torch.float32)[:, None, :, None] * self.inv_freq[None, None, None, :]
        cos = torch.cat([ang.cos(), ang.cos()], -1)
        sin = torch.cat([ang.sin(), ang.sin()], -1)
        masks = {}
        x = F.embedding(ids, w(p + "embed_tokens.weight"))
        for layer in range(self.L):
            win = self.windows[layer]
            if win not in masks:
                masks[win] = attention_allowed(segments, win)
            q = f"{p}layers.{layer}."

            def blk(x, q=q, allowed=masks[win]):
                n = rms_norm(x, w(q + "input_layernorm.weight"), self.eps)
                qq = F.linear(n, w(q + "self_attn.q_proj.weight"), b(q + "self_attn.q_proj.bias")).view(B, T, self.H, self.hd).transpose(1, 2)
                kk = F.linear(n, w(q + "self_attn.k_proj.weight"), b(q + "self_attn.k_proj.bias")).view(B, T, self.Hkv, self.hd).transpose(1, 2)
                vv = F.linear(n, w(q + "self_attn.v_proj.weight"), b(q + "self_attn.v_proj.bias")).view(B, T, self.Hkv, self.hd).transpose(1, 2)
                qq = qq * cos + rotate_half(qq) * sin
                kk = kk * cos + rotate_half(kk) * sin
                y = attend(qq, kk, vv, allowed).transpose(1, 2).reshape(B, T, self.H * self.hd)
                x = x + F.linear(y, w(q + "self_attn.o_proj.weight"), b(q + "self_attn.o_proj.bias"))
                n = rms_norm(x, w(q + "post_attention_layernorm.weight"), self.eps)
                g = F.linear(n, w(q + "mlp.gate_proj.weight"), b(q + "mlp.gate_proj.bias"))
                u = F.linear(n, w(q + "mlp.up_proj.weight"), b(q + "mlp.up_proj.bias"))
                return x + F.linear(F.silu(g) * u, w(q + "mlp.down_proj.weight"), b(q + "mlp.down_proj.bias"))

            x = self._run(blk, x)
        x = rms_norm(x, w(p + "norm.weight"), self.eps)
        return F.linear(x, w(p + "embed_tokens.weight") if self.tied else w("lm_head.weight"))

    def _gpt2(self, ids, positions, segments):
        B, T = ids.shape
        p, w = self.p, self.w
        allowed = attention_allowed(segments)
        x = F.embedding(ids, w(p + "wte.weight")) + F.embedding(positions, w(p + "wpe.weight"))
        for layer in range(self.L):
            q = f"{p}h.{layer}."

            def blk(x, q=q, layer=layer):
                n = F.layer_norm(x, (self.D,), w(q + "ln_1.weight"), w(q + "ln_1.bias"), self.eps)
                qkv = n @ w(q + "attn.c_attn.weight") + w(q + "attn.c_attn.bias")
                qq, kk, vv = (t.view(B, T, self.H, self.hd).transpose(1, 2) for t in qkv.split(self.D, dim=-1))
                if self.inv_layer:
                    qq = qq / float(layer + 1)
                y = attend(qq, kk, vv, allowed).transpose(1, 2).reshape(B, T, self.D)
                x = x + y @ w(q + "attn.c_proj.weight") + w(q + "attn.c_proj.bias")
                n = F.layer_norm(x, (self.D,), w(q + "ln_2.weight"), w(q + "ln_2.bias"), self.eps)
                h = gelu_tanh(n @ w(q + "mlp.c_fc.weight") + w(q + "mlp.c_fc.bias"))
                return x + h @ w(q + "mlp.c_proj.weight") + w(q + "mlp.c_proj.bias")

            x = self._run(blk, x)
        x = F.layer_norm(x, (self.D,), w(p + "ln_f.weight"), w(p + "ln_f.bias"), self.eps)
        return F.linear(x, w(p + "wte.weight") if self.tied else w("lm_head.weight"))


def load_heed_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    weights = load_weights(model_dir)
    if config.get("model_type") == "gpt2":
        weights = {k: v for k, v in weights.items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    else:
        weights = {k: v for k, v in weights.items() if not k.endswith(".rotary_emb.inv_freq")}
        if config.get("tie_word_embeddings", False):
            weights.pop("lm_head.weight", None)
    if config.get("model_type") == "gpt2" and config.get("tie_word_embeddings", True):
        weights.pop("lm_head.weight", None)
    return HeedCausalLM(config, weights)
