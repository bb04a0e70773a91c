"""Whom the plugin's agent source trusts with a request (mailoauth-plugin(8),
SECURITY): root, agent_user, the user "mailoauth" when it exists, and the
plugin's own effective uid, never anyone else, whether or not agent_user is
set.  Anyone can bind an abstract socket name first; a listener that is not
trusted receives not one byte, and the refusal names its uid and pid.

The listener is a fake agent in a forked child that takes on a uid of its
own; the plugin runs in tests/plugin/sasl-driver as another (nobody).  Both
need root to switch users; without root only the personal-agent cases run
(listener and plugin as the current user)."""
import hashlib
import json
import os
import pwd
import select
import shutil
import socket
import tempfile
import time
import unittest

import tap
from pluginlib import Scenario, step

IS_ROOT = os.geteuid() == 0
ACCOUNT = "alice@example.com"
STRANGER_UID = 65532   # no passwd entry: neither root, mailoauth, nor agent_user
_counter = [0]


def unique_abstract():
    _counter[0] += 1
    return "@mailoauth-trust-%d-%d" % (os.getpid(), _counter[0])


def mailoauth_uid():
    try:
        return pwd.getpwnam("mailoauth").pw_uid
    except KeyError:
        return None


class FakeAgent:
    """Binds NAME as (uid, gid), accepts up to `connections` connections,
    records what each sent and answers with a fresh token.  Runs in a forked
    child so that it can hold another uid than the test."""

    def __init__(self, name, uid, gid, connections=1):
        self.name = name
        self.tokens = ["ya29.FAKE-AGENT-%d-%s" % (i, os.urandom(12).hex()) for i in range(connections)]
        r, w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                os.close(r)
                if (uid, gid) != (os.geteuid(), os.getegid()):
                    os.setgroups([])
                    os.setgid(gid)
                    os.setuid(uid)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.bind("\0" + name[1:])
                s.listen(4)
                os.write(w, b"R")
                received = []
                s.settimeout(30)
                for token in self.tokens:
                    try:
                        c, _ = s.accept()
                    except socket.timeout:
                        break
                    c.settimeout(2)
                    data = b""
                    try:
                        while not data.endswith(b"\n\n"):
                            chunk = c.recv(4096)
                            if not chunk:
                                break
                            data += chunk
                    except socket.timeout:
                        pass
                    received.append(data.decode(errors="replace"))
                    if data:
                        c.sendall(("access_token=%s\nexpires_at=%d\nstatus=0\n\n" % (
                            token, int(time.time()) + 3600)).encode())
                    c.close()
                os.write(w, json.dumps(received).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        self.pipe = r
        ready, _, _ = select.select([r], [], [], 10)
        if not ready or os.read(r, 1) != b"R":
            raise AssertionError("the fake agent did not start")

    def finish(self):
        """What each connection sent, in order."""
        data = b""
        while True:
            ready, _, _ = select.select([self.pipe], [], [], 40)
            chunk = os.read(self.pipe, 65536) if ready else b""
            if not chunk:
                break
            data += chunk
        os.close(self.pipe)
        os.waitpid(self.pid, 0)
        return json.loads(data.decode()) if data else None

    def kill(self):
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class AgentTrust(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="agent-trust-")
        os.chmod(self.tmp, 0o777)
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.log = os.path.join(self.tmp, "sasl-log.txt")
        if IS_ROOT:
            nobody = pwd.getpwnam("nobody")
            self.plugin_ids = (nobody.pw_uid, nobody.pw_gid)
        else:
            self.plugin_ids = (os.getuid(), os.getgid())
        self.assertNotIn(STRANGER_UID, (0, mailoauth_uid(), self.plugin_ids[0]))

    def login(self, agent, config="", actions=("start:XOAUTH2",)):
        s = Scenario(config="agent_socket = %s\n%s" % (agent.name, config), helper_name=None,
                     env={"MAILOAUTH_HELPER": "/nonexistent/mailoauth"})
        self.addCleanup(s.cleanup)
        os.chmod(s.dir, 0o755)
        os.chmod(s.config, 0o644)
        res = s.run(list(actions), authname=ACCOUNT, service="smtp", host="smtp.office365.com",
                    remote="192.0.2.1;587", log_file=self.log, as_user=self.plugin_ids)
        self.assertEqual(res[0]["rc"], "SASL_OK")
        return res[1:]

    def agent(self, uid, gid, connections=1):
        a = FakeAgent(unique_abstract(), uid, gid, connections)
        self.addCleanup(a.kill)
        return a

    def assert_refused(self, agent, start, uid):
        received = agent.finish()
        self.assertEqual(start["rc"], "SASL_FAIL", start)
        # Not one byte went to the listener: it never learned the account.
        self.assertEqual(received, [""])
        self.assertIn("runs as uid %d" % uid, start["detail"])
        self.assertIn("(pid %d)" % agent.pid, start["detail"])
        self.assertIn("not trusted", start["detail"])
        logged = " ".join(start["logs"])
        self.assertIn("runs as uid %d" % uid, logged)
        self.assertIn("(pid %d)" % agent.pid, logged)

    def assert_served(self, agent, start):
        received = agent.finish()
        self.assertEqual(start["rc"], "SASL_OK", start)
        self.assertEqual(len(received), 1)
        self.assertIn("account=%s\n" % ACCOUNT, received[0])
        self.assertIn(("auth=Bearer " + agent.tokens[0]).encode(), start["bytes"])

    def need_root(self):
        if not IS_ROOT:
            self.skipTest("running the listener and the plugin as other users needs root")

    # Refused.

    def test_stranger_refused_without_agent_user(self):
        # No agent_user, and (on a machine without the package) no
        # mailoauth user: formerly "trust anyone".
        self.need_root()
        a = self.agent(STRANGER_UID, STRANGER_UID)
        [start] = self.login(a)
        self.assert_refused(a, start, STRANGER_UID)

    def test_stranger_refused_when_agent_user_names_another(self):
        self.need_root()
        a = self.agent(STRANGER_UID, STRANGER_UID)
        [start] = self.login(a, "agent_user = 1\n")  # daemon, by number: passwd may be unreadable
        self.assert_refused(a, start, STRANGER_UID)

    # Trusted.

    def test_agent_user_is_trusted(self):
        self.need_root()
        a = self.agent(STRANGER_UID, STRANGER_UID)
        [start] = self.login(a, "agent_user = %d\n" % STRANGER_UID)
        self.assert_served(a, start)

    def test_root_is_trusted(self):
        self.need_root()
        a = self.agent(0, 0)
        [start] = self.login(a, "agent_user = 1\n")  # daemon, by number: passwd may be unreadable
        self.assert_served(a, start)

    def test_own_uid_is_trusted_even_with_agent_user(self):
        # A personal agent, started by the same user as the program.
        a = self.agent(*self.plugin_ids)
        other = "1" if self.plugin_ids[0] != 1 else "2"
        [start] = self.login(a, "agent_user = %s\n" % other)
        self.assert_served(a, start)

    def test_refused_token_is_named_by_hash_only(self):
        a = self.agent(*self.plugin_ids, connections=2)
        start, reply = self.login(a, actions=["start:XOAUTH2", step(b'{"status":"401"}')])
        self.assertEqual(start["rc"], "SASL_OK")
        self.assertEqual(reply["rc"], "SASL_CONTINUE")
        first, second = a.finish()
        refused = a.tokens[0]
        self.assertNotIn("rejected", first)
        self.assertIn("force_refresh=1\nrejected=%s\n" % hashlib.sha256(refused.encode()).hexdigest()[:16],
                      second)
        # No piece of the token (beyond chance) went back to the listener.
        for i in range(len(refused) - 6):
            self.assertNotIn(refused[i:i + 6], second)


if __name__ == "__main__":
    tap.main()
