"""The local mail environment itself (tests/lib/mailenv.py): Dovecot and
Postfix from their own configurations on loopback, the fake identity
provider's introspection behind Dovecot's oauth2 passdb, and the baseline
clients (Python's imaplib/poplib/smtplib, cyrus-clients imtest/smtptest/
pop3test) that the end-to-end tests build on.  Every test checks that mail
moved, not only that AUTH said OK, and that what was started is gone.
"""
import glob
import imaplib
import json
import os
import poplib
import re
import smtplib
import socket
import subprocess
import unittest
import uuid

import fakeidp
import mailenv

ALICE = "alice@example.com"
ALICE_PW = "alice-static-password"
BOB = "bob@example.com"
BOB_PW = "bob-static-password"


def top_builddir():
    return os.environ.get("top_builddir") or mailenv._top_srcdir()


def missing_programs():
    need = [mailenv.DOVECOT, "/usr/lib/dovecot/lmtp",
            "/usr/lib/dovecot/submission", "/usr/lib/dovecot/pop3"]
    return [p for p in need if not os.path.exists(p)]


def unique_subject(tag):
    return "mailoauth-e2e %s %s" % (tag, uuid.uuid4().hex[:12])


def message(subject, sender=ALICE, to=ALICE):
    return ("From: %s\r\nTo: %s\r\nSubject: %s\r\n\r\nbody of %s\r\n"
            % (sender, to, subject, subject)).encode()


def cyrus(tool):
    return os.path.join(mailenv.CYRUS_BIN, tool)


def run_cyrus(tool, args, stdin, env=None, timeout=20):
    rc, out, err = mailenv.run_session([cyrus(tool), *args], stdin, env=env,
                                       timeout=timeout)
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


class _Env(unittest.TestCase):
    """One work dir, one fake IdP and one Dovecot for the class."""

    @classmethod
    def setUpClass(cls):
        missing = missing_programs()
        if missing:
            raise unittest.SkipTest("not installed: " + " ".join(missing))
        cls.work = mailenv.WorkDir()
        cls.ca = mailenv.test_ca(cls.work.path)
        cls.idp = None
        cls.dovecot = None
        try:
            cls.idp = fakeidp.FakeIdP(os.path.join(cls.work.path, "idp"),
                                      ca=os.path.join(cls.work.path, "ca"))
            cls.idp.start()
            cls.dovecot = mailenv.Dovecot(
                cls.work.path, introspection_url=cls.idp.introspection_url,
                ca=cls.ca, users={ALICE: ALICE_PW, BOB: BOB_PW})
            cls.dovecot.start()
        except BaseException:
            cls._teardown()
            raise
        cls.dovecot_pid = cls.dovecot.pid

    @classmethod
    def _teardown(cls):
        if cls.dovecot:
            cls.dovecot.stop()
        if cls.idp:
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

    def token(self, user=ALICE):
        return mailenv.device_flow_token(self.idp, username=user)[
            "access_token"]

    def imap(self):
        m = imaplib.IMAP4("127.0.0.1", self.dovecot.ports["imap"], timeout=20)
        m.starttls(self.dovecot.ssl_context())
        return m


class DovecotTest(_Env):

    def test_imap_plain_starttls_append_lands_in_maildir(self):
        subject = unique_subject("imap-append")
        m = self.imap()
        try:
            m.login(ALICE, ALICE_PW)
            typ, _ = m.append("INBOX", None, None, message(subject))
            self.assertEqual(typ, "OK")
        finally:
            m.logout()
        self.dovecot.wait_for_message(ALICE, subject, 10)
        self.assertIn("imap-login: Info: Login: user=<%s>, method=PLAIN"
                      % ALICE, self.dovecot.log())

    def test_imap_plain_refused_before_starttls(self):
        # Dovecot counts a connection whose remote address equals its local
        # one as secure, so from 127.0.0.1 PLAIN works without TLS.  From
        # another loopback address the ordinary rules apply.
        m = IMAP4From("127.0.0.1", self.dovecot.ports["imap"], timeout=20)
        try:
            self.assertIn("LOGINDISABLED", m.capabilities)
            with self.assertRaisesRegex(imaplib.IMAP4.error,
                                        "PRIVACYREQUIRED"):
                m.login(ALICE, ALICE_PW)
        finally:
            m.shutdown()

    def test_imaps_implicit_tls_plain(self):
        m = imaplib.IMAP4_SSL("127.0.0.1", self.dovecot.ports["imaps"],
                              ssl_context=self.dovecot.ssl_context(),
                              timeout=20)
        try:
            self.assertEqual(m.login(ALICE, ALICE_PW)[0], "OK")
        finally:
            m.logout()

    def test_pop3_plain_stls_retrieves(self):
        subject = unique_subject("pop3")
        m = self.imap()
        try:
            m.login(BOB, BOB_PW)
            m.append("INBOX", None, None, message(subject, to=BOB))
        finally:
            m.logout()
        p = poplib.POP3("127.0.0.1", self.dovecot.ports["pop3"], timeout=20)
        try:
            p.stls(self.dovecot.ssl_context())
            p.user(BOB)
            p.pass_(BOB_PW)
            count, _ = p.stat()
            bodies = [b"\r\n".join(p.retr(i + 1)[1]) for i in range(count)]
        finally:
            p.quit()
        self.assertTrue(any(subject.encode() in b for b in bodies))

    def test_submission_plain_lands_in_maildir(self):
        subject = unique_subject("submission-plain")
        with smtplib.SMTP("127.0.0.1", self.dovecot.ports["submission"],
                          timeout=20) as s:
            s.starttls(context=self.dovecot.ssl_context())
            s.login(ALICE, ALICE_PW)
            self.assertEqual(s.sendmail(ALICE, [BOB], message(subject,
                                                              to=BOB)), {})
        got = self.dovecot.wait_for_message(BOB, subject, 15)
        self.assertIn(b"with ESMTPSA", got)
        self.assertIn(b"with LMTP", got)

    def test_imap_xoauth2_token_from_fake_idp(self):
        token = self.token()
        m = self.imap()
        try:
            typ, _ = m.authenticate("XOAUTH2", lambda _c: mailenv.
                                    xoauth2_initial_response(ALICE, token))
            self.assertEqual(typ, "OK")
            self.assertEqual(m.select("INBOX")[0], "OK")
        finally:
            m.logout()
        self.assertIn("Login: user=<%s>, method=XOAUTH2" % ALICE,
                      self.dovecot.log())

    def test_imap_oauthbearer_token_from_fake_idp(self):
        token = self.token()
        m = self.imap()
        try:
            typ, _ = m.authenticate("OAUTHBEARER", lambda _c: mailenv.
                                    oauthbearer_initial_response(
                                        ALICE, token,
                                        port=self.dovecot.ports["imap"]))
            self.assertEqual(typ, "OK")
        finally:
            m.logout()

    def test_submission_xoauth2_lands_in_maildir(self):
        token = self.token()
        subject = unique_subject("submission-xoauth2")
        with smtplib.SMTP("127.0.0.1", self.dovecot.ports["submission"],
                          timeout=20) as s:
            s.starttls(context=self.dovecot.ssl_context())
            s.ehlo()
            s.auth("XOAUTH2", lambda _c=None: mailenv.xoauth2_initial_response(
                ALICE, token).decode(), initial_response_ok=True)
            s.sendmail(ALICE, [ALICE], message(subject))
        self.dovecot.wait_for_message(ALICE, subject, 15)

    def _xoauth2_challenges(self, user, token):
        m = self.imap()
        seen = []

        def answer(challenge):
            seen.append(challenge)
            if len(seen) == 1:
                return mailenv.xoauth2_initial_response(user, token)
            return b""          # XOAUTH2: empty reply to the error
        try:
            with self.assertRaises(imaplib.IMAP4.error) as cm:
                m.authenticate("XOAUTH2", answer)
        finally:
            m.shutdown()
        return seen, str(cm.exception)

    def test_imap_xoauth2_bogus_token_rejected_with_json_challenge(self):
        seen, error = self._xoauth2_challenges(ALICE, "not-a-token")
        self.assertEqual(len(seen), 2, seen)
        challenge = json.loads(seen[1].decode())
        self.assertEqual(challenge.get("status"), "401")
        self.assertEqual(challenge.get("schemes"), "bearer")
        self.assertIn("AUTHENTICATIONFAILED", error)

    def test_imap_xoauth2_revoked_token_rejected(self):
        token = self.token(BOB)
        self.idp.revoke_access_tokens(BOB)
        seen, _ = self._xoauth2_challenges(BOB, token)
        self.assertEqual(json.loads(seen[1].decode()).get("status"), "401")

    def test_imap_xoauth2_other_users_token_rejected(self):
        # The token says bob; presenting it as alice must not log in.
        seen, _ = self._xoauth2_challenges(ALICE, self.token(BOB))
        self.assertEqual(len(seen), 2)

    def test_imtest_plain_starttls_baseline(self):
        subject = unique_subject("imtest")
        m = self.imap()
        try:
            m.login(ALICE, ALICE_PW)
            m.append("INBOX", None, None, message(subject))
        finally:
            m.logout()
        # imtest passes stdin to the server after authenticating.
        rc, out, err = run_cyrus(
            "imtest", ["-t", "", "-m", "PLAIN", "-a", ALICE, "-w", ALICE_PW,
                       "-p", str(self.dovecot.ports["imap"]), "127.0.0.1"],
            b"x1 SELECT INBOX\r\nx2 SEARCH SUBJECT \"%s\"\r\nx3 LOGOUT\r\n"
            % subject.encode())
        # imtest exits 0 even when authentication fails: read its output.
        self.assertEqual(rc, 0, out + err)
        self.assertIn("Authenticated.", out, out + err)
        self.assertRegex(out, r"\* SEARCH \d+", out)
        rc, out, err = run_cyrus(
            "imtest", ["-t", "", "-m", "PLAIN", "-a", ALICE, "-w", "wrong",
                       "-p", str(self.dovecot.ports["imap"]), "127.0.0.1"],
            b"")
        self.assertIn("Authentication failed", out, out + err)
        self.assertNotIn("Authenticated.", out)

    def test_smtptest_and_pop3test_plain_baseline(self):
        rc, out, err = run_cyrus(
            "smtptest", ["-t", "", "-m", "PLAIN", "-a", ALICE, "-w", ALICE_PW,
                         "-p", str(self.dovecot.ports["submission"]),
                         "127.0.0.1"], b"QUIT\r\n")
        self.assertIn("Authenticated.", out, out + err)
        rc, out, err = run_cyrus(
            "pop3test", ["-t", "", "-m", "PLAIN", "-a", ALICE, "-w", ALICE_PW,
                         "-p", str(self.dovecot.ports["pop3"]), "127.0.0.1"],
            b"STAT\r\nQUIT\r\n")
        self.assertIn("Authenticated.", out, out + err)
        self.assertRegex(out, r"\+OK \d+ \d+")

    def test_port_taken_before_dovecot_binds_it_retries_with_new_ports(self):
        # Someone else takes a port between free_port() and Dovecot's bind:
        # start() tries again with new ports instead of failing the test.
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen(1)
            taken = squatter.getsockname()[1]
            d = mailenv.Dovecot(os.path.join(self.work.path, "second"),
                                introspection_url=self.idp.introspection_url,
                                ca=self.ca, users={ALICE: ALICE_PW})
            d.ports["imap"] = taken
            d.start()
            try:
                self.assertNotEqual(d.ports["imap"], taken)
                self.assertIn("Address already in use", d.log())
                m = imaplib.IMAP4("127.0.0.1", d.ports["imap"], timeout=20)
                m.starttls(d.ssl_context())
                m.login(ALICE, ALICE_PW)
                m.logout()
            finally:
                pid = d.pid
                d.stop()
            self.assertFalse(mailenv.pid_alive(pid))

    def test_add_user_takes_effect_while_running(self):
        self.dovecot.add_user("carol@example.com", "carol-pw")
        m = self.imap()
        try:
            self.assertEqual(m.login("carol@example.com", "carol-pw")[0],
                             "OK")
        finally:
            m.logout()


@unittest.skipUnless(os.geteuid() == 0, "the Postfix instance needs root")
class PostfixTest(_Env):

    def relay(self, **kw):
        kw.setdefault("sasl_passwords", {ALICE: ALICE_PW})
        kw.setdefault("name", "postfix-" + self.id().rsplit(".", 1)[-1])
        return mailenv.Postfix(self.work.path,
                               self.dovecot.ports["submission"],
                               self.ca.ca_file, **kw)

    def assert_stopped(self, pf, pid):
        pf.stop()
        self.assertFalse(mailenv.pid_alive(pid),
                         "postfix master %d still running" % pid)
        self.assertFalse(pf.running())

    def _relay_plain(self, chroot):
        pf = self.relay(mechanism_filter="plain", chroot=chroot)
        pf.start()
        pid = pf.pid
        try:
            subject = unique_subject("postfix-plain-chroot-%s" % chroot)
            pf.sendmail(ALICE, BOB, message(subject, to=BOB))
            got = self.dovecot.wait_for_message(BOB, subject, 30)
            pf.wait_queue_empty(10)
            self.assertIn(b"by client.localhost (Postfix", got)
            self.assertIn(b"with ESMTPSA", got)
            # Postfix's log (postlogd) may lag the delivery it reports.
            sent = re.compile(r"postfix/smtp\[\d+\]: .*status=sent")
            try:
                mailenv.wait_for(lambda: sent.search(pf.log()), 10, 0.1, "status=sent in the Postfix log")
            except TimeoutError:
                self.fail("no status=sent in the Postfix log:\n" + pf.log())
            self.assertIn("submission-login: Info: Login: user=<%s>, "
                          "method=PLAIN" % ALICE, self.dovecot.log())
            # smtp_tls_security_level = secure: the certificate's chain
            # and name were checked, in the chroot too (the CA file is read
            # before it).
            self.assertRegex(pf.log(), r"Verified TLS connection "
                                       r"established to 127\.0\.0\.1")
        finally:
            self.assert_stopped(pf, pid)

    def test_relay_plain_chrooted_smtp(self):
        self._relay_plain(True)

    def test_relay_plain_unchrooted_smtp(self):
        self._relay_plain(False)

    def test_import_environment_reaches_chrooted_smtp(self):
        # SASL_PATH pointing at an empty directory: if it reaches libsasl2 in
        # the chrooted smtp process, no mechanism is left and mail defers.
        empty = os.path.join(self.work.path, "empty-sasl-dir")
        os.makedirs(empty, exist_ok=True)
        pf = self.relay(mechanism_filter="plain", chroot=True,
                        environment={"SASL_PATH": empty,
                                     "MAILOAUTH_CONFIG": "/nonexistent.conf"})
        pf.start()
        pid = pf.pid
        try:
            pf.sendmail(ALICE, BOB, message(unique_subject("no-mechs"),
                                            to=BOB))
            mailenv.wait_for(lambda: "no mechanism available" in pf.log(),
                             20, 0.2, what="SASL failure in postfix log")
            # The idle smtp process is still there: look at it.
            smtp = [p for p in child_pids(pid) if proc_name(p) == "smtp"]
            self.assertTrue(smtp, "no smtp process under master %d" % pid)
            environ = open("/proc/%d/environ" % smtp[0], "rb").read()
            self.assertIn(b"SASL_PATH=" + empty.encode() + b"\0", environ)
            self.assertIn(b"MAILOAUTH_CONFIG=/nonexistent.conf\0", environ)
            self.assertEqual(os.readlink("/proc/%d/root" % smtp[0]),
                             pf.queue_dir)
            self.assertTrue(pf.queue_files(), "message should be deferred")
        finally:
            self.assert_stopped(pf, pid)

    # XOAUTH2 relaying through the plugin: tests/e2e/test_sasl_clients.py.


class IMAP4From(imaplib.IMAP4):
    """IMAP4 from source address 127.0.0.2 (loopback, but not the server's
    own address, so Dovecot does not treat the connection as secure)."""

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout,
                                        source_address=("127.0.0.2", 0))


def child_pids(parent):
    out = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            out.append(int(stat.split("/")[2]))
    return out


def proc_name(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


if __name__ == "__main__":
    import tap
    tap.main()
