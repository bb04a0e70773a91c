#!/usr/bin/env python3
"""Login cost: XOAUTH2 through libmailoauth.so versus PLAIN with a static
password, same Dovecot, same client, measured in one run.

(a) imtest (cyrus-clients), a new process per login: the plugin has no
    cache to reuse, so `mailoauth get` runs for every XOAUTH2 login.
    Arms, interleaved (order alternating every repetition):
      PLAIN    imtest -m PLAIN -w PASSWORD
      XOAUTH2  imtest -m XOAUTH2 (plugin -> mailoauth get -> cached token)
    Also timed alone, same loop: `mailoauth get` answering the plugin's
    request (what the plugin waits for), for "where the time goes".
    Target (issue 4): XOAUTH2 / PLAIN <= 1.3x.

(b) bench/sasl_login_loop, one long-lived process logging in N times, as a
    Postfix smtp process does; the plugin's in-process cache is warm after
    the first XOAUTH2 login.  Arms, interleaved (rotating order):
      plain    AUTHENTICATE PLAIN through libsasl2
      xoauth2  AUTHENTICATE XOAUTH2 through libsasl2 and the plugin
      raw      AUTHENTICATE XOAUTH2 built by the client from the store file
               read in-process for every login, no plugin: what a plugin
               that reads its token file costs, and the server-side floor
               (Dovecot validates every bearer token with the provider)
    Target: xoauth2 / plain <= 1.05x.

Every login must succeed ("Authenticated." / tagged OK); failures are
counted and reported.  Medians over --reps repetitions (default 60).
"""
import os
import subprocess
import sys
import tempfile
import time

import benchlib as B

GET_REQUEST = ("version=1\naccount=%s\nprotocol=imap\nhost=localhost\n"
               "mechanism=XOAUTH2\n\n" % B.ACCOUNT).encode()


def helper_get_once(env):
    t0 = time.perf_counter()
    r = subprocess.run([env.mailoauth, "get"], input=GET_REQUEST,
                       env=env.env(False), capture_output=True, timeout=30)
    t1 = time.perf_counter()
    ok = r.returncode == 0 and b"access_token=" in r.stdout
    return t1 - t0, ok


def part_a(env, reps):
    print("\n(a) imtest, a new process per login (the helper runs for every "
          "XOAUTH2 login)")
    for _ in range(3):                       # warm-up, not counted
        for mech in ("PLAIN", "XOAUTH2"):
            env.imtest_once(mech)
    times = {"PLAIN": [], "XOAUTH2": [], "get": []}
    fails = {"PLAIN": 0, "XOAUTH2": 0, "get": 0}
    first_error = {}
    pairs = []                   # XOAUTH2/PLAIN of the same repetition
    before = env.idp.counters()
    for i in range(reps):
        this = {}
        order = ("PLAIN", "XOAUTH2", "get") if i % 2 == 0 else \
            ("get", "XOAUTH2", "PLAIN")
        for arm in order:
            if arm == "get":
                dt, ok = helper_get_once(env)
                why = "mailoauth get failed"
            else:
                dt, ok, why = env.imtest_once(arm)
            if ok:
                times[arm].append(dt)
                this[arm] = dt
            else:
                fails[arm] += 1
                first_error.setdefault(arm, why)
        if "PLAIN" in this and "XOAUTH2" in this:
            pairs.append(this["XOAUTH2"] / this["PLAIN"])
    after = env.idp.counters()
    refreshes = after.get("grant:refresh_token", 0) - \
        before.get("grant:refresh_token", 0)
    for arm, label in (("PLAIN", "imtest PLAIN"),
                       ("XOAUTH2", "imtest XOAUTH2 via plugin + helper"),
                       ("get", "  of which: `mailoauth get` alone")):
        print(B.summary_line(label, times[arm]))
    for arm, why in first_error.items():
        print("  %s: %d failed, first: %s" % (arm, fails[arm], why))
    p, x, g = (B.median(times[k]) for k in ("PLAIN", "XOAUTH2", "get"))
    ratio = x / p
    print("ratio XOAUTH2/PLAIN (imtest):          %.3fx   (target <= 1.3x)"
          % ratio)
    print("median of per-repetition ratios:       %.3fx   (same moment, "
          "less sensitive to load drift)" % B.median(pairs))
    print("difference XOAUTH2-PLAIN: %s; `mailoauth get` alone: %s"
          % (B.fmt_ms(x - p), B.fmt_ms(g)))
    print("refresh requests during (a): %d (expected 0: the token is valid)"
          % refreshes)
    B.result("login.imtest.plain_ms", "%.2f" % (p * 1e3))
    B.result("login.imtest.xoauth2_ms", "%.2f" % (x * 1e3))
    B.result("login.imtest.helper_get_ms", "%.2f" % (g * 1e3))
    B.result("login.imtest.ratio", "%.3f" % ratio)
    B.result("login.imtest.paired_ratio", "%.3f" % B.median(pairs))
    B.result("login.imtest.failures", "%d" % (fails["PLAIN"] + fails["XOAUTH2"]))
    return fails["PLAIN"] + fails["XOAUTH2"] + fails["get"]


def part_b(env, reps, loop_bin):
    print("\n(b) one long-lived libsasl2 client, %d logins per arm from one "
          "process (plugin cache warm after the first)" % reps)
    n = reps + 3                 # iterations 0-2: warm-up (0 is the cold one)
    before = env.idp.counters()
    r = subprocess.run([loop_bin, "--port", str(env.dovecot.ports["imap"]),
                        "--user", B.ACCOUNT, "--pass", B.PASSWORD,
                        "--store-file", env.store_file, "-n", str(n),
                        "plain", "xoauth2", "raw"],
                       env=env.env(), capture_output=True, text=True,
                       timeout=30 + 3 * n)
    after = env.idp.counters()
    times = {"plain": [], "xoauth2": [], "raw": []}
    fails = {"plain": 0, "xoauth2": 0, "raw": 0}
    cold = None
    by_it = {}
    for line in r.stdout.splitlines():
        arm, it, login_us, _total_us, ok = line.split()
        it, login_us, ok = int(it), int(login_us), ok == "1"
        if not ok:
            fails[arm] += 1
            continue
        if arm == "xoauth2" and it == 0:
            cold = login_us / 1e6
        if it >= 3:
            times[arm].append(login_us / 1e6)
            by_it.setdefault(it, {})[arm] = login_us / 1e6
    pairs = {k: [d[k] / d["plain"] for d in by_it.values()
                 if k in d and "plain" in d] for k in ("xoauth2", "raw")}
    if r.returncode != 0:
        print("  sasl_login_loop exit %d; its errors:\n  %s" % (
            r.returncode, "\n  ".join(r.stderr.strip().splitlines()[-5:])))
    for arm, label in (("plain", "loop PLAIN"),
                       ("xoauth2", "loop XOAUTH2 via plugin (warm cache)"),
                       ("raw", "loop XOAUTH2 raw (token file, no plugin)")):
        print(B.summary_line(label, times[arm]))
    if cold is not None:
        print("first XOAUTH2 login of the process (cold, runs the helper): %s"
              % B.fmt_ms(cold))
    p, x, w = (B.median(times[k]) for k in ("plain", "xoauth2", "raw"))
    print("ratio XOAUTH2/PLAIN (long-lived):      %.3fx   (target <= 1.05x)"
          % (x / p))
    print("median of per-iteration ratios:        %.3fx   (same moment, "
          "less sensitive to load drift)" % B.median(pairs["xoauth2"]))
    print("ratio raw-XOAUTH2/PLAIN (server floor): %.3fx   (per-iteration "
          "%.3fx)" % (w / p, B.median(pairs["raw"])))
    print("ratio XOAUTH2/raw-XOAUTH2 (plugin):    %.3fx" % (x / w))
    print("introspection requests Dovecot made: %d (one per bearer login)"
          % (after.get("introspect", 0) - before.get("introspect", 0)))
    B.result("login.loop.plain_ms", "%.2f" % (p * 1e3))
    B.result("login.loop.xoauth2_ms", "%.2f" % (x * 1e3))
    B.result("login.loop.raw_ms", "%.2f" % (w * 1e3))
    B.result("login.loop.ratio", "%.3f" % (x / p))
    B.result("login.loop.raw_ratio", "%.3f" % (w / p))
    B.result("login.loop.paired_ratio", "%.3f" % B.median(pairs["xoauth2"]))
    B.result("login.loop.failures", "%d" % sum(fails.values()))
    return sum(fails.values())


def main():
    ap = B.arg_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--loop-bin", help="a built bench/sasl_login_loop "
                    "(default: compile it into the work directory)")
    ap.add_argument("--only", choices=("a", "b"), help="run only one part")
    args = ap.parse_args()
    top = B.builddir(args)
    B.check_reps(args)
    if not os.path.exists(B.IMTEST):
        sys.exit("%s is missing (install cyrus-clients)" % B.IMTEST)
    print("login.py: %d repetitions per arm; build tree %s" % (args.reps, top))
    failures = 0
    with tempfile.TemporaryDirectory(prefix="mailoauth-bench-bin-") as tmp, \
            B.BenchEnv(top, keep=args.keep) as env:
        loop_bin = args.loop_bin
        if not loop_bin and args.only != "a":
            loop_bin = B.build_loop(tmp)
        env.login()
        env.token_ok()
        if args.only != "b":
            failures += part_a(env, args.reps)
        if args.only != "a":
            failures += part_b(env, args.reps, loop_bin)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
