"""Real SASL clients through libmailoauth.so against the local Dovecot, after
a real `mailoauth login` (device flow; the fake identity provider approves):

  * imtest, pop3test and smtptest (cyrus-clients) with XOAUTH2 and
    OAUTHBEARER over STARTTLS: IMAP fetches a message placed in the INBOX,
    POP3 retrieves it, SMTP submits one that lands in the maildir;
  * Postfix relaying a message submitted with sendmail(1) with XOAUTH2,
    with the smtp service unchrooted (passes) and chrooted as Debian ships
    it (a named expected failure until the agent lands: the helper cannot
    run inside the chroot);
  * mbsync with AuthMechs XOAUTH2 syncing a message into a local Maildir.

Each test checks that mail moved and that Dovecot logged the mechanism.
The plugin finds the helper and the store through the configuration file
named by MAILOAUTH_CONFIG (helper = ..., store = ...) and libsasl2 finds
the plugin through SASL_PATH.  Token-bearing output is never printed.
"""
import os
import shutil
import sys
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "sasl"))
import mailenv  # noqa: E402
import sasllib  # noqa: E402
from sasllib import ALICE  # noqa: E402

MECHS = ("XOAUTH2", "OAUTHBEARER")


def subject(tag):
    return "mailoauth-sasl %s %s" % (tag, uuid.uuid4().hex[:12])


SETUP = None
MISSING = sasllib.missing_programs()


def setUpModule():
    """One work dir, fake identity provider and Dovecot for the module, and
    a store with alice signed in (as root, who runs the client programs).
    With programs missing, every test reports itself skipped instead."""
    global SETUP
    if MISSING:
        return
    SETUP = sasllib.MailSetup().start()
    try:
        SETUP.store = SETUP.make_store("client")
        SETUP.conf = SETUP.write_config(SETUP.path("client"), SETUP.store)
        SETUP.login(SETUP.conf)
    except BaseException:
        SETUP.stop()
        raise


def tearDownModule():
    global SETUP
    setup, SETUP = SETUP, None
    if setup is None:
        return
    leaks = setup.leaks()
    setup.stop()
    if leaks:
        raise AssertionError("secrets in captured output: %s" % leaks)


class _Clients(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.setup = SETUP
        if SETUP is not None:
            cls.conf = SETUP.conf
            cls.env = SETUP.client_env(SETUP.conf)
            cls.dovecot = SETUP.dovecot

    def setUp(self):
        if self.setup is None:
            self.skipTest("not installed/built: " + " ".join(MISSING))

    def log_mark(self):
        return self.dovecot.log()

    def assert_dovecot_login(self, mark, service, mech, user=ALICE):
        part = sasllib.new_part(mark, self.dovecot.log())
        needle = "%s-login: Info: Login: user=<%s>, method=%s" % (service,
                                                                    user, mech)
        self.assertIn(needle, part, self.setup.redact(part[-3000:]))

    def redacted_postfix_log(self, pf):
        return self.setup.redact(pf.log()[-4000:])


class CyrusClientsTest(_Clients):
    """imtest, pop3test, smtptest from cyrus-clients, each with -m XOAUTH2
    and -m OAUTHBEARER through the plugin (-t "" = STARTTLS)."""

    def imtest(self, mech):
        subj = subject("imtest-" + mech)
        self.setup.deliver(ALICE, subj)
        mark = self.log_mark()
        rc, out, secs = self.setup.run_cyrus(
            "imtest", mech, self.dovecot.ports["imap"],
            b"x1 SELECT INBOX\r\n"
            b"x2 FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n"
            b"x3 LOGOUT\r\n", self.env)
        self.assertIn("Authenticated.", out, out)
        self.assertRegex(out, r"x1 OK \[READ-WRITE\]", out)
        self.assertIn("Subject: " + subj, out, out)
        self.assert_dovecot_login(mark, "imap", mech)

    def test_imtest_xoauth2_fetches_message(self):
        self.imtest("XOAUTH2")

    def test_imtest_oauthbearer_fetches_message(self):
        self.imtest("OAUTHBEARER")

    def pop3test(self, mech):
        subj = subject("pop3test-" + mech)
        self.setup.deliver(ALICE, subj)
        count = len(self.dovecot.messages(ALICE))
        commands = b"STAT\r\n" + b"".join(b"RETR %d\r\n" % (i + 1)
                                          for i in range(count)) + b"QUIT\r\n"
        mark = self.log_mark()
        rc, out, secs = self.setup.run_cyrus(
            "pop3test", mech, self.dovecot.ports["pop3"], commands, self.env)
        self.assertIn("Authenticated.", out, out)
        self.assertRegex(out, r"\+OK %d \d+" % count, out)
        self.assertIn("Subject: " + subj, out, out)
        self.assert_dovecot_login(mark, "pop3", mech)

    def test_pop3test_xoauth2_retrieves_message(self):
        self.pop3test("XOAUTH2")

    def test_pop3test_oauthbearer_retrieves_message(self):
        self.pop3test("OAUTHBEARER")

    def smtptest(self, mech):
        subj = subject("smtptest-" + mech)
        commands = ("MAIL FROM:<{a}>\r\nRCPT TO:<{a}>\r\nDATA\r\n"
                    "From: <{a}>\r\nTo: <{a}>\r\nSubject: {s}\r\n\r\n"
                    "sent by smtptest through mailoauth\r\n.\r\nQUIT\r\n"
                    ).format(a=ALICE, s=subj).encode()
        mark = self.log_mark()
        rc, out, secs = self.setup.run_cyrus(
            "smtptest", mech, self.dovecot.ports["submission"], commands,
            self.env)
        self.assertIn("Authenticated.", out, out)
        got = self.dovecot.wait_for_message(ALICE, subj, 15)
        self.assertIn(b"with ESMTPSA", got)
        self.assert_dovecot_login(mark, "submission", mech)

    def test_smtptest_xoauth2_submits_message(self):
        self.smtptest("XOAUTH2")

    def test_smtptest_oauthbearer_submits_message(self):
        self.smtptest("OAUTHBEARER")


class MbsyncTest(_Clients):

    def test_mbsync_xoauth2_syncs_message(self):
        if not os.path.exists(sasllib.MBSYNC):
            self.skipTest("mbsync (isync) not installed")
        subj = subject("mbsync")
        self.setup.deliver(ALICE, subj)
        mark = self.log_mark()
        rc, out, synced = self.setup.mbsync(self.env)
        self.assertEqual(rc, 0, out)
        self.assertTrue(any(subj.encode() in m for m in synced),
                        "message not synced; mbsync said: " + out)
        self.assert_dovecot_login(mark, "imap", "XOAUTH2")


@unittest.skipUnless(mailenv.is_root(), "the Postfix instance needs root")
class PostfixTest(_Clients):
    """Postfix relays through Dovecot's submission port with
    smtp_sasl_mechanism_filter = xoauth2.

    The smtp(8) client runs as user postfix and the plugin runs the helper
    as that user, so the store belongs to postfix: a 0700 directory owned
    by postfix, signed in with `mailoauth login` run as postfix (the helper
    refuses a store owned by anybody else, and creating the files as the
    owner is simpler than chown -R after a login as root).  The helper is
    copied next to the store so that user postfix can run it wherever the
    build tree is.  The configuration file (helper, store) and SASL_PATH
    reach smtp through import_environment.  The password map needs an entry
    for the relay, or Postfix does not authenticate; its password is not
    used.
    """

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if cls.setup is None:
            return
        home = cls.setup.path("postfix-mailoauth")
        cls.pf_store = cls.setup.make_store("postfix-mailoauth",
                                            owner="postfix")
        bindir = cls.setup.path("bin")
        os.makedirs(bindir, exist_ok=True)
        os.chmod(bindir, 0o755)
        cls.pf_helper = os.path.join(bindir, "mailoauth")
        shutil.copy(sasllib.helper_path(), cls.pf_helper)
        os.chmod(cls.pf_helper, 0o755)
        # ... with its HTTP module where a build-tree binary looks for it.
        moddir = os.path.join(bindir, "tokenhelper", ".libs")
        os.makedirs(moddir, mode=0o755, exist_ok=True)
        shutil.copy(os.path.join(os.path.dirname(sasllib.helper_path()), "tokenhelper", ".libs",
                                 "mailoauth-curl.so"), moddir)
        for d in (os.path.join(bindir, "tokenhelper"), moddir):
            os.chmod(d, 0o755)
        cls.pf_conf = cls.setup.write_config(home, cls.pf_store,
                                             helper=cls.pf_helper)
        cls.setup.login(cls.pf_conf, run_as="postfix", helper=cls.pf_helper)

    def relay(self, chroot):
        return mailenv.Postfix(
            self.setup.work.path, self.dovecot.ports["submission"],
            self.setup.ca.ca_file, sasl_passwords={ALICE: "unused"},
            mechanism_filter="xoauth2", chroot=chroot,
            name="postfix-chroot-%s" % ("y" if chroot else "n"),
            environment={"SASL_PATH": sasllib.sasl_path(),
                         "MAILOAUTH_CONFIG": self.pf_conf})

    def send_and_wait(self, pf, tag):
        """sendmail a message; wait until the smtp client reports it sent
        or deferred.  Returns (subject, status)."""
        subj = subject(tag)
        pf.sendmail(ALICE, ALICE, ("From: <{a}>\r\nTo: <{a}>\r\nSubject: {s}"
                                   "\r\n\r\nrelayed by Postfix\r\n").format(
                                       a=ALICE, s=subj))

        def outcome():
            log = pf.log()
            for status in ("status=sent", "status=deferred",
                           "status=bounced"):
                if "postfix/smtp[" in log and status in log:
                    return status
            return None
        try:
            status = mailenv.wait_for(outcome, 30, 0.2,
                                      what="the smtp client's verdict")
        except TimeoutError:
            status = "no verdict in 30 s"
        return subj, status

    def run_relay(self, chroot):
        pf = self.relay(chroot)
        mark = self.log_mark()
        pf.start()
        pid = pf.pid
        try:
            subj, status = self.send_and_wait(
                pf, "postfix-chroot-%s" % ("y" if chroot else "n"))
            log = self.redacted_postfix_log(pf)
            if status != "status=sent":
                reasons = [line for line in log.splitlines()
                           if "SASL" in line or "status=" in line]
                self.fail("Postfix did not relay (%s): %s" % (
                    status, "\n".join(reasons[-6:]) or log))
            got = self.dovecot.wait_for_message(ALICE, subj, 15)
            self.assertIn(b"by client.localhost (Postfix", got)
            self.assertIn(b"with ESMTPSA", got)
            self.assert_dovecot_login(mark, "submission", "XOAUTH2")
            self.assertNotIn("SASL authentication failed", log)
        finally:
            pf.stop()
            self.assertFalse(mailenv.pid_alive(pid),
                             "postfix master %d still running" % pid)
            self.setup.outputs.append(("postfix log", pf.log()))

    def test_postfix_unchrooted_smtp_relays_xoauth2(self):
        self.run_relay(chroot=False)

    @unittest.expectedFailure
    def test_postfix_chrooted_smtp_relays_xoauth2_needs_agent(self):
        """Debian's master.cf runs smtp chrooted in the queue directory.
        libsasl2 loads the plugin (and the plugin reads its configuration)
        before the chroot, but the helper is started per login, inside the
        chroot: neither the mailoauth binary and its libraries nor the
        store exist there (and the store is not readable by user postfix
        unless it is copied in), so the plugin fails with "cannot run the
        token helper ... (inside a chroot the helper must exist there too)"
        and Postfix defers the message.  The agent issue (a socket the
        plugin talks to instead of running the helper) fixes this; then
        this test passes and the decorator must go."""
        self.run_relay(chroot=True)


if __name__ == "__main__":
    import tap
    tap.main()
