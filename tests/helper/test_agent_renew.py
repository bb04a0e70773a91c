"""mailoauth agent renews tokens before they are needed (issue 11, "no
delivery waits for the identity provider"; tokenhelper/agent_renew.cc).

The fake identity provider answers every token request after 0.5 s and
issues tokens for 12 s (their refresh margin is clamped to 4 s, the
renewal lead to 2 s).  "Time passes" by moving the stored token's expiry
closer, as in test_margin.py, so a renewal is due as soon as the agent has
served the account.  Across two renewals and the first token's expiry no
request waits for the provider, the provider sees exactly one refresh per
new token (none for an account nobody asked for), a failing provider is
retried with a growing back-off and one log line, and the agent recovers
by itself; SIGHUP and SIGTERM do not wait for a renewal that hangs.

The agent is started and asked as in test_agent.py (its Agent, ask and
AgentTestCase); the two device-flow logins happen once for the class and
each test starts from a copy of that store."""
import os
import shutil
import signal
import time

import tap
from helperlib import ACCOUNT, HelperTestCase, ZzNoSecretsInOutput  # noqa: F401
from test_agent import AgentTestCase, ask

LIFETIME = 12          # margin 4 s (a third), lead 2 s, no jitter
DELAY = 0.5            # the provider's latency for every token request
SLOW = 0.4             # a request that took this long waited for the provider
OTHER = "bob@example.com"   # signed in, never asked for
FAILED_LINE = "renewing the token ahead of its expiry failed"


def wait_for(what, pred, timeout):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(0.05)


class Renewal(AgentTestCase):
    snapshot = None

    def setUp(self):
        # AgentTestCase's fields, without its device flow per test.
        HelperTestCase.setUp(self)
        self.agent_count = 0
        self.agents = []
        self.idp.clear_faults()
        self.idp.set_access_lifetime(3600)
        if Renewal.snapshot is None:
            self.login(ACCOUNT)
            self.login(OTHER)
            Renewal.snapshot = os.path.join(self.workdir, "store-snapshot")
            shutil.copytree(self.store, Renewal.snapshot)
        else:
            shutil.copytree(Renewal.snapshot, self.store)

    def tearDown(self):
        super().tearDown()
        self.idp.clear_faults()

    def short_tokens(self, *accounts):
        """12 s tokens for ACCOUNTS, each stored as expiring in 6 s: inside
        the renewal window (margin 4 s + lead 2 s) at once, outside the margin
        for 2 s more."""
        self.idp.set_access_lifetime(LIFETIME)
        for account in accounts:
            r = self.mailoauth("token", account, "--force-refresh")
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(int(self.record(account)["access_lifetime"]), LIFETIME)
            self.edit_record(account, access_expires_at=int(time.time()) + 6)
        self.idp.reset_counters()

    def refresh_requests(self):
        return [r for r in self.idp.requests() if r.get("grant_type") == "refresh_token"]

    def failures(self, at_least):
        """The refresh requests that failed, once there are AT_LEAST."""
        failed = [r for r in self.refresh_requests() if r["status"] != 200]
        return failed if len(failed) >= at_least else None

    def refreshes_ok(self):
        return sum(1 for r in self.refresh_requests() if r["status"] == 200)

    def test_no_request_waits_across_expiries(self):
        self.short_tokens(ACCOUNT, OTHER)
        other_before = self.record(OTHER)["access_token"]
        self.idp.fault("token", "delay", count=100, seconds=DELAY)
        a = self.agent()
        first_expiry = int(self.record()["access_expires_at"])
        tokens = []        # each token the agent handed out, in order, once
        slow = []
        answered = 0
        while True:
            r = ask(a.name)
            now = time.time()
            self.assertEqual(r["status"], 0, r.get("error_description"))
            answered += 1
            self.assertGreater(int(r["expires_at"]), now, "the agent handed out an expired token")
            if r["elapsed"] > SLOW:
                slow.append(round(r["elapsed"], 3))
            if not tokens or tokens[-1] != r["access_token"]:
                tokens.append(r["access_token"])
            # Two renewals, and past the expiry of the token we started with.
            if len(tokens) >= 3 and now > first_expiry + 0.5:
                break
            self.assertLess(now, first_expiry + 8, "%d tokens handed out, want 3" % len(tokens))
            time.sleep(0.05)
        self.assertEqual(slow, [], "requests that waited for the provider (of %d)" % answered)
        self.assertGreater(answered, 50)
        self.assertEqual(len(set(tokens)), len(tokens), "an older token came back")
        # One refresh per new token: the two renewals, no storm, no
        # on-demand refresh, and none for the account nobody asked for.
        self.assertEqual(self.refreshes_ok(), 2)
        self.assertEqual(len(self.refresh_requests()), 2)
        self.assertTrue(self.record(OTHER)["access_token"] == other_before, "OTHER was refreshed")
        self.assertTrue(self.record()["access_token"] == tokens[-1], "not the stored token")
        self.assertTrue(self.idp.valid_access_token(tokens[-1]))
        log = a.log()
        self.assertNotIn("refreshed the access token of", log)   # the on-demand path's line
        self.assertNotIn(FAILED_LINE, log)
        self.assertEqual(a.stop(), 0)

    def test_backoff_while_the_provider_fails_then_recovery(self):
        self.short_tokens(ACCOUNT)
        stored = self.record()["access_token"]
        self.idp.fault("token", "status", count=1000, grant_type="refresh_token", status=503)
        a = self.agent()
        r = ask(a.name)
        self.assertEqual(r["status"], 0, r.get("error_description"))
        self.assertTrue(r["access_token"] == stored)
        # The renewal is due at once and fails; again after 1 s, then 2 s
        # later (then 4 s, twice up to half the token's lifetime).
        failed = wait_for("three failed renewals", lambda: self.failures(3), 8)
        self.idp.clear_faults()
        self.idp.fault("token", "delay", count=100, seconds=DELAY)
        self.assertEqual(len(failed), 3, [q["status"] for q in failed])
        first, second = failed[1]["t"] - failed[0]["t"], failed[2]["t"] - failed[1]["t"]
        self.assertLess(first, 1.5)
        self.assertGreater(second, 1.5)
        self.assertLess(second, 3)
        self.assertGreater(second, first)
        # Recovery without a request or a signal: the next attempt works.
        wait_for("the renewal after the failures", lambda: self.refreshes_ok() == 1, 8)
        self.assertEqual(len(self.refresh_requests()), 4)   # nothing else meanwhile
        renewed = wait_for("the renewed token in the store",
                           lambda: self.record()["access_token"] != stored and self.record()["access_token"], 5)
        r = ask(a.name)
        self.assertEqual(r["status"], 0, r.get("error_description"))
        self.assertLess(r["elapsed"], SLOW)
        self.assertTrue(r["access_token"] == renewed, "not the renewed token")
        self.assertGreater(int(r["expires_at"]), time.time() + LIFETIME - 4)
        self.assertEqual(len(self.refresh_requests()), 4)
        # One line for the three failures (a minute's rate limit), a warning.
        log = a.log()
        lines = [line for line in log.splitlines() if FAILED_LINE in line]
        self.assertEqual(len(lines), 1, log)
        self.assertIn("warning: %s: %s (next attempt in 1 s;" % (ACCOUNT, FAILED_LINE), lines[0])
        self.assertIn("temporarily unavailable", lines[0])
        self.assertEqual(a.stop(), 0)

    def test_signals_do_not_wait_for_a_hung_renewal(self):
        http_timeout = 3
        self.write_config("http_timeout = %d\n" % http_timeout)
        self.short_tokens(ACCOUNT)
        stored = self.record()["access_token"]
        self.idp.fault("token", "delay", count=10, seconds=30)
        a = self.agent()
        self.assertTrue(ask(a.name)["access_token"] == stored)   # the renewal starts, and hangs
        time.sleep(0.3)
        a.proc.send_signal(signal.SIGHUP)
        wait_for("the SIGHUP line", lambda: "SIGHUP:" in a.log(), 2)
        r = ask(a.name)
        self.assertEqual(r["status"], 0, r.get("error_description"))
        self.assertLess(r["elapsed"], SLOW)
        self.assertTrue(r["access_token"] == stored)
        t0 = time.monotonic()
        self.assertEqual(a.stop(), 0)
        # At most the HTTP timeout from the renewal's start (before t0).
        self.assertLess(time.monotonic() - t0, http_timeout + 1)
        self.assertIn("stopped", a.log())


if __name__ == "__main__":
    tap.main()
