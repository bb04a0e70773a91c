"""systemd's socket activation of the installed agent, emulated: systemd is
not PID 1 in CI, so the tests do what it would do with the installed
mailoauth-agent.socket and mailoauth-agent.service.

  * SocketUnit binds and listens on the unit's ListenStream= as root (as
    systemd does when sockets.target is reached) and holds the socket
    until close(), across any number of agent processes;
  * SocketUnit.start_service() starts the service's ExecStart= command line
    as its User=/Group= (setpriv, which execs, so the pid stays the one
    LISTEN_PID names), umask 077, in /, in a session of its own, with the
    socket as descriptor 3 and an environment of PATH, LISTEN_FDS=1,
    LISTEN_PID and LISTEN_FDNAMES only.

Used by test_socket_activation.py and test_installed_postfix.py."""
import os
import shlex
import signal
import socket
import struct
import time

SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
UNIT_DIR = "/lib/systemd/system"
SOCKET_UNIT = os.path.join(UNIT_DIR, "mailoauth-agent.socket")
SERVICE_UNIT = os.path.join(UNIT_DIR, "mailoauth-agent.service")


def read_unit(path):
    """{(section, key): [values]} of a unit file (an empty assignment
    resets the list, as systemd does)."""
    out = {}
    section = None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
                continue
            key, _, value = line.partition("=")
            values = out.setdefault((section, key.strip()), [])
            if value.strip():
                values.append(value.strip())
            else:
                values.clear()
    return out


def address(name):
    return "\0" + name[1:] if name.startswith("@") else name


def peer_cred(name):
    """(pid, uid, gid) of the process that listens on NAME (SO_PEERCRED)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(5)
        s.connect(address(name))
        return struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                struct.calcsize("3i")))
    finally:
        s.close()


class SocketUnit:
    def __init__(self, name):
        self.name = name
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(address(name))
        if not name.startswith("@"):
            os.chmod(name, 0o666)      # SocketMode=0666
        self.sock.listen(socket.SOMAXCONN)  # systemd's default Backlog=

    def start_service(self, exec_start, user, group, log_path):
        return Service(self, shlex.split(exec_start), user, group, log_path)

    def close(self):
        self.sock.close()
        if not self.name.startswith("@"):
            try:
                os.unlink(self.name)
            except FileNotFoundError:
                pass


class Service:
    """One run of the service's ExecStart= on the unit's socket."""

    def __init__(self, unit, argv, user, group, log_path):
        self.log_path = log_path
        self.returncode = None
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        pid = os.fork()
        if pid == 0:
            try:
                os.setsid()
                os.chdir("/")
                os.umask(0o077)
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                os.dup2(unit.sock.fileno(), 3)   # SD_LISTEN_FDS_START, inheritable
                os.set_inheritable(3, True)   # dup2 onto itself keeps close-on-exec
                env = {"PATH": SYSTEM_PATH, "LISTEN_FDS": "1", "LISTEN_PID": str(os.getpid()),
                       "LISTEN_FDNAMES": os.path.basename(SOCKET_UNIT)}
                os.execve("/usr/bin/setpriv",
                          ["setpriv", "--reuid=" + user, "--regid=" + group, "--init-groups", "--",
                           *argv], env)
            finally:
                os._exit(127)
        os.close(log)
        self.pid = pid

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait_ready(self, timeout=15):
        """Until the agent logged that it listens; raises if it exited."""
        deadline = time.monotonic() + timeout
        while "listening on" not in self.log():
            if self.poll() is not None:
                raise RuntimeError("the agent exited with %s: %s" % (self.returncode, self.log()))
            if time.monotonic() > deadline:
                raise RuntimeError("the agent is not ready after %d s: %s" % (timeout, self.log()))
            time.sleep(0.05)
        return self

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Signals exactly this pid; its exit status (SIGKILL after timeout)."""
        if self.poll() is None:
            os.kill(self.pid, sig)
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
                self.returncode = -signal.SIGKILL
                break
            time.sleep(0.05)
        return self.returncode
