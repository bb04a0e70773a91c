"""A token the server refuses, with every SASL client of the suite that can
answer the error challenge, through libmailoauth.so against the local
Dovecot (the fake identity provider revokes the access tokens; the login
stays valid):

  * pop3test, smtptest and imtest with XOAUTH2 and OAUTHBEARER: the reply
    to Dovecot's JSON error challenge is empty (XOAUTH2) or a single ^A
    (OAUTHBEARER, RFC 7628 3.2.3), Dovecot reports the failure as a failed
    login (not a cancelled one), the plugin asks for a new token with a
    forced refresh at once (one refresh at the provider), and the next run
    of the same program logs in;
  * mbsync: the same, and it ends at once (not when the server gives up
    waiting for the reply; see plugin/mechanism.h for why mbsync is told
    SASL_CONTINUE).

The mechanism now returns SASL_OK after its initial response with the
doneflag left at 0 (so that nmh, which follows the API strictly, works):
these show that libsasl2 and these programs still pass the error
challenge to it.  Postfix is in test_sasl_clients.py (its own store),
nmh in test_nmh.py (it does not pass the challenge on).
"""
import base64
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "sasl"))
import mailenv  # noqa: E402
import sasllib  # noqa: E402
from sasllib import ALICE  # noqa: E402

SETUP = None
MISSING = sasllib.missing_programs((sasllib.MBSYNC,))
# What the client sent right after the server's challenge, as the cyrus
# tools print it ("C: " and the base64 of the reply).
REPLY = {"XOAUTH2": "", "OAUTHBEARER": "AQ=="}


def setUpModule():
    global SETUP
    if MISSING:
        return
    SETUP = sasllib.start_signed_in(extra="log_level = debug\n")


def tearDownModule():
    global SETUP
    setup, SETUP = SETUP, None
    sasllib.stop_checking_leaks(setup)


def challenges(out):
    """Decoded JSON of the server challenges ("S: + ..." in IMAP and POP3,
    "S: 334 ..." in SMTP) in a cyrus tool's output."""
    found = []
    for m in re.finditer(r"^S: (?:\+|334) ([A-Za-z0-9+/=]+)\s*$", out, flags=re.M):
        try:
            found.append(json.loads(base64.b64decode(m.group(1))))
        except ValueError:
            pass
    return found


def reply_after_challenge(raw):
    """The client line after the "S: + ..." / "S: 334 ..." challenge in a
    cyrus tool's unredacted output, without the "C: " (only that line is
    kept: the line before it carries the token)."""
    lines = raw.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"S: (\+|334) [A-Za-z0-9+/=]+\s*$", line):
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            return nxt[3:].strip() if nxt.startswith("C: ") else None
    return None


class RefusedToken(unittest.TestCase):

    TOOLS = {"imtest": ("imap", b"x1 SELECT INBOX\r\nx2 LOGOUT\r\n"),
             "pop3test": ("pop3", b"STAT\r\nQUIT\r\n"),
             "smtptest": ("submission", b"QUIT\r\n")}

    def setUp(self):
        if SETUP is None:
            self.skipTest("not installed/built: " + " ".join(MISSING))
        self.setup = SETUP
        self.idp = SETUP.idp
        self.dovecot = SETUP.dovecot
        self.env = SETUP.client_env(SETUP.conf)

    def refreshes(self):
        return self.idp.counters().get("grant:refresh_token", 0)

    def run_tool(self, tool, mech):
        service, commands = self.TOOLS[tool]
        rc, out, err = mailenv.run_session(
            [sasllib.cyrus(tool), "-t", "", "-m", mech, "-a", ALICE, "-p",
             str(self.dovecot.ports[service]), "127.0.0.1"], commands,
            env=self.env, timeout=60)
        raw = (out + err).decode("utf-8", "replace")
        self.setup.outputs.append((tool, raw))
        return raw, self.setup.redact(raw)

    def refused_then_recovers(self, tool, mech):
        before = self.refreshes()
        self.idp.revoke_access_tokens(ALICE)
        mark = self.dovecot.log()
        raw, out = self.run_tool(tool, mech)
        self.assertNotIn("Authenticated.", out, out)
        self.assertIn("Authentication failed", out, out)
        self.assertEqual(len(challenges(out)), 1, out)
        self.assertEqual(reply_after_challenge(raw), REPLY[mech], out)
        part = sasllib.new_part(mark, self.dovecot.log())
        self.assertRegex(part, r"auth failed, 1 attempts", self.setup.redact(part[-3000:]))
        self.assertEqual(self.refreshes(), before + 1, out)
        # A new process, the new token.
        mark = self.dovecot.log()
        raw, out = self.run_tool(tool, mech)
        self.assertIn("Authenticated.", out, out)
        self.assertIn("Login: user=<%s>, method=%s" % (ALICE, mech),
                      sasllib.new_part(mark, self.dovecot.log()))
        self.assertEqual(self.refreshes(), before + 1)

    def test_imtest_xoauth2(self):
        self.refused_then_recovers("imtest", "XOAUTH2")

    def test_imtest_oauthbearer(self):
        self.refused_then_recovers("imtest", "OAUTHBEARER")

    def test_pop3test_xoauth2(self):
        self.refused_then_recovers("pop3test", "XOAUTH2")

    def test_pop3test_oauthbearer(self):
        self.refused_then_recovers("pop3test", "OAUTHBEARER")

    def test_smtptest_xoauth2(self):
        self.refused_then_recovers("smtptest", "XOAUTH2")

    def test_smtptest_oauthbearer(self):
        self.refused_then_recovers("smtptest", "OAUTHBEARER")

    def test_mbsync_fails_at_once_then_syncs(self):
        before = self.refreshes()
        self.idp.revoke_access_tokens(ALICE)
        mark = self.dovecot.log()
        rc, out, _ = self.setup.mbsync(self.env, name="mbsync-refused")
        self.assertNotEqual(rc, 0, out)
        self.assertIn("NO [AUTHENTICATIONFAILED]", out)
        self.assertNotIn("despite successful SASL authentication", out)
        part = sasllib.new_part(mark, self.dovecot.log())
        self.assertRegex(part, r"auth failed, 1 attempts", self.setup.redact(part[-3000:]))
        self.assertNotIn("inactivity", part)
        self.assertEqual(self.refreshes(), before + 1, out)
        subj = "mailoauth-refused mbsync %d" % os.getpid()
        self.setup.deliver(ALICE, subj)
        rc, out, synced = self.setup.mbsync(self.env, name="mbsync-refused")
        self.assertEqual(rc, 0, out)
        self.assertTrue(any(subj.encode() in m for m in synced), out)


if __name__ == "__main__":
    import tap
    tap.main()
