#!/usr/bin/env python3
"""The installed agent started the way its units start it, and what socket
activation buys: run by test_packages.sh after the .debs are installed, as
root.  TAP lines on stdout ("ok - ..." / "not ok - ...", always the same
number; test_packages.sh numbers them).

    test_socket_activation.py

What the installed units say is what is run (socketunit.py emulates
systemd, which is not PID 1 in CI): the socket unit's ListenStream= is bound
as root first, then the service's ExecStart= runs as its User=/Group= with
the socket as fd 3, LISTEN_FDS=1 and LISTEN_PID.  Checked:

  * the units: ListenStream=@mailoauth-agent, the service requires the
    socket unit and is ordered after it;
  * the premise: an unprivileged user (nobody) can bind an abstract name no
    one holds, so squatting the agent's name is possible in principle;
  * a squatter (nobody) that tries after the socket unit cannot bind the
    name, and the agent serves on it: a caller allowed by nobody's rule
    (root) gets an answer from the agent (pid and uid mailoauth by
    SO_PEERCRED), a caller no allow list admits (nobody) gets "forbidden";
  * a restart of the agent (SIGTERM, a pause with no agent, a new agent on
    the same socket, three times) while clients fire requests
    continuously: every request is answered, some of them after waiting in
    the socket's queue while no agent ran;
  * SIGTERM: status 0, and the socket is still held by the socket unit.

No account needs to be signed in: as root the agent's answer for an
unknown account ("not_logged_in", status 77) is an answer like any other.
Every process started here is stopped by its pid; the name is released
when the test ends."""
import errno
import json
import os
import pwd
import sys
import threading
import time
import socket
import tempfile
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import socketunit  # noqa: E402

ACCOUNT = "install-test@example.com"
REQUEST = ("version=1\naccount=%s\nprotocol=smtp\nhost=localhost\nmechanism=XOAUTH2\n\n"
           % ACCOUNT).encode()

CHECKS = [
    ("units", "the units: mailoauth-agent.socket listens on @mailoauth-agent, "
     "the service Requires= and is After= it"),
    ("premise", "an unprivileged user (nobody) can bind an abstract name no one "
     "holds (squatting is possible in principle)"),
    ("squatter", "after the socket unit bound the name, a squatter (nobody) "
     "cannot bind it"),
    ("serves", "the agent (ExecStart= as User=/Group=, the socket as fd 3 with "
     "LISTEN_FDS/LISTEN_PID) serves on it, as mailoauth, and callers see its pid"),
    ("refuses", "a caller no allow list admits (nobody) is answered "
     "\"forbidden\" at once"),
    ("restart", "three restarts of the agent while clients send requests: "
     "every request is answered, some after waiting in the queue"),
    ("sigterm", "the agent exits on SIGTERM (status 0) and the socket stays "
     "held for the next one"),
]


def ask(name, timeout=30):
    """One request; the reply's keys (status as int), or raises."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    t0 = time.monotonic()
    try:
        s.connect(socketunit.address(name))
        s.sendall(REQUEST)
        data = b""
        while b"\n\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    reply = dict(line.split("=", 1) for line in data.decode(errors="replace").splitlines()
                 if "=" in line)
    if "status" not in reply:
        raise RuntimeError("no reply (%r)" % data[:200])
    reply["status"] = int(reply["status"])
    reply["elapsed"] = time.monotonic() - t0
    return reply


def as_nobody(fn):
    """fn() in a child running as nobody; its JSON result."""
    nobody = pwd.getpwnam("nobody")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            out = fn()
        except BaseException as e:  # report, never return into the caller
            out = {"exception": repr(e)}
        os.write(w, json.dumps(out).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return json.loads(data)


def try_bind(name):
    def bind():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.bind(socketunit.address(name))
            s.listen(1)
            return {"bound": True}
        except OSError as e:
            return {"bound": False, "errno": e.errno}
        finally:
            s.close()
    return as_nobody(bind)


def restarts(unit, service, argv):
    """(ok, lines, service): three restarts under load."""
    stop = threading.Event()
    answered, failed = [], []
    lock = threading.Lock()

    def client():
        while not stop.is_set():
            try:
                r = ask(unit.name)
                with lock:
                    answered.append(r["elapsed"])
            except Exception as e:  # noqa: BLE001 - reported
                with lock:
                    failed.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    gap = 0.5
    try:
        for _ in range(3):
            time.sleep(0.7)
            status = service.stop()
            if status != 0:
                failed.append("agent exit status %s" % status)
            time.sleep(gap)             # no agent: callers wait in the queue
            service = unit.start_service(*argv).wait_ready()
        time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    waited = [e for e in answered if e >= gap * 0.8]
    ok = not failed and len(answered) > 20 and len(waited) >= 3
    return ok, ["%d requests answered, %d of them after waiting %.1f s or more in the "
                "queue; failures: %s" % (len(answered), len(waited), gap * 0.8,
                                         failed[:5] or "none")], service


def main():
    results = {}

    def record(key, ok, *lines):
        results.setdefault(key, (ok, [str(x) for x in lines]))

    def emit():
        print("1..%d" % len(CHECKS), flush=True)
        failed = False
        for key, name in CHECKS:
            ok, lines = results.get(key, (False, ["not run: an earlier step failed"]))
            failed |= not ok
            print("%s - %s" % ("ok" if ok else "not ok", name), flush=True)
            for text in lines:
                for line in text.rstrip().splitlines():
                    print("# " + line, flush=True)
        return 1 if failed else 0

    if os.geteuid() != 0:
        print("1..%d" % len(CHECKS))
        for _, name in CHECKS:
            print("ok - %s # SKIP needs root" % name)
        return 0

    unit = service = None
    work = tempfile.mkdtemp(prefix="mailoauth-activation.")
    log_path = os.path.join(work, "agent.log")
    try:
        sock_unit = socketunit.read_unit(socketunit.SOCKET_UNIT)
        svc_unit = socketunit.read_unit(socketunit.SERVICE_UNIT)
        listen = sock_unit.get(("Socket", "ListenStream"), [])
        requires = " ".join(svc_unit.get(("Unit", "Requires"), []))
        after = " ".join(svc_unit.get(("Unit", "After"), []))
        exec_start = svc_unit.get(("Service", "ExecStart"), [""])[-1]
        user = svc_unit.get(("Service", "User"), [""])[-1]
        group = svc_unit.get(("Service", "Group"), [""])[-1]
        ok = (listen == ["@mailoauth-agent"] and "mailoauth-agent.socket" in requires.split()
              and "mailoauth-agent.socket" in after.split()
              and sock_unit.get(("Socket", "Accept"), ["no"])[-1] == "no")
        record("units", ok, "ListenStream=%s; Requires=%s; After=%s; ExecStart=%s; User=%s "
               "Group=%s" % (listen, requires, after, exec_start, user, group))
        if not ok:
            raise RuntimeError("the units are not as expected")
        name = listen[0]

        probe = "@mailoauth-install-probe-%d" % os.getpid()
        r = try_bind(probe)
        record("premise", r.get("bound") is True, "nobody binding %s: %s" % (probe, r))

        # What systemd does at boot: the name is bound before anyone else runs.
        unit = socketunit.SocketUnit(name)
        r = try_bind(name)
        record("squatter", r.get("bound") is False and r.get("errno") == errno.EADDRINUSE,
               "nobody binding %s: %s" % (name, r))

        argv = (exec_start, user, group, log_path)
        service = unit.start_service(*argv).wait_ready()
        reply = ask(name)
        pid, uid, _ = socketunit.peer_cred(name)
        mailoauth_uid = pwd.getpwnam("mailoauth").pw_uid
        log = service.log()
        ok = (reply["status"] in (0, 77) and pid == service.pid and uid == mailoauth_uid
              and "(socket from systemd)" in log)
        listening = [line for line in log.splitlines() if "listening on" in line]
        record("serves", ok, "pid %d: %s" % (service.pid, listening),
               "reply to root: status %d error=%s" % (reply["status"], reply.get("error", "")),
               "SO_PEERCRED of the socket: pid %d uid %d" % (pid, uid))

        r = as_nobody(lambda: {k: v for k, v in ask(name, timeout=10).items()
                               if k in ("status", "error", "error_description", "elapsed")})
        ok = r.get("status") == 78 and r.get("error") == "forbidden" and r.get("elapsed", 9) < 2
        record("refuses", ok, "reply to nobody: %s" % r)

        ok, lines, service = restarts(unit, service, argv)
        record("restart", ok, *lines)

        status = service.stop()
        service = None
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            c.connect(socketunit.address(name))
            held = True
        except OSError as e:
            held = "connect: %s" % e
        finally:
            c.close()
        record("sigterm", status == 0 and held is True,
               "exit status %s; socket held: %s" % (status, held))
    except Exception:
        print("# " + "\n# ".join(traceback.format_exc().rstrip().splitlines()), flush=True)
    finally:
        if service is not None:
            service.stop()
        if unit is not None:
            unit.close()
        try:
            with open(log_path, errors="replace") as f:
                for line in f.read().splitlines()[-30:]:
                    print("# agent: " + line, flush=True)
        except FileNotFoundError:
            pass
        for f in os.listdir(work):
            os.unlink(os.path.join(work, f))
        os.rmdir(work)
    return emit()


if __name__ == "__main__":
    sys.exit(main())
