#!/usr/bin/env python3
"""The agent under load: requests per second with 1, 8 and 64 concurrent
clients (bench/agent_load.c: one request per connection, as the plugin
sends it, back to back), their p50 and p99 latency, the errors, and the
agent's resident memory when idle (after start) and after the load.

With --baseline DIR, the agent of another build tree (e.g. main before a
change) is measured too, in alternating blocks in the same run, and the
ratios new/baseline are printed.

Targets (issue 13): >= 30k requests/s with 8 clients, p99 < 1 ms, 64
clients with 0 errors, idle RSS unchanged (2.6 MiB).
"""
import os
import subprocess
import sys
import tempfile
import time

import benchlib as B

HERE = os.path.dirname(os.path.abspath(__file__))


def build_load(outdir):
    out = os.path.join(outdir, "agent_load")
    r = subprocess.run([os.environ.get("CC", "cc"), "-O2", "-Wall", "-pthread",
                        "-o", out, os.path.join(HERE, "agent_load.c")],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("cannot build agent_load.c:\n" + r.stderr)
    return out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def load(loader, env, clients, seconds):
    r = subprocess.run([loader, env.agent_socket, B.ACCOUNT, str(clients),
                        str(seconds)], capture_output=True, text=True,
                       timeout=seconds + 60)
    if r.returncode != 0:
        raise RuntimeError("agent_load failed: " + r.stderr[-500:])
    return dict(kv.split("=") for kv in r.stdout.split())


def measure(env, mailoauth, loader, seconds):
    env.mailoauth = mailoauth
    env.start_agent()
    try:
        time.sleep(1.0)
        idle = rss_kib(env.agent.pid)
        out = {"idle_rss_kib": idle}
        load(loader, env, 1, 1)   # warm: the token is in the agent's cache
        for clients in (1, 8, 64):
            out[clients] = load(loader, env, clients, seconds)
        out["loaded_rss_kib"] = rss_kib(env.agent.pid)
    finally:
        env.stop_agent()
    return out


def main():
    p = B.arg_parser(__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=5.0,
                   help="seconds per load block (default 5)")
    p.add_argument("--rounds", type=int, default=2,
                   help="blocks per arm (default 2; the best is kept)")
    p.add_argument("--baseline", help="another build tree whose agent is "
                   "measured in the same run")
    args = p.parse_args()
    top = B.builddir(args)
    arms = [("new", os.path.join(top, "mailoauth"))]
    if args.baseline:
        arms.append(("baseline", os.path.join(os.path.abspath(args.baseline),
                                              "mailoauth")))
    tmp = tempfile.mkdtemp(prefix="mailoauth-bench-agent-")
    loader = build_load(tmp)
    best = {}
    with B.BenchEnv(top, dovecot=False, keep=args.keep) as env:
        env.login()
        env.token_ok()
        for rnd in range(args.rounds):
            order = arms if rnd % 2 == 0 else arms[::-1]
            for name, binary in order:
                m = measure(env, binary, loader, args.seconds)
                print("%-8s round %d: idle RSS %d KiB, after load %d KiB"
                      % (name, rnd + 1, m["idle_rss_kib"],
                         m["loaded_rss_kib"]), flush=True)
                for c in (1, 8, 64):
                    r = m[c]
                    print("    %2d clients: %6s req/s  p50 %5s us  p99 %6s us"
                          "  max %7s us  errors %s of %s"
                          % (c, r["rps"], r["p50_us"], r["p99_us"],
                             r["max_us"], r["errors"], r["requests"]),
                          flush=True)
                b = best.setdefault(name, {"idle_rss_kib": m["idle_rss_kib"],
                                           "errors64": 0})
                b["idle_rss_kib"] = min(b["idle_rss_kib"], m["idle_rss_kib"])
                b["errors64"] += int(m[64]["errors"])
                for c in (1, 8, 64):
                    if float(m[c]["rps"]) > float(b.get(c, {"rps": "0"})["rps"]):
                        b[c] = m[c]
    os.system("rm -rf '%s'" % tmp)
    n = best["new"]
    B.result("agent.rps1", n[1]["rps"])
    B.result("agent.rps8", n[8]["rps"])
    B.result("agent.p99_8_ms", "%.3f" % (int(n[8]["p99_us"]) / 1000))
    B.result("agent.rps64", n[64]["rps"])
    B.result("agent.errors64", n["errors64"])
    B.result("agent.idle_rss_mib", "%.2f" % (n["idle_rss_kib"] / 1024))
    if "baseline" in best:
        o = best["baseline"]
        B.result("agent.base_rps8", o[8]["rps"])
        B.result("agent.base_p99_8_ms", "%.3f" % (int(o[8]["p99_us"]) / 1000))
        B.result("agent.base_idle_rss_mib", "%.2f" % (o["idle_rss_kib"] / 1024))
        B.result("agent.rps8_ratio", "%.2f" % (float(n[8]["rps"]) /
                                               float(o[8]["rps"])))


if __name__ == "__main__":
    sys.exit(main())
