"""Shared fixtures for tests/e2e/test_sasl_clients.py and test_lifecycle.py:
real SASL clients (cyrus-clients, Postfix, mbsync, a long-lived libsasl2
client) logging in to the local Dovecot through the built libmailoauth.so,
which runs the built `mailoauth get` on a store filled by a real
`mailoauth login` (device flow; the fake identity provider approves).

Nothing here prints a token: the cyrus test programs echo the AUTHENTICATE
command (with the bearer token) and Dovecot's debug log carries tokens too,
so every text that may end up in a failure message goes through redact().
"""
import base64
import grp
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import stat
import subprocess
import sys
import time
import uuid

import fakeidp
import mailenv
import memcheck

ALICE = "alice@example.com"
BOB = "bob@example.com"
SHARED = "shared@example.com"

HERE = os.path.dirname(os.path.abspath(__file__))
SASL_CLIENT = os.path.join(HERE, "saslclient.py")
MBSYNC = shutil.which("mbsync") or "/usr/bin/mbsync"
MBSYNC_TEMPLATE = os.path.join("sasl", "mbsyncrc.in")


def top_builddir():
    return os.environ.get("top_builddir") or mailenv._top_srcdir()


def helper_path():
    return os.environ.get("MAILOAUTH_BIN") or os.path.join(top_builddir(),
                                                          "mailoauth")


def plugin_dir():
    return os.path.join(top_builddir(), "plugin", ".libs")


def sasl_path():
    """SASL_PATH replaces libsasl2's plugin directory, so it names both the
    built plugin and the system plugins (for PLAIN baselines)."""
    return "%s:%s" % (plugin_dir(), mailenv.SYSTEM_SASL_PLUGINDIR)


def cyrus(tool):
    return os.path.join(mailenv.CYRUS_BIN, tool)


def unused_id(low=60000, high=64999):
    """A number that is neither a uid nor a gid in the user and group
    databases (highest first in LOW..HIGH), for a throw-away service user
    that needs no entry in /etc/passwd."""
    for n in range(high, low - 1, -1):
        try:
            pwd.getpwuid(n)
            continue
        except KeyError:
            pass
        try:
            grp.getgrgid(n)
            continue
        except KeyError:
            return n
    raise RuntimeError("no free uid/gid in %d..%d" % (low, high))


def _ids(who):
    """(uid, gid) of WHO: a user name or a (uid, gid) pair."""
    if isinstance(who, str):
        pw = pwd.getpwnam(who)
        return pw.pw_uid, pw.pw_gid
    return tuple(who)


def missing_programs(extra=()):
    need = [mailenv.DOVECOT, "/usr/lib/dovecot/lmtp",
            "/usr/lib/dovecot/submission", "/usr/lib/dovecot/pop3",
            cyrus("imtest"), helper_path(),
            os.path.join(plugin_dir(), "libmailoauth.so"), *extra]
    return [p for p in need if not os.path.exists(p)]


# --------------------------------------------------------------------------
# Never print a token.

_AUTH_LINE = re.compile(r"(AUTHENTICATE|AUTH)\s+(XOAUTH2|OAUTHBEARER)\s+\S+",
                        re.I)


def redact(text, secrets=()):
    """TEXT with bearer tokens removed: every secret in SECRETS, the client
    lines of imtest/pop3test/smtptest ("C: ..."), AUTHENTICATE/AUTH command
    arguments (mbsync echoes a failed command, initial response included),
    and Dovecot's token= fields."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = re.sub(r"^C: .*$", "C: <client line redacted>", text, flags=re.M)
    text = _AUTH_LINE.sub(r"\1 \2 <redacted>", text)
    text = re.sub(r"\btoken=\S+", "token=<redacted>", text)
    for s in sorted(secrets, key=len, reverse=True):
        if len(s) >= 8:
            text = text.replace(s, "<secret>")
    return text


def new_part(before, after):
    """The part of a growing log written after BEFORE was read."""
    return after[len(before):] if after.startswith(before) else after


def server_challenges(out):
    """Decoded JSON of the "+ base64" challenges in a cyrus tool's output."""
    found = []
    for m in re.finditer(r"^S: \+ ([A-Za-z0-9+/=]+)\s*$", out, flags=re.M):
        try:
            found.append(json.loads(base64.b64decode(m.group(1))))
        except ValueError:
            pass
    return found


# --------------------------------------------------------------------------

class DelegatingDovecot(mailenv.Dovecot):
    """mailenv.Dovecot plus shared mailboxes the way Exchange Online treats
    them: `user=` on the wire names the shared mailbox, the bearer token is
    the token of a user with access to it.

    Dovecot's oauth2 passdb insists that the token's username equals the
    login name.  So a passwd-file passdb runs first, for the OAuth
    mechanisms only: for a shared mailbox it maps the login name to the
    delegate whose token must be presented (user=DELEGATE, noauthenticate,
    result_success = continue); other names are unknown there and fall
    through unchanged.  The oauth2 passdb then checks the token against the
    delegate, and its pass_attrs put the login name the client sent back
    (user=%L{original_user}), so the session opens the shared mailbox.
    A token of anybody else is refused.
    """

    MARKER = "# Bearer tokens, checked"

    def __init__(self, *args, delegations=None, **kw):
        super().__init__(*args, **kw)
        self.delegations = dict(delegations or {})
        self.delegations_file = os.path.join(self.dir, "delegations")

    def write_config(self):
        super().write_config()
        lines = "".join("%s:::::::user=%s noauthenticate\n" % (box, who)
                        for box, who in sorted(self.delegations.items()))
        with open(self.delegations_file, "w") as f:
            f.write(lines)
        os.chmod(self.delegations_file, 0o644)
        with open(self.config) as f:
            text = f.read()
        if self.MARKER not in text:
            raise RuntimeError("dovecot.conf.in changed: no '%s'"
                               % self.MARKER)
        block = ("# Shared mailboxes: login name -> delegate whose token is "
                 "checked.\npassdb {\n  driver = passwd-file\n"
                 "  mechanisms = xoauth2 oauthbearer\n  args = %s\n"
                 "  result_success = continue\n}\n" % self.delegations_file)
        with open(self.config, "w") as f:
            f.write(text.replace(self.MARKER, block + self.MARKER, 1))
        with open(self.oauth2_conf, "a") as f:
            f.write("# The session is the mailbox the client named.\n"
                    "pass_attrs = user=%L{original_user}\n")


def start_signed_in(extra=""):
    """The usual module fixture: a MailSetup started, a store for the
    client programs (run as root) with alice signed in by `mailoauth login`,
    and its configuration (EXTRA appended) in SETUP.conf."""
    setup = MailSetup().start()
    try:
        setup.store = setup.make_store("client")
        setup.conf = setup.write_config(setup.path("client"), setup.store, extra=extra)
        setup.login(setup.conf)
    except BaseException:
        setup.stop()
        raise
    return setup


def stop_checking_leaks(setup):
    """The usual module teardown: stop SETUP's servers (None: nothing was
    started), then fail if a secret showed in any output it captured."""
    if setup is None:
        return
    leaks = setup.leaks()
    setup.stop()
    if leaks:
        raise AssertionError("secrets in captured output: %s" % leaks)


class MailSetup:
    """A work directory, the fake identity provider, Dovecot; start() and
    stop() (exactly what was started)."""

    def __init__(self, dovecot_class=mailenv.Dovecot, **dovecot_kw):
        self.dovecot_class = dovecot_class
        self.dovecot_kw = dovecot_kw
        self.work = None
        self.idp = None
        self.dovecot = None
        self.outputs = []      # (what, text): must never contain a secret
        self._secrets = set()

    def start(self):
        self.work = mailenv.WorkDir()
        try:
            self.ca = mailenv.test_ca(self.work.path)
            self.idp = fakeidp.FakeIdP(os.path.join(self.work.path, "idp"),
                                       ca=os.path.join(self.work.path, "ca"),
                                       interval=1)
            self.idp.start()
            self.dovecot = self.dovecot_class(
                self.work.path, introspection_url=self.idp.introspection_url,
                ca=self.ca, **self.dovecot_kw)
            self.dovecot.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        pids = []
        if self.dovecot:
            pids.append(self.dovecot.pid)
            self.dovecot.stop()
        if self.idp:
            if self.idp.running():
                self._secrets.update(self.idp.issued_secrets())
            pids.append(self.idp.proc.pid if self.idp.proc else None)
            self.idp.stop()
        left = [p for p in pids if p and mailenv.pid_alive(p)]
        if self.work:
            if os.environ.get("MAILOAUTH_KEEP_WORKDIR"):
                print("# kept " + self.work.path, flush=True)
            else:
                self.work.cleanup()
        if left:
            raise AssertionError("still running: %s" % left)

    def secrets(self):
        if self.idp and self.idp.running():
            self._secrets.update(self.idp.issued_secrets())
        return self._secrets

    def redact(self, text):
        return redact(text, self.secrets())

    def path(self, *parts):
        return os.path.join(self.work.path, *parts)

    # accounts ---------------------------------------------------------------
    def make_store(self, name, owner=None):
        """DIR (mode 0700) for a token store, plus the directory around it
        (0755: the plugin's configuration file lives there).  OWNER: a user
        name or a (uid, gid) pair."""
        parent = self.path(name)
        os.makedirs(parent, exist_ok=True)
        os.chmod(parent, 0o755)
        store = os.path.join(parent, "store")
        os.makedirs(store, exist_ok=True)
        os.chmod(store, 0o700)
        if owner:
            os.chown(store, *_ids(owner))
        return store

    def write_config(self, directory, store, helper=None, extra=""):
        """The plugin's (and helper's) mailoauth.conf: helper and store."""
        conf = os.path.join(directory, "mailoauth.conf")
        with open(conf, "w") as f:
            f.write("# mailoauth.conf for the end-to-end tests\n"
                    "helper = %s\nstore = %s\nhttp_timeout = 10\n%s"
                    % (helper or helper_path(), store, extra))
        os.chmod(conf, 0o644)
        return conf

    def client_env(self, conf, home=None, **extra):
        env = {"PATH": "/usr/bin:/bin", "HOME": home or self.work.path,
               "LANG": "C.UTF-8", "MAILOAUTH_CONFIG": conf,
               "SASL_PATH": sasl_path()}
        env.update(extra)
        return env

    def login(self, conf, account=ALICE, approve_as=None, extra=(),
              run_as=None, helper=None, store=None):
        """`mailoauth login ACCOUNT` with the real device flow; the fake's
        user at the browser (APPROVE_AS, default ACCOUNT) approves the
        code.  RUN_AS: the Unix user to run it as (the store's owner), a
        name or a (uid, gid) pair.  STORE: given as --store (else the
        configuration's)."""
        kw = {}
        if run_as:
            uid, gid = _ids(run_as)
            kw = dict(user=uid, group=gid, extra_groups=[])
        proc = subprocess.Popen(
            [helper or helper_path(),
             *(("--store", store) if store else ()), "login", account,
             "--client-id", self.idp.client_id,
             "--authority", self.idp.authority(), "--ca-file",
             self.ca.ca_file, *extra],
            env=self.client_env(conf, home=os.path.dirname(conf)),
            cwd=os.path.dirname(conf), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        try:
            code = self.idp.wait_for_pending(timeout=15)
            self.idp.approve(code, username=approve_as or account)
            out, err = proc.communicate(timeout=30)
        except BaseException:
            proc.kill()
            proc.wait(5)
            raise
        self.outputs.append(("mailoauth login", out + err))
        if proc.returncode != 0:
            raise AssertionError("mailoauth login failed (%d): %s"
                                 % (proc.returncode, self.redact(err)))

    def helper(self, conf, *args, timeout=30):
        """Run `mailoauth ARGS`; stdout (may hold a token) is returned, never
        printed; stderr is kept for the leak check."""
        home = os.path.dirname(conf)
        r = subprocess.run([helper_path(), *args],
                           env=self.client_env(conf, home=home),
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        self.outputs.append(("mailoauth " + args[0], r.stderr))
        return r

    @staticmethod
    def record(store, account=ALICE):
        """The account's store record (the test reads it, never prints it)."""
        rec = {}
        with open(os.path.join(store, account)) as f:
            for line in f:
                k, sep, v = line.rstrip("\n").partition("=")
                if sep:
                    rec[k] = v
        return rec

    # mail -------------------------------------------------------------------
    def deliver(self, user, subject):
        """Put a message into USER's INBOX over LMTP."""
        msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nbody of %s\r\n"
               % (ALICE, user, subject, subject)).encode()
        with smtplib.LMTP("127.0.0.1", self.dovecot.ports["lmtp"],
                          timeout=20) as lmtp:
            lmtp.sendmail(ALICE, [user], msg)
        self.dovecot.wait_for_message(user, subject, 10)

    # clients ----------------------------------------------------------------
    def run_cyrus(self, tool, mech, port, stdin, env, account=ALICE,
                  timeout=30):
        """imtest/pop3test/smtptest with STARTTLS (-t "") and MECH through
        the plugin.  Returns (rc, redacted stdout+stderr, seconds).  These
        tools exit 0 even when authentication fails: check the text."""
        t0 = time.monotonic()
        argv, timeout = memcheck.wrap(
            [cyrus(tool), "-t", "", "-m", mech, "-a", account, "-p", str(port),
             "127.0.0.1"], timeout)
        rc, out, err = mailenv.run_session(argv, stdin, env=env, timeout=timeout)
        text = self.redact(out + err)
        return rc, text, time.monotonic() - t0

    def sasl_client(self, env, mech="XOAUTH2", logins=1, account=ALICE,
                    timeout=60, run_as=None):
        """tests/e2e/sasl/saslclient.py: LOGINS IMAP logins from one process
        through libsasl2 (a long-lived client, like Postfix's smtp).  Returns
        one dict per login.  RUN_AS: a user name or (uid, gid) to run it as
        (the script is copied into the work directory for that user)."""
        plan = {"account": account, "port": self.dovecot.ports["imap"],
                "ca_file": self.ca.ca_file, "mech": mech, "logins": logins}
        python, script, kw = sys.executable, SASL_CLIENT, {}
        if run_as:
            # Another user may not reach this Python (a virtualenv under
            # /root) or the source tree: the system's Python, a copy.
            uid, gid = _ids(run_as)
            kw = dict(user=uid, group=gid, extra_groups=[], cwd="/")
            if os.path.exists("/usr/bin/python3"):
                python = "/usr/bin/python3"
            script = self.path("saslclient.py")
            shutil.copyfile(SASL_CLIENT, script)
            os.chmod(script, 0o644)
        r = subprocess.run([python, script, json.dumps(plan)],
                           env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout,
                           **kw)
        self.outputs.append(("saslclient", r.stdout + r.stderr))
        if r.returncode != 0:
            raise AssertionError("saslclient failed (%d): %s" % (
                r.returncode, self.redact(r.stdout + r.stderr)))
        return [json.loads(line) for line in r.stdout.splitlines()
                if line.startswith("{")]

    def mbsync(self, env, name="mbsync", account=ALICE, timeout=60):
        """Write NAME/mbsyncrc from tests/e2e/sasl/mbsyncrc.in (far store:
        Dovecot's INBOX; near store: NAME/Maildir) and run `mbsync -a`.
        Returns (rc, redacted output, messages synced into the Maildir)."""
        directory = self.path(name)
        maildir = os.path.join(directory, "Maildir")
        os.makedirs(maildir, exist_ok=True)
        rc_file = os.path.join(directory, "mbsyncrc")
        with open(rc_file, "w") as f:
            f.write(mailenv.render(MBSYNC_TEMPLATE, dict(
                IMAP_HOST="127.0.0.1", IMAP_PORT=self.dovecot.ports["imap"],
                USER=account, CA_FILE=self.ca.ca_file, MAILDIR=maildir)))
        r = subprocess.run([MBSYNC, "-c", rc_file, "-a"], env=env,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        synced = []
        for sub in ("new", "cur"):
            d = os.path.join(maildir, "INBOX", sub)
            for entry in sorted(os.listdir(d)) if os.path.isdir(d) else ():
                with open(os.path.join(d, entry), "rb") as f:
                    synced.append(f.read())
        # mbsync echoes a failed AUTHENTICATE command, token and all: only
        # the redacted text is kept or shown.
        return r.returncode, self.redact(r.stdout + r.stderr), synced

    def leaks(self):
        """(what, secret prefix) for every captured output holding a secret."""
        found = []
        secrets = [s for s in self.secrets() if len(s) >= 8]
        for what, text in self.outputs:
            for s in secrets:
                if s in text:
                    found.append((what, s[:4] + "..."))
        return found


# --------------------------------------------------------------------------
# The token agent, and what is inside Postfix's chroot.

def unique_agent_socket(tag="e2e"):
    """An abstract socket name no other test (or a real agent) uses."""
    return "@mailoauth-%s-%d-%s" % (tag, os.getpid(), uuid.uuid4().hex[:8])


def socket_listener(name):
    """PID of the process holding the listening Unix socket NAME (@abstract
    or a path), from /proc/net/unix and the processes' descriptors; None if
    there is none.  Found without connecting: the agent logs a connection
    that sends no request."""
    want = name if name.startswith("@") else os.path.abspath(name)
    inodes = set()
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                fields = line.split()
                # Num RefCount Protocol Flags Type St Inode Path;
                # Flags 00010000: listening.
                if len(fields) >= 8 and fields[7] == want and \
                        int(fields[3], 16) & 0x10000:
                    inodes.add("socket:[%s]" % fields[6])
    except OSError:
        return None
    if not inodes:
        return None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fd_dir = "/proc/%s/fd" % entry
        try:
            for fd in os.listdir(fd_dir):
                if os.readlink(os.path.join(fd_dir, fd)) in inodes:
                    return int(entry)
        except OSError:
            continue
    return None


def process_uid(pid):
    """The effective uid of PID."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[2])
    raise RuntimeError("no Uid in /proc/%d/status" % pid)


class Agent:
    """A `mailoauth agent --foreground` listening on SOCKET_NAME: ARGV run
    with umask 077 in /, output (the agent logs to stderr as well as to
    syslog) to LOG_PATH, as RUN_AS (a user name or (uid, gid); None: ARGV
    drops privileges itself, e.g. through setpriv).  Ready when it logged
    "listening on" and the process listening on the socket is the one
    started; stop() sends SIGTERM to exactly that PID."""

    def __init__(self, argv, socket_name, log_path, env=None, run_as=None):
        self.argv = list(argv)
        self.socket_name = socket_name
        self.log_path = log_path
        self.env = env
        self.run_as = run_as
        self.proc = None
        self.pid = None

    def start(self, timeout=15):
        kw = {}
        if self.run_as:
            uid, gid = _ids(self.run_as)
            kw = dict(user=uid, group=gid, extra_groups=[])
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, env=self.env, cwd="/", umask=0o077,
                start_new_session=True, **kw)
        self.pid = self.proc.pid

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("the agent exited with %s: %s" % (
                    self.proc.returncode, self.log()))
            if "listening on" not in self.log():
                return False
            pid = socket_listener(self.socket_name)
            if pid and pid != self.pid:
                raise RuntimeError("another process (pid %d) listens on %s"
                                   % (pid, self.socket_name))
            return bool(pid)
        try:
            mailenv.wait_for(ready, timeout, what="the agent's socket")
        except BaseException:
            self.stop()
            raise
        return self

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, timeout=15):
        """SIGTERM; the exit status (SIGKILL after TIMEOUT seconds)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode


# The subdirectories Postfix itself creates in its queue directory, which is
# the chroot of the services marked "y" in master.cf.
POSTFIX_QUEUE_DIRS = frozenset((
    "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold",
    "incoming", "maildrop", "pid", "private", "public", "saved", "trace"))


def master_services(master_cf):
    """The service names of a master.cf (the first field of each entry)."""
    names = set()
    with open(master_cf) as f:
        for line in f:
            if line.strip() and not line[0].isspace() and line[0] != "#":
                name = line.split()[0]
                names.add(name.rsplit(":", 1)[-1] if ":" in name else name)
    return names


def tree(root):
    """Every path under ROOT (relative) with its kind: d, f, l (symlink),
    s (socket), p (fifo) or ? (anything else)."""
    out = []
    for top, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(top, name)
            mode = os.lstat(path).st_mode
            kind = ("l" if stat.S_ISLNK(mode) else "d" if stat.S_ISDIR(mode)
                    else "f" if stat.S_ISREG(mode) else "s" if
                    stat.S_ISSOCK(mode) else "p" if stat.S_ISFIFO(mode)
                    else "?")
            out.append((os.path.relpath(path, root), kind))
    return sorted(out)


def chroot_findings(root, services, secrets=()):
    """What in ROOT, Postfix's queue directory and so the chroot of its
    smtp client, is not Postfix's own: a top-level entry Postfix does not
    create (a copied etc/, lib/, usr/), a name with "mailoauth" in it, a
    symlink, a socket or fifo other than a master.cf service's in private/
    or public/, a program or library (ELF), a certificate or key (PEM), a
    token store record, a secret.  Empty when nothing was added."""
    found = []
    for rel, kind in tree(root):
        parts = rel.split(os.sep)
        path = os.path.join(root, rel)
        if parts[0] not in POSTFIX_QUEUE_DIRS:
            found.append("%s (%s): not a Postfix queue directory" % (rel, kind))
        if "mailoauth" in rel.lower():
            found.append("%s (%s): named mailoauth" % (rel, kind))
        if kind in ("s", "p"):
            if len(parts) != 2 or parts[0] not in ("private", "public") \
                    or parts[1] not in services:
                found.append("%s: a %s that is no Postfix service's" % (
                    rel, "socket" if kind == "s" else "fifo"))
        elif kind in ("l", "?"):
            found.append("%s: %s" % (rel, "a symlink" if kind == "l"
                                     else "a special file"))
        elif kind == "f":
            with open(path, "rb") as f:
                data = f.read(1 << 20)
            if data.startswith(b"\x7fELF"):
                found.append(rel + ": a program or library")
            if b"-----BEGIN " in data:
                found.append(rel + ": a certificate or key")
            if b"refresh_token" in data or b"access_token" in data:
                found.append(rel + ": a token store record")
            if any(s.encode() in data for s in secrets if len(s) >= 8):
                found.append(rel + ": holds a secret")
    return found
