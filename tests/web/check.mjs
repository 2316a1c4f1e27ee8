// tests/web/check.mjs — examples/web/ in Debian's chromium (headless, driven by playwright-core):
// opens the page from the static server at URL, waits for the generator, draws the grid from
// noise given here, reads the canvas back and compares it with the native library's faces for the
// same noise (the native twin, build/examples/face). Prints one "web_check: ok|FAILED" line per
// check and the page's timings; exit status 1 when a check failed.
// usage: node check.mjs URL FACE_PROGRAM GENERATOR WORKDIR [SCREENSHOT.png]
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const [url, face, model, work, shot] = process.argv.slice(2);
const SIZE = 64, COLS = 8, N = COLS * COLS;
let failed = 0;
const ok = (m) => console.log(`web_check: ok: ${m}`);
const bad = (m) => { failed++; console.log(`web_check: FAILED: ${m}`); };

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
                                        args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  await page.goto(url);
  const nz = await page.evaluate(() => window.tg.ready);
  const status = await page.textContent('#status');
  if (nz > 0 && status.startsWith('ready')) ok(`the page loaded the library and the generator (nz ${nz}): "${status}"`);
  else bad(`the page did not get ready: "${status}"`);

  // noise from a generator of this script's own (not the page's), as float32 bits on both sides
  let s = 0x2545F4914F6CDD1Dn;
  const u = () => { s = BigInt.asUintN(64, s * 6364136223846793005n + 1442695040888963407n);
                    return (Number(s >> 11n) + 0.5) / 2 ** 53; };
  const z = new Float32Array(N * nz);
  for (let i = 0; i < z.length; i++) z[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  writeFileSync(`${work}/z.f32`, Buffer.from(z.buffer));
  const native = execFileSync(face, [model, `${work}/z.f32`, String(N), `${work}/native.rgba`],
                              { env: { ...process.env, OMP_NUM_THREADS: '1' } }).toString().trim();
  const want = readFileSync(`${work}/native.rgba`);

  await page.evaluate((zv) => window.tg.grid(Float32Array.from(zv)), Array.from(z));
  const got = await page.evaluate(() => Array.from(
    document.getElementById('grid').getContext('2d').getImageData(0, 0, 512, 512).data));
  let maxd = 0, differ = 0;
  for (let i = 0; i < N; i++)
    for (let y = 0; y < SIZE; y++)
      for (let x = 0; x < SIZE; x++)
        for (let c = 0; c < 4; c++) {
          const g = got[(((Math.floor(i / COLS) * SIZE + y) * COLS * SIZE) + (i % COLS) * SIZE + x) * 4 + c];
          const d = Math.abs(g - want[((i * SIZE + y) * SIZE + x) * 4 + c]);
          if (d) differ++;
          if (d > maxd) maxd = d;
        }
  // tolerance: one level of 255. The canvas holds bytes computed in WebAssembly (SIMD128,
  // multiply then add) and the native run's in AVX-512 (fused multiply-adds), in another
  // summation order; the float outputs differ in the last bits (make test-wasm bounds them),
  // which moves a byte by one where a value sits at a rounding boundary, and never by more.
  const msg = `the canvas's ${N} faces against the native library's for the same noise: ` +
              `${differ} of ${N * SIZE * SIZE * 4} bytes differ, by at most ${maxd}`;
  if (maxd <= 1) ok(msg); else bad(msg);
  if (differ * 100 > N * SIZE * SIZE * 4) bad(`more than 1% of the bytes differ (${differ})`);
  const nonblank = new Set(got.filter((_, i) => i % 4 === 0)).size;
  if (nonblank > 50) ok(`the faces are pictures, not a flat fill (${nonblank} red levels)`);
  else bad(`the canvas looks flat (${nonblank} red levels)`);

  // the slider: a face drawn at t = 0.5 into the walk canvas
  await page.fill('#t', '500');
  await page.dispatchEvent('#t', 'input');
  const walked = await page.evaluate(() => window.tg.timing.face_ms);
  if (walked > 0) ok(`the slider draws a face (${walked.toFixed(1)} ms)`);
  else bad('the slider drew nothing');

  const t = await page.evaluate(() => window.tg.timing);
  console.log(`web_check: timing: a face alone ${t.single_median_ms.toFixed(1)} ms (median of 9), ` +
              `${(t.grid_ms / N).toFixed(2)} ms a face in a grid of ${N}; native, one thread: ${native}`);
  if (problems.length) bad(problems.join('; ')); else ok('no page errors, no console errors');
  if (shot) { await page.evaluate(() => window.scrollTo(0, 0)); await page.screenshot({ path: shot, fullPage: true }); console.log(`web_check: screenshot ${shot}`); }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
