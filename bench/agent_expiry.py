#!/usr/bin/env python3
"""Logins through the agent across token expiries, with renewal on and off:
p50, p99 and max of the agent's answer, and p99/p50 (issue 11).

Three agents on the same store, each serving its own account (one signed
in per agent, so that none sees another's refreshes): one as configured by
default (renewal on), one with `agent_renew = no` (refresh on demand, as
before issue 11), and for the noise floor one whose token does not expire
during the run (renewal on, an hour-long token).  The provider answers every token request after
--idp-delay seconds (0.5) and issues tokens for --lifetime seconds (12: the
refresh margin is clamped to a third, 4 s).  A login is one agent request
as the plugin sends it (a new connection, the request, the reply),
timed from connect to the reply's end.  Each round asks the agents in
rotating order, and rounds follow each other every --pace seconds for
--seconds, so all arms see the same machine at the same time and the
first two cross several expiries.

Target: with renewal on, p99 equal to p50 within noise, i.e. p99/p50 as
the steady arm's (no login waits for the provider); off, each expiry costs the logins that meet the refresh
about the provider's latency.
"""
import math
import os
import sys
import time

import benchlib as B

OTHER = "bob@example.com"    # the account of the agent without renewal
STEADY = "carol@example.com"  # an hour-long token: no expiry during the run
SLOW_MS = 250                 # a login this slow waited for the provider


class Agent:
    """`mailoauth agent --foreground` with its own mailoauth.conf."""

    def __init__(self, env, name, extra_conf):
        self.socket = "@mailoauth-bench-expiry-%d-%s" % (os.getpid(), name)
        self.config = env.config_with("agent-%s.conf" % name, extra_conf)
        e = env.env(False)
        e["MAILOAUTH_CONFIG"] = self.config
        self.proc = B.AgentProcess(env.mailoauth, self.socket, e,
                                   os.path.join(env.work.path,
                                                "agent-%s.log" % name))

    def stop(self):
        self.proc.stop()


def ask(agent, account):
    """One login's request; (seconds, reply).  The reply holds a token:
    never printed."""
    req = ("version=1\naccount=%s\nprotocol=smtp\nhost=smtp.office365.com\n"
           "port=587\nmechanism=XOAUTH2\n\n" % account).encode()
    t0 = time.perf_counter()
    data = B.ask_agent(agent.socket, req)
    dt = time.perf_counter() - t0
    reply = dict(line.split("=", 1) for line in data.decode().splitlines()
                 if "=" in line)
    return dt, reply


def percentile(xs, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, math.ceil(p / 100.0 * len(s)) - 1))
    return s[k]


def main():
    p = B.arg_parser(__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=48.0,
                   help="how long both arms are measured (default 48)")
    p.add_argument("--pace", type=float, default=0.1,
                   help="seconds between rounds (default 0.1)")
    p.add_argument("--lifetime", type=int, default=12,
                   help="access token lifetime in seconds (default 12)")
    p.add_argument("--idp-delay", type=float, default=0.5,
                   help="the provider's latency for token requests "
                   "(default 0.5 s)")
    args = p.parse_args()
    top = B.builddir(args)
    arms = (("on", B.ACCOUNT, ""), ("off", OTHER, "agent_renew = no\n"),
            ("steady", STEADY, ""))
    times = {name: [] for name, _, _ in arms}
    tokens = {name: [] for name, _, _ in arms}
    failures = 0
    agents = {}
    with B.BenchEnv(top, dovecot=False, keep=args.keep) as env:
        env.login()
        env.login(OTHER)
        env.login(STEADY)         # keeps its hour-long token
        env.idp.set_access_lifetime(args.lifetime)
        for _, account, _ in arms[:2]:
            r = env.run_helper("token", account, "--force-refresh")
            if r.returncode != 0:
                raise RuntimeError("mailoauth token failed: " + r.stderr[-500:])
        env.idp.fault("token", "delay", count=100000, seconds=args.idp_delay)
        env.idp.reset_counters()
        try:
            for name, _, conf in arms:
                agents[name] = Agent(env, name, conf)
            end = time.monotonic() + args.seconds
            i = 0
            next_round = time.monotonic()
            while time.monotonic() < end:
                order = arms[i % 3:] + arms[:i % 3]
                for name, account, _ in order:
                    dt, reply = ask(agents[name], account)
                    if reply.get("status") != "0" or "access_token" not in reply:
                        failures += 1
                        print("%s: status %s %s" % (name, reply.get("status"),
                                                    reply.get("error", "")),
                              flush=True)
                        continue
                    times[name].append(dt)
                    if not tokens[name] or tokens[name][-1] != reply["access_token"]:
                        tokens[name].append(reply["access_token"])
                i += 1
                next_round += args.pace
                time.sleep(max(0.0, next_round - time.monotonic()))
            refreshes = sum(1 for q in env.idp.requests()
                            if q.get("grant_type") == "refresh_token"
                            and q.get("status") == 200)
        finally:
            for a in agents.values():
                a.stop()
    print("%d rounds over %.0f s, tokens of %d s, provider latency %.2f s; "
          "%d refreshes at the provider, %d failed logins"
          % (i, args.seconds, args.lifetime, args.idp_delay, refreshes,
             failures), flush=True)
    for name, _, _ in arms:
        xs = [x * 1e3 for x in times[name]]
        p50, p99, mx = percentile(xs, 50), percentile(xs, 99), max(xs)
        slow = sum(1 for x in xs if x > SLOW_MS)
        print("%-6s: n=%d  p50 %.2f ms  p99 %.2f ms  max %.2f ms  "
              "p99/p50 %.2fx  logins over %d ms: %d  tokens served: %d "
              "(%d new)" % (name, len(xs), p50, p99, mx, p99 / p50, SLOW_MS,
                            slow, len(tokens[name]), len(tokens[name]) - 1),
              flush=True)
        B.result("agent_expiry.%s_p50_ms" % name, "%.2f" % p50)
        B.result("agent_expiry.%s_p99_ms" % name, "%.2f" % p99)
        B.result("agent_expiry.%s_max_ms" % name, "%.2f" % mx)
        B.result("agent_expiry.%s_ratio" % name, "%.2f" % (p99 / p50))
        B.result("agent_expiry.%s_slow" % name, slow)
        B.result("agent_expiry.%s_new_tokens" % name, len(tokens[name]) - 1)
    q = {name: percentile(times[name], 99) for name, _, _ in arms}
    print("p99 against the steady arm's (the noise floor): on %.2fx, off %.2fx"
          % (q["on"] / q["steady"], q["off"] / q["steady"]))
    B.result("agent_expiry.on_p99_vs_steady", "%.2f" % (q["on"] / q["steady"]))
    B.result("agent_expiry.off_p99_vs_steady", "%.2f" % (q["off"] / q["steady"]))
    B.result("agent_expiry.failures", failures)
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
