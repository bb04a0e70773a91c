"""mailoauth login --browser / --paste: how the browser sign-in fails.

Each failure is a clear message and a non-zero sysexits code, and nothing
is stored: a wrong state, no code, an error redirect (access_denied), a
second request to the listener, a timeout, a listener port in use, a
pasted line that is no address, --browser with --paste.  A tenant that
blocks the device-code flow (Conditional Access 53003, 530033) and Google
(which refuses the mail scope in the device flow) are told to use
--browser.  The PKCE verifier, the authorization code and the client
secret appear nowhere: not in argv or the environment of the running
mailoauth, not in its output, not in `status` (the fake lists all three
among its issued secrets, so the module's final leak check covers them).

The scripted browser (tests/lib/browser.py) talks to the fake identity
provider and to mailoauth's loopback listener; the end-to-end sign-ins per
provider are in tests/e2e/test_providers.py.
"""
import base64
import hashlib
import os
import socket
import subprocess
import time
import urllib.parse

import browser
import tap
from helperlib import (ACCOUNT, MAILOAUTH, HelperTestCase,  # noqa: F401
                       ZzNoSecretsInOutput, captured_output, Run)

EX_USAGE, EX_DATAERR, EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = 64, 65, 75, 77, 78


def s256(verifier):
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def url_params(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query,
                                       keep_blank_values=True))


def with_params(url, **changes):
    """URL with query parameters replaced (None: removed)."""
    u = urllib.parse.urlsplit(url)
    q = [(k, v) for k, v in urllib.parse.parse_qsl(u.query, keep_blank_values=True)
         if k not in changes]
    q += [(k, v) for k, v in changes.items() if v is not None]
    return urllib.parse.urlunsplit(u._replace(query=urllib.parse.urlencode(q)))


class BrowserSignIn(HelperTestCase):
    """One fake per class, one store per test; each test one sign-in."""

    idp_options = {"interval": 1}

    def setUp(self):
        super().setUp()
        # Codes, the browser's outcome, Conditional Access: this test's own
        # (the issued secrets keep their history for the leak check).
        self.idp.reset()

    # --- running mailoauth --------------------------------------------

    def browser_args(self, *extra, account=ACCOUNT):
        return ["login", account, "--client-id", self.idp.client_id,
                "--authority", self.idp.authority(), "--ca-file",
                self.idp.ca_file, *extra]

    def start(self, *args):
        """mailoauth ARGS with a pipe for stdin (--paste); returns the
        process, the authorization URL it printed and the lines read so
        far (which go into the Run's stderr)."""
        proc = subprocess.Popen([MAILOAUTH, *args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=self.env())
        seen = []
        try:
            url = browser.read_auth_url(proc.stderr, timeout=15, seen=seen)
        except browser.BrowserError:
            out, err = proc.communicate(timeout=30)
            captured_output.append(("login", "\n".join(seen) + err.decode()))
            self.fail("no authorization URL: rc=%s %s" % (proc.returncode, err.decode()[-2000:]))
        proc.seen = seen
        return proc, url

    def finish(self, proc, stdin=None, timeout=30):
        t0 = time.monotonic()
        out, err = proc.communicate(input=stdin, timeout=timeout)
        err = "\n".join(proc.seen) + "\n" + err.decode("utf-8", "replace")
        captured_output.append(("browser login", err))
        captured_output.append(("browser login stdout", out.decode("utf-8", "replace")))
        return Run(proc.returncode, out.decode("utf-8", "replace"), err, time.monotonic() - t0)

    def assert_failed(self, r, code, *phrases):
        self.assertEqual(r.rc, code, r)
        self.assertIn("mailoauth: ", r.err)
        for phrase in phrases:
            self.assertIn(phrase, r.err, r)
        self.assertEqual(r.out, "")
        self.assert_nothing_stored()

    def assert_nothing_stored(self):
        entries = os.listdir(self.store) if os.path.isdir(self.store) else []
        self.assertFalse([e for e in entries if not e.startswith(".")],
                         "something was stored: %s" % entries)

    def refused(self, url):
        """True if nothing accepts a connection at URL's host:port."""
        u = urllib.parse.urlsplit(url)
        try:
            socket.create_connection((u.hostname, u.port), timeout=5).close()
        except ConnectionRefusedError:
            return True
        return False

    # --- what the browser brings back ----------------------------------

    def test_wrong_state_is_refused_and_code_not_redeemed(self):
        proc, url = self.start(*self.browser_args("--browser"))
        location = browser.redirect_location(url, self.idp.ca_file)
        code = url_params(location)["code"]
        self.assertIn(code, self.idp.issued_secrets())   # the leak checks know the code
        forged = with_params(location, state="x" * 43)
        status, _, body = browser.get(forged)
        self.assertEqual(status, 400)
        self.assertIn(b"does not belong to the sign-in", body)
        self.assertNotIn(code.encode(), body)
        r = self.finish(proc)
        self.assert_failed(r, EX_NOPERM, "state does not match", "nothing was saved",
                           "mailoauth login %s --browser" % ACCOUNT)
        self.assertNotIn(code, r.err)
        # The code was never sent to the token endpoint.
        self.assertEqual([c["used"] for c in self.idp.auth_codes()], [False])
        self.assertEqual(self.idp.counters().get("grant:authorization_code", 0), 0)
        self.assertTrue(self.refused(location))

    def test_missing_code(self):
        proc, url = self.start(*self.browser_args("--browser"))
        q = url_params(url)
        status, _, _ = browser.get(q["redirect_uri"] + "?" +
                                   urllib.parse.urlencode({"state": q["state"]}))
        self.assertEqual(status, 400)
        r = self.finish(proc)
        self.assert_failed(r, EX_NOPERM, "neither an authorization code nor an error",
                           "Nothing was saved")

    def test_error_redirect_access_denied(self):
        self.idp.set_browser(outcome="deny")
        proc, url = self.start(*self.browser_args("--browser"))
        status, body = browser.follow(url, self.idp.ca_file)
        self.assertEqual(status, 400)
        self.assertIn("access_denied", body)
        r = self.finish(proc)
        self.assert_failed(r, EX_NOPERM, "did not complete", "declined",
                           "mailoauth login %s --browser" % ACCOUNT)
        self.assertEqual(self.idp.counters().get("grant:authorization_code", 0), 0)

    def test_second_request_to_listener_is_not_served(self):
        proc, url = self.start(*self.browser_args("--browser"))
        # A browser asks for /favicon.ico first: not the answer, the
        # listener goes on waiting.
        location = browser.redirect_location(url, self.idp.ca_file)
        u = urllib.parse.urlsplit(location)
        status, _, _ = browser.get("http://%s/favicon.ico" % u.netloc)
        self.assertEqual(status, 404)
        status, _, body = browser.get(location)
        self.assertEqual(status, 200)
        self.assertIn(b"Signed in", body)
        # The one answer taken, the listener is closed: a replay of the
        # same address (or any other request) finds nobody.
        self.assertTrue(self.refused(location), "the listener still accepts connections")
        with self.assertRaises(ConnectionRefusedError):
            browser.get(location)
        r = self.finish(proc)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual([c["used"] for c in self.idp.auth_codes()], [True])
        self.assertEqual(self.idp.counters().get("grant:authorization_code"), 1)
        self.assertEqual(self.record()["grant"], "authorization_code")

    def test_timeout(self):
        t0 = time.monotonic()
        proc, url = self.start(*self.browser_args("--browser", "--timeout", "2"))
        r = self.finish(proc)
        self.assert_failed(r, EX_TEMPFAIL, "not completed in the browser within 0:02",
                           "nothing was saved")
        self.assertLess(time.monotonic() - t0, 10)
        self.assertTrue(self.refused(url_params(url)["redirect_uri"]))
        self.assertEqual(self.idp.counters().get("authorize", 0), 0)

    def test_listener_port_in_use(self):
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            r = self.mailoauth(*self.browser_args("--browser", "--port", str(port)))
        finally:
            holder.close()
        self.assert_failed(r, EX_CONFIG, "port %d is in use" % port, "--port")
        # No address to open for a sign-in that cannot come back.
        self.assertIsNone(browser.auth_url_from_lines(r.err.splitlines()), r)

    def test_fixed_port_is_the_redirect_uri(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc, url = self.start(*self.browser_args("--browser", "--port", str(port),
                                                  "--timeout", "2"))
        self.assertEqual(url_params(url)["redirect_uri"], "http://127.0.0.1:%d/" % port)
        r = self.finish(proc)
        self.assert_failed(r, EX_TEMPFAIL, "within 0:02")

    def test_paste_garbage(self):
        proc, url = self.start(*self.browser_args("--paste", "--timeout", "20"))
        r = self.finish(proc, stdin=b"this is not an address\n")
        self.assert_failed(r, EX_DATAERR, "not the address the sign-in ended on",
                           "mailoauth login %s --paste" % ACCOUNT)

    def test_paste_wrong_state(self):
        proc, url = self.start(*self.browser_args("--paste", "--timeout", "20"))
        location = browser.redirect_location(url, self.idp.ca_file)
        r = self.finish(proc, stdin=(with_params(location, state="y" * 43) + "\n").encode())
        self.assert_failed(r, EX_NOPERM, "state does not match")
        self.assertEqual(self.idp.counters().get("grant:authorization_code", 0), 0)

    def test_browser_with_paste_is_a_usage_error(self):
        r = self.mailoauth(*self.browser_args("--browser", "--paste"))
        self.assert_failed(r, EX_USAGE, "--browser", "--paste", "not both")
        self.assertEqual(self.idp.counters().get("authorize", 0), 0)

    # --- device code refused -------------------------------------------

    def device_code_blocked(self, code):
        self.idp.set_conditional_access(code)
        proc = self.spawn(*self.browser_args())
        self.idp.approve(self.idp.wait_for_pending(timeout=15), username=ACCOUNT)
        r = super().finish(proc)
        self.assert_failed(r, EX_CONFIG, "blocks sign-in with a device code",
                           "Conditional Access", "--browser")
        # The command to run, whole, with --browser.
        self.assertRegex(r.err, r"mailoauth login %s .*--client-id %s.* --browser\n"
                         % (ACCOUNT, self.idp.client_id))

    def test_device_code_blocked_53003_names_browser(self):
        self.device_code_blocked(53003)

    def test_device_code_blocked_530033_names_browser(self):
        self.device_code_blocked(530033)

    def test_google_device_flow_names_browser(self):
        client_id, secret = self.idp.google_client()
        secret_file = self.write_secret(secret)
        r = self.mailoauth("login", ACCOUNT, "--provider", "google", "--client-id", client_id,
                           "--client-secret-file", secret_file,
                           "--authorization-endpoint", self.idp.google_auth_url(),
                           "--token-endpoint", self.idp.google_token_url(),
                           "--device-endpoint", self.idp.google_device_url(),
                           "--ca-file", self.idp.ca_file)
        self.assert_failed(r, EX_CONFIG, "Google does not allow the Gmail scope",
                           "device-code", "--browser")
        self.assertEqual(self.idp.counters().get("google_device", 0), 0)

    # --- secrets --------------------------------------------------------

    def write_secret(self, secret):
        path = os.path.join(self.tmp, "client-secret")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return path

    def proc_texts(self, pid):
        """argv and environment of PID and of its children."""
        texts = []
        pids = [pid]
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                    pids += [int(c) for c in f.read().split()]
        except OSError:
            pass
        for p in pids:
            for what in ("cmdline", "environ"):
                try:
                    with open("/proc/%d/%s" % (p, what), "rb") as f:
                        texts.append(f.read().replace(b"\0", b" ").decode("utf-8", "replace"))
                except OSError:
                    pass
        return texts

    def test_verifier_code_and_client_secret_never_shown(self):
        client_id, secret = self.idp.google_client()
        secret_file = self.write_secret(secret)
        proc, url = self.start("login", ACCOUNT, "--provider", "google", "--client-id", client_id,
                               "--client-secret-file", secret_file, "--browser",
                               "--authorization-endpoint", self.idp.google_auth_url(),
                               "--token-endpoint", self.idp.google_token_url(),
                               "--ca-file", self.idp.ca_file)
        running = self.proc_texts(proc.pid)
        self.assertTrue(running and client_id in running[0], running)
        location = browser.redirect_location(url, self.idp.ca_file)
        code = url_params(location)["code"]
        running += self.proc_texts(proc.pid)
        status, _, body = browser.get(location)
        self.assertEqual(status, 200)
        running += self.proc_texts(proc.pid)
        r = self.finish(proc)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(r.out, "")
        # The verifier: what the token endpoint received for this
        # challenge, listed among the fake's secrets.
        challenge = url_params(url)["code_challenge"]
        issued = self.idp.issued_secrets()
        verifiers = [s for s in issued if s.isascii() and s256(s) == challenge]
        self.assertEqual(len(verifiers), 1, "the fake did not list the verifier")
        self.assertIn(code, issued)
        self.assertIn(secret, issued)
        self.assertNotIn(verifiers[0], url)
        status_runs = [self.mailoauth("status"), self.mailoauth("status", ACCOUNT),
                       self.mailoauth("status", "--json")]
        for s in status_runs:
            self.assertEqual(s.rc, 0, s)
        self.assertIn("google", status_runs[1].out + status_runs[1].err)
        # The fake's metadata of the codes carries no code.
        meta = repr(self.idp.auth_codes())
        texts = {"argv/environ": "\n".join(running), "stderr": r.err, "stdout": r.out,
                 "auth_codes()": meta}
        for i, s in enumerate(status_runs):
            texts["status %d" % i] = s.out + s.err
        for name, text in texts.items():
            for what, value in (("verifier", verifiers[0]), ("code", code),
                                ("client secret", secret)):
                self.assertNotIn(value, text, "the %s in %s" % (what, name))
        # The secret is kept in the record (mode 0600), the code and the
        # verifier are not.
        rec = self.record()
        self.assertEqual(rec["client_secret"], secret)
        self.assertEqual(os.stat(os.path.join(self.store, ACCOUNT)).st_mode & 0o777, 0o600)
        with open(os.path.join(self.store, ACCOUNT)) as f:
            stored = f.read()
        self.assertNotIn(code, stored)
        self.assertNotIn(verifiers[0], stored)


if __name__ == "__main__":
    tap.main()
