#!/usr/bin/env bash
# make_corpus.sh OUTDIR: the King James Bible (Debian package bible-kjv-text, read through the
# `bible` program of package bible-kjv) as a clean plain-text corpus for the fixture models.
#
# Output (deterministic: the same package version gives the same bytes):
#   OUTDIR/train.txt    every book except the held-out ones
#   OUTDIR/heldout.txt  the held-out books, whole: Ruth, Ecclesiastes, Daniel, Romans, Hebrews
# Format: one chapter per paragraph: a header line "Book N", then one line per verse (verse
# numbers removed, wrapped lines joined with one space), then a blank line. The two files
# never share a chapter; the script checks that their chapter headers are disjoint and that
# every chapter landed in exactly one of them.
# The KJV text is in the public domain; the bible-kjv program is GPL-2+ (we only run it).
set -euo pipefail
export LC_ALL=C
out=${1:?usage: make_corpus.sh OUTDIR}
command -v bible >/dev/null || { echo "make_corpus.sh: needs /usr/bin/bible (apt-get install bible-kjv)" >&2; exit 1; }
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bible "Gen1:1-Rev22:21" > "$tmp/raw.txt"

# A chapter header is a line that does not start with a space, ends in a number and has
# blank lines on both sides; a verse starts with "  N "; any other non-blank line continues
# the verse before it.
awk -v heldout="Ruth|Ecclesiastes|Daniel|Romans|Hebrews" -v tr="$tmp/train.txt" -v ho="$tmp/heldout.txt" '
function flush() { if (verse != "") { print verse > dst; verse = "" } }
{ line[NR] = $0 }
END {
    n = split(heldout, hb, "|"); for (i = 1; i <= n; i++) held[hb[i]] = 1
    dst = ""; verse = ""; chapters = 0
    for (i = 1; i <= NR; i++) {
        s = line[i]
        if (s == "") continue
        if (s !~ /^ / && s ~ / [0-9]+$/ && (i == 1 || line[i-1] == "") && line[i+1] == "") {
            flush()
            if (dst != "") print "" > dst
            book = s; sub(/ [0-9]+$/, "", book)
            dst = (book in held) ? ho : tr
            print s > dst
            chapters++
            continue
        }
        if (dst == "") { print "make_corpus: text before the first chapter header at line " i > "/dev/stderr"; exit 1 }
        if (s ~ /^  [0-9]+ /) {
            flush()
            sub(/^  [0-9]+ /, "", s)
            verse = s
        } else if (s ~ /^ /) {
            print "make_corpus: unexpected indented line " i ": " s > "/dev/stderr"; exit 1
        } else {
            if (verse == "") { print "make_corpus: continuation without a verse at line " i > "/dev/stderr"; exit 1 }
            verse = verse " " s
        }
    }
    flush()
    print "" > dst
    print chapters > "/dev/stderr"
}' "$tmp/raw.txt" 2> "$tmp/chapters"

n=$(cat "$tmp/chapters")
[ "$n" = 1189 ] || { echo "make_corpus.sh: expected 1189 chapters, found: $n" >&2; exit 1; }
a=$(grep -c -E '^[^ ].* [0-9]+$' "$tmp/train.txt" || true)
b=$(grep -c -E '^[^ ].* [0-9]+$' "$tmp/heldout.txt" || true)
# headers are the lines right after a blank line (or the first line)
ha=$(awk 'NR == 1 || prev == "" {print} {prev = $0}' "$tmp/train.txt" | grep -v '^$' | sort)
hb=$(awk 'NR == 1 || prev == "" {print} {prev = $0}' "$tmp/heldout.txt" | grep -v '^$' | sort)
[ "$(printf '%s\n%s\n' "$ha" "$hb" | wc -l)" = 1189 ] || { echo "make_corpus.sh: chapter count mismatch after the split" >&2; exit 1; }
[ -z "$(comm -12 <(echo "$ha") <(echo "$hb"))" ] || { echo "make_corpus.sh: train and heldout share a chapter" >&2; exit 1; }
mv "$tmp/train.txt" "$out/train.txt"
mv "$tmp/heldout.txt" "$out/heldout.txt"
echo "make_corpus: $n chapters; train.txt $(wc -c < "$out/train.txt") bytes, heldout.txt $(wc -c < "$out/heldout.txt") bytes (headers $a / $b)" >&2
