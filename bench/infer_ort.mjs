// bench/infer_ort.mjs — ONNX Runtime's side of bench/infer.sh:
//   node bench/infer_ort.mjs MODEL.onnx BATCH REPS THREADS
// The median and minimum milliseconds of REPS runs (after 3 untimed) of batch BATCH on random
// normal inputs, CPU execution provider, intra-op threads THREADS, one inter-op thread, every
// graph optimisation on (ONNX Runtime's fastest CPU setting: it folds BatchNorm into the
// convolutions). onnxruntime-node comes from tests/onnx/node_modules (make onnx-check installs it).
import { createRequire } from 'node:module';
const require = createRequire(new URL('../tests/onnx/', import.meta.url));
const ort = require('onnxruntime-node');
const [model, b, reps, threads] = process.argv.slice(2);
const B = Number(b), R = Number(reps);
const sess = await ort.InferenceSession.create(model, {
  intraOpNumThreads: Number(threads), interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential',
});
const meta = sess.inputNames[0];
const dims = model.includes('generator') ? [B, 100, 1, 1] : [B, 1, 28, 28];
const n = dims.reduce((a, c) => a * c, 1);
const data = new Float32Array(n);
for (let i = 0; i < n; i++) data[i] = Math.sqrt(-2 * Math.log(Math.random() + 1e-12)) * Math.cos(2 * Math.PI * Math.random());
const feeds = { [meta]: new ort.Tensor('float32', data, dims) };
const t = [];
for (let i = -3; i < R; i++) {
  const t0 = process.hrtime.bigint();
  await sess.run(feeds);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (i >= 0) t.push(ms);
}
t.sort((a, c) => a - c);
const name = model.replace(/^.*\//, '').replace(/\.onnx$/, '');
console.log(`onnxruntime ${name} batch ${B}: median ${t[R >> 1].toFixed(3)} ms, min ${t[0].toFixed(3)} ms (${R} runs)`);
