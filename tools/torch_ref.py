#!/usr/bin/python3
"""torch_ref.py: independent PyTorch references for mixprec's forward and backward.

Usage:  /usr/bin/python3 tools/torch_ref.py OUTDIR [--only NAME]

Builds tiny random decoder-only models, each written from scratch here in PyTorch after the
Hugging Face modelling code (no transformers package is used or needed), saves each as a
Hugging Face folder, and saves what PyTorch computes for it. The safetensors and GGUF files
are written by hand from their specifications (struct/json), so nothing in here shares code
with mixprec's C loaders.

Common dimensions: hidden 64, 2 layers, 4 heads of 16, intermediate 160, vocab 300 (not a
power of two), batch B=2, sequence T=16. Weights are random normal with std ~ 1/sqrt(fan_in)
(activations and logits O(1), softmaxes not saturated), norm weights 1 + 0.1*N(0,1), biases
0.1*N(0,1). Every model has its own fixed seed. Output is byte-for-byte deterministic.

Models (OUTDIR/NAME/):
  llama2        LlamaForCausalLM, MHA 4/4, rms_norm_eps 1e-5, rope_theta 1e4, untied, f32,
                one model.safetensors, config without "head_dim" (derived from hidden/heads).
                Also model.gguf (see llama_gguf) and refs_gguf.safetensors.
  llama3        LlamaForCausalLM, GQA 4/2, rope_theta 5e5, rope_scaling llama3 (factor 8,
                low 1, high 4, original_max_position_embeddings 64): at head_dim 16 the 8
                frequencies fall in all three regions (1 high: kept, 1 medium: smoothed,
                6 low: divided by 8). Stored as BF16, sharded in two files with
                model.safetensors.index.json (the cut falls inside layer 0). "head_dim" in
                the config; eos_token_id is a list.
  mistral       MistralForCausalLM, GQA 4/1, rope_theta 1e6, sliding_window null, stored F16.
                Also written as a GGUF (general.architecture "llama", n_head_kv 1): the GQA
                GGUF variant (mistral_gguf).
  mistral_swa   MistralForCausalLM, GQA 4/2, sliding_window 5 (shorter than T = 16: positions
                5.. see only the last 5 keys, themselves included), f32.
  qwen2         Qwen2ForCausalLM, GQA 4/2, biases on q/k/v only (none on o_proj),
                tie_word_embeddings true (no lm_head.weight in the file), rms_norm_eps 1e-6,
                rope_theta 1e6, f32.
  llama_wide    LlamaForCausalLM with "head_dim" 640 (D/2 = 320 rotary pairs; 2 heads, GQA
                2/1, so q_proj is (1280, 64): head_dim * heads need not equal hidden_size), f32.
  gpt2          GPT2LMHeadModel: transformer.wte/wpe, h.N.ln_1, attn.c_attn (fused qkv,
                Conv1D weight stored (in, out)), attn.c_proj, ln_2, mlp.c_fc, mlp.c_proj,
                transformer.ln_f; lm_head tied to wte (no lm_head.weight in the file);
                n_embd 64, n_head 4, n_layer 2, n_positions 64, n_inner null (so 4*64=256),
                gelu_new, layer_norm_epsilon 1e-5, f32.
  gpt2_hub      the same weights as gpt2 (identical logits/loss), stored the way the Hub's
                openai-community/gpt2 model.safetensors stores them: names WITHOUT the
                "transformer." prefix (wte.weight, h.0.attn.c_attn.weight, ln_f.weight) and
                with the non-parameter buffers h.N.attn.bias (F32 (1,1,64,64) lower-triangular
                ones) and h.N.attn.masked_bias (F32 scalar, shape [], -1e4), which a loader
                must ignore. They are buffers, so they have no grad.* entry.
  llama_gguf    llama2 written as GGUF v3: OUTDIR/llama2/model.gguf (2D weights F16, norms F32,
                q/k rows permuted as llama.cpp's HF converter does), and
                OUTDIR/llama2/refs_gguf.safetensors computed from the f16-rounded weights.
  mistral_gguf  mistral written the same way: OUTDIR/mistral/model.gguf and refs_gguf.

Reference files. OUTDIR/NAME/refs.safetensors (all F32 except tokens), with
__metadata__ {"format": "pt", "B", "T", "compute_dtype": "float64", "model"}:
  tokens               I32 (B, T+1): inputs tokens[:, :T], targets tokens[:, 1:]
  logits               (B*T, V), row b*T + t
  loss                 (1): mean next-token cross-entropy over all B*T positions (nats)
  grad.<tensor name>   same shape as the tensor in the file (GPT-2 Conv1D: (in, out)), for
                       every parameter tensor in the file; a tied embedding's one tensor holds
                       the summed gradient of both uses
  input.<M>            (B*T, in)  the input of linear module M (HF module name; the tied head
                       is called lm_head although no lm_head tensor exists)
  input_grad.<M>       (B*T, in)  dLoss/d(input of M) through M ALONE (= output_grad.M @ W):
                       when q, k and v read one tensor, the total gradient of that tensor is
                       the sum of their three input_grads
  output_grad.<M>      (B*T, out) dLoss/d(output of M) (q/k: before rotary; with bias)
refs_gguf.safetensors holds the same keys in the GGUF's naming and layout: grad.<gguf tensor
name> (PyTorch shape order = reverse of ne[], q/k rows permuted as stored), and module names
blk.N.attn_q, attn_k, attn_v, attn_output, ffn_gate, ffn_up, ffn_down, output, whose
output_grad columns for attn_q/attn_k are permuted like the weight rows. Its logits/loss come
from the f16-rounded weights (llama2: differ from refs.safetensors by f16 rounding; mistral:
identical, its weights already are f16).

Precision: references are computed in float64 from the weights exactly as stored (bf16/f16
rounded first) and rounded to f32 at the end, so an f32 implementation differs from them by
its own rounding only. tools/check_refs.py reports how far a float32 PyTorch run lands.

Must not: import transformers/safetensors/gguf packages, depend on thread count, or write
anything outside OUTDIR.
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

B, T = 2, 16
DIM, LAYERS, HEADS, HEAD_DIM, FFN, VOCAB = 64, 2, 4, 16, 160, 300
COMPUTE = torch.float64
TRANSFORMERS_VERSION = "4.44.2"

# ---------------------------------------------------------------------------------------------
# safetensors writer (spec: u64 LE header length N, N bytes of JSON header padded with spaces,
# then the data; header maps name -> {dtype, shape, data_offsets [begin, end)} relative to the
# start of the data, plus "__metadata__" {str: str}).

ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
            torch.int32: "I32", torch.int64: "I64"}


def tensor_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    b = t.numpy().tobytes()
    assert sys.byteorder == "little"
    return b


def safetensors_bytes(tensors, metadata=None):
    """tensors: dict name -> torch tensor in its storage dtype. Data ordered like the Rust
    safetensors library (larger item size first, then by name), so every tensor is aligned."""
    names = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header = {}
    if metadata is not None:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    blobs, off = [], 0
    for n in names:
        t = tensors[n]
        b = tensor_bytes(t)
        header[n] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape),
                     "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)


def write_file(path, data):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def write_json(path, obj):
    # as transformers' PretrainedConfig.to_json_file writes it
    write_file(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


# ---------------------------------------------------------------------------------------------
# GGUF v3 writer (spec: "GGUF", u32 version, u64 n_tensors, u64 n_kv; kv: string key, u32 type,
# value; tensor info: string name, u32 n_dims, u64 ne[n_dims] (fastest dimension first),
# u32 ggml_type, u64 offset relative to the data section; the data section starts at the next
# multiple of general.alignment; each tensor's offset is a multiple of it. string = u64 length
# + bytes, no NUL).

GGUF_U32, GGUF_F32, GGUF_STRING = 4, 6, 8
GGML_F32, GGML_F16 = 0, 1


def _gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_bytes(kvs, tensors, alignment=32):
    """kvs: list of (key, gguf type, value); tensors: list of (name, numpy array (f32 or f16),
    ggml type). ne[] is the reverse of the numpy shape."""
    out = [b"GGUF", struct.pack("<IQQ", 3, len(tensors), len(kvs))]
    for key, typ, val in kvs:
        out.append(_gstr(key) + struct.pack("<I", typ))
        if typ == GGUF_U32:
            out.append(struct.pack("<I", val))
        elif typ == GGUF_F32:
            out.append(struct.pack("<f", val))
        elif typ == GGUF_STRING:
            out.append(_gstr(val))
        else:
            raise ValueError(typ)
    off, datas = 0, []
    for name, arr, gt in tensors:
        assert (gt == GGML_F16 and arr.dtype == np.float16) or (gt == GGML_F32 and arr.dtype == np.float32)
        ne = list(reversed(arr.shape))
        out.append(_gstr(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
                   + struct.pack("<IQ", gt, off))
        b = np.ascontiguousarray(arr).tobytes()
        pad = (alignment - len(b) % alignment) % alignment
        datas.append(b + b"\0" * pad)
        off += len(b) + pad
    head = b"".join(out)
    head += b"\0" * ((alignment - len(head) % alignment) % alignment)
    return head + b"".join(datas)


def llamacpp_permute(w, n_head):
    """llama.cpp convert_hf_to_gguf permute of a q/k weight (n_head*head_dim, dim), or of any
    array whose FIRST axis is that row axis: (n_head, 2, hd/2, ...) -> swap axes 1, 2."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


# ---------------------------------------------------------------------------------------------
# Models. Every forward takes (params: name -> COMPUTE tensor, cfg: the HF config dict,
# tokens (B, T) int64, rec: Recorder) and returns logits (B, T, V). Parameter names are the
# names in the file; `pfx` only matters for the GPT-2 Hub layout.

class Recorder:
    """Runs the linear modules and keeps their inputs and outputs for the gradients."""

    def __init__(self):
        self.inp, self.out, self.weight = {}, {}, {}

    def linear(self, name, x, w, b=None, conv1d=False):
        # x (B, T, in); w (out, in), or (in, out) for GPT-2 Conv1D; b (out)
        xi = x.clone()  # own node: its grad is the gradient through this module alone
        if xi.requires_grad:
            xi.retain_grad()
        y = xi @ (w if conv1d else w.t())
        if b is not None:
            y = y + b
        if y.requires_grad:
            y.retain_grad()
        self.inp[name], self.out[name], self.weight[name] = xi, y, (w, b, conv1d)
        return y


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) * torch.rsqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def head_dim_of(cfg):
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def rope_inv_freq(cfg):
    """HF _compute_default_rope_parameters, then _compute_llama3_parameters when
    rope_scaling.rope_type == "llama3". Returns (inv_freq (D/2,), region per frequency)."""
    d = head_dim_of(cfg)
    base = float(cfg["rope_theta"])
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=COMPUTE) / d))
    regions = ["none"] * (d // 2)
    rs = cfg.get("rope_scaling")
    if rs:
        kind = rs.get("rope_type", rs.get("type"))
        if kind != "llama3":
            raise ValueError("rope_scaling %r not implemented" % kind)
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        lo_wl, hi_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > lo_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wl < hi_wl) & ~(wl > lo_wl)
        inv = torch.where(medium, smoothed, scaled)
        regions = ["high(kept)" if w < hi_wl else "low(/factor)" if w > lo_wl else "medium(smoothed)"
                   for w in wl.tolist()]
    return inv, regions


def causal_attention(q, k, v, window=None):
    # q (B, H, T, D), k/v (B, KV, T, D) -> (B, T, H*D); matmul + masked softmax as HF "eager".
    # window: Mistral's sliding window, HF semantics (masking_utils sliding_window_overlay:
    # key j is visible from query i only when j > i - window), applied as an explicit mask.
    bsz, h, t, d = q.shape
    rep = h // k.shape[1]
    if rep > 1:  # HF repeat_kv: query head i reads kv head i // rep
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    att = (q @ k.transpose(-1, -2)) / math.sqrt(d)
    i = torch.arange(t)[:, None]
    j = torch.arange(t)[None, :]
    mask = j <= i
    if window:
        mask = mask & (j > i - window)
    att = att.masked_fill(~mask, float("-inf")).softmax(-1)
    return (att @ v).transpose(1, 2).reshape(bsz, t, h * d)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def llama_forward(P, cfg, tokens, rec):
    """LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM (Qwen2: q/k/v biases)."""
    bsz, t = tokens.shape
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = head_dim_of(cfg)
    eps = cfg["rms_norm_eps"]
    inv, _ = rope_inv_freq(cfg)
    freqs = torch.arange(t, dtype=COMPUTE)[:, None] * inv[None, :]  # (T, D/2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()                                  # (T, D)
    h = P["model.embed_tokens.weight"][tokens]                       # (B, T, C)
    for li in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % li
        x = rms_norm(h, P[p + "input_layernorm.weight"], eps)
        a = p + "self_attn."
        q = rec.linear(a + "q_proj", x, P[a + "q_proj.weight"], P.get(a + "q_proj.bias"))
        k = rec.linear(a + "k_proj", x, P[a + "k_proj.weight"], P.get(a + "k_proj.bias"))
        v = rec.linear(a + "v_proj", x, P[a + "v_proj.weight"], P.get(a + "v_proj.bias"))
        q = q.view(bsz, t, nh, d).transpose(1, 2)
        k = k.view(bsz, t, nkv, d).transpose(1, 2)
        v = v.view(bsz, t, nkv, d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        window = cfg.get("sliding_window") if cfg["model_type"] == "mistral" else None
        y = causal_attention(q, k, v, window)
        h = h + rec.linear(a + "o_proj", y, P[a + "o_proj.weight"], P.get(a + "o_proj.bias"))
        x = rms_norm(h, P[p + "post_attention_layernorm.weight"], eps)
        m = p + "mlp."
        g = rec.linear(m + "gate_proj", x, P[m + "gate_proj.weight"])
        u = rec.linear(m + "up_proj", x, P[m + "up_proj.weight"])
        h = h + rec.linear(m + "down_proj", torch.nn.functional.silu(g) * u, P[m + "down_proj.weight"])
    x = rms_norm(h, P["model.norm.weight"], eps)
    head = P["model.embed_tokens.weight"] if cfg.get("tie_word_embeddings") else P["lm_head.weight"]
    return rec.linear("lm_head", x, head)


def gpt2_forward(P, cfg, tokens, rec, pfx="transformer."):
    """GPT2LMHeadModel (scale_attn_weights, no layer-idx scaling, gelu_new, tied head)."""
    bsz, t = tokens.shape
    c, nh = cfg["n_embd"], cfg["n_head"]
    eps = cfg["layer_norm_epsilon"]
    h = P[pfx + "wte.weight"][tokens] + P[pfx + "wpe.weight"][torch.arange(t)]
    for li in range(cfg["n_layer"]):
        p = pfx + "h.%d." % li
        x = layer_norm(h, P[p + "ln_1.weight"], P[p + "ln_1.bias"], eps)
        qkv = rec.linear(p + "attn.c_attn", x, P[p + "attn.c_attn.weight"], P[p + "attn.c_attn.bias"], True)
        q, k, v = (z.view(bsz, t, nh, c // nh).transpose(1, 2) for z in qkv.split(c, dim=2))
        y = causal_attention(q, k, v)
        h = h + rec.linear(p + "attn.c_proj", y, P[p + "attn.c_proj.weight"], P[p + "attn.c_proj.bias"], True)
        x = layer_norm(h, P[p + "ln_2.weight"], P[p + "ln_2.bias"], eps)
        m = rec.linear(p + "mlp.c_fc", x, P[p + "mlp.c_fc.weight"], P[p + "mlp.c_fc.bias"], True)
        h = h + rec.linear(p + "mlp.c_proj", gelu_new(m), P[p + "mlp.c_proj.weight"], P[p + "mlp.c_proj.bias"], True)
    x = layer_norm(h, P[pfx + "ln_f.weight"], P[pfx + "ln_f.bias"], eps)
    return rec.linear("lm_head", x, P[pfx + "wte.weight"])


def forward(P, cfg, tokens, rec):
    mt = cfg["model_type"]
    if mt in ("llama", "mistral", "qwen2"):
        return llama_forward(P, cfg, tokens, rec)
    if mt == "gpt2":
        pfx = "transformer." if "transformer.wte.weight" in P else ""
        return gpt2_forward(P, cfg, tokens, rec, pfx)
    raise ValueError(mt)


def run_reference(P, cfg, tokens_full):
    """P: name -> COMPUTE leaf tensor. Returns (logits (B*T,V), loss (1,), rec) after backward."""
    for v in P.values():
        v.grad = None
        v.requires_grad_(True)
    inputs, targets = tokens_full[:, :-1].long(), tokens_full[:, 1:].long()
    rec = Recorder()
    logits = forward(P, cfg, inputs, rec)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
    loss.backward()
    return logits.detach().reshape(-1, logits.shape[-1]), loss.detach().reshape(1), rec


def refs_tensors(tokens, logits, loss, P, param_names, rec, rename=None, row_perm=None):
    """The refs dict. rename maps file/module names to other names (GGUF); row_perm maps a
    module or tensor name to a row permutation of its output axis (GGUF q/k)."""
    rename = rename or {}
    row_perm = row_perm or {}
    f = lambda x: x.detach().to(torch.float32).contiguous()
    out = {"tokens": tokens.to(torch.int32), "logits": f(logits), "loss": f(loss)}
    for n in param_names:
        g = P[n].grad
        if n in row_perm:
            g = g[row_perm[n]]
        out["grad." + rename.get(n, n)] = f(g)
    for m in rec.inp:
        xi, y = rec.inp[m], rec.out[m]
        og = y.grad.reshape(-1, y.shape[-1])
        if m in row_perm:
            og = og[:, row_perm[m]]
        mm = rename.get(m, m)
        out["input." + mm] = f(xi.reshape(-1, xi.shape[-1]))
        out["input_grad." + mm] = f(xi.grad.reshape(-1, xi.shape[-1]))
        out["output_grad." + mm] = f(og)
    return out


# ---------------------------------------------------------------------------------------------
# Random weights and configs.

def make_gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def randn(g, shape, std):
    return torch.randn(*shape, generator=g, dtype=torch.float32) * std


def llama_params(g, cfg):
    c, f, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = head_dim_of(cfg)
    qkv_bias = cfg["model_type"] == "qwen2"
    # a tied embedding is also the head: keep its logits O(1)
    P = {"model.embed_tokens.weight": randn(g, (v, c), 1.2 / math.sqrt(c) if cfg["tie_word_embeddings"] else 1.0)}
    for li in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % li
        P[p + "input_layernorm.weight"] = 1 + randn(g, (c,), 0.1)
        for n, rows in (("q", nh * d), ("k", nkv * d), ("v", nkv * d)):
            P[p + "self_attn.%s_proj.weight" % n] = randn(g, (rows, c), 1.2 / math.sqrt(c))
            if qkv_bias:
                P[p + "self_attn.%s_proj.bias" % n] = randn(g, (rows,), 0.1)
        P[p + "self_attn.o_proj.weight"] = randn(g, (c, nh * d), 1.0 / math.sqrt(nh * d))
        P[p + "post_attention_layernorm.weight"] = 1 + randn(g, (c,), 0.1)
        P[p + "mlp.gate_proj.weight"] = randn(g, (f, c), 1.0 / math.sqrt(c))
        P[p + "mlp.up_proj.weight"] = randn(g, (f, c), 1.0 / math.sqrt(c))
        P[p + "mlp.down_proj.weight"] = randn(g, (c, f), 1.0 / math.sqrt(f))
    P["model.norm.weight"] = 1 + randn(g, (c,), 0.1)
    if not cfg["tie_word_embeddings"]:
        P["lm_head.weight"] = randn(g, (v, c), 1.0 / math.sqrt(c))
    return P


def gpt2_params(g, cfg, pfx="transformer."):
    c, v, npos = cfg["n_embd"], cfg["vocab_size"], cfg["n_positions"]
    f = cfg["n_inner"] or 4 * c
    P = {pfx + "wte.weight": randn(g, (v, c), 0.15), pfx + "wpe.weight": randn(g, (npos, c), 0.1)}
    for li in range(cfg["n_layer"]):
        p = pfx + "h.%d." % li
        for ln in ("ln_1", "ln_2"):
            P[p + ln + ".weight"] = 1 + randn(g, (c,), 0.1)
            P[p + ln + ".bias"] = randn(g, (c,), 0.1)
        for n, fi, fo in (("attn.c_attn", c, 3 * c), ("attn.c_proj", c, c), ("mlp.c_fc", c, f), ("mlp.c_proj", f, c)):
            P[p + n + ".weight"] = randn(g, (fi, fo), (1.2 if n == "attn.c_attn" else 1.0) / math.sqrt(fi))
            P[p + n + ".bias"] = randn(g, (fo,), 0.1)
    P[pfx + "ln_f.weight"] = 1 + randn(g, (c,), 0.1)
    P[pfx + "ln_f.bias"] = randn(g, (c,), 0.1)
    return P


def llama_like_config(arch, model_type, dtype, nkv, theta, eps, tie, extra=None):
    cfg = {
        "architectures": [arch], "attention_dropout": 0.0, "bos_token_id": 1, "eos_token_id": 2,
        "hidden_act": "silu", "hidden_size": DIM, "initializer_range": 0.02,
        "intermediate_size": FFN, "max_position_embeddings": 128, "model_type": model_type,
        "num_attention_heads": HEADS, "num_hidden_layers": LAYERS, "num_key_value_heads": nkv,
        "rms_norm_eps": eps, "rope_scaling": None, "rope_theta": theta,
        "tie_word_embeddings": tie, "torch_dtype": dtype,
        "transformers_version": TRANSFORMERS_VERSION, "use_cache": True, "vocab_size": VOCAB,
    }
    cfg.update(extra or {})
    return cfg


def config_for(name):
    if name == "llama2":
        return llama_like_config("LlamaForCausalLM", "llama", "float32", 4, 10000.0, 1e-5, False,
                                 {"attention_bias": False, "mlp_bias": False, "pretraining_tp": 1})
    if name == "llama3":
        return llama_like_config("LlamaForCausalLM", "llama", "bfloat16", 2, 500000.0, 1e-5, False, {
            "attention_bias": False, "mlp_bias": False, "pretraining_tp": 1, "head_dim": HEAD_DIM,
            "bos_token_id": 297, "eos_token_id": [298, 299], "max_position_embeddings": 512,
            "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 64, "rope_type": "llama3"}})
    if name == "mistral":
        return llama_like_config("MistralForCausalLM", "mistral", "float16", 1, 1000000.0, 1e-5, False,
                                 {"head_dim": HEAD_DIM, "sliding_window": None})
    if name == "mistral_swa":
        return llama_like_config("MistralForCausalLM", "mistral", "float32", 2, 1000000.0, 1e-5, False,
                                 {"head_dim": HEAD_DIM, "sliding_window": 5})
    if name == "llama_wide":
        return llama_like_config("LlamaForCausalLM", "llama", "float32", 1, 10000.0, 1e-5, False, {
            "attention_bias": False, "mlp_bias": False, "num_attention_heads": 2, "head_dim": 640})
    if name == "qwen2":
        return llama_like_config("Qwen2ForCausalLM", "qwen2", "float32", 2, 1000000.0, 1e-6, True, {
            "bos_token_id": 298, "eos_token_id": 299, "max_window_layers": 2,
            "sliding_window": 128, "use_sliding_window": False})
    if name in ("gpt2", "gpt2_hub"):
        return {
            "activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"],
            "attn_pdrop": 0.1, "bos_token_id": 299, "embd_pdrop": 0.1, "eos_token_id": 299,
            "initializer_range": 0.02, "layer_norm_epsilon": 1e-5, "model_type": "gpt2",
            "n_ctx": 64, "n_embd": DIM, "n_head": HEADS, "n_inner": None, "n_layer": LAYERS,
            "n_positions": 64, "reorder_and_upcast_attn": False, "resid_pdrop": 0.1,
            "scale_attn_by_inverse_layer_idx": False, "scale_attn_weights": True,
            "summary_activation": None, "summary_first_dropout": 0.1,
            "summary_proj_to_labels": True, "summary_type": "cls_index", "summary_use_proj": True,
            "torch_dtype": "float32", "transformers_version": TRANSFORMERS_VERSION,
            "use_cache": True, "vocab_size": VOCAB}
    raise ValueError(name)


SEEDS = {"llama2": 1001, "llama3": 1002, "mistral": 1003, "qwen2": 1004, "gpt2": 1005, "gpt2_hub": 1005,
         "llama_wide": 1006, "mistral_swa": 1007}
STORAGE = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def build(name):
    """Returns (cfg, stored: name -> storage-dtype tensor, P: name -> COMPUTE leaf, tokens)."""
    cfg = config_for(name)
    g = make_gen(SEEDS[name])
    if cfg["model_type"] == "gpt2":
        raw = gpt2_params(g, cfg, "" if name == "gpt2_hub" else "transformer.")
    else:
        raw = llama_params(g, cfg)
    tokens = torch.randint(0, VOCAB, (B, T + 1), generator=g, dtype=torch.int64)
    tokens[0, 0], tokens[1, T] = VOCAB - 1, 0  # both ends of the id range occur
    sdt = STORAGE[cfg["torch_dtype"]]
    stored = {n: t.to(sdt) for n, t in raw.items()}
    P = {n: t.to(COMPUTE) for n, t in stored.items()}
    return cfg, stored, P, tokens.to(torch.int32)


def gpt2_buffers(cfg, pfx=""):
    n = cfg["n_positions"]
    bufs = {}
    for li in range(cfg["n_layer"]):
        p = pfx + "h.%d.attn." % li
        bufs[p + "bias"] = torch.ones(n, n).tril().reshape(1, 1, n, n)
        bufs[p + "masked_bias"] = torch.tensor(-1e4)
    return bufs


def write_hf(d, cfg, stored, shards=1):
    os.makedirs(d, exist_ok=True)
    write_json(os.path.join(d, "config.json"), cfg)
    if shards == 1:
        write_file(os.path.join(d, "model.safetensors"), safetensors_bytes(stored, {"format": "pt"}))
        return
    assert shards == 2
    # HF shards in module order by size: cut the name-sorted list at half of the bytes
    names = sorted(stored)
    total = sum(stored[n].numel() * stored[n].element_size() for n in names)
    parts, acc = ([], []), 0
    for n in names:
        parts[0 if acc < total // 2 else 1].append(n)
        acc += stored[n].numel() * stored[n].element_size()
    wmap = {}
    for i, part in enumerate(parts):
        fn = "model-%05d-of-%05d.safetensors" % (i + 1, 2)
        write_file(os.path.join(d, fn), safetensors_bytes({n: stored[n] for n in part}, {"format": "pt"}))
        wmap.update({n: fn for n in part})
    write_json(os.path.join(d, "model.safetensors.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(wmap.items()))})


def refs_metadata(name):
    return {"format": "pt", "B": B, "T": T, "compute_dtype": "float64", "model": name}


def hf_to_gguf_name(n):
    """HF tensor or module name (llama layout) -> GGUF name (tensor names keep .weight)."""
    fixed = {"model.embed_tokens": "token_embd", "model.norm": "output_norm", "lm_head": "output"}
    suffix = ""
    if n.endswith(".weight"):
        n, suffix = n[:-7], ".weight"
    if n in fixed:
        return fixed[n] + suffix
    parts = n.split(".")  # model.layers.N.<sub>...
    assert parts[0] == "model" and parts[1] == "layers", n
    sub = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
           "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
           "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
           "mlp.down_proj": "ffn_down"}[".".join(parts[3:])]
    return "blk.%s.%s%s" % (parts[2], sub, suffix)


def gguf_row_perms(cfg):
    """GGUF name -> row permutation (index array) for the permuted q/k tensors and modules."""
    nh, nkv, d = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim_of(cfg)
    perms = {}
    for li in range(cfg["num_hidden_layers"]):
        for n, heads in (("q_proj", nh), ("k_proj", nkv)):
            idx = llamacpp_permute(np.arange(heads * d), heads)
            base = "model.layers.%d.self_attn.%s" % (li, n)
            perms[base] = perms[base + ".weight"] = torch.from_numpy(idx)
    return perms


def gguf_kvs(cfg, name):
    return [
        ("general.architecture", GGUF_STRING, "llama"),
        ("general.name", GGUF_STRING, "mixprec-test-" + name),
        ("general.alignment", GGUF_U32, 32),
        ("general.file_type", GGUF_U32, 1),  # LLAMA_FTYPE_MOSTLY_F16
        ("llama.vocab_size", GGUF_U32, cfg["vocab_size"]),
        ("llama.context_length", GGUF_U32, cfg["max_position_embeddings"]),
        ("llama.embedding_length", GGUF_U32, cfg["hidden_size"]),
        ("llama.block_count", GGUF_U32, cfg["num_hidden_layers"]),
        ("llama.feed_forward_length", GGUF_U32, cfg["intermediate_size"]),
        ("llama.rope.dimension_count", GGUF_U32, head_dim_of(cfg)),
        ("llama.attention.head_count", GGUF_U32, cfg["num_attention_heads"]),
        ("llama.attention.head_count_kv", GGUF_U32, cfg["num_key_value_heads"]),
        ("llama.attention.layer_norm_rms_epsilon", GGUF_F32, cfg["rms_norm_eps"]),
        ("llama.rope.freq_base", GGUF_F32, cfg["rope_theta"]),
    ]


def write_gguf_variant(d, name, cfg, stored, tokens):
    """model.gguf (F16 2D weights, F32 norms, permuted q/k) + refs_gguf.safetensors."""
    assert cfg["model_type"] in ("llama", "mistral") and not cfg.get("rope_scaling")
    perms = gguf_row_perms(cfg)
    tensors, P16 = [], {}
    order = ["model.embed_tokens.weight"]
    for li in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d." % li
        order += [p + s + ".weight" for s in (
            "input_layernorm", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
            "self_attn.o_proj", "post_attention_layernorm", "mlp.gate_proj", "mlp.up_proj",
            "mlp.down_proj")]
    order += ["model.norm.weight", "lm_head.weight"]
    assert sorted(order) == sorted(stored)
    for n in order:
        t = stored[n].to(torch.float32)
        if t.dim() == 2:
            t16 = t.to(torch.float16)
            arr = t16.numpy()
            if n in perms:
                arr = arr[perms[n].numpy()]
            tensors.append((hf_to_gguf_name(n), np.ascontiguousarray(arr), GGML_F16))
            P16[n] = t16.to(COMPUTE)
        else:
            tensors.append((hf_to_gguf_name(n), t.numpy().astype(np.float32), GGML_F32))
            P16[n] = t.to(COMPUTE)
    write_file(os.path.join(d, "model.gguf"), gguf_bytes(gguf_kvs(cfg, name), tensors))
    logits, loss, rec = run_reference(P16, cfg, tokens)
    rename = {n: hf_to_gguf_name(n) for n in list(P16) + list(rec.inp)}
    refs = refs_tensors(tokens, logits, loss, P16, order, rec, rename, perms)
    write_file(os.path.join(d, "refs_gguf.safetensors"),
               safetensors_bytes(refs, dict(refs_metadata(name + "_gguf"), weights="f16-rounded")))
    return logits, loss


def make_model(outdir, name):
    cfg, stored, P, tokens = build(name)
    d = os.path.join(outdir, name)
    files = dict(stored)
    if name == "gpt2_hub":
        files.update(gpt2_buffers(cfg))
    write_hf(d, cfg, files, shards=2 if name == "llama3" else 1)
    logits, loss, rec = run_reference(P, cfg, tokens)
    refs = refs_tensors(tokens, logits, loss, P, sorted(stored), rec)
    write_file(os.path.join(d, "refs.safetensors"), safetensors_bytes(refs, refs_metadata(name)))
    probs = logits.softmax(-1)
    info = "%-9s %-18s %-8s params %6d  loss %.4f  logits std %.3f  max p %.3f  refs %d" % (
        name, cfg["architectures"][0], cfg["torch_dtype"], sum(t.numel() for t in stored.values()),
        loss.item(), logits.std().item(), probs.max().item(), len(refs))
    if cfg.get("rope_scaling"):
        _, regions = rope_inv_freq(cfg)
        info += "  rope regions: " + ",".join(r.split("(")[0] for r in regions)
        assert {"high(kept)", "medium(smoothed)", "low(/factor)"} <= set(regions), regions
    if name == "gpt2_hub":
        info += "  (+%d buffers)" % (len(files) - len(stored))
    print(info, flush=True)
    return cfg, stored, tokens, d


def make_gguf(outdir, base):
    cfg, stored, P, tokens = build(base)
    d = os.path.join(outdir, base)
    os.makedirs(d, exist_ok=True)
    logits, loss = write_gguf_variant(d, base, cfg, stored, tokens)
    print("%-9s GGUF v3 llama      f16/f32  -> %s/model.gguf  loss %.4f  (n_head_kv %d)" % (
        base + "_gguf", base, loss.item(), cfg["num_key_value_heads"]), flush=True)


MODELS = ["llama2", "llama3", "mistral", "mistral_swa", "qwen2", "gpt2", "gpt2_hub", "llama_wide", "llama_gguf",
          "mistral_gguf"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--only", choices=MODELS)
    a = ap.parse_args()
    torch.set_num_threads(1)  # byte-identical output whatever the machine
    for name in MODELS:
        if a.only and a.only != name:
            continue
        if name.endswith("_gguf"):
            make_gguf(a.outdir, {"llama_gguf": "llama2", "mistral_gguf": "mistral"}[name])
        else:
            make_model(a.outdir, name)


if __name__ == "__main__":
    main()
