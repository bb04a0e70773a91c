"""sendmail as an SMTP client through libmailoauth.so, against the local
Dovecot after a real `mailoauth login` (device flow; the fake identity
provider approves).

Debian's sendmail-bin conflicts with Postfix (both are the mail transport
agent), so it is not installed: scripts/install-deps keeps its .deb in
SENDMAIL_DEB_DIR, and this test unpacks it with dpkg-deb -x and runs that
sendmail with a configuration of its own, built with m4 from sendmail-cf:
the README's lines (tests/e2e/clients/sendmail.mc.in, authinfo.in,
access.in, rendered with the local host, port and CA file) plus what a
Debian sendmail.mc already has (access_db, the mailers) and test-only
paths (queue, pid file).  `sendmail -odi` delivers at once, relaying to
Dovecot's submission port with STARTTLS (the certificate verified: the
access map's TLS_Srv entry) and AUTH XOAUTH2; the message lands in the
maildir.

sendmail clears its environment at start-up: libsasl2 then loads plugins
from its system directory only, and the plugin reads only its compiled-in
configuration file.  So the plugin here is tests/e2e/sendmail-plugin, built
to read tests/e2e/sendmail-etc/mailoauth.conf in the build tree, copied
into the system plugin directory under a name of its own for the module's
run and removed afterwards (a Debian-installed libmailoauth.so is left
alone; the test refuses to run beside one, which would offer XOAUTH2 too).
Needs root.

sendmail looks up its own host name at start-up, through the system's
resolver: on a machine whose name has no domain (this project's CI machines
are called `vm`) that is a DNS query off the machine and a 60 s wait ("My
unqualified host name ... unknown; sleeping for retry").  So sendmail runs
in namespaces of its own (unshare): a host name with a domain, and a private
/etc/hosts that names it, so the lookup never leaves the machine.
"""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "sasl"))
import mailenv  # noqa: E402
import sasllib  # noqa: E402
from sasllib import ALICE  # noqa: E402

SENDMAIL_DEB_DIR = "/var/cache/mailoauth-tests"
CF_DIR = "/usr/share/sendmail/cf"
SYSTEM_PLUGIN = os.path.join(mailenv.SYSTEM_SASL_PLUGINDIR, "libmailoauth.so")
TEST_PLUGIN = os.path.join(sasllib.top_builddir(), "tests", "e2e",
                           "sendmail-plugin", ".libs", "libmailoauth.so")
PLUGIN_ETC = os.path.join(sasllib.top_builddir(), "tests", "e2e",
                          "sendmail-etc")
README_VALUES = {"SMTP_HOST": "smtp.office365.com", "SUBMISSION_PORT": "587",
                 "CA_FILE": "/etc/ssl/certs/ca-certificates.crt",
                 "CA_DIR": "/etc/ssl/certs", "MAIL_DIR": "/etc/mail"}
TEMPLATES = ("sendmail.mc.in", "authinfo.in", "access.in")

# The name sendmail runs under, resolved from a private /etc/hosts.
SENDMAIL_HOST = "sendmail-test.mailoauth.invalid"

SETUP = None
INSTALLED_PLUGIN = None


def sendmail_deb():
    debs = sorted(glob.glob(os.path.join(SENDMAIL_DEB_DIR,
                                         "sendmail-bin_*.deb")))
    return debs[-1] if debs else None


def why_not():
    if os.geteuid() != 0:
        return "needs root (sendmail's queue, the system plugin directory)"
    if not sendmail_deb():
        return ("no sendmail-bin .deb in %s: run scripts/install-deps"
                % SENDMAIL_DEB_DIR)
    for need in (os.path.join(CF_DIR, "m4", "cf.m4"), "/usr/bin/m4",
                 TEST_PLUGIN, mailenv.DOVECOT):
        if not os.path.exists(need):
            return "not installed: " + need
    return None


def setUpModule():
    global SETUP, INSTALLED_PLUGIN
    reason = why_not()
    if reason:
        raise unittest.SkipTest(reason)
    if os.path.exists(SYSTEM_PLUGIN):
        raise AssertionError(
            "%s is installed: with it libsasl2 has two XOAUTH2 plugins and "
            "this test cannot tell which one sendmail used" % SYSTEM_PLUGIN)
    SETUP = sasllib.MailSetup().start()
    try:
        SETUP.store = SETUP.make_store("client")
        os.makedirs(PLUGIN_ETC, exist_ok=True)
        os.chmod(PLUGIN_ETC, 0o755)
        SETUP.conf = SETUP.write_config(PLUGIN_ETC, SETUP.store)
        SETUP.login(SETUP.conf)
        # A unique name: nothing of Debian's (or another run's) is replaced,
        # and exactly this file is removed afterwards.
        fd, INSTALLED_PLUGIN = tempfile.mkstemp(
            prefix="libmailoauth-e2e-sendmail-", suffix=".so",
            dir=mailenv.SYSTEM_SASL_PLUGINDIR)
        with os.fdopen(fd, "wb") as out, open(TEST_PLUGIN, "rb") as src:
            shutil.copyfileobj(src, out)
        os.chmod(INSTALLED_PLUGIN, 0o644)
        SETUP.sendmail = unpack_sendmail(SETUP.path("sendmail-bin"))
    except BaseException:
        tearDownModule()
        raise


def tearDownModule():
    global SETUP, INSTALLED_PLUGIN
    if INSTALLED_PLUGIN:
        os.unlink(INSTALLED_PLUGIN)
        INSTALLED_PLUGIN = None
    shutil.rmtree(PLUGIN_ETC, ignore_errors=True)
    setup, SETUP = SETUP, None
    if setup is None:
        return
    leaks = setup.leaks()
    setup.stop()
    if leaks:
        raise AssertionError("secrets in captured output: %s" % leaks)


def unpack_sendmail(dest):
    subprocess.run(["dpkg-deb", "-x", sendmail_deb(), dest], check=True,
                   timeout=60)
    binary = os.path.join(dest, "usr", "libexec", "sendmail", "sendmail")
    if not os.access(binary, os.X_OK):
        raise AssertionError("no sendmail binary in %s" % sendmail_deb())
    return {"sendmail": binary,
            "makemap": os.path.join(dest, "usr", "libexec", "sendmail",
                                    "makemap")}


class Sendmail(unittest.TestCase):

    def values(self, mail_dir):
        return {"SMTP_HOST": "127.0.0.1",
                "SUBMISSION_PORT": SETUP.dovecot.ports["submission"],
                "CA_FILE": SETUP.ca.ca_file,
                "CA_DIR": os.path.dirname(SETUP.ca.ca_file),
                "MAIL_DIR": mail_dir}

    def configure(self, name, authinfo=True):
        """A sendmail.cf (and its maps) in a directory of its own: the
        README's lines, what Debian's sendmail.mc already has, and
        test-only paths.  AUTHINFO=False leaves the AuthInfo entry out."""
        d = SETUP.path(name)
        for sub in ("", "mqueue"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
            os.chmod(os.path.join(d, sub), 0o700)
        values = self.values(d)
        with open(os.path.join(d, "service.switch"), "w") as f:
            f.write("hosts\tfiles\naliases\tfiles\n")
        with open(os.path.join(d, "authinfo"), "w") as f:
            if authinfo:
                f.write(mailenv.render(os.path.join("clients", "authinfo.in"),
                                       values))
        with open(os.path.join(d, "access"), "w") as f:
            f.write(mailenv.render(os.path.join("clients", "access.in"),
                                   values))
        mc = "".join([
            "divert(-1)\n",
            "# Test only: sendmail's files in this directory.\n",
            "divert(0)dnl\n",
            "VERSIONID(`mailoauth e2e')dnl\n",
            "OSTYPE(`linux')dnl\n",
            "define(`confDOMAIN_NAME', `client.example.org')dnl\n",
            "define(`QUEUE_DIR', `%s/mqueue')dnl\n" % d,
            "define(`confPID_FILE', `%s/sendmail.pid')dnl\n" % d,
            "define(`STATUS_FILE', `%s/statistics')dnl\n" % d,
            "define(`ALIAS_FILE', `')dnl\n",
            "define(`confHELP_FILE', `')dnl\n",
            "define(`confDONT_PROBE_INTERFACES', `True')dnl\n",
            "define(`confTO_CONNECT', `20s')dnl\n",
            "define(`confLOG_LEVEL', `20')dnl\n",
            # The work directory is under /tmp (world-writable), where
            # sendmail otherwise ignores its maps as unsafe.
            "define(`confDONT_BLAME_SENDMAIL', `MapInUnsafeDirPath')dnl\n",
            # No name server: host names from /etc/hosts only, and no
            # lookup of the recipient's domain (nothing leaves 127.0.0.1).
            "define(`confSERVICE_SWITCH_FILE', `%s/service.switch')dnl\n" % d,
            "FEATURE(`nocanonify')dnl\n",
            # What Debian's sendmail.mc has already:
            "FEATURE(`access_db', `hash -T<TMPF> -o %s/access.db')dnl\n" % d,
            mailenv.render(os.path.join("clients", "sendmail.mc.in"), values),
            "MAILER(`local')dnl\n",
            "MAILER(`smtp')dnl\n",
        ])
        with open(os.path.join(d, "sendmail.mc"), "w") as f:
            f.write(mc)
        cf = os.path.join(d, "sendmail.cf")
        with open(cf, "w") as out:
            subprocess.run(["m4", "-D_CF_DIR_=%s/" % CF_DIR,
                            os.path.join(CF_DIR, "m4", "cf.m4"),
                            os.path.join(d, "sendmail.mc")],
                           stdout=out, check=True, timeout=30)
        for m in ("authinfo", "access"):
            os.chmod(os.path.join(d, m), 0o600)
            with open(os.path.join(d, m), "rb") as src:
                subprocess.run([SETUP.sendmail["makemap"], "-C", cf, "hash",
                                os.path.join(d, m)], stdin=src, check=True,
                               timeout=30, capture_output=True)
        return cf

    def send(self, cf, subject):
        msg = ("From: %s\nTo: %s\nSubject: %s\n\nsent by sendmail\n"
               % (ALICE, ALICE, subject)).encode()
        # Whatever the environment, sendmail clears it: only the plugin's
        # compiled-in configuration counts.  -v shows the SMTP dialogue
        # (redacted before it is shown).
        hosts = os.path.join(os.path.dirname(cf), "hosts")
        with open(hosts, "w") as f:
            f.write("127.0.0.1 localhost\n127.0.1.1 %s %s\n" % (SENDMAIL_HOST, SENDMAIL_HOST.split(".")[0]))
        os.chmod(hosts, 0o644)
        isolated = ["unshare", "--uts", "--mount", "--propagation", "private", "sh", "-c",
                    'mount --bind "$1" /etc/hosts && hostname "$2" && shift 2 && exec "$@"',
                    "sh", hosts, SENDMAIL_HOST]
        r = subprocess.run(isolated + [SETUP.sendmail["sendmail"], "-C", cf, "-odi",
                            "-oi", "-v", "-f", ALICE, ALICE],
                           input=msg, capture_output=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin",
                                "MAILOAUTH_CONFIG": "/nonexistent"})
        text = (r.stdout + r.stderr).decode("utf-8", "replace")
        SETUP.outputs.append(("sendmail", text))
        return r.returncode, SETUP.redact(text)

    def logins(self):
        return SETUP.dovecot.log().count(
            "submission-login: Info: Login: user=<%s>, method=XOAUTH2" % ALICE)

    def test_relays_with_xoauth2_through_the_plugin(self):
        cf = self.configure("sendmail")
        subject = "mailoauth-sendmail-%s" % uuid.uuid4().hex[:12]
        before = self.logins()
        rc, text = self.send(cf, subject)
        self.assertEqual(rc, 0, "sendmail failed:\n" + text[-6000:])
        got = SETUP.dovecot.wait_for_message(ALICE, subject, 20)
        self.assertIn(b"with ESMTPSA", got)
        self.assertEqual(self.logins(), before + 1,
                         "no XOAUTH2 login in the dovecot log:\n"
                         + SETUP.redact(SETUP.dovecot.log())[-4000:])
        self.assertIn("STARTTLS", text)


class Readme(unittest.TestCase):

    def test_readme_shows_the_sendmail_configuration(self):
        for template in TEMPLATES:
            text = mailenv.render(os.path.join("clients", template),
                                  README_VALUES)
            self.assertTrue(mailenv.readme_shows(text),
                            "README.md does not show %s as:\n%s"
                            % (template, text))


if __name__ == "__main__":
    import tap
    tap.main()
