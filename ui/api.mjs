// The public HTTP API, as any client uses it: JSON routes and the SSE stream read over fetch
// (a POST body, and closing the fetch cancels the request on the server).

/** An API error as the server words it, with its status. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function failure(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // not JSON: the status says enough
  }
  const e = body?.error ?? {};
  return new ApiError(res.status, e.code ?? String(res.status), e.message ?? res.statusText);
}

export async function getJson(path) {
  const res = await fetch(path, { credentials: 'same-origin' });
  if (!res.ok) throw await failure(res);
  return res.json();
}

/** Splits an SSE byte stream into events: calls onEvent(name, data) for each. */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let cut = buf.indexOf('\n\n');
    while (cut >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) name = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      if (data.length) onEvent(name, JSON.parse(data.join('\n')));
      cut = buf.indexOf('\n\n');
    }
  }
}

/**
 * POST /v1/generate/stream: onProgress(event) for each progress event; resolves with the result,
 * rejects with an ApiError (or an AbortError when `signal` aborts: the server sees the client go).
 */
export async function streamGenerate(request, { signal, onProgress }) {
  const res = await fetch('/v1/generate/stream', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(request),
    signal,
  });
  if (!res.ok) throw await failure(res);
  let result = null;
  let error = null;
  await readEvents(res.body, (name, data) => {
    if (name === 'progress') onProgress(data);
    else if (name === 'result') result = data;
    else if (name === 'error') error = new ApiError(data.status, data.code, data.message);
  });
  if (error) throw error;
  if (!result) throw new ApiError(0, 'STREAM', 'the stream ended without a result');
  return result;
}
