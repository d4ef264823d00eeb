#!/usr/bin/python3
"""bench_torch_train.py: PyTorch forward+backward speed of a Llama-shaped model, the
baseline mixprec's C forward/backward benchmark is compared with.

Usage:  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 tools/bench_torch_train.py [--batch 1]
            [--threads 2] [--iters 5] [--seq 256]

Model: hidden 768, 12 layers, 12 heads (head_dim 64), MHA, SwiGLU intermediate 2048,
vocab 32000, untied head, RMSNorm, rotary (theta 1e4), f32, random weights (std 0.02).
One iteration = forward + mean cross-entropy + loss.backward() (no optimizer; gradients set
to None between iterations). Attention is written as HF's "eager" path: q @ k^T / sqrt(d),
causal mask, softmax, @ v (torch 1.13 has no F.scaled_dot_product_attention); the C side
should be timed the same way (full T x T scores, no flash attention).

Run it with OMP_WAIT_POLICY=PASSIVE: it is the fastest PyTorch setting on the 2-core Zen 3
project machine (OpenMP threads that spin fight the BLAS threads otherwise). The variable is
read when the OpenMP runtime starts, so it cannot be set from inside this script: measure
both ways by running the script twice, e.g.
    for w in PASSIVE ''; do for b in 1 4; do
      OMP_WAIT_POLICY=$w /usr/bin/python3 tools/bench_torch_train.py --batch $b; done; done
Prints: parameters and FLOPs per iteration, per-iteration times, median and min, tokens/s,
GFLOP/s (6 * params_matmul * tokens + attention 4*L*B*H*T^2*d*3 counted as forward 1 +
backward 2), peak RSS (ru_maxrss), the 1-minute load average before and after (a
load above the thread count means someone else was using the cores: rerun), and a last line `torch_fwd_bwd_tokens_per_s=<median>`.
Must not: change thread settings after warm-up, or time the warm-up.
"""
import argparse
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def build(g, dim, layers, ffn, vocab, std=0.02):
    def w(*shape):
        return (torch.randn(*shape, generator=g) * std).requires_grad_(True)

    P = {"embed": w(vocab, dim), "norm": torch.ones(dim, requires_grad=True), "head": w(vocab, dim), "layers": []}
    for _ in range(layers):
        P["layers"].append({
            "n1": torch.ones(dim, requires_grad=True), "wq": w(dim, dim), "wk": w(dim, dim), "wv": w(dim, dim),
            "wo": w(dim, dim), "n2": torch.ones(dim, requires_grad=True),
            "wg": w(ffn, dim), "wu": w(ffn, dim), "wd": w(dim, ffn)})
    return P


def params_of(P):
    out = [P["embed"], P["norm"], P["head"]]
    for L in P["layers"]:
        out += list(L.values())
    return out


def rms_norm(x, w, eps=1e-5):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def forward_loss(P, tokens, heads, cos, sin, mask):
    # tokens (B, T+1)
    inp, tgt = tokens[:, :-1], tokens[:, 1:]
    b, t = inp.shape
    h = F.embedding(inp, P["embed"])                      # (B, T, C)
    c = h.shape[-1]
    d = c // heads
    for L in P["layers"]:
        x = rms_norm(h, L["n1"])
        q = F.linear(x, L["wq"]).view(b, t, heads, d).transpose(1, 2)  # (B, H, T, d)
        k = F.linear(x, L["wk"]).view(b, t, heads, d).transpose(1, 2)
        v = F.linear(x, L["wv"]).view(b, t, heads, d).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        att = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d)     # (B, H, T, T)
        att = (att + mask).softmax(-1)
        y = torch.matmul(att, v).transpose(1, 2).reshape(b, t, c)
        h = h + F.linear(y, L["wo"])
        x = rms_norm(h, L["n2"])
        h = h + F.linear(F.silu(F.linear(x, L["wg"])) * F.linear(x, L["wu"]), L["wd"])
    logits = F.linear(rms_norm(h, P["norm"]), P["head"])  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))


def main():
    ap = argparse.ArgumentParser(description="PyTorch Llama forward+backward benchmark")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--layers", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--ffn", type=int, default=2048)
    ap.add_argument("--vocab", type=int, default=32000)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    g = torch.Generator()
    g.manual_seed(0)
    P = build(g, a.dim, a.layers, a.ffn, a.vocab)
    params = params_of(P)
    tokens = torch.randint(0, a.vocab, (a.batch, a.seq + 1), generator=g)
    d = a.dim // a.heads
    inv = 1.0 / (10000.0 ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    ang = torch.arange(a.seq, dtype=torch.float32)[:, None] * inv[None, :]
    emb = torch.cat((ang, ang), -1)
    cos, sin = emb.cos(), emb.sin()                                      # (T, d)
    mask = torch.full((a.seq, a.seq), float("-inf")).triu(1)             # (T, T)

    n_params = sum(p.numel() for p in params)
    n_matmul = n_params - P["embed"].numel() - sum(p.numel() for p in params if p.dim() == 1)
    ntok = a.batch * a.seq
    flops = 6 * n_matmul * ntok + 3 * 4 * a.layers * a.batch * a.seq * a.seq * a.dim
    print("torch %s, threads %d, OMP_WAIT_POLICY=%s, batch %d x seq %d, params %.1fM (matmul %.1fM), %.1f GFLOP/iter"
          % (torch.__version__, torch.get_num_threads(), os.environ.get("OMP_WAIT_POLICY", "(unset)"),
             a.batch, a.seq, n_params / 1e6, n_matmul / 1e6, flops / 1e9), file=sys.stderr)

    load0 = os.getloadavg()[0]  # other work on the machine makes the figures meaningless
    times = []
    for it in range(a.warmup + a.iters):
        for p in params:
            p.grad = None
        t0 = time.perf_counter()
        loss = forward_loss(P, tokens, a.heads, cos, sin, mask)
        loss.backward()
        dt = time.perf_counter() - t0
        if it >= a.warmup:
            times.append(dt)
        print("  iter %d%s: %.3f s  loss %.4f" % (it, " (warm-up)" if it < a.warmup else "", dt, loss.item()), file=sys.stderr)
    med, mn = statistics.median(times), min(times)
    load = os.getloadavg()[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    print("median %.3f s  min %.3f s  -> %.1f tokens/s (median), %.1f (best), %.1f GFLOP/s (median)  peak RSS %.0f MiB  load avg %.2f (before %.2f)"
          % (med, mn, ntok / med, ntok / mn, flops / med / 1e9, rss, load, load0))
    print("torch_fwd_bwd_tokens_per_s=%.1f" % (ntok / med))


if __name__ == "__main__":
    main()
