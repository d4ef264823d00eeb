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

GGUF_U32, GGUF_I32, GGUF_F32, GGUF_BOOL, GGUF_STRING, GGUF_ARRAY = 4, 5, 6, 7, 8, 9
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
        elif typ == GGUF_BOOL:
            out.append(struct.pack("<B", 1 if val else 0))
        elif typ == GGUF_ARRAY:
            et, vals = val
            out.append(struct.pack("<IQ", et, len(vals)))
            fmt = {GGUF_I32: "<i", GGUF_F32: "<f"}
            out.extend(_gstr(v) if et == GGUF_STRING else struct.pack(fmt[et], v) for v in vals)
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
# Tokenizers. Each model folder gets a small tokenizer.json (+ tokenizer_config.json) of exactly
# VOCAB tokens, so the model can be exported with its tokenizer and run by llama.cpp. They are
# trained here by plain BPE on TOK_TEXT, deterministic, in the two shapes real models ship:
#  - byte-level BPE (gpt2, gpt2_hub, llama3, qwen2): ids 0..255 are the bytes in GPT-2's
#    bytes_to_unicode spelling ("Ġ" = space), then the merged tokens, then the special tokens
#    (the ids the configs name). gpt2: ByteLevel pre-tokenizer with its built-in regex;
#    llama3: Split(Llama 3 regex) + ByteLevel, ignore_merges; qwen2: NFC + Split(Qwen2 regex).
#  - SentencePiece style (llama2, mistral): <unk> <s> </s>, the 256 <0xNN> byte tokens, single
#    characters, merged pieces; byte_fallback; merges listing every split of every piece into
#    two pieces, ordered by piece (as Hugging Face's converter extracts them from a
#    SentencePiece model). llama2: the legacy Prepend/Replace normalizer; mistral: Metaspace
#    (prepend_scheme "first", split false).

TOK_TEXT = (
    "In the beginning God created the heaven and the earth. And the earth was without form, and "
    "void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face "
    "of the waters. And God said, Let there be light: and there was light. And God saw the light, "
    "that it was good: and God divided the light from the darkness. And God called the light Day, "
    "and the darkness he called Night. And the evening and the morning were the first day.")

GPT2_REGEX = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
                r"\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_REGEX = LLAMA3_REGEX.replace(r"\p{N}{1,3}", r"\p{N}")
SPECIALS = {
    "gpt2": {299: "<|endoftext|>"},
    "llama3": {297: "<|begin_of_text|>", 298: "<|end_of_text|>", 299: "<|eot_id|>"},
    "qwen2": {298: "<|endoftext|>", 299: "<|im_end|>"},
}


def gpt2_bytes_to_unicode():
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out, n = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + n)
            n += 1
    return out


def train_merges(words, n_merges, can_merge):
    """Plain BPE: words are lists of symbols; the most frequent adjacent pair (ties: first
    seen) is merged, n_merges times, never making a token twice. Returns [(left, right)]."""
    merges, made = [], set()
    words = [list(w) for w in words]
    while len(merges) < n_merges:
        counts, order = {}, []
        for w in words:
            for a, b in zip(w, w[1:]):
                if not (can_merge(a) and can_merge(b)) or a + b in made:
                    continue
                if (a, b) not in counts:
                    order.append((a, b))
                counts[(a, b)] = counts.get((a, b), 0) + 1
        if not order:
            raise ValueError("training text too short for %d merges" % n_merges)
        best = max(order, key=lambda p: counts[p])  # max keeps the first of equal counts
        merges.append(best)
        made.add(best[0] + best[1])
        for w in words:
            i = 0
            while i < len(w) - 1:
                if (w[i], w[i + 1]) == best:
                    w[i:i + 2] = [best[0] + best[1]]
                i += 1
    return merges


def bytelevel_tokenizer(name):
    b2u = gpt2_bytes_to_unicode()
    specials = SPECIALS["gpt2" if name == "gpt2_hub" else name]
    n_merges = VOCAB - 256 - len(specials)
    regex = {"gpt2": GPT2_REGEX, "gpt2_hub": GPT2_REGEX, "llama3": LLAMA3_REGEX, "qwen2": QWEN2_REGEX}[name]
    # GPT-2's regex splits words with their leading space; that is all the training needs
    words = [("" if i == 0 else " ") + w for i, w in enumerate(TOK_TEXT.split(" "))]
    words = ["".join(b2u[c] for c in w.encode()) for w in words]
    merges = train_merges(words, n_merges, lambda s: True)
    vocab = {b2u[b]: b for b in range(256)}
    for a, b in merges:
        vocab[a + b] = len(vocab)
    assert len(vocab) == 256 + n_merges
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in sorted(specials.items())]
    if name in ("gpt2", "gpt2_hub"):
        pre = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    else:
        pre = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": {"type": "NFC"} if name == "qwen2" else None, "pre_tokenizer": pre,
          "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                    "ignore_merges": name == "llama3", "vocab": vocab,
                    "merges": [[a, b] for a, b in merges]}}
    ids = sorted(specials)
    cfg = {"add_bos_token": name == "llama3", "add_eos_token": False,
           "bos_token": specials[ids[0]], "eos_token": specials[ids[-1]],
           "clean_up_tokenization_spaces": False, "model_max_length": 512,
           "tokenizer_class": "PreTrainedTokenizerFast"}
    return tj, cfg


SPM_CHARS = "\u2581etaohnsirdlgwcfuvbmyTA.,:;"


def spm_vocab():
    """SentencePiece-style vocabulary: (pieces in id order, merges in rank order)."""
    pieces = ["<unk>", "<s>", "</s>"] + ["<0x%02X>" % b for b in range(256)] + list(SPM_CHARS)
    words = ["\u2581" + w for w in TOK_TEXT.split(" ")]
    n_new = VOCAB - len(pieces)
    trained = train_merges(words, n_new, lambda s: all(c in SPM_CHARS for c in s))
    pieces += [a + b for a, b in trained]
    assert len(pieces) == VOCAB and len(set(pieces)) == VOCAB
    ids = {p: i for i, p in enumerate(pieces)}
    first = 3 + 256
    merges = []
    for p in pieces[first:]:  # every split of every piece into two pieces, by piece
        splits = [(p[:k], p[k:]) for k in range(1, len(p)) if ids.get(p[:k], 0) >= first and ids.get(p[k:], 0) >= first]
        merges += sorted(splits, key=lambda s: (ids[s[0]], ids[s[1]]))
    return pieces, merges


def spm_tokenizer(name):
    pieces, merges = spm_vocab()
    added = [{"id": i, "content": c, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, c in enumerate(pieces[:3])]
    if name == "llama2":
        norm = {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"},
                                                   {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}
        pre = None
    else:
        norm = None
        pre = {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": False}
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": norm, "pre_tokenizer": pre,
          "post_processor": {"type": "TemplateProcessing",
                             "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                        {"Sequence": {"id": "A", "type_id": 0}}],
                             "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                                      {"Sequence": {"id": "A", "type_id": 0}},
                                      {"SpecialToken": {"id": "<s>", "type_id": 1}},
                                      {"Sequence": {"id": "B", "type_id": 1}}],
                             "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
          "decoder": {"type": "Sequence", "decoders": [
              {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
              {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
          "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                    "vocab": {p: i for i, p in enumerate(pieces)}, "merges": [[a, b] for a, b in merges]}}
    cfg = {"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
           "unk_token": "<unk>", "clean_up_tokenization_spaces": False, "legacy": name == "llama2",
           "model_max_length": 512, "tokenizer_class": "LlamaTokenizer"}
    return tj, cfg


def write_tokenizer(d, name):
    # the sliding-window and wide-head variants share their family's tokenizer
    base = {"mistral_swa": "mistral", "llama_wide": "llama2"}.get(name, name)
    tj, cfg = spm_tokenizer(base) if base in ("llama2", "mistral") else bytelevel_tokenizer(base)
    write_file(os.path.join(d, "tokenizer.json"), (json.dumps(tj, indent=2, ensure_ascii=False) + "\n").encode())
    write_json(os.path.join(d, "tokenizer_config.json"), cfg)


def spm_gguf_kvs():
    """tokenizer.ggml.* of the SentencePiece vocabulary as llama.cpp's converter writes them
    from a tokenizer.model: scores are SentencePiece piece scores (minus the piece's rank
    among merged pieces; characters below every merged piece; special and byte tokens 0)."""
    pieces, _ = spm_vocab()
    first, n_chars = 3 + 256, len(SPM_CHARS)
    scores, types = [], []
    for i, p in enumerate(pieces):
        if i < 3:
            scores.append(0.0)
            types.append(2 if i == 0 else 3)  # unknown, control
        elif i < first:
            scores.append(0.0)
            types.append(6)  # byte
        elif i < first + n_chars:
            scores.append(-1000.0 - (i - first))
            types.append(1)
        else:
            scores.append(-float(i - first - n_chars + 1))
            types.append(1)
    return [("tokenizer.ggml.model", GGUF_STRING, "llama"),
            ("tokenizer.ggml.tokens", GGUF_ARRAY, (GGUF_STRING, pieces)),
            ("tokenizer.ggml.scores", GGUF_ARRAY, (GGUF_F32, scores)),
            ("tokenizer.ggml.token_type", GGUF_ARRAY, (GGUF_I32, types)),
            ("tokenizer.ggml.bos_token_id", GGUF_U32, 1),
            ("tokenizer.ggml.eos_token_id", GGUF_U32, 2),
            ("tokenizer.ggml.unknown_token_id", GGUF_U32, 0),
            ("tokenizer.ggml.add_bos_token", GGUF_BOOL, True),
            ("tokenizer.ggml.add_eos_token", GGUF_BOOL, False)]


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
    write_file(os.path.join(d, "model.gguf"), gguf_bytes(gguf_kvs(cfg, name) + spm_gguf_kvs(), tensors))
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
    write_tokenizer(d, name)
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
