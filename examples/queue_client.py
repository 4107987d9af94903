#!/usr/bin/env python3
"""A diffusion-search queue client in plain Python (standard library only), by the protocol in
docs/queue.md#protocol: it adds a job with raw Redis commands, waits for it, and decodes the result.

    python3 examples/queue_client.py --redis redis://127.0.0.1:6379 --queue q \
        '{"model": "gmm2d", "budget": 300, "n": 2, "steps": 10, "seed": 5}' [--key run-17] [--cancel]

Prints one JSON line: id, state, shape, dtype, rewards, value_range, samples (as floats), report.
Exit 2 when the job failed (its "[CODE] message" on stderr), as the CLI's submit --wait does.
"""
import argparse
import base64
import json
import socket
import struct
import sys
import time
from urllib.parse import urlparse


class Redis:
    """The few RESP2 commands the protocol needs, over one socket."""

    def __init__(self, url):
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout=10)
        self.buf = self.sock.makefile("rb")
        if u.password:
            self.call("AUTH", *([u.username] if u.username else []), u.password)
        if u.path.strip("/"):
            self.call("SELECT", u.path.strip("/"))

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self.reply()

    def reply(self):
        line = self.buf.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self.buf.read(n + 2)[:-2].decode()
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("unexpected reply %r" % line)


def submit(r, queue, options, key=None, prefix="bull"):
    """Adds a job as BullMQ 6 does; with `key` as its id, an existing job of that id is returned."""
    data = json.dumps({"options": options, "submittedAt": int(time.time() * 1000)})
    base = "%s:%s:" % (prefix, queue)
    job_id = key or str(r.call("INCR", base + "id"))
    # HSETNX first: two submitters of one key cannot both add it.
    if key and r.call("HSETNX", base + job_id, "data", data) == 0:
        return job_id
    r.call("MULTI")
    r.call("HSET", base + job_id, "name", "generate", "data", data, "opts", "{}",
           "timestamp", int(time.time() * 1000), "delay", 0, "priority", 0)
    r.call("LPUSH", base + "wait", job_id)
    r.call("ZADD", base + "marker", 0, "0")
    r.call("XADD", base + "events", "*", "event", "waiting", "jobId", job_id)
    r.call("EXEC")
    return job_id


def wait(r, queue, job_id, timeout=120, prefix="bull"):
    """Polls the job's sets until it is completed or failed; returns (state, hash fields)."""
    base = "%s:%s:" % (prefix, queue)
    end = time.time() + timeout
    while time.time() < end:
        for state in ("completed", "failed"):
            if r.call("ZSCORE", base + state, job_id) is not None:
                fields = r.call("HGETALL", base + job_id)
                return state, dict(zip(fields[::2], fields[1::2]))
        time.sleep(0.1)
    raise TimeoutError("job %s did not finish in %d s" % (job_id, timeout))


def cancel(r, queue, job_id, prefix="bull"):
    r.call("SET", "%s:%s:ds:cancel:%s" % (prefix, queue, job_id), "1", "EX", 7 * 86400)
    r.call("PUBLISH", "%s:%s:ds:cancel" % (prefix, queue), job_id)


def decode(result):
    """The return value's arrays as lists of floats (base64 float32 little-endian, C order)."""
    assert result.get("dtype", "float32") == "float32"
    if result["where"] != "redis" or result["samples"] is None:
        return None  # in result["path"]/samples.npy
    raw = base64.b64decode(result["samples"])
    return list(struct.unpack("<%df" % (len(raw) // 4), raw))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("options", help="generate options as JSON")
    p.add_argument("--redis", default="redis://127.0.0.1:6379")
    p.add_argument("--queue", default="diffusion-search")
    p.add_argument("--key")
    p.add_argument("--cancel", action="store_true", help="cancel the job right after adding it")
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args()
    r = Redis(a.redis)
    job_id = submit(r, a.queue, json.loads(a.options), a.key)
    if a.cancel:
        cancel(r, a.queue, job_id)
    state, job = wait(r, a.queue, job_id, a.timeout)
    if state == "failed":
        sys.stderr.write("job %s failed: %s\n" % (job_id, job.get("failedReason")))
        print(json.dumps({"id": job_id, "state": state, "failedReason": job.get("failedReason")}))
        return 2
    res = json.loads(job["returnvalue"])
    samples = decode(res)
    n = 1
    for d in res["shape"]:
        n *= d
    assert samples is None or len(samples) == n, "samples do not fill the shape"
    keys = ("shape", "dtype", "rewards", "value_range", "prompts", "complete", "report")
    print(json.dumps(dict({"id": job_id, "state": state, "samples": samples}, **{k: res[k] for k in keys})))
    return 0


if __name__ == "__main__":
    sys.exit(main())
