/**
 * Judging samples of a text-conditioned model against their prompts: the class the prompt names
 * (by the eval classifier) and each attribute word it states, measured on the image by the rules
 * in the model's card:
 *   "attributes": { "object_threshold": 0.2,
 *                   "size":       { "words": ["small", "medium", "large"], "thresholds": { class: [t1, t2] } },
 *                   "brightness": { "words": ["dark", "grey", "bright"],   "thresholds": { class: [t1, t2] } } }
 * with pixels p = (x + 1)/2, object pixels p > object_threshold, size = object fraction,
 * brightness = mean p over object pixels, and the word index = (v ≥ t1) + (v ≥ t2).
 */
import { DiffusionSearchError } from '../errors';
import type { EvalReport, Evaluator } from './metrics';
import { promptWords } from '../models/text-encoder';

export interface AttributeRule {
  words: string[];
  thresholds: Record<string, [number, number]>;
}

export interface AttributeRules {
  object_threshold: number;
  size?: AttributeRule;
  brightness?: AttributeRule;
}

export interface ParsedPrompt {
  /** Index into the card's classes, or -1 when the prompt names none. */
  cls: number;
  /** Stated attribute words by attribute name (absent: any). */
  attributes: Record<string, string>;
}

export interface PromptEvalReport {
  /** The eval classifier's report on the rows whose prompt names a class. */
  classes: EvalReport | null;
  /** Per attribute: rows that state it, and the share whose image has it. */
  attributes: Record<string, { stated: number; accuracy: number | null }>;
  /** Rows whose every stated attribute holds. */
  all_attributes_accuracy: number | null;
}

/** The class (longest class name whose words appear in order, together) and attribute words of a prompt. */
export function parsePrompt(prompt: string, classes: string[], rules: AttributeRules): ParsedPrompt {
  const w = promptWords(prompt); // the text encoder's own word rule
  let cls = -1,
    len = 0;
  classes.forEach((c, i) => {
    const cw = promptWords(c);
    for (let s = 0; s + cw.length <= w.length; s++)
      if (cw.every((x, k) => w[s + k] === x) && cw.length > len) {
        cls = i;
        len = cw.length;
      }
  });
  const attributes: Record<string, string> = {};
  for (const [name, rule] of Object.entries(rules))
    if (typeof rule === 'object' && rule && 'words' in rule) {
      const hit = w.find((x) => (rule as AttributeRule).words.includes(x));
      if (hit) attributes[name] = hit;
    }
  return { cls, attributes };
}

/** Size and brightness of each image [n, C, H, W] in [−1, 1], by the card's rule. */
export function measure(samples: Float32Array, n: number, threshold: number): { size: number[]; brightness: number[] } {
  const per = samples.length / n;
  const size: number[] = [],
    brightness: number[] = [];
  for (let i = 0; i < n; i++) {
    let count = 0,
      sum = 0;
    for (let j = 0; j < per; j++) {
      const p = (samples[i * per + j] + 1) * 0.5;
      if (p > threshold) {
        count++;
        sum += p;
      }
    }
    size.push(count / per);
    brightness.push(count ? sum / count : 0);
  }
  return { size, brightness };
}

export async function evaluatePrompts(
  samples: Float32Array,
  shape: number[],
  prompts: string[],
  classes: string[],
  rules: AttributeRules,
  evaluator: Evaluator | null,
  feats?: Float32Array,
): Promise<PromptEvalReport> {
  const n = shape[0];
  if (prompts.length !== n)
    throw new DiffusionSearchError(`prompt eval: ${n} samples but ${prompts.length} prompts`, 'SHAPE');
  if (!(typeof rules?.object_threshold === 'number'))
    throw new DiffusionSearchError('the card\'s "attributes" needs an "object_threshold"', 'MODEL_CARD');
  const parsed = prompts.map((p) => parsePrompt(p, classes, rules));
  const measured = measure(samples, n, rules.object_threshold);
  const attributes: PromptEvalReport['attributes'] = {};
  const allOk = new Array<boolean>(n).fill(true);
  let anyStated = 0;
  for (const name of ['size', 'brightness'] as const) {
    const rule = rules[name];
    if (!rule) continue;
    let stated = 0,
      ok = 0;
    parsed.forEach((p, i) => {
      const word = p.attributes[name];
      if (!word || p.cls < 0) return;
      const t = rule.thresholds[classes[p.cls].toLowerCase()];
      if (!t)
        throw new DiffusionSearchError(
          `the card's "${name}" rule has no thresholds for '${classes[p.cls]}'`,
          'MODEL_CARD',
        );
      const v = measured[name][i];
      const got = rule.words[(v >= t[0] ? 1 : 0) + (v >= t[1] ? 1 : 0)];
      stated++;
      if (got === word) ok++;
      else allOk[i] = false;
    });
    attributes[name] = { stated, accuracy: stated ? ok / stated : null };
  }
  const withAttr = parsed
    .map((p, i) => (Object.keys(p.attributes).length && p.cls >= 0 ? i : -1))
    .filter((i) => i >= 0);
  anyStated = withAttr.length;
  const rows = parsed.map((p, i) => (p.cls >= 0 ? i : -1)).filter((i) => i >= 0);
  let classReport: EvalReport | null = null;
  if (evaluator && rows.length) {
    classReport = await evaluator.evaluate(
      rowsOf(samples, n, rows),
      [rows.length, ...shape.slice(1)],
      rows.map((r) => parsed[r].cls),
      classes,
      feats && rowsOf(feats, n, rows),
    );
  }
  return {
    classes: classReport,
    attributes,
    all_attributes_accuracy: anyStated ? withAttr.filter((i) => allOk[i]).length / anyStated : null,
  };
}

/** Rows `rows` of an [n, D] matrix. */
function rowsOf(m: Float32Array, n: number, rows: number[]): Float32Array {
  const D = m.length / n;
  const out = new Float32Array(rows.length * D);
  rows.forEach((r, k) => out.set(m.subarray(r * D, (r + 1) * D), k * D));
  return out;
}
