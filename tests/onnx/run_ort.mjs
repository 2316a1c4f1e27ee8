// tests/onnx/run_ort.mjs — runs exported models in ONNX Runtime (onnxruntime-node, CPU) and
// compares them with libtensorgan's own outputs:
//   node tests/onnx/run_ort.mjs MODEL.onnx SAMPLE.safetensors [MODEL SAMPLE ...]
// SAMPLE holds the inputs ("in.<name>" float32; "in_i64.<name>": labels, fed as int64) and the
// library's output "out" for them. Each model runs on the whole batch and again on its first
// sample alone (the batch dimension is symbolic); both must match within ONNX_TOL (default 1e-5)
// of the largest output magnitude. Prints one line per model and a closing total; exits 1 on a
// failure.
import fs from 'node:fs';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');

const tol = Number(process.env.ONNX_TOL || '1e-5');

function readSafetensors(path) {
  const buf = fs.readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const out = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (v.dtype !== 'F32') throw new Error(`${path}: ${name} is ${v.dtype}, not F32`);
    const [a, b] = v.data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
    out[name] = { shape: v.shape, data };
  }
  return out;
}

// the first `count` samples of a [B, ...] array
function firstSamples(t, count) {
  const per = t.data.length / t.shape[0];
  return { shape: [count, ...t.shape.slice(1)], data: t.data.slice(0, per * count) };
}

function feeds(sample, count) {
  const f = {};
  for (const [key, t0] of Object.entries(sample)) {
    const t = count ? firstSamples(t0, count) : t0;
    if (key.startsWith('in.')) f[key.slice(3)] = new ort.Tensor('float32', t.data, t.shape);
    else if (key.startsWith('in_i64.'))
      f[key.slice(7)] = new ort.Tensor('int64', BigInt64Array.from(t.data, (v) => BigInt(Math.round(v))), t.shape);
  }
  return f;
}

function compare(got, want) {
  if (got.dims.join(',') !== want.shape.join(','))
    return { ok: false, text: `shape [${got.dims}] where the library gave [${want.shape}]` };
  let maxDiff = 0, maxRef = 0;
  for (let i = 0; i < want.data.length; i++) {
    const d = Math.abs(got.data[i] - want.data[i]);
    if (!(d <= maxDiff)) maxDiff = d; // NaN propagates
    maxRef = Math.max(maxRef, Math.abs(want.data[i]));
  }
  const rel = maxDiff / Math.max(maxRef, 1e-30);
  return { ok: rel <= tol, text: `max |diff| ${maxDiff.toExponential(2)} (relative ${rel.toExponential(2)})` };
}

const args = process.argv.slice(2);
if (args.length < 2 || args.length % 2) {
  console.error('usage: node run_ort.mjs MODEL.onnx SAMPLE.safetensors [...]');
  process.exit(2);
}
const opts = { intraOpNumThreads: Number(process.env.ORT_THREADS || '1'), graphOptimizationLevel: 'all' };
let passed = 0, failed = 0;
for (let i = 0; i < args.length; i += 2) {
  const [model, samplePath] = [args[i], args[i + 1]];
  const name = model.replace(/^.*\//, '').replace(/\.onnx$/, '');
  try {
    const sample = readSafetensors(samplePath);
    const sess = await ort.InferenceSession.create(model, opts);
    const out = sess.outputNames[0];
    const B = sample.out.shape[0];
    const full = compare((await sess.run(feeds(sample, 0)))[out], sample.out);
    const one = compare((await sess.run(feeds(sample, 1)))[out], firstSamples(sample.out, 1));
    const ok = full.ok && one.ok;
    console.log(`onnx: ${name}: ONNX Runtime, batch ${B}: ${full.text}; batch 1: ${one.text}: ${ok ? 'ok' : 'FAILED'}`);
    ok ? passed++ : failed++;
  } catch (e) {
    console.log(`onnx: ${name}: FAILED: ${e.message}`);
    failed++;
  }
}
console.log(`onnx_ort: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
