"""`mailoauth connect` against the real Dovecot, with the real programs that
hand their connection to a command.

After one real `mailoauth login` (device flow against the fake identity
provider, which Dovecot asks about every token), each test runs the Debian
program with the configuration the README shows (tests/e2e/clients/*.in,
rendered with the local host, port and the test CA) and checks that mail
moved and that Dovecot logged the login with method=XOAUTH2:

  fetchmail   `plugin "mailoauth connect ... %h %p"`, `auth ssh`,
              `sslproto ''`: IMAP over implicit TLS and STARTTLS, POP3 over
              both; the message is delivered by the `mda`
  mutt        `tunnel`: the index shows a message in the INBOX
  neomutt     the same, with the same muttrc
  mbsync      `Tunnel`: the INBOX is synced into a Maildir
  offlineimap `preauthtunnel` (offlineimap3): the INBOX is synced

and what goes wrong: a refused token recovers once with a forced refresh; a
revoked grant ends with exit 77, `* BYE` or `-ERR` with the reason, and
fetchmail shows it; a certificate from an unknown CA is refused before
anything is sent; a server that says nothing ends within --timeout; a
client that goes away mid-session (even during IDLE) leaves no process;
clear text to anything but loopback is refused; the program itself still
links only libc (TLS is in mailoauth-tls.so).

Client output is never printed unredacted, and the module ends with
helperlib's check that no token the fake issued appears in anything
captured.
"""
import imaplib
import os
import select
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakeidp  # noqa: E402
import helperlib  # noqa: E402
import mailenv  # noqa: E402
import testca  # noqa: E402
from test_token_clients import (mailoauth_bin, message, redact,  # noqa: E402
                                render_client, unique_subject, xoauth2_forms)

ALICE = "alice@example.com"
ALICE_PW = "alice-static-password"      # only to put test messages in place
CLIENT_TIMEOUT = 60

# The README shows these rendered with README_VALUES; the tests render them
# with the local servers' host and ports and the test CA.
TEMPLATES = ("fetchmailrc-imap.in", "fetchmailrc-pop3.in", "muttrc-tunnel.in",
             "mbsyncrc-tunnel.in")
README_VALUES = {
    "IMAP_HOST": "outlook.office365.com",
    "IMAP_PORT": "993",
    "IMAPS_PORT": "993",
    "POP_HOST": "outlook.office365.com",
    "POP3_PORT": "995",
    "TLS": "implicit",
    "CA_FILE": "/etc/ssl/certs/ca-certificates.crt",
    "LOCAL_USER": "alice",
    "MDA": "/usr/bin/procmail -d %T",
    "MAILDIR": "~/Mail/office365",
}


class Tunnel:
    """`mailoauth connect` run as a mail program runs it: stdin and stdout
    are the session; lines are read with a time limit."""

    def __init__(self, env, cwd, *args):
        self.proc = subprocess.Popen(
            ["mailoauth", "connect", *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=cwd)
        self.buf = b""
        self.started = time.monotonic()

    def line(self, timeout=20):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line from mailoauth connect: %r"
                                   % self.buf[-200:])
            r, _, _ = select.select([self.proc.stdout], [], [], left)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                if not chunk:
                    out, self.buf = self.buf, b""
                    return out.decode(errors="replace")
                self.buf += chunk
        out, self.buf = self.buf.split(b"\n", 1)
        return out.decode(errors="replace").rstrip("\r")

    def send(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def until(self, prefix, timeout=20):
        """Lines up to and including the first starting with PREFIX."""
        lines = []
        while True:
            line = self.line(timeout)
            lines.append(line)
            if line.startswith(prefix) or line == "":
                return lines

    def finish(self, timeout=20):
        """Closes our side; returns (exit status, stdout rest, stderr)."""
        for f in (self.proc.stdin, ):
            try:
                f.close()
            except OSError:
                pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            rc = None
        rest = self.buf + self.proc.stdout.read()
        err = self.proc.stderr.read().decode(errors="replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        helperlib.captured_output.append(("mailoauth connect", err))
        return rc, rest.decode(errors="replace"), err


class SilentServer:
    """Accepts connections on 127.0.0.1 and never says a word (a server
    that stalls before its greeting), or with TLS (cert, key) completes the
    handshake and records what the client sends."""

    def __init__(self, tls=None):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.received = []
        self.handshake_errors = []
        self.conns = []
        self.ctx = None
        if tls:
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(*tls)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            if self.ctx:
                threading.Thread(target=self._tls, args=(conn,),
                                 daemon=True).start()

    def _tls(self, conn):
        try:
            s = self.ctx.wrap_socket(conn, server_side=True)
            s.sendall(b"* OK IMAP4rev1 ready\r\n")
            while True:
                data = s.recv(4096)
                if not data:
                    return
                self.received.append(data)
        except (OSError, ssl.SSLError) as e:
            self.handshake_errors.append(repr(e))

    def stop(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class Connect(unittest.TestCase):
    """One work dir, one fake IdP, one Dovecot and one `mailoauth login`."""

    @classmethod
    def setUpClass(cls):
        need = [mailenv.DOVECOT, "/usr/lib/dovecot/lmtp", mailoauth_bin()]
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
        cls.home = os.path.join(cls.work.path, "home")
        os.makedirs(cls.home)
        os.chmod(cls.home, 0o755)
        cls.bindir = os.path.join(cls.work.path, "bin")
        os.makedirs(cls.bindir)
        os.symlink(mailoauth_bin(), os.path.join(cls.bindir, "mailoauth"))
        cls.config = os.path.join(cls.work.path, "mailoauth.conf")
        with open(cls.config, "w") as f:
            f.write("http_timeout = 5\n")
        # fetchmail's mda: each message into its own file.
        cls.delivered = os.path.join(cls.work.path, "delivered")
        os.makedirs(cls.delivered)
        cls.deliver = os.path.join(cls.bindir, "deliver")
        with open(cls.deliver, "w") as f:
            f.write('#!/bin/sh\nexec cat > "$(mktemp "%s/msg.XXXXXX")"\n'
                    % cls.delivered)
        os.chmod(cls.deliver, 0o755)

    @classmethod
    def env(cls):
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
                for s in cls.idp.issued_secrets():
                    if len(s) >= 8:
                        helperlib.issued_secrets.add(s)
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

    def setUp(self):
        self.idp.clear_faults()
        self.idp.reset_counters()

    # helpers -----------------------------------------------------------------

    def values(self, **kw):
        v = {"IMAP_HOST": "127.0.0.1", "POP_HOST": "127.0.0.1",
             "IMAPS_PORT": self.dovecot.ports["imaps"],
             "CA_FILE": self.dovecot.ca_file, "LOCAL_USER": "root",
             "MDA": self.deliver, "TLS": "implicit"}
        v.update(kw)
        return v

    def install(self, template, relpath, values, mode=0o600):
        path = os.path.join(self.home, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(render_client(template, values))
        os.chmod(path, mode)
        return path

    def secrets(self):
        s = set(self.idp.issued_secrets())
        return s | {f for x in s if len(x) >= 8 for f in xoauth2_forms(x)}

    def run_client(self, what, argv, timeout=CLIENT_TIMEOUT,
                   keep_stdin_open=False):
        """Run ARGV in the home directory with the user's environment.
        Returns (exit status or None on timeout, output text)."""
        fd, out_path = tempfile.mkstemp(prefix="out-", dir=self.work.path)
        with os.fdopen(fd, "wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out,
                                    stderr=subprocess.STDOUT, env=self.env(),
                                    cwd=self.home, start_new_session=True)
        try:
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
        secrets = self.secrets()
        return "%s exited %s\n--- output ---\n%s\n--- dovecot log ---\n%s" % (
            what, "by timeout" if rc is None else rc,
            redact(text, secrets)[-4000:],
            redact(self.dovecot.log()[log_offset:], secrets)[-3000:])

    def log_offset(self):
        return len(self.dovecot.log())

    def assert_login(self, service, offset, method="XOAUTH2", count=1):
        line = "%s-login: Info: Login: user=<%s>, method=%s" % (
            service, ALICE, method)
        try:
            mailenv.wait_for(
                lambda: self.dovecot.log()[offset:].count(line) >= count, 10,
                what="dovecot log line %r" % line)
        except TimeoutError:
            self.fail("no %r in the dovecot log:\n%s" % (
                line, redact(self.dovecot.log()[offset:], self.secrets())))
        self.assertFalse("method=PLAIN" in self.dovecot.log()[offset:],
                         "a PLAIN login too")

    def put_message(self, subject):
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

    def delivered_with(self, subject):
        for name in os.listdir(self.delivered):
            with open(os.path.join(self.delivered, name), "rb") as f:
                if subject.encode() in f.read():
                    return name
        return None

    def tunnel(self, *args):
        return Tunnel(self.env(), self.home, *args)

    def imaps_args(self, *extra):
        return (ALICE, "127.0.0.1", str(self.dovecot.ports["imaps"]),
                "--ca-file", self.dovecot.ca_file, *extra)

    # fetchmail ---------------------------------------------------------------

    def _fetchmail(self, template, service, port, tls):
        self.need("fetchmail")
        values = self.values(IMAP_PORT=port, POP3_PORT=port, TLS=tls)
        self.install(template, ".fetchmailrc", values)
        subject = unique_subject("fetchmail-%s-%s" % (service, tls))
        self.put_message(subject)
        offset = self.log_offset()
        rc, text = self.run_client("fetchmail", ["fetchmail", "-v"])
        self.assertEqual(rc, 0, self.explain("fetchmail", rc, text, offset))
        self.assertTrue(self.delivered_with(subject),
                        "not delivered by the mda: " +
                        self.explain("fetchmail", rc, text, offset))
        self.assert_login(service, offset)
        # fetchmail logged nothing in itself: the session was handed over.
        proto = "IMAP" if service == "imap" else "POP3"
        sent = [l.split("%s> " % proto, 1)[1].split() for l in text.splitlines()
                if ("%s> " % proto) in l]
        verbs = [w[1] if service == "imap" else w[0] for w in sent if w]
        self.assertTrue(verbs, self.explain("fetchmail", rc, text, offset))
        for verb in ("LOGIN", "AUTHENTICATE", "USER", "PASS", "AUTH",
                     "STARTTLS", "STLS"):
            self.assertNotIn(verb, [v.upper() for v in verbs],
                             self.explain("fetchmail", rc, text, offset))
        if service == "imap":
            self.assertIn("%s< * PREAUTH" % proto, text)

    def test_fetchmail_imap_implicit_tls(self):
        self._fetchmail("fetchmailrc-imap.in", "imap",
                        self.dovecot.ports["imaps"], "implicit")

    def test_fetchmail_imap_starttls(self):
        self._fetchmail("fetchmailrc-imap.in", "imap",
                        self.dovecot.ports["imap"], "starttls")

    def test_fetchmail_pop3_implicit_tls(self):
        self._fetchmail("fetchmailrc-pop3.in", "pop3",
                        self.dovecot.ports["pop3s"], "implicit")

    def test_fetchmail_pop3_starttls(self):
        self._fetchmail("fetchmailrc-pop3.in", "pop3",
                        self.dovecot.ports["pop3"], "starttls")

    # mutt, neomutt, mbsync, offlineimap ---------------------------------------

    def need(self, *programs):
        missing = [p for p in programs if not shutil.which(p)]
        if missing:
            self.skipTest("not installed: " + " ".join(missing))

    def _mutt_tunnel(self, program):
        self.need(program, "script")
        self.install("muttrc-tunnel.in", ".muttrc", self.values())
        subject = unique_subject(program + "-tunnel")
        self.put_message(subject)
        offset = self.log_offset()
        cmd = "stty rows 50 cols 200; exec %s -n -e 'push <quit>'" % program
        rc, text = self.run_client(program,
                                   ["script", "-qec", cmd, "/dev/null"],
                                   keep_stdin_open=True)
        self.assertEqual(rc, 0, self.explain(program, rc, text, offset))
        self.assertTrue(subject in text,
                        "the index does not show %s: %s" % (
                            subject, self.explain(program, rc, text, offset)))
        self.assert_login("imap", offset)

    def test_mutt_tunnel_lists_inbox(self):
        self._mutt_tunnel("mutt")

    def test_neomutt_tunnel_lists_inbox(self):
        self._mutt_tunnel("neomutt")

    def _synced(self, maildir, subject):
        for root, _dirs, files in os.walk(maildir):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    if subject.encode() in f.read():
                        return True
        return False

    def test_mbsync_tunnel_syncs(self):
        self.need("mbsync")
        maildir = os.path.join(self.home, "Mail", "mbsync")
        os.makedirs(maildir)
        self.install("mbsyncrc-tunnel.in", ".mbsyncrc",
                     self.values(MAILDIR=maildir))
        subject = unique_subject("mbsync-tunnel")
        self.put_message(subject)
        offset = self.log_offset()
        rc, text = self.run_client("mbsync", ["mbsync", "-a"])
        self.assertEqual(rc, 0, self.explain("mbsync", rc, text, offset))
        self.assertTrue(self._synced(maildir, subject),
                        "not synced: " + self.explain("mbsync", rc, text,
                                                      offset))
        self.assert_login("imap", offset)

    def test_offlineimap3_preauthtunnel_syncs(self):
        self.need("offlineimap")
        maildir = os.path.join(self.home, "Mail", "offlineimap")
        os.makedirs(maildir)
        self.install("offlineimaprc-tunnel.in", ".offlineimaprc",
                     self.values(MAILDIR=maildir))
        subject = unique_subject("offlineimap-tunnel")
        self.put_message(subject)
        offset = self.log_offset()
        rc, text = self.run_client("offlineimap",
                                   ["offlineimap", "-o", "-u", "basic"])
        self.assertEqual(rc, 0, self.explain("offlineimap", rc, text, offset))
        self.assertTrue(self._synced(maildir, subject),
                        "not synced: " + self.explain("offlineimap", rc, text,
                                                      offset))
        self.assert_login("imap", offset)

    # the session itself --------------------------------------------------------

    def test_imap_greeting_is_preauth_with_post_login_capabilities(self):
        offset = self.log_offset()
        t = self.tunnel(*self.imaps_args())
        greeting = t.line()
        t.send(b"a1 CAPABILITY\r\n")
        caps = t.until("a1 ")
        t.send(b"a2 LOGOUT\r\n")
        t.until("a2 ")
        rc, _, err = t.finish()
        self.assertEqual(rc, 0, err)
        self.assertRegex(greeting, r"^\* PREAUTH \[CAPABILITY IMAP4rev1 ")
        for absent in ("STARTTLS", "LOGINDISABLED", "AUTH="):
            self.assertNotIn(absent, greeting)
        # Post-login capabilities: what the server itself says once logged in.
        server_caps = [l for l in caps if l.startswith("* CAPABILITY ")][0]
        self.assertEqual(greeting.split("[CAPABILITY ", 1)[1].split("]")[0],
                         server_caps[len("* CAPABILITY "):])
        self.assert_login("imap", offset)

    def test_oauthbearer_over_pop3_answers_login_commands_locally(self):
        offset = self.log_offset()
        t = self.tunnel(ALICE, "127.0.0.1", str(self.dovecot.ports["pop3s"]),
                        "--protocol", "pop3", "--mechanism", "OAUTHBEARER",
                        "--ca-file", self.dovecot.ca_file)
        greeting = t.line()
        t.send(b"USER alice\r\nPASS not-a-password\r\nCAPA\r\n")
        user, password = t.line(), t.line()
        capa = t.until(".")
        t.send(b"STAT\r\nQUIT\r\n")
        stat = t.line()
        t.until("+OK")
        rc, _, err = t.finish()
        self.assertEqual(rc, 0, err)
        self.assertTrue(greeting.startswith("+OK"), greeting)
        self.assertTrue(user.startswith("+OK") and password.startswith("+OK"))
        self.assertEqual(capa[0][:3], "+OK")
        self.assertIn("UIDL", capa)
        for absent in ("STLS", "USER"):
            self.assertNotIn(absent, capa)
        self.assertFalse(any(l.startswith("SASL") for l in capa), capa)
        self.assertRegex(stat, r"^\+OK \d+ \d+$")
        self.assert_login("pop3", offset, method="OAUTHBEARER")
        # USER and PASS were not forwarded: Dovecot saw only the token login.
        self.assertNotIn("not-a-password", self.dovecot.log()[offset:])

    def test_refused_token_recovers_with_one_forced_refresh(self):
        for service, args in (
                ("imap", self.imaps_args()),
                ("pop3", (ALICE, "127.0.0.1",
                          str(self.dovecot.ports["pop3s"]), "--protocol",
                          "pop3", "--ca-file", self.dovecot.ca_file))):
            with self.subTest(service=service):
                self.idp.revoke_access_tokens(ALICE)
                self.idp.reset_counters()
                offset = self.log_offset()
                t = self.tunnel(*args)
                greeting = t.line()
                t.send(b"a1 LOGOUT\r\n" if service == "imap" else b"QUIT\r\n")
                t.until("a1 " if service == "imap" else "+OK")
                rc, _, err = t.finish()
                self.assertEqual(rc, 0, err)
                self.assertTrue(greeting.startswith(
                    "* PREAUTH" if service == "imap" else "+OK"), greeting)
                self.assertEqual(self.idp.counters().get(
                    "grant:refresh_token", 0), 1)
                self.assertIn("refused the token of %s" % ALICE, err)
                self.assertIn("getting a new one", err)
                self.assert_login(service, offset)

    def test_revoked_grant_exits_77_and_fetchmail_reports_it(self):
        self.need("fetchmail")
        try:
            self.idp.revoke_access_tokens(ALICE)
            self.idp.revoke_refresh_tokens(ALICE)
            wanted = "mailoauth login " + ALICE
            for service, args, first in (
                    ("imap", self.imaps_args(), "* BYE mailoauth: "),
                    ("pop3", (ALICE, "127.0.0.1",
                              str(self.dovecot.ports["pop3s"]),
                              "--protocol", "pop3", "--ca-file",
                              self.dovecot.ca_file), "-ERR mailoauth: ")):
                t = self.tunnel(*args)
                line = t.line()
                rc, _, err = t.finish()
                self.assertEqual(rc, 77, err)
                self.assertTrue(line.startswith(first), line)
                self.assertIn(wanted, line)
                self.assertIn(wanted, err)
            self.install("fetchmailrc-imap.in", ".fetchmailrc", self.values(
                IMAP_PORT=self.dovecot.ports["imaps"]))
            offset = self.log_offset()
            rc, text = self.run_client("fetchmail", ["fetchmail"])
            self.assertNotIn(rc, (0, 1, None),
                             self.explain("fetchmail", rc, text, offset))
            self.assertIn(wanted, text,
                          self.explain("fetchmail", rc, text, offset))
        finally:
            self.idp.clear_faults()
            self._login()

    def test_unknown_ca_refused_before_anything_is_sent(self):
        cert, key = testca.untrusted_cert(self.work.path)
        server = SilentServer(tls=(cert, key))
        try:
            for extra in (("--ca-file", self.dovecot.ca_file), ()):
                t = self.tunnel(ALICE, "127.0.0.1", str(server.port),
                                "--tls", "implicit", *extra)
                line = t.line()
                rc, _, err = t.finish()
                self.assertEqual(rc, 78, err)
                self.assertTrue(line.startswith("* BYE mailoauth: "), line)
                self.assertIn("certificate of 127.0.0.1 was refused", err)
                self.assertIn("unable to get local issuer certificate", err)
            time.sleep(0.2)
            self.assertEqual(server.received, [])
            self.assertTrue(server.handshake_errors)
        finally:
            server.stop()

    def test_stalled_server_ends_within_timeout(self):
        server = SilentServer()
        try:
            for proto, tls, first in (("imap", "implicit", "* BYE"),
                                      ("imap", "none", "* BYE"),
                                      ("pop3", "none", "-ERR")):
                t = self.tunnel(ALICE, "127.0.0.1", str(server.port),
                                "--protocol", proto, "--tls", tls,
                                "--timeout", "2")
                line = t.line(timeout=15)
                rc, _, err = t.finish()
                secs = time.monotonic() - t.started
                self.assertEqual(rc, 75, err)
                self.assertTrue(line.startswith(first), line)
                self.assertGreaterEqual(secs, 1.9)
                self.assertLess(secs, 6, err)
                self.assertIn("within", line)
        finally:
            server.stop()

    def test_client_leaving_mid_session_leaves_no_process(self):
        # During IDLE the server says nothing: only the client's end can
        # end the tunnel.
        t = self.tunnel(*self.imaps_args())
        t.line()
        t.send(b"a1 SELECT INBOX\r\n")
        t.until("a1 ")
        t.send(b"a2 IDLE\r\n")
        self.assertTrue(t.line().startswith("+ "))
        pid = t.proc.pid
        self.assertTrue(mailenv.pid_alive(pid))
        t.proc.stdin.close()
        t.proc.stdout.close()
        try:
            rc = t.proc.wait(10)
        except subprocess.TimeoutExpired:
            t.proc.kill()
            self.fail("mailoauth connect still running after its client left")
        self.assertEqual(rc, 0)
        self.assertFalse(mailenv.pid_alive(pid))
        helperlib.captured_output.append(("connect", t.proc.stderr.read()
                                          .decode(errors="replace")))
        t.proc.stderr.close()

    def test_clear_text_refused_unless_loopback(self):
        # 192.0.2.1 (TEST-NET-1) is never connected to: refused before.
        t = self.tunnel(ALICE, "192.0.2.1", "143", "--tls", "none")
        line = t.line()
        rc, _, err = t.finish()
        self.assertEqual(rc, 78, err)
        self.assertTrue(line.startswith("* BYE mailoauth: refusing to send a "
                                        "token in clear text"), line)
        self.assertLess(time.monotonic() - t.started, 5)

    # the program ---------------------------------------------------------------

    def test_program_still_links_only_libc(self):
        """TLS lives in mailoauth-tls.so, which links OpenSSL and not
        libcurl: the program itself needs nothing but libc."""
        def needed(path):
            r = subprocess.run(["objdump", "-p", path], capture_output=True,
                               text=True)
            self.assertEqual(r.returncode, 0, r.stderr)
            return [l.split()[1] for l in r.stdout.splitlines()
                    if l.strip().startswith("NEEDED")]
        prog = needed(os.path.realpath(mailoauth_bin()))
        self.assertEqual([n for n in prog if not n.startswith("ld-linux")],
                         ["libc.so.6"], prog)
        module = os.path.join(os.path.dirname(os.path.realpath(
            mailoauth_bin())), "tokenhelper", ".libs", "mailoauth-tls.so")
        mod = needed(module)
        self.assertIn("libssl.so.3", mod)
        self.assertFalse([n for n in mod if "curl" in n or "json" in n], mod)

    # the README --------------------------------------------------------------

    def test_readme_shows_these_configurations(self):
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
