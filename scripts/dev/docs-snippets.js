#!/usr/bin/env node
// Runs every code block of README.md and docs/**/*.md as a user would: from the packed package.
//   node scripts/dev/docs-snippets.js [--types] [--json FILE] [--keep]
// 1. packs diffusion-search and the CPU prebuilt-binary package (from build/Release: build first);
// 2. a fresh project (`npm init -y`) installs both tarballs, typescript and @types/node, once;
//    its ts/ folder is an ESM project whose tsconfig is what `tsc --init` writes (strict, nodenext);
// 3. compiles the ```ts blocks and test/types/consumer.ts there (--types stops after this:
//    `npm run test:types`), then runs the blocks in document order, each file's blocks in one
//    project folder: ```sh/```bash with bash -e, ```js as CommonJS, ```mjs as ESM, ```ts compiled.
// Fences: the info string's first word is the language. `no-run: <why>` after it skips a block
// (a reason is required). Untagged, text, json and jsonc blocks are data, never run; any other
// language (python, …) must say no-run. A failing block fails the run, naming file and line.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..');
const RUN = { sh: 'sh', bash: 'sh', js: 'js', mjs: 'mjs', ts: 'ts' };
const DATA = new Set(['', 'text', 'json', 'jsonc']);

/**
 * The fenced blocks of a markdown text. Fences are simple enough (CommonMark: ``` or ~~~, at least
 * three, closed by the same character at least as long) that a loop over lines is clearer than a
 * markdown parser dependency for the one thing needed here.
 */
function extractBlocks(text, file = '<text>') {
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3})(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, info] = open;
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const close = /^ {0,3}(`{3,}|~{3,})\s*$/.exec(lines[j]);
      if (close && close[1][0] === fence[0] && close[1].length >= fence.length) break;
      body.push(lines[j].startsWith(indent) ? lines[j].slice(indent.length) : lines[j]);
    }
    const lang = info.split(/\s+/)[0].toLowerCase();
    const noRun = /(?:^|\s)no-run(?::\s*(.*))?$/.exec(info);
    blocks.push({ file, line: i + 1, lang, info, code: body.join('\n') + '\n', noRun: noRun ? noRun[1] || '' : null });
    i = j;
  }
  return blocks;
}

/** What to do with each block: 'sh' | 'js' | 'mjs' | 'ts' | 'data' | 'skip', or an error. */
function classify(b) {
  if (b.noRun !== null) return b.noRun.trim() ? { kind: 'skip' } : { error: 'no-run needs a reason: "no-run: <why>"' };
  if (RUN[b.lang]) return { kind: RUN[b.lang] };
  if (DATA.has(b.lang)) return { kind: 'data' };
  return { error: `a \`\`\`${b.lang} block must run (sh, bash, js, mjs, ts) or say "no-run: <why>"` };
}

function docFiles() {
  const out = [path.join(root, 'README.md')];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) out.push(p);
    }
  };
  walk(path.join(root, 'docs'));
  return out;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  if (r.status !== 0 && !opts.allowFail) {
    throw new Error(
      (
        `${cmd} ${args.join(' ')} (in ${opts.cwd || process.cwd()}) exited ` +
        `${r.status ?? r.signal}\n${(r.stdout || '') + (r.stderr || '')}`
      ).slice(-6000),
    );
  }
  return r;
}

/** The environment without the variables that point the loader at this checkout's build. */
function cleanEnv() {
  const env = { ...process.env };
  delete env.DIFFUSION_SEARCH_NATIVE;
  return env;
}

const versionOf = (name) =>
  JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;

/** Packs both tarballs and installs them, typescript and @types/node into a fresh project. */
function setUp(work) {
  const t0 = Date.now();
  if (
    !fs.existsSync(path.join(root, 'build', 'Release', 'ds_native.node')) ||
    !fs.existsSync(path.join(root, 'lib', 'index.js'))
  ) {
    throw new Error('build first: npm run build');
  }
  const main = run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', work], { cwd: root })
    .stdout.trim()
    .split('\n')
    .pop();
  // The variant package is made in a temporary folder, so the repository's npm/ is left as it is.
  const variant = path.join(work, 'variant');
  fs.mkdirSync(variant);
  fs.copyFileSync(
    path.join(root, 'npm', `${process.platform}-${process.arch}-cpu`, 'package.json'),
    path.join(variant, 'package.json'),
  );
  run(process.execPath, [path.join(root, 'scripts', 'install', 'prebuild.js'), '--dest', variant], { cwd: root });
  const cpu = run('npm', ['pack', variant, '--silent', '--pack-destination', work], { cwd: root })
    .stdout.trim()
    .split('\n')
    .pop();
  const app = path.join(work, 'app');
  fs.mkdirSync(app);
  run('npm', ['init', '-y'], { cwd: app });
  const install = run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--foreground-scripts',
      path.join(work, main),
      path.join(work, cpu),
      `typescript@${versionOf('typescript')}`,
      `@types/node@${versionOf('@types/node')}`,
    ],
    { cwd: app, env: cleanEnv() },
  );
  if (!/using the prebuilt binary/.test(install.stdout + install.stderr))
    throw new Error(`the install did not take the prebuilt binary:\n${install.stdout}`);
  const ts = path.join(app, 'ts');
  fs.mkdirSync(ts);
  fs.writeFileSync(
    path.join(ts, 'package.json'),
    JSON.stringify({ name: 'ts-app', private: true, type: 'module' }, null, 2) + '\n',
  );
  run(path.join(app, 'node_modules', '.bin', 'tsc'), ['--init'], { cwd: ts });
  const size = (f) => `${(fs.statSync(path.join(work, f)).size / 1e6).toFixed(1)} MB`;
  console.log(
    `docs-snippets: packed ${main} (${size(main)}) and ${cpu} (${size(cpu)}); installed in ` +
      `${((Date.now() - t0) / 1000).toFixed(0)} s`,
  );
  return { app, ts };
}

function main() {
  const args = process.argv.slice(2);
  const typesOnly = args.includes('--types');
  const jsonOut = args.includes('--json') ? args[args.indexOf('--json') + 1] : null;
  const blocks = docFiles().flatMap((f) => extractBlocks(fs.readFileSync(f, 'utf8'), path.relative(root, f)));
  const bad = blocks.map((b) => ({ b, c: classify(b) })).filter((x) => x.c.error);
  if (bad.length) {
    for (const { b, c } of bad) console.error(`${b.file}:${b.line}: ${c.error}`);
    process.exit(1);
  }
  const todo = blocks.map((b, i) => ({ ...b, kind: classify(b).kind, name: `s${String(i).padStart(3, '0')}` }));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ds-docs-'));
  const results = [];
  let failed = 0;
  const t0 = Date.now();
  try {
    const { app, ts } = setUp(work);
    // TypeScript: the ts blocks and the consumer, one compile, as `tsc` in the user's project would.
    const tsBlocks = todo.filter((b) => b.kind === 'ts');
    for (const b of tsBlocks) fs.writeFileSync(path.join(ts, `${b.name}.ts`), b.code);
    fs.copyFileSync(path.join(root, 'test', 'types', 'consumer.ts'), path.join(ts, 'consumer.ts'));
    const tsc = run(path.join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: ts, allowFail: true });
    const tscOut = (tsc.stdout + tsc.stderr).replace(/s(\d{3})\.ts/g, (m, n) => {
      const b = todo[Number(n)];
      return `${m} (${b.file}:${b.line})`;
    });
    results.push({ file: 'tsc', line: 0, kind: 'tsc', ok: tsc.status === 0, output: tscOut });
    console.log(
      `docs-snippets: tsc (strict, nodenext, ${tsBlocks.length} blocks + test/types/consumer.ts): ` +
        `${tsc.status === 0 ? 'ok' : 'FAILED'}`,
    );
    if (tsc.status !== 0) {
      console.log(tscOut);
      failed++;
    }
    if (!typesOnly) {
      // Blocks run in the project's folder, as a user would, in document order: a later block may
      // read an earlier one's output. The block files themselves are kept beside it, in work/.
      for (const b of todo.filter((x) => ['sh', 'js', 'mjs', 'ts'].includes(x.kind))) {
        const dir = b.kind === 'ts' ? ts : app;
        let cmd;
        if (b.kind === 'ts') cmd = [process.execPath, [`${b.name}.js`]];
        else {
          const file = path.join(b.kind === 'sh' ? work : app, `${b.name}.${b.kind === 'sh' ? 'sh' : b.kind}`);
          fs.writeFileSync(file, b.code);
          cmd = b.kind === 'sh' ? ['bash', ['-eo', 'pipefail', file]] : [process.execPath, [file]];
        }
        // Output goes to a file and the block runs in a process group of its own: a background
        // process it leaves behind (a server never stopped) is found, killed and fails the block.
        const log = path.join(work, `${b.name}.log`);
        const fd = fs.openSync(log, 'w');
        const s = Date.now();
        const r = spawnSync(cmd[0], cmd[1], {
          cwd: dir,
          stdio: ['ignore', fd, fd],
          detached: true,
          timeout: 240_000,
          killSignal: 'SIGKILL',
          env: cleanEnv(),
        });
        fs.closeSync(fd);
        let leftover = false;
        try {
          process.kill(-r.pid, 'SIGKILL');
          leftover = true;
        } catch {
          /* the group is empty: nothing left running */
        }
        const ok = r.status === 0 && !leftover;
        const seconds = (Date.now() - s) / 1000;
        const output =
          (leftover ? 'the block left processes running (killed now)\n' : '') +
          fs.readFileSync(log, 'utf8').slice(-4000);
        results.push({ file: b.file, line: b.line, kind: b.kind, ok, seconds, output });
        console.log(`docs-snippets: ${ok ? 'ok  ' : 'FAIL'} ${b.file}:${b.line} (${b.kind}, ${seconds.toFixed(1)} s)`);
        if (!ok) {
          failed++;
          console.log(
            `${r.error ? String(r.error) + '\n' : ''}exit ${r.status ?? r.signal}\n${output.replace(/^/gm, '  | ')}`,
          );
        }
      }
    }
  } finally {
    if (args.includes('--keep')) console.log(`docs-snippets: kept ${work}`);
    else fs.rmSync(work, { recursive: true, force: true });
  }
  const skipped = todo.filter((b) => b.kind === 'skip').map((b) => ({ file: b.file, line: b.line, why: b.noRun }));
  const summary = {
    seconds: (Date.now() - t0) / 1000,
    blocks: todo.length,
    ran: results.length,
    failed,
    skipped,
    results,
  };
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(summary, null, 2));
  console.log(
    `docs-snippets: ${results.length - failed}/${results.length} passed, ${skipped.length} marked no-run, ` +
      `${summary.seconds.toFixed(0)} s`,
  );
  process.exit(failed ? 1 : 0);
}

module.exports = { extractBlocks, classify, docFiles };
if (require.main === module) {
  try {
    main();
  } catch (e) {
    console.error(`docs-snippets: ${e.message}`);
    process.exit(1);
  }
}
