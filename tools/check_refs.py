#!/usr/bin/python3
"""check_refs.py: self-check of the files tools/torch_ref.py writes.

Usage:  /usr/bin/python3 tools/check_refs.py OUTDIR

Reads every model folder in OUTDIR back with the small readers below (its own safetensors,
HF-folder and GGUF parsers, independent of the writers in torch_ref.py) and checks:
  1. the files parse strictly (header length, offsets contiguous and in bounds, byte sizes,
     index.json weight_map = the shards' contents, GGUF magic/version/alignment/offsets);
  2. the forward+backward recomputed from the files read back (config.json included) gives
     exactly the stored refs: logits, loss, every grad.*, input.*, input_grad.*, output_grad.*;
     grad.* covers exactly the parameter tensors of the file (buffers excluded);
  3. the refs agree with themselves independently of the recording hooks: for every linear
     module, input_grad = output_grad @ W, grad.W = output_grad^T @ input (untied weights),
     grad.b = sum of output_grad; loss = mean cross-entropy recomputed from the logits by hand;
  4. central finite differences in float64 of the loss for a few elements of every kind of
     parameter (tied embeddings and norm weights included) match grad.*;
  5. a float32 PyTorch run of the same model lands within 1e-4 (relative to the largest
     magnitude) of the float64 refs, and the distance is printed (tolerance guidance for the
     C tests);
  6. model.gguf: metadata matches config.json; un-permuting q/k gives exactly the f16-rounded
     HF tensors and every other tensor equals its HF tensor (f16 or f32); a separate forward
     written for the GGUF layout (rotary on ADJACENT pairs, as llama.cpp applies it to the
     permuted weights) reproduces refs_gguf's logits, loss, gradients and module gradients.
Prints one line per check group and a final "check_refs: OK (N checks)" or exits 1.
"""
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref as R  # noqa: E402  (the model forwards: what is being checked is the files)

F64 = torch.float64


class CheckFailed(Exception):
    pass


class Checker:
    def __init__(self):
        self.n, self.fail = 0, 0

    def ok(self, cond, what):
        self.n += 1
        if not cond:
            self.fail += 1
            print("  FAIL: " + what)
        return cond

    def close(self, name, got, want, rtol=0.0, atol=0.0):
        """|got - want| <= atol + rtol * max|want| elementwise; prints the worst element."""
        got, want = got.to(F64), want.to(F64)
        if not self.ok(tuple(got.shape) == tuple(want.shape),
                       "%s shape %s != %s" % (name, tuple(got.shape), tuple(want.shape))):
            return False
        if want.numel() == 0:
            return True
        diff = (got - want).abs()
        lim = atol + rtol * want.abs().max().item()
        i = int(diff.reshape(-1).argmax())
        worst = diff.reshape(-1)[i].item()
        return self.ok(worst <= lim, "%s: worst |diff| %.3e > %.3e at flat %d (got %.9g want %.9g)" % (
            name, worst, lim, i, got.reshape(-1)[i].item(), want.reshape(-1)[i].item()))


# ---------------------------------------------------------------------------------------------
# safetensors reader

ST_ITEM = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I64": 8}


def decode(raw, dtype, shape):
    if dtype == "F32":
        a = torch.from_numpy(np.frombuffer(raw, "<f4").copy())
    elif dtype == "F16":
        a = torch.from_numpy(np.frombuffer(raw, "<f2").astype(np.float32))
    elif dtype == "BF16":  # bf16 bits are the top 16 bits of an f32
        a = torch.from_numpy((np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32))
    elif dtype == "I32":
        a = torch.from_numpy(np.frombuffer(raw, "<i4").astype(np.int64))
    elif dtype == "I64":
        a = torch.from_numpy(np.frombuffer(raw, "<i8").copy())
    else:
        raise CheckFailed("unknown dtype " + dtype)
    return a.reshape(shape)


def read_safetensors(path):
    """Returns (tensors name -> (dtype str, torch tensor f32/int64), metadata dict)."""
    data = open(path, "rb").read()
    if len(data) < 8:
        raise CheckFailed(path + ": shorter than 8 bytes")
    (hlen,) = struct.unpack_from("<Q", data, 0)
    if 8 + hlen > len(data) or hlen % 8:
        raise CheckFailed(path + ": bad header length %d" % hlen)
    header = json.loads(data[8:8 + hlen].decode())
    meta = header.pop("__metadata__", {})
    base, spans, out = 8 + hlen, [], {}
    for name, h in header.items():
        dt, shape, (b, e) = h["dtype"], h["shape"], h["data_offsets"]
        n = math.prod(shape) * ST_ITEM[dt]
        if e - b != n or base + e > len(data) or b < 0:
            raise CheckFailed("%s: %s offsets %s wrong for %s %s" % (path, name, (b, e), dt, shape))
        if b % ST_ITEM[dt]:
            raise CheckFailed("%s: %s misaligned" % (path, name))
        spans.append((b, e))
        out[name] = (dt, decode(data[base + b:base + e], dt, shape))
    spans.sort()
    pos = 0
    for b, e in spans:  # data covered exactly, no gaps or overlaps
        if b != pos:
            raise CheckFailed("%s: gap/overlap at %d" % (path, b))
        pos = e
    if base + pos != len(data):
        raise CheckFailed("%s: %d trailing bytes" % (path, len(data) - base - pos))
    return out, meta


def read_hf(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    idx = os.path.join(d, "model.safetensors.index.json")
    if not os.path.exists(idx):
        return cfg, read_safetensors(os.path.join(d, "model.safetensors"))[0], 1
    index = json.load(open(idx))
    tensors, files = {}, sorted(set(index["weight_map"].values()))
    for fn in files:
        part, _ = read_safetensors(os.path.join(d, fn))
        want = sorted(n for n, f in index["weight_map"].items() if f == fn)
        if sorted(part) != want:
            raise CheckFailed("%s: shard %s holds %s, index says %s" % (d, fn, sorted(part), want))
        tensors.update(part)
    size = sum(t.numel() * ST_ITEM[dt] for dt, t in tensors.values())
    if size != index["metadata"]["total_size"]:
        raise CheckFailed("%s: total_size %d != %d" % (d, index["metadata"]["total_size"], size))
    return cfg, tensors, len(files)


# ---------------------------------------------------------------------------------------------
# GGUF reader (v3, the value types torch_ref writes plus the common scalar ones)

def read_gguf(path):
    data = open(path, "rb").read()
    pos = 0

    def take(fmt):
        nonlocal pos
        v = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return v if len(v) > 1 else v[0]

    def string():
        nonlocal pos
        n = take("Q")
        if pos + n > len(data):
            raise CheckFailed(path + ": string past end")
        s = data[pos:pos + n].decode()
        pos += n
        return s

    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}

    def value(t):
        if t in scalar:
            return take(scalar[t])
        if t == 8:
            return string()
        if t == 9:
            et, n = take("I"), take("Q")
            return [value(et) for _ in range(n)]
        raise CheckFailed("%s: kv type %d" % (path, t))

    if data[:4] != b"GGUF":
        raise CheckFailed(path + ": bad magic")
    pos = 4
    version, nt, nkv = take("I"), take("Q"), take("Q")
    if version != 3:
        raise CheckFailed(path + ": version %d" % version)
    kv, types = {}, {}
    for _ in range(nkv):
        k = string()
        t = take("I")
        if k in kv:
            raise CheckFailed(path + ": duplicate key " + k)
        kv[k], types[k] = value(t), t
    infos = []
    for _ in range(nt):
        name = string()
        nd = take("I")
        ne = [take("Q") for _ in range(nd)]
        infos.append((name, ne, take("I"), take("Q")))
    align = kv.get("general.alignment", 32)
    start = (pos + align - 1) // align * align
    tensors = {}
    for name, ne, gt, off in infos:
        if gt not in (0, 1) or off % align:
            raise CheckFailed("%s: %s type %d offset %d" % (path, name, gt, off))
        n = math.prod(ne) * (4 if gt == 0 else 2)
        if start + off + n > len(data):
            raise CheckFailed("%s: %s past end" % (path, name))
        arr = np.frombuffer(data, "<f4" if gt == 0 else "<f2", math.prod(ne), start + off)
        tensors[name] = (gt, torch.from_numpy(arr.astype(np.float32)).reshape(list(reversed(ne))))
    return kv, types, tensors


def unpermute(w, n_head):
    """Inverse of llama.cpp's permute: (n_head, hd/2, 2, ...) -> swap axes 1, 2."""
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .transpose(1, 2).reshape(w.shape))


# ---------------------------------------------------------------------------------------------
# A forward for the GGUF layout: permuted q/k rows + rotary on adjacent pairs (2i, 2i+1).

def gguf_forward(P, kv, tokens, rec):
    bsz, t = tokens.shape
    nh, nkv = kv["llama.attention.head_count"], kv["llama.attention.head_count_kv"]
    d = kv["llama.rope.dimension_count"]
    eps, base = kv["llama.attention.layer_norm_rms_epsilon"], kv["llama.rope.freq_base"]
    inv = 1.0 / (base ** (torch.arange(0, d, 2, dtype=F64) / d))
    ang = torch.arange(t, dtype=F64)[:, None] * inv[None, :]  # (T, D/2)
    cos, sin = ang.cos(), ang.sin()

    def rope(x):  # x (B, H, T, D): pairs (x[2i], x[2i+1]) rotate by angle i
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    h = P["token_embd.weight"][tokens]
    for li in range(kv["llama.block_count"]):
        p = "blk.%d." % li
        x = R.rms_norm(h, P[p + "attn_norm.weight"], eps)
        q = rec.linear(p + "attn_q", x, P[p + "attn_q.weight"]).view(bsz, t, nh, d).transpose(1, 2)
        k = rec.linear(p + "attn_k", x, P[p + "attn_k.weight"]).view(bsz, t, nkv, d).transpose(1, 2)
        v = rec.linear(p + "attn_v", x, P[p + "attn_v.weight"]).view(bsz, t, nkv, d).transpose(1, 2)
        y = R.causal_attention(rope(q), rope(k), v)
        h = h + rec.linear(p + "attn_output", y, P[p + "attn_output.weight"])
        x = R.rms_norm(h, P[p + "ffn_norm.weight"], eps)
        g = rec.linear(p + "ffn_gate", x, P[p + "ffn_gate.weight"])
        u = rec.linear(p + "ffn_up", x, P[p + "ffn_up.weight"])
        h = h + rec.linear(p + "ffn_down", torch.nn.functional.silu(g) * u, P[p + "ffn_down.weight"])
    x = R.rms_norm(h, P["output_norm.weight"], eps)
    return rec.linear("output", x, P["output.weight"])


# ---------------------------------------------------------------------------------------------

def hand_loss(logits, tokens):
    lg = logits.to(F64)
    tgt = tokens[:, 1:].reshape(-1).long()
    m = lg.max(-1, keepdim=True).values
    lse = (lg - m).exp().sum(-1).log() + m[:, 0]
    return (lse - lg[torch.arange(lg.shape[0]), tgt]).mean()


def run_from(P32, cfg, tokens, fwd=None):
    """Forward+backward in float64 from weights P32; fwd(P, tokens, rec) overrides the model."""
    P = {n: t.to(F64).requires_grad_(True) for n, t in P32.items()}
    rec = R.Recorder()
    inputs = tokens[:, :-1].long()
    logits = fwd(P, inputs, rec) if fwd else R.forward(P, cfg, inputs, rec)
    logits = logits.reshape(-1, logits.shape[-1])
    loss = torch.nn.functional.cross_entropy(logits, tokens[:, 1:].reshape(-1).long())
    loss.backward()
    return P, rec, logits.detach(), loss.detach().reshape(1)


def compare_all(C, tag, refs, P, rec, logits, loss, exact=True):
    """Every refs entry against the recomputation."""
    rt, at = (1e-6, 0.0) if exact else (0.0, 0.0)
    C.close(tag + " logits", logits, refs["logits"], rt, at)
    C.close(tag + " loss", loss, refs["loss"], rt, at)
    for key, want in refs.items():
        kind, _, name = key.partition(".")
        if kind == "grad":
            C.ok(name in P, "%s %s: no such tensor" % (tag, key)) and C.close(tag + " " + key, P[name].grad, want, rt)
        elif kind in ("input", "input_grad", "output_grad"):
            if not C.ok(name in rec.inp, "%s %s: no such module" % (tag, key)):
                continue
            t = {"input": rec.inp[name], "input_grad": rec.inp[name].grad, "output_grad": rec.out[name].grad}[kind]
            C.close(tag + " " + key, t.reshape(-1, t.shape[-1]), want, rt)
    got = {"grad." + n for n in P} | {"%s.%s" % (k, m) for m in rec.inp for k in ("input", "input_grad", "output_grad")}
    C.ok(got == {k for k in refs if k not in ("tokens", "logits", "loss")},
         "%s: refs keys differ from recomputation: %s" % (tag, sorted(got ^ set(refs))[:6]))


def self_consistency(C, tag, refs, params, stored):
    """Linear-module identities from the refs alone (no hooks involved)."""
    n_mod = 0
    for key in refs:
        if not key.startswith("output_grad."):
            continue
        m = key[len("output_grad."):]
        og, x, xg = refs[key].to(F64), refs["input." + m].to(F64), refs["input_grad." + m].to(F64)
        wname = m + ".weight"
        conv1d = False
        if wname in stored:
            w = stored[wname].to(F64)
            conv1d = w.shape[0] == x.shape[1] and w.shape[1] == og.shape[1] and not (
                w.shape[0] == og.shape[1] and w.shape[1] == x.shape[1])
            conv1d = conv1d or ".c_attn" in m or ".c_proj" in m or ".c_fc" in m
        else:  # tied head
            tied = [n for n in ("model.embed_tokens.weight", "transformer.wte.weight", "wte.weight", "token_embd.weight") if n in stored]
            w = stored[tied[0]].to(F64)
        wt = w if conv1d else w.t()  # (in, out)
        C.close("%s input_grad.%s = og @ W^T" % (tag, m), xg, og @ wt.t(), 1e-6)
        if wname in stored:
            gw = x.t() @ og  # (in, out)
            C.close("%s grad.%s = x^T og" % (tag, wname), refs["grad." + wname], gw if conv1d else gw.t(), 1e-6)
        if m + ".bias" in stored:
            C.close("%s grad.%s.bias = sum og" % (tag, m), refs["grad." + m + ".bias"], og.sum(0), 1e-6)
        n_mod += 1
    C.close(tag + " loss = hand cross-entropy", refs["loss"].to(F64), hand_loss(refs["logits"], refs["tokens"]).reshape(1), 1e-6)
    return n_mod


def finite_differences(C, tag, P32, cfg, tokens, refs, fwd=None):
    """Central differences (h=1e-5, float64) for 2 elements of a few tensors of each kind."""
    names = sorted(P32)
    picks = [n for n in names if "embed" in n or "wte" in n or "token_embd" in n]
    picks += [n for n in names if ("norm" in n or "ln_" in n) and n.endswith("weight")][:2]
    picks += [n for n in names if n.endswith(".bias")][:2]
    picks += [n for n in names if any(s in n for s in ("q_proj", "k_proj", "attn_q", "attn_k", "c_attn", "down", "lm_head", "output.weight", "wpe"))][:6]
    gen = torch.Generator()
    gen.manual_seed(7)
    worst = 0.0
    for n in picks:
        for _ in range(2):
            flat = P32[n].reshape(-1)
            if "embed" in n or "wte" in n or "token_embd" in n:  # a row that is also looked up
                row = int(tokens[0, 1])
                i = row * P32[n].shape[1] + int(torch.randint(0, P32[n].shape[1], (1,), generator=gen))
            else:
                i = int(torch.randint(0, flat.numel(), (1,), generator=gen))
            L = []
            for s in (1, -1):
                Q = {k: v.to(F64) for k, v in P32.items()}
                Q[n].reshape(-1)[i] += s * 1e-5
                inputs = tokens[:, :-1].long()
                lg = fwd(Q, inputs, R.Recorder()) if fwd else R.forward(Q, cfg, inputs, R.Recorder())
                L.append(torch.nn.functional.cross_entropy(lg.reshape(-1, lg.shape[-1]), tokens[:, 1:].reshape(-1).long()).item())
            fd = (L[0] - L[1]) / 2e-5
            g = refs["grad." + n].reshape(-1)[i].item()
            err = abs(fd - g)
            worst = max(worst, err)
            C.ok(err <= 1e-6 + 1e-4 * abs(g), "%s finite difference %s[%d]: fd %.9g grad %.9g" % (tag, n, i, fd, g))
    return len(picks) * 2, worst


def f32_distance(cfg, P32, tokens, refs):
    old = R.COMPUTE
    R.COMPUTE = torch.float32
    try:
        P = {n: t.to(torch.float32).requires_grad_(True) for n, t in P32.items()}
        rec = R.Recorder()
        lg = R.forward(P, cfg, tokens[:, :-1].long(), rec).reshape(-1, cfg["vocab_size"])
        loss = torch.nn.functional.cross_entropy(lg, tokens[:, 1:].reshape(-1).long())
        loss.backward()
    finally:
        R.COMPUTE = old
    rel = lambda a, b: ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()
    return rel(lg.detach(), refs["logits"]), max(rel(P[n].grad, refs["grad." + n]) for n in P)


def check_model(C, d, name):
    f0 = C.fail
    cfg, tens, nfiles = read_hf(d)
    refs_raw, meta = read_safetensors(os.path.join(d, "refs.safetensors"))
    refs = {k: v for k, (_, v) in refs_raw.items()}
    C.ok(meta.get("compute_dtype") == "float64" and int(meta["B"]) * int(meta["T"]) == refs["logits"].shape[0], name + " metadata")
    C.ok(refs_raw["tokens"][0] == "I32" and all(dt == "F32" for k, (dt, _) in refs_raw.items() if k != "tokens"), name + " refs dtypes")
    want_dt = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}[cfg["torch_dtype"]]
    buffers = {n for n in tens if n.endswith(".attn.bias") or n.endswith(".attn.masked_bias")}
    params = {n: t for n, (dt, t) in tens.items() if n not in buffers}
    C.ok(all(tens[n][0] == want_dt for n in params), name + " storage dtype " + want_dt)
    tokens = refs["tokens"]
    P, rec, logits, loss = run_from(params, cfg, tokens)
    compare_all(C, name, refs, P, rec, logits, loss)
    n_mod = self_consistency(C, name, refs, params, params)
    n_fd, fd_worst = finite_differences(C, name, params, cfg, tokens, refs)
    lrel, grel = f32_distance(cfg, params, tokens, refs)
    C.ok(lrel < 1e-4 and grel < 1e-4, "%s float32 run far from float64 refs: logits %.2e grads %.2e" % (name, lrel, grel))
    print("%-9s %s  %d file(s) %3d tensors%s  %2d linear modules  fd %2d (worst %.1e)  f32 vs refs: logits %.1e grads %.1e (rel. to max)" % (
        name, "ok" if C.fail == f0 else "FAILED %d" % (C.fail - f0), nfiles, len(params), " +%d buffers" % len(buffers) if buffers else "", n_mod, n_fd, fd_worst, lrel, grel))
    if os.path.exists(os.path.join(d, "model.gguf")):
        check_gguf(C, d, name, cfg, params)


def check_gguf(C, d, name, cfg, params):
    f0 = C.fail
    kv, types, gt = read_gguf(os.path.join(d, "model.gguf"))
    refs_raw, meta = read_safetensors(os.path.join(d, "refs_gguf.safetensors"))
    refs = {k: v for k, (_, v) in refs_raw.items()}
    expect = {"general.architecture": "llama", "general.alignment": 32,
              "llama.context_length": cfg["max_position_embeddings"], "llama.embedding_length": cfg["hidden_size"],
              "llama.block_count": cfg["num_hidden_layers"], "llama.feed_forward_length": cfg["intermediate_size"],
              "llama.rope.dimension_count": R.head_dim_of(cfg), "llama.attention.head_count": cfg["num_attention_heads"],
              "llama.attention.head_count_kv": cfg["num_key_value_heads"]}
    for k, v in expect.items():
        C.ok(kv.get(k) == v and (types[k] == 4 or k == "general.architecture"), "%s gguf %s = %r, want u32 %r" % (name, k, kv.get(k), v))
    C.ok(types["llama.attention.layer_norm_rms_epsilon"] == 6 and abs(kv["llama.attention.layer_norm_rms_epsilon"] - cfg["rms_norm_eps"]) < 1e-12, name + " gguf eps")
    C.ok(types["llama.rope.freq_base"] == 6 and kv["llama.rope.freq_base"] == cfg["rope_theta"], name + " gguf freq_base")
    C.ok(len(gt) == len(params), "%s gguf has %d tensors, HF %d" % (name, len(gt), len(params)))
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    for hn, hv in params.items():
        gn = R.hf_to_gguf_name(hn)
        if not C.ok(gn in gt, "%s gguf lacks %s" % (name, gn)):
            continue
        typ, w = gt[gn]
        C.ok(typ == (1 if hv.dim() == 2 else 0), "%s gguf %s type %d" % (name, gn, typ))
        if gn.endswith("attn_q.weight"):
            w = unpermute(w, nh)
        elif gn.endswith("attn_k.weight"):
            w = unpermute(w, nkv)
        want = hv.to(torch.float16).to(torch.float32) if hv.dim() == 2 else hv
        C.ok(tuple(w.shape) == tuple(want.shape) and torch.equal(w, want), "%s gguf %s != f16(HF %s) after un-permuting" % (name, gn, hn))
    P32 = {n: t for n, (_, t) in gt.items()}
    fwd = lambda P, toks, rec: gguf_forward(P, kv, toks, rec)
    P, rec, logits, loss = run_from(P32, None, refs["tokens"], fwd)
    # a different rotary formulation: agreement to rounding, not bit-exact
    C.close(name + "_gguf logits", logits, refs["logits"], 1e-6)
    C.close(name + "_gguf loss", loss, refs["loss"], 1e-6)
    for key, want in refs.items():
        kind, _, m = key.partition(".")
        if kind == "grad":
            C.close(name + "_gguf " + key, P[m].grad, want, 1e-6)
        elif kind in ("input", "input_grad", "output_grad"):
            t = {"input": rec.inp[m], "input_grad": rec.inp[m].grad, "output_grad": rec.out[m].grad}[kind]
            C.close(name + "_gguf " + key, t.reshape(-1, t.shape[-1]), want, 1e-6)
    n_mod = self_consistency(C, name + "_gguf", refs, P32, P32)
    n_fd, fd_worst = finite_differences(C, name + "_gguf", P32, None, refs["tokens"], refs, fwd)
    base = read_safetensors(os.path.join(d, "refs.safetensors"))[0]
    dl = (refs["logits"] - base["logits"][1]).abs().max().item()
    print("%-9s %s  GGUF v3 %d tensors, %d kv; checked: un-permuted q/k == f16(HF), adjacent-pair rope forward == refs_gguf, %d modules, fd %d (worst %.1e); |logits_gguf - logits_hf| max %.1e" % (
        name + "_gguf", "ok" if C.fail == f0 else "FAILED %d" % (C.fail - f0), len(gt), len(kv), n_mod, n_fd, fd_worst, dl))


def check_primitives(C):
    """The hand-written ops against torch.nn.functional."""
    F = torch.nn.functional
    g = torch.Generator()
    g.manual_seed(3)
    x = torch.randn(5, 64, generator=g, dtype=F64) * 3
    w, b = torch.randn(64, generator=g, dtype=F64), torch.randn(64, generator=g, dtype=F64)
    C.close("gelu_new == F.gelu(tanh)", R.gelu_new(x), F.gelu(x, approximate="tanh"), 1e-12)
    C.close("layer_norm == F.layer_norm", R.layer_norm(x, w, b, 1e-5), F.layer_norm(x, (64,), w, b, 1e-5), 1e-12)
    q, k, v = (torch.randn(2, 4, 7, 16, generator=g, dtype=F64) for _ in range(3))
    mask = torch.ones(7, 7).tril() == 1
    sm = ((q @ k.transpose(-1, -2)) / 4).masked_fill(~mask, -1e30).softmax(-1) @ v
    C.close("causal attention", R.causal_attention(q, k, v), sm.transpose(1, 2).reshape(2, 7, 64), 1e-12)
    kk = torch.randn(2, 2, 7, 16, generator=g, dtype=F64)
    ref = torch.cat([R.causal_attention(q[:, i:i + 1], kk[:, i // 2:i // 2 + 1], kk[:, i // 2:i // 2 + 1]) for i in range(4)], -1)
    C.close("GQA head i reads kv head i // rep", R.causal_attention(q, kk, kk), ref, 1e-12)
    # permute then unpermute is the identity; the permute moves row 1 of each head to row hd/2
    a = np.arange(32 * 3).reshape(32, 3)
    C.ok(np.array_equal(unpermute(torch.from_numpy(R.llamacpp_permute(a, 2)), 2).numpy(), a), "unpermute(permute) == id")
    C.ok(R.llamacpp_permute(np.arange(16), 1)[:4].tolist() == [0, 8, 1, 9], "permute row order")


def main():
    if len(sys.argv) != 2:
        print("usage: check_refs.py OUTDIR", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    outdir = sys.argv[1]
    C = Checker()
    check_primitives(C)
    print("primitives: %d checks, %d failed" % (C.n, C.fail))
    models = sorted(n for n in os.listdir(outdir) if os.path.exists(os.path.join(outdir, n, "refs.safetensors")))
    if not models:
        print("no models in " + outdir, file=sys.stderr)
        return 1
    for name in models:
        try:
            check_model(C, os.path.join(outdir, name), name)
        except (CheckFailed, KeyError, ValueError, json.JSONDecodeError) as e:
            C.ok(False, "%s: %s: %s" % (name, type(e).__name__, e))
    if C.fail:
        print("check_refs: FAILED %d of %d checks" % (C.fail, C.n))
        return 1
    print("check_refs: OK (%d checks, %d models)" % (C.n, len(models)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
