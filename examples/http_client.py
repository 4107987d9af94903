#!/usr/bin/env python3
"""A client of `diffusion-search serve`, standard library only (urllib.request).

Runs the docs' generate call (POST /v1/generate) and stream call (GET /v1/generate/stream, Server-Sent
Events) against a server and prints each result's shape and rewards:

    python3 examples/http_client.py http://127.0.0.1:8080
    DS_TOKEN=... python3 examples/http_client.py http://127.0.0.1:8080   # a server started with a token

Exit status: 0 when both calls succeed, 1 otherwise (the server's error code and message are printed).
"""
import base64
import json
import os
import struct
import sys
import urllib.error
import urllib.parse
import urllib.request

GENERATE = {"model": "gmm2d", "algorithm": "best-of-n", "budget": 100, "n": 2}
STREAM = {"model": "gmm2d", "budget": 400, "n": 2}


def headers(extra=None):
    h = {"content-type": "application/json"}
    token = os.environ.get("DS_TOKEN")
    if token:
        h["authorization"] = "Bearer " + token
    h.update(extra or {})
    return h


def fail(e):
    """An HTTP error answer: {"error": {"code", "message"}}, with Retry-After on 429 and 503."""
    body = e.read().decode("utf-8", "replace")
    try:
        err = json.loads(body)["error"]
        msg = "%s: %s" % (err["code"], err["message"])
    except (ValueError, KeyError, TypeError):
        msg = body[:200]
    retry = e.headers.get("retry-after")
    sys.exit("HTTP %d %s%s" % (e.code, msg, " (retry after %s s)" % retry if retry else ""))


def samples(result):
    """The samples as rows of floats (float32, little-endian, base64)."""
    raw = base64.b64decode(result["samples"])
    flat = struct.unpack("<%df" % (len(raw) // 4), raw)
    per = len(flat) // result["shape"][0] if result["shape"][0] else 0
    return [flat[i * per:(i + 1) * per] for i in range(result["shape"][0])]


def show(what, result):
    rows = samples(result)
    print("%s: shape %s, rewards %s, complete %s, first row %s" % (
        what, result["shape"], [round(r, 4) for r in result["rewards"]], result["complete"],
        [round(v, 4) for v in rows[0][:4]] if rows else []))


def generate(base):
    body = json.dumps(GENERATE).encode()
    req = urllib.request.Request(base + "/v1/generate", data=body, headers=headers(), method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as res:
            show("generate", json.load(res))
    except urllib.error.HTTPError as e:
        fail(e)


def events(res):
    """Server-Sent Events of a response: (id, event, data) per event."""
    ev, data, eid = None, [], None
    for line in res:
        line = line.decode("utf-8").rstrip("\r\n")
        if not line:
            if ev or data:
                yield eid, ev or "message", "\n".join(data)
            ev, data = None, []
        elif line.startswith("event:"):
            ev = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif line.startswith("id:"):
            eid = line[3:].strip()


def stream(base):
    url = base + "/v1/generate/stream?" + urllib.parse.urlencode(STREAM)
    req = urllib.request.Request(url, headers=headers({"accept": "text/event-stream"}))
    progress = 0
    try:
        with urllib.request.urlopen(req, timeout=300) as res:
            for _id, ev, data in events(res):
                if ev == "progress":
                    progress += 1
                elif ev == "result":
                    print("stream: %d progress events" % progress)
                    show("stream", json.loads(data))
                    return
                elif ev == "error":
                    err = json.loads(data)
                    sys.exit("stream error %s: %s" % (err["code"], err["message"]))
    except urllib.error.HTTPError as e:
        fail(e)
    sys.exit("stream ended without a result")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: http_client.py http://HOST:PORT")
    base = sys.argv[1].rstrip("/")
    generate(base)
    stream(base)


if __name__ == "__main__":
    main()
