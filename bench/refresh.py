#!/usr/bin/env python3
"""A login that must refresh, helper mode: what the refresh costs the
client beyond the provider's own time.

Interleaved, with rotating order, REPS times each:
  valid    imtest -m XOAUTH2 through libmailoauth.so, which runs `mailoauth
           get`; the stored access token is valid;
  refresh  the same after the stored token was marked expired (its
           access_expires_at set to the past, nothing else changed), so
           `mailoauth get` loads the HTTP module, asks the provider over
           HTTPS, saves the new tokens (fsync of the record and of the
           directory) and answers;
and the same two for `mailoauth get` alone (the plugin's request on stdin),
which shows the helper's part without imtest and Dovecot.

The provider's own time for each refresh (from reading the request to its
answer written) is what the fake provider recorded ("dt" of its request
log); the client's cost of a refresh is then
    refresh - valid - provider time,
and the target (issue 13) is refresh <= 1.05 x (valid + provider time).
Dovecot validates the JWT access tokens itself (no introspection), so the
server costs the same in both arms.
"""
import os
import sys
import time

import benchlib as B
import login as L


def expire_stored_token(env):
    """Sets the record's access_expires_at to the past, atomically (a temp
    file in the store, renamed over the record, mode 0600).  Runs between
    logins, while no helper holds the account."""
    path = env.store_file
    with open(path) as f:
        lines = f.read().split("\n")
    out = []
    for line in lines:
        if line.startswith("access_expires_at="):
            line = "access_expires_at=1"
        out.append(line)
    tmp = os.path.join(env.store, "bench-expire")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(out))
    os.rename(tmp, path)


def refresh_times(env, since):
    """(provider seconds) of the refresh requests the provider answered
    after monotonic time SINCE (its clock)."""
    return [r["dt"] for r in env.idp.requests()
            if r.get("grant_type") == "refresh_token" and r["t"] >= since
            and r.get("status") == 200]


def main():
    p = B.arg_parser(__doc__.split("\n")[0])
    args = p.parse_args()
    top = B.builddir(args)
    B.check_reps(args)
    arms = ("valid", "refresh", "get_valid", "get_refresh")
    t = {a: [] for a in arms}
    provider = {"refresh": [], "get_refresh": []}
    failures = 0
    with B.BenchEnv(top, dovecot="jwt", keep=args.keep) as env:
        env.login()
        env.token_ok()
        env.check_local_validation()
        for _ in range(3):   # warm the caches of both paths
            env.imtest_once("XOAUTH2")
            expire_stored_token(env)
            env.imtest_once("XOAUTH2")
        for i in range(args.reps):
            order = arms[i % 4:] + arms[:i % 4]
            for arm in order:
                env.idp.reset_counters()
                if arm in ("refresh", "get_refresh"):
                    expire_stored_token(env)
                if arm in ("valid", "refresh"):
                    dt, ok, why = env.imtest_once("XOAUTH2")
                else:
                    dt, ok = L.helper_get_once(env)
                    why = "mailoauth get failed"
                refreshes = refresh_times(env, 0)
                want = 1 if "refresh" in arm else 0
                if not ok or len(refreshes) != want:
                    failures += 1
                    print("%s: %s (refreshes %d, want %d)"
                          % (arm, why, len(refreshes), want), flush=True)
                    continue
                t[arm].append(dt)
                if want:
                    provider[arm].append(refreshes[0])
    for arm in arms:
        print(B.summary_line(arm, t[arm]))
    for arm in ("refresh", "get_refresh"):
        print(B.summary_line("  provider's time in " + arm, provider[arm]))

    def report(name, valid, refresh):
        v = B.median(t[valid])
        r = B.median(t[refresh])
        pr = B.median(provider[refresh])
        client = r - v - pr
        ratio = r / (v + pr)
        print("%s: valid %s, refresh %s, provider %s: client's cost of the "
              "refresh %s; refresh / (valid + provider) = %.3fx "
              "(target <= 1.05x)" % (name, B.fmt_ms(v), B.fmt_ms(r),
                                    B.fmt_ms(pr), B.fmt_ms(client), ratio))
        return v, r, pr, client, ratio

    v, r, pr, client, ratio = report("imtest login", "valid", "refresh")
    B.result("refresh.login_ratio", "%.3f" % ratio)
    B.result("refresh.valid_ms", "%.2f" % (v * 1e3))
    B.result("refresh.refresh_ms", "%.2f" % (r * 1e3))
    B.result("refresh.provider_ms", "%.2f" % (pr * 1e3))
    B.result("refresh.client_ms", "%.2f" % (client * 1e3))
    v, r, pr, client, ratio = report("mailoauth get alone", "get_valid",
                                     "get_refresh")
    B.result("refresh.get_ratio", "%.3f" % ratio)
    B.result("refresh.get_client_ms", "%.2f" % (client * 1e3))
    B.result("refresh.failures", failures)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
