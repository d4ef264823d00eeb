#!/usr/bin/python3
"""check_heldout.py: the held-out loss of a bundled model, computed by PyTorch alone, to compare
with `mixprec eval`.

    /usr/bin/python3 tools/check_heldout.py [--mixprec BUILD/mixprec] MODEL_DIR [MODEL_DIR ...]

For each MODEL_DIR (a Hugging Face LlamaForCausalLM folder with config.json, model.safetensors
and a byte-level BPE tokenizer.json, as models/default and models/tiny are):

 1. Tokenize MODEL_DIR/heldout.txt (or --data) in Python from tokenizer.json: the GPT-2 split
    pattern (tools/train_bpe.py's compile_pretokenizer), bytes mapped to GPT-2's printable
    characters, merges applied lowest rank first, pieces looked up in the vocabulary; added
    tokens (<|endoftext|>) are matched as whole strings first. No BOS/EOS is added (the bundled
    tokenizer_config.json says add_bos_token = add_eos_token = false). Nothing here calls the C
    tokenizer.
 2. Take the evaluation split as mixprec does (src/io/data.h): ids [n/2, n) of the n ids, cut
    into whole, non-overlapping windows of T+1 ids; T = --seq, else min(256,
    max_position_embeddings), the default of `mixprec eval`.
 3. Run the forward of tools/torch_sens.py (written from the Hugging Face Llama definition) in
    float64 on every window and average the next-token cross-entropy over all scored tokens.

Prints one line per model: `check_heldout: MODEL windows=W tokens=N loss=L ppl=P`.

With --mixprec BIN it also runs `BIN eval MODEL --data DATA --seq T` twice, once on the text
and once on a token-id file of the ids from step 1, and reports both losses (`mixprec eval`
prints 6 decimals, so agreement is checked to about 1e-6). Equal losses from the two runs say the
C tokenizer gave the ids of step 1; |mixprec - PyTorch| is f32 against float64 rounding plus the
printed precision. Exits 1 when the two mixprec losses differ or |mixprec - PyTorch| > --tol
(default 1e-5).
"""
import argparse
import json
import math
import os
import re
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_bpe import bytes_to_unicode, compile_pretokenizer  # noqa: E402  (standard library only)
from torch_sens import Llama  # noqa: E402  (PyTorch forward from the HF definition)


class ByteLevelBPE:
    """Encoder for a byte-level BPE tokenizer.json (the GPT-2 kind), from the file alone."""

    def __init__(self, path):
        tok = json.load(open(path, encoding="utf-8"))
        model = tok["model"]
        if model.get("type") != "BPE":
            raise SystemExit("%s: model.type is %r, not BPE" % (path, model.get("type")))
        self.vocab = model["vocab"]
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
        self.rank = {m: i for i, m in enumerate(merges)}
        self.added = {t["content"]: t["id"] for t in tok.get("added_tokens", [])}
        self.byte_char = bytes_to_unicode()
        self.pre = compile_pretokenizer()
        self.cache = {}

    def _piece(self, piece):
        w = [self.byte_char[b] for b in piece.encode("utf-8")]
        while len(w) > 1:
            ranks = [self.rank.get((w[k], w[k + 1])) for k in range(len(w) - 1)]
            best = min((r for r in ranks if r is not None), default=None)
            if best is None:
                break
            a, b = w[ranks.index(best)], w[ranks.index(best) + 1]
            out, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and w[k] == a and w[k + 1] == b:
                    out.append(a + b)
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            w = out
        try:
            return [self.vocab[s] for s in w]
        except KeyError as e:
            raise SystemExit("token %r is not in the vocabulary" % e.args[0])

    def encode(self, text):
        ids = []
        parts = [text]
        if self.added:
            pat = "(" + "|".join(re.escape(s) for s in sorted(self.added, key=len, reverse=True)) + ")"
            parts = re.split(pat, text)
        for part in parts:
            if part in self.added:
                ids.append(self.added[part])
                continue
            for m in self.pre.finditer(part):
                p = m.group(0)
                if p not in self.cache:
                    self.cache[p] = self._piece(p)
                ids.extend(self.cache[p])
        return ids


def heldout_loss(model, ids, T):
    """Mean next-token loss over the evaluation split's whole windows of T+1 ids (float64)."""
    start = len(ids) // 2
    n_win = (len(ids) - start) // (T + 1)
    if n_win == 0:
        raise SystemExit("the evaluation split (%d ids) holds no window of %d+1" % (len(ids) - start, T))
    zero = torch.zeros((), dtype=torch.float64)
    leaves = {op: (model.weight(op).to(torch.float64), zero) for op in model.ops}
    # a tied head is the op; the lookup reads the same table under the embedding's name
    leaves.setdefault("model.embed_tokens", (model.P["model.embed_tokens.weight"].to(torch.float64), zero))
    total = 0.0
    with torch.no_grad():
        for w in range(n_win):
            lo = start + w * (T + 1)
            seq = torch.tensor(ids[lo:lo + T + 1], dtype=torch.int64)
            loss, _ = model.forward_loss(seq, leaves)
            total += float(loss) * T
    return n_win, n_win * T, total / (n_win * T)


def mixprec_loss(binary, model_dir, data, T):
    r = subprocess.run([binary, "eval", model_dir, "--data", data, "--seq", str(T)],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    if r.returncode != 0:
        raise SystemExit("%s eval %s --data %s failed (exit %d)" % (binary, model_dir, data, r.returncode))
    m = re.search(r"^eval: loss=(\S+)", r.stdout, re.M)
    if not m:
        raise SystemExit("%s eval printed no 'eval: loss=' line" % binary)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", help="model folders (config.json, model.safetensors, tokenizer.json)")
    ap.add_argument("--data", help="text file (default: MODEL_DIR/heldout.txt)")
    ap.add_argument("--seq", type=int, help="window length T (default: min(256, max_position_embeddings))")
    ap.add_argument("--mixprec", help="mixprec binary: also run `mixprec eval` and compare")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest |mixprec - PyTorch| accepted")
    a = ap.parse_args()
    torch.set_num_threads(1)
    failed = False
    for d in a.models:
        data = a.data or os.path.join(d, "heldout.txt")
        cfg = json.load(open(os.path.join(d, "config.json")))
        T = a.seq or min(256, cfg.get("max_position_embeddings") or 256)
        with open(data, "rb") as f:
            text = f.read().decode("utf-8")
        ids = ByteLevelBPE(os.path.join(d, "tokenizer.json")).encode(text)
        n_win, n_tok, loss = heldout_loss(Llama(d, torch.float64), ids, T)
        line = "check_heldout: %s windows=%d tokens=%d loss=%.6f ppl=%.4f" % (d, n_win, n_tok, loss, math.exp(loss))
        if a.mixprec:
            fd, ids_path = tempfile.mkstemp(suffix=".ids")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write("mixprec-tokens 1\n" + "\n".join(map(str, ids)) + "\n")
                l_text = mixprec_loss(a.mixprec, d, data, T)
                l_ids = mixprec_loss(a.mixprec, d, ids_path, T)
            finally:
                os.unlink(ids_path)
            diff = l_text - loss
            ok = l_text == l_ids and abs(diff) <= a.tol
            failed |= not ok
            line += " mixprec_text=%.6f mixprec_ids=%.6f diff=%.1e %s" % (l_text, l_ids, diff, "ok" if ok else "FAIL")
        print(line, flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
