#!/usr/bin/env python3
"""Login cost: XOAUTH2 through libmailoauth.so versus PLAIN with a static
password, same Dovecot, same client, measured in one run.

(a) imtest (cyrus-clients), a new process per login: the plugin has no
    cache to reuse.  Arms, interleaved (the order rotates every repetition):
      PLAIN    imtest -m PLAIN -w PASSWORD
      XOAUTH2  imtest -m XOAUTH2 (plugin -> mailoauth get -> cached token):
               the helper runs for every login.  Target: <= 1.3x PLAIN.
      agent    imtest -m XOAUTH2 with agent_socket in mailoauth.conf: the
               plugin asks a running `mailoauth agent` over its Unix socket,
               no process is started.  Target: <= 1.05x PLAIN.
    Also timed alone, same loop: `mailoauth get` answering the plugin's
    request, and one request to the agent over its socket (what the plugin
    waits for in each case), for "where the time goes".

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

Both parts run three times (--server-cache all, the default): first
against Dovecot as the end-to-end tests configure it, where the oauth2
passdb sends every bearer token to the provider's introspection endpoint
(an HTTPS request PLAIN does not pay); then against the same Dovecot with
its auth cache on for both passdbs, so a repeated token is checked from the
cache as a repeated password is; then against a Dovecot that validates each
token itself, as Exchange Online does: the fake provider's access tokens
are signed JWTs and the oauth2 passdb checks signature, expiry and user
locally (introspection_mode = local), with no cache and no request.  The
introspection requests the provider saw are counted in each phase.

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


def agent_ask_once(env):
    """One request to the agent over its socket, as the plugin sends it;
    the reply (it holds the token) is only searched."""
    t0 = time.perf_counter()
    try:
        data = B.ask_agent(env.agent_socket, GET_REQUEST)
    except OSError:
        data = b""
    t1 = time.perf_counter()
    return t1 - t0, b"access_token=" in data


def introspections(env):
    return env.idp.counters().get("introspect", 0)


ARMS_A = (("PLAIN", "imtest PLAIN"),
          ("XOAUTH2", "imtest XOAUTH2 via plugin + helper"),
          ("agent", "imtest XOAUTH2 via plugin + agent"),
          ("get", "  `mailoauth get` alone"),
          ("ask", "  one request to the agent alone"))


def part_a(env, reps, prefix):
    print("\n(a) imtest, a new process per login (the plugin's cache is "
          "empty: it runs the helper, or asks the agent)")
    for _ in range(3):                       # warm-up, not counted
        for mech, agent in (("PLAIN", False), ("XOAUTH2", False),
                            ("XOAUTH2", True)):
            env.imtest_once(mech, agent=agent)
    arms = [a for a, _ in ARMS_A]
    times = {a: [] for a in arms}
    fails = {a: 0 for a in arms}
    first_error = {}
    pairs = {"XOAUTH2": [], "agent": []}   # arm/PLAIN of the same repetition
    before = env.idp.counters()
    for i in range(reps):
        this = {}
        for j in range(len(arms)):
            arm = arms[(i + j) % len(arms)]
            if arm == "get":
                dt, ok = helper_get_once(env)
                why = "mailoauth get failed"
            elif arm == "ask":
                dt, ok = agent_ask_once(env)
                why = "no token from the agent"
            else:
                dt, ok, why = env.imtest_once(
                    "PLAIN" if arm == "PLAIN" else "XOAUTH2",
                    agent=arm == "agent")
            if ok:
                times[arm].append(dt)
                this[arm] = dt
            else:
                fails[arm] += 1
                first_error.setdefault(arm, why)
        for arm in pairs:
            if "PLAIN" in this and arm in this:
                pairs[arm].append(this[arm] / this["PLAIN"])
    after = env.idp.counters()
    refreshes = after.get("grant:refresh_token", 0) - \
        before.get("grant:refresh_token", 0)
    intro = after.get("introspect", 0) - before.get("introspect", 0)
    for arm, label in ARMS_A:
        print(B.summary_line(label, times[arm]))
    for arm, why in first_error.items():
        print("  %s: %d failed, first: %s" % (arm, fails[arm], why))
    m = {a: B.median(times[a]) for a in arms}
    p = m["PLAIN"]
    print("ratio XOAUTH2/PLAIN, helper (imtest):  %.3fx   (target <= 1.3x;"
          " per-repetition %.3fx)" % (m["XOAUTH2"] / p,
                                      B.median(pairs["XOAUTH2"])))
    print("ratio XOAUTH2/PLAIN, agent (imtest):   %.3fx   (target <= 1.05x;"
          " per-repetition %.3fx)" % (m["agent"] / p,
                                      B.median(pairs["agent"])))
    print("difference XOAUTH2-PLAIN: helper %s (`get` alone %s), agent %s "
          "(one agent request alone %s)" % (
              B.fmt_ms(m["XOAUTH2"] - p), B.fmt_ms(m["get"]),
              B.fmt_ms(m["agent"] - p), B.fmt_ms(m["ask"])))
    print("refresh requests during (a): %d (expected 0: the token is valid); "
          "introspection requests: %d for %d bearer logins"
          % (refreshes, intro, len(times["XOAUTH2"]) + len(times["agent"])))
    k = prefix + ".imtest."
    B.result(k + "plain_ms", "%.2f" % (p * 1e3))
    B.result(k + "xoauth2_ms", "%.2f" % (m["XOAUTH2"] * 1e3))
    B.result(k + "agent_ms", "%.2f" % (m["agent"] * 1e3))
    B.result(k + "helper_get_ms", "%.2f" % (m["get"] * 1e3))
    B.result(k + "agent_ask_ms", "%.2f" % (m["ask"] * 1e3))
    B.result(k + "ratio", "%.3f" % (m["XOAUTH2"] / p))
    B.result(k + "paired_ratio", "%.3f" % B.median(pairs["XOAUTH2"]))
    B.result(k + "agent_ratio", "%.3f" % (m["agent"] / p))
    B.result(k + "agent_paired_ratio", "%.3f" % B.median(pairs["agent"]))
    B.result(k + "introspections", "%d" % intro)
    B.result(k + "failures", "%d" % (fails["PLAIN"] + fails["XOAUTH2"] +
                                     fails["agent"]))
    return sum(fails.values())


def part_b(env, reps, loop_bin, prefix):
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
    intro = after.get("introspect", 0) - before.get("introspect", 0)
    print("introspection requests Dovecot made: %d for %d bearer logins"
          % (intro, 2 * n))
    k = prefix + ".loop."
    B.result(k + "plain_ms", "%.2f" % (p * 1e3))
    B.result(k + "xoauth2_ms", "%.2f" % (x * 1e3))
    B.result(k + "raw_ms", "%.2f" % (w * 1e3))
    B.result(k + "ratio", "%.3f" % (x / p))
    B.result(k + "raw_ratio", "%.3f" % (w / p))
    B.result(k + "paired_ratio", "%.3f" % B.median(pairs["xoauth2"]))
    B.result(k + "introspections", "%d" % intro)
    B.result(k + "failures", "%d" % sum(fails.values()))
    return sum(fails.values())


def main():
    ap = B.arg_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--loop-bin", help="a built bench/sasl_login_loop "
                    "(default: compile it into the work directory)")
    ap.add_argument("--only", choices=("a", "b"), help="run only one part")
    ap.add_argument("--server-cache", choices=("off", "on", "jwt", "both",
                                               "all"),
                    default="all", help="how Dovecot checks tokens: off "
                    "(every bearer token is introspected), on (auth cache "
                    "on), jwt (validated locally), both (off, then on) or "
                    "all three, one after the other (default)")
    args = ap.parse_args()
    top = B.builddir(args)
    B.check_reps(args)
    if not os.path.exists(B.IMTEST):
        sys.exit("%s is missing (install cyrus-clients)" % B.IMTEST)
    phases = {"off": [True], "on": ["cache"], "jwt": ["jwt"],
              "both": [True, "cache"], "all": [True, "cache", "jwt"]}[
        args.server_cache]
    print("login.py: %d repetitions per arm; build tree %s" % (args.reps, top))
    failures = 0
    with tempfile.TemporaryDirectory(prefix="mailoauth-bench-bin-") as tmp, \
            B.BenchEnv(top, dovecot=phases[0], keep=args.keep) as env:
        loop_bin = args.loop_bin
        if not loop_bin and args.only != "a":
            loop_bin = B.build_loop(tmp)
        env.login()
        env.token_ok()
        if args.only != "b":
            env.start_agent()
        for n, mode in enumerate(phases):
            if n:
                env.restart_dovecot(mode)
            prefix = {True: "login", "cache": "login.cache",
                      "jwt": "login.jwt"}[mode]
            print("\n----- " + {
                True: "Dovecot auth cache off (as in the end-to-end tests): "
                      "every bearer login is introspected over HTTPS by the "
                      "provider",
                "cache": "Dovecot auth cache ON (auth_cache_size/"
                         "auth_cache_ttl, both passdbs)",
                "jwt": "Dovecot validates each token locally (signed JWT, "
                       "introspection_mode = local), as Exchange Online "
                       "does: no request, no cache"}[mode])
            if mode == "jwt":
                env.check_local_validation()
                print("local validation checked: the stored token is "
                      "accepted, the same token with a forged signature is "
                      "refused")
            if args.only != "b":
                failures += part_a(env, args.reps, prefix)
            if args.only != "a":
                failures += part_b(env, args.reps, loop_bin, prefix)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
