"""App-only accounts end to end (issue 11): an app registration's token,
fetched by `mailoauth agent` with the client-credentials grant, carries
mail for the mailbox Exchange granted it.

  * chrooted Postfix relays through the agent with an account that
    authenticates with a certificate, and again with one whose secret is
    read at each use from a LoadCredential=-style $CREDENTIALS_DIRECTORY
    (the agent's environment), after its token expired; the messages land
    in Dovecot;
  * the same account works for IMAP through the plugin (imtest with XOAUTH2
    and OAUTHBEARER, mbsync) and for POP (pop3test);
  * an account whose token is for mailbox A but names user B is refused by
    Dovecot, and `mailoauth doctor` names the likely cause.

One module fixture: sasllib.MailSetup (fake identity provider, Dovecot),
one agent running as a free uid that alone owns the store, as
test_sasl_clients.py's chrooted Postfix test does.  Tokens and the
credential never reach output unredacted.
"""
import os
import re
import subprocess
import sys
import time
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "sasl"))
import fakeidp  # noqa: E402
import mailenv  # noqa: E402
import sasllib  # noqa: E402
from sasllib import ALICE, BOB  # noqa: E402

CLIENT = "99999999-8888-7777-6666-555555555555"
TENANT = "contoso.onmicrosoft.com"
SECRET = "Qx8~e2e-app-only.secret_value-0123456789"
CERT_ACCOUNT = "relay-cert"
SECRET_ACCOUNT = "relay-secret"
WRONG_ACCOUNT = "relay-wrong"
MECHS = ("XOAUTH2", "OAUTHBEARER")

SETUP = None
MISSING = sasllib.missing_programs() + ([] if os.geteuid() == 0 else ["root"])


def subject(tag):
    return "mailoauth-app-only %s %s" % (tag, uuid.uuid4().hex[:12])


def write(path, data, mode, owner):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chown(path, *owner)
    os.chmod(path, mode)
    return path


def setUpModule():
    """MailSetup, the app registered for ALICE's mailbox, a store owned by
    a free uid with three app-only accounts signed in as that uid, and the
    agent (its CREDENTIALS_DIRECTORY set as systemd's LoadCredential= would)."""
    global SETUP
    if MISSING:
        return
    setup = sasllib.MailSetup().start()
    SETUP = setup
    setup.agent = None
    uid = sasllib.unused_id()
    setup.owner = (uid, uid)
    certs = setup.path("app-certs")
    setup.cert, setup.key = fakeidp.make_app_certificate(certs, "app")
    os.chmod(certs, 0o755)
    os.chown(setup.key, uid, uid)
    with open(setup.key) as f:
        setup._secrets.update(l for l in f.read().splitlines() if l and not l.startswith("-----"))
    setup._secrets.add(SECRET)
    setup.idp.register_app(CLIENT, tenant=TENANT, mailbox=ALICE, secret=SECRET, certificates=[setup.cert])

    setup.store = setup.make_store("app-agent", owner=setup.owner)
    setup.creds = setup.path("app-agent", "credentials")
    os.mkdir(setup.creds, 0o700)
    os.chown(setup.creds, uid, uid)
    write(os.path.join(setup.creds, "client-secret"), SECRET, 0o400, setup.owner)
    setup.socket_name = sasllib.unique_agent_socket("app")
    setup.conf = os.path.join(os.path.dirname(setup.store), "mailoauth.conf")
    with open(setup.conf, "w") as f:
        f.write("# mailoauth.conf of the app-only test: the plugin asks the agent\n"
                "agent_socket = %s\nagent_user = %d\nstore = %s\nhttp_timeout = 10\n"
                "allow_users = postfix root\n" % (setup.socket_name, uid, setup.store))
    os.chmod(setup.conf, 0o644)
    cred_env = {"CREDENTIALS_DIRECTORY": setup.creds}
    app_login(setup, CERT_ACCOUNT, "--certificate", setup.cert, "--private-key", setup.key)
    app_login(setup, SECRET_ACCOUNT, "--credential-from", "$CREDENTIALS_DIRECTORY", env=cred_env)
    app_login(setup, WRONG_ACCOUNT, "--certificate", setup.cert, "--private-key", setup.key, user=BOB)
    setup.agent = sasllib.Agent(
        [sasllib.helper_path(), "agent", "--foreground", "--socket", setup.socket_name],
        setup.socket_name, setup.path("agent.log"), run_as=setup.owner,
        env=dict({"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "MAILOAUTH_CONFIG": setup.conf}, **cred_env))
    setup.agent.start()


def app_login(setup, account, *credential, env=None, user=ALICE):
    r = subprocess.run(
        [sasllib.helper_path(), "login", account, "--app", "--client-id", CLIENT,
         "--authority", setup.idp.authority(TENANT), "--ca-file", setup.ca.ca_file, "--user", user,
         *credential],
        env=dict(setup.client_env(setup.conf, home="/"), **(env or {})), cwd="/",
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
        user=setup.owner[0], group=setup.owner[1], extra_groups=[])
    setup.outputs.append(("mailoauth login --app", r.stdout + r.stderr))
    if r.returncode != 0:
        raise AssertionError("login --app %s failed (%d): %s" % (account, r.returncode, setup.redact(r.stderr)))


def tearDownModule():
    global SETUP
    setup, SETUP = SETUP, None
    if setup is not None and setup.agent is not None:
        setup.agent.stop()
        setup.outputs.append(("agent log", setup.agent.log()))
    sasllib.stop_checking_leaks(setup)


class AppOnly(unittest.TestCase):
    def setUp(self):
        if SETUP is None:
            self.skipTest("not installed/built or not root: " + " ".join(MISSING))
        self.setup = SETUP
        self.dovecot = SETUP.dovecot
        self.env = SETUP.client_env(SETUP.conf)

    def assert_dovecot_login(self, mark, service, mech, user=ALICE):
        part = sasllib.new_part(mark, self.dovecot.log())
        needle = "%s-login: Info: Login: user=<%s>, method=%s" % (service, user, mech)
        self.assertIn(needle, part, self.setup.redact(part[-3000:]))

    def expire(self, account):
        """The stored token as if it were about to expire (in place: the
        file keeps its owner and mode)."""
        path = os.path.join(self.setup.store, account)
        with open(path) as f:
            text = f.read()
        text = re.sub(r"(?m)^access_expires_at=\d+$", "access_expires_at=%d" % (int(time.time()) + 30), text)
        with open(path, "r+") as f:
            f.truncate()
            f.write(text)

    # --- Postfix, chrooted, through the agent ----------------------------

    def relay(self, account, tag):
        setup = self.setup
        pf = mailenv.Postfix(setup.work.path, self.dovecot.ports["submission"], setup.ca.ca_file,
                             sasl_passwords={account: "unused"}, mechanism_filter="xoauth2", chroot=True,
                             name="postfix-app-" + tag,
                             environment={"SASL_PATH": sasllib.sasl_path(), "MAILOAUTH_CONFIG": setup.conf})
        mark = self.dovecot.log()
        pf.start()
        pid = pf.pid
        try:
            subj = subject(tag)
            pf.sendmail(ALICE, ALICE, "From: <{a}>\r\nTo: <{a}>\r\nSubject: {s}\r\n\r\nrelayed as the app\r\n"
                        .format(a=ALICE, s=subj))

            def outcome():
                log = pf.log()
                return next((s for s in ("status=sent", "status=deferred", "status=bounced")
                             if "postfix/smtp[" in log and s in log), None)
            try:
                status = mailenv.wait_for(outcome, 30, 0.2, what="the smtp client's verdict")
            except TimeoutError:
                status = "no verdict in 30 s"
            log = setup.redact(pf.log()[-4000:])
            self.assertEqual(status, "status=sent", log + setup.redact(setup.agent.log()[-2000:]))
            got = self.dovecot.wait_for_message(ALICE, subj, 15)
            self.assertIn(b"with ESMTPSA", got)
            self.assert_dovecot_login(mark, "submission", "XOAUTH2")
            with open(os.path.join(pf.config_dir, "master.cf")) as f:
                self.assertRegex(f.read(), r"(?m)^smtp\s+unix\s+-\s+-\s+y\s")
            services = sasllib.master_services(os.path.join(pf.config_dir, "master.cf"))
            self.assertEqual(sasllib.chroot_findings(pf.queue_dir, services, setup.secrets()), [])
        finally:
            pf.stop()
            self.assertFalse(mailenv.pid_alive(pid), "postfix master %d still running" % pid)
            setup.outputs.append(("postfix log", pf.log()))

    def test_postfix_relays_with_certificate(self):
        self.relay(CERT_ACCOUNT, "cert")

    def test_postfix_relays_with_secret_from_credentials_directory(self):
        """The token expired: the agent reads the secret from its
        $CREDENTIALS_DIRECTORY and gets a new one by client credentials."""
        self.expire(SECRET_ACCOUNT)
        before = self.setup.idp.counters().get("grant:client_credentials", 0)
        self.relay(SECRET_ACCOUNT, "secret")
        self.assertGreater(self.setup.idp.counters().get("grant:client_credentials", 0), before)
        rec = self.setup.record(self.setup.store, SECRET_ACCOUNT)
        self.assertNotIn("client_secret", rec)
        self.assertEqual(rec["credential_from"], "$CREDENTIALS_DIRECTORY")

    # --- IMAP and POP through the plugin ---------------------------------

    def test_imtest_both_mechanisms(self):
        for mech in MECHS:
            with self.subTest(mech):
                subj = subject("imtest-" + mech)
                self.setup.deliver(ALICE, subj)
                mark = self.dovecot.log()
                rc, out, _ = self.setup.run_cyrus(
                    "imtest", mech, self.dovecot.ports["imap"],
                    b"x1 SELECT INBOX\r\nx2 FETCH 1:* (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nx3 LOGOUT\r\n",
                    self.env, account=CERT_ACCOUNT)
                self.assertIn("Authenticated.", out, out)
                self.assertIn("Subject: " + subj, out, out)
                self.assert_dovecot_login(mark, "imap", mech)

    def test_pop3test(self):
        subj = subject("pop3test")
        self.setup.deliver(ALICE, subj)
        count = len(self.dovecot.messages(ALICE))
        commands = b"STAT\r\n" + b"".join(b"RETR %d\r\n" % (i + 1) for i in range(count)) + b"QUIT\r\n"
        mark = self.dovecot.log()
        rc, out, _ = self.setup.run_cyrus("pop3test", "XOAUTH2", self.dovecot.ports["pop3"], commands, self.env,
                                          account=CERT_ACCOUNT)
        self.assertIn("Authenticated.", out, out)
        self.assertIn("Subject: " + subj, out, out)
        self.assert_dovecot_login(mark, "pop3", "XOAUTH2")

    def test_mbsync(self):
        subj = subject("mbsync")
        self.setup.deliver(ALICE, subj)
        mark = self.dovecot.log()
        rc, out, synced = self.setup.mbsync(self.env, name="mbsync-app", account=CERT_ACCOUNT)
        self.assertEqual(rc, 0, out)
        self.assertTrue(any(("Subject: " + subj).encode() in m for m in synced), out)
        self.assert_dovecot_login(mark, "imap", "XOAUTH2")

    # --- the wrong mailbox -------------------------------------------------

    def test_wrong_mailbox_refused_and_explained(self):
        mark = self.dovecot.log()
        rc, out, _ = self.setup.run_cyrus("imtest", "XOAUTH2", self.dovecot.ports["imap"], b"x1 LOGOUT\r\n",
                                          self.env, account=WRONG_ACCOUNT)
        self.assertNotIn("Authenticated.", out, out)
        part = sasllib.new_part(mark, self.dovecot.log())
        self.assertNotIn("Login: user=<%s>" % BOB, part)
        # What to do about it: doctor, run as the store's owner.
        r = subprocess.run([sasllib.helper_path(), "doctor", WRONG_ACCOUNT],
                           env=self.setup.client_env(self.setup.conf, home="/"), cwd="/",
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60,
                           user=self.setup.owner[0], group=self.setup.owner[1], extra_groups=[])
        self.setup.outputs.append(("mailoauth doctor", r.stdout + r.stderr))
        self.assertIn("app-only (client credentials) for the mailbox " + BOB, r.stdout)
        self.assertIn("535 5.7.3", r.stdout)
        self.assertIn("Add-MailboxPermission -Identity " + BOB, r.stdout)


if __name__ == "__main__":
    import tap
    tap.main()
