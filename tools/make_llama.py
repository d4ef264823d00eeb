#!/usr/bin/python3
"""make_llama.py OUTDIR [--shape 0.73b|8b] [--hidden H --layers L --heads N --kv-heads K --ffn F]
   [--vocab V] [--dtype bf16|f16|f32] [--seed S] [--zeros]

A random-weight LlamaForCausalLM of a given shape, for memory and speed measurements of the
big models mixprec is meant for without downloading one: OUTDIR/config.json and
OUTDIR/model.safetensors (written by hand from the safetensors specification, one file,
untied lm_head), plus models/default's tokenizer files (vocab 2048: --vocab must match them
when the tokenizer is used, e.g. `calibrate --data` on a text file).

Shapes (vocab 2048 unless --vocab; synthetic, so a small vocabulary keeps the embedding and
the LM head from dominating):
  0.73b  hidden 2048, 16 layers, 32 heads, 8 KV heads, ffn 5632   (~0.73B parameters)
  8b     hidden 4096, 32 layers, 32 heads, 8 KV heads, ffn 14336  (~7B parameters: Llama 3
         8B's blocks, with a small vocabulary)

Weights: normal, std 0.02 (the norms' weights 1), from numpy's PCG64 seeded by --seed, drawn
and written tensor by tensor in slabs of rows: memory stays ~100 MB whatever the model size.
bf16 is rounded to nearest even from the f32 draw. The same arguments give the same bytes.
--zeros: every 2-D weight zero, left as holes of a sparse file (written at once, no disk space
taken): for runs that need only the shapes, such as calibrate's memory estimate (the line it
prints on stderr) for a big shape.
Run with /usr/bin/python3 (numpy); no network.
"""
import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

SHAPES = {
    "0.73b": dict(hidden=2048, layers=16, heads=32, kv_heads=8, ffn=5632),
    "8b": dict(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336),
}
DTYPES = {"bf16": ("BF16", 2), "f16": ("F16", 2), "f32": ("F32", 4)}
SLAB = 1 << 22  # elements drawn at a time (16 MB of f32)


def tensors(a):
    """(name, shape, kind) in file order; kind 'w' random, 'one' the norms."""
    hd = a.hidden // a.heads
    out = [("model.embed_tokens.weight", (a.vocab, a.hidden), "w")]
    for i in range(a.layers):
        p = "model.layers.%d." % i
        out += [
            (p + "input_layernorm.weight", (a.hidden,), "one"),
            (p + "self_attn.q_proj.weight", (a.heads * hd, a.hidden), "w"),
            (p + "self_attn.k_proj.weight", (a.kv_heads * hd, a.hidden), "w"),
            (p + "self_attn.v_proj.weight", (a.kv_heads * hd, a.hidden), "w"),
            (p + "self_attn.o_proj.weight", (a.hidden, a.heads * hd), "w"),
            (p + "post_attention_layernorm.weight", (a.hidden,), "one"),
            (p + "mlp.gate_proj.weight", (a.ffn, a.hidden), "w"),
            (p + "mlp.up_proj.weight", (a.ffn, a.hidden), "w"),
            (p + "mlp.down_proj.weight", (a.hidden, a.ffn), "w"),
        ]
    out += [("model.norm.weight", (a.hidden,), "one"), ("lm_head.weight", (a.vocab, a.hidden), "w")]
    return out


def encode(x, dtype):
    """float32 array -> bytes of the stored type."""
    if dtype == "f32":
        return x.astype("<f4").tobytes()
    if dtype == "f16":
        return x.astype("<f2").tobytes()
    u = x.astype(np.float32).view(np.uint32)
    r = ((u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype("<u2")
    return r.tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="0.73b")
    for k in ("hidden", "layers", "heads", "kv_heads", "ffn"):
        ap.add_argument("--" + k.replace("_", "-"), dest=k, type=int)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--zeros", action="store_true")
    a = ap.parse_args()
    for k, v in SHAPES[a.shape].items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    if a.hidden % a.heads or a.heads % a.kv_heads:
        sys.exit("make_llama.py: hidden %d must be a multiple of heads %d, heads of kv-heads %d"
                 % (a.hidden, a.heads, a.kv_heads))
    os.makedirs(a.outdir, exist_ok=True)
    st_dtype, esize = DTYPES[a.dtype]
    header, off, n_params = {}, 0, 0
    ts = tensors(a)
    for name, shape, _ in ts:
        n = int(np.prod(shape))
        header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [off, off + n * esize]}
        off += n * esize
        n_params += n
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    rng = np.random.Generator(np.random.PCG64(a.seed))
    path = os.path.join(a.outdir, "model.safetensors")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for name, shape, kind in ts:
            n = int(np.prod(shape))
            if a.zeros and kind == "w":
                f.seek(n * esize, os.SEEK_CUR)  # a hole: reads as zeros
                continue
            for lo in range(0, n, SLAB):
                m = min(SLAB, n - lo)
                x = np.ones(m, np.float32) if kind == "one" else (rng.standard_normal(m, dtype=np.float32) * np.float32(0.02))
                f.write(encode(x, a.dtype))
        f.truncate()  # the file's size, when it ends in a hole
    os.replace(tmp, path)
    cfg = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False,
        "bos_token_id": a.vocab - 1, "eos_token_id": a.vocab - 1, "head_dim": a.hidden // a.heads,
        "hidden_act": "silu", "hidden_size": a.hidden, "intermediate_size": a.ffn,
        "max_position_embeddings": 4096, "mlp_bias": False, "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers, "num_key_value_heads": a.kv_heads, "rms_norm_eps": 1e-5,
        "rope_scaling": None, "rope_theta": 500000.0, "tie_word_embeddings": False,
        "torch_dtype": {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}[a.dtype],
        "vocab_size": a.vocab,
    }
    with open(os.path.join(a.outdir, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1, sort_keys=True)
        f.write("\n")
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "default")
    for t in ("tokenizer.json", "tokenizer_config.json"):
        if os.path.exists(os.path.join(here, t)):
            shutil.copy(os.path.join(here, t), os.path.join(a.outdir, t))
    print("make_llama: %s: %.3fB parameters, %s, %.2f GB" % (a.outdir, n_params / 1e9, a.dtype, (off + 8 + len(hb)) / 1e9))


if __name__ == "__main__":
    main()
