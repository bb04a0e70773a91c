"""One battery of helper protocol v1 cases (common/protocol.h, HELPER
PROTOCOL in mailoauth(1)) run against every server of the protocol: the
`mailoauth get` verb (request on stdin, reply on stdout, the exit status)
and a running `mailoauth agent` (request and reply over its socket), as
git's t/lib-credential.sh runs one set of cases against every credential
helper.  Both must give the same answers:

- a good request gets access_token, expires_at, user, lifetime (the
  seconds the token was issued for) and status=0;
- unknown keys are ignored;
- a value with CR or NUL, a line without '=', an over-long line, too many
  fields, an over-long message, a missing or invalid account, and another
  protocol version are refused with status 65 and an error word;
- an account without a login gets status 77;
- every reply carries status=N, and for `get` it equals the exit status
  (a program that reaps children loses the exit status: the plugin reads
  this instead);
- "rejected" (the first 8 bytes of a token's SHA-256, in hex) forces a
  refresh only while it names the current token; the old form, the
  token's last characters, is not honoured."""
import hashlib
import os
import signal
import socket
import subprocess
import time
import unittest

import tap
from helperlib import (ACCOUNT, MAILOAUTH, HelperTestCase, ZzNoSecretsInOutput,  # noqa: F401
                       captured_output)

_counter = [0]


def token_id(token):
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def parse_reply(data):
    reply = {}
    for line in data.split(b"\n"):
        if not line:
            break
        k, _, v = line.decode(errors="replace").partition("=")
        reply[k] = v
    return reply


def request(*lines, account=ACCOUNT):
    head = ["version=1", "account=" + account] if account is not None else ["version=1"]
    return ("\n".join(head + list(lines)) + "\n\n").encode()


class Battery:
    """The cases.  A subclass provides exchange(raw) -> reply dict, with
    the reply's "status" checked to be present.  Each case starts with
    ACCOUNT signed in (a copy of the class's login)."""

    def setUp(self):
        super().setUp()
        self.use_class_login()
        self.idp.set_access_lifetime(3600)
        self.start_server()

    def refreshes(self):
        return self.idp.counters().get("grant:refresh_token", 0)

    def ask(self, raw):
        reply = self.exchange(raw)
        self.assertIn("status", reply, "every reply carries status=N: %r" % sorted(reply))
        self.assertRegex(reply["status"], r"^[0-9]{1,3}$")
        return reply

    def assert_token(self, reply):
        self.assertEqual(reply["status"], "0", reply.get("error_description"))
        self.assertEqual(reply["access_token"], self.record()["access_token"])
        self.assertEqual(reply["user"], ACCOUNT)
        self.assertGreater(int(reply["expires_at"]), time.time() + 3000)
        # What the token was issued for, from which the plugin's cache
        # clamps its refresh margin (common/margin.h).
        self.assertEqual(reply.get("lifetime"), "3600")

    def assert_refused(self, reply, status, error, says):
        self.assertEqual(reply["status"], str(status), reply)
        self.assertEqual(reply["error"], error)
        self.assertIn(says, reply["error_description"])
        self.assertNotIn("access_token", reply)

    # The cases.

    def test_good_request(self):
        self.assert_token(self.ask(request("protocol=smtp", "host=smtp.office365.com", "port=587",
                                           "mechanism=XOAUTH2")))
        self.assertEqual(self.refreshes(), 0)

    def test_minimal_request(self):
        self.assert_token(self.ask(b"account=" + ACCOUNT.encode() + b"\n\n"))

    def test_unknown_keys_ignored(self):
        self.assert_token(self.ask(request("protocol=imap", "future_key=1", "x-vendor.hint=a b c")))

    def test_value_with_cr_refused(self):
        self.assert_refused(self.ask(request("host=smtp.office365.com\rx")), 65, "bad_request",
                            "request line 3: value contains CR or NUL")

    def test_value_with_nul_refused(self):
        self.assert_refused(self.ask(request("host=smtp\0.office365.com")), 65, "bad_request",
                            "request line 3: value contains CR or NUL")

    def test_line_without_equals_refused(self):
        # What a value with LF becomes: a line of its own.
        self.assert_refused(self.ask(request("host=smtp", "office365.com")), 65, "bad_request",
                            "request line 4: line without '='")

    def test_over_long_line_refused(self):
        self.assert_refused(self.ask(request("host=" + "h" * 16385)), 65, "bad_request",
                            "request line 3: line too long")

    def test_too_many_fields_refused(self):
        self.assert_refused(self.ask(request(*["k%d=v" % i for i in range(70)])), 65, "bad_request",
                            "too many fields")

    def test_over_long_message_refused(self):
        reply = self.ask(request(*["k%d=%s" % (i, "v" * 16000) for i in range(5)]))
        self.assertEqual(reply["status"], "65", reply)
        self.assertEqual(reply["error"], "bad_request")

    def test_duplicate_key_refused(self):
        self.assert_refused(self.ask(request("account=bob@example.com", account=ACCOUNT)), 65,
                            "bad_request", "duplicate key 'account'")

    def test_missing_account_refused(self):
        self.assert_refused(self.ask(request("protocol=imap", account=None)), 65, "bad_request",
                            "the request has no 'account'")

    def test_empty_request_refused(self):
        self.assert_refused(self.ask(b"\n"), 65, "bad_request", "the request has no 'account'")

    def test_invalid_account_refused(self):
        self.assert_refused(self.ask(request(account="../../etc/passwd")), 65, "bad_request",
                            "is not a valid account name")

    def test_unknown_account(self):
        reply = self.ask(request(account="nobody-here@example.com"))
        self.assertEqual(reply["status"], "77", reply)
        self.assertEqual(reply["error"], "not_logged_in")
        self.assertIn("mailoauth login nobody-here@example.com", reply["error_description"])

    def test_version_mismatch_refused(self):
        raw = ("version=2\naccount=%s\n\n" % ACCOUNT).encode()
        self.assert_refused(self.ask(raw), 65, "unsupported_version",
                            "helper protocol version 2 is not supported")

    def test_rejected_other_token_does_not_refresh(self):
        current = self.record()["access_token"]
        reply = self.ask(request("force_refresh=1", "rejected=" + token_id(current + "-old")))
        self.assert_token(reply)
        self.assertEqual(reply["access_token"], current)
        self.assertEqual(self.refreshes(), 0)

    def test_rejected_current_token_refreshes_once(self):
        current = self.record()["access_token"]
        reply = self.ask(request("force_refresh=1", "rejected=" + token_id(current)))
        self.assert_token(reply)
        self.assertNotEqual(reply["access_token"], current)
        self.assertEqual(self.refreshes(), 1)
        # Another process reporting the same refused token: already replaced.
        again = self.ask(request("force_refresh=1", "rejected=" + token_id(current)))
        self.assertEqual(again["access_token"], reply["access_token"])
        self.assertEqual(self.refreshes(), 1)

    def test_rejected_without_force_refresh_does_not_refresh(self):
        current = self.record()["access_token"]
        self.assert_token(self.ask(request("rejected=" + token_id(current))))
        self.assertEqual(self.refreshes(), 0)

    def test_token_tail_is_not_an_id(self):
        # The old form named a token by its last 16 characters: now it is
        # ignored like an unknown key (nothing is compared with it), so a
        # tail of another token does not stop the forced refresh either.
        current = self.record()["access_token"]
        reply = self.ask(request("rejected=" + current[-16:]))
        self.assert_token(reply)
        self.assertEqual(reply["access_token"], current)
        self.assertEqual(self.refreshes(), 0)


class GetVerb(Battery, HelperTestCase):
    """`mailoauth get`: the request on stdin, the reply on stdout."""
    idp_options = {"interval": 1}

    def start_server(self):
        pass

    def exchange(self, raw):
        p = subprocess.run([MAILOAUTH, "get"], input=raw, capture_output=True, timeout=60, env=self.env())
        captured_output.append(("get", p.stderr.decode(errors="replace")))
        reply = parse_reply(p.stdout)
        # The reply's status is the exit status.
        self.assertEqual(reply.get("status"), str(p.returncode), "exit %d, reply %r" % (
            p.returncode, sorted(reply)))
        return reply


class Agent(Battery, HelperTestCase):
    """A running `mailoauth agent`: the request and the reply over its
    socket, one of each per connection."""
    idp_options = {"interval": 1}

    def start_server(self):
        _counter[0] += 1
        self.name = "@mailoauth-battery-%d-%d" % (os.getpid(), _counter[0])
        self.agent_log = os.path.join(self.tmp, "agent.log")
        with open(self.agent_log, "w") as log:
            self.proc = subprocess.Popen([MAILOAUTH, "agent", "--foreground", "--socket", self.name],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                         env=self.env())
        self.addCleanup(self.stop_server)
        deadline = time.monotonic() + 15
        while "listening on" not in open(self.agent_log).read():
            if self.proc.poll() is not None:
                raise AssertionError("agent exited: " + open(self.agent_log).read())
            if time.monotonic() > deadline:
                raise AssertionError("agent not ready: " + open(self.agent_log).read())
            time.sleep(0.02)

    def stop_server(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        captured_output.append(("agent", open(self.agent_log).read()))

    def exchange(self, raw):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        try:
            s.connect("\0" + self.name[1:])
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused early (too long): the reply is still there to read
            data = b""
            while True:
                try:
                    chunk = s.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                data += chunk
        finally:
            s.close()
        return parse_reply(data)



if __name__ == "__main__":
    tap.main()
