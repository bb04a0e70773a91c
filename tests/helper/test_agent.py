"""mailoauth agent: helper protocol v1 over a Unix socket (filesystem and
abstract), the SO_PEERCRED allow lists (checked at accept time against
their union, then per account), callers no list admits flooding it,
single-flight refresh under load, forced refreshes rate-limited, cached
tokens served while a refresh is slow, SIGTERM, restarts and stale sockets,
a socket passed by systemd (LISTEN_FDS) and a squatter on the name, and the
plugin's agent source through the real libsasl2.

The test client speaks the protocol over the socket directly: one request,
one reply with "status", then the agent closes."""
import errno
import json
import os
import pwd
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import tap
from helperlib import (ACCOUNT, MAILOAUTH, HelperTestCase, ZzNoSecretsInOutput,  # noqa: F401
                       captured_output, read_to_end)

_counter = [0]


def unique_abstract():
    _counter[0] += 1
    return "@mailoauth-test-%d-%d" % (os.getpid(), _counter[0])


def address(name):
    return "\0" + name[1:] if name.startswith("@") else name


def request_text(account=ACCOUNT, force=False):
    return ("version=1\naccount=%s\nprotocol=smtp\nhost=smtp.office365.com\nport=587\n"
            "mechanism=XOAUTH2\n%s\n") % (account, "force_refresh=1\n" if force else "")


def ask(name, account=ACCOUNT, force=False, raw=None, timeout=30):
    """One request; returns the reply as a dict (status as int, "" when the
    agent closed without a reply) plus "elapsed"."""
    t0 = time.monotonic()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(address(name))
        s.sendall((raw if raw is not None else request_text(account, force)).encode())
        data = read_to_end(s)
    finally:
        s.close()
    reply = dict(line.split("=", 1) for line in data.decode().splitlines() if line)
    reply["status"] = int(reply["status"]) if "status" in reply else ""
    reply["elapsed"] = time.monotonic() - t0
    reply["raw_end"] = data[-2:]
    return reply


def peer_pid(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(address(name))
        pid, _, _ = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                     struct.calcsize("3i")))
        return pid
    finally:
        s.close()


def peer_cred(name):
    """(pid, uid, gid) of the process listening on NAME, by SO_PEERCRED."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(address(name))
        return struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                struct.calcsize("3i")))
    finally:
        s.close()


def listening_socket(name):
    """A bound, listening socket, as systemd's mailoauth-agent.socket holds it."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(address(name))
    s.listen(128)
    return s


def in_child(uid, gid, fn, *args):
    """fn(*args) in a forked child running as uid:gid (needs root); its
    JSON-able result, or {"exception": ...}.  Returns (pid, reader): call
    collect(reader, pid) for the result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            out = fn(*args)
        except BaseException as e:  # report, never return into unittest
            out = {"exception": repr(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    return pid, r


def collect(reader, pid):
    data = b""
    while True:
        chunk = os.read(reader, 65536)
        if not chunk:
            break
        data += chunk
    os.close(reader)
    os.waitpid(pid, 0)
    return json.loads(data)


class ForkedProc:
    """The part of subprocess.Popen the tests use, for a process started
    with os.fork() and os.execve()."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 3600)
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired([str(self.pid)], timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, sig):
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self):
        self.send_signal(signal.SIGKILL)


class Agent:
    """A `mailoauth agent --foreground` of one test, stderr to a file."""

    def __init__(self, case, name, args=(), env=None, activated=None, listen_pid=None):
        """activated: a listening socket handed over as systemd does (fd 3,
        LISTEN_FDS=1, LISTEN_PID the agent's pid, or listen_pid)."""
        case.agent_count += 1
        self.name = name
        self.log_path = os.path.join(case.tmp, "agent-%d.log" % case.agent_count)
        argv = [MAILOAUTH, *args, "agent", "--foreground", "--socket", name]
        with open(self.log_path, "w") as log:
            if activated is None:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                    env=case.env(env))
                return
            environ = case.env(env)
            pid = os.fork()
            if pid == 0:
                try:
                    null = os.open(os.devnull, os.O_RDWR)
                    os.dup2(null, 0)
                    os.dup2(null, 1)
                    os.dup2(log.fileno(), 2)
                    os.dup2(activated.fileno(), 3)     # inheritable, as systemd passes it
                    os.set_inheritable(3, True)   # dup2 onto itself keeps close-on-exec
                    environ["LISTEN_FDS"] = "1"
                    environ["LISTEN_PID"] = str(listen_pid or os.getpid())
                    environ["LISTEN_FDNAMES"] = "mailoauth-agent.socket"
                    os.execve(MAILOAUTH, argv, environ)
                finally:
                    os._exit(127)
            self.proc = ForkedProc(pid)

    def log(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout=10):
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError("agent exited with %d: %s" % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                raise AssertionError("agent not ready: " + self.log())
            time.sleep(0.02)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


class AgentTestCase(HelperTestCase):
    idp_options = {"interval": 1, "access_lifetime": 3600}

    def setUp(self):
        super().setUp()
        self.use_class_login()
        self.agent_count = 0
        self.agents = []
        self.idp.set_access_lifetime(3600)

    def tearDown(self):
        for a in self.agents:
            if a.proc.poll() is None:
                a.proc.kill()
                a.proc.wait(timeout=10)
            captured_output.append(("agent", a.log()))

    def agent(self, name=None, args=(), env=None, ready=True, **kw):
        a = Agent(self, name or unique_abstract(), args, env, **kw)
        self.agents.append(a)
        return a.wait_ready() if ready else a

    def fs_socket(self):
        return os.path.join(self.tmp, "agent.sock")

    def ask_as(self, uid, gid, name, **kw):
        """ask() from a forked child running as uid:gid (needs root)."""
        def one():
            out = ask(name, **kw)
            out.pop("raw_end", None)
            return out
        pid, reader = in_child(uid, gid, one)
        return collect(reader, pid)

    def refreshes(self):
        return self.idp.counters().get("grant:refresh_token", 0)


class Serving(AgentTestCase):
    def check_token_reply(self, r):
        rec = self.record()
        self.assertEqual(r["status"], 0, r.get("error_description"))
        self.assertEqual(r["access_token"], rec["access_token"])
        self.assertEqual(r["user"], ACCOUNT)
        self.assertGreater(int(r["expires_at"]), time.time() + 3000)
        self.assertEqual(r["raw_end"], b"\n\n")

    def test_filesystem_socket(self):
        a = self.agent(self.fs_socket())
        self.assertEqual(os.stat(self.fs_socket()).st_mode & 0o777, 0o666)
        for _ in range(3):
            self.check_token_reply(ask(a.name))
        self.assertEqual(self.refreshes(), 0)
        self.assertIn("listening on " + self.fs_socket(), a.log())

    def test_abstract_socket(self):
        a = self.agent()
        self.check_token_reply(ask(a.name))
        self.assertFalse(os.path.exists(a.name))

    def test_socket_from_config(self):
        name = unique_abstract()
        self.write_config("http_timeout = 5\nagent_socket = %s\n" % name)
        # Without --socket, agent_socket from mailoauth.conf is used.
        log_path = os.path.join(self.tmp, "agent-config.log")
        with open(log_path, "w") as log:
            proc = subprocess.Popen([MAILOAUTH, "agent", "--foreground"], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=log, env=self.env())
        try:
            deadline = time.monotonic() + 10
            while "listening on" not in open(log_path).read():
                self.assertIsNone(proc.poll(), open(log_path).read())
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            self.check_token_reply(ask(name))
        finally:
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(timeout=15), 0)
            captured_output.append(("agent", open(log_path).read()))

    def test_force_refresh(self):
        a = self.agent()
        first = ask(a.name)
        r = ask(a.name, force=True)
        self.assertEqual(r["status"], 0, r)
        self.assertNotEqual(r["access_token"], first["access_token"])
        self.assertEqual(r["access_token"], self.record()["access_token"])
        self.assertEqual(self.refreshes(), 1)
        self.assertIn("refreshed the access token of " + ACCOUNT, a.log())

    def test_forced_refresh_is_rate_limited(self):
        # A caller that calls every token refused (force_refresh=1 in a
        # loop) gets one refresh per 30 s (kMinForcedRefreshInterval), not
        # one per request; the log says so once.
        a = self.agent()
        stored = self.record()["access_token"]
        first = ask(a.name, force=True)
        self.assertEqual(first["status"], 0, first)
        self.assertNotEqual(first["access_token"], stored)
        self.assertEqual(self.refreshes(), 1)           # the premise: force refreshes
        for _ in range(10):
            r = ask(a.name, force=True)
            self.assertEqual(r["status"], 0, r)
            self.assertEqual(r["access_token"], first["access_token"])
        self.assertEqual(self.refreshes(), 1)
        self.assertEqual(self.idp.counters().get("grant:refresh_token", 0), 1)
        warned = [line for line in a.log().splitlines() if "forced refresh not done" in line]
        self.assertEqual(len(warned), 1, a.log())
        self.assertRegex(warned[0], r"%s: forced refresh not done: the token was refreshed \d+ s ago "
                                    r"\(less than 30 s\)" % re.escape(ACCOUNT))

    def test_bad_requests(self):
        a = self.agent()
        cases = [
            ("garbage\n\n", 65, "bad_request"),
            ("version=2\naccount=%s\n\n" % ACCOUNT, 65, "unsupported_version"),
            ("version=1\n\n", 65, "bad_request"),
            ("account=../etc/passwd\n\n", 65, "bad_request"),
            ("account=a\naccount=b\n\n", 65, "bad_request"),
            ("account=nobody@example.com\n\n", 77, "not_logged_in"),
            ("x=" + "y" * 70000 + "\n\n", 65, "bad_request"),
        ]
        for raw, status, error in cases:
            with self.subTest(raw=raw[:40]):
                r = ask(a.name, raw=raw)
                self.assertEqual(r["status"], status, r)
                self.assertEqual(r["error"], error)
                self.assertTrue(r["error_description"])
        # The agent is still serving.
        self.assertEqual(ask(a.name)["status"], 0)

    def test_incomplete_request_times_out(self):
        a = self.agent()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(address(a.name))
        s.sendall(b"version=1\naccount=" + ACCOUNT.encode() + b"\n")   # no blank line
        t0 = time.monotonic()
        data = s.recv(65536)
        s.close()
        self.assertIn(b"status=65\n", data)
        # A short deadline (2 s): a caller that dawdles holds a thread.
        self.assertLess(time.monotonic() - t0, 4)

    def test_request_in_pieces_is_served(self):
        # The accept loop answers a whole request for a cached token itself;
        # the first piece of a request still arriving goes to a worker with
        # the connection, which reads the rest.  Both halves count: a piece
        # lost between them would leave an unparsable request.
        a = self.agent()
        self.assertEqual(ask(a.name)["status"], 0)   # cached
        text = request_text(ACCOUNT, False).encode()
        for cut in (1, len(text) // 2, len(text) - 1):
            with self.subTest(cut=cut):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(20)
                s.connect(address(a.name))
                s.sendall(text[:cut])
                time.sleep(0.2)                       # accepted and looked at by now
                s.sendall(text[cut:])
                data = read_to_end(s)
                s.close()
                self.assertIn(b"status=0\n", data)
                self.assertIn(b"access_token=", data)

    def test_revoked_login_is_status_77(self):
        a = self.agent()
        self.idp.revoke_refresh_tokens(ACCOUNT)
        r = ask(a.name, force=True)
        self.assertEqual(r["status"], 77, r)
        self.assertEqual(r["error"], "invalid_grant")
        self.assertIn("mailoauth login " + ACCOUNT, r["error_description"])
        self.assertNotIn("access_token", r)

    def test_logout_is_seen_at_once(self):
        a = self.agent()
        self.assertEqual(ask(a.name)["status"], 0)
        self.assertEqual(self.mailoauth("logout", ACCOUNT).rc, 0)
        r = ask(a.name)
        self.assertEqual(r["status"], 77, r)   # not the cached token

    def test_second_agent_on_same_name_refuses(self):
        for name in (self.fs_socket(), unique_abstract()):
            with self.subTest(name=name):
                first = self.agent(name)
                second = self.agent(name, ready=False)
                self.assertEqual(second.proc.wait(timeout=10), 75, second.log())
                self.assertRegex(second.log(), "already (running|listens)")
                self.assertEqual(ask(name)["status"], 0)
                self.assertEqual(first.stop(), 0)

    def test_bad_socket_names(self):
        for name in ("relative/path", "@", "@" + "x" * 200, "@with space"):
            with self.subTest(name=name):
                a = self.agent(name, ready=False)
                self.assertEqual(a.proc.wait(timeout=10), 78, a.log())

    def test_detaches_without_foreground(self):
        name = unique_abstract()
        r = self.mailoauth("agent", "--socket", name, timeout=15)
        self.assertEqual(r.rc, 0, r)
        pid = peer_pid(name)
        try:
            self.assertNotEqual(os.getpgid(pid), os.getpgid(0))  # its own session
            self.assertEqual(ask(name)["status"], 0)
        finally:
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            self.fail("detached agent did not stop on SIGTERM")


class AccessControl(AgentTestCase):
    """The caller's SO_PEERCRED credentials against allow_users/allow_groups.
    Clients run as nobody in a forked child, so these need root; the
    abstract socket is reachable from any uid (a filesystem socket in the
    test's 0700 directory would not be)."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to run a client as nobody")
        super().setUp()

    def test_not_allowed_caller_is_refused_and_logged(self):
        self.write_config("http_timeout = 5\n[account %s]\nallow_users = postfix, 4242\n" % ACCOUNT)
        a = self.agent()
        r = self.ask_as(65534, 65534, a.name)
        self.assertNotIn("exception", r)
        self.assertEqual(r["status"], 78, r)
        self.assertEqual(r["error"], "forbidden")
        self.assertIn("not allowed by mailoauth.conf", r["error_description"])
        self.assertNotIn("access_token", r)
        # In no allow list at all: refused when the connection is accepted,
        # before the request is read.
        self.assertRegex(a.log(), r"refused uid 65534 \(nobody\) \(pid \d+\): in no allow_users or "
                                  r"allow_groups of %s" % re.escape(self.config))
        # Root is always allowed.
        self.assertEqual(ask(a.name)["status"], 0)

    def test_no_allow_list_allows_only_root(self):
        a = self.agent()
        self.assertIn("sets no allow_users or allow_groups", a.log())
        r = self.ask_as(65534, 65534, a.name)
        self.assertEqual(r["status"], 78, r)
        self.assertIn("refused uid 65534 (nobody)", a.log())

    def test_allowed_by_user_name_uid_or_group(self):
        for setting in ("allow_users = nobody", "allow_users = postfix 65534",
                        "allow_groups = nogroup", "allow_groups = 65534"):
            with self.subTest(setting=setting):
                # In the account section, and as a global default.
                for conf in ("http_timeout = 5\n[account %s]\n%s\n" % (ACCOUNT, setting),
                             "http_timeout = 5\n%s\n" % setting):
                    self.write_config(conf)
                    a = self.agent()
                    r = self.ask_as(65534, 65534, a.name)
                    self.assertEqual(r.get("status"), 0, r)
                    self.assertEqual(r["access_token"], self.record()["access_token"])
                    self.assertEqual(a.stop(), 0)

    def test_other_account_not_allowed(self):
        self.write_config("http_timeout = 5\n[account other@example.com]\nallow_users = nobody\n"
                          "[account %s]\nallow_users = postfix\n" % ACCOUNT)
        a = self.agent()
        self.assertEqual(self.ask_as(65534, 65534, a.name)["status"], 78)
        self.assertEqual(self.ask_as(65534, 65534, a.name, account="other@example.com")["status"], 77)
        # Admitted at accept time (another account lists it), refused for this one.
        self.assertRegex(a.log(), r"refused uid 65534 \(nobody\) \(pid \d+\) for account %s: "
                                  r"not in allow_users/allow_groups" % re.escape(ACCOUNT))

    def test_bad_allow_list_is_a_config_error(self):
        self.write_config("http_timeout = 5\n[account %s]\nallow_users = postfix, bad;name\n" % ACCOUNT)
        a = self.agent(ready=False)
        self.assertEqual(a.proc.wait(timeout=10), 78)
        self.assertIn(self.config + ":3:", a.log())

    def test_unknown_name_is_warned_about(self):
        self.write_config("http_timeout = 5\nallow_users = no-such-user-here\n")
        a = self.agent()
        self.assertIn("there is no user 'no-such-user-here'", a.log())

    def test_refused_flood_does_not_starve_allowed_caller(self):
        # nobody (in no allow list) keeps 300 connections open, each with a
        # partial request, reconnecting whenever the agent closes one; uid
        # 4242 (allow_users) meanwhile asks 50 times, 10 at a time.
        self.write_config("http_timeout = 5\n[account %s]\nallow_users = 4242\n" % ACCOUNT)
        a = self.agent()
        log_before = len(a.log().splitlines())
        go_r, go_w = os.pipe()        # the flood writes a byte once 300 are open
        stop_r, stop_w = os.pipe()    # closed by the test: the flood ends

        def flood():
            os.close(go_r)
            os.close(stop_w)
            conns, opened, closed_by_agent, replies = [], 0, 0, 0
            started = False
            while True:
                while len(conns) < 300:
                    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    c.connect(address(a.name))
                    c.setblocking(False)
                    try:
                        c.send(b"version=1\naccount=" + ACCOUNT.encode() + b"\n")   # no blank line
                    except OSError:
                        pass
                    conns.append(c)
                    opened += 1
                if not started:
                    os.write(go_w, b"x")
                    started = True
                readable, _, _ = select.select(conns + [stop_r], [], [], 0.05)
                if stop_r in readable:
                    break
                for c in readable:
                    try:
                        data = c.recv(65536)
                        while data:
                            replies += data.count(b"error=forbidden\n")
                            data = c.recv(65536)
                    except BlockingIOError:
                        continue
                    except OSError:
                        pass
                    closed_by_agent += 1
                    conns.remove(c)
                    c.close()
                time.sleep(0.005)
            return {"opened": opened, "closed_by_agent": closed_by_agent, "forbidden": replies,
                    "open_at_end": len(conns)}

        flood_pid, flood_reader = in_child(65534, 65534, flood)
        os.close(go_w)
        os.close(stop_r)
        try:
            self.assertEqual(os.read(go_r, 1), b"x", "the flood did not start")

            def allowed():
                results = [None] * 50

                def one(i):
                    try:
                        r = ask(a.name, timeout=30)
                        results[i] = (r["status"], r.get("access_token", ""), r["elapsed"])
                    except Exception as e:  # noqa: BLE001 - reported below
                        results[i] = (repr(e), "", 0)
                for batch in range(5):
                    threads = [threading.Thread(target=one, args=(batch * 10 + i,)) for i in range(10)]
                    for t in threads:
                        t.start()
                    for t in threads:
                        t.join(60)
                return results
            pid, reader = in_child(4242, 4242, allowed)
            results = collect(reader, pid)
        finally:
            os.close(stop_w)
            os.close(go_r)
            flood_result = collect(flood_reader, flood_pid)
        print("# flood as nobody: %s; allowed: slowest of 50 in %.2f s" % (
            flood_result, max(r[2] for r in results) if isinstance(results, list) else -1), flush=True)
        token = self.record()["access_token"]
        self.assertNotIn("exception", results if isinstance(results, dict) else {}, results)
        self.assertEqual([r for r in results if r[0] != 0 or r[1] != token], [], results[:3])
        self.assertLess(max(r[2] for r in results), 5.0)
        # The premise: more slow connections than the agent has slots
        # (256), refused at once and reopened all the time.
        self.assertNotIn("exception", flood_result, flood_result)
        self.assertGreaterEqual(flood_result["opened"], 300 + 300, flood_result)
        self.assertGreaterEqual(flood_result["closed_by_agent"], 300, flood_result)
        self.assertGreaterEqual(flood_result["forbidden"], 300, flood_result)
        # The log: at most one line a minute per uid for the refusals; the
        # whole flood may add at most 5 lines.
        added = a.log().splitlines()[log_before:]
        about_nobody = [line for line in added if "65534" in line]
        self.assertLessEqual(len(about_nobody), 1, "\n".join(added[:20]))
        self.assertGreaterEqual(len(about_nobody), 1, "no refusal logged")
        self.assertLessEqual(len(added), 5, "\n".join(added[:20]))

    def test_connections_per_uid_are_capped(self):
        # An allowed uid may hold 128 connections at once (kMaxConnectionsPerUid);
        # the next that needs a worker gets "busy" at once, and root is still
        # served.  (A request the accept loop can answer from the agent's
        # cache needs no worker and is answered even then, when it arrived
        # before the accept; a forced refresh always needs a worker.)
        self.write_config("http_timeout = 5\n[account %s]\nallow_users = 4242\n" % ACCOUNT)
        a = self.agent()
        self.assertEqual(ask(a.name)["status"], 0)   # the token is in the agent's cache

        def hog():
            conns = []
            for _ in range(128):
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(address(a.name))
                c.sendall(b"version=1\n")      # partial: held until the read deadline
                conns.append(c)
            time.sleep(0.3)                     # all accepted and in threads
            t0 = time.monotonic()
            extra = ask(a.name, force=True)
            extra.pop("raw_end", None)
            extra["elapsed"] = time.monotonic() - t0
            for c in conns:
                c.close()
            return extra
        pid, reader = in_child(4242, 4242, hog)
        root_reply = ask(a.name)
        extra = collect(reader, pid)
        self.assertEqual(root_reply["status"], 0, root_reply)
        self.assertEqual(extra.get("status"), 75, extra)
        self.assertEqual(extra["error"], "busy")
        self.assertIn("128 requests of uid 4242", extra["error_description"])
        self.assertLess(extra["elapsed"], 1.5)
        # Once they are gone, uid 4242 is served again.
        self.assertEqual(self.ask_as(4242, 4242, a.name)["status"], 0)

    def test_squatter_is_named(self):
        # nobody takes the abstract name first (listening, or merely bound):
        # the agent cannot start, and says who holds the name.
        for listens in (True, False):
            with self.subTest(listens=listens):
                name = unique_abstract()
                ready_r, ready_w = os.pipe()
                stop_r, stop_w = os.pipe()

                def squat():
                    os.close(ready_r)
                    os.close(stop_w)
                    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    s.bind(address(name))
                    if listens:
                        s.listen(5)
                    os.write(ready_w, b"x")
                    os.read(stop_r, 1)
                    return {"pid": os.getpid()}
                pid, reader = in_child(65534, 65534, squat)
                os.close(ready_w)
                os.close(stop_r)
                try:
                    self.assertEqual(os.read(ready_r, 1), b"x")
                    a = self.agent(name, ready=False)
                    self.assertEqual(a.proc.wait(timeout=10), 75, a.log())
                finally:
                    os.close(stop_w)
                    os.close(ready_r)
                    collect(reader, pid)
                self.assertIn("already listens on " + name, a.log())
                if listens:
                    self.assertIn("uid 65534 (nobody), pid %d;" % pid, a.log())
                else:
                    self.assertIn("a process that does not accept connections", a.log())
                self.assertIn("mailoauth-agent.socket", a.log())


class SocketActivation(AgentTestCase):
    """The listening socket passed as systemd's mailoauth-agent.socket does:
    bound by another process (here, the test) before the agent starts, fd
    3, LISTEN_FDS=1, LISTEN_PID=<the agent's pid>."""

    def test_serves_on_the_passed_socket(self):
        name = unique_abstract()
        held = listening_socket(name)
        self.addCleanup(held.close)
        a = self.agent(name, activated=held)
        self.assertIn("listening on %s (socket from systemd)" % name, a.log())
        r = ask(name)
        self.assertEqual(r["status"], 0, r)
        self.assertEqual(r["access_token"], self.record()["access_token"])
        # The agent listened again, so callers see its pid and uid, not
        # those of whoever bound the socket (systemd, or this test).
        pid, uid, _ = peer_cred(name)
        self.assertEqual(pid, a.proc.pid)
        self.assertEqual(uid, os.geteuid())
        # Nobody else can take the name while it is held.
        squatter = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.assertRaises(OSError) as e:
            squatter.bind(address(name))
        squatter.close()
        self.assertEqual(e.exception.errno, errno.EADDRINUSE)
        # The variables are not passed on, and the socket stays after SIGTERM.
        self.assertEqual(a.stop(), 0)
        self.assertIn("stopped", a.log())
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(address(name))          # queues on the socket still held
        c.close()

    def test_restart_on_the_held_socket_loses_no_request(self):
        name = unique_abstract()
        held = listening_socket(name)
        self.addCleanup(held.close)
        agent = self.agent(name, activated=held)
        stop = threading.Event()
        answered, failed = [], []
        lock = threading.Lock()

        def client():
            while not stop.is_set():
                try:
                    r = ask(name, timeout=30)
                except Exception as e:  # noqa: BLE001 - reported below
                    with lock:
                        failed.append(repr(e))
                    continue
                with lock:
                    (answered if r["status"] == 0 else failed).append(r["status"])

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        restarts = 0
        try:
            for _ in range(3):
                time.sleep(0.7)
                with lock:
                    before = len(answered)
                self.assertEqual(agent.stop(), 0, agent.log())
                time.sleep(0.3)          # nobody accepts: requests queue
                agent = self.agent(name, activated=held)
                restarts += 1
                with lock:
                    self.assertGreater(len(answered), before)
            time.sleep(0.7)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(restarts, 3)
        self.assertEqual(failed, [])
        self.assertGreater(len(answered), 20)
        self.assertEqual(agent.stop(), 0)

    def test_variables_for_another_process_are_ignored(self):
        # LISTEN_PID names another process: the agent binds the name itself,
        # which the held socket (bound and listened by this test) blocks.
        name = unique_abstract()
        held = listening_socket(name)
        self.addCleanup(held.close)
        a = self.agent(name, activated=held, listen_pid=1, ready=False)
        self.assertEqual(a.proc.wait(timeout=10), 75, a.log())
        self.assertIn("already listens on %s: uid %d (%s), pid %d;" % (
            name, os.geteuid(), pwd.getpwuid(os.geteuid()).pw_name, os.getpid()), a.log())

    def test_passed_socket_that_does_not_listen_is_refused(self):
        name = unique_abstract()
        bound = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        bound.bind(address(name))
        self.addCleanup(bound.close)
        a = self.agent(name, activated=bound, ready=False)
        self.assertEqual(a.proc.wait(timeout=10), 78, a.log())
        self.assertIn("is not a listening Unix stream socket", a.log())

    def test_passed_socket_with_another_name_is_warned_about(self):
        held_name = unique_abstract()
        held = listening_socket(held_name)
        self.addCleanup(held.close)
        a = self.agent(unique_abstract(), activated=held)
        self.assertIn("systemd passed the socket %s, but --socket names %s" % (held_name, a.name), a.log())
        self.assertEqual(ask(held_name)["status"], 0)


class Load(AgentTestCase):
    def expire_stored_token(self):
        self.idp.set_access_lifetime(1)
        self.assertEqual(self.mailoauth("token", ACCOUNT, "--force-refresh").rc, 0)
        self.idp.set_access_lifetime(3600)
        self.wait_until_expired()
        self.idp.reset_counters()

    def test_200_concurrent_requests_refresh_once(self):
        a = self.agent()
        self.expire_stored_token()
        n = 200
        barrier = threading.Barrier(n)
        results = [None] * n

        def client(i):
            barrier.wait()
            try:
                results[i] = ask(a.name, timeout=60)
            except Exception as e:  # noqa: BLE001 - reported below
                results[i] = {"status": repr(e)}

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        bad = [r for r in results if r is None or r["status"] != 0]
        self.assertEqual(bad, [], "%d of %d failed, e.g. %r" % (len(bad), n, bad[:1]))
        self.assertEqual(self.refreshes(), 1)
        tokens = {r["access_token"] for r in results}
        self.assertEqual(len(tokens), 1)
        token = tokens.pop()
        self.assertEqual(token, self.record()["access_token"])
        self.assertTrue(self.idp.valid_access_token(token))

    def test_slow_refresh_serves_still_valid_token_meanwhile(self):
        # Every token is inside this margin one second after it was issued,
        # and valid for an hour.
        self.write_config("http_timeout = 10\nrefresh_margin = 3599\n")
        a = self.agent()
        # Only the store's token can be inside the margin here: the helper
        # and the agent's cache clamp a margin to a third of the token's
        # lifetime, which a record without one (as below) escapes, while a
        # token the agent fetched itself keeps its lifetime and would only
        # be inside after 40 minutes.  BrokerTest serves a cached token
        # inside the margin during a refresh with a fake clock.
        for phase in ("from the store",):
            with self.subTest(phase=phase):
                # The stored token is inside the margin once a second of
                # its hour has passed (the helper counts whole seconds).
                expires_at = int(self.record()["access_expires_at"])
                time.sleep(max(0.0, expires_at - 3599 + 0.1 - time.time()))
                self.forget_token_lifetime()
                old = self.record()["access_token"]
                self.idp.fault("token", "delay", count=1, seconds=3)
                first = {}
                t = threading.Thread(target=lambda: first.update(ask(a.name)))
                t.start()
                time.sleep(0.5)           # the refresh is in flight
                for _ in range(10):
                    r = ask(a.name)
                    self.assertEqual(r["status"], 0, r)
                    self.assertEqual(r["access_token"], old)
                    self.assertLess(r["elapsed"], 1.0)
                t.join(30)
                self.assertEqual(first["status"], 0, first)
                self.assertNotEqual(first["access_token"], old)
                self.assertGreater(first["elapsed"], 2.0)
                self.assertEqual(self.refreshes(), 1)
                self.idp.reset_counters()

    def test_failures_are_shared_and_not_repeated(self):
        # The identity provider is down; the stored token has expired.
        a = self.agent()
        self.expire_stored_token()
        self.idp.fault("token", "status", count=100, status=503)
        n = 20
        results = [None] * n

        def client(i):
            results[i] = ask(a.name)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertEqual({r["status"] for r in results}, {75})
        # One attempt, then a pause before the next (requests within it get
        # the same answer).
        self.assertEqual(self.refreshes(), 1)
        self.assertEqual(ask(a.name)["status"], 75)
        self.assertEqual(self.refreshes(), 1)
        self.idp.clear_faults()
        # A forced request does not wait for the pause.
        self.assertEqual(ask(a.name, force=True)["status"], 0)


class Lifecycle(AgentTestCase):
    def test_sigterm_clean_exit_removes_socket(self):
        a = self.agent(self.fs_socket())
        self.assertEqual(ask(a.name)["status"], 0)
        self.assertEqual(a.stop(), 0)
        self.assertFalse(os.path.exists(self.fs_socket()))
        self.assertIn("stopping (SIGTERM)", a.log())
        self.assertIn("stopped", a.log())

    def test_sigterm_finishes_request_in_flight(self):
        a = self.agent(self.fs_socket())
        self.idp.fault("token", "delay", count=1, seconds=2)
        result = {}
        t = threading.Thread(target=lambda: result.update(ask(a.name, force=True)))
        t.start()
        time.sleep(0.5)
        a.proc.send_signal(signal.SIGTERM)
        t.join(30)
        self.assertEqual(a.proc.wait(timeout=15), 0)
        self.assertEqual(result["status"], 0, result)
        self.assertEqual(result["access_token"], self.record()["access_token"])
        # Gone at once: the name was removed before the request finished.
        self.assertFalse(os.path.exists(self.fs_socket()))

    def test_kill_9_leaves_no_socket_that_blocks_the_next_start(self):
        a = self.agent(self.fs_socket())
        self.assertEqual(a.stop(signal.SIGKILL), -signal.SIGKILL)
        self.assertTrue(os.path.exists(self.fs_socket()))   # left behind ...
        with self.assertRaises(ConnectionRefusedError):
            ask(self.fs_socket())
        b = self.agent(self.fs_socket())                      # ... and no obstacle
        self.assertIn("removed the stale socket", b.log())
        self.assertEqual(ask(b.name)["status"], 0)

    def test_kill_9_abstract(self):
        a = self.agent()
        a.stop(signal.SIGKILL)
        b = self.agent(a.name)
        self.assertEqual(ask(b.name)["status"], 0)

    def test_restart_while_clients_connect_filesystem(self):
        self.restart_under_load(self.fs_socket())

    def test_restart_while_clients_connect_abstract(self):
        self.restart_under_load(unique_abstract())

    def restart_under_load(self, name):
        agent = self.agent(name)
        stop = threading.Event()
        ok = []
        clean = []        # clean refusals: no socket, refused, status 75, closed
        unexpected = []
        lock = threading.Lock()

        def client(force_every):
            n = 0
            while not stop.is_set():
                n += 1
                force = bool(force_every) and n % force_every == 0
                while not stop.is_set():
                    try:
                        r = ask(name, force=force, timeout=30)
                    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError,
                            BrokenPipeError) as e:
                        # The plugin reports each of these as "try again".
                        with lock:
                            clean.append(type(e).__name__)
                        time.sleep(0.02)
                        continue
                    except Exception as e:  # noqa: BLE001 - reported below
                        with lock:
                            unexpected.append(repr(e))
                        break
                    with lock:
                        if r["status"] == 0:
                            ok.append(r["access_token"])
                            break
                        if r["status"] in (75, ""):
                            clean.append(r["status"])
                            time.sleep(0.02)
                            continue
                        unexpected.append(r)
                    break

        threads = [threading.Thread(target=client, args=(3 if i == 0 else 0,)) for i in range(8)]
        for t in threads:
            t.start()
        try:
            for _ in range(3):
                time.sleep(0.7)
                self.assertEqual(agent.stop(), 0, agent.log())
                agent = self.agent(name)
            time.sleep(0.7)
        finally:
            stop.set()
            for t in threads:
                t.join(60)
        self.assertEqual(unexpected, [])
        self.assertGreater(len(ok), 20, "clean refusals: %r" % clean[:20])
        # No token was lost: the store is whole and its refresh token works.
        self.assertEqual([f for f in os.listdir(self.store) if ".tmp" in f], [])
        self.assertEqual(self.mailoauth("token", ACCOUNT, "--force-refresh").rc, 0)
        self.assertEqual(ask(name)["status"], 0)
        self.assertEqual(agent.stop(), 0)


class PluginUsesAgent(AgentTestCase):
    """libmailoauth.so with agent_socket in mailoauth.conf, through
    tests/plugin/sasl-driver and the real libsasl2: no helper is run."""

    def setUp(self):
        plugin_dir = os.path.join(os.environ.get("top_srcdir", "."), "tests", "plugin")
        if plugin_dir not in sys.path:
            sys.path.insert(0, plugin_dir)
        import pluginlib
        if not os.path.exists(pluginlib.DRIVER):
            self.skipTest("tests/plugin/sasl-driver is not built")
        self.pluginlib = pluginlib
        super().setUp()

    def driver(self, config, actions):
        s = self.pluginlib.Scenario(config=config, helper_name=None,
                                    env={"MAILOAUTH_HELPER": "/nonexistent/mailoauth"})
        self.addCleanup(s.cleanup)
        res = s.run(actions, authname=ACCOUNT, service="smtp", host="smtp.office365.com",
                    remote="192.0.2.1;587")
        self.assertEqual(res[0]["rc"], "SASL_OK")
        return res[1:]

    def test_xoauth2_token_from_agent(self):
        a = self.agent()
        [start] = self.driver("agent_socket = %s\n" % a.name, ["start:XOAUTH2"])
        self.assertEqual(start["rc"], "SASL_OK", start)
        token = self.record()["access_token"]
        self.assertEqual(start["bytes"],
                         b"user=" + ACCOUNT.encode() + b"\x01auth=Bearer " + token.encode() + b"\x01\x01")

    def test_agent_not_running_is_try_again(self):
        [start] = self.driver("agent_socket = %s\n" % unique_abstract(), ["start:XOAUTH2"])
        self.assertEqual(start["rc"], "SASL_TRYAGAIN", start)
        self.assertIn("is not running", start["detail"])

    def test_agent_of_own_user_is_trusted_whatever_agent_user_says(self):
        # The agent runs as the program's own user (a personal agent);
        # agent_user names another.  Listeners that are not trusted are
        # refused in tests/plugin/test_agent_trust.py.
        a = self.agent()
        other = "1" if os.geteuid() != 1 else "2"
        [start] = self.driver("agent_socket = %s\nagent_user = %s\n" % (a.name, other), ["start:XOAUTH2"])
        self.assertEqual(start["rc"], "SASL_OK", start)


if __name__ == "__main__":
    tap.main()
