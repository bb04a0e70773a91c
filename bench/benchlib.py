"""Shared setup for the mailoauth benchmarks (bench/*.py).

A benchmark environment is the same local mail environment the end-to-end
tests use (tests/lib): the fake Microsoft identity provider over HTTPS,
Dovecot on loopback with PLAIN (passwd-file) and XOAUTH2 (oauth2 passdb
against the fake), a token store that went through a real `mailoauth login`
(device flow approved by the fake), and a mailoauth.conf for both the
plugin and the helper.  Everything is started here and stopped by the PIDs
recorded at start; nothing under /etc is touched.

Tokens never reach the terminal: imtest prints its AUTHENTICATE line (with
the token), so its output is only searched, and on failure only the
server's lines (S: ...) are shown.
"""
import argparse
import base64
import imaplib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_SRCDIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP_SRCDIR, "tests", "lib"))

import fakeidp  # noqa: E402
import mailenv  # noqa: E402

ACCOUNT = "alice@example.com"
PASSWORD = "alice-static-password"
IMTEST = os.path.join(mailenv.CYRUS_BIN, "imtest")
SYSTEM_SASL = mailenv.SYSTEM_SASL_PLUGINDIR


# --------------------------------------------------------------------------
# arguments and the build tree

def arg_parser(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--builddir", help="build tree with mailoauth and "
                   "plugin/.libs/libmailoauth.so (default: $top_builddir, "
                   "else the current directory)")
    p.add_argument("--reps", type=int, default=int(os.environ.get(
        "BENCH_REPS", "60")), help="repetitions per arm (>= 50; default 60)")
    p.add_argument("--keep", action="store_true",
                   help="keep the work directory (for debugging)")
    return p


def builddir(args):
    d = args.builddir or os.environ.get("top_builddir") or os.getcwd()
    d = os.path.abspath(d)
    missing = [p for p in ("mailoauth", "plugin/.libs/libmailoauth.so",
                           "tokenhelper/.libs/mailoauth-curl.so")
               if not os.path.exists(os.path.join(d, p))]
    if missing:
        sys.exit("%s: not a built tree (missing %s); pass --builddir DIR or "
                 "set top_builddir" % (d, ", ".join(missing)))
    return d


def check_reps(args):
    if args.reps < 50:
        print("note: --reps %d is below 50; medians are less stable"
              % args.reps, file=sys.stderr)


# --------------------------------------------------------------------------
# statistics

def median(xs):
    return statistics.median(xs) if xs else float("nan")


def quartiles(xs):
    if len(xs) < 4:
        return (float("nan"),) * 2
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


def fmt_ms(seconds):
    return "%.2f ms" % (seconds * 1e3)


def summary_line(name, xs):
    q1, q3 = quartiles(xs)
    return "%-44s median %9s   IQR %s..%s   n=%d" % (
        name, fmt_ms(median(xs)), fmt_ms(q1), fmt_ms(q3), len(xs))


def result(key, value):
    """A machine-readable line for bench/run's summary table."""
    print("RESULT %s %s" % (key, value), flush=True)


# --------------------------------------------------------------------------
# the environment

AUTH_CACHE_SETTINGS = """
# bench/benchlib.py: Dovecot's auth cache.  The oauth2 passdb (Dovecot 2.3)
# caches its result keyed on the user and the token, so a repeated token is
# accepted from memory, without an introspection request, as a repeated
# password is from the passwd-file passdb (which holds its file in memory
# and does not use the auth cache; the log shows a lookup, no cache line).
auth_cache_size = 10M
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 0
"""


class CachingDovecot(mailenv.Dovecot):
    """mailenv.Dovecot with the auth cache on (tests/lib and tests/e2e stay
    as they are: the settings are appended to the generated dovecot.conf,
    at its top level)."""

    def write_config(self):
        super().write_config()
        with open(self.config, "a") as f:
            f.write(AUTH_CACHE_SETTINGS)


class LocalJwtDovecot(mailenv.Dovecot):
    """mailenv.Dovecot whose oauth2 passdb checks each token itself, as
    Exchange Online does: the fake provider issues its access tokens as
    signed JWTs (--jwt-key), and Dovecot validates signature, expiry and
    user locally (introspection_mode = local) with the key from KEY_DIR,
    making no request to the provider.  Like PLAIN's passwd-file lookup,
    nothing leaves the server; no auth cache."""

    def __init__(self, *args, key_dir, **kw):
        self.key_dir = key_dir
        super().__init__(*args, **kw)

    def write_config(self):
        super().write_config()
        with open(self.oauth2_conf, "w") as f:
            f.write("# bench/benchlib.py: local JWT validation, no "
                    "introspection\n"
                    "introspection_mode = local\n"
                    "local_validation_key_dict = fs:posix:prefix=%s/\n"
                    "username_attribute = upn\n"
                    "debug = no\n" % self.key_dir)


def write_jwt_keys(workdir):
    """A random HS256 key: the raw bytes for the fake provider, and
    Dovecot's key dictionary (KEY_DIR/<azp>/<alg>/<kid>, base64; the
    fake's tokens carry no azp, so "default").  Returns (key_file,
    key_dir)."""
    key = os.urandom(32)
    key_file = os.path.join(workdir, "jwt.key")
    with open(key_file, "wb") as f:
        f.write(key)
    os.chmod(key_file, 0o600)
    key_dir = os.path.join(workdir, "dovecot-jwt-keys")
    d = os.path.join(key_dir, "default", "HS256")
    os.makedirs(d, exist_ok=True)
    for p in (key_dir, os.path.join(key_dir, "default"), d):
        os.chmod(p, 0o755)
    path = os.path.join(d, fakeidp.JWT_KEY_ID)
    with open(path, "w") as f:
        f.write(base64.b64encode(key).decode())
    # Dovecot's auth process reads it as its own user.
    os.chmod(path, 0o644)
    return key_file, key_dir


class BenchEnv:
    """Fake IdP + Dovecot + a logged-in token store + mailoauth.conf."""

    def __init__(self, top_builddir, refresh_margin=None, dovecot=True,
                 keep=False):
        """dovecot: False (no Dovecot), True (as the end-to-end tests run
        it) or "cache" (the same with Dovecot's auth cache on)."""
        self.builddir = top_builddir
        self.mailoauth = os.path.join(top_builddir, "mailoauth")
        self.plugin_dir = os.path.join(top_builddir, "plugin", ".libs")
        self.refresh_margin = refresh_margin
        self.want_dovecot = dovecot
        self.keep = keep
        self.work = None
        self.idp = None
        self.dovecot = None
        self.agent = None
        self.agent_config = None

    # lifecycle ---------------------------------------------------------
    def start(self):
        self.work = mailenv.WorkDir(prefix="mailoauth-bench-")
        try:
            w = self.work.path
            self.ca = mailenv.test_ca(w)
            # Access tokens are JWTs, as for work accounts at Microsoft:
            # introspected where Dovecot introspects, validated locally
            # where it validates locally.
            self.jwt_key_file, self.jwt_key_dir = write_jwt_keys(w)
            self.idp = fakeidp.FakeIdP(os.path.join(w, "idp"),
                                       ca=os.path.join(w, "ca"),
                                       jwt_key=self.jwt_key_file)
            self.idp.start()
            if self.want_dovecot:
                self.dovecot = self.new_dovecot(self.want_dovecot)
                self.dovecot.start()
            self.store = os.path.join(w, "store")
            os.makedirs(self.store, mode=0o700, exist_ok=True)
            os.chmod(self.store, 0o700)
            self.home = os.path.join(w, "home")
            os.makedirs(self.home, exist_ok=True)
            self.config = os.path.join(w, "mailoauth.conf")
            text = "helper = %s\nstore = %s\n" % (self.mailoauth, self.store)
            if self.refresh_margin is not None:
                text += "refresh_margin = %d\n" % self.refresh_margin
            with open(self.config, "w") as f:
                f.write(text)
        except BaseException:
            self.stop()
            raise
        return self

    def new_dovecot(self, mode):
        """mode: True (as the end-to-end tests run it: every token
        introspected), "cache" (the same with the auth cache on) or "jwt"
        (tokens validated locally)."""
        kw = dict(introspection_url=self.idp.introspection_url, ca=self.ca,
                  users={ACCOUNT: PASSWORD})
        if mode == "jwt":
            return LocalJwtDovecot(self.work.path, key_dir=self.jwt_key_dir,
                                   **kw)
        cls = CachingDovecot if mode == "cache" else mailenv.Dovecot
        return cls(self.work.path, **kw)

    def restart_dovecot(self, mode):
        """Stop Dovecot and start a new one in MODE (see new_dovecot; False
        is True) on new ports; the store and the provider stay."""
        if self.dovecot:
            self.dovecot.stop()
            self.dovecot = None
        self.want_dovecot = mode or True
        d = os.path.join(self.work.path, "dovecot")
        if os.path.isdir(d):
            os.rename(d, d + "-%d" % time.monotonic_ns())
        self.dovecot = self.new_dovecot(self.want_dovecot)
        self.dovecot.start()

    def stop(self):
        self.stop_agent()
        if self.dovecot:
            self.dovecot.stop()
            self.dovecot = None
        if self.idp:
            self.idp.stop()
            self.idp = None
        if self.work:
            if self.keep:
                print("kept " + self.work.path, file=sys.stderr)
            else:
                self.work.cleanup()
            self.work = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # the agent -------------------------------------------------------------
    def config_with(self, name, extra):
        """A copy of mailoauth.conf with the lines EXTRA appended, as NAME
        in the work directory; returns its path."""
        path = os.path.join(self.work.path, name)
        with open(self.config) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write(text + extra)
        return path

    def start_agent(self, timeout=15):
        """`mailoauth agent --foreground` on an abstract socket of its own,
        and a second mailoauth.conf (self.agent_config) that points the
        plugin at it.  The agent runs as root, as do the clients here
        (root is always allowed; the plugin accepts an agent run by root)."""
        self.agent_socket = "@mailoauth-bench-%d-%d" % (os.getpid(),
                                                        time.monotonic_ns())
        self.agent_config = self.config_with(
            "mailoauth-agent.conf", "agent_socket = %s\n" % self.agent_socket)
        self.agent_log = os.path.join(self.work.path, "agent.log")
        self.agent = AgentProcess(self.mailoauth, self.agent_socket,
                                  self.env(False, agent=True), self.agent_log,
                                  timeout)

    def stop_agent(self):
        """SIGTERM exactly the agent started here."""
        if self.agent is None:
            return
        self.agent.stop()
        self.agent = None

    # environment for the programs under test ----------------------------
    def env(self, sasl=True, agent=False):
        """agent=True: the mailoauth.conf with agent_socket (the plugin asks
        the agent instead of running the helper)."""
        e = {"PATH": "/usr/bin:/bin", "HOME": self.home, "LANG": "C.UTF-8",
             "MAILOAUTH_CONFIG": self.agent_config if agent else self.config,
             "MAILOAUTH_STORE": self.store}
        if sasl:
            # The same module list for every arm: ours plus Debian's.
            e["SASL_PATH"] = "%s:%s" % (self.plugin_dir, SYSTEM_SASL)
        return e

    @property
    def store_file(self):
        return os.path.join(self.store, ACCOUNT)

    def record(self):
        """The store record (never printed: it holds tokens)."""
        rec = {}
        with open(self.store_file) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep:
                    rec[k] = v
        return rec

    # the helper ------------------------------------------------------------
    def run_helper(self, *args, timeout=60):
        return subprocess.run([self.mailoauth, *args], env=self.env(False),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def login(self, account=ACCOUNT):
        """A real `mailoauth login ACCOUNT` (device flow), approved by the
        fake."""
        proc = subprocess.Popen(
            [self.mailoauth, "login", account, "--client-id",
             self.idp.client_id, "--authority", self.idp.authority(),
             "--ca-file", self.idp.ca_file], env=self.env(False),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        try:
            code = self.idp.wait_for_pending(timeout=15)
            self.idp.approve(code, username=account)
            _, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError("mailoauth login %s failed (%d): %s"
                               % (account, proc.returncode, err[-2000:]))

    def token_ok(self):
        """`mailoauth token` works (the token itself is not kept)."""
        r = self.run_helper("token", ACCOUNT)
        if r.returncode != 0 or not r.stdout.strip():
            raise RuntimeError("mailoauth token failed (%d): %s"
                               % (r.returncode, r.stderr[-2000:]))

    def bearer_accepted(self, token, timeout=15):
        """Whether Dovecot's IMAP accepts TOKEN for ACCOUNT with XOAUTH2
        (plain IMAP: Dovecot trusts 127.0.0.1).  Nothing is printed."""
        raw = ("user=%s\x01auth=Bearer %s\x01\x01" % (ACCOUNT, token)).encode()
        imap = imaplib.IMAP4("127.0.0.1", self.dovecot.ports["imap"],
                             timeout=timeout)
        try:
            # The server's error challenge is answered with an empty line.
            imap.authenticate("XOAUTH2", lambda challenge: raw if not challenge else b"")
            return True
        except imaplib.IMAP4.error:
            return False
        finally:
            try:
                imap.logout()
            except (imaplib.IMAP4.error, OSError):
                pass

    def check_local_validation(self):
        """Dovecot in "jwt" mode must really check the signature: the
        stored token is accepted and the same token with its signature
        changed is refused.  Raises otherwise."""
        token = self.record()["access_token"]
        head, _, sig = token.rpartition(".")
        forged = head + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
        if not self.bearer_accepted(token):
            raise RuntimeError("Dovecot refused a valid JWT access token")
        if self.bearer_accepted(forged):
            raise RuntimeError("Dovecot accepted a JWT with a forged "
                               "signature: it is not validating")

    # imtest ----------------------------------------------------------------
    def imtest_argv(self, mech):
        argv = [IMTEST, "-m", mech, "-a", ACCOUNT,
                "-p", str(self.dovecot.ports["imap"])]
        if mech == "PLAIN":
            argv += ["-w", PASSWORD]
        return argv + ["127.0.0.1"]

    IMTEST_INPUT = b"L1 LOGOUT\r\n"

    def imtest_popen(self, mech, agent=False):
        return subprocess.Popen(self.imtest_argv(mech),
                                env=self.env(agent=agent),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)

    @staticmethod
    def imtest_check(rc, out, err):
        """(ok, safe description).  imtest exits 0 even when authentication
        fails; its output holds the token, so only server lines are shown."""
        text = out.decode("utf-8", "replace")
        if "Authenticated." in text:
            return True, ""
        server = [ln for ln in text.splitlines() if ln.startswith("S: ")]
        safe = " | ".join(ln[:200] for ln in server[-3:])
        errs = err.decode("utf-8", "replace").strip().splitlines()
        safe_err = " | ".join(ln[:200] for ln in errs[-2:]
                              if "AUTHENTICATE" not in ln)
        return False, "rc=%s server: %s stderr: %s" % (rc, safe, safe_err)

    def imtest_once(self, mech, timeout=30, agent=False):
        """One imtest login; returns (wall seconds, ok, description)."""
        t0 = time.perf_counter()
        p = self.imtest_popen(mech, agent)
        try:
            out, err = p.communicate(self.IMTEST_INPUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        t1 = time.perf_counter()
        ok, why = self.imtest_check(p.returncode, out, err)
        return t1 - t0, ok, why


# --------------------------------------------------------------------------
# an agent process and its socket

class AgentProcess:
    """`mailoauth agent --foreground --socket SOCKET_NAME` (abstract,
    "@name") run by MAILOAUTH with the environment ENV, its stderr in
    LOG_PATH; ready when its log says it listens (TIMEOUT seconds at
    most, else it is stopped and RuntimeError raised)."""

    def __init__(self, mailoauth, socket_name, env, log_path, timeout=15):
        self.socket = socket_name
        self.log_path = log_path
        with open(log_path, "w") as log:
            self.proc = subprocess.Popen(
                [mailoauth, "agent", "--foreground", "--socket", socket_name],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=log)
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("mailoauth agent did not start: %s"
                                   % self.log()[-1000:])
            time.sleep(0.02)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def stop(self):
        """SIGTERM exactly the agent started here (SIGKILL after 15 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def ask_agent(socket_name, request, timeout=30):
    """One request to the agent on the abstract socket SOCKET_NAME, as the
    plugin sends it (a new connection, REQUEST, the reply until the agent
    closes); returns the reply's bytes.  They hold a token: never print
    them.  Raises OSError when the agent cannot be reached."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    data = b""
    try:
        s.connect("\0" + socket_name[1:])
        s.sendall(request)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data


# --------------------------------------------------------------------------
# the long-lived libsasl2 client (bench/sasl_login_loop.c)

def build_loop(outdir):
    """Compile bench/sasl_login_loop.c with the compiler directly (it is
    not part of `make`); returns the program's path."""
    src = os.path.join(HERE, "sasl_login_loop.c")
    out = os.path.join(outdir, "sasl_login_loop")
    cc = os.environ.get("CC", "cc")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libsasl2"],
                           capture_output=True, text=True)
    libs = flags.stdout.split() if flags.returncode == 0 else ["-lsasl2"]
    r = subprocess.run([cc, "-O2", "-Wall", "-o", out, src, *libs],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("cannot build %s:\n%s" % (src, r.stderr))
    return out


# --------------------------------------------------------------------------
# timing one process with little overhead of our own

def time_spawn(argv, env, stdout=os.devnull):
    """Wall time of one run of ARGV, from posix_spawn to its exit, with
    stdin and stderr on /dev/null and stdout on STDOUT (default /dev/null:
    it may be a token).  Returns (seconds, exit status)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY, 0),
        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
    ]
    envlist = env
    t0 = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, envlist, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter()
    return t1 - t0, os.waitstatus_to_exitcode(status)
