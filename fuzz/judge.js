'use strict';
/**
 * Outcomes: 'ok', 'error:<CODE>' (a clean, coded refusal) or 'failure' with a reason. The
 * contract: the CLI exits 0, or 2 with "error [CODE]"; the library resolves or throws a
 * DiffusionSearchError; serve answers 2xx, or 4xx (502 for a verifier's bad scores) with
 * {error:{code,message}}. Anything else — exit 1, a signal, a TypeError, a 500 — is a failure.
 */

function cliOutcome(exit, signal, stderr) {
  if (signal) return { outcome: 'failure', reason: `killed by ${signal}` };
  if (exit === 0) return { outcome: 'ok' };
  const m = /error \[([A-Z_]+)\]/.exec(stderr);
  if (exit === 2 && m) return { outcome: `error:${m[1]}` };
  return {
    outcome: 'failure',
    reason: `exit ${exit}: ${stderr.trim().split('\n').slice(0, 3).join(' | ').slice(0, 400)}`,
  };
}

function libraryOutcome(e, DiffusionSearchError) {
  if (e === undefined) return { outcome: 'ok' };
  if (e instanceof DiffusionSearchError && typeof e.code === 'string') return { outcome: `error:${e.code}` };
  return { outcome: 'failure', reason: `${e?.name ?? typeof e}: ${String(e?.message ?? e).slice(0, 400)}` };
}

function httpOutcome(status, body, sse) {
  if (status >= 200 && status < 300) {
    if (!sse) return { outcome: 'ok' };
    const err = /event: error\ndata: (.*)\n/.exec(body);
    if (err) {
      const e = safeJson(err[1]);
      if (e && typeof e.code === 'string' && e.code !== 'INTERNAL' && typeof e.message === 'string')
        return { outcome: `error:${e.code}` };
      return { outcome: 'failure', reason: `SSE error event ${err[1].slice(0, 300)}` };
    }
    if (/event: result\n/.test(body)) return { outcome: 'ok' };
    return { outcome: 'failure', reason: 'SSE stream ended with neither result nor error' };
  }
  const j = safeJson(body);
  const e = j?.error;
  const coded = e && typeof e.code === 'string' && typeof e.message === 'string';
  if (coded && ((status >= 400 && status < 500) || (status === 502 && e.code === 'VERIFIER')))
    return { outcome: `error:${e.code}` };
  return { outcome: 'failure', reason: `HTTP ${status}: ${String(body).slice(0, 300)}` };
}

function safeJson(s) {
  try {
    return JSON.parse(s);
  } catch {
    return null;
  }
}

module.exports = { cliOutcome, libraryOutcome, httpOutcome };
