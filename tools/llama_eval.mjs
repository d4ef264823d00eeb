// llama_eval.mjs: llama.cpp as the judge of a GGUF, through node-llama-cpp (CPU only, its
// prebuilt binaries, never a build).
//
//   node tools/llama_eval.mjs tokenize MODEL.gguf TEXT OUT
//       llama.cpp's token ids for TEXT (BOS/EOS as the GGUF says), written as a mixprec
//       token-id file ("mixprec-tokens 1", then the ids).
//   node tools/llama_eval.mjs loss TOKENS --seq T [--threads N] MODEL.gguf...
//       for each model, llama.cpp's mean next-token loss (nats) over the windows `mixprec eval --seq T`
//       scores on the same token-id file: the evaluation split is ids [n/2, n), cut into
//       consecutive windows of T+1 ids; in each window the T first ids are evaluated from an
//       empty KV cache and token t+1 is scored with llama.cpp's full next-token distribution.
//       Prints "llama_eval: model=M loss=L windows=W tokens=N" per model.
//   node tools/llama_eval.mjs kl TOKENS --seq T [--threads N] REF.gguf MODEL.gguf...
//       on the same windows, for each model: its mean loss, the mean KL divergence
//       KL(p_ref || p_model) of llama.cpp's next-token distributions (nats/token) and the top-1
//       agreement with REF. Prints "llama_eval: model=M loss=L kl=K top1=A tokens=N" per model.
//
// node-llama-cpp is found in $MXP_NLC_DIR (the folder holding node_modules/node-llama-cpp),
// default build-deps/nlc in the repository (scripts/deps.sh installs it there).
import fs from "node:fs";
import path from "node:path";
import {fileURLToPath, pathToFileURL} from "node:url";

const MAGIC = "mixprec-tokens 1";

function die(msg) {
    process.stderr.write(`llama_eval: ${msg}\n`);
    process.exit(1);
}

function readTokens(file) {
    let text;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (e) {
        die(`${file}: cannot read: ${e.message}`);
    }
    const nl = text.indexOf("\n");
    if ((nl < 0 ? text : text.slice(0, nl)).trim() !== MAGIC) die(`${file}: not a token-id file (first line must be "${MAGIC}")`);
    const ids = text.slice(nl + 1).split(/\s+/).filter(s => s.length).map(Number);
    if (ids.some(v => !Number.isInteger(v) || v < 0)) die(`${file}: holds something other than token ids`);
    return ids;
}

function writeTokens(file, ids) {
    const lines = [MAGIC];
    for (let i = 0; i < ids.length; i += 16) lines.push(ids.slice(i, i + 16).join(" "));
    const tmp = `${file}.tmp${process.pid}`;
    fs.writeFileSync(tmp, lines.join("\n") + "\n");
    fs.renameSync(tmp, file);
}

async function loadLlama() {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const dir = process.env.MXP_NLC_DIR || path.join(here, "..", "build-deps", "nlc");
    const entry = path.join(dir, "node_modules", "node-llama-cpp", "dist", "index.js");
    if (!fs.existsSync(entry)) die(`node-llama-cpp not found at ${entry} (run scripts/deps.sh or set MXP_NLC_DIR)`);
    const {getLlama, LlamaLogLevel} = await import(pathToFileURL(entry).href);
    return getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error, progressLogs: false});
}

async function loadModel(llama, file) {
    if (!fs.existsSync(file)) die(`${file}: no such file`);
    try {
        return await llama.loadModel({modelPath: file});
    } catch (e) {
        die(`${file}: llama.cpp cannot load it: ${e.message}`);
    }
}

function parseOpts(args) {
    const o = {pos: []};
    for (let i = 0; i < args.length; i++) {
        const a = args[i];
        if (a === "--seq" || a === "--threads") {
            const v = Number(args[++i]);
            if (!Number.isInteger(v) || v < 1) die(`${a}: expected a positive integer, got "${args[i]}"`);
            o[a.slice(2)] = v;
        } else if (a.startsWith("--")) {
            die(`unknown option ${a}`);
        } else {
            o.pos.push(a);
        }
    }
    return o;
}

async function cmdTokenize(o) {
    if (o.pos.length !== 3) die("usage: tokenize MODEL.gguf TEXT OUT");
    const [gguf, textFile, out] = o.pos;
    const llama = await loadLlama();
    const model = await loadModel(llama, gguf);
    const text = fs.readFileSync(textFile, "utf8");
    let ids = Array.from(model.tokenize(text));
    if (model.tokens.shouldPrependBosToken && model.tokens.bos != null) ids = [model.tokens.bos, ...ids];
    if (model.tokens.shouldAppendEosToken && model.tokens.eos != null) ids = [...ids, model.tokens.eos];
    writeTokens(out, ids);
    console.log(`llama_eval: tokens=${ids.length} out=${out}`);
    await model.dispose();
    await llama.dispose();
}

// The evaluation windows of a token-id file, as `mixprec eval --seq T` cuts them.
function windowsOf(tokFile, T) {
    const ids = readTokens(tokFile);
    const start = Math.floor(ids.length / 2), stride = T + 1;
    const n = Math.floor((ids.length - start) / stride);
    if (n < 1) die(`${tokFile}: the evaluation split (${ids.length - start} ids) is shorter than one window of ${T}+1`);
    const out = [];
    for (let w = 0; w < n; w++) out.push(ids.slice(start + w * stride, start + (w + 1) * stride));
    return out;
}

// visit(w, t, probs Map, target): llama.cpp's next-token distribution after each of the T first
// ids of every window, each window from an empty KV cache.
async function forEachDistribution(llama, gguf, windows, T, threads, visit) {
    const model = await loadModel(llama, gguf);
    const vocab = model.fileInfo?.metadata?.tokenizer?.ggml?.tokens?.length;
    if (vocab && windows.some(win => win.some(v => v >= vocab))) die(`a token id is outside ${gguf}'s vocabulary of ${vocab}`);
    const ctx = await model.createContext({contextSize: T + 1, batchSize: T, sequences: 1, threads: threads || 2});
    const seq = ctx.getSequence();
    for (let w = 0; w < windows.length; w++) {
        const win = windows[w];
        await seq.clearHistory();
        const res = await seq.controlledEvaluate(win.slice(0, T).map(t => [t, {generateNext: {probabilities: true}}]));
        for (let t = 0; t < T; t++) {
            const p = res[t]?.next?.probabilities;
            if (!p) die(`${gguf}: window ${w} position ${t}: llama.cpp gave no distribution`);
            visit(w, t, p, win[t + 1]);
        }
    }
    await ctx.dispose();
    await model.dispose();
}

async function cmdLoss(o) {
    if (o.pos.length < 2 || !o.seq) die("usage: loss TOKENS --seq T [--threads N] MODEL.gguf...");
    const [tokFile, ...ggufs] = o.pos;
    const windows = windowsOf(tokFile, o.seq);
    const llama = await loadLlama();
    for (const gguf of ggufs) {
        let sum = 0, n = 0;
        await forEachDistribution(llama, gguf, windows, o.seq, o.threads, (w, t, p, target) => {
            const q = p.get(target);
            if (!(q > 0)) die(`${gguf}: window ${w} position ${t}: llama.cpp gave no probability for token ${target}`);
            sum -= Math.log(q);
            n++;
        });
        console.log(`llama_eval: model=${gguf} loss=${(sum / n).toFixed(6)} windows=${windows.length} tokens=${n}`);
    }
    await llama.dispose();
}

async function cmdKl(o) {
    if (o.pos.length < 3 || !o.seq) die("usage: kl TOKENS --seq T [--threads N] REF.gguf MODEL.gguf...");
    const [tokFile, refGguf, ...ggufs] = o.pos;
    const T = o.seq, windows = windowsOf(tokFile, T);
    const llama = await loadLlama();
    const ref = [];  // per position: {ids, probs (Float64Array, same order), top}
    await forEachDistribution(llama, refGguf, windows, T, o.threads, (w, t, p) => {
        const ids = Int32Array.from(p.keys()), probs = Float64Array.from(p.values());
        ref.push({ids, probs, top: ids[0]});  // the map is sorted by probability, highest first
    });
    for (const gguf of ggufs) {
        let loss = 0, kl = 0, top1 = 0, k = 0;
        await forEachDistribution(llama, gguf, windows, T, o.threads, (w, t, p, target) => {
            const r = ref[k++];
            let d = 0;
            for (let i = 0; i < r.ids.length; i++) {
                const pr = r.probs[i];
                if (pr > 0) d += pr * (Math.log(pr) - Math.log(Math.max(p.get(r.ids[i]) ?? 0, 1e-300)));
            }
            kl += d;
            loss -= Math.log(Math.max(p.get(target) ?? 0, 1e-300));
            top1 += p.keys().next().value === r.top ? 1 : 0;
        });
        console.log(`llama_eval: model=${gguf} loss=${(loss / k).toFixed(6)} kl=${(kl / k).toExponential(4)} ` +
                    `top1=${(top1 / k).toFixed(4)} tokens=${k}`);
    }
    await llama.dispose();
}

const [cmd, ...rest] = process.argv.slice(2);
if (cmd === "tokenize") await cmdTokenize(parseOpts(rest));
else if (cmd === "loss") await cmdLoss(parseOpts(rest));
else if (cmd === "kl") await cmdKl(parseOpts(rest));
else die("usage: node tools/llama_eval.mjs tokenize|loss|kl ... (see the header of this file)");
