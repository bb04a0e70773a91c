"""A local mail environment for end-to-end tests: Dovecot and Postfix on
loopback, each from its own configuration under a work directory.

    env = mailenv.WorkDir()                       # tempfile.mkdtemp, 0755
    idp = mailenv.IntrospectionStub(env.path)     # until tests/lib/fakeidp.py
    dc = mailenv.Dovecot(env.path, introspection_url=idp.introspection_url)
    dc.add_user("alice@example.com", "secret")
    dc.start()
    dc.ports["imap"], dc.ports["submission"], ...
    dc.wait_for_message("alice@example.com", b"Subject: hi", timeout=10)
    pf = mailenv.Postfix(env.path, relay_port=dc.ports["submission"],
                         ca_file=dc.ca_file,
                         sasl_passwords={"alice@example.com": "secret"},
                         mechanism_filter="plain")
    pf.start(); pf.sendmail(...); pf.wait_queue_empty(20); pf.stop()
    dc.stop(); env.cleanup()

Nothing under /etc is written, no system service is touched, every server
listens on 127.0.0.1 on a port that was free a moment ago, and only the
processes started here are stopped (by the PID recorded at start).

Dovecot runs in the foreground (`dovecot -F -c CONFIG`) as a child of the
test.  Postfix daemonizes (`postfix -c DIR start`); its master PID comes from
QUEUE_DIR/pid/master.pid and `postfix -c DIR stop` stops exactly that
instance.  Both need root (CI runs as root): Dovecot's login processes run
as `dovenull`, its auth process as `dovecot`, mail is stored as `nobody`;
Postfix runs as `postfix` with setgid group `postdrop`.  Dovecot also runs
as an ordinary user (no chroots, everything as that user).
"""
import base64
import contextlib
import grp
import http.server
import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse

import testca

DOVECOT = os.environ.get("DOVECOT", "/usr/sbin/dovecot")
POSTFIX = os.environ.get("POSTFIX", "/usr/sbin/postfix")
SENDMAIL = os.environ.get("SENDMAIL", "/usr/sbin/sendmail")
POSTQUEUE = os.environ.get("POSTQUEUE", "/usr/sbin/postqueue")
# Debian installs the cyrus-clients test programs outside PATH.
CYRUS_BIN = os.environ.get("CYRUS_BIN", "/usr/lib/cyrus/bin")
SYSTEM_SASL_PLUGINDIR = "/usr/lib/x86_64-linux-gnu/sasl2"


def _top_srcdir():
    return os.environ.get("top_srcdir") or os.path.abspath(
        os.path.join(os.path.dirname(__file__), "..", ".."))


def template_dir():
    return os.path.join(_top_srcdir(), "tests", "e2e")


def render(template, values):
    """Replace @NAME@ in tests/e2e/TEMPLATE; every @NAME@ must be known."""
    with open(os.path.join(template_dir(), template)) as f:
        text = f.read()
    for name, value in values.items():
        text = text.replace("@" + name + "@", str(value))
    if "@" in text:
        import re
        left = set(re.findall(r"@([A-Z0-9_]+)@", text))
        if left:
            raise ValueError("%s: no value for %s" % (template, sorted(left)))
    return text


# The relay settings of main.cf exactly as the README shows them (with
# Office 365's host, port and CA bundle there, the local ones here).
POSTFIX_RELAY_TEMPLATE = "postfix-relay.cf.in"


def readme_shows(text):
    """True if README.md holds TEXT's lines, comments and blank lines left
    out and white space folded, one after another."""
    def lines(t):
        return [" ".join(l.split()) for l in t.splitlines()
                if l.strip() and not l.lstrip().startswith("#")]
    with open(os.path.join(_top_srcdir(), "README.md")) as f:
        readme = lines(f.read())
    want = lines(text)
    return any(readme[i:i + len(want)] == want
               for i in range(len(readme) - len(want) + 1))


def _write(path, text, mode=0o644):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def run_session(argv, commands, env=None, timeout=30):
    """Runs a cyrus-clients tool (imtest, pop3test, smtptest) and types
    COMMANDS (ending with the protocol's logout command) only once it has
    printed "Authenticated." (or given up).

    Fed all at once, the commands race the authentication: these tools
    read standard input while they are still logging in, and a line read
    then is sometimes lost (pop3test sent only QUIT).  Returns (returncode,
    stdout bytes, stderr bytes); the process is killed at TIMEOUT."""
    import threading
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    out, err = [], []
    ready = threading.Event()

    def pump(stream, sink, watch):
        for line in iter(stream.readline, b""):
            sink.append(line)
            if watch and (b"Authenticated." in line or b"Authentication failed" in line):
                ready.set()
        ready.set()

    threads = [threading.Thread(target=pump, args=(proc.stdout, out, True), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err, False), daemon=True)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    ready.wait(timeout)
    try:
        if proc.poll() is None and commands:
            proc.stdin.write(commands)
            proc.stdin.flush()
            # COMMANDS end with the protocol's logout, so the server closes
            # the connection and the tool exits by itself.  Closing stdin
            # at once instead races it: on end of input the tool sends its
            # own logout and may quit before printing the answers to
            # COMMANDS (pop3test printed no reply to STAT once).
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, min(10, deadline - time.monotonic())))
        proc.stdin.close()
    except (BrokenPipeError, OSError):
        pass
    try:
        proc.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    for t in threads:
        t.join(5)
    return proc.returncode, b"".join(out), b"".join(err)


def free_port():
    return testca.free_port()


def is_root():
    return os.geteuid() == 0


def pid_alive(pid):
    """True while PID exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def wait_for(predicate, timeout, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out after %.1f s waiting for %s"
                               % (timeout, what))
        time.sleep(interval)


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_ca(directory):
    """The trusted test CA and a server certificate for 127.0.0.1/localhost.

    Returns testca.TestCA(dir, ca_file, ca_key, cert, key).  The files are
    copied to DIRECTORY/ca-public with modes other service users can read
    (Dovecot's auth process reads the CA file as user `dovecot`); the keys
    stay 0600 (read by root-run config/master processes).
    """
    ca = testca.ensure(os.path.join(directory, "ca"))
    pub = os.path.join(directory, "ca-public")
    os.makedirs(pub, exist_ok=True)
    os.chmod(pub, 0o755)
    out = {}
    for name in ("ca_file", "cert", "key"):
        src = getattr(ca, name)
        dst = os.path.join(pub, os.path.basename(src))
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o600 if name == "key" else 0o644)
        out[name] = dst
    return testca.TestCA(pub, out["ca_file"], ca.ca_key, out["cert"],
                         out["key"])


class DovecotExited(RuntimeError):
    """Dovecot's master exited while we waited for its listeners."""


class WorkDir:
    """A tempfile.mkdtemp directory other service users can traverse."""

    def __init__(self, prefix="mailoauth-e2e-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.path, 0o755)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


# --------------------------------------------------------------------------
# A stand-in for the fake identity provider's introspection endpoint.

class IntrospectionStub:
    """HTTPS RFC 7662 introspection endpoint for Dovecot's oauth2 passdb.

    POST /_fake/introspect with token=T answers {"active": true,
    "username": U} for tokens added with add_token(T, U), else
    {"active": false}.  Used until tests/lib/fakeidp.py has its own.
    """

    path = "/_fake/introspect"

    def __init__(self, workdir, ca=None):
        self.ca = ca or test_ca(workdir)
        self.tokens = {}
        self.requests = []
        self._lock = threading.Lock()
        stub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 65536)).decode()
                form = urllib.parse.parse_qs(body)
                token = (form.get("token") or [""])[0]
                with stub._lock:
                    stub.requests.append((self.path, token))
                    user = stub.tokens.get(token)
                if self.path != stub.path:
                    self.send_response(404)
                    reply = {"error": "not_found"}
                elif user:
                    reply = {"active": True, "username": user,
                             "scope": "IMAP.AccessAsUser.All",
                             "exp": int(time.time()) + 3600}
                    self.send_response(200)
                else:
                    reply = {"active": False}
                    self.send_response(200)
                data = json.dumps(reply).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.ca.cert, self.ca.key)
        self.server.socket = ctx.wrap_socket(self.server.socket,
                                             server_side=True)
        self.port = self.server.server_address[1]
        self.introspection_url = "https://127.0.0.1:%d%s" % (self.port,
                                                            self.path)
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        daemon=True)
        self._thread.start()

    def add_token(self, token, username):
        with self._lock:
            self.tokens[token] = username

    def revoke(self, token):
        with self._lock:
            self.tokens.pop(token, None)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------
# SMTP to LMTP bridge: Dovecot submission relays to SMTP only, Dovecot LMTP
# speaks LMTP only; this tiny server joins them so submitted mail is
# delivered into the Dovecot maildir.

class SmtpLmtpBridge:
    """Minimal SMTP server on 127.0.0.1 forwarding each message over LMTP.

    .messages is a list of (mail_from, [rcpts], data bytes) it accepted.
    """

    MAX_DATA = 10 * 1024 * 1024

    def __init__(self, lmtp_port=None):
        self.lmtp_port = lmtp_port
        self.messages = []
        self.errors = []
        bridge = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 30

            def reply(self, text):
                self.wfile.write(text.encode() + b"\r\n")
                self.wfile.flush()

            def handle(self):
                self.reply("220 localhost mailoauth test relay")
                mail_from, rcpts = None, []
                while True:
                    line = self.rfile.readline(4096)
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").rstrip("\r\n")
                    verb = cmd.split(" ", 1)[0].upper()
                    if verb in ("EHLO", "HELO"):
                        self.reply("250-localhost\r\n250 8BITMIME"
                                   if verb == "EHLO" else "250 localhost")
                    elif verb == "MAIL":
                        mail_from = _angle(cmd)
                        rcpts = []
                        self.reply("250 2.1.0 OK")
                    elif verb == "RCPT":
                        rcpts.append(_angle(cmd))
                        self.reply("250 2.1.5 OK")
                    elif verb == "DATA":
                        if mail_from is None or not rcpts:
                            self.reply("503 5.5.1 MAIL and RCPT first")
                            continue
                        self.reply("354 go ahead")
                        data = bytearray()
                        while True:
                            dl = self.rfile.readline(65536)
                            if not dl:
                                return
                            if dl in (b".\r\n", b".\n"):
                                break
                            if dl.startswith(b"."):
                                dl = dl[1:]
                            data += dl
                            if len(data) > bridge.MAX_DATA:
                                self.reply("552 5.3.4 too big")
                                return
                        self.reply(bridge._deliver(mail_from, rcpts,
                                                   bytes(data)))
                        mail_from, rcpts = None, []
                    elif verb == "RSET":
                        mail_from, rcpts = None, []
                        self.reply("250 2.0.0 OK")
                    elif verb == "NOOP":
                        self.reply("250 2.0.0 OK")
                    elif verb == "QUIT":
                        self.reply("221 2.0.0 bye")
                        return
                    else:
                        self.reply("502 5.5.2 not implemented")

        class Server(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever,
                                        daemon=True)
        self._thread.start()

    def _deliver(self, mail_from, rcpts, data):
        try:
            with smtplib.LMTP("127.0.0.1", self.lmtp_port, timeout=20) as l:
                refused = l.sendmail(mail_from, rcpts, data)
        except smtplib.SMTPRecipientsRefused as e:
            self.errors.append(repr(e))
            return "550 all recipients refused by LMTP"
        except (smtplib.SMTPException, OSError) as e:
            self.errors.append(repr(e))
            return "451 LMTP delivery failed"
        self.messages.append((mail_from, rcpts, data))
        if refused:
            self.errors.append(repr(refused))
        return "250 delivered"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _angle(cmd):
    start, end = cmd.find("<"), cmd.find(">")
    if start >= 0 and end > start:
        return cmd[start + 1:end]
    return cmd.split(":", 1)[-1].strip().split(" ")[0]


# --------------------------------------------------------------------------

class Dovecot:
    """Dovecot with IMAP, POP3, submission (STARTTLS and implicit TLS) and
    LMTP on free ports of 127.0.0.1, PLAIN via a passwd-file and XOAUTH2/
    OAUTHBEARER via the oauth2 passdb, mail in WORKDIR/dovecot/mail.

    ports: dict imap, imaps, pop3, pop3s, submission, submissions, lmtp,
    relay (the SMTP-to-LMTP bridge).
    """

    SERVICES = ("imap", "imaps", "pop3", "pop3s", "submission",
                "submissions", "lmtp")

    def __init__(self, workdir, introspection_url=None, ca=None,
                 debug=True, users=None):
        self.dir = os.path.join(workdir, "dovecot")
        os.makedirs(self.dir)
        os.chmod(self.dir, 0o755)
        self.ca = ca or test_ca(workdir)
        self.ca_file = self.ca.ca_file
        self.introspection_url = introspection_url or \
            "https://127.0.0.1:1/_fake/introspect"
        self.debug = debug
        self.config = os.path.join(self.dir, "dovecot.conf")
        self.oauth2_conf = os.path.join(self.dir, "dovecot-oauth2.conf.ext")
        self.passwd_file = os.path.join(self.dir, "passwd")
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.stdio_path = os.path.join(self.dir, "dovecot.stdio")
        self.mail_root = os.path.join(self.dir, "mail")
        self.base_dir = os.path.join(self.dir, "run")
        self.state_dir = os.path.join(self.dir, "state")
        self.users = {}
        self.ports = {}
        self.proc = None
        self.pid = None
        self.bridge = None
        for name, password in (users or {}).items():
            self.add_user(name, password)

    # users ---------------------------------------------------------------
    def add_user(self, name, password):
        """Add (or change) a PLAIN user; effective at once, even running."""
        if any(c in name + password for c in ":\n\r"):
            raise ValueError("':' and newlines are not allowed")
        self.users[name.lower()] = password
        self._write_passwd()

    def _write_passwd(self):
        lines = "".join("%s:{PLAIN}%s::::::\n" % (u, p)
                        for u, p in sorted(self.users.items()))
        tmp = self.passwd_file + ".tmp"
        _write(tmp, lines, 0o644)
        os.rename(tmp, self.passwd_file)

    # configuration ---------------------------------------------------------
    def _identities(self):
        if is_root():
            mail = pwd.getpwnam("nobody")
            return dict(INTERNAL_USER="dovecot", INTERNAL_GROUP="dovecot",
                        LOGIN_USER="dovenull", MAIL_UID=mail.pw_uid,
                        MAIL_GID=mail.pw_gid, LOGIN_CHROOT="",
                        ANVIL_CHROOT="")
        me = pwd.getpwuid(os.getuid())
        group = grp.getgrgid(os.getgid()).gr_name
        return dict(INTERNAL_USER=me.pw_name, INTERNAL_GROUP=group,
                    LOGIN_USER=me.pw_name, MAIL_UID=os.getuid(),
                    MAIL_GID=os.getgid(), LOGIN_CHROOT="  chroot =",
                    ANVIL_CHROOT="  chroot =")

    def write_config(self):
        ids = self._identities()
        for service in self.SERVICES:
            self.ports.setdefault(service, free_port())
        os.makedirs(self.mail_root, exist_ok=True)
        os.chmod(self.mail_root, 0o755)
        if is_root():
            os.chown(self.mail_root, ids["MAIL_UID"], ids["MAIL_GID"])
        os.makedirs(self.state_dir, exist_ok=True)
        self._write_passwd()
        extra = ""
        if not is_root():
            extra = "service imap-urlauth-login {\n  chroot =\n}\n"
        values = dict(ids)
        values.update(
            BASE_DIR=self.base_dir, STATE_DIR=self.state_dir,
            INSTANCE_NAME="mailoauth-test-%d" % self.ports["imap"],
            LOG_PATH=self.log_path,
            FIRST_VALID_UID=min(100, ids["MAIL_UID"]) or 1,
            FIRST_VALID_GID=min(100, ids["MAIL_GID"]) or 1,
            SSL_CERT=self.ca.cert, SSL_KEY=self.ca.key,
            AUTH_DEBUG="yes" if self.debug else "no",
            PASSWD_FILE=self.passwd_file, OAUTH2_CONF=self.oauth2_conf,
            MAIL_ROOT=self.mail_root,
            IMAP_PORT=self.ports["imap"], IMAPS_PORT=self.ports["imaps"],
            POP3_PORT=self.ports["pop3"], POP3S_PORT=self.ports["pop3s"],
            SUBMISSION_PORT=self.ports["submission"],
            SUBMISSIONS_PORT=self.ports["submissions"],
            LMTP_PORT=self.ports["lmtp"], RELAY_PORT=self.ports["relay"],
            EXTRA_SERVICES=extra)
        _write(self.config, render("dovecot.conf.in", values))
        _write(self.oauth2_conf, render("dovecot-oauth2.conf.ext.in", dict(
            INTROSPECTION_URL=self.introspection_url, CA_FILE=self.ca_file,
            DEBUG="yes" if self.debug else "no")))

    # lifecycle ---------------------------------------------------------------
    def start(self, timeout=20, attempts=3):
        """Start Dovecot and wait for its listeners.  If a port free_port()
        gave us was taken by someone else before Dovecot bound it, Dovecot
        exits with EADDRINUSE: try again with new ports (nothing else)."""
        for attempt in range(attempts):
            try:
                return self._start(timeout)
            except DovecotExited as e:
                if "Address already in use" not in str(e) or \
                        attempt + 1 == attempts:
                    raise
                self.ports.clear()

    def _start(self, timeout):
        if self.proc:
            raise RuntimeError("Dovecot already started")
        self.bridge = SmtpLmtpBridge()
        self.ports["relay"] = self.bridge.port
        self.write_config()
        self.bridge.lmtp_port = self.ports["lmtp"]
        stdio = open(self.stdio_path, "ab")
        try:
            self.proc = subprocess.Popen(
                [DOVECOT, "-F", "-c", self.config], stdin=subprocess.DEVNULL,
                stdout=stdio, stderr=subprocess.STDOUT,
                start_new_session=True)
        finally:
            stdio.close()
        self.pid = self.proc.pid

        def ready():
            if self.proc.poll() is not None:
                raise DovecotExited("dovecot exited with %s:\n%s\n%s" % (
                    self.proc.returncode, self._read(self.stdio_path),
                    self.log()))
            return all(port_open(self.ports[s]) for s in self.SERVICES)
        try:
            wait_for(ready, timeout, what="Dovecot listeners")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout=15):
        """SIGTERM exactly the dovecot master we started, and wait."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.bridge:
            self.bridge.stop()
            self.bridge = None
        self.proc = None

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # inspection --------------------------------------------------------------
    @staticmethod
    def _read(path):
        try:
            with open(path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def log(self):
        return self._read(self.log_path)

    def home(self, user):
        return os.path.join(self.mail_root, user.lower())

    def maildir(self, user):
        return os.path.join(self.home(user), "Maildir")

    def messages(self, user):
        """Contents (bytes) of the messages in USER's INBOX (new and cur)."""
        out = []
        for sub in ("new", "cur"):
            d = os.path.join(self.maildir(user), sub)
            try:
                names = sorted(os.listdir(d))
            except FileNotFoundError:
                continue
            for name in names:
                try:
                    with open(os.path.join(d, name), "rb") as f:
                        out.append(f.read())
                except FileNotFoundError:
                    pass      # moved new -> cur meanwhile
        return out

    def wait_for_message(self, user, needle, timeout=10):
        """The first message of USER containing NEEDLE (bytes or str)."""
        if isinstance(needle, str):
            needle = needle.encode()

        def found():
            for m in self.messages(user):
                if needle in m:
                    return m
            return None
        return wait_for(found, timeout, 0.1,
                        what="message with %r for %s" % (needle, user))

    def ssl_context(self):
        """A client SSL context that trusts the test CA."""
        return ssl.create_default_context(cafile=self.ca_file)


# --------------------------------------------------------------------------

class Postfix:
    """Postfix as a relaying SMTP client: relays everything to
    [127.0.0.1]:relay_port with SASL (smtp_sasl_mechanism_filter) over
    mandatory TLS.  Mail enters with sendmail(1) -C CONFIG_DIR or SMTP on
    ports["smtpd"].

    chroot: the smtp client's master.cf chroot flag (True = "y", as Debian
    ships it; the chroot is the queue directory).
    environment: extra NAME=VALUE pairs for import_environment (SASL_PATH,
    MAILOAUTH_*), which is how they reach the smtp process.
    name: subdirectory of WORKDIR for this instance (config, queue, data,
    log), so several instances can share a work directory.
    """

    def __init__(self, workdir, relay_port, ca_file, sasl_passwords=None,
                 mechanism_filter="xoauth2", chroot=True, environment=None,
                 extra_main="", name="postfix"):
        if not is_root():
            raise PermissionError("the Postfix test instance needs root")
        self.dir = os.path.join(workdir, name)
        self.config_dir = os.path.join(self.dir, "config")
        self.queue_dir = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.log_path = os.path.join(self.dir, "postfix.log")
        for d in (self.dir, self.config_dir, self.queue_dir):
            os.makedirs(d, exist_ok=True)
            os.chmod(d, 0o755)
        os.makedirs(self.data_dir, exist_ok=True)
        pf = pwd.getpwnam("postfix")
        os.chown(self.data_dir, pf.pw_uid, pf.pw_gid)
        os.chmod(self.data_dir, 0o700)
        self.relay_port = relay_port
        self.ca_file = ca_file
        self.sasl_passwords = dict(sasl_passwords or {})
        self.mechanism_filter = mechanism_filter
        self.chroot = chroot
        self.environment = dict(environment or {})
        self.extra_main = extra_main
        self.ports = {"smtpd": free_port()}
        self.pid = None

    def write_config(self):
        for k, v in self.environment.items():
            if any(c.isspace() for c in k + v) or "," in k + v:
                raise ValueError("import_environment values may not contain "
                                 "white space or commas: %r" % k)
        imports = " ".join("%s=%s" % kv for kv in sorted(
            self.environment.items()))
        relay = render(POSTFIX_RELAY_TEMPLATE, dict(
            RELAY_HOST="127.0.0.1", RELAY_PORT=self.relay_port,
            CONFIG_DIR=self.config_dir, MECH_FILTER=self.mechanism_filter,
            CA_FILE=self.ca_file))
        main = render("postfix-main.cf.in", dict(
            QUEUE_DIR=self.queue_dir, DATA_DIR=self.data_dir,
            CONFIG_DIR=self.config_dir, MAIL_OWNER="postfix",
            SETGID_GROUP="postdrop", LOG_FILE=self.log_path,
            LOG_DIR=self.dir, IMPORT_ENV=imports,
            RELAY_CONFIG=relay.rstrip("\n"), EXTRA_MAIN=self.extra_main))
        master = render("postfix-master.cf.in", dict(
            SMTPD_PORT=self.ports["smtpd"],
            SMTP_CHROOT="y" if self.chroot else "n"))
        _write(os.path.join(self.config_dir, "main.cf"), main)
        _write(os.path.join(self.config_dir, "master.cf"), master)
        # texthash: read when the smtp client opens the map (before its
        # chroot), no postmap needed.  One user for this relay host.
        lines = []
        for user, password in sorted(self.sasl_passwords.items()):
            for key in ("[127.0.0.1]:%d" % self.relay_port,):
                lines.append("%s %s:%s\n" % (key, user, password))
        _write(os.path.join(self.config_dir, "sasl_passwd"), "".join(lines),
               0o600)

    def _postfix(self, *args, timeout=60):
        return subprocess.run([POSTFIX, "-c", self.config_dir, *args],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, timeout=timeout)

    def start(self, timeout=30):
        self.write_config()
        r = self._postfix("start")
        if r.returncode != 0:
            raise RuntimeError("postfix start failed (%d):\n%s%s\n%s%s" % (
                r.returncode, r.stdout, r.stderr, self.log(),
                self.diagnose()))
        pidfile = os.path.join(self.queue_dir, "pid", "master.pid")

        def master_pid():
            try:
                with open(pidfile) as f:
                    pid = int(f.read().strip() or 0)
            except (FileNotFoundError, ValueError):
                return None
            return pid if pid and pid_alive(pid) else None
        try:
            self.pid = wait_for(master_pid, timeout, what="postfix master.pid")
            wait_for(lambda: port_open(self.ports["smtpd"]), timeout,
                     what="postfix smtpd listener")
        except BaseException:
            self.stop()
            raise
        return self

    def diagnose(self):
        """What `postfix check` says.  The postfix command logs fatal
        errors to syslog, and to stderr only when stderr is a terminal (and
        before postlogd runs, maillog_file is not used), so run it under
        script(1) to see them."""
        if not shutil.which("script"):
            return ""
        cmd = "%s -c %s check" % (POSTFIX, self.config_dir)
        try:
            r = subprocess.run(["script", "-qec", cmd, "/dev/null"],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=60)
        except subprocess.TimeoutExpired:
            return "postfix check timed out"
        return "postfix check: " + (r.stdout + r.stderr).strip()

    def stop(self, timeout=20):
        """`postfix -c DIR stop` (this instance only), then wait for the
        recorded master PID to go; SIGKILL exactly that PID as last resort."""
        self._postfix("stop")
        if self.pid:
            try:
                wait_for(lambda: not pid_alive(self.pid), timeout,
                         what="postfix master %d to exit" % self.pid)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                wait_for(lambda: not pid_alive(self.pid), 5)
        self.pid = None

    def running(self):
        return bool(self.pid) and pid_alive(self.pid)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def sendmail(self, sender, recipients, message, timeout=30):
        """Submit through sendmail(1) -C CONFIG_DIR (postdrop, pickup)."""
        if isinstance(recipients, str):
            recipients = [recipients]
        if isinstance(message, str):
            message = message.encode()
        r = subprocess.run([SENDMAIL, "-C", self.config_dir, "-f", sender,
                            "--", *recipients], input=message,
                           capture_output=True, timeout=timeout)
        if r.returncode != 0:
            raise RuntimeError("sendmail failed (%d): %s" % (
                r.returncode, r.stderr.decode(errors="replace")))

    def smtp_submit(self, sender, recipients, message, timeout=30):
        """Submit over SMTP to this instance's smtpd on 127.0.0.1."""
        with smtplib.SMTP("127.0.0.1", self.ports["smtpd"],
                          timeout=timeout) as s:
            return s.sendmail(sender, recipients, message)

    def queue_files(self):
        out = []
        for sub in ("maildrop", "incoming", "active", "deferred", "hold"):
            for root, _dirs, files in os.walk(os.path.join(self.queue_dir,
                                                           sub)):
                out.extend(os.path.join(root, f) for f in files)
        return out

    def wait_queue_empty(self, timeout=30):
        wait_for(lambda: not self.queue_files(), timeout, 0.2,
                 what="empty Postfix queue")

    def flush(self):
        r = self._postfix("flush")
        if r.returncode != 0:
            raise RuntimeError("postfix flush: %s%s" % (r.stdout, r.stderr))

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


# --------------------------------------------------------------------------
# SASL helpers for clients written in Python.

def xoauth2_initial_response(user, token):
    """The XOAUTH2 client response (raw, not base64)."""
    return ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()


def oauthbearer_initial_response(user, token, host="127.0.0.1", port=0):
    return ("n,a=%s,\x01host=%s\x01port=%d\x01auth=Bearer %s\x01\x01"
            % (user.replace("=", "=3D").replace(",", "=2C"), host, port,
               token)).encode()


def b64(data):
    return base64.b64encode(data).decode()


# --------------------------------------------------------------------------
# Tokens from the fake identity provider without the helper.

IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
SMTP_SCOPE = "https://outlook.office.com/SMTP.Send"
POP_SCOPE = "https://outlook.office.com/POP.AccessAsUser.All"


def device_flow_token(idp, username="alice@example.com",
                      scope=" ".join((IMAP_SCOPE, POP_SCOPE, SMTP_SCOPE,
                                      "offline_access")),
                      tenant="organizations", timeout=20):
    """Run the device authorization grant against a running
    fakeidp.FakeIdP, approving the code as USERNAME; returns the token
    response (dict with access_token, refresh_token, expires_in, ...)."""
    status, _, body = idp.post_form(idp.devicecode_url(tenant), {
        "client_id": idp.client_id, "scope": scope})
    if status != 200:
        raise RuntimeError("devicecode: HTTP %d %r" % (status, body))
    idp.approve(body["user_code"], username=username)
    deadline = time.monotonic() + timeout
    while True:
        status, _, tok = idp.post_form(idp.token_url(tenant), {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "client_id": idp.client_id, "device_code": body["device_code"]})
        if status == 200:
            return tok
        if not isinstance(tok, dict) or tok.get("error") not in (
                "authorization_pending", "slow_down"):
            raise RuntimeError("token: HTTP %d %r" % (status, tok))
        if time.monotonic() > deadline:
            raise TimeoutError("device flow did not finish")
        time.sleep(0.2)
