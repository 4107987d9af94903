'use strict';
/** HTTP cases: one server per runner (createServer over createEngine on 127.0.0.1:0) and one request per case. */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { createEngine, createServer } = require('../lib/index');
const { httpOutcome } = require('./judge');
const { FIX } = require('./files');
const { DIR_MODELS } = require('./gen-http');

let server, port;

async function start(tmp) {
  const dir = path.join(tmp, `served-models-${process.pid}`); // one per runner: a restarted runner starts its own
  fs.mkdirSync(dir, { recursive: true });
  for (const f of DIR_MODELS) {
    const src = path.join(FIX, 'fuzz', f);
    if (fs.existsSync(src)) fs.copyFileSync(src, path.join(dir, f));
  }
  fs.writeFileSync(path.join(dir, 'truncated.pt'), fs.readFileSync(path.join(FIX, 'fuzz', 'ok.pt')).subarray(0, 900));
  fs.writeFileSync(path.join(dir, 'empty.pt'), '');
  fs.symlinkSync('/work', path.join(dir, 'link.pt'));
  fs.mkdirSync(path.join(dir, 'sub'));
  server = createServer(createEngine({}), { modelsDir: dir, maxRequestNfe: 400 });
  port = (await server.listen(0, '127.0.0.1')).port;
}

function request(c) {
  return new Promise((resolve, reject) => {
    const body = c.body === undefined ? undefined : Buffer.from(c.body, 'utf8');
    const headers = { ...c.headers };
    if (body && !c.chunked) headers['content-length'] = body.length;
    const req = http.request(
      { host: '127.0.0.1', port, method: c.method, path: c.path, headers, agent: false },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            type: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(parts).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function runHttp(c, tmp) {
  if (!server) await start(tmp);
  let r;
  try {
    r = await request(c);
  } catch (e) {
    return { outcome: 'failure', reason: `no HTTP answer: ${e.code ?? ''} ${e.message}` };
  }
  return { ...httpOutcome(r.status, r.body, r.type.startsWith('text/event-stream')), status: r.status };
}

module.exports = { runHttp };
