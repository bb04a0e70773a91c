"""More programs that take a token command, against the real Dovecot, each
with the configuration the README shows (tests/e2e/clients/*.in, rendered
with the local host, ports and CA file) and its trap avoided:

  mpop      retrieves over POP3 with implicit TLS into a Maildir
            (`auth xoauth2`: left to choose, mpop sends the token as a
            password with another mechanism);
  curl      fetches a message over IMAPS and sends one over submission
            (--ssl-reqd: without it curl carries on in clear text when
            STARTTLS is missing; the token reaches curl on standard input,
            never in its argv).  Offered both, Debian 12's curl picks
            OAUTHBEARER, --login-options AUTH=XOAUTH2 or not: Dovecot logs
            that mechanism;
  offlineimap3
            syncs the INBOX over IMAPS with oauth2_access_token_eval
            (implicit TLS with sslcacertfile: on STARTTLS offlineimap checks
            no certificate) and auth_mechanisms = XOAUTH2;
  s-nail    sends over submission (`smtp-auth=oauthbearer` needs
            v15-compat and sends XOAUTH2; the token goes into its `password`
            variable from a macro run before each message);
  Python    imaplib and smtplib (the error challenge is answered with an
            empty response, not the token again; smtplib's starttls()
            checks no certificate unless given a context).

The fixtures (fake identity provider, Dovecot, one `mailoauth login`, the
user's home with `mailoauth` on PATH) are test_token_clients.py's.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import helperlib  # noqa: E402
import mailenv  # noqa: E402
import test_token_clients as ttc  # noqa: E402

ALICE = ttc.ALICE
README_VALUES = dict(ttc.README_VALUES, POP_HOST="outlook.office365.com",
                     POP3S_PORT="995", SUBJECT="hello")
TEMPLATES = ("mpoprc.in", "curl-imap.sh.in", "curl-smtp.sh.in",
             "python-imap.py.in", "python-smtp.py.in", "offlineimaprc.in",
             "offlineimap.py.in", "mailrc.in")


class MoreClients(ttc.TokenClients):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.values = dict(cls.values, POP_HOST="127.0.0.1",
                          POP3S_PORT=cls.dovecot.ports["pop3s"],
                          SUBJECT="unset")

    def install_as(self, template, relpath, values, mode=0o600):
        path = os.path.join(self.home, relpath)
        with open(path, "w") as f:
            f.write(ttc.render_client(template, values))
        os.chmod(path, mode)
        return path

    def assert_login(self, service, mech, offset):
        line = "%s-login: Info: Login: user=<%s>, method=%s" % (service, ALICE, mech)
        try:
            mailenv.wait_for(lambda: line in self.dovecot.log()[offset:], 10,
                             what="dovecot log line %r" % line)
        except TimeoutError:
            self.fail("no %r in the dovecot log:\n%s" % (
                line, ttc.redact(self.dovecot.log()[offset:], self.secrets())))
        self.assertNotIn("method=PLAIN", self.dovecot.log()[offset:])

    # mpop --------------------------------------------------------------------
    def test_mpop_retrieves_into_maildir(self):
        self.need("mpop")
        self.install("mpoprc.in", ".mpoprc")
        maildir = os.path.join(self.home, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)
        subject = ttc.unique_subject("mpop")
        self.put_message(subject)
        offset = self.log_offset()
        rc, text = self.run_client("mpop", ["mpop", "--quiet"])
        self.assertEqual(rc, 0, self.explain("mpop", rc, text, offset))
        found = False
        for sub in ("new", "cur"):
            for name in os.listdir(os.path.join(maildir, sub)):
                with open(os.path.join(maildir, sub, name), "rb") as f:
                    found = found or subject.encode() in f.read()
        self.assertTrue(found, self.explain("mpop", rc, text, offset))
        self.assert_login("pop3", "XOAUTH2", offset)

    # curl --------------------------------------------------------------------
    def test_curl_fetches_over_imaps(self):
        self.need("curl")
        subject = ttc.unique_subject("curl-imap")
        # UID 1 is the first message ever put in the INBOX: start afresh.
        self.put_message(subject)
        script = self.install_as("curl-imap.sh.in", "curl-imap.sh", self.values, 0o700)
        offset = self.log_offset()
        rc, text = self.run_client("curl", ["bash", script])
        self.assertEqual(rc, 0, self.explain("curl", rc, text, offset))
        self.assertTrue("Subject: " in text, self.explain("curl", rc, text, offset))
        self.assert_login("imap", "OAUTHBEARER", offset)

    def test_curl_sends_over_submission(self):
        self.need("curl")
        subject = ttc.unique_subject("curl-smtp")
        with open(os.path.join(self.home, "message.txt"), "wb") as f:
            f.write(ttc.message(subject))
        script = self.install_as("curl-smtp.sh.in", "curl-smtp.sh", self.values, 0o700)
        offset = self.log_offset()
        rc, text = self.run_client("curl", ["bash", script])
        self.assertEqual(rc, 0, self.explain("curl", rc, text, offset))
        got = self.wait_delivered(subject, "curl", rc, text, offset)
        self.assertIn(b"with ESMTPSA", got)
        self.assert_login("submission", "OAUTHBEARER", offset)

    # offlineimap3 ------------------------------------------------------------
    def test_offlineimap3_syncs_inbox_over_imaps(self):
        self.need("offlineimap")
        self.install("offlineimaprc.in", ".offlineimaprc")
        self.install("offlineimap.py.in", ".offlineimap.py")
        maildir = os.path.join(self.home, "Mail", "office365")
        os.makedirs(maildir, exist_ok=True)
        subject = ttc.unique_subject("offlineimap")
        self.put_message(subject)
        offset = self.log_offset()
        rc, text = self.run_client("offlineimap",
                                   ["offlineimap", "-o", "-u", "basic"])
        self.assertEqual(rc, 0, self.explain("offlineimap", rc, text, offset))
        found = False
        for root, _dirs, files in os.walk(os.path.join(maildir, "INBOX")):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    found = found or subject.encode() in f.read()
        self.assertTrue(found, "not synced: " +
                        self.explain("offlineimap", rc, text, offset))
        self.assert_login("imap", "XOAUTH2", offset)

    # s-nail ------------------------------------------------------------------
    def test_s_nail_sends_over_submission(self):
        self.need("s-nail")
        mailrc = self.install("mailrc.in", ".mailrc")
        subject = ttc.unique_subject("s-nail")
        offset = self.log_offset()
        # -n: not /etc/s-nail.rc; the configuration is the user's ~/.mailrc.
        # For root s-nail replaces $HOME by root's own home, for itself and
        # the commands it runs, so MAILRC names the test home's file,
        # XDG_STATE_HOME its token store, and DEAD keeps a failed message
        # in the work directory.
        state = os.path.join(self.home, ".local", "state")
        rc, text = self.run_client(
            "s-nail", ["env", "MAILRC=" + mailrc, "XDG_STATE_HOME=" + state,
                       "s-nail", "-n",
                       "-S", "DEAD=" + os.path.join(self.work.path, "dead.letter"),
                       "-s", subject, ALICE],
            stdin=b"sent by s-nail\n")
        self.assertEqual(rc, 0, self.explain("s-nail", rc, text, offset))
        got = self.wait_delivered(subject, "s-nail", rc, text, offset)
        self.assertIn(b"with ESMTPSA", got)
        # Its setting is named oauthbearer; what it sends is XOAUTH2.
        self.assert_login("submission", "XOAUTH2", offset)

    # Python ------------------------------------------------------------------
    def test_python_imaplib_lists_inbox(self):
        subject = ttc.unique_subject("imaplib")
        self.put_message(subject)
        script = self.install_as("python-imap.py.in", "imap.py", self.values)
        offset = self.log_offset()
        rc, text = self.run_client("imaplib", [sys.executable, script])
        self.assertEqual(rc, 0, self.explain("imaplib", rc, text, offset))
        self.assertRegex(text, r"^[1-9][0-9]* messages$")
        self.assert_login("imap", "XOAUTH2", offset)

    def test_python_smtplib_sends(self):
        subject = ttc.unique_subject("smtplib")
        script = self.install_as("python-smtp.py.in", "smtp.py",
                                 dict(self.values, SUBJECT=subject))
        offset = self.log_offset()
        rc, text = self.run_client("smtplib", [sys.executable, script])
        self.assertEqual(rc, 0, self.explain("smtplib", rc, text, offset))
        got = self.wait_delivered(subject, "smtplib", rc, text, offset)
        self.assertIn(b"with ESMTPSA", got)
        self.assert_login("submission", "XOAUTH2", offset)

    def test_readme_shows_these_configurations(self):
        for template in TEMPLATES:
            text = ttc.render_client(template, README_VALUES)
            self.assertTrue(mailenv.readme_shows(text),
                            "README.md does not show %s as:\n%s" % (template, text))


# Only the tests above: the inherited ones run in test_token_clients.py.
for _name in dir(ttc.TokenClients):
    if _name.startswith("test_") and _name not in vars(MoreClients):
        setattr(MoreClients, _name, None)


class ZzNoSecretsInOutput(helperlib.ZzNoSecretsInOutput):
    """Runs last: no token the fake issued in anything captured."""

    def setUp(self):
        if not helperlib.captured_output:
            self.skipTest("no client ran")


if __name__ == "__main__":
    import tap
    tap.main()
