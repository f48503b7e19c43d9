#!/usr/bin/env python3
"""Bounded robustness load test of `fastkv serve` (ctest ServerLoad; Python standard library only).

Starts `fastkv serve --port 0` on loopback with 2 slots and a queue of 4, then:
  1. warm-up: a few requests, then the server's RSS is read (/proc/PID/status);
  then two rounds of
  2. mixed load: 16 client threads, each sending ROUNDS requests drawn by a seeded RNG from
     valid completions and chats (plain and streamed), invalid requests (bad JSON, wrong
     types, tools, json_object, an unknown model, a token id outside the vocabulary), streams
     the client drops after the first event, and requests the client drops before any answer
     (while queued or in prefill);
  3. overflow: 12 long requests released at once against 2 slots + 4 queue places, so that
     some must get 503;
then checks, from /metrics and the clients' own counts:
  - every slot and queue place is free and no KV cache is held;
  - the engine decoded the two slots together at times (decode rows > steps), and every
    decoded row is a counted token (tokens - generations <= rows <= tokens + generations);
  - no request was lost or duplicated: every answer the clients read is counted once by the
    server with the same status, response ids are unique, and every generation that ran is
    either one the clients read in full or one a client dropped;
  - the 503s the clients saw are the server's queue rejections;
  - RSS after the second round is back near where it was after the first (the first brings
    each thread's malloc arena and BLAS buffers to their working size; a leak per request
    would grow it again).
Last, with a model whose prefill takes seconds (SmolLM2-135M from $FASTKV_MODEL_PATH, else
skipped), four clients send a 3,000-token prompt to one slot and leave after 1 s, during the
first one's prefill: the prefill stops, the others leave the queue, no token is generated.
Every wait is bounded; the whole run stops by itself (--deadline), and the server is killed
on the way out, pass or fail. Exit status 0 when every check holds, 1 otherwise.
"""
import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SENTENCE = "The little dog ran to the park and played with a red ball with his friend Tom. "


class Server:
    def __init__(self, fastkv, model, extra):
        self.log = tempfile.NamedTemporaryFile(prefix="fastkv-load-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [fastkv, "serve", "-m", model, "--port", "0", "-t", "1"] + extra,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None
        until = time.time() + 60
        while time.time() < until and self.proc.poll() is None:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", self.text())
            if m:
                self.port = int(m.group(1))
                return
            time.sleep(0.02)
        raise RuntimeError("the server did not start:\n" + self.text())

    def text(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return -1

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        os.unlink(self.log.name)


def request(port, method, path, body=None, headers=None, timeout=60):
    """(status, body text) of one request on its own connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", errors="replace")
    finally:
        conn.close()


def metrics(port):
    status, text = request(port, "GET", "/metrics")
    assert status == 200, text
    plain, requests = {}, {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        name, value = line.rsplit(" ", 1)
        m = re.match(r'fastkv_requests_total\{endpoint="([^"]*)",status="(\d+)"\}', name)
        if m:
            requests[(m.group(1), int(m.group(2)))] = int(float(value))
        elif "{" not in name:
            plain[name] = float(value)
    return plain, requests


def drop_after(port, path, body, first_event):
    """Sends a request on a raw socket and closes it: after the first SSE event when
    first_event, else at once (the request is then queued or in prefill)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        data = body.encode()
        s.sendall((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(data)}\r\n\r\n").encode() + data)
        if first_event:
            got = b""
            while b"data: " not in got:
                if got.startswith(b"HTTP/1.1 ") and b"\r\n" in got and \
                        not got.startswith(b"HTTP/1.1 200"):
                    break  # refused (503): no stream to drop
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            return got.startswith(b"HTTP/1.1 200")
        return True
    finally:
        # RST rather than FIN: the server sees the hang-up at once.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()


class Tally:
    def __init__(self):
        self.lock = threading.Lock()
        self.answers = {}     # (endpoint, status) -> answers read in full by a client
        self.ids = []         # response ids of the 200s read in full
        self.dropped = 0      # requests a client dropped on purpose
        self.read_200 = 0     # generation answers read in full with 200
        self.errors = []      # what a client found wrong

    def answer(self, path, status, body_id=None):
        with self.lock:
            self.answers[(path, status)] = self.answers.get((path, status), 0) + 1
            if body_id is not None:
                self.ids.append(body_id)
            if status == 200:
                self.read_200 += 1

    def fail(self, what):
        with self.lock:
            self.errors.append(what)


C, CC = "/v1/completions", "/v1/chat/completions"
MSGS = [{"role": "user", "content": "Tell me a story."}]

# (name, path, body, expected status (None: a drop), kind)
INVALID = [
    ("bad json", C, '{"prompt": ', 400),
    ("wrong type", C, json.dumps({"prompt": "x", "max_tokens": "ten"}), 400),
    ("tools", CC, json.dumps({"messages": MSGS, "tools": [{"type": "function"}]}), 400),
    ("json_object", CC, json.dumps({"messages": MSGS, "response_format": {"type": "json_object"}}), 400),
    ("unknown model", C, json.dumps({"prompt": "x", "model": "gpt-4o"}), 404),
    ("bias id", C, json.dumps({"prompt": "x", "logit_bias": {"99999999": 1}}), 400),
]


def one_valid(port, tally, rng, stream, chat):
    path = CC if chat else C
    body = {"max_tokens": rng.randint(1, 40), "temperature": rng.choice([0, 0.8]),
            "seed": rng.randint(0, 1000), "stream": stream}
    if chat:
        body["messages"] = MSGS
    else:
        body["prompt"] = SENTENCE * rng.randint(1, 30)
    status, text = request(port, "POST", path, json.dumps(body))
    if status == 503:
        tally.answer(path, 503)
        return
    if status != 200:
        tally.fail(f"{path} answered {status}: {text[:200]}")
        tally.answer(path, status)
        return
    if stream:
        events = [e[6:] for e in text.split("\n\n") if e.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            tally.fail(f"stream without [DONE]: {text[-200:]}")
        chunks = [json.loads(e) for e in events[:-1]]
        ids = {c["id"] for c in chunks}
        if len(ids) != 1:
            tally.fail(f"stream with ids {ids}")
        tally.answer(path, 200, ids.pop() if ids else None)
    else:
        j = json.loads(text)
        n = j["usage"]["completion_tokens"]
        if n > body["max_tokens"]:
            tally.fail(f"{n} tokens for max_tokens {body['max_tokens']}")
        tally.answer(path, 200, j["id"])


def client(port, tally, seed, rounds):
    rng = random.Random(seed)
    for _ in range(rounds):
        kind = rng.choice(["valid", "valid", "stream", "chat", "invalid", "drop_stream",
                           "drop_early"])
        try:
            if kind in ("valid", "stream", "chat"):
                one_valid(port, tally, rng, stream=kind == "stream" or rng.random() < 0.3,
                          chat=kind == "chat")
            elif kind == "invalid":
                name, path, body, want = rng.choice(INVALID)
                status, text = request(port, "POST", path, body)
                tally.answer(path, status)
                if status != want:
                    tally.fail(f"{name}: {status} instead of {want}: {text[:200]}")
            else:
                body = {"prompt": SENTENCE * rng.randint(20, 70), "max_tokens": 100000,
                        "ignore_eos": True, "temperature": 0, "stream": True}
                drop_after(port, C, json.dumps(body), first_event=kind == "drop_stream")
                with tally.lock:
                    tally.dropped += 1
        except Exception as e:  # a client-side failure is a finding, not a crash
            tally.fail(f"{kind}: {type(e).__name__}: {e}")


def find_prefill_model(given):
    """A model whose prefill takes seconds: --prefill-model, else SmolLM2-135M-Instruct.Q4_1.gguf
    in a directory of $FASTKV_MODEL_PATH (as the C++ tests look for it); None when neither."""
    if given:
        return given
    for d in os.environ.get("FASTKV_MODEL_PATH", "").split(":"):
        path = os.path.join(d, "SmolLM2-135M-Instruct.Q4_1.gguf")
        if d and os.path.exists(path):
            return path
    return None


def prefill_drops(fastkv, model, deadline, failures):
    """Clients that leave during a long prefill (one in the slot, the rest queued behind it):
    the prefill stops at a layer boundary, the queued ones leave the queue, nothing is
    generated and every place is free again."""
    srv = Server(fastkv, model, ["--slots", "1", "--queue", "4", "-c", "4096"])
    try:
        body = json.dumps({"prompt": SENTENCE * 180, "max_tokens": 4, "temperature": 0})
        socks = []
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            data = body.encode()
            s.sendall((f"POST {C} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                       f"\r\nContent-Length: {len(data)}\r\n\r\n").encode() + data)
            socks.append(s)
        time.sleep(1.0)  # the first is prefilling (seconds), the others queued
        m0, _ = metrics(srv.port)
        for s in socks:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        left = time.time()
        m = wait_idle(srv.port, min(deadline, left + 60))
        while m["fastkv_generations_total"] < 1 and time.time() < min(deadline, left + 60):
            time.sleep(0.05)
            m, _ = metrics(srv.port)
        print(f"prefill drops: busy {m0['fastkv_slots_busy']:.0f}, queued "
              f"{m0['fastkv_queue_length']:.0f} when the clients left; idle "
              f"{time.time() - left:.2f} s later")
        if m0["fastkv_completion_tokens_total"] > 0 or m0["fastkv_slots_busy"] != 1:
            print("prefill drops: the prefill was not running when the clients left; skipped")
            return
        for key, want in (("fastkv_slots_busy", 0), ("fastkv_queue_length", 0),
                          ("fastkv_kv_cache_bytes", 0), ("fastkv_generations_total", 1),
                          ("fastkv_generations_cancelled_total", 1),
                          ("fastkv_completion_tokens_total", 0)):
            if m[key] != want:
                failures.append(f"prefill drops: {key} is {m[key]}, expected {want}")
    finally:
        srv.stop()


def wait_idle(port, deadline):
    while time.time() < deadline:
        m, _ = metrics(port)
        if m["fastkv_slots_busy"] == 0 and m["fastkv_queue_length"] == 0 and \
                m["fastkv_kv_cache_bytes"] == 0:
            return m
        time.sleep(0.1)
    return metrics(port)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fastkv", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--deadline", type=float, default=240, help="seconds for the whole run")
    ap.add_argument("--prefill-model",
                    help="model for the drops during prefill (default: SmolLM2-135M-Instruct."
                         "Q4_1.gguf from $FASTKV_MODEL_PATH; the phase is skipped without one)")
    ap.add_argument("--rss-slack-mib", type=float, default=24,
                    help="how far the second round may raise the server's RSS")
    a = ap.parse_args()
    start = time.time()
    deadline = start + a.deadline
    srv = Server(a.fastkv, a.model, ["--slots", "2", "--queue", "4"])
    failures = []
    try:
        port = srv.port
        tally = Tally()
        # 1. Warm-up (allocator arenas, thread stacks), then the RSS baseline.
        rng = random.Random(1)
        for i in range(6):
            one_valid(port, tally, rng, stream=i % 2 == 1, chat=i % 3 == 2)
        wait_idle(port, deadline)
        rss0 = srv.rss_kib()
        overflow = []

        def load_round():
            # 2. Mixed load.
            threads = [threading.Thread(target=client, args=(port, tally, 100 + i, a.rounds))
                       for i in range(a.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(max(1.0, deadline - time.time()))
            if any(t.is_alive() for t in threads):
                failures.append("clients still running at the deadline")
            # 3. Overflow: 12 long requests at once against 2 slots + 4 queue places.
            gate = threading.Barrier(12)

            def long_one():
                body = json.dumps({"prompt": SENTENCE * 70, "max_tokens": 300,
                                   "ignore_eos": True, "temperature": 0})
                gate.wait(30)
                status, text = request(port, "POST", C, body, timeout=120)
                with tally.lock:
                    overflow.append(status)
                tally.answer(C, status, json.loads(text)["id"] if status == 200 else None)

            ts = [threading.Thread(target=long_one) for _ in range(12)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(max(1.0, deadline - time.time()))
            return wait_idle(port, deadline)

        # Two rounds: the first brings every thread's buffers (malloc arenas, BLAS) to their
        # working size; the second must not grow the server further (a leak per request would).
        load_round()
        rss_round1 = srv.rss_kib()
        # Every place free again.
        m = load_round()
        _, served = metrics(port)
        rss1 = srv.rss_kib()

        # Checks.
        failures += tally.errors
        for key in ("fastkv_slots_busy", "fastkv_queue_length", "fastkv_kv_cache_bytes"):
            if m[key] != 0:
                failures.append(f"{key} is {m[key]} after the load")
        if overflow.count(503) == 0:
            failures.append(f"no 503 among 2 x 12 simultaneous long requests: {overflow}")
        if sorted(set(overflow)) not in ([200, 503], [503]):
            failures.append(f"overflow statuses {overflow}")
        if len(tally.ids) != len(set(tally.ids)):
            failures.append("a response id came twice")
        # Every answer a client read is counted once with its status; a dropped request may
        # be counted (as 200 or 499) or not, but never more than once.
        extra = 0
        for key in set(tally.answers) | set(served):
            if key[0] not in (C, CC):
                continue
            got, counted = tally.answers.get(key, 0), served.get(key, 0)
            if counted < got:
                failures.append(f"{key}: clients read {got} answers, the server counted {counted}")
            extra += counted - got
        if extra > tally.dropped:
            failures.append(f"the server counted {extra} answers more than the clients read, "
                            f"with only {tally.dropped} dropped")
        # 503s: each one a client read is a queue rejection; a dropped request may have had one.
        read_503 = tally.answers.get((C, 503), 0) + tally.answers.get((CC, 503), 0)
        if not (read_503 <= m["fastkv_queue_rejections_total"] <= read_503 + tally.dropped):
            failures.append(f"{m['fastkv_queue_rejections_total']} queue rejections for "
                            f"{read_503} 503s read and {tally.dropped} dropped")
        # Generations: each one read in full, or one a client dropped (cancelled or finished).
        ran, cancelled = m["fastkv_generations_total"], m["fastkv_generations_cancelled_total"]
        if not (tally.read_200 <= ran <= tally.read_200 + tally.dropped):
            failures.append(f"{ran} generations for {tally.read_200} answers read and "
                            f"{tally.dropped} dropped")
        if cancelled > tally.dropped:
            failures.append(f"{cancelled} cancelled generations for {tally.dropped} drops")
        # Batched decoding: the two slots were decoded together at times, and every decoded
        # row is a token counted (the first token of a generation comes from its prefill; a
        # row may end in an end-of-generation token, which is not counted).
        steps, rows = m["fastkv_decode_batch_steps_total"], m["fastkv_decode_batch_rows_total"]
        tokens = m["fastkv_completion_tokens_total"]
        if not rows > steps > 0:
            failures.append(f"{rows} rows in {steps} decode steps: no step ran two requests")
        if not (tokens - ran <= rows <= tokens + ran):
            failures.append(f"{rows} decoded rows for {tokens} tokens in {ran} generations")
        if rss1 > rss_round1 + a.rss_slack_mib * 1024:
            failures.append(f"RSS grew from {rss_round1} KiB after the first round to {rss1} KiB "
                            f"after the second")
        print(f"requests read {sum(tally.answers.values())} "
              f"({', '.join(f'{p} {s}: {n}' for (p, s), n in sorted(tally.answers.items()))}), "
              f"dropped {tally.dropped}; generations {ran:.0f} ({cancelled:.0f} cancelled); "
              f"decode steps {steps:.0f} of {rows / max(steps, 1):.2f} rows on average; "
              f"overflow {overflow.count(200)}x200 {overflow.count(503)}x503; "
              f"RSS {rss0} KiB after warm-up, {rss_round1} after round 1, {rss1} after round 2; "
              f"{time.time() - start:.1f} s")
        if srv.proc.poll() is not None:
            failures.append(f"the server exited with {srv.proc.returncode}")
    except Exception as e:
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        log = srv.text()
        srv.stop()
    slow = find_prefill_model(a.prefill_model)
    if slow:
        try:
            prefill_drops(a.fastkv, slow, deadline, failures)
        except Exception as e:
            failures.append(f"prefill drops: {type(e).__name__}: {e}")
    else:
        print("prefill drops: no SmolLM2-135M-Instruct.Q4_1.gguf in $FASTKV_MODEL_PATH; skipped")
    for f in failures:
        print("FAIL:", f)
    if failures:
        print("server log (tail):\n" + "\n".join(log.splitlines()[-30:]))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
