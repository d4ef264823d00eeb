#!/usr/bin/env bash
# test_optimize.sh BUILD_DIR: `mixprec optimize` end to end on the fixture model models/tiny
# with small settings: the files it promises (plan, GGUF that loads, report.html, report.json),
# the summary line, the figures agreeing with an independent `mixprec eval` of the same plan,
# the target table recomputed from the measured points, a self-contained well-formed page;
# bad arguments refused with a clear message and a non-zero status; Ctrl-C leaving no files;
# a short text without --samples using the windows it holds.
set -euo pipefail
build=${1:?usage: test_optimize.sh BUILD_DIR}
mx="$build/mixprec"
model=models/tiny
data=$model/heldout.txt
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} OMP_WAIT_POLICY=PASSIVE
fail() { echo "FAIL test_optimize: $*" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export MIXPREC_CACHE_DIR="$tmp/cache"  # a fresh latency cache: the test measures
# --formats: the default list and f8_e4m3 (no GGUF type: in no default list), which is
# calibrated and measured as a uniform baseline, never profiled
small=(--samples 4 --seq 64 --eval-samples 4 --profile-budget 6 --pareto 3 --formats f32,bf16,f16,q8_0,q4_0,f8_e4m3)

# ---- refusals: clear message, non-zero status, nothing written ----
expect_fail() {  # want_status pattern args...
    local want=$1 pat=$2
    shift 2
    local rc=0
    "$mx" optimize "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
    [ "$rc" = "$want" ] || fail "optimize $* exited $rc, expected $want (stderr: $(cat "$tmp/err"))"
    grep -qi -- "$pat" "$tmp/err" || fail "optimize $*: stderr lacks '$pat': $(cat "$tmp/err")"
}
expect_fail 2 "one budget" $model --data $data --workload decode:64 -o "$tmp/bad"
expect_fail 2 "one budget" $model --data $data --workload decode:64 -o "$tmp/bad" --max-ppl-increase 1% --max-loss-mse 1e-3
expect_fail 2 "percentage" $model --data $data --workload decode:64 -o "$tmp/bad" --max-ppl-increase 5
expect_fail 2 "max-ppl-increase" $model --data $data --workload decode:64 -o "$tmp/bad" --max-ppl-increase abc
expect_fail 2 "max-loss-mse" $model --data $data --workload decode:64 -o "$tmp/bad" --max-loss-mse -1
expect_fail 2 "needs --data" $model --workload decode:64 -o "$tmp/bad" --max-ppl-increase 1%
expect_fail 2 "needs -o" $model --data $data --workload decode:64 --max-ppl-increase 1%
expect_fail 2 "unknown option" $model --data $data --workload decode:64 -o "$tmp/bad" --max-ppl-increase 1% --frobnicate
expect_fail 1 "workload" $model --data $data --workload decode:100000 -o "$tmp/bad" --max-ppl-increase 1%
expect_fail 1 "workload" $model --data $data --workload sideways:3 -o "$tmp/bad" --max-ppl-increase 1%
: >"$tmp/afile"
expect_fail 1 "not a folder" $model --data $data --workload decode:64 -o "$tmp/afile" --max-ppl-increase 1%
expect_fail 1 "llama-bench $tmp/nope" $model --data $data --workload decode:64 -o "$tmp/bad" --max-ppl-increase 1% \
    --llama-bench "$tmp/nope" "${small[@]}"
expect_fail 1 "$tmp/nope.txt" $model --data "$tmp/nope.txt" --workload decode:64 -o "$tmp/bad" --max-ppl-increase 1% "${small[@]}"
[ -z "$(ls -A "$tmp/bad" 2>/dev/null)" ] || fail "a refused run left files in $tmp/bad: $(ls -A "$tmp/bad")"

# ---- the run ----
out="$tmp/run"
t0=$(date +%s)
"$mx" optimize $model --data $data --workload decode:64 --max-ppl-increase 1% -o "$out" "${small[@]}" \
    >"$tmp/stdout" 2>"$tmp/stderr" || fail "optimize exited $?: $(tail -5 "$tmp/stderr")"
echo "test_optimize: run took $(( $(date +%s) - t0 )) s"
summary=$(grep '^optimize: plan=' "$tmp/stdout") || fail "no summary line on stdout: $(cat "$tmp/stdout")"
echo "$summary"
for f in plan.json model.gguf report.html report.json sens.json latency.json; do
    [ -s "$out/$f" ] || fail "$out/$f missing or empty"
done
[ -z "$(find "$out" -name '.mixprec-optimize-*')" ] || fail "the work folder was left behind"
grep -q "\[1/6\] calibrate" "$tmp/stderr" || fail "no stage progress on stderr"
grep -q "^llama.cpp: prefill .* decode " "$tmp/stdout" || fail "no llama.cpp speed line on stdout: $(cat "$tmp/stdout")"
# f8_e4m3 (asked for) is measured as a uniform baseline but never profiled (no GGUF type): its predicted
# gain is "not profiled", never a NaN, in the progress lines, the summary and the report
if grep -Eiq '(^|[^a-z])[+-]?nan([^a-z]|$)' "$tmp/stderr" "$tmp/stdout"; then
    fail "NaN printed: $(grep -Ei '(^|[^a-z])[+-]?nan([^a-z]|$)' "$tmp/stderr" "$tmp/stdout" | head -3)"
fi
grep -Eq "uniform f8_e4m3 +gain .*\(predicted not profiled\)" "$tmp/stderr" ||
    fail "the f8_e4m3 gain line does not say 'not profiled': $(grep 'uniform f8_e4m3' "$tmp/stderr")"
# the whole-model timing runs on ggml, like the profile: f8_e4m3 has no ggml type, so it is not timed
grep -q "timing .* end to end on ggml" "$tmp/stderr" || fail "the whole-model timing does not say it runs on ggml"
grep -q "uniform f8_e4m3: not timed on ggml: f8_e4m3 has no ggml type" "$tmp/stderr" ||
    fail "no 'not timed on ggml' line for f8_e4m3: $(grep 'f8_e4m3' "$tmp/stderr")"

# the GGUF loads and runs in its stored formats
"$mx" info "$out/model.gguf" >"$tmp/info" || fail "mixprec info cannot read model.gguf"
grep -q "parameters:" "$tmp/info" || fail "mixprec info printed no parameter count for model.gguf"

# the chosen plan measured again, independently, by mixprec eval (same samples and windows):
# its loss MSE must be what the report says
"$mx" eval $model --data $data --formats "$out/plan.json" --seq 64 --samples 4 --decode-tokens 0 >"$tmp/eval" 2>/dev/null \
    || fail "mixprec eval of plan.json failed"
ev=$(grep '^eval: ' "$tmp/eval") || fail "no eval line"

python3 - "$out" "$summary" "$ev" <<'PY' || fail "report figures are inconsistent"
import json, math, re, sys
from html.parser import HTMLParser
out, summary, ev = sys.argv[1], sys.argv[2], sys.argv[3]
plan = json.load(open(f"{out}/plan.json"))
rep = json.load(open(f"{out}/report.json"))
kv = lambda line: dict(re.findall(r"(\w+)=(\S+)", line))
s, e = kv(summary), kv(ev)
errors = []
def check(cond, msg):
    if not cond: errors.append(msg)

tau = math.log(1.01) ** 2
check(plan["format"] == "mixprec-plan" and plan["version"] == 1, "plan.json is not a mixprec plan")
check(abs(float(s["budget_loss_mse"]) - tau) <= 1e-9 * tau, f"budget {s['budget_loss_mse']} is not ln(1.01)^2 = {tau}")
check(plan["predicted"]["loss_mse"] <= tau * (1 + 1e-9), "the plan's predicted loss MSE exceeds the budget")
check(abs(float(s["predicted_loss_mse"]) - plan["predicted"]["loss_mse"]) <= 1e-5 * max(tau, plan["predicted"]["loss_mse"]),
      "summary predicted_loss_mse differs from plan.json")
chosen = [p for p in rep["points"] if p["kind"] == "chosen"]
check(len(chosen) == 1, "report.json needs exactly one chosen point")
c = chosen[0]
# independent measurement: mixprec eval on the same windows
lm = float(e["loss_mse"])
# (eval prints 6 significant digits: a relative 1e-5 is its rounding, far below what other
# windows or formats would change)
check(abs(c["measured"]["loss_mse"] - lm) <= 1e-5 * max(lm, 1e-30) + 1e-15,
      f"report loss MSE {c['measured']['loss_mse']} != eval's {lm}")
check(abs(float(s["measured_loss_mse"]) - lm) <= 1e-5 * max(lm, 1e-30) + 1e-15, "summary measured_loss_mse != eval's")
check(abs(float(s["ppl"]) - float(e["ppl"])) <= 1e-3, f"summary ppl {s['ppl']} != eval's {e['ppl']}")
check(abs(float(s["ppl_ref"]) - math.exp(float(e["ref_loss"]))) <= 1e-3, "summary ppl_ref != eval's reference")
# baselines present: every uniform format (f8_e4m3 included), the three other plans
kinds = {p["kind"] for p in rep["points"]}
check({"pareto", "uniform", "mac", "memory", "fisher"} <= kinds, f"missing baselines: {kinds}")
# llama.cpp's own mixes (llama-quantize beside llama-bench), each followed by the plan of at most its size
P = rep["points"]
mixes = [(P[i], P[i + 1]) for i in range(len(P) - 1) if P[i]["kind"] == "llama_mix" and P[i + 1]["kind"] == "sized"]
check([m["label"] for m, _ in mixes] == ["llama.cpp Q8_0", "llama.cpp Q4_K_M"], f"llama.cpp mixes compared: {mixes}")
for m, q in mixes:
    check(q["measured"]["weight_bytes"] <= m["measured"]["weight_bytes"] * 1.001,
          f"{q['label']}: {q['measured']['weight_bytes']} weight bytes > the mix's {m['measured']['weight_bytes']}")
    check(m["measured"]["kl"] > 0 and q["measured"]["kl"] >= 0, f"{m['label']}: no KL measured")
# ... and by the fastest plan within the mix's measured loss (its predicted loss MSE at most that)
matched = [(P[i], P[i + 2]) for i in range(len(P) - 2) if P[i]["kind"] == "llama_mix" and P[i + 2]["kind"] == "loss_matched"]
check([m["label"] for m, _ in matched] == ["llama.cpp Q8_0", "llama.cpp Q4_K_M"], f"loss-matched plans: {matched}")
for m, q in matched:
    check(q["label"] == "mixprec at " + m["label"].split()[1] + "'s loss", f"label {q['label']}")
    check(q["predicted"]["loss_mse"] <= m["measured"]["loss_mse"] * (1 + 1e-9),
          f"{q['label']}: predicted loss MSE {q['predicted']['loss_mse']} > the mix's measured {m['measured']['loss_mse']}")
uni = {p["label"] for p in rep["points"] if p["kind"] == "uniform"}
check(uni == {"uniform " + f for f in ["bf16", "f16", "q8_0", "q4_0", "f8_e4m3"]}, f"uniform formats measured: {uni}")
# uniform q4_0 must be measurably worse than uniform bf16 (a sanity check of the measurement)
lossof = {p["label"]: p["measured"]["loss_mse"] for p in rep["points"]}
check(lossof["uniform q4_0"] > 10 * lossof["uniform bf16"], "uniform q4_0 is not clearly worse than bf16")
# the target table recomputed from the measured points
pts = {p["label"]: p for p in rep["points"]}
check(len(rep["target"]) >= 2, "target table has fewer than 2 budgets")
for t in rep["target"]:
    p, b = pts[t["plan"]], t["budget"]
    check(t["loss_ok"] == (p["measured"]["loss_mse"] <= 1.5 * b), f"{t['plan']}: loss_ok wrong")
    best, name = 0.0, "f32"
    for q in rep["points"]:
        if q["kind"] == "uniform" and q["measured"]["loss_mse"] <= b and q["measured"].get("time_gain_frac", -1) > best:
            best, name = q["measured"]["time_gain_frac"], q["label"]
    check(t["best_uniform"] == name and abs(t["best_uniform_gain_frac"] - best) < 1e-12, f"{t['plan']}: best uniform wrong")
    check(t["gain_ok"] == (p["measured"]["time_gain_frac"] >= best), f"{t['plan']}: gain_ok wrong")
# llama.cpp's speed of the GGUFs (llama-bench, built by scripts/deps.sh): the reference and
# every configuration llama.cpp can run (the plan, the sweep, the baselines, the uniform
# formats with a GGUF type, the mixes), never f8_e4m3
lc = rep.get("llama_cpp")
check(lc is not None and lc["f32_prefill_tokens_per_s"] > 0 and lc["f32_decode_tokens_per_s"] > 0,
      f"report.json has no llama.cpp reference speed: {lc} (notes: {rep['notes']})")
for p in rep["points"]:
    want = p["label"] != "uniform f8_e4m3"
    got = "llama_cpp" in p and p["llama_cpp"]["prefill_tokens_per_s"] > 0 and p["llama_cpp"]["decode_tokens_per_s"] > 0
    check(want == got, f"{p['label']}: llama.cpp speed {'missing' if want else 'present'}")
# the target judged on llama.cpp's speeds, recomputed from the points' llama-bench figures
dec = rep["workload"].startswith("decode")
def lgain(p):
    k = "decode_tokens_per_s" if dec else "prefill_tokens_per_s"
    return 1 - lc["f32_" + k] / p["llama_cpp"][k]
by_label = {p["label"]: p for p in rep["points"]}
for t in rep["target"]:
    p = by_label[t["plan"]]
    l = t.get("llama_cpp")
    check(l is not None, f"{t['plan']}: no llama.cpp target row")
    best, name = 0.0, "f32"
    for q in rep["points"]:
        if q["kind"] == "uniform" and "llama_cpp" in q and q["measured"]["loss_mse"] <= t["budget"] and lgain(q) > best:
            best, name = lgain(q), q["label"]
    check(abs(l["gain_frac"] - lgain(p)) < 1e-9 and l["best_uniform"] == name and abs(l["best_uniform_gain_frac"] - best) < 1e-9
          and l["gain_ok"] == (lgain(p) >= best), f"{t['plan']}: llama.cpp target row wrong: {l} vs {name} {best}")
n = len(rep["target"])
check(s["target_loss_ok"] == f"{sum(t['loss_ok'] for t in rep['target'])}/{n}", "summary target_loss_ok wrong")

# the page: self-contained, well-formed (every non-void element closed in order), with plots
html = open(f"{out}/report.html", encoding="utf-8").read()
class P(HTMLParser):
    void = {"meta", "br", "img", "input", "hr", "link", "col", "area", "base", "wbr", "source"}
    def __init__(self):
        super().__init__(); self.stack = []; self.bad = []; self.svgs = 0; self.ext = []
    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if k in ("src", "href") or (k == "style" and "url(" in (v or "")): self.ext.append((tag, k, v))
        if tag == "svg": self.svgs += 1
        if tag not in self.void: self.stack.append(tag)
    def handle_startendtag(self, tag, attrs): pass
    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag: self.bad.append((tag, list(self.stack[-3:])))
        else: self.stack.pop()
p = P(); p.feed(html); p.close()
check(not p.bad, f"mismatched tags: {p.bad[:5]}")
check(p.stack == [], f"unclosed tags: {p.stack[-5:]}")
check(p.svgs >= 5, f"only {p.svgs} svg plots")
check(not p.ext, f"external references: {p.ext[:3]}")
check("<link" not in html and "<script" not in html, "links or scripts in the page")
for needle in ["Baselines", "uniform q8_0", "Pareto", "Sensitivity heat map", "Chosen format per op", "Target"]:
    check(needle in html, f"page lacks '{needle}'")
check(re.search(r"\bnan\b|\binf\b", re.sub(r"<[^>]*>", " ", html), re.I) is None, "page shows nan/inf")
# the point that was not profiled: its table row says so; report.json leaves the gain out
rows = [r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", html, re.S) if "uniform f8_e4m3" in r]
check(rows and any("not profiled" in r for r in rows), "report.html: the f8_e4m3 row does not say 'not profiled'")
f8 = pts["uniform f8_e4m3"]["predicted"]
check(f8.get("not_profiled") is True and "time_gain_frac" not in f8 and f8["loss_mse"] > 0,
      f"report.json: f8_e4m3 prediction {f8}")
# the measured gains: whole-model ggml graphs (the engine the latency table was timed on);
# every point timed except f8_e4m3 (no ggml type), which says so
tm = rep.get("timing", {})
check(tm.get("backend") == "ggml" and tm.get("engine", "").startswith("ggml ") and tm.get("rounds", 0) >= 5,
      f"report.json timing: {tm}")
for pt in rep["points"]:
    m = pt["measured"]
    if pt["label"] == "uniform f8_e4m3":
        check(m.get("not_timed") is True and "time_gain_frac" not in m and m["loss_mse"] > 0, f"f8_e4m3 measured: {m}")
    else:
        check("not_timed" not in m and m["time_s"] > 0 and m["ref_time_s"] > 0 and "time_gain_frac" in m,
              f"{pt['label']}: not timed: {m}")
check("whole model ran on ggml " in re.sub(r"<[^>]*>", "", html), "report.html does not name ggml as the timing engine")
check(all("time_gain_frac" in p["predicted"] for p in rep["points"] if p["kind"] in ("chosen", "pareto")),
      "a solved plan lacks its predicted gain")
if errors:
    print("\n".join(errors)); sys.exit(1)
print(f"test_optimize: report consistent ({len(rep['points'])} points, {n} target budgets, {p.svgs} plots)")
PY

# an escaped label: a folder name with markup characters shows up escaped, never as markup.
# The same run on a short text without --samples / --eval-samples: both halves hold fewer
# windows than the defaults (32, 16), so every window is used, with a warning and a note.
weird="$tmp/a<b>&\"c"
cp -r $model "$weird"
head -c 4000 $data > "$tmp/short.txt"
"$mx" optimize "$weird" --data "$tmp/short.txt" --workload decode:64 --max-loss-mse 1e-4 -o "$tmp/run2" --seq 64 \
    --profile-budget 6 --pareto 3 --no-baselines --quiet >/dev/null 2>"$tmp/stderr2" ||
    fail "optimize on an oddly named model folder and a short text failed: $(tail -3 "$tmp/stderr2")"
grep -q 'a&lt;b&gt;&amp;&quot;c' "$tmp/run2/report.html" || fail "the model path is not escaped in report.html"
if grep -q 'a<b>' "$tmp/run2/report.html"; then fail "raw markup from the model path in report.html"; fi
nc=$(sed -n 's/.*the calibration half holds only \([0-9]*\) windows of 64+1 tokens: using .* not the default 32.*/\1/p' "$tmp/stderr2")
ne=$(sed -n 's/.*the evaluation half holds only \([0-9]*\) windows of 64+1 tokens: using .* not the default 16.*/\1/p' "$tmp/stderr2")
[ -n "$nc" ] && [ -n "$ne" ] || fail "no warnings about the short halves: $(cat "$tmp/stderr2")"
python3 - "$tmp/run2/report.json" "$nc" "$ne" <<'PY' || fail "report.json does not record the sample counts used"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["calibration_samples"] == int(sys.argv[2]) < 32 and r["eval_samples"] == int(sys.argv[3]) < 16, r
PY
grep -q "The calibration half of the data holds only $nc windows" "$tmp/run2/report.html" ||
    fail "report.html lacks the note on the calibration samples"

# Ctrl-C: stops, non-zero, and leaves no file in the output folder
"$mx" optimize $model --data $data --workload decode:64 --max-ppl-increase 1% -o "$tmp/run3" "${small[@]}" --no-cache \
    >/dev/null 2>"$tmp/stderr3" &
pid=$!
sleep 2
kill -INT $pid
rc=0
wait $pid || rc=$?
[ "$rc" != 0 ] || fail "an interrupted run exited 0"
grep -qi "interrupted" "$tmp/stderr3" || fail "an interrupted run did not say so: $(tail -3 "$tmp/stderr3")"
[ -z "$(ls -A "$tmp/run3" 2>/dev/null)" ] || fail "an interrupted run left files: $(ls -A "$tmp/run3")"
echo "test_optimize: ok"
