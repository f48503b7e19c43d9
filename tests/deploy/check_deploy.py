#!/usr/bin/env python3
"""The deployment files of deploy/ (docs/deploy.md), checked without deploying anything.

  check_deploy.py files --fastkv BIN --source DIR
      deploy/k8s/*.yaml parse as YAML (Debian's python3-yaml) and say what docs/deploy.md
      promises: a Deployment whose startup, readiness and liveness probes all GET /health on
      the container's port, with CPU and memory requests and limits (requests <= limits), that
      runs `fastkv serve` on that port with its engine's threads (-t) within its CPU limit, and a Service
      whose selector picks the Deployment's pods and whose targetPort is that port. The body
      limits agree: the pods' --max-body, nginx's client_max_body_size and `fastkv serve`'s
      default --max-body (from the binary's --help). deploy/systemd/fastkv@.service passes
      `systemd-analyze verify` as fastkv@8081.service (ExecStart pointed at the built binary)
      and serves port %i on loopback.

  check_deploy.py schema --source DIR
      deploy/k8s/*.yaml against the Kubernetes API schemas (1.28 and 1.37, strict: unknown
      fields are errors) with the pinned kubernetes-validate that
      scripts/install-deploy-tools.sh installs; exits 77 (CTest's "skipped"), saying so, when
      it is not installed.
"""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)
    return cond


def quantity(q):
    """A Kubernetes quantity ("4", "500m", "2Gi", "1G") as a number."""
    m = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|Ti|k|M|G|T)?", str(q))
    if not m:
        raise ValueError(f"not a quantity: {q!r}")
    scale = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10,
             "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}[m.group(2)]
    return float(m.group(1)) * scale


def nginx_size(v):
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", v)
    return int(m.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[m.group(2).lower()]


def flag(args, name):
    """The value after `name` in an argument list, or None."""
    return args[args.index(name) + 1] if name in args else None


def check_k8s(source, serve_default_max_body, nginx_max_body):
    import yaml  # python3-yaml

    docs = []
    for path in sorted(glob.glob(os.path.join(source, "deploy", "k8s", "*.yaml"))):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d is not None:
                    docs.append((os.path.basename(path), d))
    check(len(docs) >= 2, f"deploy/k8s/ holds at least a Deployment and a Service ({len(docs)})")
    for name, d in docs:
        check(all(k in d for k in ("apiVersion", "kind", "metadata")) and
              "name" in d.get("metadata", {}), f"{name}: apiVersion, kind, metadata.name")
    deps = [d for _, d in docs if d.get("kind") == "Deployment"]
    svcs = [d for _, d in docs if d.get("kind") == "Service"]
    if not (check(len(deps) == 1, "one Deployment") and check(len(svcs) == 1, "one Service")):
        return
    dep, svc = deps[0], svcs[0]
    pod_labels = dep["spec"]["template"]["metadata"].get("labels", {})
    sel = dep["spec"]["selector"].get("matchLabels", {})
    check(sel and sel.items() <= pod_labels.items(),
          f"Deployment selector {sel} picks its pods {pod_labels}")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    args = [str(a) for a in c.get("command", []) + c.get("args", [])]
    check("serve" in args, f"the container runs `fastkv serve`: {args}")
    port = int(flag(args, "--port") or 8080)
    check(port in ports.values(), f"--port {port} is a containerPort {ports}")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        g = c.get(probe, {}).get("httpGet", {})
        p = g.get("port")
        check(g.get("path") == "/health" and (ports.get(p) == port or p == port),
              f"{probe}: GET /health on port {port} ({g})")
    res = c.get("resources", {})
    for kind in ("cpu", "memory"):
        req, lim = res.get("requests", {}).get(kind), res.get("limits", {}).get(kind)
        check(req is not None and lim is not None and quantity(req) <= quantity(lim),
              f"resources: {kind} request {req} <= limit {lim}")
    # One engine thread runs every slot's request (batched decoding) on -t OpenMP threads.
    threads = int(flag(args, "-t") or 0)
    cpu = quantity(res.get("limits", {}).get("cpu", 0))
    check(threads > 0 and threads <= cpu, f"-t {threads} threads fit the CPU limit {cpu}")
    max_body = int(flag(args, "--max-body") or serve_default_max_body)
    check(max_body == nginx_max_body == serve_default_max_body,
          f"body limits agree: pods' --max-body {max_body}, nginx client_max_body_size "
          f"{nginx_max_body}, fastkv serve's default {serve_default_max_body}")
    ssel = svc["spec"].get("selector", {})
    check(ssel and ssel.items() <= pod_labels.items(),
          f"Service selector {ssel} picks the Deployment's pods")
    for sp in svc["spec"].get("ports", []):
        t = sp.get("targetPort")
        check(ports.get(t) == port or t == port, f"Service port {sp.get('port')} -> {t} = {port}")


def check_systemd(source, fastkv):
    unit = os.path.join(source, "deploy", "systemd", "fastkv@.service")
    with open(unit) as f:
        text = f.read()
    execs = re.findall(r"^ExecStart=(.*)$", text, re.M)
    check(len(execs) == 1 and "--port %i" in execs[0] and "--host 127.0.0.1" in execs[0]
          and " serve " in execs[0], f"the unit serves port %i on loopback: {execs}")
    analyze = shutil.which("systemd-analyze")
    if not check(analyze is not None, "systemd-analyze is installed (Debian's systemd)"):
        return
    work = tempfile.mkdtemp(prefix="fastkv-unit-")
    try:
        # The unit as installed, except that ExecStart names the binary just built (verify
        # checks that it is executable).
        with open(os.path.join(work, "fastkv@.service"), "w") as f:
            f.write(text.replace("/usr/local/bin/fastkv", os.path.abspath(fastkv)))
        r = subprocess.run([analyze, "verify", "fastkv@8081.service"], cwd=work,
                           capture_output=True, text=True, timeout=60)
        # verify exits 0 on some problems it only warns about ("Unknown key"): any line about
        # our unit fails too; lines about the host's own units are not ours to judge.
        ours = [l for l in (r.stdout + r.stderr).splitlines() if "fastkv@" in l]
        check(r.returncode == 0 and not ours,
              f"systemd-analyze verify fastkv@8081.service (rc {r.returncode}) {ours}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main_files(args):
    r = subprocess.run([args.fastkv, "serve", "--help"], capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"--max-body \w+=(\d+)", r.stdout)
    if not check(m is not None, "`fastkv serve --help` shows the default --max-body"):
        return 1
    with open(os.path.join(args.source, "deploy", "nginx", "fastkv.conf")) as f:
        n = re.search(r"^\s*client_max_body_size (\w+);", f.read(), re.M)
    if not check(n is not None, "deploy/nginx/fastkv.conf sets client_max_body_size"):
        return 1
    check_k8s(args.source, int(m.group(1)), nginx_size(n.group(1)))
    check_systemd(args.source, args.fastkv)
    return 1 if failures else 0


def main_schema(args):
    cache = os.environ.get("FASTKV_CACHE", os.path.join(args.source, ".cache"))
    tool = os.path.join(cache, "deploy-venv", "bin", "kubernetes-validate")
    if not os.access(tool, os.X_OK):
        print(f"SKIPPED: {tool} is not installed: run scripts/install-deploy-tools.sh "
              "(scripts/test.sh does) to check deploy/k8s/ against the Kubernetes schemas")
        return SKIP
    files = sorted(glob.glob(os.path.join(args.source, "deploy", "k8s", "*.yaml")))
    for version in ("1.28.0", "1.37.0"):
        r = subprocess.run([tool, "--strict", "-k", version, *files], capture_output=True,
                           text=True, timeout=120)
        check(r.returncode == 0 and "passed" in r.stdout,
              f"kubernetes-validate --strict -k {version}: {(r.stdout + r.stderr).strip()}")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mode", choices=["files", "schema"])
    ap.add_argument("--fastkv")
    ap.add_argument("--source", required=True)
    args = ap.parse_args()
    if args.mode == "files" and not args.fastkv:
        ap.error("files needs --fastkv")
    rc = main_files(args) if args.mode == "files" else main_schema(args)
    if rc == 1:
        print(f"{len(failures)} check(s) failed: " + "; ".join(failures))
    return rc


if __name__ == "__main__":
    sys.exit(main())
