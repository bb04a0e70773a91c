"""Mail programs that take a token command, against the real Dovecot.

Debian builds mutt, neomutt and msmtp with GNU SASL, not Cyrus SASL, and
getmail6 is Python: none of them loads libmailoauth.so.  They do XOAUTH2
themselves and run `mailoauth token ACCOUNT` for the bearer token.  Each test
here runs the Debian program with the configuration the README shows
(tests/e2e/clients/*.in; only host, port and CA file differ, see
README_VALUES) after one real `mailoauth login` through the device flow
against the fake identity provider, and checks that mail moved:

  msmtp     sends over submission (STARTTLS); the message is in the maildir
  mutt      lists the IMAP inbox (IMAPS): the screen shows a message put there
            sends through smtp_url (STARTTLS); the message is in the maildir
  neomutt   the same two, with the same muttrc
  getmail6  retrieves a message over IMAPS into a local Maildir

and that Dovecot logged the login with method=XOAUTH2 (so a PLAIN fallback
cannot pass).  fetchmail is not here: Debian's fetchmail (6.4) has no OAuth
mechanism at all (`--auth oauthbearer` is "Invalid authentication"), so it
reaches the server through `mailoauth connect` (tests/e2e/test_connect.py).

Client output is never printed unredacted: tokens are removed first, and the
module ends with helperlib's check that no token the fake issued appears in
anything captured.
"""
import base64
import imaplib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import unittest
import uuid

import fakeidp
import helperlib
import mailenv

ALICE = "alice@example.com"
ALICE_PW = "alice-static-password"      # only to put test messages in place
CLIENT_TIMEOUT = 30

# The README shows these templates rendered with README_VALUES; the tests
# render them with the local servers' host, ports and the test CA.
TEMPLATES = ("msmtprc.in", "muttrc.in", "getmailrc.in")
README_VALUES = {
    "IMAP_HOST": "outlook.office365.com",
    "IMAPS_PORT": "993",
    "SMTP_HOST": "smtp.office365.com",
    "SUBMISSION_PORT": "587",
    "CA_FILE": "/etc/ssl/certs/ca-certificates.crt",
}


def mailoauth_bin():
    return os.path.abspath(helperlib.MAILOAUTH)


def render_client(template, values):
    return mailenv.render(os.path.join("clients", template), values)


def unique_subject(tag):
    # No spaces: curses may replace blanks by cursor movement on screen.
    return "mailoauth-%s-%s" % (tag, uuid.uuid4().hex[:12])


def message(subject, sender=ALICE, to=ALICE):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n"
            % (sender, to, subject, subject)).encode()


# A path may be long; a base64 or token-like run of 40+ characters is not
# printed even if it is not one of the fake's secrets.
_LONG_RUN = re.compile(r"(?<![A-Za-z0-9+/_.~-])[A-Za-z0-9+/_-]{40,}={0,2}")


def xoauth2_forms(secret, user=ALICE):
    """The base64 of the XOAUTH2 response carrying SECRET, as a client's
    debug output would show it."""
    raw = "user=%s\x01auth=Bearer %s\x01\x01" % (user, secret)
    return [base64.b64encode(raw.encode()).decode()]


def redact(text, secrets):
    for s in sorted(secrets, key=len, reverse=True):
        if len(s) >= 8:
            text = text.replace(s, "[REDACTED]")
    return _LONG_RUN.sub(lambda m: m.group(0) if m.group(0).startswith("/")
                         else "[REDACTED]", text)


class TokenClients(unittest.TestCase):
    """One work dir, one fake IdP, one Dovecot and one `mailoauth login`."""

    @classmethod
    def setUpClass(cls):
        need = [mailenv.DOVECOT, "/usr/lib/dovecot/submission",
                "/usr/lib/dovecot/lmtp", mailoauth_bin()]
        missing = [p for p in need if not os.path.exists(p)]
        if missing:
            raise unittest.SkipTest("not installed: " + " ".join(missing))
        cls.work = mailenv.WorkDir()
        cls.idp = cls.dovecot = None
        try:
            cls.ca = mailenv.test_ca(cls.work.path)
            cls.idp = fakeidp.FakeIdP(os.path.join(cls.work.path, "idp"),
                                      ca=os.path.join(cls.work.path, "ca"))
            cls.idp.start()
            cls.dovecot = mailenv.Dovecot(
                cls.work.path, introspection_url=cls.idp.introspection_url,
                ca=cls.ca, users={ALICE: ALICE_PW})
            cls.dovecot.start()
            cls.dovecot_pid = cls.dovecot.pid
            cls._make_home()
            cls._login()
        except BaseException:
            cls._teardown()
            if not os.environ.get("MAILOAUTH_KEEP_WORKDIR"):
                cls.work.cleanup()
            raise

    @classmethod
    def _make_home(cls):
        """A user's home: `mailoauth` on PATH as itself, the token store in
        its default place (~/.local/state/mailoauth), the configurations
        where the programs look for them."""
        cls.home = os.path.join(cls.work.path, "home")
        os.makedirs(cls.home)
        os.chmod(cls.home, 0o755)
        cls.bindir = os.path.join(cls.work.path, "bin")
        os.makedirs(cls.bindir)
        os.symlink(mailoauth_bin(), os.path.join(cls.bindir, "mailoauth"))
        cls.config = os.path.join(cls.work.path, "mailoauth.conf")
        with open(cls.config, "w") as f:
            f.write("http_timeout = 5\n")
        cls.values = {
            "IMAP_HOST": "127.0.0.1",
            "IMAPS_PORT": cls.dovecot.ports["imaps"],
            "SMTP_HOST": "127.0.0.1",
            "SUBMISSION_PORT": cls.dovecot.ports["submission"],
            "CA_FILE": cls.dovecot.ca_file,
        }

    @classmethod
    def env(cls):
        # Only the environment a user's shell has; MAILOAUTH_CONFIG keeps a
        # configuration file installed on this machine out of the test.
        return {"PATH": cls.bindir + ":/usr/bin:/bin", "HOME": cls.home,
                "LANG": "C.UTF-8", "TERM": "vt100",
                "MAILOAUTH_CONFIG": cls.config}

    @classmethod
    def _login(cls):
        proc = subprocess.Popen(
            ["mailoauth", "login", ALICE, "--client-id", cls.idp.client_id,
             "--authority", cls.idp.authority(), "--ca-file",
             cls.idp.ca_file], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=cls.env(), cwd=cls.home)
        try:
            code = cls.idp.wait_for_pending(timeout=15)
            cls.idp.approve(code, username=ALICE)
            out, err = proc.communicate(timeout=30)
        except BaseException:
            proc.kill()
            proc.wait(5)
            raise
        helperlib.captured_output.append(("login", out + err))
        if proc.returncode != 0:
            raise RuntimeError("mailoauth login failed (%d): %s" % (
                proc.returncode, redact(err, cls.idp.issued_secrets())))

    @classmethod
    def _teardown(cls):
        if cls.dovecot:
            cls.dovecot.stop()
        if cls.idp:
            if cls.idp.running():
                secrets = cls.idp.issued_secrets()
                helperlib.issued_secrets.update(
                    s for s in secrets if len(s) >= 8)
                for s in secrets:
                    if len(s) >= 8:
                        helperlib.issued_secrets.update(xoauth2_forms(s))
            cls.idp.stop()

    @classmethod
    def tearDownClass(cls):
        cls._teardown()
        pid = getattr(cls, "dovecot_pid", None)
        if pid and mailenv.pid_alive(pid):
            raise AssertionError("dovecot %d still running" % pid)
        if os.environ.get("MAILOAUTH_KEEP_WORKDIR"):
            print("# kept " + cls.work.path, flush=True)
        else:
            cls.work.cleanup()

    # helpers -----------------------------------------------------------------

    def need(self, *programs):
        missing = [p for p in programs if not shutil.which(p)]
        if missing:
            self.skipTest("not installed: " + " ".join(missing))

    def install(self, template, relpath, mode=0o600):
        """Render a client template into the home directory."""
        path = os.path.join(self.home, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(render_client(template, self.values))
        os.chmod(path, mode)
        return path

    def secrets(self):
        s = set(self.idp.issued_secrets())
        return s | {f for x in s if len(x) >= 8 for f in xoauth2_forms(x)}

    def run_client(self, what, argv, stdin=b"", timeout=CLIENT_TIMEOUT,
                   keep_stdin_open=False):
        """Run ARGV in the home directory with the user's environment.
        Returns (exit status or None on timeout, output text).  On timeout
        the process group started here is killed."""
        fd, out_path = tempfile.mkstemp(prefix="out-", dir=self.work.path)
        with os.fdopen(fd, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out,
                                    stderr=subprocess.STDOUT, env=self.env(),
                                    cwd=self.home, start_new_session=True)
        try:
            if stdin:
                proc.stdin.write(stdin)
            if not keep_stdin_open:
                proc.stdin.close()
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
            rc = None
        finally:
            if not proc.stdin.closed:
                proc.stdin.close()
        with open(out_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        os.unlink(out_path)
        helperlib.captured_output.append((what, text))
        return rc, text

    def explain(self, what, rc, text, log_offset):
        """A failure message with the redacted client output and the new
        part of Dovecot's log."""
        secrets = self.secrets()
        return "%s exited %s\n--- output ---\n%s\n--- dovecot log ---\n%s" % (
            what, "by timeout" if rc is None else rc,
            redact(text, secrets)[-4000:],
            redact(self.dovecot.log()[log_offset:], secrets)[-4000:])

    def log_offset(self):
        return len(self.dovecot.log())

    def assert_xoauth2_login(self, service, offset):
        """Dovecot logged SERVICE's login of alice with XOAUTH2 since
        OFFSET, and no PLAIN login."""
        line = "%s-login: Info: Login: user=<%s>, method=XOAUTH2" % (
            service, ALICE)
        try:
            mailenv.wait_for(lambda: line in self.dovecot.log()[offset:], 10,
                             what="dovecot log line %r" % line)
        except TimeoutError:
            self.fail("no %r in the dovecot log:\n%s" % (
                line, redact(self.dovecot.log()[offset:], self.secrets())))
        self.assertFalse("method=PLAIN" in self.dovecot.log()[offset:],
                         "a PLAIN login too: " + redact(
                             self.dovecot.log()[offset:], self.secrets()))

    def put_message(self, subject):
        """Put a message into alice's INBOX (IMAP APPEND, static password),
        and wait until Dovecot has logged that PLAIN login, so that it is
        not counted against the client that runs next."""
        offset = self.log_offset()
        m = imaplib.IMAP4_SSL("127.0.0.1", self.dovecot.ports["imaps"],
                              ssl_context=self.dovecot.ssl_context(),
                              timeout=20)
        try:
            m.login(ALICE, ALICE_PW)
            self.assertEqual(m.append("INBOX", None, None,
                                      message(subject, sender="bob@example.com"
                                              ))[0], "OK")
        finally:
            m.logout()
        mailenv.wait_for(lambda: "method=PLAIN" in self.dovecot.log()[offset:],
                         10, what="the PLAIN login in the dovecot log")

    def wait_delivered(self, subject, what, rc, text, offset):
        try:
            return self.dovecot.wait_for_message(ALICE, subject, 15)
        except TimeoutError:
            self.fail("message not in the maildir: " +
                      self.explain(what, rc, text, offset))

    # msmtp -------------------------------------------------------------------

    def test_msmtp_sends_message_that_lands_in_maildir(self):
        self.need("msmtp")
        self.install("msmtprc.in", ".msmtprc")
        subject = unique_subject("msmtp")
        offset = self.log_offset()
        rc, text = self.run_client("msmtp", ["msmtp", ALICE],
                                   stdin=message(subject))
        self.assertEqual(rc, 0, self.explain("msmtp", rc, text, offset))
        got = self.wait_delivered(subject, "msmtp", rc, text, offset)
        self.assertTrue(b"with ESMTPSA" in got, "not submitted with AUTH")
        self.assert_xoauth2_login("submission", offset)

    # mutt and neomutt --------------------------------------------------------

    def _mutt_lists_inbox(self, program):
        self.need(program, "script")
        self.install("muttrc.in", ".muttrc")
        subject = unique_subject(program + "-imap")
        self.put_message(subject)
        offset = self.log_offset()
        # The index needs a terminal: script(1) gives it a pseudo-terminal
        # (wide enough for the subject); mutt draws the index, then reads
        # the pushed <quit>.  stdin stays open so script never sends EOF
        # (^D) into the terminal.
        # -n: not /etc/Muttrc; the configuration is the user's ~/.muttrc.
        cmd = "stty rows 50 cols 200; exec %s -n -e 'push <quit>'" % program
        rc, text = self.run_client(program,
                                   ["script", "-qec", cmd, "/dev/null"],
                                   keep_stdin_open=True)
        self.assertEqual(rc, 0, self.explain(program, rc, text, offset))
        # (assertTrue, not assertIn: its message would repeat the output
        # unredacted.)
        self.assertTrue(subject in text,
                        "the index does not show %s: %s" % (
                            subject, self.explain(program, rc, text, offset)))
        self.assert_xoauth2_login("imap", offset)

    def _mutt_sends(self, program):
        self.need(program)
        self.install("muttrc.in", ".muttrc")
        subject = unique_subject(program + "-smtp")
        offset = self.log_offset()
        # Batch mode (stdin is not a terminal): send the body on stdin.
        rc, text = self.run_client(
            program, [program, "-n", "-s", subject, "--", ALICE],
            stdin=b"sent by %s\n" % program.encode())
        self.assertEqual(rc, 0, self.explain(program, rc, text, offset))
        got = self.wait_delivered(subject, program, rc, text, offset)
        self.assertTrue(b"with ESMTPSA" in got, "not submitted with AUTH")
        self.assert_xoauth2_login("submission", offset)

    def test_mutt_lists_imap_inbox(self):
        self._mutt_lists_inbox("mutt")

    def test_mutt_sends_through_smtp_url(self):
        self._mutt_sends("mutt")

    def test_neomutt_lists_imap_inbox(self):
        self._mutt_lists_inbox("neomutt")

    def test_neomutt_sends_through_smtp_url(self):
        self._mutt_sends("neomutt")

    # getmail6 ----------------------------------------------------------------

    def test_getmail_retrieves_into_local_maildir(self):
        self.need("getmail")
        rc_file = self.install("getmailrc.in", os.path.join(".getmail",
                                                            "getmailrc"))
        maildir = os.path.join(self.home, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(maildir, sub), exist_ok=True)
        if os.geteuid() == 0:
            # getmail refuses to deliver as root (a user runs it as
            # themselves); as root it must be told whom to deliver as.  The
            # only line the test adds to the README's configuration.
            self._deliver_as(rc_file, maildir, "nobody")
        subject = unique_subject("getmail")
        self.put_message(subject)
        offset = self.log_offset()
        rc, text = self.run_client("getmail", ["getmail"])
        self.assertEqual(rc, 0, self.explain("getmail", rc, text, offset))
        found = []
        for sub in ("new", "cur"):
            d = os.path.join(maildir, sub)
            for name in os.listdir(d):
                with open(os.path.join(d, name), "rb") as f:
                    if subject.encode() in f.read():
                        found.append(name)
        self.assertTrue(found, "not retrieved into %s: %s" % (
            maildir, self.explain("getmail", rc, text, offset)))
        self.assert_xoauth2_login("imap", offset)

    @staticmethod
    def _deliver_as(rc_file, maildir, user):
        with open(rc_file) as f:
            text = f.read()
        text = text.replace("[destination]\n",
                            "[destination]\nuser = %s\n" % user, 1)
        with open(rc_file, "w") as f:
            f.write(text)
        pw = pwd.getpwnam(user)
        for root, dirs, _files in os.walk(maildir):
            os.chown(root, pw.pw_uid, pw.pw_gid)

    # the README --------------------------------------------------------------

    def test_readme_shows_these_configurations(self):
        """Each configuration above, with Office 365's host names, ports and
        the system CA bundle, is in the README line for line."""
        for template in TEMPLATES:
            text = render_client(template, README_VALUES)
            self.assertTrue(mailenv.readme_shows(text),
                            "README.md does not show %s as:\n%s" % (
                                template, text))


class ZzNoSecretsInOutput(helperlib.ZzNoSecretsInOutput):
    """Runs last: no token the fake issued (nor its XOAUTH2 base64 form)
    in anything captured from mailoauth or the clients."""

    def setUp(self):
        if not helperlib.captured_output:
            self.skipTest("no client ran")


if __name__ == "__main__":
    import tap
    tap.main()
