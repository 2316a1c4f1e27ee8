// render.mjs — renders the bundled anime-style faces for examples/mangagan.
//
//   node render.mjs --prefix mangagan- --start 0 --count 20000 --out DIR [--size 64]
//
// Image i is DiceBear's CC0 "lorelei" avatar for the seed string `${prefix}${i}`, recoloured
// toward anime looks (hair and eye palettes, a range of skin tones, solid pastel backgrounds),
// with bald variants, beards and glasses left out, framed on the head, rasterised with resvg.
// It depends only on its seed string, so any slice can be re-rendered and checked.
import { createAvatar } from '@dicebear/core';
import * as lorelei from '@dicebear/lorelei';
import { Resvg } from '@resvg/resvg-js';
import fs from 'fs';
import path from 'path';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const prefix = args.prefix ?? 'mangagan-';
const start = Number(args.start ?? 0), count = Number(args.count ?? 16), size = Number(args.size ?? 64);
const out = args.out;
if (!out || !Number.isInteger(start) || !Number.isInteger(count) || count < 1 || size < 8) {
  console.error('usage: node render.mjs --out DIR [--prefix P] [--start S] [--count N] [--size 64]');
  process.exit(2);
}
fs.mkdirSync(out, { recursive: true });

const BALD = new Set(['variant25', 'variant27', 'variant28', 'variant34']);
const hair = Array.from({ length: 48 }, (_, i) => 'variant' + String(i + 1).padStart(2, '0')).filter((v) => !BALD.has(v));
const options = {
  hair,
  hairColor: ['1b1b2f', '3b2219', '6b4226', 'f2d16b', 'ece6d6', 'f5a3c7', 'e05780', 'c0392b', 'e67e22',
              '3c78d8', '8ecae6', '8e44ad', 'b39ddb', '2ecc71', 'c0c0c8', '4a4e69'],
  eyesColor: ['3b5bdb', '1c7ed6', '2f9e44', '862e9c', 'c92a2a', '5c3d2e', '1a1a1a', 'e67700', '0ca678'],
  eyebrowsColor: ['1a1a1a', '3b2219'],
  skinColor: ['ffe8d6', 'fcd5b5', 'f8d9c4', 'f1c27d', 'e0ac69', 'c68642', 'a0663f', '8d5524'],
  backgroundColor: ['ffd1dc', 'c1e1c1', 'aec6cf', 'fdfd96', 'e6e6fa', 'ffdab9', 'b5ead7', 'f3c4fb',
                    'cdeac0', 'bde0fe', 'ffc8dd', 'fff1c1'],
  backgroundType: ['solid'],
  beardProbability: 0,
  glassesProbability: 0,
  earringsProbability: 20,
  earringsColor: ['f4c430', 'c0c0c8'],
  hairAccessoriesProbability: 10,
  hairAccessoriesColor: ['ff6b9d', 'ffd43b', 'ffffff'],
  frecklesProbability: 5,
  mouthColor: ['c2255c', '1a1a1a'],
  scale: 125,
  translateY: 4,
};

for (let i = start; i < start + count; i++) {
  const svg = createAvatar(lorelei, { ...options, seed: `${prefix}${i}` }).toString();
  const png = new Resvg(svg, { fitTo: { mode: 'width', value: size } }).render().asPng();
  fs.writeFileSync(path.join(out, `face-${String(i).padStart(6, '0')}.png`), png);
}
