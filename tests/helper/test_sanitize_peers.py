"""Peers other than the identity provider with C1 controls in what they
say: a helper whose error_description the plugin relays (seterror and the
SASL log, through the real libsasl2 and tests/plugin/sasl-driver), an agent
the plugin asks, and a program holding the agent's socket that doctor asks.
U+009B (CSI) as raw UTF-8 (C2 9B) and as the raw byte 0x9B, with an ESC and
a bidi override; what arrives must hold none of them, and the rest of the
words must survive (common/sanitize.h: each becomes '?')."""
import os
import shutil
import socket
import subprocess
import sys
import threading
import uuid

import tap
from helperlib import (ACCOUNT, MAILOAUTH, HelperTestCase, ZzNoSecretsInOutput,  # noqa: F401
                       captured_output)

PLUGIN_TESTS = os.path.join(os.environ.get("top_srcdir", "."), "tests", "plugin")
if PLUGIN_TESTS not in sys.path:
    sys.path.insert(0, PLUGIN_TESTS)
import pluginlib  # noqa: E402

BEFORE, AFTER = b"refresh token expired", b"sign in again"
FORMS = {
    "raw UTF-8 C2 9B": BEFORE + b" \xc2\x9b31m\x1b[2J\xe2\x80\xae " + AFTER,
    "raw byte 9B": BEFORE + b" \x9b31m\x1b[2J\xe2\x80\xae " + AFTER,
}
SHOWN = (BEFORE + b" ?31m?[2J? " + AFTER).decode()


def assert_clean(case, text, what):
    """text: a str whose characters are the bytes (the driver escapes every
    byte >= 0x7f as \\u00XX), or bytes."""
    if isinstance(text, bytes):
        text = text.decode("latin-1")
    for bad in ("\x9b", "\x1b", "\xe2\x80\xae"):
        case.assertNotIn(bad, text, what)


class PluginRelays(HelperTestCase):
    """No login is needed: the peers here are fakes."""

    def scenario(self, config="", env=None):
        s = pluginlib.Scenario(config=config, helper_name=None, env=env)
        self.addCleanup(s.cleanup)
        return s

    def start(self, s):
        res = s.run(["start:XOAUTH2"], authname=ACCOUNT, service="smtp", host="smtp.office365.com",
                    remote="192.0.2.1;587")
        self.assertEqual(res[0]["rc"], "SASL_OK")
        return res[1]

    def check(self, start, form):
        self.assertEqual(start["rc"], "SASL_FAIL", start)
        detail, logs = start["detail"], "\n".join(start["logs"])
        self.assertIn(SHOWN, detail, form)          # the words survive,
        self.assertIn(SHOWN, logs, form)
        assert_clean(self, detail, "sasl_errdetail (%s)" % form)   # the controls do not
        assert_clean(self, logs, "the SASL log (%s)" % form)

    def test_helper_error_description_in_each_form(self):
        for form, desc in FORMS.items():
            with self.subTest(form=form):
                # A helper of the test's own making: it prints raw bytes.
                path = os.path.join(self.tmp, "helper-%s" % uuid.uuid4().hex[:8])
                with open(path, "wb") as f:
                    f.write(b"#!/bin/sh\ncat >/dev/null\nprintf '%s\\n' 'error=invalid_grant' "
                            b"'error_description=" + desc + b"' ''\nexit 77\n")
                os.chmod(path, 0o755)
                s = self.scenario(env={"MAILOAUTH_HELPER": path})
                self.check(self.start(s), form)

    def test_agent_error_description_in_each_form(self):
        for form, desc in FORMS.items():
            with self.subTest(form=form):
                name = "mailoauth-sanitize-%s" % uuid.uuid4().hex[:12]
                srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                srv.bind("\0" + name)
                srv.listen(4)
                t = threading.Thread(target=answer_once,
                                     args=(srv, b"error=invalid_grant\nerror_description=" + desc +
                                           b"\nstatus=77\n\n"), daemon=True)
                t.start()
                try:
                    s = self.scenario(config="agent_socket = @%s\n" % name,
                                      env={"MAILOAUTH_HELPER": "/nonexistent/mailoauth"})
                    start = self.start(s)
                finally:
                    t.join(10)
                    srv.close()
                self.check(start, form)


class DoctorAsksAnImpostor(HelperTestCase):
    idp_options = {"interval": 1}

    def test_impostor_answer_in_each_form(self):
        self.use_class_login()
        plugin_dir = os.path.join(self.tmp, "sasl2")
        os.makedirs(plugin_dir)
        shutil.copy(pluginlib.PLUGIN, os.path.join(plugin_dir, "libmailoauth.so"))
        for form, desc in FORMS.items():
            with self.subTest(form=form):
                name = "mailoauth-sanitize-%s" % uuid.uuid4().hex[:12]
                self.write_config("http_timeout = 5\nagent_socket = @%s\n\n[account %s]\nallow_users = root\n"
                                  % (name, ACCOUNT))
                srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                srv.bind("\0" + name)
                srv.listen(4)
                t = threading.Thread(target=answer_once,
                                     args=(srv, b"error=x\nerror_description=" + desc + b"\nstatus=78\n\n"),
                                     daemon=True)
                t.start()
                try:
                    r = self.mailoauth_bytes("doctor", env={"SASL_PATH": plugin_dir,
                                                            "MAILOAUTH_HELPER": "/nonexistent/mailoauth"})
                finally:
                    t.join(10)
                    srv.close()
                self.assertEqual(r.returncode, 78, r.stdout)
                assert_clean(self, r.stdout, "doctor's stdout (%s)" % form)
                assert_clean(self, r.stderr, "doctor's stderr (%s)" % form)
                out = r.stdout.decode("utf-8")              # valid UTF-8, too
                self.assertIn("answers: " + SHOWN, out)

    def mailoauth_bytes(self, *args, env=None):
        p = subprocess.run([MAILOAUTH, *args], capture_output=True, timeout=60, env=self.env(env))
        captured_output.append((args[0], p.stderr.decode("utf-8", "replace")))
        return p


def answer_once(srv, reply):
    """Plays the agent for one request: reads it, sends reply."""
    srv.settimeout(20)
    try:
        conn, _ = srv.accept()
    except OSError:
        return
    with conn:
        conn.settimeout(10)
        data = b""
        while b"\n\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        conn.sendall(reply)


if __name__ == "__main__":
    tap.main()
