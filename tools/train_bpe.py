#!/usr/bin/python3
"""train_bpe.py: train a byte-level BPE tokenizer (GPT-2 style) on a text file and write it as
a Hugging Face tokenizer.json + tokenizer_config.json. Standard library only.

    /usr/bin/python3 tools/train_bpe.py --input train.txt --vocab 2048 --out DIR

Vocabulary (ids): 0..255 are the 256 bytes (id = byte value, spelled with GPT-2's
bytes-to-unicode map, "Ġ" for a space), then one token per merge in the order learned, then
the special token <|endoftext|> (last id), which tokenizer_config.json names as BOS and EOS
(not added automatically: add_bos_token = add_eos_token = false).

Pre-tokenizer: the GPT-2 split pattern
    's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
Python's `re` has no \\p{L} / \\p{N}, so this script builds the two character classes from
unicodedata (every code point whose general category starts with L, resp. N) and substitutes
them: for letters and numbers it is exact (up to the Unicode version of this Python). \\s
keeps Python's meaning (str.isspace), which differs from the Rust regex crate's White_Space
for a few control characters (U+001C..U+001F); the KJV corpus is plain ASCII, where the two
agree. The tokenizer.json carries the pattern string exactly as Hugging Face writes it.

Training: count the pre-tokenized pieces; repeatedly merge the most frequent adjacent pair of
tokens inside a piece (ties: the pair whose token ids are smallest, so the result is
deterministic), updating pair counts incrementally. Merges never cross piece boundaries.

--check FILE re-encodes FILE with the learned merges (a plain Python encoder, independent of
the C tokenizer) and writes its token ids as a mixprec-tokens file to FILE.ids, so the C
tokenizer's output can be compared with it.
"""
import argparse
import collections
import json
import os
import re
import sys
import tempfile
import unicodedata

GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
SPECIAL = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible map from the 256 bytes to printable characters."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def category_class(prefix):
    """A regex character-class body matching every code point whose category starts with prefix."""
    ranges, start, prev = [], None, None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if unicodedata.category(chr(cp)).startswith(prefix):
            if start is None:
                start = cp
            elif cp != prev + 1:
                ranges.append((start, prev))
                start = cp
            prev = cp
    if start is not None:
        ranges.append((start, prev))
    return "".join(re.escape(chr(a)) if a == b else re.escape(chr(a)) + "-" + re.escape(chr(b))
                   for a, b in ranges)


def compile_pretokenizer():
    L, N = category_class("L"), category_class("N")
    pat = GPT2_PATTERN.replace(r"[^\s\p{L}\p{N}]", "[^\\s" + L + N + "]")
    pat = pat.replace(r"\p{L}", "[" + L + "]").replace(r"\p{N}", "[" + N + "]")
    assert r"\p" not in pat
    return re.compile(pat)


def train(pieces, n_merges, log):
    """pieces: Counter of bytes objects. Returns the list of merges as (left id, right id)."""
    words = [list(p) for p in pieces]            # token ids per distinct piece
    freq = [pieces[p] for p in pieces]
    pair_count = collections.defaultdict(int)
    where = collections.defaultdict(set)         # pair -> indices of words containing it
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freq[i]
            where[(a, b)].add(i)
    merges = []
    next_id = 256
    for step in range(n_merges):
        if not pair_count:
            break
        best = max(pair_count.items(), key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
        pair, cnt = best
        if cnt < 1:
            break
        new = next_id
        next_id += 1
        merges.append(pair)
        for i in sorted(where.pop(pair, ())):
            w, f = words[i], freq[i]
            for a, b in zip(w, w[1:]):         # remove this word's old pairs
                pair_count[(a, b)] -= f
                if pair_count[(a, b)] <= 0:
                    del pair_count[(a, b)]
                s = where.get((a, b))
                if s is not None:
                    s.discard(i)
            out, k = [], 0
            while k < len(w):
                if k + 1 < len(w) and w[k] == pair[0] and w[k + 1] == pair[1]:
                    out.append(new)
                    k += 2
                else:
                    out.append(w[k])
                    k += 1
            words[i] = out
            for a, b in zip(out, out[1:]):     # add the new ones
                pair_count[(a, b)] += f
                where[(a, b)].add(i)
        pair_count.pop(pair, None)
        if log and (step + 1) % 200 == 0:
            print(f"train_bpe: {step + 1}/{n_merges} merges (last count {cnt})", file=sys.stderr)
    return merges


def encode_piece(piece, ranks):
    """Apply merges by rank (lowest first) to one piece's bytes, as a BPE encoder does."""
    w = list(piece)
    while len(w) > 1:
        best, bi = None, -1
        for k in range(len(w) - 1):
            r = ranks.get((w[k], w[k + 1]))
            if r is not None and (best is None or r < best):
                best, bi = r, k
        if best is None:
            break
        new = 256 + best
        out, k = [], 0
        while k < len(w):
            if k + 1 < len(w) and w[k] == w[bi] and w[k + 1] == w[bi + 1]:
                out.append(new)
                k += 2
            else:
                out.append(w[k])
                k += 1
        w = out
    return w


def write_atomic(path, text):
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="UTF-8 training text")
    ap.add_argument("--vocab", type=int, default=2048, help="total vocabulary incl. bytes and <|endoftext|>")
    ap.add_argument("--out", required=True, help="output folder")
    ap.add_argument("--check", action="append", default=[], help="text file to encode (writes FILE.ids)")
    a = ap.parse_args()
    if a.vocab < 258:
        ap.error("--vocab must be at least 258 (256 bytes + one merge + the special token)")
    with open(a.input, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        sys.exit(f"train_bpe: {a.input}: invalid UTF-8 at byte offset {e.start}")
    if not text:
        sys.exit(f"train_bpe: {a.input}: empty")
    pre = compile_pretokenizer()
    pieces = collections.Counter(m.group(0).encode("utf-8") for m in pre.finditer(text))
    print(f"train_bpe: {len(raw)} bytes, {sum(pieces.values())} pieces, {len(pieces)} distinct",
          file=sys.stderr)
    n_merges = a.vocab - 256 - 1
    merges = train(pieces, n_merges, log=True)
    if len(merges) < n_merges:
        sys.exit(f"train_bpe: only {len(merges)} merges possible on this text, {n_merges} needed for --vocab {a.vocab}")

    b2u = bytes_to_unicode()
    spelled = [b2u[b] for b in range(256)]
    for l, r in merges:
        spelled.append(spelled[l] + spelled[r])
    special_id = len(spelled)
    vocab = {}
    for i, s in enumerate(spelled):
        if s in vocab:
            sys.exit(f"train_bpe: internal error: duplicate token {s!r}")
        vocab[s] = i
    vocab[SPECIAL] = special_id

    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": special_id, "content": SPECIAL, "single_word": False, "lstrip": False,
                          "rstrip": False, "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": GPT2_PATTERN}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [spelled[l] + " " + spelled[r] for l, r in merges]},
    }
    cfg = {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": {str(special_id): {"content": SPECIAL, "lstrip": False, "normalized": False,
                                                  "rstrip": False, "single_word": False, "special": True}},
        "bos_token": SPECIAL,
        "eos_token": SPECIAL,
        "unk_token": None,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 1000000000000000019884624838656,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    os.makedirs(a.out, exist_ok=True)
    write_atomic(os.path.join(a.out, "tokenizer.json"), json.dumps(tok, ensure_ascii=False, indent=2) + "\n")
    write_atomic(os.path.join(a.out, "tokenizer_config.json"), json.dumps(cfg, indent=2) + "\n")
    print(f"train_bpe: wrote {a.out}/tokenizer.json ({len(vocab)} tokens, {len(merges)} merges)", file=sys.stderr)

    ranks = {m: i for i, m in enumerate(merges)}
    for path in a.check:
        with open(path, "rb") as f:
            t = f.read().decode("utf-8")
        ids = []
        cache = {}
        for m in pre.finditer(t):
            p = m.group(0).encode("utf-8")
            if p not in cache:
                cache[p] = encode_piece(p, ranks)
            ids.extend(cache[p])
        dec = bytearray()
        table = [bytes([b]) for b in range(256)]
        for l, r in merges:
            table.append(table[l] + table[r])
        for i in ids:
            dec += table[i]
        if bytes(dec) != t.encode("utf-8"):
            sys.exit(f"train_bpe: {path}: the Python encoder does not round-trip")
        write_atomic(path + ".ids", "mixprec-tokens 1\n" + "\n".join(map(str, ids)) + "\n")
        print(f"train_bpe: {path}: {len(ids)} tokens ({len(t.encode('utf-8')) / len(ids):.2f} bytes/token), "
              f"wrote {path}.ids", file=sys.stderr)


if __name__ == "__main__":
    main()
