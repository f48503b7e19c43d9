#!/usr/bin/env python3
"""`fastkv serve` replicas behind nginx (deploy/nginx/fastkv.conf), on loopback only.

  scaleout.py loading --fastkv BIN --source DIR --shared DIR
      One replica whose model file is a FIFO nobody writes yet: the load waits, so the "loading"
      state lasts as long as the test needs. /health is 503 "loading" with its slots, the API
      routes 503 with Retry-After, /metrics says fastkv_ready 0; SIGTERM ends it at once with
      status 0. Then a real model: /health 200 "ok", fastkv_ready 1.

  scaleout.py nginx --fastkv BIN --source DIR --shared DIR
      Two replicas (SmolLM2-135M from $FASTKV_MODEL_PATH or models/, else stories260K from
      ../shared) and nginx running deploy/nginx/fastkv.conf with its ports rewritten, as this
      user, with every path in a temporary folder. Exits 77 (CTest's "skipped") when nginx is
      not installed (scripts/install-deps.sh installs it).
        A. 24 requests from 6 concurrent clients all succeed and are spread over both replicas
           (per-replica counters from each replica's /metrics, which add up to 24).
        B. 24 more; one replica is SIGKILLed while requests wait in its queue. Every request
           that had not started its answer (no status line yet) succeeds through the other
           replica; only requests that were already streaming from the killed replica may be
           cut off, at most its slot count. nginx's access log shows a request retried from
           the killed replica to the other one.
        C. The killed replica is started again on its port; once its /health says 200, rounds
           of requests (all of which must succeed) reach it again (its counter grows).
        D. Bodies: one of exactly the limit passes nginx (the replica answers 400 to the junk),
           one byte more gets nginx's own 413 (client_max_body_size in step with --max-body).

Every process is killed when the script ends, pass or fail (and dies with it: PR_SET_PDEATHSIG);
every wait is bounded; the whole run stops itself after DEADLINE_S.
"""
import argparse
import ctypes
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

SKIP = 77
DEADLINE_S = 420
HOST = "127.0.0.1"
MAX_BODY = 8388608  # `fastkv serve --max-body` default; client_max_body_size 8m in the conf
_start = time.monotonic()
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def time_left():
    return DEADLINE_S - (time.monotonic() - _start)


def die_with_parent():
    # The children die with this script even when it is killed (CTest's timeout).
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def free_ports(n):
    """n distinct loopback ports that are free now (all bound at once, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def http_call(port, method, path, body=None, timeout=60, headers=None):
    """(status, headers dict, body bytes); status 0 when no answer came."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        h = {"Content-Type": "application/json"} if body is not None else {}
        h.update(headers or {})
        conn.request(method, path, body=body, headers=h)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    except (OSError, http.client.HTTPException):
        return 0, {}, b""
    finally:
        conn.close()


def find_model(source, shared):
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    dirs = [d for d in os.environ.get("FASTKV_MODEL_PATH", "").split(":") if d]
    dirs.append(os.path.join(source, "models"))
    for d in dirs:
        if os.path.isfile(os.path.join(d, name)):
            return os.path.join(d, name), 24
    stories = os.path.join(shared, "models", "stories260K.gguf")
    if os.path.isfile(stories):
        return stories, 200  # tiny and fast: longer answers keep requests in flight
    return None, 0


class Replica:
    def __init__(self, fastkv, model, port, workdir, name, slots=1):
        self.fastkv, self.model, self.port, self.slots = fastkv, model, port, slots
        self.name = name
        self.log_path = os.path.join(workdir, name + ".log")
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        log = open(f"{self.log_path}.{self.starts}", "wb")
        self.proc = subprocess.Popen(
            [self.fastkv, "serve", "-m", self.model, "--host", HOST, "--port", str(self.port),
             "--slots", str(self.slots), "--queue", "32", "-t", "1"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=die_with_parent)
        log.close()

    def log(self):
        try:
            with open(f"{self.log_path}.{self.starts}", "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def wait_health(self, timeout=60):
        """Polls /health until 200; returns the statuses seen (0: no answer), or None on timeout
        or when the process died."""
        seen = []
        until = time.monotonic() + min(timeout, time_left())
        while time.monotonic() < until and self.proc.poll() is None:
            st, _, body = http_call(self.port, "GET", "/health", timeout=5)
            if not seen or seen[-1] != st:
                seen.append(st)
            if st == 200:
                return seen
            time.sleep(0.02)
        return None

    def metrics(self):
        st, _, body = http_call(self.port, "GET", "/metrics", timeout=10)
        return body.decode() if st == 200 else ""

    def completions_ok(self):
        """fastkv_requests_total{endpoint="/v1/completions",status="200"} of this process."""
        m = re.search(r'^fastkv_requests_total\{endpoint="/v1/completions",status="200"\} (\d+)$',
                      self.metrics(), re.M)
        return int(m.group(1)) if m else 0

    def gauge(self, name):
        m = re.search(rf"^{name} (\S+)$", self.metrics(), re.M)
        return float(m.group(1)) if m else -1

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()


class Nginx:
    """nginx as this user: -p prefix, pid, error and access logs and temp paths in `workdir`."""

    def __init__(self, binary, source, workdir, port, replica_ports):
        self.binary, self.dir, self.port = binary, workdir, port
        self.access_log = os.path.join(workdir, "access.log")
        self.error_log = os.path.join(workdir, "error.log")
        with open(os.path.join(source, "deploy", "nginx", "fastkv.conf")) as f:
            conf = f.read()
        # The shipped file with its addresses rewritten; every other directive as shipped.
        servers = re.findall(r"^(\s*server )127\.0\.0\.1:\d+( [^;]*;\s*# fastkv replica)$", conf,
                             re.M)
        if len(servers) < 1:
            raise SystemExit("scaleout.py: no '# fastkv replica' server line in fastkv.conf")
        params = servers[0][1]
        lines = "".join(f"{servers[0][0]}{HOST}:{p}{params}\n" for p in replica_ports)
        conf = re.sub(r"^\s*server 127\.0\.0\.1:\d+ [^;]*;\s*# fastkv replica\n", "", conf,
                      flags=re.M)
        conf, n_up = re.subn(r"^(\s*least_conn;\n)", r"\1" + lines.replace("\\", r"\\"), conf,
                             count=1, flags=re.M)
        conf, n_listen = re.subn(r"^(\s*)listen \d+;", rf"\1listen {HOST}:{port};", conf,
                                 count=1, flags=re.M)
        conf, n_log = re.subn(r"access_log \S+ fastkv;", f"access_log {self.access_log} fastkv;",
                              conf, count=1)
        if (n_up, n_listen, n_log) != (1, 1, 1):
            raise SystemExit("scaleout.py: fastkv.conf no longer has the least_conn / listen / "
                             f"access_log lines this test rewrites ({n_up}, {n_listen}, {n_log})")
        with open(os.path.join(workdir, "fastkv.conf"), "w") as f:
            f.write(conf)
        temp = os.path.join(workdir, "temp")
        os.makedirs(temp)
        temps = "\n".join(f"    {k}_temp_path {temp}/{k};"
                          for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        self.conf_path = os.path.join(workdir, "nginx.conf")
        with open(self.conf_path, "w") as f:
            f.write(f"""daemon off;
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {self.error_log} info;
events {{ worker_connections 256; }}
http {{
{temps}
    include {workdir}/fastkv.conf;
}}
""")
        os.chmod(workdir, 0o755)  # for nginx's worker (`nobody` when run as root)
        self.proc = None

    def cmd(self, *extra):
        return [self.binary, "-p", self.dir + "/", "-c", self.conf_path, "-e", self.error_log,
                *extra]

    def test_config(self):
        r = subprocess.run(self.cmd("-t"), capture_output=True, text=True, timeout=30)
        return r.returncode, r.stdout + r.stderr

    def start(self):
        self.proc = subprocess.Popen(self.cmd(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     preexec_fn=die_with_parent)
        until = time.monotonic() + 20
        while time.monotonic() < until and self.proc.poll() is None:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return True
            except OSError:
                time.sleep(0.02)
        return False

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # fast shutdown; the master ends its worker
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


class Outcome:
    def __init__(self, i, stream):
        self.i, self.stream = i, stream
        self.status = 0          # HTTP status, 0 when none came
        self.started = False     # the status line arrived (the answer had begun)
        self.ok = False
        self.error = ""


def one_request(port, i, stream, max_tokens):
    """A completion through nginx, checked whole: JSON with max_tokens tokens, or a stream of
    JSON events that ends with [DONE]."""
    o = Outcome(i, stream)
    body = json.dumps({"prompt": f"Once upon a time, request {i}", "max_tokens": max_tokens,
                       "ignore_eos": True, "temperature": 0, "stream": stream})
    conn = http.client.HTTPConnection(HOST, port, timeout=120)
    try:
        conn.request("POST", "/v1/completions", body=body,
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        o.started, o.status = True, r.status
        if r.status != 200:
            o.error = f"status {r.status}: {r.read()[:200]!r}"
            return o
        if not stream:
            j = json.loads(r.read())
            o.ok = j["usage"]["completion_tokens"] == max_tokens and "text" in j["choices"][0]
            if not o.ok:
                o.error = f"bad answer {j}"
            return o
        events, done = 0, False
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            data = line[len("data: "):]
            if data == "[DONE]":
                done = True
                break
            json.loads(data)
            events += 1
        o.ok = done and events > 0
        if not o.ok:
            o.error = f"stream cut off after {events} events"
    except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
        o.error = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    return o


def run_clients(port, n_requests, n_clients, max_tokens, first_id, progress=None):
    """n_clients threads, each sending its share of the requests one after another; every
    other request streams. Returns the outcomes in request order."""
    outcomes = [None] * n_requests
    lock = threading.Lock()

    def client(c):
        for k in range(c, n_requests, n_clients):
            if time_left() <= 0:
                return
            o = one_request(port, first_id + k, stream=(k % 2 == 1), max_tokens=max_tokens)
            with lock:
                outcomes[k] = o
                if progress is not None:
                    progress.append(k)

    threads = [threading.Thread(target=client, args=(c,), daemon=True) for c in range(n_clients)]
    return threads, outcomes


def join_all(threads):
    for t in threads:
        t.join(timeout=max(1, time_left()))


def main_loading(args):
    work = tempfile.mkdtemp(prefix="fastkv-loading-")
    replica = None
    try:
        fifo = os.path.join(work, "model.gguf")
        os.mkfifo(fifo)
        port, port2 = free_ports(2)
        # The load blocks opening the FIFO: the server is "loading" until we act.
        replica = Replica(args.fastkv, fifo, port, work, "loading", slots=2)
        replica.start()
        st, seen = 0, time.monotonic() + 30
        while time.monotonic() < seen and replica.proc.poll() is None:
            st, hdr, body = http_call(port, "GET", "/health", timeout=5)
            if st:
                break
            time.sleep(0.02)
        check(st == 503, f"/health while loading: 503 (got {st})")
        h = json.loads(body or b"{}")
        check(h.get("status") == "loading" and h.get("slots") == 2 and h.get("slots_free") == 2,
              f"/health body while loading says loading, 2 slots free: {h}")
        st, hdr, body = http_call(port, "POST", "/v1/completions", body=b'{"prompt":"x"}')
        err = json.loads(body or b"{}").get("error", {})
        check(st == 503 and "retry-after" in hdr and err.get("code") == "model_loading",
              f"/v1/completions while loading: 503 + Retry-After, code model_loading ({st} {err})")
        st, _, _ = http_call(port, "GET", "/v1/models")
        check(st == 503, f"/v1/models while loading: 503 (got {st})")
        check(replica.gauge("fastkv_ready") == 0, "/metrics while loading: fastkv_ready 0")
        t0 = time.monotonic()
        replica.proc.send_signal(signal.SIGTERM)
        try:
            rc = replica.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            rc = None
        check(rc == 0, f"SIGTERM while loading ends the server at once with status 0 (rc {rc}, "
                       f"{time.monotonic() - t0:.2f} s)")
        check("stopped while loading the model" in replica.log(), "it says it stopped loading")

        model = os.path.join(args.shared, "models", "stories260K.gguf")
        if not check(os.path.isfile(model), f"{model} exists (../shared)"):
            return 1
        replica = Replica(args.fastkv, model, port2, work, "ready", slots=2)
        replica.start()
        seen = replica.wait_health()
        check(seen is not None, f"/health turns 200 once the model is loaded (saw {seen})")
        st, _, body = http_call(port2, "GET", "/health")
        h = json.loads(body or b"{}")
        check(h.get("status") == "ok" and h.get("slots_free") == 2 and h.get("slots_busy") == 0,
              f"/health when ready: ok, 2 slots free: {h}")
        check(replica.gauge("fastkv_ready") == 1, "/metrics when ready: fastkv_ready 1")
        st, _, body = http_call(port2, "POST", "/v1/completions",
                                body=b'{"prompt":"Once","max_tokens":4}')
        check(st == 200, f"a completion once ready: 200 (got {st})")
        return 1 if failures else 0
    finally:
        if replica:
            replica.stop()
        shutil.rmtree(work, ignore_errors=True)


def find_nginx():
    for p in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if p and os.access(p, os.X_OK):
            return p
    return None


def main_nginx(args):
    nginx_bin = find_nginx()
    if not nginx_bin:
        print("SKIPPED: nginx is not installed (scripts/install-deps.sh installs Debian's "
              "nginx); the scale-out test needs it", flush=True)
        return SKIP
    model, max_tokens = find_model(args.source, args.shared)
    if not model:
        print("FAIL no model: neither SmolLM2-135M-Instruct.Q4_1.gguf ($FASTKV_MODEL_PATH, "
              "models/) nor ../shared/models/stories260K.gguf")
        return 1
    print(f"model {model}, {max_tokens} tokens per request, nginx {nginx_bin}", flush=True)
    work = tempfile.mkdtemp(prefix="fastkv-scaleout-")
    front_port, pa, pb = free_ports(3)
    replicas = [Replica(args.fastkv, model, pa, work, "a"), Replica(args.fastkv, model, pb, work,
                                                                  "b")]
    os.chmod(work, 0o755)  # run as root (CI), nginx's worker is `nobody`: it must get in
    os.makedirs(os.path.join(work, "nginx"))
    ngx = Nginx(nginx_bin, args.source, os.path.join(work, "nginx"), front_port, [pa, pb])
    try:
        rc, out = ngx.test_config()
        if not check(rc == 0, "nginx -t accepts deploy/nginx/fastkv.conf"):
            print(out)
            return 1
        for r in replicas:
            r.start()
        for r in replicas:
            if not check(r.wait_health() is not None, f"replica {r.name} (port {r.port}) ready"):
                print(r.log())
                return 1
        if not check(ngx.start(), f"nginx listens on {front_port}"):
            print(open(ngx.error_log).read())
            return 1

        # A: both replicas up.
        threads, outs = run_clients(front_port, 24, 6, max_tokens, 0)
        for t in threads:
            t.start()
        join_all(threads)
        bad = [o for o in outs if o is None or not o.ok]
        check(not bad, f"A: 24 requests from 6 clients all succeed "
                       f"({[(o.i, o.error) for o in bad if o] or len(bad)})")
        # A replica counts a request once its answer is written: the last ones may still be
        # counting when their clients are done.
        until = time.monotonic() + 10
        while True:
            counts = [r.completions_ok() for r in replicas]
            if sum(counts) >= 24 or time.monotonic() > until:
                break
            time.sleep(0.05)
        check(sum(counts) == 24, f"A: the replicas' counters add up to 24: {counts}")
        check(min(counts) >= 4, f"A: both replicas served a share (least_conn): {counts}")

        # B: kill replica b while requests wait in its queue.
        victim, survivor = replicas[1], replicas[0]
        progress = []
        threads, outs = run_clients(front_port, 24, 6, max_tokens, 100, progress)
        for t in threads:
            t.start()
        killed_at_done = None
        until = time.monotonic() + min(120, time_left())
        while time.monotonic() < until and any(t.is_alive() for t in threads):
            if len(progress) >= 4 and victim.gauge("fastkv_queue_length") >= 1:
                killed_at_done = len(progress)
                victim.kill()
                break
            time.sleep(0.005)
        check(killed_at_done is not None,
              f"B: replica b killed mid-run with requests in its queue "
              f"(after {killed_at_done} of 24 answers)")
        join_all(threads)
        done = [o for o in outs if o is not None]
        check(len(done) == 24, f"B: all 24 requests came back ({len(done)})")
        not_started_failed = [o for o in done if not o.ok and not o.started]
        started_failed = [o for o in done if not o.ok and o.started]
        check(not not_started_failed,
              "B: every request that had not started its answer succeeded "
              f"({[(o.i, o.error) for o in not_started_failed]})")
        check(len(started_failed) <= victim.slots,
              f"B: only answers already under way on the killed replica were cut off, at most "
              f"its {victim.slots} slot(s): {[(o.i, o.stream, o.error) for o in started_failed]}")
        check(all(o.stream for o in started_failed) and
              all(o.status == 200 for o in started_failed),
              "B: the cut-off ones are streams whose 200 had been sent")
        with open(ngx.access_log) as f:
            log = f.read()
        victim_addr, survivor_addr = f"{HOST}:{victim.port}", f"{HOST}:{survivor.port}"
        retried = re.findall(rf'"POST /v1/completions [^"]*" 200 .*upstream="{re.escape(victim_addr)}'
                             rf', {re.escape(survivor_addr)}"', log)
        check(len(retried) >= 1,
              f"B: nginx retried request(s) from the killed replica on the other: {len(retried)}")

        # C: restart b; it gets traffic again once /health says ready.
        victim.start()
        seen = victim.wait_health()
        check(seen is not None, f"C: restarted replica b answers /health 200 (saw {seen})")
        rounds, served, round_failures = 0, 0, []
        until = time.monotonic() + min(90, time_left())
        while time.monotonic() < until and served == 0:
            rounds += 1
            threads, outs = run_clients(front_port, 6, 6, max_tokens, 1000 + 10 * rounds)
            for t in threads:
                t.start()
            join_all(threads)
            round_failures += [(o.i, o.error) for o in outs if o is None or not o.ok]
            time.sleep(0.2)  # the counter follows the answer (see A)
            served = victim.completions_ok()
        check(served >= 1, f"C: replica b serves requests again ({served} after {rounds} rounds "
                           "of 6)")
        check(not round_failures, f"C: every request succeeded meanwhile ({round_failures})")

        # D: the body limit.
        st, _, body = http_call(front_port, "POST", "/v1/completions", body=b"x" * MAX_BODY)
        err = json.loads(body or b"{}").get("error", {}) if body.startswith(b"{") else {}
        check(st == 400 and err.get("type") == "invalid_request_error",
              f"D: a body of exactly {MAX_BODY} bytes passes nginx (the replica answers 400 JSON; "
              f"got {st})")
        st, _, body = http_call(front_port, "POST", "/v1/completions", body=b"x" * (MAX_BODY + 1))
        check(st == 413 and b"nginx" in body,
              f"D: one byte more gets nginx's own 413 (got {st} {body[:60]!r})")
        if failures:
            print("--- nginx error log\n" + open(ngx.error_log).read()[-3000:])
            print("--- nginx access log\n" + log[-4000:])
            for r in replicas:
                print(f"--- replica {r.name} log\n" + r.log()[-2000:])
        return 1 if failures else 0
    finally:
        ngx.stop()
        for r in replicas:
            r.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["loading", "nginx"])
    ap.add_argument("--fastkv", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    args.shared = os.environ.get("FASTKV_SHARED", args.shared)
    rc = main_loading(args) if args.mode == "loading" else main_nginx(args)
    if rc == 1:
        print(f"{len(failures)} check(s) failed: " + "; ".join(failures))
    return rc


if __name__ == "__main__":
    sys.exit(main())
