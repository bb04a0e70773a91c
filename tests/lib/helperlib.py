"""Shared harness for tests that run the built `mailoauth` program against
the fake identity provider.

Every stderr/stdout the tests capture from mailoauth is remembered, so a
module can end with a check that no token the fake ever issued appears in
any of it (secrets must not reach logs or error messages).

A test that calls self.use_class_login() in its set-up starts with a store
in which ACCOUNT is signed in: one device-flow login per class (into a
template store), copied for each test.  A login costs more than a second of
polling; a copy, a millisecond.
"""
import atexit
import os
import shutil
import stat
import subprocess
import tempfile
import time
import unittest

import tap
import testca
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


class ClassIdP(FakeIdP):
    """The fake of one test class.  It notes when a test did something at
    the provider that the class's template store (see HelperTestCase) does
    not survive: tokens revoked, the fake reset, the client or tenant
    lists changed, or refresh tokens revoked on rotation (then every
    refresh by one test's copy revokes the refresh token all copies share).
    A rotated refresh token alone spoils nothing: the old one stays valid,
    as at Microsoft."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.template_spoiled = False

    def spoils_template(self):
        """True when the template must be made again; clears the note."""
        spoiled, self.template_spoiled = self.template_spoiled, False
        return spoiled or self.rotation_revokes_old

    def revoke_access_tokens(self, *args, **kw):
        self.template_spoiled = True
        return super().revoke_access_tokens(*args, **kw)

    def revoke_refresh_tokens(self, *args, **kw):
        self.template_spoiled = True
        return super().revoke_refresh_tokens(*args, **kw)

    def reset(self):
        self.template_spoiled = True
        self.rotation_revokes_old = False
        return super().reset()

    def set_config(self, **kw):
        if "rotation_revokes_old" in kw:
            self.rotation_revokes_old = bool(kw["rotation_revokes_old"])
        if "client_ids" in kw or "unknown_tenants" in kw:
            self.template_spoiled = True
        return super().set_config(**kw)


_shared_ca = []


def shared_ca_dir():
    """One test CA for every class of this process: making one costs
    openssl half a second.  Removed when the process exits."""
    if not _shared_ca:
        d = tempfile.mkdtemp(prefix="mailoauth-test-ca-")
        atexit.register(shutil.rmtree, d, True)
        testca.ensure(d)
        _shared_ca.append(d)
    return _shared_ca[0]


def read_to_end(sock):
    """Everything a peer sends on sock until it closes (an agent's reply)."""
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def copy_store(src, dst):
    """A copy of store directory src at dst: its regular files (records,
    lock files), with their modes, owners and times."""
    st = os.stat(src)
    os.mkdir(dst, 0o700)
    os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.chown(dst, st.st_uid, st.st_gid)
    for name in os.listdir(src):
        path = os.path.join(src, name)
        fst = os.lstat(path)
        if not stat.S_ISREG(fst.st_mode):
            continue
        with open(path, "rb") as f:
            data = f.read()
        target = os.path.join(dst, name)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fchmod(fd, stat.S_IMODE(fst.st_mode))
            os.fchown(fd, fst.st_uid, fst.st_gid)
        finally:
            os.close(fd)
        os.utime(target, ns=(fst.st_atime_ns, fst.st_mtime_ns))


def make_env(home, store, config, extra=None):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "MAILOAUTH_STORE": store,
        "MAILOAUTH_CONFIG": config,
    }
    if extra:
        env.update(extra)
    return env


class HelperTestCase(unittest.TestCase):
    """One fake identity provider per test class, one store per test.

    use_class_login() makes the test's store a copy of a template in which
    ACCOUNT signed in with the device flow (tokens issued for
    template_access_lifetime seconds).  The template is made at the first
    call in a class, and again when a test spoiled it at the provider
    (ClassIdP) or its access token has aged template_max_age seconds.  A
    test that checks the login itself calls self.login() instead."""

    idp_options = {}
    template_access_lifetime = 3600
    # Tests compare expires_at with an hour's token: keep its age well
    # inside the default 600 s refresh margin.
    template_max_age = 300

    @classmethod
    def setUpClass(cls):
        cls.workdir = tempfile.mkdtemp(prefix="mailoauth-test-")
        options = dict(cls.idp_options)
        if "cert" not in options:
            options.setdefault("ca", shared_ca_dir())
        cls.idp = ClassIdP(os.path.join(cls.workdir, "idp"), **options)
        cls.idp.start()
        idp = cls.idp
        tap.add_secret_source(lambda: idp.issued_secrets() if idp.running() else ())
        cls.template = None
        cls.template_made_at = 0.0

    @classmethod
    def tearDownClass(cls):
        issued_secrets.update(s for s in cls.idp.issued_secrets() if len(s) >= 8)
        cls.idp.stop()
        shutil.rmtree(cls.workdir, ignore_errors=True)

    @classmethod
    def make_template(cls):
        """A device-flow login of ACCOUNT into a new template store."""
        home = tempfile.mkdtemp(prefix="template-", dir=cls.workdir)
        store = os.path.join(home, "store")
        config = os.path.join(home, "mailoauth.conf")
        with open(config, "w") as f:
            f.write("http_timeout = 5\n")
        cls.idp.clear_faults()
        cls.idp.set_access_lifetime(cls.template_access_lifetime)
        proc = subprocess.Popen([MAILOAUTH, *login_args(cls.idp, ACCOUNT)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=make_env(home, store, config))
        try:
            cls.idp.approve(cls.idp.wait_for_pending(timeout=15), username=ACCOUNT)
            out, err = proc.communicate(timeout=60)
        except BaseException:
            proc.kill()              # it would poll until the code expires
            captured_output.append(("login", proc.communicate()[1]))
            raise
        captured_output.append(("login", err))
        if proc.returncode != 0:
            raise AssertionError("the class's login failed: %r" % Run(proc.returncode, out, err, 0))
        cls.idp.spoils_template()          # what came before is made good
        old, cls.template = cls.template, store
        cls.template_made_at = time.monotonic()
        if old:
            shutil.rmtree(os.path.dirname(old), ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="case-", dir=self.workdir)
        self.store = os.path.join(self.tmp, "store")
        self.config = os.path.join(self.tmp, "mailoauth.conf")
        self.write_config("http_timeout = 5\n")
        # Nothing a test left at the fake reaches the next.
        self.idp.clear_faults()
        self.idp.reset_counters()

    def use_class_login(self):
        """Makes this test's store a copy of the class's signed-in template
        (made first, or again, when needed)."""
        cls = type(self)
        if self.idp.spoils_template() or cls.template is None or \
                time.monotonic() - cls.template_made_at > cls.template_max_age:
            cls.make_template()
        copy_store(cls.template, self.store)
        self.idp.reset_counters()

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def env(self, extra=None):
        return make_env(self.tmp, self.store, self.config, extra)

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
        return login_args(self.idp, account, *extra)

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

    def wait_until_expired(self, account=ACCOUNT):
        """Sleeps until the stored access token's expiry (a second at most
        after a refresh with access lifetime 1): the helper then sees it
        expired whatever the margin, and so does the provider."""
        rec = self.record(account)
        expires_at = int(rec["access_expires_at"])
        time.sleep(max(0.0, expires_at + 0.05 - time.time()))
        # The helper stores whole seconds counted from its own clock reading,
        # the provider its exact time of issue: the provider's expiry may
        # come up to a second later.
        deadline = time.monotonic() + 3
        while self.idp.valid_access_token(rec["access_token"]) and time.monotonic() < deadline:
            time.sleep(0.05)

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


def login_args(idp, account=ACCOUNT, *extra):
    return ["login", account, "--client-id", idp.client_id,
            "--authority", idp.authority(), "--ca-file", idp.ca_file, *extra]


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
