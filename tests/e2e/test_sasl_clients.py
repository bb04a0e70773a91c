"""Real SASL clients through libmailoauth.so against the local Dovecot, after
a real `mailoauth login` (device flow; the fake identity provider approves):

  * imtest, pop3test and smtptest (cyrus-clients) with XOAUTH2 and
    OAUTHBEARER over STARTTLS: IMAP fetches a message placed in the INBOX,
    POP3 retrieves it, SMTP submits one that lands in the maildir;
  * Postfix relaying a message submitted with sendmail(1) with XOAUTH2,
    with the smtp service unchrooted (the plugin runs the helper) and
    chrooted as Debian ships it (the plugin asks `mailoauth agent`, which
    runs as its own user and alone can read the store);
  * mbsync with AuthMechs XOAUTH2 syncing a message into a local Maildir.

Each test checks that mail moved and that Dovecot logged the mechanism.
The plugin finds the helper and the store through the configuration file
named by MAILOAUTH_CONFIG (helper = ..., store = ...) and libsasl2 finds
the plugin through SASL_PATH.  Token-bearing output is never printed.
"""
import os
import pwd
import re
import shutil
import subprocess
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
    SETUP = sasllib.start_signed_in()


def tearDownModule():
    global SETUP
    setup, SETUP = SETUP, None
    sasllib.stop_checking_leaks(setup)


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

    Unchrooted, the smtp(8) client runs as user postfix and the plugin
    runs the helper as that user, so the store belongs to postfix: a 0700 directory owned
    by postfix, signed in with `mailoauth login` run as postfix (the helper
    refuses a store owned by anybody else, and creating the files as the
    owner is simpler than chown -R after a login as root).  The helper is
    copied next to the store so that user postfix can run it wherever the
    build tree is.  The configuration file (helper, store) and SASL_PATH
    reach smtp through import_environment.  The password map needs an entry
    for the relay, or Postfix does not authenticate; its password is not
    used.  Chrooted, the plugin asks the token agent instead (see
    test_postfix_chrooted_smtp_relays_xoauth2_through_agent).
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

    def relay(self, chroot, conf=None, name=None):
        return mailenv.Postfix(
            self.setup.work.path, self.dovecot.ports["submission"],
            self.setup.ca.ca_file, sasl_passwords={ALICE: "unused"},
            mechanism_filter="xoauth2", chroot=chroot,
            name=name or "postfix-chroot-%s" % ("y" if chroot else "n"),
            environment={"SASL_PATH": sasllib.sasl_path(),
                         "MAILOAUTH_CONFIG": conf or self.pf_conf})

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

    def run_relay(self, chroot, conf=None, name=None, before_start=None):
        """Start a Postfix instance, relay one message, check that it landed
        with XOAUTH2, stop Postfix.  BEFORE_START(pf) runs just before
        Postfix starts.  Returns the (stopped) instance."""
        pf = self.relay(chroot, conf, name)
        if before_start:
            before_start(pf)
        mark = self.log_mark()
        pf.start()
        pid = pf.pid
        try:
            subj, status = self.send_and_wait(
                pf, "postfix-chroot-%s" % ("y" if chroot else "n"))
            log = self.redacted_postfix_log(pf)
            if status != "status=sent":
                reasons = [line for line in log.splitlines()
                           if "SASL" in line or "status=" in line
                           or "certificate" in line]
                self.fail("Postfix did not relay (%s): %s" % (
                    status, "\n".join(reasons[-6:]) or log))
            got = self.dovecot.wait_for_message(ALICE, subj, 15)
            self.assertIn(b"by client.localhost (Postfix", got)
            self.assertIn(b"with ESMTPSA", got)
            self.assert_dovecot_login(mark, "submission", "XOAUTH2")
            self.assertNotIn("SASL authentication failed", log)
            # smtp_tls_security_level = secure: the token went only to a
            # server whose certificate was checked.
            self.assertRegex(log, r"Verified TLS connection established "
                                  r"to 127\.0\.0\.1")
        finally:
            pf.stop()
            self.assertFalse(mailenv.pid_alive(pid),
                             "postfix master %d still running" % pid)
            self.setup.outputs.append(("postfix log", pf.log()))
        return pf

    def test_postfix_unchrooted_smtp_relays_xoauth2(self):
        self.run_relay(chroot=False)

    def test_postfix_refused_token_defers_then_relays(self):
        """The server refuses the token the smtp process holds: Postfix
        passes Dovecot's error challenge to the plugin, which answers it
        with the empty XOAUTH2 response and fetches a new token at once
        (one refresh at the provider); the mail is deferred, not bounced,
        and the next delivery attempt relays it."""
        idp = self.setup.idp
        pf = self.relay(False, name="postfix-refused")
        pf.start()
        pid = pf.pid
        try:
            subj, status = self.send_and_wait(pf, "postfix-before-refusal")
            self.assertEqual(status, "status=sent", self.redacted_postfix_log(pf))
            self.dovecot.wait_for_message(ALICE, subj, 15)
            before = idp.counters().get("grant:refresh_token", 0)
            idp.revoke_access_tokens(ALICE)
            mark, dmark = pf.log(), self.dovecot.log()
            subj = subject("postfix-refused")
            pf.sendmail(ALICE, ALICE, ("From: <{a}>\r\nTo: <{a}>\r\n"
                                       "Subject: {s}\r\n\r\nrelayed after a "
                                       "refusal\r\n").format(a=ALICE, s=subj))

            def verdict(wanted):
                part = sasllib.new_part(mark, pf.log())
                return next((w for w in wanted if w in part), None)
            got = mailenv.wait_for(lambda: verdict(("status=deferred", "status=bounced",
                                                    "status=sent")), 30, 0.2,
                                   what="the smtp client's verdict")
            part = self.setup.redact(sasllib.new_part(mark, pf.log()))
            self.assertEqual(got, "status=deferred", part)
            self.assertIn("server refused the XOAUTH2 token", part)
            self.assertIn("SASL authentication failed", part)
            dpart = sasllib.new_part(dmark, self.dovecot.log())
            self.assertRegex(dpart, r"auth failed, 1 attempts.*method=XOAUTH2",
                             self.setup.redact(dpart[-3000:]))
            self.assertEqual(idp.counters().get("grant:refresh_token", 0), before + 1)
            mark = pf.log()
            pf.flush()
            mailenv.wait_for(lambda: verdict(("status=sent",)), 30, 0.2,
                             what="the deferred message to be relayed")
            got = self.dovecot.wait_for_message(ALICE, subj, 15)
            self.assertIn(b"with ESMTPSA", got)
        finally:
            pf.stop()
            self.assertFalse(mailenv.pid_alive(pid), "postfix master %d still running" % pid)
            self.setup.outputs.append(("postfix log", pf.log()))

    def test_postfix_chrooted_smtp_relays_xoauth2_through_agent(self):
        """Debian's master.cf runs smtp chrooted in the queue directory as
        user postfix.  libsasl2 loads the plugin, and the plugin reads its
        configuration, before the chroot; the helper could not run inside
        it.  With agent_socket = @NAME the plugin asks `mailoauth agent`
        over an abstract socket instead, which is the same inside the
        chroot, and nothing is copied there.

        The agent's user: a dedicated uid (with the same number as its gid)
        that has no entry in /etc/passwd, found free at run time.  It is
        nobody else's (`nobody` is Dovecot's mail owner here and a user
        many daemons share), the test need not add a user to the system,
        and it cannot collide with the `mailoauth` user the package test
        creates and removes.  The plugin trusts it through agent_user =
        <uid> (by default it would trust only root and `mailoauth`).  That
        uid alone owns the 0700 store, signed in with `mailoauth login` run
        as that uid.

        Checked: the message lands with XOAUTH2; user postfix cannot list
        the store or read the account's file; the plugin, run as `nobody`
        (not in allow_users), is refused and the agent logs the refusal;
        the queue directory was empty before Postfix started and holds only
        Postfix's own entries afterwards."""
        setup = self.setup
        uid = sasllib.unused_id()
        store = setup.make_store("agent-mailoauth", owner=(uid, uid))
        socket_name = sasllib.unique_agent_socket()
        conf = os.path.join(os.path.dirname(store), "mailoauth.conf")
        # No helper line: the plugin must not need one.  The store is
        # read by the agent (and by `mailoauth login`) only.
        with open(conf, "w") as f:
            f.write("# mailoauth.conf of the chrooted Postfix test: the "
                    "plugin asks the agent\n"
                    "agent_socket = %s\nagent_user = %d\nstore = %s\n"
                    "http_timeout = 10\n\n[account %s]\nallow_users = postfix\n"
                    % (socket_name, uid, store, ALICE))
        os.chmod(conf, 0o644)
        setup.login(conf, run_as=(uid, uid), helper=self.pf_helper)
        record = os.path.join(store, ALICE)
        self.assertTrue(os.path.isfile(record))
        self.assertEqual(os.stat(store).st_uid, uid)
        self.assertEqual(os.stat(store).st_mode & 0o777, 0o700)

        # User postfix cannot read the store.
        for argv in (["ls", store], ["cat", record]):
            r = subprocess.run(["runuser", "-u", "postfix", "--", *argv],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0,
                                "user postfix could run %s" % argv)
            self.assertIn("Permission denied", r.stderr)

        agent = sasllib.Agent(
            [self.pf_helper, "agent", "--foreground", "--socket",
             socket_name],
            socket_name, setup.path("agent.log"), run_as=(uid, uid),
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                 "MAILOAUTH_CONFIG": conf})
        agent.start()
        try:
            self.assertEqual(sasllib.process_uid(agent.pid), uid)
            listings = {}

            def before_start(pf):
                listings["before"] = sasllib.tree(pf.queue_dir)
            pf = self.run_relay(True, conf=conf, name="postfix-agent",
                                before_start=before_start)
            with open(os.path.join(pf.config_dir, "master.cf")) as f:
                self.assertRegex(f.read(), r"(?m)^smtp\s+unix\s+-\s+-\s+y\s")

            # A caller the configuration does not allow: the real plugin
            # through libsasl2, run as nobody.
            mark = agent.log()
            results = setup.sasl_client(
                setup.client_env(conf, home="/"), run_as="nobody")
            self.assertEqual(len(results), 1, results)
            got = results[0]
            self.assertNotEqual(got.get("auth"), "OK", setup.redact(str(got)))
            said = got.get("errdetail", "") + " ".join(got.get("log", []))
            self.assertIn("not allowed by mailoauth.conf", said,
                          setup.redact(str(got)))
            nobody = pwd.getpwnam("nobody").pw_uid
            refusal = "refused uid %d (nobody) (pid " % nobody
            part = sasllib.new_part(mark, agent.log())
            self.assertIn(refusal, part, setup.redact(agent.log()))
            # In no allow list: refused at accept, before the account is read.
            self.assertRegex(part, r"refused uid %d \(nobody\) \(pid \d+\)"
                             r"(?: for account %s)?: " % (nobody, re.escape(ALICE)))
        finally:
            status = agent.stop()
            setup.outputs.append(("agent log", agent.log()))
        self.assertEqual(status, 0, setup.redact(agent.log()))

        # Nothing mailoauth-related in the chroot, before or after.
        self.assertEqual(listings["before"], [],
                         "the queue directory was not empty before start")
        after = sasllib.tree(pf.queue_dir)
        services = sasllib.master_services(
            os.path.join(pf.config_dir, "master.cf"))
        self.assertEqual(sasllib.chroot_findings(pf.queue_dir, services,
                                                 setup.secrets()), [],
                         "chroot listing: %s" % after)
        # (The abstract socket exists in no file system at all.)
        self.assertFalse(any(socket_name[1:] in rel for rel, _ in after))


class ReadmeTest(unittest.TestCase):
    """The mbsync and Postfix configurations above are the README's, with
    Office 365's host names, ports and the system CA bundle there."""

    CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"

    def test_readme_shows_the_mbsync_configuration(self):
        text = mailenv.render(sasllib.MBSYNC_TEMPLATE, dict(
            IMAP_HOST="outlook.office365.com", IMAP_PORT=143, USER=ALICE,
            CA_FILE=self.CA_BUNDLE, MAILDIR="~/Maildir"))
        self.assertTrue(mailenv.readme_shows(text),
                        "README.md does not show mbsyncrc as:\n" + text)

    def test_readme_shows_the_postfix_relay_configuration(self):
        text = mailenv.render(mailenv.POSTFIX_RELAY_TEMPLATE, dict(
            RELAY_HOST="smtp.office365.com", RELAY_PORT=587,
            CONFIG_DIR="/etc/postfix", MECH_FILTER="xoauth2",
            CA_FILE=self.CA_BUNDLE))
        self.assertTrue(mailenv.readme_shows(text),
                        "README.md does not show main.cf as:\n" + text)


if __name__ == "__main__":
    import tap
    tap.main()
