#!/usr/bin/python3
"""Measures what FastKV saves on a real model and how closely its greedy output follows full KV.

Runs `fastkv run --json` once with full KV and once per (retain_rate, tsp_rate) setting on the
same long prompt (the start of /usr/share/common-licenses/GPL-3, present on every Debian machine,
plus a question), and prints a Markdown table: prefill FLOPs and KV bytes relative to full, and the
number of generated tokens identical to full's before the first divergence. (Times are left
out: they belong to `fastkv bench`, which repeats and interleaves runs on a noisy machine.)

Uses Debian's /usr/bin/python3 standard library only.

  scripts/fastkv-report.py [--fastkv build/fastkv] [--model models/SmolLM2-135M-Instruct.Q4_1.gguf]
                           [--chars 8000] [-n 48]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

SETTINGS = [(0.1, 0.2), (0.1, 0.4), (0.2, 0.2), (0.2, 0.4)]  # (retain_rate, tsp_rate)


def run(args, method_flags, out_json):
    cmd = [args.fastkv, "run", "-m", args.model, "--chat", "-f", args.prompt_file,
           "-n", str(args.n), "--temp", "0", "--json", out_json] + method_flags
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit("fastkv-report: %s failed:\n%s" % (" ".join(cmd), proc.stderr))
    with open(out_json) as f:
        return json.load(f)


def agreement(a, b):
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def main():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--fastkv", default=os.path.join(repo, "build", "fastkv"))
    p.add_argument("--model", default=os.path.join(repo, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    p.add_argument("--chars", type=int, default=8000, help="characters of GPL-3 in the prompt")
    p.add_argument("-n", type=int, default=48, help="tokens to generate")
    args = p.parse_args()
    with open("/usr/share/common-licenses/GPL-3") as f:
        text = f.read()[: args.chars]
    text += ("\n\nQuestion: according to the license above, what must you do when you convey "
             "the program in object code form? Answer briefly.")
    with tempfile.TemporaryDirectory() as tmp:
        args.prompt_file = os.path.join(tmp, "prompt.txt")
        with open(args.prompt_file, "w") as f:
            f.write(text)
        full = run(args, ["--method", "full"], os.path.join(tmp, "full.json"))
        rows = []
        for retain, tsp in SETTINGS:
            r = run(args, ["--method", "fastkv", "--retain-rate", str(retain), "--tsp-rate", str(tsp)],
                    os.path.join(tmp, "fastkv.json"))
            rows.append((retain, tsp, r))

    def flops(r):
        return r["linear_flops"] + r["attention_flops"] + r["scoring_flops"]

    print("Model: `%s`, prompt: %d tokens (chat template), %d greedy tokens, TSP layer: default "
          "(floor(L/2) - 1), window 8, kernel 7, max-pool.\n" % (
              os.path.basename(args.model), full["prompt_tokens"], args.n))
    print("| method | retain | tsp | prefill FLOPs vs full | KV bytes held | KV vs full | "
          "tokens propagated | identical tokens before first divergence |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    print("| full | 1 | 1 | 100%% | %d | 100%% | %d | %d of %d |" % (
        full["kv_bytes"], full["propagated"], len(full["generated_ids"]), len(full["generated_ids"])))
    for retain, tsp, r in rows:
        print("| fastkv | %g | %g | %.1f%% | %d | %.1f%% | %d | %d of %d |" % (
            retain, tsp, 100.0 * flops(r) / flops(full), r["kv_bytes"],
            100.0 * r["kv_bytes"] / full["kv_bytes"], r["propagated"],
            agreement(r["generated_ids"], full["generated_ids"]), len(full["generated_ids"])))
    print("\nFull-KV answer: %s" % json.dumps(full["text"]))


if __name__ == "__main__":
    main()
