// The playground: the form from the API's schema, runs side by side, repeats with another algorithm.
import { ApiError, getJson } from './api.mjs';
import { RequestForm } from './form.mjs';
import { RunPanel } from './panel.mjs';

const el = (tag, props = {}, ...children) => {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
};

function banner(text) {
  const b = document.getElementById('banner');
  b.textContent = text;
  b.hidden = false;
}

function explain(e) {
  if (e instanceof ApiError && e.status === 401)
    return `${e.message} — this server needs its token: open /?token=<token> once.`;
  return `${e.code ?? 'ERROR'}: ${e.message}`;
}

/** A title for a group of runs: what every run in it shares. */
function title(r, info) {
  const what = r.prompt ? `“${r.prompt}”` : (r.class ?? (info.classes?.length ? info.classes[0] : 'unconditional'));
  return `${what} · ${r.model} · budget ${r.budget ?? 'default'} NFE · n ${r.n ?? 1} · seed ${r.seed ?? 0}`;
}

class Playground {
  constructor(schema, models) {
    this.schema = schema;
    this.form = new RequestForm(document, schema, models);
    this.info = new Map();
  }

  async start() {
    this.form.build();
    const model = document.getElementById('model');
    model.addEventListener('change', () => this.loadModel(model.value).catch((e) => banner(explain(e))));
    await this.loadModel(model.value);
    document.getElementById('form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    });
    document.body.dataset.ready = 'true';
  }

  async loadModel(name) {
    if (!this.info.has(name)) this.info.set(name, await getJson(`/v1/models/${encodeURIComponent(name)}`));
    this.form.setModel(this.info.get(name));
    document.getElementById('model').dataset.shown = name;
  }

  submit() {
    const r = this.form.request();
    const info = this.info.get(r.model);
    document.getElementById('empty')?.remove();
    const row = el('div', { className: 'row' });
    const group = el('section', { className: 'group' }, el('h2', { textContent: title(r, info) }), row);
    document.getElementById('runs').prepend(group);
    this.add(row, r, info);
    if (document.getElementById('compare').checked && r.algorithm !== 'baseline') {
      // Plain sampling spends one trajectory: its budget is what that costs, so its progress reads true.
      const { algorithmOptions: _o, ...plain } = r;
      const steps = r.steps ?? this.schema.defaults.steps;
      const simple = r.sampler !== 'heun' && r.schedule !== 'adaptive';
      const budget = simple ? steps * ((r.guidance ?? 1) === 1 ? 1 : 2) : r.budget;
      this.add(row, { ...plain, algorithm: 'baseline', budget }, info);
    }
    group.append(this.repeatControls(row, r, info));
  }

  add(row, request, info) {
    const panel = new RunPanel(request, { schema: this.schema, model: info });
    row.append(panel.root);
    panel.run();
  }

  /** "Repeat with <algorithm>": the same request (budget, seed, condition) with another algorithm. */
  repeatControls(row, r, info) {
    const select = el('select', { className: 'repeat-algorithm' });
    for (const name of Object.keys(this.schema.algorithms))
      if (name !== r.algorithm) select.append(el('option', { value: name, textContent: name }));
    const button = el('button', { type: 'button', className: 'secondary repeat-run', textContent: 'Repeat' });
    button.addEventListener('click', () => {
      const { algorithmOptions: _o, ...same } = r;
      this.add(row, { ...same, algorithm: select.value }, info);
    });
    return el('div', { className: 'repeat' }, 'Repeat with ', select, button, ' at the same budget and seed');
  }
}

async function main() {
  try {
    const [schema, models] = await Promise.all([getJson('/v1/schema'), getJson('/v1/models')]);
    const names = [...models.shipped.filter((m) => m.kind === 'denoiser').map((m) => m.name), ...models.models_dir];
    await new Playground(schema, names).start();
  } catch (e) {
    banner(explain(e));
  }
}

main();
