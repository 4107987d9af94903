// The request form, built from the API's own schema (GET /v1/schema: each field's and each
// algorithm option's type, default and description) and the model's card (GET /v1/models/<name>).

const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};

/** Request fields shown up front (prefilled) and under "More"; the rest keep the server's defaults. */
const MAIN = ['budget', 'n', 'seed', 'guidance'];
const MORE = ['steps', 'schedule', 'sampler', 'keep', 'verifier'];
/** The page's own prefills where the API's default is not the best first look (four samples side by side). */
const PREFILL = { n: 4 };

/** An input for one spec: its default as placeholder, its description as hint. */
function input(key, spec, value) {
  let control;
  if (spec.type === 'enum') {
    control = el('select', {}, el('option', { value: '', textContent: `default (${spec.default ?? 'server'})` }));
    for (const v of spec.values) control.append(el('option', { value: v, textContent: v }));
  } else if (spec.type === 'boolean') {
    control = el('input', { type: 'checkbox' });
  } else {
    const numeric = spec.type === 'int' || spec.type === 'number';
    control = el('input', { type: numeric ? 'number' : 'text', placeholder: spec.default ?? '' });
    if (spec.type === 'int') control.step = '1';
    if (spec.type === 'number') control.step = 'any';
    if (spec.min !== undefined && numeric) control.min = String(spec.min);
  }
  control.name = key;
  control.dataset.type = spec.type;
  if (value !== undefined) control.value = String(value);
  const label = el('label', { title: spec.description }, `${key} `);
  if (spec.type === 'boolean') label.className = 'check';
  label.append(control, el('small', { textContent: spec.description }));
  return label;
}

/** A control's value as the API takes it; undefined when left empty (the server's default). */
function controlValue(control) {
  const t = control.dataset.type;
  if (t === 'boolean') return control.checked ? true : undefined;
  const s = control.value.trim();
  if (s === '') return undefined;
  if (t === 'int' || t === 'number') return Number(s);
  if (t === 'int-list') return s.split(',').map((p) => Number(p.trim()));
  if (t === 'strings') return s.includes(',') ? s.split(',').map((p) => p.trim()) : s;
  return s;
}

/** The tokenizer rule of the shipped text encoders: lower case, split on spaces, keep [a-z/-]. */
export const words = (prompt) =>
  prompt
    .toLowerCase()
    .split(/\s+/)
    .map((w) => w.replace(/[^a-z/-]/g, ''))
    .filter(Boolean);

export class RequestForm {
  constructor(root, schema, models) {
    this.root = root;
    this.schema = schema;
    this.models = models;
    this.info = null;
    this.$ = (id) => root.querySelector(`#${id}`);
  }

  build() {
    const { schema } = this;
    const model = this.$('model');
    for (const name of this.models) model.append(el('option', { value: name, textContent: name }));
    model.value = this.models.includes(schema.defaults.model) ? schema.defaults.model : this.models[0];
    const alg = this.$('algorithm');
    for (const name of Object.keys(schema.algorithms)) alg.append(el('option', { value: name, textContent: name }));
    alg.value = schema.defaults.algorithm;
    alg.addEventListener('change', () => this.buildOptions());
    this.buildOptions();
    const fields = this.$('fields');
    for (const key of MAIN) fields.append(input(key, schema.fields[key], PREFILL[key] ?? schema.defaults[key]));
    const more = el('details', {}, el('summary', { textContent: 'More request options' }));
    const box = el('div');
    for (const key of MORE) box.append(input(key, schema.fields[key]));
    more.append(box);
    fields.append(more);
  }

  buildOptions() {
    const name = this.$('algorithm').value;
    const def = this.schema.algorithms[name];
    this.$('algorithm-source').textContent = def.source;
    const box = this.$('options');
    box.replaceChildren(...Object.entries(def.options).map(([k, spec]) => input(k, spec)));
  }

  /** Shows the model's condition: its classes, its vocabulary, or nothing to choose. */
  setModel(info) {
    this.info = info;
    const box = this.$('condition');
    box.replaceChildren();
    if (info.vocab) return this.promptInput(box, info.vocab);
    if (info.classes?.length) {
      const select = el('select', { name: 'class' });
      info.classes.forEach((c) => select.append(el('option', { value: c, textContent: c })));
      select.value = info.classes.includes('Shirt') ? 'Shirt' : info.classes[0];
      box.append(el('label', { title: this.schema.fields.class.description }, 'Class ', select));
      return;
    }
    const shape = `[${info.sample_shape.join(', ')}]`;
    box.append(el('p', { className: 'hint', textContent: `unconditional model, samples of shape ${shape}` }));
  }

  promptInput(box, vocab) {
    const known = new Set(vocab);
    const text = el('input', { type: 'text', name: 'prompt', value: known.has('shirt') ? 'a shirt' : vocab[0] });
    const unknown = el('p', { className: 'unknown' });
    const mark = () => {
      const bad = words(text.value).filter((w) => !known.has(w));
      unknown.textContent = bad.length ? `not in the vocabulary (encoded as unknown): ${bad.join(', ')}` : '';
    };
    text.addEventListener('input', mark);
    const chips = el('div', { className: 'vocab', title: "the text encoder's vocabulary: click to add" });
    for (const w of vocab) {
      const b = el('button', { type: 'button', textContent: w });
      b.addEventListener('click', () => {
        text.value = `${text.value.trim()} ${w}`.trim();
        mark();
      });
      chips.append(b);
    }
    box.append(el('label', { title: this.schema.fields.prompt.description }, 'Prompt ', text), unknown, chips);
    mark();
  }

  /** The request the form describes (with preview: progress events carry the current best x̂0). */
  request() {
    const r = { model: this.$('model').value };
    const cond = this.root.querySelector('#condition [name]');
    if (cond?.value.trim()) r[cond.name] = cond.value.trim();
    r.algorithm = this.$('algorithm').value;
    const opts = {};
    for (const c of this.$('options').querySelectorAll('[name]')) {
      const v = controlValue(c);
      if (v !== undefined) opts[c.name] = v;
    }
    if (Object.keys(opts).length) r.algorithmOptions = opts;
    for (const c of this.$('fields').querySelectorAll('[name]')) {
      const v = controlValue(c);
      if (v !== undefined) r[c.name] = v;
    }
    r.preview = true;
    return r;
  }
}
