/**
 * The shipped text-to-image stack through the library against python3-torch running the same
 * TorchScript files: the tokenizer (scripts/train/t2i/prompts.py), a guided evaluation of fashion-t2i
 * with fashion-text's outputs, fashion-ae's decoder and fashion-clip's score.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Denoiser, type NfeMeter } from '../src/models/denoiser';
import { TextEncoder } from '../src/models/text-encoder';
import { TorchScriptVerifier } from '../src/verifiers/torchscript';
import { tensor } from '../src/tensor';
import { randn } from './helpers';
import { py, python } from './torch-python';

const root = path.join(__dirname, '..');
const have = !!python && fs.existsSync(path.join(root, 'models', 'fashion-t2i.pt'));
const meter: NfeMeter = { charge() {}, addModelTime() {} };

const WORDS = [
  'a',
  'A',
  'small',
  'LARGE,',
  'grey',
  'bright!',
  'dark',
  't-shirt/top',
  'ankle',
  'boot',
  'bag',
  'purple',
  'the',
  'Shirt',
  '42',
  'trouser',
  'dress',
];

describe.skipIf(!have)('the shipped text-to-image stack against python3-torch', () => {
  it('tokenizes random prompts exactly as scripts/train/t2i/prompts.py', async () => {
    const enc = await TextEncoder.load('fashion-text');
    const prompts = Array.from({ length: 40 }, () =>
      Array.from(
        { length: 1 + Math.floor(Math.random() * 10) },
        () => WORDS[Math.floor(Math.random() * WORDS.length)],
      ).join(' '),
    );
    const want: number[][] = py(
      `import json, sys
sys.path.insert(0, 'scripts/train/t2i'); sys.path.insert(0, 'scripts/train'); import prompts as P
print(json.dumps(P.tokenize(json.load(open(sys.argv[1]))).tolist()))`,
      prompts,
    );
    prompts.forEach((p, i) => expect(Array.from(enc.tokenize(p).ids, Number), p).toEqual(want[i]));
  });

  it('a guided evaluation, the decoder and the CLIP score equal torch on the same files', async () => {
    const enc = await TextEncoder.load('fashion-text');
    const d = await Denoiser.load('fashion-t2i');
    const clip = await TorchScriptVerifier.load('fashion-clip');
    const prompts = ['a small dark ankle boot', 'a large bright bag', 'a grey shirt'];
    const ids = [];
    for (const p of prompts) ids.push(d.registerCondition(await enc.encode([p])));
    const n = 3,
      w = 1 + 3 * Math.random();
    const x = randn(n * 196),
      sigma = Array.from({ length: n }, () => Math.random());
    const { out } = await d.evaluate(tensor(x, [n, 4, 7, 7]), sigma, ids, w, meter);
    const v = (await out.toArray()) as Float32Array;
    const z = randn(n * 196);
    const img = await d.decoder!.decode(tensor(z, [n, 4, 7, 7]));
    const pixels = (await img.toArray()) as Float32Array;
    const cond = await enc.encode(prompts);
    const scores = await clip.score(img, [0, 0, 0], { condition: cond });
    const ref = py(
      `import json, sys, torch
sys.path.insert(0, 'scripts/train/t2i'); sys.path.insert(0, 'scripts/train'); import prompts as P
torch.set_num_threads(1)
a = json.load(open(sys.argv[1])); n = 3
names = ('fashion-text', 'fashion-t2i', 'fashion-ae', 'fashion-clip')
enc, t2i, ae, clip = (torch.jit.load('models/%s.pt' % m) for m in names)
with torch.no_grad():
    text, mask = enc(P.tokenize(a['prompts']))
    x = torch.tensor(a['x']).view(n, 4, 7, 7); s = torch.tensor(a['sigma'])
    nt, nm = t2i.null_condition()
    c = t2i(x, s, text, mask); u = t2i(x, s, nt.expand(n, -1, -1), nm.expand(n, -1))
    v = u + a['w'] * (c - u)
    img = ae.decode(torch.tensor(a['z']).view(n, 4, 7, 7))
    sc = clip(img, text, mask)
print(json.dumps({'v': v.flatten().tolist(), 'img': img.flatten().tolist(), 'scores': sc.tolist()}))`,
      { prompts, x: Array.from(x), sigma, w, z: Array.from(z) },
    );
    v.forEach((val, i) => expect(Math.abs(val - ref.v[i])).toBeLessThan(1e-4));
    pixels.forEach((val, i) => expect(Math.abs(val - ref.img[i])).toBeLessThan(1e-5));
    scores.forEach((val, i) => expect(Math.abs(val - ref.scores[i])).toBeLessThan(1e-5));
  });
});
