"""Text from the identity provider with the C1 control U+009B (CSI) in each
form it can arrive in: the JSON escape \\u009b, raw UTF-8 (C2 9B), and the
raw byte 0x9B (invalid UTF-8, which jsoncpp passes through), each with an
ESC too.  In message, verification_uri and error_description, it must not
reach the terminal (login, token, get), the store (last_error, as `status`
and `status --json` print it) or the agent's log and replies, while the rest
of the text does (common/sanitize.h: each control becomes '?')."""
import json
import os
import socket
import subprocess
import time
import uuid

import tap
from helperlib import (ACCOUNT, MAILOAUTH, HelperTestCase, ZzNoSecretsInOutput,  # noqa: F401
                       captured_output, read_to_end)

# What the provider sends (before, CSI, "31m", ESC, "[2J", after), and what
# a person may see of it.
BEFORE, AFTER = "Sign in before noon", "then carry on"
FORMS = {
    "JSON escape \\u009b": {"text": BEFORE + "\u009b31m\x1b[2J" + AFTER},
    "raw UTF-8 C2 9B": {"bytes": BEFORE.encode() + b"\xc2\x9b31m\x1b[2J" + AFTER.encode()},
    "raw byte 9B": {"bytes": BEFORE.encode() + b"\x9b31m\x1b[2J" + AFTER.encode()},
}
SHOWN = BEFORE + "?31m?[2J" + AFTER


def hostile(field, form, prefix=""):
    """fields/raw_fields for FakeIdP.fault or inject: FIELD holds the form."""
    f = FORMS[form]
    if "text" in f:
        return {"fields": {field: prefix + f["text"]}}
    return {"raw_fields": {field: prefix.encode() + f["bytes"]}}


class SanitizeCase(HelperTestCase):
    idp_options = {"interval": 1}

    def run_bytes(self, *args, stdin=None, env=None, timeout=60):
        p = subprocess.run([MAILOAUTH, *args], input=stdin, capture_output=True,
                           timeout=timeout, env=self.env(env))
        captured_output.append((args[0], p.stderr.decode("utf-8", "replace")))
        return p

    def assertClean(self, data, what):
        """No CSI in either form, no ESC, and valid UTF-8."""
        self.assertIsInstance(data, bytes)
        self.assertNotIn(b"\x9b", data, what)       # raw, and the second byte of C2 9B
        self.assertNotIn(b"\x1b", data, what)
        data.decode("utf-8")                        # raises on invalid UTF-8
        return data.decode("utf-8")

    def assertShown(self, data, what):
        text = self.assertClean(data, what)
        self.assertIn(SHOWN, text, what)
        return text


class Login(SanitizeCase):
    def test_message_in_each_form(self):
        for form in FORMS:
            with self.subTest(form=form):
                self.idp.inject("devicecode", **hostile("message", form))
                proc = subprocess.Popen([MAILOAUTH, *self.login_args()], stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env())
                self.idp.approve(self.idp.wait_for_pending(timeout=15), username=ACCOUNT)
                out, err = proc.communicate(timeout=60)
                captured_output.append(("login", err.decode("utf-8", "replace")))
                self.assertEqual(proc.returncode, 0, err)
                self.assertShown(err, "login's stderr")
                self.assertClean(out, "login's stdout")
                self.assertIn(b"Signed in", err)

    def test_verification_uri_in_each_form_is_refused(self):
        # A URI to open is used exactly as sent or not at all.
        for form in FORMS:
            with self.subTest(form=form):
                self.idp.inject("devicecode", **hostile("verification_uri", form,
                                                        prefix="https://microsoft.com/devicelogin/"))
                p = self.run_bytes(*self.login_args())
                self.assertEqual(p.returncode, 75, p.stderr)
                text = self.assertClean(p.stderr, "login's stderr")
                self.assertIn("verification_uri", text)
                self.assertNotIn(BEFORE, text)
                self.assertClean(p.stdout, "login's stdout")
                self.assertFalse(os.path.exists(os.path.join(self.store, ACCOUNT)))

    def test_error_description_in_each_form(self):
        # An AADSTS code mailoauth does not know: the provider's own words
        # are quoted (a known code is explained instead, and would prove
        # nothing here).
        for form in FORMS:
            with self.subTest(form=form):
                self.idp.fault("devicecode", "error", error="invalid_request", error_codes=[9999999],
                               **hostile("error_description", form))
                p = self.run_bytes(*self.login_args())
                self.assertNotEqual(p.returncode, 0, p.stderr)
                text = self.assertShown(p.stderr, "login's stderr")
                self.assertIn("The identity provider says", text)
                self.assertClean(p.stdout, "login's stdout")


class StoredError(SanitizeCase):
    """A refresh that fails: the message goes to stderr, into the store's
    last_error, and out again through status, status --json, get and the
    agent."""
    # Access tokens that expire at once: every later use must refresh,
    # whatever the refresh margin.
    template_access_lifetime = 1

    def setUp(self):
        super().setUp()
        self.use_class_login()
        self.idp.set_access_lifetime(1)
        self.addCleanup(self.idp.set_access_lifetime, 3600)
        self.wait_until_expired()      # the class's login: a second at most

    def fail_next_refresh(self, form):
        self.idp.fault("token", "error", grant_type="refresh_token", error="invalid_request",
                       error_codes=[9999999], **hostile("error_description", form))

    def check_store_and_status(self, form):
        with open(os.path.join(self.store, ACCOUNT), "rb") as f:
            self.assertShown(f.read(), "the store record (%s)" % form)
        p = self.run_bytes("status", ACCOUNT)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("last error:     ", self.assertShown(p.stdout, "status"))
        p = self.run_bytes("status", ACCOUNT, "--json")
        self.assertEqual(p.returncode, 0, p.stderr)
        doc = json.loads(self.assertClean(p.stdout, "status --json"))
        [acct] = doc if isinstance(doc, list) else doc["accounts"]
        self.assertIn(SHOWN, acct["last_error"])
        self.assertNotIn("\x9b", acct["last_error"])
        self.assertNotIn("\x1b", acct["last_error"])

    def test_token_then_status_in_each_form(self):
        for form in FORMS:
            with self.subTest(form=form):
                self.fail_next_refresh(form)
                p = self.run_bytes("token", ACCOUNT)
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout, b"")
                self.assertShown(p.stderr, "token's stderr")
                self.check_store_and_status(form)

    def test_get_reply_in_each_form(self):
        request = ("version=1\naccount=%s\nprotocol=imap\nhost=outlook.office365.com\n"
                   "mechanism=XOAUTH2\n\n" % ACCOUNT).encode()
        for form in FORMS:
            with self.subTest(form=form):
                self.fail_next_refresh(form)
                p = self.run_bytes("get", stdin=request)
                self.assertNotEqual(p.returncode, 0, p.stderr)
                reply = self.assertShown(p.stdout, "get's reply")
                self.assertRegex(reply, r"(?m)^error_description=.*" + SHOWN.replace("?", r"\?")
                                 .replace("[", r"\["))
                self.assertShown(p.stderr, "get's stderr")
                self.check_store_and_status(form)

    def test_agent_log_and_reply_in_each_form(self):
        for form in FORMS:
            with self.subTest(form=form):
                name = "@mailoauth-sanitize-%s" % uuid.uuid4().hex[:12]
                log_path = os.path.join(self.tmp, "agent-%s.log" % uuid.uuid4().hex[:8])
                with open(log_path, "wb") as log:
                    agent = subprocess.Popen([MAILOAUTH, "agent", "--foreground", "--socket", name],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                             stderr=log, env=self.env())
                try:
                    self.wait_for(log_path, b"listening on", agent)
                    self.fail_next_refresh(form)
                    reply = self.ask(name)
                    self.assertShown(reply, "the agent's reply")
                    self.assertIn(b"error_description=", reply)
                    log = self.wait_for(log_path, b"failed (status", agent)
                finally:
                    if agent.poll() is None:
                        agent.terminate()
                    agent.wait(timeout=15)
                with open(log_path, "rb") as f:
                    log = f.read()
                captured_output.append(("agent", log.decode("utf-8", "replace")))
                line = [l for l in log.splitlines() if b"failed (status" in l]
                self.assertEqual(len(line), 1, log)
                self.assertShown(line[0], "the agent's log line")
                self.assertClean(log, "the agent's log")
                self.check_store_and_status(form)

    def wait_for(self, path, what, proc, timeout=15):
        deadline = time.monotonic() + timeout
        while True:
            with open(path, "rb") as f:
                data = f.read()
            if what in data:
                return data
            self.assertIsNone(proc.poll(), data)
            self.assertLess(time.monotonic(), deadline, data)
            time.sleep(0.05)

    def ask(self, name):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        try:
            s.connect("\0" + name[1:])
            s.sendall(("version=1\naccount=%s\nprotocol=smtp\nhost=smtp.office365.com\nport=587\n"
                       "mechanism=XOAUTH2\n\n" % ACCOUNT).encode())
            return read_to_end(s)
        finally:
            s.close()


if __name__ == "__main__":
    tap.main()
