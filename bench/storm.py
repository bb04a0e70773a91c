#!/usr/bin/env python3
"""Refresh storm: right after the access token expired, 64 clients log in
at once (64 concurrent imtest -m XOAUTH2 processes through libmailoauth.so,
each running its own `mailoauth get`).  Reports how many refresh requests
reached the identity provider (target: exactly 1, the store's refresh is
single-flight across processes), the slowest login, and whether all 64
logged in.

Each round:
  1. the fake provider issues short-lived tokens (8 s) and the store gets
     one (`mailoauth token --force-refresh`), then goes back to 1 h tokens;
  2. wait until that token has expired, at the provider too (the plugin and
     helper use refresh_margin = 5 here, from this run's mailoauth.conf);
  3. reset the provider's counters, start the 64 clients together (threads
     released by one barrier), wait for all;
  4. read the counters: grant:refresh_token is the number of refreshes;
  5. baselines, same size, same moment: the storm again with the token now
     valid (no refresh), and with imtest PLAIN, so "slowest login" can be
     read against what 64 concurrent logins cost on this machine anyway.
Rounds alternate the provider's latency for refresh requests: 0 s (the
fake answers in a few ms) and --idp-delay (default 0.5 s, closer to the
real service), so the clients really pile up behind one refresh.
"""
import os
import sys
import threading
import time

import benchlib as B

MARGIN = 5
SHORT_LIFETIME = 8


def storm(env, clients, mech="XOAUTH2"):
    """Start CLIENTS imtest logins at once; returns the release time and
    per-client (start, end, ok, why)."""
    barrier = threading.Barrier(clients + 1)
    results = [None] * clients

    def client(i):
        barrier.wait()
        t0 = time.perf_counter()
        p = env.imtest_popen(mech)
        try:
            out, err = p.communicate(env.IMTEST_INPUT, timeout=120)
        except Exception:           # bounded: never leave one behind
            p.kill()
            out, err = p.communicate()
        t1 = time.perf_counter()
        ok, why = env.imtest_check(p.returncode, out, err)
        results[i] = (t0, t1, ok, why)

    threads = [threading.Thread(target=client, args=(i,), daemon=True)
               for i in range(clients)]
    for t in threads:
        t.start()
    release = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join(180)
    return release, results


def one_round(env, clients, delay):
    # 1. a token that expires soon, then long-lived tokens again
    env.idp.set_access_lifetime(SHORT_LIFETIME)
    r = env.run_helper("token", B.ACCOUNT, "--force-refresh")
    if r.returncode != 0:
        raise RuntimeError("mailoauth token --force-refresh: %d %s"
                           % (r.returncode, r.stderr[-500:]))
    env.idp.set_access_lifetime(3600)
    expires_at = int(env.record()["access_expires_at"])
    # 2. until it expired (at the provider: Dovecot would reject it)
    while time.time() < expires_at + 1:
        time.sleep(0.2)
    env.idp.clear_faults()
    if delay > 0:
        env.idp.fault("token", "delay", count=clients,
                      grant_type="refresh_token", seconds=delay)
    env.idp.reset_counters()
    # 3. the storm
    release, results = storm(env, clients)
    env.idp.clear_faults()
    c = env.idp.counters()
    out = summarize(release, results)
    out.update(refreshes=c.get("grant:refresh_token", 0),
               token_requests=c.get("token", 0),
               introspections=c.get("introspect", 0),
               refreshed=int(env.record()["access_expires_at"]) > expires_at)
    # The same storm without a refresh (valid token), and with PLAIN: what
    # 64 concurrent logins cost on this machine anyway.
    for mech, key in (("XOAUTH2", "warm"), ("PLAIN", "plain")):
        env.idp.reset_counters()
        out[key] = summarize(*storm(env, clients, mech))
        out[key]["refreshes"] = env.idp.counters().get(
            "grant:refresh_token", 0)
    return out


def summarize(release, results):
    clients = len(results)
    done = [r for r in results if r]
    ok = [r for r in done if r[2]]
    per_login = [r[1] - r[0] for r in done]
    starts = [r[0] - release for r in done]
    last_end = max(r[1] for r in done) - release if done else float("nan")
    failed = [r[3] for r in done if not r[2]]
    return dict(ok=len(ok), clients=clients,
                slowest=max(per_login) if per_login else float("nan"),
                median=B.median(per_login),
                start_spread=max(starts) - min(starts) if starts else 0,
                last_end=last_end, failed=failed)


def main():
    ap = B.arg_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--idp-delay", type=float, default=0.5,
                    help="provider latency for refresh requests in every "
                    "second round (seconds, default 0.5)")
    args = ap.parse_args()
    top = B.builddir(args)
    if not os.path.exists(B.IMTEST):
        sys.exit("%s is missing (install cyrus-clients)" % B.IMTEST)
    if not 1 <= args.clients <= 256 or not 1 <= args.rounds <= 10:
        sys.exit("--clients 1..256, --rounds 1..10")
    print("storm.py: %d concurrent imtest XOAUTH2 logins right after expiry, "
          "%d rounds; build tree %s" % (args.clients, args.rounds, top))
    worst = 0
    with B.BenchEnv(top, refresh_margin=MARGIN, keep=args.keep) as env:
        env.login()
        env.token_ok()
        all_ok = True
        max_refreshes = 0
        slowest = 0.0
        plain_slowest = 0.0
        worst_ratio = 0.0
        for rnd in range(args.rounds):
            delay = args.idp_delay if rnd % 2 else 0.0
            res = one_round(env, args.clients, delay)
            print("\nround %d (provider latency %.1f s): refresh requests "
                  "%d (target 1), token requests %d, logins OK %d/%d"
                  % (rnd + 1, delay, res["refreshes"], res["token_requests"],
                     res["ok"], res["clients"]))
            print("  slowest login %s, median login %s, all done %s after "
                  "release (starts spread over %s); introspections %d"
                  % (B.fmt_ms(res["slowest"]), B.fmt_ms(res["median"]),
                     B.fmt_ms(res["last_end"]), B.fmt_ms(res["start_spread"]),
                     res["introspections"]))
            for key, label in (("warm", "XOAUTH2, valid token"),
                               ("plain", "PLAIN")):
                b = res[key]
                print("  baseline, same storm with %s: slowest %s, median %s,"
                      " OK %d/%d, refreshes %d" % (
                          label, B.fmt_ms(b["slowest"]), B.fmt_ms(b["median"]),
                          b["ok"], b["clients"], b["refreshes"]))
                for why in b["failed"][:2]:
                    print("    failed: %s" % why)
            if not res["refreshed"]:
                print("  the store still holds the expired token!")
            for why in res["failed"][:3]:
                print("  failed: %s" % why)
            all_ok &= res["ok"] == res["clients"] and res["refreshed"]
            max_refreshes = max(max_refreshes, res["refreshes"])
            worst = max(worst, abs(res["refreshes"] - 1))
            slowest = max(slowest, res["slowest"])
            tag = "storm.r%d" % (rnd + 1)
            B.result(tag + ".refreshes", res["refreshes"])
            B.result(tag + ".slowest_ms", "%.1f" % (res["slowest"] * 1e3))
            B.result(tag + ".ok", "%d/%d" % (res["ok"], res["clients"]))
            B.result(tag + ".warm_slowest_ms", "%.1f"
                     % (res["warm"]["slowest"] * 1e3))
            B.result(tag + ".plain_slowest_ms", "%.1f"
                     % (res["plain"]["slowest"] * 1e3))
            # Issue 13: the slowest login of the storm that refreshes
            # against the same storm with a valid token plus the provider's
            # latency (the one refresh cannot answer sooner).
            ratio = res["slowest"] / (res["warm"]["slowest"] + delay)
            print("  slowest login / (valid-token storm's slowest + provider "
                  "latency): %.2fx (target <= 1.1x)" % ratio)
            B.result(tag + ".slowest_ratio", "%.2f" % ratio)
            worst_ratio = max(worst_ratio, ratio)
            plain_slowest = max(plain_slowest, res["plain"]["slowest"])
        print("\nsummary: max refresh requests per storm %d (target 1), "
              "slowest login %s, all succeeded: %s"
              % (max_refreshes, B.fmt_ms(slowest), "yes" if all_ok else "NO"))
        B.result("storm.max_refreshes", max_refreshes)
        print("slowest login of the PLAIN baseline storms: %s (ratio %.2fx)"
              % (B.fmt_ms(plain_slowest), slowest / plain_slowest))
        B.result("storm.slowest_ms", "%.1f" % (slowest * 1e3))
        B.result("storm.plain_slowest_ms", "%.1f" % (plain_slowest * 1e3))
        B.result("storm.all_ok", "yes" if all_ok else "no")
        B.result("storm.slowest_ratio", "%.2f" % worst_ratio)
    return 0 if all_ok and worst == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
