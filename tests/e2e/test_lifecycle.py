"""Token lifecycle against the real Dovecot, through libmailoauth.so and the
built helper, after a real `mailoauth login` per test:

  * the access token expires between two logins: the second refreshes
    transparently (one refresh at the provider);
  * the provider revokes the access token: Dovecot refuses it with its JSON
    error challenge, the plugin answers it as the mechanism requires (the
    login fails cleanly, at once), and the next login of the same process
    succeeds with a forced refresh.  The next login of a *new* process
    (imtest again) does not recover: a named expected failure, see
    test_revoked_access_token_next_process_recovers_needs_reject_notice;
  * the refresh token is revoked: the login fails before anything is sent,
    and the client's SASL log and error detail carry the reason and
    `mailoauth login alice@example.com`;
  * a shared mailbox: `user=` on the wire is the shared mailbox, the token
    is its delegate's (sasllib.DelegatingDovecot explains the server side).

imtest is a new process per login, so its plugin starts with an empty
cache every time; tests/e2e/sasl/saslclient.py is the long-lived client
(several logins through one libsasl2 initialisation, like Postfix's smtp).
"""
import imaplib
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "sasl"))
import mailenv  # noqa: E402
import sasllib  # noqa: E402
from sasllib import ALICE, BOB, SHARED  # noqa: E402

SETUP = None
MISSING = sasllib.missing_programs()
IMAP_SELECT = (b"x1 SELECT INBOX\r\n"
               b"x2 FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"
               b"x3 LOGOUT\r\n")


def setUpModule():
    global SETUP
    if MISSING:
        return
    SETUP = sasllib.MailSetup(sasllib.DelegatingDovecot,
                              delegations={SHARED: ALICE}).start()


def tearDownModule():
    global SETUP
    setup, SETUP = SETUP, None
    sasllib.stop_checking_leaks(setup)


def subject(tag):
    return "mailoauth-lifecycle %s %s" % (tag, uuid.uuid4().hex[:12])


class Lifecycle(unittest.TestCase):
    """One store per test, signed in with `mailoauth login`; refresh_margin
    0 so a token is used until it really expires; the plugin logs at debug
    level (token fingerprints, forced refreshes; never a token)."""

    def setUp(self):
        if SETUP is None:
            self.skipTest("not installed/built: " + " ".join(MISSING))
        self.setup = SETUP
        self.idp = SETUP.idp
        self.dovecot = SETUP.dovecot
        self.idp.clear_faults()
        self.idp.set_access_lifetime(3600)
        name = "case-" + self.id().rsplit(".", 1)[-1]
        self.store = SETUP.make_store(name)
        self.conf = SETUP.write_config(SETUP.path(name), self.store,
                                       extra="refresh_margin = 0\n"
                                             "log_level = debug\n")
        self.env = SETUP.client_env(self.conf)

    def tearDown(self):
        if SETUP is not None:
            self.idp.set_access_lifetime(3600)

    def login(self, *extra):
        self.setup.login(self.conf, extra=extra)
        self.idp.reset_counters()

    def refreshes(self):
        return self.idp.counters().get("grant:refresh_token", 0)

    def short_lived_token(self, seconds):
        """Replace the stored access token by one that lives SECONDS."""
        self.idp.set_access_lifetime(seconds)
        r = self.setup.helper(self.conf, "token", ALICE, "--force-refresh")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.idp.set_access_lifetime(3600)
        self.idp.reset_counters()
        return self.setup.record(self.store)["access_token"]

    def wait_expired(self, token, timeout=15):
        mailenv.wait_for(lambda: not self.idp.valid_access_token(token),
                         timeout, 0.2, what="the access token to expire")

    def imtest(self, mech="XOAUTH2"):
        return self.setup.run_cyrus("imtest", mech,
                                    self.dovecot.ports["imap"], IMAP_SELECT,
                                    self.env)

    def assert_logged_in(self, out):
        self.assertIn("Authenticated.", out, out)
        self.assertRegex(out, r"x1 OK \[READ-WRITE\]", out)

    def assert_refused_cleanly(self, out, secs, mech="XOAUTH2"):
        """Dovecot sent its JSON error challenge, the client answered it
        (Dovecot then says NO, not BAD for a cancelled exchange), imtest
        reported the failure, all well inside imtest's timeouts."""
        self.assertLess(secs, 10, out)
        self.assertNotIn("Authenticated.", out, out)
        self.assertIn("Authentication failed", out, out)
        challenges = sasllib.server_challenges(out)
        self.assertEqual(len(challenges), 1, out)
        if mech == "XOAUTH2":
            self.assertEqual(challenges[0].get("status"), "401", out)
        else:
            self.assertEqual(challenges[0].get("status"), "invalid_token", out)
        self.assertRegex(out, r"NO \[AUTHENTICATIONFAILED\]", out)
        self.assertNotIn("aborted", out.lower(), out)

    # ------------------------------------------------------------------
    def test_expired_access_token_refreshed_between_logins(self):
        self.login()
        old = self.short_lived_token(4)
        rc, out, _ = self.imtest()
        self.assert_logged_in(out)
        self.assertEqual(self.refreshes(), 0, "the valid token was refreshed")
        self.wait_expired(old)
        rc, out, _ = self.imtest()
        self.assert_logged_in(out)
        self.assertEqual(self.refreshes(), 1)
        new = self.setup.record(self.store)["access_token"]
        self.assertNotEqual(new, old)
        self.assertTrue(self.idp.valid_access_token(new))

    def test_revoked_access_token_error_challenge_then_refresh(self):
        self.login()
        # A new process per login: refused cleanly, for both mechanisms;
        # each refusal replaces the token while answering the challenge.
        for n, mech in enumerate(("XOAUTH2", "OAUTHBEARER"), start=1):
            self.idp.revoke_access_tokens(ALICE)
            rc, out, secs = self.imtest(mech)
            self.assert_refused_cleanly(out, secs, mech)
            self.assertEqual(self.refreshes(), n)
        # One process, two logins: the first is refused and answers the
        # challenge, the second uses the token fetched meanwhile.
        self.idp.revoke_access_tokens(ALICE)
        first, second = self.setup.sasl_client(self.env, logins=2)
        self.assertEqual(first["auth"], "NO", first)
        self.assertEqual(first["sasl"], [0, 1], first)   # OK (doneflag 0), then CONTINUE
        self.assertTrue(any("server refused the XOAUTH2 token" in m and
                            "status 401" in m for m in first["log"]), first)
        self.assertTrue(any("ready for the next attempt" in m for m in first["log"]), first)
        self.assertEqual(second["auth"], "OK", second)
        self.assertEqual(second["select"], "OK", second)
        self.assertEqual(self.refreshes(), 3)
        rec = self.setup.record(self.store)
        self.assertTrue(self.idp.valid_access_token(rec["access_token"]))

    def test_revoked_access_token_next_process_recovers(self):
        """After the server refused a token, the next login of a NEW process
        succeeds: while answering the error challenge the plugin asks the
        helper for a new token, naming the refused one (`rejected=`), so the
        store no longer holds it when the next imtest starts."""
        self.login()
        self.idp.revoke_access_tokens(ALICE)
        rc, out, secs = self.imtest()
        self.assert_refused_cleanly(out, secs)
        rc, out, secs = self.imtest()
        self.assert_logged_in(out)
        self.assertEqual(self.refreshes(), 1)

    def test_revoked_refresh_token_asks_for_login(self):
        self.login()
        old = self.short_lived_token(3)
        self.idp.revoke_refresh_tokens(ALICE)
        self.wait_expired(old)
        # imtest only prints libsasl2's "generic failure" (the plugin's
        # reason goes to libsasl2's log, which imtest leaves to syslog);
        # nothing reaches the server.
        rc, out, secs = self.imtest()
        self.assertNotIn("Authenticated.", out, out)
        self.assertIn("Authentication failed", out, out)
        self.assertEqual(sasllib.server_challenges(out), [], out)
        # A client with a SASL log callback (Postfix, the test client) and
        # sasl_errdetail() both carry the reason and what to run.
        (result,) = self.setup.sasl_client(self.env)
        self.assertEqual(result["auth"], "NO", result)
        wanted = "mailoauth login " + ALICE
        for where in ("errdetail", "log"):
            text = " ".join(result[where]) if where == "log" \
                else result[where]
            self.assertIn(wanted, text, result)
            self.assertIn("must log in again", text, result)
            self.assertIn("revoked", text, result)
        # mbsync prints sasl_errdetail() when the SASL step fails.
        if os.path.exists(sasllib.MBSYNC):
            rc, out, synced = self.setup.mbsync(self.env, name="mbsync-" +
                                                os.path.basename(
                                                    os.path.dirname(
                                                        self.store)))
            self.assertNotEqual(rc, 0, out)
            self.assertIn(wanted, out)
            self.assertIn("must log in again", out)
            self.assertEqual(synced, [])
        status = self.setup.helper(self.conf, "status", ALICE)
        self.assertIn(wanted, status.stdout + status.stderr)

    def test_shared_mailbox_login_over_imap(self):
        self.login("--user", SHARED)
        subj = subject("shared")
        self.setup.deliver(SHARED, subj)
        for mech in ("XOAUTH2", "OAUTHBEARER"):
            mark = self.dovecot.log()
            rc, out, _ = self.imtest(mech)
            self.assert_logged_in(out)
            self.assertIn("Subject: " + subj, out, out)
            part = sasllib.new_part(mark, self.dovecot.log())
            self.assertIn("imap-login: Info: Login: user=<%s>, method=%s"
                          % (SHARED, mech), part, self.setup.redact(part))
        # The server really checks the delegation: bob's token is refused
        # for the shared mailbox.
        bob_token = mailenv.device_flow_token(self.idp, username=BOB)[
            "access_token"]
        m = imaplib.IMAP4("127.0.0.1", self.dovecot.ports["imap"], timeout=20)
        try:
            m.starttls(self.dovecot.ssl_context())
            with self.assertRaises(imaplib.IMAP4.error):
                m.authenticate("XOAUTH2", lambda c: b"" if c else
                               mailenv.xoauth2_initial_response(SHARED,
                                                                bob_token))
        finally:
            m.shutdown()


if __name__ == "__main__":
    import tap
    tap.main()
