// app.js — the page's logic: loads the WebAssembly module (build-wasm/web/face.js, built by
// make wasm) and the generator, draws an 8x8 grid of faces, walks between two of them.
// window.tg is what tests/web/check.mjs drives: tg.ready (resolves to the latent length),
// tg.grid(z) draws the grid from 64*nz given values, tg.timing holds the last measurements.
'use strict';
const SIZE = 64, COLS = 8, N = COLS * COLS;
const MODEL = '../mangagan/models/generator.safetensors';
const status = document.getElementById('status');
const say = (msg, isError) => { status.textContent = msg; status.className = isError ? 'error' : ''; };

// seeded normal noise (xorshift64* -> Box-Muller): the same page shows the same faces
function normals(n, seed) {
  let s = BigInt.asUintN(64, BigInt(seed) * 0x9E3779B97F4A7C15n + 1n);
  const u = () => {
    s ^= s >> 12n; s ^= BigInt.asUintN(64, s << 25n); s ^= s >> 27n;
    return (Number(BigInt.asUintN(64, s * 0x2545F4914F6CDD1Dn) >> 11n) + 0.5) / 2 ** 53;
  };
  const z = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), a = 2 * Math.PI * u();
    z[i] = r * Math.cos(a);
    if (i + 1 < n) z[i + 1] = r * Math.sin(a);
  }
  return z;
}

function slerp(a, b, t) {
  let na = 0, nb = 0, dot = 0;
  for (let k = 0; k < a.length; k++) { na += a[k] * a[k]; nb += b[k] * b[k]; dot += a[k] * b[k]; }
  const om = Math.acos(Math.max(-1, Math.min(1, dot / Math.sqrt(na * nb)))), so = Math.sin(om);
  const wa = so < 1e-6 ? 1 - t : Math.sin((1 - t) * om) / so, wb = so < 1e-6 ? t : Math.sin(t * om) / so;
  return a.map((v, k) => wa * v + wb * b[k]);
}

const tg = { timing: {} };
window.tg = tg;
tg.ready = (async () => {
  if (typeof createFace !== 'function')
    throw new Error('build-wasm/web/face.js did not load: run `make wasm` in the repository first');
  const M = await createFace();
  const res = await fetch(MODEL);
  if (!res.ok) throw new Error(`${MODEL}: HTTP ${res.status}`);
  M.FS.writeFile('/generator.safetensors', new Uint8Array(await res.arrayBuffer()));
  const nz = M.ccall('face_load', 'number', ['string'], ['/generator.safetensors']);
  if (nz <= 0) throw new Error(M.UTF8ToString(M._face_error()));
  const zp = M._malloc(4 * N * nz), outp = M._malloc(4 * N * SIZE * SIZE);

  // n faces from z (n*nz values) -> RGBA bytes (a copy), and the milliseconds it took
  function draw(z, n) {
    M.HEAPF32.set(z, zp >> 2);
    const t0 = performance.now();
    if (M._face_draw(zp, n, outp) !== 0) throw new Error(M.UTF8ToString(M._face_error()));
    const ms = performance.now() - t0;
    return { rgba: M.HEAPU8.slice(outp, outp + n * SIZE * SIZE * 4), ms };
  }

  const grid = document.getElementById('grid').getContext('2d');
  const walk = document.getElementById('walk').getContext('2d');
  let zs = null, ends = [0, 1];
  tg.grid = (z) => {
    const { rgba, ms } = draw(z, N);
    zs = z;
    for (let i = 0; i < N; i++) {
      const img = new ImageData(new Uint8ClampedArray(rgba.buffer, i * SIZE * SIZE * 4, SIZE * SIZE * 4), SIZE, SIZE);
      grid.putImageData(img, (i % COLS) * SIZE, Math.floor(i / COLS) * SIZE);
    }
    tg.timing.grid_ms = ms;
    return ms;
  };
  const showWalk = () => {
    const t = document.getElementById('t').value / 1000;
    const z = slerp(zs.subarray(ends[0] * nz, (ends[0] + 1) * nz), zs.subarray(ends[1] * nz, (ends[1] + 1) * nz), t);
    const { rgba, ms } = draw(Float32Array.from(z), 1);
    walk.putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer), SIZE, SIZE), 0, 0);
    tg.timing.face_ms = ms;
    document.getElementById('timing').textContent = `this face: ${ms.toFixed(1)} ms; ` +
      `the grid: ${tg.timing.grid_ms.toFixed(0)} ms for ${N} (${(tg.timing.grid_ms / N).toFixed(1)} ms a face)`;
  };
  let seed = 1, clicks = 0;
  const fresh = () => { tg.grid(normals(N * nz, seed++)); showWalk(); };

  fresh();
  // one face at a time, as the slider draws them: the median of 9, after the grid above has had
  // the engine compile the hot code again, optimised (its first calls run a baseline compile)
  const single = [];
  for (let i = 0; i < 9; i++) single.push(draw(normals(nz, 100 + i), 1).ms);
  single.sort((a, b) => a - b);
  tg.timing.single_median_ms = single[4];

  document.getElementById('again').onclick = fresh;
  document.getElementById('again').disabled = false;
  const slider = document.getElementById('t');
  slider.disabled = false;
  slider.oninput = showWalk;
  document.getElementById('grid').onclick = (e) => {
    const r = e.target.getBoundingClientRect();
    const c = Math.floor((e.clientX - r.left) / r.width * COLS), w = Math.floor((e.clientY - r.top) / r.height * COLS);
    ends[clicks++ % 2] = w * COLS + c;
    showWalk();
  };
  say(`ready: a face in ${tg.timing.single_median_ms.toFixed(1)} ms (median of 9, one thread, WebAssembly SIMD128)`);
  return nz;
})();
tg.ready.catch((e) => say(`failed: ${e.message}`, true));
