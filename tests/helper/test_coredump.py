"""No secrets in core dumps (issue 9, item 5).

`mailoauth` turns itself non-dumpable (prctl PR_SET_DUMPABLE 0) and sets
RLIMIT_CORE to 0 before it parses its arguments.  Here it runs with
`ulimit -c unlimited` set by the test, as an unprivileged user (nobody when
the test runs as root, else the test's own user), and gets SIGQUIT in the
middle of a refresh, with the refresh token in memory.  The test checks:

* the kernel's own view of the process: /proc/PID/* of a non-dumpable
  process belong to root (not to the process's user), and
  /proc/PID/limits shows a core size limit of 0;
* the wait status of the killed process has no "core dumped" bit, and no
  core file appeared in its working directory.

/proc/sys/kernel/core_pattern is machine-wide and is left alone.  A control
process (sleep, same user, same limit, same directory) shows that cores are
possible here: its /proc files are its user's, and SIGQUIT dumps its core.
When core_pattern is a plain file name, the control's core must appear in
the directory; when it pipes to a program (systemd-coredump, apport), the
core goes there, and the test relies on the wait status and /proc checks,
which do not depend on where cores go.  The verbs `get` (what the plugin
runs) and `agent` are checked the same way."""
import os
import pwd
import resource
import shutil
import signal
import subprocess
import time

import tap
from helperlib import ACCOUNT, MAILOAUTH, HelperTestCase, ZzNoSecretsInOutput  # noqa: F401

CORE_PATTERN = open("/proc/sys/kernel/core_pattern").read().strip()
PIPED = CORE_PATTERN.startswith("|")


def run_as():
    """The unprivileged user the processes under test run as: (uid, gid)."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def unlimited_cores_as(uid, gid):
    """preexec_fn: `ulimit -c unlimited` (as far as the hard limit allows),
    then become uid:gid; exec then makes the process dumpable again."""
    def setup():
        # A shell runs background jobs with SIGQUIT ignored (POSIX), and a
        # test run started that way would hand that on: SIGQUIT must do
        # what it does by default, dump a core.
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)
        try:
            resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        except (ValueError, OSError):
            hard = resource.getrlimit(resource.RLIMIT_CORE)[1]
            resource.setrlimit(resource.RLIMIT_CORE, (hard, hard))
        if os.getuid() != uid:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
    return setup


def proc_owner(pid):
    return os.stat("/proc/%d/environ" % pid).st_uid


def proc_uid(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Uid:"):
                return int(line.split()[1])
    raise AssertionError("no Uid in /proc/%d/status" % pid)


def waiting(pid, comm):
    """Whether pid runs the program comm and sleeps (waits for input or
    connections): past its start-up, where the dumpable flag is set."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except FileNotFoundError:
        return True  # exited: the caller's poll() says so
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    state = stat[stat.rindex(")") + 2]
    return name == comm and state == "S"


def core_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]
    raise AssertionError("no core limit in /proc/%d/limits" % pid)


def wait_status(proc, timeout=30):
    """Reaps proc ourselves: Popen does not tell whether a core was dumped.
    A process that does not end in time is killed and the test fails."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status = os.waitpid(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            break
        if time.monotonic() > deadline:
            proc.kill()
            os.waitpid(proc.pid, 0)
            proc.returncode = -9
            raise AssertionError("process %d did not end within %d s" % (proc.pid, timeout))
        time.sleep(0.02)
    proc.returncode = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return status


class NoCoreDumps(HelperTestCase):
    idp_options = {"interval": 1, "access_lifetime": 3600}

    def setUp(self):
        super().setUp()
        self.use_class_login()
        self.idp.set_access_lifetime(3600)
        self.uid, self.gid = run_as()
        self.assertNotEqual(self.uid, 0, "the processes under test must not run as root")
        # The unprivileged user needs to reach the store, the CA file and the
        # configuration; the store and the core directory must be its own.
        for d in (self.workdir, self.tmp):
            os.chmod(d, 0o711)
        ca = os.path.join(self.tmp, "ca.pem")
        shutil.copy(self.idp.ca_file, ca)
        os.chmod(ca, 0o644)
        os.chmod(self.config, 0o644)
        self.edit_record(ca_file=ca)
        self.cores = os.path.join(self.tmp, "cores")
        os.mkdir(self.cores, 0o700)
        for path in [self.store, self.cores] + [os.path.join(self.store, f) for f in os.listdir(self.store)]:
            os.chown(path, self.uid, self.gid)

    def start(self, args, stdin=subprocess.DEVNULL):
        out = open(os.path.join(self.tmp, "out-%d" % len(os.listdir(self.tmp))), "w+")
        self.addCleanup(out.close)
        p = subprocess.Popen(args, stdin=stdin, stdout=out, stderr=out, cwd=self.cores, env=self.env(),
                             preexec_fn=unlimited_cores_as(self.uid, self.gid))
        self.addCleanup(self.reap, p)
        p.output = out
        return p

    def reap(self, p):
        if p.returncode is None and p.poll() is None:
            p.kill()
            p.wait(timeout=10)

    def wait_until(self, what, cond, timeout=15):
        deadline = time.monotonic() + timeout
        while not cond():
            self.assertLess(time.monotonic(), deadline, "timed out waiting until " + what)
            time.sleep(0.02)

    def assert_not_dumpable(self, p):
        self.assertEqual(proc_uid(p.pid), self.uid)
        self.assertEqual(proc_owner(p.pid), 0, "/proc/PID of the helper is its user's: it is dumpable")
        self.assertEqual(core_limit(p.pid), ["0", "0"])

    def assert_quit_leaves_no_core(self, p):
        before = set(os.listdir(self.cores))
        p.send_signal(signal.SIGQUIT)
        status = wait_status(p)
        self.assertTrue(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGQUIT, status)
        self.assertFalse(os.WCOREDUMP(status), "the kernel dumped a core")
        self.assertEqual(set(os.listdir(self.cores)), before)

    def control_dumps_core(self):
        """The premise: a plain process of the same user, with the same
        limit and directory, is dumpable and does dump a core on SIGQUIT."""
        p = self.start(["sleep", "60"])
        self.wait_until("sleep runs", lambda: waiting(p.pid, "sleep"))
        self.assertEqual(proc_uid(p.pid), self.uid)
        self.assertEqual(proc_owner(p.pid), self.uid, "the control is not dumpable")
        self.assertNotEqual(core_limit(p.pid)[0], "0", "ulimit -c is 0 for the control")
        before = set(os.listdir(self.cores))
        p.send_signal(signal.SIGQUIT)
        status = wait_status(p)
        self.assertTrue(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGQUIT, status)
        new = set(os.listdir(self.cores)) - before
        if PIPED:
            print("# core_pattern pipes to a program (%s): the control's core went there "
                  "(core dumped: %s); relying on the wait status and /proc" % (CORE_PATTERN, bool(os.WCOREDUMP(status))),
                  flush=True)
            return
        self.assertTrue(os.WCOREDUMP(status), "the control dumped no core with core_pattern %r" % CORE_PATTERN)
        if "/" not in CORE_PATTERN:
            self.assertTrue(new, "the control's core is not in its directory (core_pattern %r)" % CORE_PATTERN)
        for f in new:
            os.unlink(os.path.join(self.cores, f))

    def test_sigquit_during_refresh_dumps_no_core(self):
        self.control_dumps_core()
        before = self.record()
        self.idp.fault("token", "delay", count=1, seconds=20)
        p = self.start([MAILOAUTH, "token", ACCOUNT, "--force-refresh"])
        # The refresh request has arrived: the helper holds the refresh token.
        self.wait_until("the refresh is in flight",
                        lambda: self.idp.counters().get("grant:refresh_token", 0) >= 1 or p.poll() is not None)
        self.assertIsNone(p.poll(), "mailoauth token ended early")
        self.assert_not_dumpable(p)
        self.assert_quit_leaves_no_core(p)
        self.idp.clear_faults()
        self.assertEqual(self.record()["refresh_token"], before["refresh_token"])

    def test_refresh_as_unprivileged_user_saves_without_leftovers(self):
        # Not dumpable and not root, the helper still names its O_TMPFILE
        # record (with linkat AT_EMPTY_PATH, or through /proc/self/fd on
        # kernels before 6.10: tests/unit/test_store covers both).
        before = self.record()
        p = self.start([MAILOAUTH, "token", ACCOUNT, "--force-refresh"])
        self.assertEqual(wait_status(p), 0)
        p.output.seek(0)
        self.assertEqual(p.output.read(), self.record()["access_token"] + "\n")
        self.assertNotEqual(self.record()["refresh_token"], before["refresh_token"])
        self.assertEqual(os.stat(os.path.join(self.store, ACCOUNT)).st_uid, self.uid)
        self.assertEqual([f for f in os.listdir(self.store) if ".tmp." in f], [])

    def test_get_is_not_dumpable(self):
        # `get`, what the SASL plugin runs, waiting for its request.
        p = self.start([MAILOAUTH, "get"], stdin=subprocess.PIPE)
        self.addCleanup(p.stdin.close)
        self.wait_until("get waits for its request", lambda: waiting(p.pid, "mailoauth"))
        self.assertIsNone(p.poll(), "mailoauth get ended early")
        self.assert_not_dumpable(p)
        self.assert_quit_leaves_no_core(p)

    def test_agent_is_not_dumpable(self):
        p = self.start([MAILOAUTH, "agent", "--foreground", "--socket", "@mailoauth-test-core-%d" % os.getpid()])
        self.wait_until("the agent waits for callers", lambda: waiting(p.pid, "mailoauth"))
        self.assertIsNone(p.poll(), "the agent ended early")
        self.assert_not_dumpable(p)
        self.assert_quit_leaves_no_core(p)


if __name__ == "__main__":
    tap.main()
