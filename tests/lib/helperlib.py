"""Shared harness for tests that run the built `mailoauth` program against
the fake identity provider.

Every stderr/stdout the tests capture from mailoauth is remembered, so a
module can end with a check that no token the fake ever issued appears in
any of it (secrets must not reach logs or error messages).
"""
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import tap
from fakeidp import FakeIdP

MAILOAUTH = os.environ.get("MAILOAUTH_BIN") or os.path.join(
    os.environ.get("top_builddir", "."), "mailoauth")
ACCOUNT = "alice@example.com"

captured_output = []   # (what, text) of every captured stderr
issued_secrets = set()  # every token and code the fakes issued
tap.add_secret_source(lambda: issued_secrets)


class Run:
    def __init__(self, rc, out, err, elapsed):
        self.rc, self.out, self.err, self.elapsed = rc, out, err, elapsed

    def __repr__(self):
        # Never print stdout: it may hold a token.
        return f"<rc={self.rc} elapsed={self.elapsed:.1f}s stderr={self.err!r}>"


class HelperTestCase(unittest.TestCase):
    """One fake identity provider per test class, one store per test."""

    idp_options = {}

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="mailoauth-test-")
        cls.idp = FakeIdP(os.path.join(cls.workdir, "idp"), **cls.idp_options)
        cls.idp.start()
        idp = cls.idp
        tap.add_secret_source(lambda: idp.issued_secrets() if idp.running() else ())

    @classmethod
    def tearDownClass(cls):
        issued_secrets.update(s for s in cls.idp.issued_secrets() if len(s) >= 8)
        cls.idp.stop()
        shutil.rmtree(cls.workdir, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="case-", dir=self.workdir)
        self.store = os.path.join(self.tmp, "store")
        self.config = os.path.join(self.tmp, "mailoauth.conf")
        self.write_config("http_timeout = 5\n")
        self.idp.reset_counters()

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def env(self, extra=None):
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": self.tmp,
            "LANG": "C.UTF-8",
            "MAILOAUTH_STORE": self.store,
            "MAILOAUTH_CONFIG": self.config,
        }
        if extra:
            env.update(extra)
        return env

    def mailoauth(self, *args, stdin=None, timeout=60, env=None):
        t0 = time.monotonic()
        p = subprocess.run([MAILOAUTH, *args], input=stdin, capture_output=True, text=True,
                           timeout=timeout, env=self.env(env))
        captured_output.append((" ".join(args[:1]), p.stderr))
        return Run(p.returncode, p.stdout, p.stderr, time.monotonic() - t0)

    def spawn(self, *args, env=None):
        return subprocess.Popen([MAILOAUTH, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=self.env(env))

    def finish(self, proc, timeout=60):
        t0 = time.monotonic()
        out, err = proc.communicate(timeout=timeout)
        captured_output.append(("spawned", err))
        return Run(proc.returncode, out, err, time.monotonic() - t0)

    def login_args(self, account=ACCOUNT, *extra):
        return ["login", account, "--client-id", self.idp.client_id,
                "--authority", self.idp.authority(), "--ca-file", self.idp.ca_file, *extra]

    def login(self, account=ACCOUNT, username=None, extra=()):
        """A complete device-code login, approved by the fake's 'user'."""
        proc = self.spawn(*self.login_args(account, *extra))
        code = self.idp.wait_for_pending(timeout=15)
        self.idp.approve(code, username=username or account)
        r = self.finish(proc)
        self.assertEqual(r.rc, 0, r)
        return r

    def record(self, account=ACCOUNT):
        """The store record as a dict (the test may read secrets; it never prints them)."""
        rec = {}
        with open(os.path.join(self.store, account)) as f:
            for line in f:
                line = line.rstrip("\n")
                if line and "=" in line:
                    k, v = line.split("=", 1)
                    rec[k] = v
        return rec

    def edit_record(self, account=ACCOUNT, **fields):
        """Sets fields of the store record (None removes one), as a clock
        that moved on would: e.g. access_expires_at=int(time.time()) + 100.
        Rewritten in place, mode and owner kept."""
        path = os.path.join(self.store, account)
        lines = []
        with open(path) as f:
            for line in f.read().split("\n"):
                if not line:
                    continue
                key = line.split("=", 1)[0]
                if key in fields:
                    if fields[key] is not None:
                        lines.append("%s=%s" % (key, fields.pop(key)))
                    else:
                        fields.pop(key)
                    continue
                lines.append(line)
        lines += ["%s=%s" % kv for kv in fields.items() if kv[1] is not None]
        with open(path, "r+") as f:
            f.truncate()
            f.write("\n".join(lines) + "\n\n")

    def forget_token_lifetime(self, account=ACCOUNT):
        """Makes the record look written before token lifetimes were stored,
        so the configured refresh margin applies unclamped (common/margin.h).
        In place and the same size, with its mtime restored: an agent that
        caches the record's token does not notice the change."""
        path = os.path.join(self.store, account)
        st = os.stat(path)
        with open(path, "r+b") as f:
            data = f.read()
            self.assertIn(b"\naccess_lifetime=", data)
            f.seek(0)
            f.write(data.replace(b"\naccess_lifetime=", b"\nunused_lifetime=", 1))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


class ZzNoSecretsInOutput(unittest.TestCase):
    """Import into a test module: runs after the module's other classes
    (unittest orders classes by name) and checks all captured stderr
    against every secret their fakes issued."""

    def test_no_secret_in_captured_output(self):
        self.assertTrue(captured_output, "nothing was captured")
        self.assertTrue(issued_secrets, "no secrets were issued")
        for what, text in captured_output:
            for s in issued_secrets:
                self.assertNotIn(s, text, f"a secret leaked into the stderr of '{what}'")
