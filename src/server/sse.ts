/**
 * Server-Sent Events of one request. The headers go out with the first event, not before: until
 * the search has started, every refusal (bad input, BUSY, a model that will not load) still gets
 * its real status as JSON. Events carry ids; `result` and `error` carry the id `end`, and a
 * reconnect whose Last-Event-ID is `end` is answered 204, which stops a browser's EventSource (by
 * the spec it reconnects after a normal close and would run the search again).
 */
import type http from 'node:http';

/** Milliseconds an EventSource waits before reconnecting after a dropped stream. */
export const SSE_RETRY_MS = 3000;
/** The id of the last event of a stream (result or error). */
export const END_ID = 'end';

export class EventStream {
  private next = 0;

  constructor(private readonly res: http.ServerResponse) {}

  get started(): boolean {
    return this.res.headersSent;
  }

  /** One event; the first sends the headers and the retry field. */
  send(name: string, data: unknown, last = false): void {
    const res = this.res;
    if (res.destroyed) return;
    if (!res.headersSent) {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      });
      res.write(`retry: ${SSE_RETRY_MS}\n\n`);
    }
    const id = last ? END_ID : String(this.next++);
    res.write(`id: ${id}\nevent: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}

/** A reconnect after the stream ended (Last-Event-ID: end). */
export function isFinishedReconnect(req: http.IncomingMessage): boolean {
  return req.headers['last-event-id'] === END_ID;
}
