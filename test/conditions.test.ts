import { describe, expect, it } from 'vitest';
import { Denoiser } from '../src/models/denoiser';
import { TextEncoder } from '../src/models/text-encoder';
import { tensor } from '../src/tensor';
import { fixture, expectCode, randn } from './helpers';
import type { NfeMeter } from '../src/models/denoiser';

// The fixture stack (test/fixtures/make_cond_fixtures.py), recomputed here.
const VOCAB = ['<pad>', '<unk>', 'a', 'red', 'blue', 'big', 'small'];
const L = 4;
const row = (i: number) => [i / 10, (i * i) / 100, 1];
const tokens = (prompt: string) => {
  const ids = prompt
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/[^a-z/-]/g, ''))
    .filter(Boolean)
    .map((w) => Math.max(1, VOCAB.indexOf(w)));
  return [...ids, 0, 0, 0, 0].slice(0, L);
};
/** The masked mean of the prompt's embeddings: what the fixture denoiser adds to 0.5·x. */
const pooled = (prompt: string) => {
  const ids = tokens(prompt).filter((t) => t !== 0);
  const m = [0, 0];
  for (const t of ids) for (let k = 0; k < 2; k++) m[k] += row(t)[k] / Math.max(1, ids.length);
  return m;
};
const meter = (): NfeMeter & { nfe: number } => ({
  nfe: 0,
  charge(n) {
    this.nfe += n;
  },
  addModelTime() {},
});

describe('text encoder', () => {
  it(
    "tokenizes by the card's rule (lower-case words, [a-z/-] kept, unknown → 1, padded and cut to " + 'max_len)',
    async () => {
      const enc = await TextEncoder.load(fixture('cond-text.pt'));
      for (const p of ['a red big', 'A  RED, blue!', 'green big', 'a red blue big small', '']) {
        const t = enc.tokenize(p);
        expect(Array.from(t.ids, Number)).toEqual(tokens(p));
      }
      expect(enc.tokenize('a green big').unknown).toEqual(['green']);
      expect(enc.tokenize('a red blue big small').truncated).toEqual(['small']);
    },
  );

  it('encodes a batch into the named outputs the card lists', async () => {
    const enc = await TextEncoder.load(fixture('cond-text.pt'));
    const out = await enc.encode(['a red', 'blue big small']);
    expect(Object.keys(out)).toEqual(['text', 'text_mask']);
    expect(out.text.shape).toEqual([2, L, 3]);
    expect(out.text_mask.dtype).toBe('bool');
    const text = (await out.text.toArray()) as Float32Array;
    const want = ['a red', 'blue big small'].flatMap((p) => tokens(p).flatMap(row));
    want.forEach((v, i) => expect(text[i]).toBeCloseTo(v, 6));
  });
});

describe('a denoiser conditioned on named tensors', () => {
  it('gathers each row its own condition: rows of two prompts in one batch, any order', async () => {
    const d = await Denoiser.load(fixture('cond-tiny.pt'));
    const enc = await TextEncoder.load(fixture('cond-text.pt'));
    const prompts = ['a red', 'blue big small'];
    const ids = [];
    for (const p of prompts) {
      const e = await enc.encode([p]);
      ids.push(d.registerCondition(e));
    }
    const n = 7;
    const rowsOf = Array.from({ length: n }, () => Math.floor(Math.random() * 2));
    const x = randn(n * 2);
    const m = meter();
    const { out } = await d.evaluate(
      tensor(x, [n, 2]),
      new Array(n).fill(0.5),
      rowsOf.map((k) => ids[k]),
      1,
      m,
    );
    const got = (await out.toArray()) as Float32Array;
    for (let i = 0; i < n; i++) {
      const p = pooled(prompts[rowsOf[i]]);
      for (let k = 0; k < 2; k++) expect(got[2 * i + k]).toBeCloseTo(0.5 * x[2 * i + k] + p[k], 5);
    }
    expect(m.nfe).toBe(n);
    ids.forEach((id) => d.releaseCondition(id));
    await expectCode(
      () => d.evaluate(tensor(x, [n, 2]), new Array(n).fill(0.5), new Array(n).fill(ids[0]), 1, meter()),
      'ARGUMENT',
    );
  });

  it(
    "guidance mixes in the stored null condition, or the row's negative prompt: u + w·(c − u), two NFE per " + 'row',
    async () => {
      const d = await Denoiser.load(fixture('cond-tiny.pt'));
      const enc = await TextEncoder.load(fixture('cond-text.pt'));
      const plain = d.registerCondition(await enc.encode(['a red big']));
      const withNeg = d.registerCondition(await enc.encode(['a red big']), await enc.encode(['blue small']));
      const w = 1 + 3 * Math.random();
      const x = randn(4);
      const m = meter();
      const { out } = await d.evaluate(tensor(x, [2, 2]), [0.3, 0.3], [plain, withNeg], w, m);
      const got = (await out.toArray()) as Float32Array;
      const c = pooled('a red big'),
        neg = pooled('blue small');
      for (let k = 0; k < 2; k++) {
        const cond0 = 0.5 * x[k] + c[k],
          null0 = 0.5 * x[k]; // the null condition pools to 0
        expect(got[k]).toBeCloseTo(null0 + w * (cond0 - null0), 5);
        const cond1 = 0.5 * x[2 + k] + c[k],
          neg1 = 0.5 * x[2 + k] + neg[k];
        expect(got[2 + k]).toBeCloseTo(neg1 + w * (cond1 - neg1), 5);
      }
      expect(m.nfe).toBe(4);
    },
  );

  it('checks conditions against the card: names, dtypes, shapes; a class model takes no tensors', async () => {
    const d = await Denoiser.load(fixture('cond-tiny.pt'));
    const good = await (await TextEncoder.load(fixture('cond-text.pt'))).encode(['a']);
    await expectCode(() => d.registerCondition({ text: good.text }), 'ARGUMENT'); // text_mask missing
    await expectCode(() => d.registerCondition({ ...good, extra: good.text }), 'ARGUMENT');
    const e = await expectCode(
      () => d.registerCondition({ text: tensor(randn(12), [1, 3, 4]), text_mask: good.text_mask }),
      'SHAPE',
    );
    expect(e.message).toMatch(/'text' is float32\[1,3,4\], the card declares float32\[1, 4,3\]/);
    const flow = await Denoiser.load('gmm2d');
    await expectCode(() => flow.registerCondition(good), 'ARGUMENT');
  });

  it('loads the decoder its card names (beside the model file) and decodes latents to pixels', async () => {
    const d = await Denoiser.load(fixture('cond-tiny.pt'));
    expect(d.decoder?.imageShape).toEqual([3]);
    const z = randn(10);
    const px = (await (await d.decoder!.decode(tensor(z, [5, 2]))).toArray()) as Float32Array;
    for (let i = 0; i < 5; i++)
      expect(Array.from(px.subarray(3 * i, 3 * i + 3))).toEqual([
        z[2 * i],
        z[2 * i + 1],
        Math.fround(z[2 * i] + z[2 * i + 1]),
      ]);
    await expectCode(() => d.decoder!.decode(tensor(randn(6), [2, 3])), 'SHAPE');
  });
});

describe('generate with prompts on a latent model', () => {
  it(
    'decodes the kept latents, scores decoded images with a prompt-aware verifier, and groups rows by ' + 'prompt',
    async () => {
      const { generate } = await import('../src/generate');
      const prompts = ['a red', 'blue big small'];
      const r = await generate({
        model: fixture('cond-tiny.pt'),
        prompt: prompts,
        verifier: [fixture('cond-verifier.pt')],
        algorithm: 'best-of-n',
        budget: 24,
        n: 2,
        steps: 4,
        keep: 2,
        seed: 3,
      });
      expect(r.shape).toEqual([8, 3]);
      expect(r.latents!.shape).toEqual([8, 2]);
      expect(r.prompts).toEqual([
        prompts[0],
        prompts[0],
        prompts[0],
        prompts[0],
        prompts[1],
        prompts[1],
        prompts[1],
        prompts[1],
      ]);
      for (let i = 0; i < 8; i++) {
        const z = r.latents!.data.subarray(2 * i, 2 * i + 2);
        // The decoder's image of the latent, and the verifier's reward of that image and the row's prompt.
        expect(Array.from(r.samples.subarray(3 * i, 3 * i + 3))).toEqual([z[0], z[1], Math.fround(z[0] + z[1])]);
        const p = pooled(r.prompts![i]);
        expect(r.rewards[i]).toBeCloseTo(-((z[0] - p[0]) ** 2 + (z[1] - p[1]) ** 2), 5);
      }
      expect(r.report).toMatchObject({ prompts, class: null, n: 4 });
      expect(r.report.decoder_seconds).toBeGreaterThan(0);
    },
  );

  it('verifiers see the prompt (FunctionVerifier extras), a negative prompt changes the guided result', async () => {
    const { generate } = await import('../src/generate');
    const { FunctionVerifier } = await import('../src/verifiers/verifier');
    const seen = new Set<string>();
    const v = new FunctionVerifier('spy', async (x0, _c, extras) => {
      extras.prompts?.forEach((p) => seen.add(p));
      return new Array(x0.shape[0]).fill(0);
    });
    const base = {
      model: fixture('cond-tiny.pt'),
      prompt: 'a red big',
      verifier: [v],
      algorithm: 'baseline' as const,
      budget: 8,
      n: 1,
      steps: 4,
      guidance: 3,
    };
    const a = await generate(base);
    const b = await generate({ ...base, negativePrompt: 'blue small' });
    expect([...seen]).toEqual(['a red big']);
    expect(Array.from(a.latents!.data)).not.toEqual(Array.from(b.latents!.data));
    expect(a.report.nfe_used).toBe(8); // guidance doubles the cost of each of the 4 steps
  });

  it('bad combinations are ARGUMENT errors: a prompt for a class model, no prompt for a text model', async () => {
    const { generate } = await import('../src/generate');
    await expectCode(() => generate({ model: 'gmm2d', prompt: 'a red', budget: 20, steps: 4 }), 'ARGUMENT');
    await expectCode(
      () => generate({ model: fixture('cond-tiny.pt'), verifier: [fixture('cond-verifier.pt')], budget: 20, steps: 4 }),
      'ARGUMENT',
    );
    await expectCode(
      () =>
        generate({
          model: fixture('cond-tiny.pt'),
          prompt: ' ',
          verifier: [fixture('cond-verifier.pt')],
          budget: 20,
          steps: 4,
        }),
      'ARGUMENT',
    );
  });
});

describe('CLI prompts', () => {
  it('--prompt and --prompts file: latents.npy beside the decoded samples, a warning for unknown words', async () => {
    const { spawnSync } = await import('node:child_process');
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { readNpy } = await import('../src/io/npy');
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-prompts-'));
    fs.writeFileSync(path.join(out, 'p.txt'), 'a red\n# a comment\n\nblue big\n');
    const cli = path.join(__dirname, '..', 'lib', 'cli', 'index.js');
    const r = spawnSync(
      process.execPath,
      [
        cli,
        'generate',
        '--model',
        fixture('cond-tiny.pt'),
        '--verifier',
        fixture('cond-verifier.pt'),
        '--prompt',
        'a green',
        '--prompts',
        path.join(out, 'p.txt'),
        '--algorithm',
        'best-of-n',
        '--budget',
        '20',
        '--steps',
        '4',
        '--n',
        '1',
        '--out',
        out,
      ],
      { encoding: 'utf8' },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/prompt 1: words not in the text encoder's vocabulary: green/);
    const report = JSON.parse(fs.readFileSync(path.join(out, 'report.json'), 'utf8'));
    expect(report.prompts).toEqual(['a green', 'a red', 'blue big']);
    expect(readNpy(path.join(out, 'samples.npy')).shape).toEqual([3, 3]);
    expect(readNpy(path.join(out, 'latents.npy')).shape).toEqual([3, 2]);
    const bad = spawnSync(process.execPath, [cli, 'generate', '--model', 'gmm2d', '--prompt', 'x', '--out', out], {
      encoding: 'utf8',
    });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/class-conditional: pass --class/);
  });
});
