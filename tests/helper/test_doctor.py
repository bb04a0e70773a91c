"""mailoauth doctor after a real login against the fake identity provider:
a healthy set-up, and each thing it must catch (a broken configuration
line, a loose store, an account that must sign in again, a rival XOAUTH2
module, a missing helper, an agent that is not running), with the agent's
own answer for a configured account.  Doctor changes nothing, makes no
request to the provider and prints no token."""
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

import tap
from helperlib import ACCOUNT, MAILOAUTH, HelperTestCase, ZzNoSecretsInOutput  # noqa: F401

PLUGIN = os.path.join(os.environ.get("top_builddir", "."), "plugin", ".libs", "libmailoauth.so")


class Doctor(HelperTestCase):
    idp_options = {"interval": 1, "access_lifetime": 3600}

    def setUp(self):
        super().setUp()
        self.use_class_login()
        self.idp.set_access_lifetime(3600)
        self.plugin_dir = os.path.join(self.tmp, "sasl2")
        os.makedirs(self.plugin_dir)
        shutil.copy(PLUGIN, os.path.join(self.plugin_dir, "libmailoauth.so"))
        self.idp.reset_counters()
        self.agent_proc = None

    def tearDown(self):
        if self.agent_proc and self.agent_proc.poll() is None:
            self.agent_proc.send_signal(signal.SIGTERM)
            self.agent_proc.wait(timeout=15)

    def doctor(self, *args, env=None):
        extra = {"SASL_PATH": self.plugin_dir,
                 "MAILOAUTH_HELPER": os.path.abspath(MAILOAUTH)}
        extra.update(env or {})
        r = self.mailoauth("doctor", *args, env=extra)
        # Doctor reads the store but must never print a token, nor ask the
        # provider for anything.
        rec = self.record()
        for secret in (rec["access_token"], rec["refresh_token"]):
            self.assertNotIn(secret, r.out + r.err)
        self.assertEqual(self.idp.counters().get("token", 0), 0)
        return r

    def problems(self, r):
        return [l for l in r.out.splitlines() if l.startswith("PROBLEM")]

    def test_healthy_setup_has_no_problems(self):
        r = self.doctor()
        self.assertEqual(r.rc, 0, r.out)
        self.assertEqual(self.problems(r), [])
        self.assertIn("ok       configuration: " + self.config, r.out)
        self.assertIn("ok       store: " + self.store, r.out)
        self.assertRegex(r.out, r"ok       %s: access token valid until .* UTC; refresh token renewed"
                         % ACCOUNT.replace(".", r"\."))
        self.assertIn("ok       SASL plugin: %s/libmailoauth.so" % self.plugin_dir, r.out)
        self.assertIn("ok       plugin helper: " + os.path.abspath(MAILOAUTH), r.out)
        self.assertTrue(r.out.endswith("No problems found.\n"), r.out)

    def test_broken_configuration_names_file_and_line(self):
        self.write_config("http_timeout = 5\nrefresh_margin = soon\n")
        r = self.doctor()
        self.assertEqual(r.rc, 78, r.out)
        self.assertIn("PROBLEM  configuration: %s:2:" % self.config, r.out)

    def test_loose_store_is_a_problem(self):
        os.chmod(self.store, 0o755)
        try:
            r = self.doctor()
        finally:
            os.chmod(self.store, 0o700)
        self.assertEqual(r.rc, 78, r.out)
        self.assertEqual(len(self.problems(r)), 1, r.out)
        self.assertIn("store:", self.problems(r)[0])
        self.assertIn("0755", self.problems(r)[0])

    def test_revoked_sign_in_needs_login(self):
        self.idp.revoke_refresh_tokens(ACCOUNT)
        t = self.mailoauth("token", ACCOUNT, "--force-refresh")
        self.assertEqual(t.rc, 77, t)
        self.idp.reset_counters()
        r = self.doctor(ACCOUNT)
        self.assertEqual(r.rc, 77, r.out)
        [p] = self.problems(r)
        self.assertIn("the last refresh failed", p)
        self.assertIn("mailoauth login " + ACCOUNT, p)

    def test_account_not_signed_in(self):
        r = self.doctor("bob@example.com")
        self.assertEqual(r.rc, 77, r.out)
        self.assertIn("PROBLEM  bob@example.com: not signed in; run: mailoauth login bob@example.com", r.out)

    def test_rival_xoauth2_module(self):
        with open(os.path.join(self.plugin_dir, "libsasl-xoauth2.so"), "w"):
            pass
        r = self.doctor()
        self.assertEqual(r.rc, 78, r.out)
        [p] = self.problems(r)
        self.assertIn(os.path.join(self.plugin_dir, "libsasl-xoauth2.so"), p)
        self.assertIn("remove one of them", p)

    def test_missing_helper(self):
        self.write_config("http_timeout = 5\nhelper = /nonexistent/mailoauth\n")
        r = self.doctor(env={"MAILOAUTH_HELPER": ""})
        self.assertEqual(r.rc, 78, r.out)
        [p] = self.problems(r)
        self.assertIn("helper in %s:2" % self.config, p)
        self.assertIn("/nonexistent/mailoauth", p)

    def test_without_the_plugin_the_helper_is_not_checked(self):
        os.unlink(os.path.join(self.plugin_dir, "libmailoauth.so"))
        r = self.doctor(env={"MAILOAUTH_HELPER": "/nonexistent/mailoauth"})
        self.assertEqual(r.rc, 0, r.out)
        self.assertIn("note     SASL plugin: no libmailoauth.so", r.out)
        self.assertNotIn("plugin helper", r.out)

    def agent_config(self, socket):
        self.write_config("http_timeout = 5\nagent_socket = %s\n\n[account %s]\nallow_users = root\n"
                          % (socket, ACCOUNT))

    def test_agent_not_running(self):
        socket = "@mailoauth-doctor-%s" % uuid.uuid4().hex[:12]
        self.agent_config(socket)
        t0 = time.monotonic()
        r = self.doctor()
        self.assertLess(time.monotonic() - t0, 10)
        self.assertEqual(r.rc, 78, r.out)
        [p] = self.problems(r)
        self.assertIn("nothing listens on " + socket, p)
        self.assertIn("systemctl start mailoauth-agent", p)

    def test_agent_serves_the_configured_account(self):
        socket = "@mailoauth-doctor-%s" % uuid.uuid4().hex[:12]
        self.agent_config(socket)
        log = open(os.path.join(self.tmp, "agent.log"), "w")
        self.agent_proc = subprocess.Popen(
            [MAILOAUTH, "agent", "--foreground", "--socket", socket],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=self.env())
        log.close()
        deadline = time.monotonic() + 10
        while "listening on" not in open(os.path.join(self.tmp, "agent.log")).read():
            self.assertIsNone(self.agent_proc.poll(), "the agent exited")
            self.assertLess(time.monotonic(), deadline, "the agent did not start")
            time.sleep(0.05)
        r = self.doctor()
        self.assertEqual(r.rc, 0, r.out)
        self.assertRegex(r.out, r"ok       %s: the agent on %s \(uid %d .*pid %d\) serves its token to you"
                         % (ACCOUNT.replace(".", r"\."), socket, os.getuid(), self.agent_proc.pid))
        self.assertNotIn("plugin helper", r.out)
        # An account the agent has no tokens for is its answer, named.
        self.write_config("http_timeout = 5\nagent_socket = %s\n\n[account bob@example.com]\n"
                          "allow_users = root\n" % socket)
        r = self.doctor()
        self.assertEqual(r.rc, 77, r.out)
        [p] = self.problems(r)
        self.assertIn("bob@example.com: the agent on " + socket, p)
        self.assertIn("mailoauth login bob@example.com", p)

    def test_impostor_answer_is_printed_harmlessly(self):
        """Anyone may bind an abstract name first: what such a program
        answers is shown without its control characters."""
        name = "mailoauth-doctor-%s" % uuid.uuid4().hex[:12]
        self.agent_config("@" + name)
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind("\0" + name)
        srv.listen(4)

        def answer():
            conn, _ = srv.accept()
            with conn:
                conn.settimeout(10)
                data = b""
                while b"\n\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                conn.sendall(b"error=x\nerror_description=\x1b[31mred \x07" + b"A" * 500 +
                             b"\nstatus=78\n\n")
        t = threading.Thread(target=answer, daemon=True)
        t.start()
        try:
            r = self.doctor()
        finally:
            t.join(10)
            srv.close()
        self.assertEqual(r.rc, 78, r.out)
        [p] = self.problems(r)
        self.assertIn("(uid %d " % os.getuid(), p)
        self.assertIn("answers: ?[31mred ?AAA", p)
        self.assertNotIn("\x1b", r.out)
        self.assertIn("...", p)
        self.assertLess(len(p), 700)


if __name__ == "__main__":
    tap.main()
