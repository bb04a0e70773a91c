"""nmh through libmailoauth.so against the local Dovecot, after a real
`mailoauth login` (device flow; the fake identity provider approves):

  * `send` (which runs `post`) submits a message over submission with
    STARTTLS and OAUTHBEARER; it lands in the maildir;
  * `inc` retrieves a message over POP3 with implicit TLS and OAUTHBEARER
    into +inbox;

with the ~/.mh_profile the README shows (tests/e2e/clients/mh_profile.in).
nmh follows the Cyrus SASL API strictly: once sasl_client_start() returns
SASL_CONTINUE it waits for another challenge, and takes the server's
success as "Improper SASL protocol response".  These tests pass because
the mechanism returns SASL_OK after its initial response (plugin/
mechanism.h).

XOAUTH2 never reaches the plugin in Debian's nmh: built with OAuth
support, nmh handles `-saslmech xoauth2` itself (its own sign-in through
mhlogin, -authservice).  test_xoauth2_is_nmh_own_mechanism shows what a
user sees, which is why the README says OAUTHBEARER.
"""
import os
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "sasl"))
import mailenv  # noqa: E402
import nmhlib  # noqa: E402
import sasllib  # noqa: E402
from sasllib import ALICE  # noqa: E402

SETUP = None
MISSING = sasllib.missing_programs(nmhlib.PROGRAMS)


def setUpModule():
    global SETUP
    if MISSING:
        return
    SETUP = sasllib.start_signed_in()


def tearDownModule():
    global SETUP
    setup, SETUP = SETUP, None
    sasllib.stop_checking_leaks(setup)


def subject(tag):
    return "mailoauth-nmh %s %s" % (tag, uuid.uuid4().hex[:12])


class Nmh(unittest.TestCase):

    def setUp(self):
        if SETUP is None:
            self.skipTest("not installed/built: " + " ".join(MISSING))
        self.setup = SETUP
        self.dovecot = SETUP.dovecot
        self.mh = nmhlib.MhUser(SETUP, SETUP.client_env(SETUP.conf),
                                name="nmh-" + uuid.uuid4().hex[:8])

    def logins(self, mark):
        """Dovecot's login lines since MARK (a copy of the log)."""
        part = sasllib.new_part(mark, self.dovecot.log())
        return [line for line in part.splitlines() if "-login: " in line]

    def assert_login(self, mark, service, mech):
        needle = "%s-login: Info: Login: user=<%s>, method=%s" % (
            service, ALICE, mech)
        self.assertTrue(any(needle in line for line in self.logins(mark)),
                        self.setup.redact("\n".join(self.logins(mark))))

    def test_send_submits_with_oauthbearer(self):
        subj = subject("send")
        mark = self.dovecot.log()
        rc, out, _ = self.mh.send(ALICE, ALICE, subj)
        self.assertEqual(rc, 0, out)
        self.assertNotIn("Improper SASL protocol response", out)
        got = self.dovecot.wait_for_message(ALICE, subj, 15)
        self.assertIn(b"with ESMTPSA", got)
        self.assert_login(mark, "submission", "OAUTHBEARER")

    def test_inc_retrieves_with_oauthbearer(self):
        subj = subject("inc")
        self.setup.deliver(ALICE, subj)
        mark = self.dovecot.log()
        rc, out, _ = self.mh.inc()
        self.assertEqual(rc, 0, out)
        self.assertIn("Incorporating new mail into inbox", out)
        self.assertTrue(any(subj.encode() in m for m in self.mh.inbox()),
                        "not in +inbox; inc said: " + out)
        self.assert_login(mark, "pop3", "OAUTHBEARER")

    def test_xoauth2_is_nmh_own_mechanism(self):
        """`-saslmech xoauth2` is nmh's built-in XOAUTH2, which wants its
        own OAuth service (-authservice); the plugin is never asked and
        nothing logs in."""
        mark = self.dovecot.log()
        rc, out, _ = self.mh.send(ALICE, ALICE, subject("send-xoauth2"),
                                  extra=("-saslmech", "xoauth2"))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("must specify -authservice", out)
        rc, out, _ = self.mh.inc(extra=("-saslmech", "xoauth2"))
        self.assertNotEqual(rc, 0, out)
        self.assertIn("must specify -authservice", out)
        self.assertFalse(any("Login: " in line for line in self.logins(mark)),
                         self.logins(mark))

    def test_refused_token_fails_at_once(self):
        """A token the server refuses: nmh ends at once with the server's
        refusal (it reads the error challenge where it expects the final
        reply, so the plugin is not asked to answer it and the token is
        not replaced early).  The login itself is still valid: once the
        token is replaced (here by `mailoauth token --force-refresh`, as
        the README says), nmh works again."""
        idp = self.setup.idp
        before = idp.counters().get("grant:refresh_token", 0)
        idp.revoke_access_tokens(ALICE)
        mark = self.dovecot.log()
        rc, out, secs = self.mh.send(ALICE, ALICE, subject("send-refused"))
        self.assertNotEqual(rc, 0, out)
        self.assertLess(secs, 20, out)
        self.assertIn("Authentication failed", out)
        part = sasllib.new_part(mark, self.dovecot.log())
        self.assertIn("auth failed", part, self.setup.redact(part[-2000:]))
        self.assertEqual(idp.counters().get("grant:refresh_token", 0), before)

        r = self.setup.helper(self.setup.conf, "token", ALICE,
                              "--force-refresh")
        self.assertEqual(r.returncode, 0, self.setup.redact(r.stderr))
        subj = subject("send-after-refresh")
        rc, out, _ = self.mh.send(ALICE, ALICE, subj)
        self.assertEqual(rc, 0, out)
        self.dovecot.wait_for_message(ALICE, subj, 15)


class ReadmeTest(unittest.TestCase):

    def test_readme_shows_the_mh_profile(self):
        text = mailenv.render(nmhlib.PROFILE_TEMPLATE, {
            "SMTP_HOST": "smtp.office365.com", "SUBMISSION_PORT": 587,
            "POP_HOST": "outlook.office365.com", "POP3S_PORT": 995})
        self.assertTrue(mailenv.readme_shows(text),
                        "README.md does not show .mh_profile as:\n" + text)


if __name__ == "__main__":
    import tap
    tap.main()
