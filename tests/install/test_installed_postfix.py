#!/usr/bin/env python3
"""End-to-end test of the installed packages with Postfix's smtp client
chrooted, the way debian/README.Debian sets it up: run by test_packages.sh
after the .debs are installed, as root.  TAP lines on stdout ("ok - ..." /
"not ok - ...", always the same number; test_packages.sh numbers them).

    test_installed_postfix.py --exec-start 'CMD' --user USER --group GROUP

(the agent unit's ExecStart=, User= and Group=, as test_packages.sh parsed
them).  What is installed is what is tested: /usr/bin/mailoauth, the plugin
in libsasl2's system plugin directory (no SASL_PATH), the system user
`mailoauth` and its store /var/lib/mailoauth, /etc/mailoauth.conf.  From
the source tree come only the test fixtures: the fake identity provider
(tests/lib/fakeidp.py), Dovecot and Postfix instances (tests/lib/mailenv.py)
and the SASL test client (tests/e2e/sasl).

Steps, as README.Debian tells the administrator:
  * `runuser -u mailoauth -- mailoauth --store /var/lib/mailoauth login
    relay@example.com ...` (device flow; the fake provider approves);
  * /etc/mailoauth.conf: agent_socket and [account relay@example.com]
    allow_users = postfix (an abstract name unique to this run rather than
    @mailoauth-agent, so that an agent already running on the machine is
    neither disturbed nor mistaken for ours; the plugin's default trust,
    root or user mailoauth, is what is checked);
  * the agent started as its units start it (systemd is not running in CI;
    socketunit.py): the run's socket name bound as root, as a drop-in's
    ListenStream= would have it, then the unit's exact command line as its
    User= and Group= with the socket as fd 3 (LISTEN_FDS, LISTEN_PID),
    setpriv, umask 077, in /;
  * Postfix with `smtp ... chroot = y` relaying to Dovecot's submission
    port with smtp_sasl_mechanism_filter = xoauth2 and nothing in
    import_environment from mailoauth.

Checked: the message submitted with sendmail lands in the mailbox and
Dovecot logged method=XOAUTH2; user postfix cannot list the store or read
the account's file; the plugin run as `nobody` (not in allow_users) is
refused and the agent logs the refusal; Postfix's queue directory (its
chroot) was empty before start and holds nothing but Postfix's own entries
afterwards (README.Debian asks for nothing there).  The machine is left as
found: /etc/mailoauth.conf restored (or removed), the account's files
removed from the store, every process started here stopped by its PID.
Nothing printed holds a token.
"""
import argparse
import os
import pwd
import re
import shutil
import subprocess
import sys
import traceback
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path[:0] = [os.path.join(TOP, "tests", "lib"),
                os.path.join(TOP, "tests", "e2e", "sasl")]
os.environ.setdefault("top_srcdir", TOP)

import mailenv  # noqa: E402
import sasllib  # noqa: E402
import socketunit  # noqa: E402

MAILOAUTH = "/usr/bin/mailoauth"
STORE = "/var/lib/mailoauth"
CONFIG = "/etc/mailoauth.conf"
ACCOUNT = "relay@example.com"
APP_ACCOUNT = "relay-app"
APP_CLIENT = "99999999-8888-7777-6666-555555555555"
APP_TENANT = "contoso.onmicrosoft.com"
APP_SECRET = "Qx8~installed-app-only.secret_value-0123456789"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

CHECKS = [
    ("login", "mailoauth login as user mailoauth into %s (device flow, "
     "approved at the fake identity provider)" % STORE),
    ("store", "user postfix cannot list %s or read the account's file" % STORE),
    ("agent", "the agent (the unit's ExecStart= as its User=/Group=, on the "
     "socket bound for it as the socket unit does) runs as mailoauth and "
     "serves on the agent_socket of %s" % CONFIG),
    ("doctor", "mailoauth doctor, as root and as mailoauth for its store, "
     "finds the system plugin, the account and the agent serving it, and "
     "no problem (README.Debian)"),
    ("relay", "chrooted Postfix relays a sendmail message with XOAUTH2 "
     "through the system plugin and the agent; it lands in Dovecot"),
    ("app-only", "an app-only account (mailoauth login --app, client secret) "
     "in %s: chrooted Postfix relays through the agent with its token; it "
     "lands in Dovecot" % STORE),
    ("refused", "a caller not in allow_users (nobody) is refused through "
     "the plugin, and the agent logs the refusal"),
    ("chroot", "Postfix's chroot holds nothing mailoauth-related (no "
     "program, library, CA file, store or socket)"),
    ("sigterm", "the agent exits on SIGTERM (status 0)"),
    ("restored", "the machine is as before: %s and %s restored" % (CONFIG,
                                                                 STORE)),
    ("secrets", "no token in any output captured by this test"),
]


class Report:
    def __init__(self):
        self.results = {}     # key -> (ok, lines)
        self.failed = False

    def record(self, key, ok, *lines):
        if key not in self.results:
            self.results[key] = (ok, [str(x) for x in lines])

    def emit(self, skip=None):
        print("1..%d" % len(CHECKS), flush=True)
        for key, name in CHECKS:
            if skip:
                print("ok - %s # SKIP %s" % (name, skip), flush=True)
                continue
            ok, lines = self.results.get(key, (False, ["not run: an "
                                                       "earlier step failed"]))
            if not ok:
                self.failed = True
            print("%s - %s" % ("ok" if ok else "not ok", name), flush=True)
            for text in lines:
                for line in text.rstrip().splitlines():
                    print("# " + line, flush=True)


def run(argv, **kw):
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=kw.pop("timeout", 60), **kw)


def missing():
    need = [MAILOAUTH, STORE, mailenv.DOVECOT, mailenv.POSTFIX, mailenv.SENDMAIL,
            "/usr/lib/dovecot/submission", "/usr/lib/dovecot/lmtp",
            "/usr/bin/python3"]
    out = [p for p in need if not os.path.exists(p)]
    for user in ("mailoauth", "postfix", "nobody"):
        try:
            pwd.getpwnam(user)
        except KeyError:
            out.append("user " + user)
    return out


class Machine:
    """What this test changes outside its work directory, to put back."""

    def __init__(self):
        self.config_saved = None         # (bytes, mode, uid, gid) or None
        self.config_existed = os.path.lexists(CONFIG)
        self.store_before = set(os.listdir(STORE))
        if self.config_existed:
            st = os.lstat(CONFIG)
            with open(CONFIG, "rb") as f:
                self.config_saved = (f.read(), st.st_mode & 0o7777,
                                     st.st_uid, st.st_gid)

    def write_config(self, text):
        tmp = CONFIG + ".mailoauth-test"
        with open(tmp, "w") as f:
            f.write(text)
        os.chown(tmp, 0, 0)
        os.chmod(tmp, 0o644)
        os.replace(tmp, CONFIG)

    def restore(self):
        problems = []
        for name in sorted(set(os.listdir(STORE)) - self.store_before):
            path = os.path.join(STORE, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        if self.config_existed:
            data, mode, uid, gid = self.config_saved
            tmp = CONFIG + ".mailoauth-test"
            with open(tmp, "wb") as f:
                f.write(data)
            os.chown(tmp, uid, gid)
            os.chmod(tmp, mode)
            os.replace(tmp, CONFIG)
            with open(CONFIG, "rb") as f:
                if f.read() != data:
                    problems.append(CONFIG + " differs from before")
        elif os.path.lexists(CONFIG):
            os.unlink(CONFIG)
        if os.path.lexists(CONFIG) != self.config_existed:
            problems.append("%s %s" % (CONFIG, "is gone" if self.config_existed
                                       else "is left behind"))
        if set(os.listdir(STORE)) != self.store_before:
            problems.append("%s: %s" % (STORE, sorted(os.listdir(STORE))))
        return problems


def login(setup):
    """README.Debian, step 2, with the fake provider as authority."""
    cmd = ["runuser", "-u", "mailoauth", "--", MAILOAUTH, "--store", STORE,
           "login", ACCOUNT, "--client-id", setup.idp.client_id,
           "--authority", setup.idp.authority(), "--ca-file",
           setup.ca.ca_file]
    proc = subprocess.Popen(cmd, env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
                            cwd="/", stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        code = setup.idp.wait_for_pending(timeout=15)
        setup.idp.approve(code, username=ACCOUNT)
        out, err = proc.communicate(timeout=30)
    except BaseException:
        proc.kill()
        proc.wait(5)
        raise
    setup.outputs.append(("mailoauth login", out + err))
    if proc.returncode != 0:
        raise AssertionError("exit %d: %s" % (proc.returncode,
                                              setup.redact(err)))


def app_login(setup):
    """An app-only account for the mailbox ACCOUNT, signed in as user
    mailoauth with a client secret file it owns (issue 11)."""
    setup._secrets.add(APP_SECRET)
    setup.idp.register_app(APP_CLIENT, tenant=APP_TENANT, mailbox=ACCOUNT,
                           secret=APP_SECRET)
    secret_file = setup.path("app.secret")
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(APP_SECRET + "\n")
    user = pwd.getpwnam("mailoauth")
    os.chown(secret_file, user.pw_uid, user.pw_gid)
    r = run(["runuser", "-u", "mailoauth", "--", MAILOAUTH, "--store", STORE,
             "login", APP_ACCOUNT, "--app", "--client-id", APP_CLIENT,
             "--authority", setup.idp.authority(APP_TENANT), "--ca-file",
             setup.ca.ca_file, "--user", ACCOUNT, "--client-secret-file",
             secret_file], env={"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"},
            cwd="/")
    setup.outputs.append(("mailoauth login --app", r.stdout + r.stderr))
    if r.returncode != 0:
        raise AssertionError("login --app: exit %d: %s" % (
            r.returncode, setup.redact(r.stderr)))


def doctor(setup, agent, socket_name):
    """README.Debian's two doctor commands; (ok, explanation)."""
    env = {"PATH": SYSTEM_PATH, "LANG": "C.UTF-8"}
    plugin_dir = subprocess.run(["pkg-config", "--variable=libdir", "libsasl2"],
                                capture_output=True, text=True).stdout.strip()
    serves = "ok       %s: the agent on %s (uid %d (mailoauth), pid %d) " \
        "serves its token to you" % (ACCOUNT, socket_name,
                                     pwd.getpwnam("mailoauth").pw_uid,
                                     agent.pid)
    runs = [
        (["mailoauth", "doctor"],
         ["ok       configuration: " + CONFIG,
          "ok       SASL plugin: %s/sasl2/libmailoauth.so" % plugin_dir,
          serves]),
        (["runuser", "-u", "mailoauth", "--", "mailoauth", "--store", STORE,
          "doctor"],
         ["ok       store: " + STORE,
          "ok       %s: access token valid until" % ACCOUNT, serves]),
    ]
    for argv, wants in runs:
        r = run(argv, env=env, cwd="/")
        setup.outputs.append((" ".join(argv), r.stdout + r.stderr))
        text = setup.redact(r.stdout + r.stderr)
        lacking = [w for w in wants if w not in text]
        if r.returncode != 0 or lacking or "PROBLEM" in text:
            return False, "%s: exit %d, lacking %s:\n%s" % (
                " ".join(argv), r.returncode, lacking, text)
    return True, "both runs: no problems"


def relay(setup, pf):
    """sendmail one message; (ok, explanation)."""
    subject = "mailoauth-installed %s" % uuid.uuid4().hex[:12]
    mark = setup.dovecot.log()
    pf.sendmail(ACCOUNT, ACCOUNT, ("From: <{a}>\r\nTo: <{a}>\r\nSubject: {s}"
                                   "\r\n\r\nrelayed by the installed "
                                   "packages\r\n").format(a=ACCOUNT,
                                                          s=subject))

    def verdict():
        log = pf.log()
        for status in ("status=sent", "status=deferred", "status=bounced"):
            if "postfix/smtp[" in log and status in log:
                return status
        return None
    try:
        status = mailenv.wait_for(verdict, 30, 0.2, what="the smtp verdict")
    except TimeoutError:
        status = "no verdict in 30 s"
    log = setup.redact(pf.log())
    if status != "status=sent":
        lines = [line for line in log.splitlines()
                 if "SASL" in line or "status=" in line or "mailoauth" in line]
        return False, "Postfix did not relay (%s):\n%s" % (
            status, "\n".join(lines[-8:]) or log[-3000:])
    try:
        got = setup.dovecot.wait_for_message(ACCOUNT, subject, 15)
    except TimeoutError as e:
        return False, str(e)
    needle = "submission-login: Info: Login: user=<%s>, method=XOAUTH2" % (
        ACCOUNT)
    part = sasllib.new_part(mark, setup.dovecot.log())
    if needle not in part:
        return False, "Dovecot did not log %r:\n%s" % (
            needle, setup.redact(part[-3000:]))
    if b"with ESMTPSA" not in got or b"(Postfix" not in got:
        return False, "the message did not come through Postfix with " \
            "ESMTPSA:\n" + got.decode(errors="replace")[:1500]
    return True, "delivered: %s (%s)" % (subject, needle)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--exec-start", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--group", required=True)
    args = ap.parse_args()
    report = Report()
    if os.geteuid() != 0:
        report.emit(skip="needs root")
        return 0
    lacking = missing()
    if lacking:
        report.emit(skip="not installed: " + " ".join(lacking))
        return 0

    machine = Machine()
    setup = agent = unit = pf = None
    record = os.path.join(STORE, ACCOUNT)
    socket_name = sasllib.unique_agent_socket("install-test")
    try:
        if os.path.lexists(record):
            raise RuntimeError("%s exists already; not touching it" % record)
        setup = sasllib.MailSetup().start()
        # README.Debian, step 3 (the socket name unique to this run).
        machine.write_config(
            "# written by tests/install/test_installed_postfix.py; the "
            "previous file is restored\n# when it ends (see README.Debian)"
            "\nagent_socket = %s\n\n[account %s]\nallow_users = postfix\n"
            "\n[account %s]\nallow_users = postfix\n"
            % (socket_name, ACCOUNT, APP_ACCOUNT))

        try:
            login(setup)
            meta = os.stat(record)
            if meta.st_uid != pwd.getpwnam("mailoauth").pw_uid or \
                    meta.st_mode & 0o077:
                raise AssertionError("%s: uid %d mode %o" % (
                    record, meta.st_uid, meta.st_mode & 0o7777))
            report.record("login", True)
        except Exception as e:
            report.record("login", False, e)
            raise

        denied = []
        for argv in (["ls", STORE], ["cat", record]):
            r = run(["runuser", "-u", "postfix", "--", *argv])
            if r.returncode == 0 or "Permission denied" not in r.stderr:
                denied.append("user postfix ran %s: exit %d %s" % (
                    argv, r.returncode, r.stderr.strip()))
        report.record("store", not denied, *denied)

        # Issue 11: the app-only account is signed in now, beside the
        # delegated one, so that doctor (below) finds both served; its relay
        # is checked after the delegated account's.
        app_login_error = None
        try:
            app_login(setup)
        except Exception:
            app_login_error = traceback.format_exc()

        # The units, as test_packages.sh starts them.
        try:
            unit = socketunit.SocketUnit(socket_name)
            agent = unit.start_service(args.exec_start, args.user, args.group,
                                       setup.path("agent.log"))
            agent.wait_ready()
            uid = sasllib.process_uid(agent.pid)
            if uid != pwd.getpwnam("mailoauth").pw_uid:
                raise AssertionError("the agent runs as uid %d" % uid)
            report.record("agent", True, "pid %d: %s" % (
                agent.pid, agent.log().strip()))
        except Exception as e:
            report.record("agent", False, e, agent.log() if agent else "")
            raise

        report.record("doctor", *doctor(setup, agent, socket_name))

        # README.Debian, step 5, with Dovecot as the relay host.  No
        # SASL_PATH, no MAILOAUTH_CONFIG: the system plugin, /etc's file.
        pf = mailenv.Postfix(
            setup.work.path, setup.dovecot.ports["submission"],
            setup.ca.ca_file, sasl_passwords={ACCOUNT: "unused"},
            mechanism_filter="xoauth2", chroot=True, environment={},
            name="postfix-installed")
        before = sasllib.tree(pf.queue_dir)
        try:
            pf.start()
            with open(os.path.join(pf.config_dir, "master.cf")) as f:
                if not re.search(r"(?m)^smtp\s+unix\s+-\s+-\s+y\s", f.read()):
                    raise AssertionError("smtp is not chrooted in master.cf")
            ok, why = relay(setup, pf)
            report.record("relay", ok, why)
        except Exception:
            report.record("relay", False, traceback.format_exc())
        finally:
            pf.stop()
            setup.outputs.append(("postfix log", pf.log()))

        # Issue 11: an app-only account, served by the same agent.
        app_pf = None
        try:
            if app_login_error:
                raise AssertionError(app_login_error)
            app_pf = mailenv.Postfix(
                setup.work.path, setup.dovecot.ports["submission"],
                setup.ca.ca_file, sasl_passwords={APP_ACCOUNT: "unused"},
                mechanism_filter="xoauth2", chroot=True, environment={},
                name="postfix-installed-app")
            app_pf.start()
            ok, why = relay(setup, app_pf)
            report.record("app-only", ok, why)
        except Exception:
            report.record("app-only", False, traceback.format_exc())
        finally:
            if app_pf is not None:
                app_pf.stop()
                setup.outputs.append(("postfix log (app-only)", app_pf.log()))

        mark = agent.log()
        try:
            results = setup.sasl_client(
                {"PATH": "/usr/bin:/bin", "HOME": "/", "LANG": "C.UTF-8"},
                account=ACCOUNT, run_as="nobody")
            got = results[0] if len(results) == 1 else {}
            said = got.get("errdetail", "") + " " + " ".join(got.get("log",
                                                                      []))
            nobody = pwd.getpwnam("nobody").pw_uid
            # In no allow list at all: refused when the agent accepts the
            # connection, before the request (and its account) is read.
            refusal = re.compile(r"refused uid %d \(nobody\) \(pid \d+\)"
                                 r"(?: for account %s)?: .*" % (
                                     nobody, re.escape(ACCOUNT)))
            logged = refusal.search(sasllib.new_part(mark, agent.log()))
            ok = (got.get("auth") != "OK" and
                  "not allowed by mailoauth.conf" in said and bool(logged))
            report.record("refused", ok,
                          "agent: " + (logged.group(0) if logged else
                                       "no refusal logged:\n" + agent.log()),
                          "plugin: " + setup.redact(
                              got.get("errdetail") or said.strip()))
        except Exception:
            report.record("refused", False, traceback.format_exc())

        after = sasllib.tree(pf.queue_dir)
        found = sasllib.chroot_findings(
            pf.queue_dir, sasllib.master_services(
                os.path.join(pf.config_dir, "master.cf")), setup.secrets())
        if before:
            found.insert(0, "not empty before start: %s" % before)
        report.record("chroot", not found, *(found or [
            "%d entries, all Postfix's: %s" % (
                len(after), " ".join(sorted({r.split(os.sep)[0]
                                             for r, _ in after})))]))

        status = agent.stop()
        report.record("sigterm", status == 0, "exit status %s" % status)
    except Exception:
        # The failed step has its line; the rest say "not run".
        print("# " + "\n# ".join(traceback.format_exc().rstrip().splitlines()),
              flush=True)
    finally:
        if agent is not None:
            agent.stop()
            if setup:
                setup.outputs.append(("agent log", agent.log()))
        if unit is not None:
            unit.close()
        problems = machine.restore()
        report.record("restored", not problems, *problems)
        if setup is not None:
            leaks = setup.leaks()
            report.record("secrets", not leaks, *leaks)
            try:
                setup.stop()
            except AssertionError as e:
                print("# " + str(e), flush=True)
        report.emit()
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
