import { describe, expect, it } from 'vitest';
import { evaluatePrompts, parsePrompt, type AttributeRules } from '../src/eval/prompt-eval';

const classes = ['T-shirt/top', 'Trouser', 'Ankle boot', 'Boot'];
const rules: AttributeRules = {
  object_threshold: 0.2,
  size: {
    words: ['small', 'medium', 'large'],
    thresholds: { 't-shirt/top': [0.2, 0.4], trouser: [0.1, 0.3], 'ankle boot': [0.25, 0.5], boot: [0.3, 0.6] },
  },
  brightness: {
    words: ['dark', 'grey', 'bright'],
    thresholds: { 't-shirt/top': [0.5, 0.7], trouser: [0.4, 0.8], 'ankle boot': [0.45, 0.75], boot: [0.5, 0.9] },
  },
};

/** An image with `k` object pixels of value p (in [0, 1]) and background −1: size k/784, brightness p exactly. */
function image(k: number, p: number): Float32Array {
  const x = new Float32Array(784).fill(-1);
  const idx = Array.from({ length: 784 }, (_, i) => i)
    .sort(() => Math.random() - 0.5)
    .slice(0, k);
  for (const i of idx) x[i] = 2 * p - 1;
  return x;
}
const word = (v: number, t: [number, number], ws: string[]) => ws[(v >= t[0] ? 1 : 0) + (v >= t[1] ? 1 : 0)];

describe('judging samples against their prompts', () => {
  it('parses the longest class name and the attribute words', () => {
    expect(parsePrompt('a small dark ankle boot', classes, rules)).toEqual({
      cls: 2,
      attributes: { size: 'small', brightness: 'dark' },
    });
    expect(parsePrompt('A BRIGHT boot!', classes, rules)).toEqual({ cls: 3, attributes: { brightness: 'bright' } });
    expect(parsePrompt('a large t-shirt/top', classes, rules)).toEqual({ cls: 0, attributes: { size: 'large' } });
    expect(parsePrompt('something else', classes, rules).cls).toBe(-1);
  });

  it('measures size and brightness by the card rule and scores each stated word (fresh random images)', async () => {
    const n = 40;
    const data = new Float32Array(n * 784);
    const prompts: string[] = [];
    let sizeOk = 0,
      brightOk = 0,
      sizeStated = 0,
      brightStated = 0,
      allOk = 0,
      withAttr = 0;
    for (let i = 0; i < n; i++) {
      const c = Math.floor(Math.random() * classes.length);
      const k = 1 + Math.floor(Math.random() * 700),
        p = 0.25 + 0.75 * Math.random();
      data.set(image(k, p), i * 784);
      const name = classes[c].toLowerCase();
      const trueSize = word(k / 784, rules.size!.thresholds[name], rules.size!.words);
      const trueBright = word(p, rules.brightness!.thresholds[name], rules.brightness!.words);
      const askSize = Math.random() < 0.8 ? rules.size!.words[Math.floor(Math.random() * 3)] : '';
      const askBright = Math.random() < 0.8 ? rules.brightness!.words[Math.floor(Math.random() * 3)] : '';
      prompts.push(['a', askSize, askBright, name].filter(Boolean).join(' '));
      if (askSize) sizeStated++, (sizeOk += +(askSize === trueSize));
      if (askBright) brightStated++, (brightOk += +(askBright === trueBright));
      if (askSize || askBright)
        withAttr++, (allOk += +((!askSize || askSize === trueSize) && (!askBright || askBright === trueBright)));
    }
    const r = await evaluatePrompts(data, [n, 1, 28, 28], prompts, classes, rules, null);
    expect(r.attributes.size).toEqual({ stated: sizeStated, accuracy: sizeOk / sizeStated });
    expect(r.attributes.brightness).toEqual({ stated: brightStated, accuracy: brightOk / brightStated });
    expect(r.all_attributes_accuracy).toBe(allOk / withAttr);
  });
});
