#!/usr/bin/python3
"""torch_sens.py: independent PyTorch reference for `mixprec calibrate` (docs/DESIGN.md 1.1).

Usage:
  /usr/bin/python3 tools/torch_sens.py MODEL_DIR TOKENS_FILE OUT.json [--seq T] [--samples N]
                                       [--dtype float64|float32] [--per-sample OP,OP,...]

MODEL_DIR: a Hugging Face LlamaForCausalLM folder (config.json + model.safetensors, F32/F16/BF16
tensors, tied or untied head). TOKENS_FILE: a mixprec-tokens v1 file (first line
"mixprec-tokens 1", then decimal ids). Sample n is window n of T+1 ids taken from the START of the
stream (ids [n(T+1), (n+1)(T+1))): inputs [:T], targets [1:]. (mixprec takes its calibration
windows from the first half of the stream; a file of exactly 2N windows makes the two agree, see
tests/test_sens_torch.sh.)

For every op l (HF module names: the linear ops, the head "lm_head", and the token embedding
"model.embed_tokens" when it is not tied to the head) and format p:
  Ew = fq_w,p(W) - W            Ea = fq_a,p(A_n) - A_n       (A_n: the op's input, (T, in))
  dw = <dL_n/dW_l, Ew>          da = <dL_n/dA_n, Ea>         d = dw + da
  s = mean_n d^2, s_weight = mean_n dw^2, s_act = mean_n da^2
The embedding reads rows of its table quantized row by row (llama.cpp's get_rows): dw is the
autograd gradient of L_n with respect to the table (its own leaf) dotted with Ew, and da = 0. A
head tied to the embedding is one op with it: dw = <dL_n/dW_head + dL_n/dE, Ew>.
L_n is the mean next-token cross-entropy of sample n. The gradients come from autograd: every op
gets its OWN weight leaf (so the tied head's gradient is the head's alone, not the embedding's)
and its input passes through a zero leaf z_l (y = (x + z_l) W^T): z_l.grad is dL/dA through this
op alone (q, k and v share an input tensor but each has its own z).

Forward: written here from the HF Llama definition (RMSNorm, rotate-half rope, causal softmax
attention with GQA, SiLU-gated MLP), in float64 by default (from the f32 weights; a cleaner
reference than f32: what remains between mixprec and this is mixprec's f32 rounding).

Quantizers, re-implemented in numpy float32 arithmetic from the spec in src/quant/format.h (the
header comment), not from the C:
  bf16     round to nearest even of the f32 bits (upper 16 bits kept)
  f16      IEEE binary16, round to nearest even (numpy astype(float16))
  q8_0     blocks of 32 along a row: d = amax/127 (f32), id = 1/d (f32, from the f32 d),
           q = round-half-away-from-zero(x * id) (x*id in f32), value q * f16(d); a block whose
           f16(d) is 0 is all zeros
  q4_0     blocks of 32: m = first element of largest |x| (signed), d = m / -8 (f32), id = 1/d
           (f32), q = min(15, floor(x * id + 8.5)) with the product AND the +8.5 in f32 (as ggml's
           reference quantizer; the header leaves the precision of the add unstated), value
           (q - 8) * f16(d); f16(d) == 0 gives all zeros
  f8_e4m3  per row s = amax/448 (f32); v = x * (1/s) (reciprocal in f32, then an f32 multiply:
           this is what format.h's encoder description and the C do; x / s would differ in the
           last bit for some x); |v| rounded to the nearest OCP E4M3FN value (subnormals
           included, max 448, ties to the even code); value = f32(s * e4m3) (f32 product)
Activation rounding, as format.h gives llama.cpp's CPU backend's: q8_0 rows (blocks of 32 along
the input dimension) for q8_0 and q4_0: d = amax/127 (f32), v = x * (127/amax) (both in f32),
q = round-half-to-EVEN(v), value q * f16(d); f16 rounding for f16 weights, bf16 rounding for bf16
weights; identity for f8_e4m3. A format whose block does not divide `in` is left out for that
op (as mixprec does). The activation is rounded to f32 before it is quantized (mixprec's
activations are f32); Ea = fq(f32(A)) - f32(A).

The ggml formats beyond these (q4_1, q5_0, q5_1, iq4_nl, q2_K ... q6_K) are not re-implemented:
their weights come from GGUF files of the model that llama.cpp's own quantizer wrote (--gguf:
`mixprec apply MODEL uniform:f32`, then `llama-quantize --pure f32.gguf q.gguf Q4_K`), read and
dequantized by llama.cpp's Python package gguf-py (its numpy dequantizers of ggml-common.h's
block layouts), with the q/k row permutation of llama.cpp's converter undone. The f32 GGUF
itself may be passed too: its weights must equal the model's bit for bit (checks the name map
and the row order). Their activations, written here from format.h and ggml's reference code:
q8_1 (q4_1, q5_1 weights) has the values of q8_0 above; q5_0 and iq4_nl use q8_0; the k-quants
use q8_K: blocks of 256, m = the first element of largest |x| (signed), iscale = -127/m (f32),
q = min(127, round-half-to-even(iscale * x)) (f32 product), d = 1/iscale (f32), value f32(q * d).

Rounding sensitivity: mixprec's f32 activations differ from these by rounding noise (PyTorch f32
vs f64 on models/tiny: median 4e-8 of the block's amax, 99th percentile 4e-7, max ~5e-6), and
where an activation sits near a q8 rounding tie, that noise flips its rounding: one flip moves
d_a by |g| * d, a few percent of d_a. So the activation term is recomputed --act-trials (16)
times from activations perturbed by Gaussian noise of sigma = --act-noise (5e-7) x the block's
amax (for f16/bf16 activations: --act-noise x the element itself, the size of an f32
rounding); s_spread / s_act_spread = max over trials of |s(trial) - s|.
They are 0 for f8_e4m3 (weight-only). The test uses them as the rounding part of its tolerance.

Writes OUT.json: {"format": "torch-sens", "samples", "seq_len", "dtype", "reference_loss",
"losses": [L_n], "formats", "ops": [{"name", "in", "out", "s": {fmt: x}, "s_weight", "s_act",
"act_near_ties": count of activation elements whose q8 rounding is within 1e-4 of a tie,
"s_spread", "s_act_spread": see below}],
"per_sample": {op: {"d": {fmt: [..]}, "dw": {..}, "da": {..}}}}. f32 is listed with 0.
"""
import argparse
import json
import math
import os
import re
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_refs import read_safetensors  # noqa: E402  (project's own strict reader)

FORMATS = ["f32", "bf16", "f16", "q8_0", "q4_0", "f8_e4m3"]
BLOCK = {"f32": 1, "bf16": 1, "f16": 1, "q8_0": 32, "q4_0": 32, "f8_e4m3": 1}
ACT = {"bf16": "bf16", "f16": "f16", "q8_0": "q8", "q4_0": "q8"}  # format -> activation rounding
F32 = np.float32


# ---------------------------------------------------------------------------------------------
# quantizers: x is a 2-D float32 numpy array (rows, n); each returns the fake-quantized values
# as float64 (every dequantized value is an f32, so f64 holds it exactly).

def f16_of(x32):
    return x32.astype(np.float16).astype(F32)


def fq_bf16(x):
    u = x.view(np.uint32).astype(np.uint64)
    r = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return r.astype(np.uint32).view(F32).astype(np.float64)


def fq_f16(x):
    return f16_of(x).astype(np.float64)


def safe_recip(d32, keep):
    """1/d in f32 where keep, else 0 (no division warnings)."""
    out = np.zeros_like(d32)
    np.divide(F32(1), d32, out=out, where=keep)
    return out


def fq_q8_0(x, near=None):
    rows, n = x.shape
    assert n % 32 == 0
    b = x.reshape(-1, 32)
    amax = np.abs(b).max(axis=1)                       # f32
    d = (amax / F32(127)).astype(F32)                  # f32 division
    dh = f16_of(d)
    idv = safe_recip(d, dh != 0)
    v = (b * idv[:, None]).astype(F32)                 # f32 product
    av = np.abs(v).astype(np.float64)
    q = np.sign(v).astype(np.float64) * np.floor(av + 0.5)  # exact in f64: half away from zero
    assert np.abs(q).max(initial=0) <= 127
    if near is not None:
        near[0] += int(np.count_nonzero(np.abs(av - np.floor(av) - 0.5) < 1e-4))
    return (q * dh.astype(np.float64)[:, None]).reshape(rows, n)


def fq_act_q8(x, near=None):
    """q8_0 activations (llama.cpp's x86 quantize_row_q8_0): 127/amax and ties to even."""
    rows, n = x.shape
    assert n % 32 == 0
    b = x.reshape(-1, 32)
    amax = np.abs(b).max(axis=1)                       # f32
    dh = f16_of((amax / F32(127)).astype(F32))
    idv = np.zeros_like(amax)
    np.divide(F32(127), amax, out=idv, where=amax != 0)  # f32 division
    v = (b * idv[:, None]).astype(F32)                 # f32 product
    q = np.rint(v.astype(np.float64))                  # exact in f64: half to even
    assert np.abs(q).max(initial=0) <= 127
    if near is not None:
        av = np.abs(v).astype(np.float64)
        near[0] += int(np.count_nonzero(np.abs(av - np.floor(av) - 0.5) < 1e-4))
    return (q * dh.astype(np.float64)[:, None]).reshape(rows, n)


def fq_act_q8K(x, near=None):
    """q8_K activations (the k-quants; ggml's quantize_row_q8_K_ref, which llama.cpp's x86 CPU
    backend uses as is): blocks of 256, m = the first element of largest |x| (signed),
    iscale = -127/m (f32), q = min(127, nearest-even(iscale * x)) (f32 product), d = 1/iscale
    (f32), value f32(q * d); a block of zeros stays zeros."""
    rows, n = x.shape
    assert n % 256 == 0
    b = x.reshape(-1, 256)
    idx = np.argmax(np.abs(b), axis=1)                 # first of equal magnitudes
    m = b[np.arange(b.shape[0]), idx]
    iscale = np.zeros_like(m)
    np.divide(F32(-127), m, out=iscale, where=m != 0)  # f32 division
    v = (b * iscale[:, None]).astype(F32)              # f32 product
    q = np.minimum(np.rint(v.astype(np.float64)), 127.0)  # exact in f64: half to even
    assert q.min(initial=0) >= -128
    if near is not None:
        av = np.abs(v).astype(np.float64)
        near[0] += int(np.count_nonzero(np.abs(av - np.floor(av) - 0.5) < 1e-4))
    d = np.zeros_like(m)
    np.divide(F32(1), iscale, out=d, where=iscale != 0)  # f32 division
    return (q.astype(F32) * d[:, None]).astype(F32).astype(np.float64).reshape(rows, n)  # f32 product


ACT_FQ = {"q8": fq_act_q8, "q8K": fq_act_q8K, "f16": fq_f16, "bf16": fq_bf16}
ACT_BLOCK = {"q8": 32, "q8K": 256}  # rounding-sensitivity noise: sigma scales with the block's amax

# The ggml formats whose weights come from GGUF files written by llama.cpp's llama-quantize
# (--gguf), dequantized by llama.cpp's own Python package gguf-py (gguf.quants): block size and
# activation rounding (format.h: q8_1 has the values of q8_0).
GGML_BLOCK = {"q4_1": 32, "q5_0": 32, "q5_1": 32, "iq4_nl": 32,
              "q2_K": 256, "q3_K": 256, "q4_K": 256, "q5_K": 256, "q6_K": 256}
GGML_ACT = {"q4_1": "q8", "q5_0": "q8", "q5_1": "q8", "iq4_nl": "q8",
            "q2_K": "q8K", "q3_K": "q8K", "q4_K": "q8K", "q5_K": "q8K", "q6_K": "q8K"}


def gguf_op(name):
    """HF op name of a GGUF weight tensor (llama names), or None for a tensor that is no op."""
    if name == "token_embd.weight":
        return "model.embed_tokens"
    if name == "output.weight":
        return "lm_head"
    mm = re.fullmatch(r"blk\.(\d+)\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight", name)
    if not mm:
        return None
    return "model.layers.%s.%s" % (mm.group(1), {
        "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj"}[mm.group(2)])


def read_gguf_weights(path, M, gguf_py):
    """{(op, fmt): dequantized weight (out, in) float32} of one GGUF written by llama.cpp.
    fmt is ggml's type name as mixprec spells it ("q4_K", "f32"). llama.cpp's converter (and
    mixprec's export, which follows it) permutes the rows of the llama q and k projections for
    its rope layout: (heads, 2, hd/2) -> (heads, hd/2, 2); undone here. The tied head reads
    token_embd as its op "lm_head"."""
    if gguf_py:
        sys.path.insert(0, gguf_py)
    try:
        from gguf import GGUFReader, GGMLQuantizationType
        from gguf.quants import dequantize
    except ImportError as e:
        raise SystemExit("--gguf needs llama.cpp's gguf-py (--gguf-py DIR): %s" % e)
    out = {}
    for t in GGUFReader(path).tensors:
        op = gguf_op(t.name)
        if op is None:
            continue
        if op == "model.embed_tokens" and M.tied:
            op = "lm_head"
        ne = [int(v) for v in t.shape]  # ggml order: (in, out)
        if len(ne) != 2:
            raise SystemExit("%s: tensor %s is not 2-D" % (path, t.name))
        qt = GGMLQuantizationType(t.tensor_type)
        W = np.asarray(dequantize(t.data, qt), dtype=F32).reshape(ne[1], ne[0])
        heads = {"self_attn.q_proj": M.H, "self_attn.k_proj": M.Hkv}.get(op.split(".", 3)[-1])
        if heads:
            W = W.reshape(heads, M.hd // 2, 2, ne[0]).swapaxes(1, 2).reshape(ne[1], ne[0])
        fmt = qt.name.lower()
        if fmt.endswith("_k"):
            fmt = fmt[:-2] + "_K"
        out[op, fmt] = W
    return out


def fq_q4_0(x):
    rows, n = x.shape
    assert n % 32 == 0
    b = x.reshape(-1, 32)
    idx = np.argmax(np.abs(b), axis=1)                 # first of equal magnitudes
    m = b[np.arange(b.shape[0]), idx]
    d = (m / F32(-8)).astype(F32)
    dh = f16_of(d)
    idv = safe_recip(d, dh != 0)
    t = ((b * idv[:, None]).astype(F32) + F32(8.5)).astype(F32)  # f32 product, f32 add
    assert t.min(initial=1) >= 0
    q = np.minimum(np.floor(t.astype(np.float64)), 15.0)
    return ((q - 8.0) * dh.astype(np.float64)[:, None]).reshape(rows, n)


def e4m3_grid():
    """Non-negative E4M3FN values in code order (codes 0..126; 127 is NaN)."""
    vals = []
    for code in range(127):
        e, m = code >> 3, code & 7
        vals.append(math.ldexp(m / 8.0, -6) if e == 0 else math.ldexp(1.0 + m / 8.0, e - 7))
    g = np.array(vals, dtype=np.float64)
    assert np.all(np.diff(g) > 0) and g[-1] == 448.0
    return g


E4M3 = e4m3_grid()


def fq_f8_e4m3(x):
    amax = np.abs(x).max(axis=1)
    s = (amax / F32(448)).astype(F32)
    inv = safe_recip(s, s != 0)
    v = (x * inv[:, None]).astype(F32)                 # x * (1/s), f32
    a = np.minimum(np.abs(v).astype(np.float64), 448.0)
    i = np.clip(np.searchsorted(E4M3, a, side="left"), 1, len(E4M3) - 1)
    lo, hi = E4M3[i - 1], E4M3[i]
    dlo, dhi = a - lo, hi - a                          # exact: f32-representable operands
    pick_hi = (dhi < dlo) | ((dhi == dlo) & (i % 2 == 0))
    code = np.where(pick_hi, i, i - 1)
    code = np.where(a == 0, 0, code)
    val = E4M3[code].astype(F32)
    y = (s[:, None] * val).astype(F32)                 # f32 product
    return np.where(np.signbit(x), -y, y).astype(np.float64)


WEIGHT_FQ = {"bf16": fq_bf16, "f16": fq_f16, "q8_0": fq_q8_0, "q4_0": fq_q4_0, "f8_e4m3": fq_f8_e4m3}


def check_quantizers():
    """Hand-worked cases from the spec (guards the numpy emulation itself)."""
    def one(f, vals):
        return f(np.array([vals], dtype=F32))[0]
    # q8_0: amax 127 -> d 1, values round half away from zero
    x = [127.0, 0.5, -0.5, 1.5, -2.5] + [0.0] * 27
    assert list(one(fq_q8_0, x)[:5]) == [127.0, 1.0, -1.0, 2.0, -3.0]
    # q8_0: tiny block whose f16 scale is 0 reads back as zeros
    assert not one(fq_q8_0, [1e-9] + [0.0] * 31).any()
    # q8_0 activations: amax 127 -> multiplier 1, values round half to even
    assert list(one(fq_act_q8, x)[:5]) == [127.0, 0.0, -0.0, 2.0, -2.0]
    # q4_0: m = -8 -> d = 1; floor(x + 8.5) - 8 rounds half up; 8 clips to 7
    x = [-8.0, 0.5, -0.5, 1.49, 7.9] + [0.0] * 27
    assert list(one(fq_q4_0, x)[:5]) == [-8.0, 1.0, 0.0, 1.0, 7.0]
    # q8_K activations: m = -127 -> iscale 1, d 1: halves to even; m = 127 -> iscale -1,
    # d = -1: the same values; m = 63.5 -> iscale -2, d = -0.5
    x = [-127.0, 0.5, -0.5, 1.5, -2.5] + [0.0] * 251
    assert list(one(fq_act_q8K, x)[:5]) == [-127.0, 0.0, -0.0, 2.0, -2.0]
    assert list(one(fq_act_q8K, [-v for v in x])[:5]) == [127.0, 0.0, 0.0, -2.0, 2.0]
    x = [63.5, -63.5, 0.25] + [0.0] * 253
    assert list(one(fq_act_q8K, x)[:3]) == [63.5, -63.5, 0.0]
    # bf16: 1 + 2^-8 is a tie -> even (1.0); 1 + 3*2^-8 -> 1 + 2^-6
    assert list(one(fq_bf16, [1 + 2**-8, 1 + 3 * 2**-8])) == [1.0, 1 + 2**-6]
    # f8: amax 448 -> s 1; 17 is a tie between 16 and 18 -> 16 (even code); 2^-10 -> 0 or 2^-9
    y = one(fq_f8_e4m3, [448.0, 17.0, 19.0, 2**-10, 3 * 2**-10, -300.0])
    assert list(y) == [448.0, 16.0, 20.0, 0.0, 2 * 2**-9, -288.0], y


# ---------------------------------------------------------------------------------------------
# model

def read_tokens(path):
    with open(path) as f:
        first = f.readline().rstrip("\n")
        if first != "mixprec-tokens 1":
            raise SystemExit("%s: not a mixprec-tokens 1 file" % path)
        return [int(t) for t in f.read().split()]


class Llama:
    def __init__(self, d, dtype):
        cfg = json.load(open(os.path.join(d, "config.json")))
        if cfg.get("rope_scaling") not in (None, {}):
            raise SystemExit("rope_scaling is not implemented here")
        tensors, _ = read_safetensors(os.path.join(d, "model.safetensors"))
        self.P = {k: t.to(torch.float32) for k, (_, t) in tensors.items()}  # as stored, widened
        self.dtype = dtype
        self.Pdt = {k: v.to(dtype) for k, v in self.P.items()}  # the weights in the compute dtype
        self.D = cfg["hidden_size"]
        self.H = cfg["num_attention_heads"]
        self.Hkv = cfg.get("num_key_value_heads", self.H)
        self.hd = cfg.get("head_dim") or self.D // self.H
        self.L = cfg["num_hidden_layers"]
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg.get("rope_theta", 10000.0)
        self.tied = "lm_head.weight" not in self.P
        # linear ops in graph order: name -> f32 weight (out, in)
        self.ops = [] if self.tied else ["model.embed_tokens"]
        for i in range(self.L):
            p = "model.layers.%d." % i
            for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"):
                self.ops.append(p + m)
        self.ops.append("lm_head")

    def weight(self, op):
        if op == "lm_head":
            return self.P["model.embed_tokens.weight" if self.tied else "lm_head.weight"]
        return self.P[op + ".weight"]

    def forward_loss(self, tokens, leaves):
        """tokens: (T+1) int64. leaves[op] = (W leaf, z leaf). Returns (loss, inputs[op])."""
        dt = self.dtype
        T = tokens.numel() - 1
        inp, tgt = tokens[:-1], tokens[1:]
        P = self.Pdt
        acts = {}

        def lin(op, x):
            W, z = leaves[op]
            acts[op] = x.detach()
            return (x + z) @ W.t()

        def rms(x, w):
            return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * w

        half = self.hd // 2
        inv_freq = 1.0 / (self.theta ** (torch.arange(0, self.hd, 2, dtype=torch.float64) / self.hd))
        ang = torch.arange(T, dtype=torch.float64)[:, None] * inv_freq[None, :]  # (T, hd/2)
        cos = torch.cat([ang.cos(), ang.cos()], -1).to(dt)[:, None, :]            # (T, 1, hd)
        sin = torch.cat([ang.sin(), ang.sin()], -1).to(dt)[:, None, :]

        def rope(x):  # x (T, heads, hd), HF rotate_half pairing (i, i + hd/2)
            rot = torch.cat([-x[..., half:], x[..., :half]], -1)
            return x * cos + rot * sin

        h = leaves["model.embed_tokens"][0][inp]  # (T, D): the table's own leaf
        mask = torch.ones(T, T, dtype=torch.bool).triu(1)
        rep = self.H // self.Hkv
        for i in range(self.L):
            p = "model.layers.%d." % i
            x = rms(h, P[p + "input_layernorm.weight"])
            q = rope(lin(p + "self_attn.q_proj", x).view(T, self.H, self.hd))
            k = rope(lin(p + "self_attn.k_proj", x).view(T, self.Hkv, self.hd))
            v = lin(p + "self_attn.v_proj", x).view(T, self.Hkv, self.hd)
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
            sc = torch.einsum("thd,shd->hts", q, k) / math.sqrt(self.hd)
            sc = sc.masked_fill(mask, float("-inf")).softmax(-1)
            o = torch.einsum("hts,shd->thd", sc, v).reshape(T, self.H * self.hd)
            h = h + lin(p + "self_attn.o_proj", o)
            x = rms(h, P[p + "post_attention_layernorm.weight"])
            g = lin(p + "mlp.gate_proj", x)
            u = lin(p + "mlp.up_proj", x)
            h = h + lin(p + "mlp.down_proj", torch.nn.functional.silu(g) * u)
        x = rms(h, P["model.norm.weight"])
        logits = lin("lm_head", x)
        loss = torch.nn.functional.cross_entropy(logits, tgt, reduction="mean")
        return loss, acts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("tokens")
    ap.add_argument("out")
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--act-noise", type=float, default=5e-7,
                    help="relative noise (x block amax, Gaussian sigma) of the rounding-sensitivity trials")
    ap.add_argument("--act-trials", type=int, default=16, help="rounding-sensitivity trials (0: none)")
    ap.add_argument("--gguf", action="append", default=[],
                    help="a GGUF of the model written by llama.cpp (llama-quantize --pure): its ggml-format "
                         "weights (q4_1 ... q6_K) become formats here; its f32 weights are checked equal to "
                         "the model's (name map, q/k row order); repeatable")
    ap.add_argument("--gguf-py", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                      "build-deps", "llama.cpp", "gguf-py"),
                    help="llama.cpp's gguf-py folder (when the gguf package is not installed)")
    ap.add_argument("--per-sample", default="model.layers.0.self_attn.q_proj,model.layers.0.mlp.down_proj,lm_head",
                    help="ops whose per-sample d, dw, da are written")
    a = ap.parse_args()
    t0 = time.time()
    check_quantizers()
    torch.set_num_threads(1)  # tiny shapes: threads cost more than they give
    dt = torch.float64 if a.dtype == "float64" else torch.float32
    M = Llama(a.model, dt)
    ids = read_tokens(a.tokens)
    T, N = a.seq, a.samples
    if N * (T + 1) > len(ids):
        raise SystemExit("%s: %d ids hold fewer than %d windows of %d+1" % (a.tokens, len(ids), N, T))

    # the ggml formats, as llama.cpp's llama-quantize wrote them
    G, f32_checked = {}, 0
    for path in a.gguf:
        got = read_gguf_weights(path, M, a.gguf_py)
        kinds = [f for (_, f) in got if f in GGML_BLOCK]
        main_fmt = max(set(kinds), key=kinds.count) if kinds else None  # the file's --pure type
        for (op, f), Wq in got.items():
            if op not in M.ops:
                raise SystemExit("%s: tensor of op %s, which the model does not have" % (path, op))
            W = M.weight(op).numpy().astype(F32)
            if Wq.shape != W.shape:
                raise SystemExit("%s: %s is %s, the model's %s" % (path, op, Wq.shape, W.shape))
            if f == "f32":
                if not np.array_equal(Wq, W):
                    raise SystemExit("%s: f32 %s differs from the model's (name map or q/k row order)" % (path, op))
                f32_checked += 1
            elif f == main_fmt:
                G[op, f] = Wq
            # other types (llama-quantize's fallback for rows the block does not divide, e.g.
            # q5_0 for q4_K) are not formats of that op here, as in mixprec
    for f in GGML_BLOCK:
        if any(k[1] == f for k in G):
            FORMATS.append(f)
            BLOCK[f] = GGML_BLOCK[f]
            ACT[f] = GGML_ACT[f]

    # weight errors per op and format (f64, exact: every value is an f32)
    Ew, fmts_ok = {}, {}
    for op in M.ops:
        W = M.weight(op).numpy().astype(F32)
        fmts_ok[op] = [f for f in FORMATS if W.shape[1] % BLOCK[f] == 0]
        for f in fmts_ok[op]:
            if f in GGML_BLOCK:
                if (op, f) not in G:
                    raise SystemExit("%s: no %s tensor in the GGUF files although its block divides %d"
                                     % (op, f, W.shape[1]))
                Ew[op, f] = torch.from_numpy(G[op, f].astype(np.float64) - W.astype(np.float64))
            elif f != "f32":
                Ew[op, f] = torch.from_numpy(WEIGHT_FQ[f](W) - W.astype(np.float64))

    acc = {op: {k: {f: 0.0 for f in fmts_ok[op]} for k in ("s", "w", "a")} for op in M.ops}
    want = [o for o in a.per_sample.split(",") if o]
    for o in want:
        if o not in M.ops:
            raise SystemExit("--per-sample: unknown op " + o)
    per = {o: {k: {f: [] for f in fmts_ok[o]} for k in ("d", "dw", "da")} for o in want}
    near = {op: [0] for op in M.ops}
    # rounding-sensitivity trials: the activation term recomputed from activations perturbed by
    # f32-like noise, to measure how far a q8 rounding flip can move s and s_act
    rng = np.random.default_rng(12345)
    K = a.act_trials
    trial = {op: {k: np.zeros((K, len(FORMATS))) for k in ("s", "a")} for op in M.ops}
    losses = []
    leaves = {}  # per op: its own weight leaf and a zero leaf on its input
    for op in M.ops:
        W = M.weight(op)
        leaves[op] = (W.to(dt).clone().requires_grad_(True),
                      torch.zeros(T, W.shape[1], dtype=dt, requires_grad=True))
    E = M.P["model.embed_tokens.weight"]
    leaves["model.embed_tokens"] = (E.to(dt).clone().requires_grad_(True), None)
    embed_op = "lm_head" if M.tied else "model.embed_tokens"
    for n in range(N):
        tok = torch.tensor(ids[n * (T + 1):(n + 1) * (T + 1)], dtype=torch.int64)
        for Wl, z in leaves.values():
            Wl.grad = None
            if z is not None:
                z.grad = None
        loss, acts = M.forward_loss(tok, leaves)
        loss.backward()
        losses.append(loss.item())
        for op in M.ops:
            gW = leaves[op][0].grad.to(torch.float64)   # dL_n/dW through this op alone
            if op == embed_op and op != "model.embed_tokens":  # the tied head: both uses
                gW = gW + leaves["model.embed_tokens"][0].grad.to(torch.float64)
            if op == "model.embed_tokens":  # a lookup: no activation term
                for f in fmts_ok[op]:
                    dw = 0.0 if f == "f32" else float((gW * Ew[op, f]).sum())
                    acc[op]["s"][f] += dw * dw
                    acc[op]["w"][f] += dw * dw
                    if op in per:
                        per[op]["d"][f].append(dw)
                        per[op]["dw"][f].append(dw)
                        per[op]["da"][f].append(0.0)
                continue
            gA = leaves[op][1].grad.to(torch.float64)   # dL_n/dA through this op alone
            A32 = acts[op].to(torch.float32).numpy()
            A64 = A32.astype(np.float64)
            da, da_trial = {}, {}  # per activation rounding: the term and its K trials
            for kind in sorted({ACT[f] for f in fmts_ok[op] if f in ACT}):
                fq = ACT_FQ[kind]
                ea = torch.from_numpy(fq(A32, near[op]) if kind in ACT_BLOCK else fq(A32)) - torch.from_numpy(A64)
                da[kind] = float((gA * ea).sum())
                da_trial[kind] = np.zeros(K)
                if K:
                    if kind in ACT_BLOCK:  # noise scaled by each block's amax
                        B64 = A64.reshape(1, -1, ACT_BLOCK[kind])
                        sig = np.abs(B64).max(axis=2, keepdims=True) * a.act_noise
                        Ak = (B64 + rng.standard_normal((K,) + B64.shape[1:]) * sig).astype(F32)
                    else:             # noise of an f32 rounding of each element
                        Ak = (A64[None] + rng.standard_normal((K,) + A64.shape) * np.abs(A64)[None] * a.act_noise).astype(F32)
                    Ak = Ak.reshape(K * A32.shape[0], A32.shape[1])
                    eak = (fq(Ak) - Ak.astype(np.float64)).reshape(K, -1)  # (K, T*in)
                    da_trial[kind] = eak @ gA.numpy().reshape(-1)
            for f in fmts_ok[op]:
                if f == "f32":
                    dw = d_a = 0.0
                else:
                    dw = float((gW * Ew[op, f]).sum())
                    d_a = da[ACT[f]] if f in ACT else 0.0
                d = dw + d_a
                acc[op]["s"][f] += d * d
                acc[op]["w"][f] += dw * dw
                acc[op]["a"][f] += d_a * d_a
                if f in ACT:
                    fi = FORMATS.index(f)
                    trial[op]["s"][:, fi] += (dw + da_trial[ACT[f]]) ** 2
                    trial[op]["a"][:, fi] += da_trial[ACT[f]] ** 2
                if op in per:
                    per[op]["d"][f].append(d)
                    per[op]["dw"][f].append(dw)
                    per[op]["da"][f].append(d_a)

    out = {"format": "torch-sens", "version": 1, "samples": N, "seq_len": T, "dtype": a.dtype,
           "reference_loss": sum(losses) / N, "losses": losses, "formats": FORMATS, "ops": []}
    for op in M.ops:
        W = M.weight(op)
        e = {"name": op, "in": int(W.shape[1]), "out": int(W.shape[0]), "act_near_ties": near[op][0]}
        for key, k in (("s", "s"), ("s_weight", "w"), ("s_act", "a")):
            e[key] = {f: acc[op][k][f] / N for f in fmts_ok[op]}
        # max over trials of |s(trial) - s|: 0 where no activation quantizer is involved
        for key, k in (("s_spread", "s"), ("s_act_spread", "a")):
            e[key] = {}
            for f in fmts_ok[op]:
                fi = FORMATS.index(f)
                e[key][f] = float(np.abs(trial[op][k][:, fi] / N - acc[op][k][f] / N).max()) \
                    if K and f in ACT else 0.0
        out["ops"].append(e)
    out["per_sample"] = per
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, a.out)
    print("torch_sens: samples=%d seq=%d dtype=%s reference_loss=%.6f ops=%d formats=%s (f32 GGUF tensors "
          "checked: %d) seconds=%.1f out=%s" % (N, T, a.dtype, out["reference_loss"], len(M.ops), ",".join(FORMATS),
                                                f32_checked, time.time() - t0, a.out))


if __name__ == "__main__":
    main()
