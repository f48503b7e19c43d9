#!/usr/bin/python3
"""Load benchmark of `fastkv serve` (standard library only).

For each KV method (--methods) and each concurrency N (--concurrency), starts a fresh
`fastkv serve --slots N --method M` on a free loopback port (or uses --url), sends N streaming
/v1/completions requests at once (greedy, ignore_eos, --max-tokens each, prompts of about
--prompt-tokens tokens cut from --text at different offsets so that no two are alike), and
reports:

  agg tok/s     every client's decode tokens (after its first) / (last token - first token of
                any client): the server's aggregate decode rate over the whole run, prefills
                of the later clients included
  steady tok/s  tokens streamed while all N were decoding (from the last client's first token
                to the first client's last) / that window: the batched decode rate alone
  TTFT p50/p99  request sent -> first token, over the N clients
  ITL p50/p99   gaps between consecutive streamed chunks (one token each, but for the rare
                chunk that completes a UTF-8 character), over every client's gaps
  tok/cpu-s     every client's completion tokens / the server's CPU seconds (user + system,
                /proc/PID/stat) during the run, prefills included: steadier than the rates on
                a loaded machine (n/a with --url)
  peak RSS      the server's VmHWM (/proc/PID/status) after the run (fresh server per row;
                n/a with --url)

    scripts/serve-bench.py -m models/SmolLM2-135M-Instruct.Q4_1.gguf \\
        --concurrency 1,2,4,8 --prompt-tokens 4096 --max-tokens 64 --methods full,fastkv

Timings depend on the machine's load: run it on a quiet machine, and compare rows of one run.
"""
import argparse
import http.client
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` (all its threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def vm_hwm_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


class Server:
    """`fastkv serve` as a child process on a free loopback port."""

    def __init__(self, fastkv, model, slots, method, ctx, threads, extra):
        self.err_path = f"/tmp/serve-bench-{os.getpid()}-{slots}-{method}.err"
        argv = [fastkv, "serve", "-m", model, "--port", "0", "--slots", str(slots),
                "--method", method, "--queue", "0"]
        if ctx:
            argv += ["-c", str(ctx)]
        if threads:
            argv += ["-t", str(threads)]
        argv += extra
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=self.err)
        self.url = None
        until = time.time() + 300
        while time.time() < until:
            with open(self.err_path) as f:
                m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", f.read())
            if m:
                self.url = m.group(1)
                break
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        if not self.url:
            self.stop()
            with open(self.err_path) as f:
                sys.exit("serve-bench: the server did not start:\n" + f.read())
        # Ready once /health answers 200 (the model is loaded).
        while time.time() < until:
            try:
                status, _ = get(self.url, "/health")
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit("serve-bench: the server did not become ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        os.unlink(self.err_path)


def get(url, path):
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


def stream_one(url, body, out, start_barrier):
    """One streamed completion: records send time, chunk times, usage."""
    u = urllib.parse.urlparse(url)
    data = json.dumps(body).encode()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=3600)
    start_barrier.wait()
    t0 = time.monotonic()
    conn.request("POST", "/v1/completions", body=data,
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    out["t0"] = t0
    out["times"] = []
    out["status"] = resp.status
    if resp.status != 200:
        out["error"] = resp.read().decode(errors="replace")
        conn.close()
        return
    buf = b""
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        payload = line[6:]
        if payload == b"[DONE]":
            break
        j = json.loads(payload)
        if j.get("usage"):
            out["usage"] = j["usage"]
        ch = j.get("choices") or []
        if ch and ch[0].get("text"):
            out["times"].append(time.monotonic())
    conn.close()


def run_level(url, n, prompts, max_tokens, method_body):
    outs = [dict() for _ in range(n)]
    barrier = threading.Barrier(n)
    threads = []
    for i in range(n):
        body = {"prompt": prompts[i % len(prompts)], "max_tokens": max_tokens, "temperature": 0,
                "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}}
        if method_body:
            body["kv_compression"] = method_body
        t = threading.Thread(target=stream_one, args=(url, body, outs[i], barrier))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    bad = [o for o in outs if o.get("status") != 200]
    if bad:
        sys.exit(f"serve-bench: a request failed: {bad[0].get('status')} {bad[0].get('error', '')}")
    ttft = [o["times"][0] - o["t0"] for o in outs if o["times"]]
    itl = []
    for o in outs:
        itl += [b - a for a, b in zip(o["times"], o["times"][1:])]
    firsts = [o["times"][0] for o in outs if o["times"]]
    lasts = [o["times"][-1] for o in outs if o["times"]]
    decode_tokens = sum(o["usage"]["completion_tokens"] - 1 for o in outs)
    span = max(lasts) - min(firsts)
    agg = decode_tokens / span if span > 0 else float("nan")
    # Steady state: every client decoding.
    w0, w1 = max(firsts), min(lasts)
    steady = float("nan")
    if w1 > w0:
        in_window = sum(1 for o in outs for t in o["times"] if w0 < t <= w1)
        steady = in_window / (w1 - w0)
    prompt_tokens = sum(o["usage"]["prompt_tokens"] for o in outs) / n
    return {"clients": n, "prompt_tokens": prompt_tokens,
            "completion_tokens": sum(o["usage"]["completion_tokens"] for o in outs),
            "agg_tok_s": agg, "steady_tok_s": steady,
            "ttft_p50": percentile(ttft, 50), "ttft_p99": percentile(ttft, 99),
            "itl_p50": percentile(itl, 50), "itl_p99": percentile(itl, 99)}


def make_prompts(text_path, approx_tokens, count):
    with open(text_path, errors="replace") as f:
        words = f.read().split()
    n_words = max(1, int(approx_tokens * 0.72))  # English prose: about 1.4 tokens per word
    if len(words) < n_words:
        words = words * (n_words // max(1, len(words)) + 1)
    prompts = []
    for i in range(count):
        start = (i * 997) % max(1, len(words) - n_words)
        chunk = words[start:start + n_words]
        prompts.append(" ".join(chunk) + "\n\nSummarise the text above.")
    return prompts


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-m", "--model", help="GGUF model (starts a server per row)")
    ap.add_argument("--url", help="use a running server instead (one row per concurrency)")
    ap.add_argument("--fastkv", default=os.path.join(ROOT, "build", "fastkv"))
    ap.add_argument("--concurrency", default="1,2,4,8")
    ap.add_argument("--methods", default="full,fastkv",
                    help="comma-separated --method values (with --url: kv_compression methods)")
    ap.add_argument("--prompt-tokens", type=int, default=1024)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--text", default="/usr/share/common-licenses/GPL-3")
    ap.add_argument("-c", "--ctx-size", type=int, default=0)
    ap.add_argument("-t", "--threads", type=int, default=0)
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra argument for fastkv serve (repeatable)")
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args()
    if not a.model and not a.url:
        ap.error("give -m MODEL or --url URL")
    levels = [int(x) for x in a.concurrency.split(",") if x]
    if not levels or min(levels) < 1:
        ap.error("--concurrency: positive integers, e.g. 1,2,4,8")
    methods = [m for m in a.methods.split(",") if m]
    prompts = make_prompts(a.text, a.prompt_tokens, max(levels))
    ctx = a.ctx_size or (a.prompt_tokens * 2 + a.max_tokens + 256)
    rows = []
    hdr = (f"{'method':<8} {'N':>3} {'prompt':>7} {'agg tok/s':>10} {'steady tok/s':>13} "
           f"{'TTFT p50':>9} {'TTFT p99':>9} {'ITL p50':>8} {'ITL p99':>8} {'tok/cpu-s':>9} "
           f"{'peak RSS':>9}")
    print(hdr, flush=True)
    for method in methods:
        for n in levels:
            srv = None
            if a.url:
                url, pid = a.url, None
                body = {"method": method}
            else:
                srv = Server(a.fastkv, a.model, n, method, ctx, a.threads, a.serve_arg)
                url, pid = srv.url, srv.proc.pid
                body = None
            try:
                cpu0 = cpu_seconds(pid) if pid else float("nan")
                r = run_level(url, n, prompts, a.max_tokens, body)
                r["cpu_s"] = cpu_seconds(pid) - cpu0 if pid else float("nan")
                r["tok_per_cpu_s"] = r["completion_tokens"] / r["cpu_s"] if r["cpu_s"] > 0 else float("nan")
                r["peak_rss_mib"] = vm_hwm_mib(pid) if pid else float("nan")
            finally:
                if srv:
                    srv.stop()
            r["method"] = method
            rows.append(r)
            print(f"{method:<8} {n:>3} {r['prompt_tokens']:>7.0f} {r['agg_tok_s']:>10.2f} "
                  f"{r['steady_tok_s']:>13.2f} {r['ttft_p50']:>8.2f}s {r['ttft_p99']:>8.2f}s "
                  f"{r['itl_p50'] * 1000:>6.0f}ms {r['itl_p99'] * 1000:>6.0f}ms "
                  f"{r['tok_per_cpu_s']:>9.1f} {r['peak_rss_mib']:>6.0f}MiB", flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
