#!/usr/bin/env bash
# test_nfc.sh BUILD_DIR: mixprec's NFC normalization (src/io/nfc.c, via tests/tool_nfc.c)
# against Python's unicodedata.normalize('NFC', ...) (Debian's /usr/bin/python3, whose
# Unicode version must be the one the tables were generated from). Cases: every code point
# with a canonical decomposition, alone and followed by combining marks out of order; the
# decomposed form of every primary composite; every Hangul syllable decomposed, and LV + T;
# composition exclusions and singletons; 20000 seeded random strings over a pool of starters,
# combining marks of many classes and jamo.
set -euo pipefail
build=${1:?usage: test_nfc.sh BUILD_DIR}
fail() { echo "FAIL test_nfc: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 - "$tmp/cases" "$tmp/want" <<'PY'
import random, sys, unicodedata as ud
cases = []
def add(s):
    cases.append(s)
surrogate = lambda cp: 0xD800 <= cp <= 0xDFFF
marks = [0x300, 0x301, 0x308, 0x323, 0x327, 0x328, 0x31B, 0x345, 0x35C, 0x35D, 0x5B0, 0x5BC,
         0x0E38, 0x0E48, 0x1DCE, 0x20D2, 0x302A, 0x3099, 0x309A, 0x0F71, 0x0F72, 0x0F80, 0x0334,
         0x0338, 0x093C, 0x094D, 0x0CD5, 0x0B3E, 0x0BBE, 0x0CC2]
for cp in range(0x110000):
    if surrogate(cp):
        continue
    c = chr(cp)
    d = ud.decomposition(c)
    if d and not d.startswith('<'):
        add(c)
        add(c + '\u0323\u0301')
        add(ud.normalize('NFD', c))
        add(ud.normalize('NFD', c) + '\u0328\u0302\u0323')
for s in range(0xAC00, 0xD7A4):
    add(ud.normalize('NFD', chr(s)))
    if (s - 0xAC00) % 28 == 0:
        add(chr(s) + '\u11A8')
        add(chr(s) + '\u11C3')  # not a T jamo: does not compose
add('\u1100\u1161\u11A8\u0301')
add('\u1100\u0301\u1161')
add('')
add('A\u030a\u212b\u2126\u0958\u0344\u0f73\u1e9b\u0323')
rng = random.Random(1234)
starters = [0x41, 0x61, 0x65, 0x4F, 0x75, 0x3B1, 0x3C9, 0x438, 0x627, 0x915, 0x1100, 0x1161, 0x11A8,
            0xAC00, 0xAC01, 0x1E0B, 0x212B, 0x2126, 0x958, 0xF900, 0x2F800, 0x1D15E, 0x1D160,
            0x0B47, 0x0BC6, 0x0CC6, 0x0DD9, 0x1025, 0x3C, 0x3D, 0x3E, 0x20, 0x110B9, 0x11099]
pool = starters + marks
for _ in range(20000):
    add(''.join(chr(rng.choice(pool)) for _ in range(rng.randint(1, 12))))
with open(sys.argv[1], 'w') as f, open(sys.argv[2], 'w') as g:
    g.write('unicode %s\n' % ud.unidata_version)
    for s in cases:
        f.write(' '.join('%04X' % ord(c) for c in s) + '\n')
        g.write(' '.join('%04X' % ord(c) for c in ud.normalize('NFC', s)) + '\n')
print('test_nfc: %d cases' % len(cases), file=sys.stderr)
PY
"$build/tool_nfc" < "$tmp/cases" > "$tmp/got" || fail "tool_nfc failed"
head -1 "$tmp/got" | cmp -s - <(head -1 "$tmp/want") ||
    fail "Unicode versions differ: mixprec $(head -1 "$tmp/got"), Python $(head -1 "$tmp/want")"
if ! cmp -s "$tmp/got" "$tmp/want"; then
    n=$(diff "$tmp/got" "$tmp/want" | grep -c '^<' || true)
    line=$( (cmp "$tmp/got" "$tmp/want" || true) | sed -n 's/.* line \([0-9]*\).*/\1/p')
    fail "$n strings differ from Python; first: input $(sed -n "$((line - 1))p" "$tmp/cases"): got $(sed -n "${line}p" "$tmp/got"), want $(sed -n "${line}p" "$tmp/want")"
fi
echo "test_nfc: OK ($(($(wc -l < "$tmp/cases"))) strings)"
