#!/usr/bin/python3
"""Side-by-side table of `fastkv run --json` results: the first file is the baseline (full KV),
each further file a compressed run (FastKV), with ratios against the baseline.

    scripts/compare-runs.py [--expect TEXT] BASELINE.json RUN.json [RUN.json ...]

--expect TEXT marks each answer as correct when it contains TEXT (case-insensitive).
Runs with Debian's /usr/bin/python3, standard library only. Exit 0 after printing the table,
whatever the answers; 1 when a file cannot be read.
"""
import argparse
import json
import sys


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"compare-runs: error: {path}: {e}")


def label(run):
    opts = run.get("options") or {}
    extra = " ".join(f"{k}={v}" for k, v in sorted(opts.items()))
    return run["method"] + (f" ({extra})" if extra else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expect", help="text a correct answer contains")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    if len(args.files) < 2:
        ap.error("give the baseline run and at least one other run")
    runs = [load(p) for p in args.files]
    base = runs[0]

    def answer(r):
        text = " ".join(r.get("text", "").split())
        return text if len(text) <= 48 else text[:45] + "..."

    def correct(r):
        if not args.expect:
            return "-"
        return "yes" if args.expect.lower() in r.get("text", "").lower() else "NO"

    mib = 1024 * 1024
    # (row name, value of a run as text, numeric value for the ratio, ratio's sense)
    # ratio sense: "up" = higher is better (speed), "down" = lower is better (time, memory).
    rows = [
        ("answer", lambda r: answer(r), None, None),
        (f"contains '{args.expect}'" if args.expect else "correct", correct, None, None),
        ("prompt tokens", lambda r: str(r["prompt_tokens"]), None, None),
        ("time to first token (s)", lambda r: f"{r['ttft_s']:.2f}", lambda r: r["ttft_s"], "down"),
        ("prefill (tokens/s)", lambda r: f"{r['prefill_tokens_per_s']:.0f}",
         lambda r: r["prefill_tokens_per_s"], "up"),
        ("decode (tokens/s)", lambda r: f"{r['decode_tokens_per_s']:.1f}",
         lambda r: r["decode_tokens_per_s"], "up"),
        ("tokens reaching the last layer",
         lambda r: f"{r['propagated']} of {r['prompt_tokens']}", lambda r: r["propagated"], "down"),
        ("KV cache after prefill (MiB)", lambda r: f"{r['kv_bytes'] / mib:.1f}",
         lambda r: r["kv_bytes"], "down"),
        ("prefill GFLOP", lambda r: f"{(r['linear_flops'] + r['attention_flops'] + r['scoring_flops']) / 1e9:.0f}",
         lambda r: r["linear_flops"] + r["attention_flops"] + r["scoring_flops"], "down"),
    ]
    header = ["", label(base)]
    for r in runs[1:]:
        header += [label(r), "vs " + base["method"]]
    table = [header]
    for name, text, value, sense in rows:
        line = [name, text(base)]
        for r in runs[1:]:
            line.append(text(r))
            if value is None:
                line.append("")
            else:
                b, v = value(base), value(r)
                if not b or not v:
                    line.append("-")
                else:
                    line.append(f"{(v / b if sense == 'up' else b / v):.2f}x "
                                + ("faster" if name.startswith(("time", "prefill (", "decode")) else "less"))
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for i, row in enumerate(table):
        print("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print()
    print(f"model: {base.get('model', '?')}  backend: {base.get('backend', '?')}")
    if args.expect:
        for r in runs[1:]:
            kept = args.expect.lower() in r.get("text", "").lower()
            base_ok = args.expect.lower() in base.get("text", "").lower()
            if not base_ok:
                print(f"note: the full-KV run did not answer '{args.expect}' either: this model "
                      "cannot answer this prompt, compression aside")
            elif kept:
                print(f"{label(r)} kept the answer while its KV cache is "
                      f"{base['kv_bytes'] / max(r['kv_bytes'], 1):.1f}x smaller and its first "
                      f"token came {base['ttft_s'] / max(r['ttft_s'], 1e-9):.2f}x sooner.")
            else:
                print(f"{label(r)} LOST the answer on this prompt (full KV has it): see "
                      "docs/accuracy.md for where FastKV's default settings lose facts on this "
                      "small model.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
