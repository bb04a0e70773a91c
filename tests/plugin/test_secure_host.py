"""The plugin inside a setgid program (mailoauth-plugin(8), SECURITY).

A libsasl2 client installed setgid and run by an ordinary user runs with
the caller's environment but the program's group.  The plugin must then
read no variable (MAILOAUTH_CONFIG, MAILOAUTH_HELPER) and hand none of the
caller's on to the helper, as libsasl2 itself ignores SASL_PATH there.

The program is tests/plugin/sasl-driver, copied and made setgid (owned by
root, group daemon); it loads tests/plugin/secure/libmailoauth.so, the
plugin built with its configuration directory in the build tree
(tests/plugin/secure-etc), because the compiled-in file is the only one a
setgid host reads.  The same copy without the setgid bit shows that the
variables are honoured otherwise, so the setgid cases cannot pass for
some other reason.  The setgid cases need root (to make the copy and to run
it as nobody); without root the other cases run as the current user."""
import json
import os
import pwd
import shutil
import stat
import tempfile
import unittest

import tap
from pluginlib import BUILD, DRIVER, Scenario, helper

SECURE_PLUGIN_DIR = os.path.join(BUILD, "tests", "plugin", "secure", ".libs")
SECURE_ETC = os.path.join(BUILD, "tests", "plugin", "secure-etc")
IS_ROOT = os.geteuid() == 0
PROGRAM_GID = 1   # the group the program is setgid to (daemon): not nobody's


def runner_ids():
    if IS_ROOT:
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid
    return os.getuid(), os.getgid()


def read_records(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class SecureHost(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(os.path.join(SECURE_PLUGIN_DIR, "libmailoauth.so")):
            raise AssertionError("tests/plugin/secure/libmailoauth.la is not built (make check builds it)")
        # On the build tree's file system, not /tmp, which may be nosuid.
        cls.work = tempfile.mkdtemp(prefix="secure-host-", dir=os.path.join(BUILD, "tests", "plugin"))
        os.chmod(cls.work, 0o755)
        cls.uid, cls.gid = runner_ids()
        if IS_ROOT:
            # Everything the unprivileged runner needs must be reachable.
            for path in (DRIVER, SECURE_PLUGIN_DIR, helper("ok")):
                probe = os.path.dirname(path) if os.path.isfile(path) else path
                while probe not in ("/", ""):
                    mode = os.stat(probe).st_mode
                    if not mode & stat.S_IXOTH:
                        raise AssertionError("%s is not searchable by others: nobody cannot run "
                                             "the test program from it" % probe)
                    probe = os.path.dirname(probe)

        def private(name, mode=0o777):
            path = os.path.join(cls.work, name)
            os.mkdir(path)
            os.chmod(path, mode)
            return path

        cls.store = private("store")            # the configured store
        cls.attacker = private("attacker")      # everything the caller points at
        cls.good = os.path.join(cls.work, "configured-helper")
        cls.evil = os.path.join(cls.attacker, "evil-helper")
        os.symlink(helper("ok"), cls.good)
        os.symlink(helper("ok"), cls.evil)
        cls.evil_conf = os.path.join(cls.attacker, "evil.conf")
        with open(cls.evil_conf, "w") as f:
            f.write("helper = %s\n" % cls.evil)
        os.chmod(cls.evil_conf, 0o644)
        # The compiled-in configuration of the secure build.
        os.makedirs(SECURE_ETC, exist_ok=True)
        os.chmod(SECURE_ETC, 0o755)
        with open(os.path.join(SECURE_ETC, "mailoauth.conf"), "w") as f:
            f.write("helper = %s\nstore = %s\n" % (cls.good, cls.store))
        os.chmod(os.path.join(SECURE_ETC, "mailoauth.conf"), 0o644)

        # Two copies of the program: plain and setgid.
        cls.plain = os.path.join(cls.work, "sasl-driver-plain")
        shutil.copy(DRIVER, cls.plain)
        os.chmod(cls.plain, 0o755)
        cls.setgid = os.path.join(cls.work, "sasl-driver-setgid")
        if IS_ROOT:
            shutil.copy(DRIVER, cls.setgid)
            os.chown(cls.setgid, 0, PROGRAM_GID)
            os.chmod(cls.setgid, 0o2755)
        cls.log = os.path.join(cls.attacker, "sasl-log.txt")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)
        shutil.rmtree(SECURE_ETC, ignore_errors=True)

    def setUp(self):
        for d in (self.store, self.attacker):
            for name in os.listdir(d):
                if name.endswith(".jsonl"):
                    os.unlink(os.path.join(d, name))
        self.attacker_record = os.path.join(self.attacker, "record.jsonl")

    def caller_env(self, **overrides):
        """What a hostile caller sets: every variable the plugin might read
        or pass on."""
        env = {
            "PATH": "/usr/bin:/bin",
            "MAILOAUTH_HELPER": self.evil,
            "MAILOAUTH_CONFIG": self.evil_conf,
            "MAILOAUTH_STORE": self.attacker,
            "MAILOAUTH_FAKE_RECORD": self.attacker_record,
            "HOME": self.attacker,
            "XDG_CONFIG_HOME": self.attacker,
            "XDG_STATE_HOME": self.attacker,
            "XDG_RUNTIME_DIR": self.attacker,
        }
        env.update(overrides)
        return {k: v for k, v in env.items() if v is not None}

    def login(self, program, env):
        s = Scenario(helper_name=None)
        self.addCleanup(s.cleanup)
        s.env = env
        res = s.run(["start:XOAUTH2"], driver=program, log_file=self.log, as_user=(self.uid, self.gid),
                    extra_args=["--plugin-dir", SECURE_PLUGIN_DIR])
        self.assertEqual(res[0]["rc"], "SASL_OK")
        return res[1]

    def only_record(self, path):
        recs = read_records(path)
        self.assertEqual(len(recs), 1, "expected one helper run recorded in %s, got %r" % (path, recs))
        return recs[0]

    # Without setgid: the variables are honoured (the premise).

    def test_plain_program_honours_mailoauth_helper(self):
        start = self.login(self.plain, self.caller_env(MAILOAUTH_CONFIG=None))
        self.assertEqual(start["rc"], "SASL_OK", start)
        rec = self.only_record(self.attacker_record)
        self.assertEqual(rec["argv"][0], self.evil)
        for name in ("HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR", "MAILOAUTH_FAKE_RECORD"):
            self.assertEqual(rec["env"][name], self.caller_env()[name])
        self.assertEqual(rec["env"]["MAILOAUTH_STORE"], self.attacker)
        self.assertEqual(read_records(os.path.join(self.store, "record.jsonl")), [])

    def test_plain_program_honours_mailoauth_config(self):
        start = self.login(self.plain, self.caller_env(MAILOAUTH_HELPER=None))
        self.assertEqual(start["rc"], "SASL_OK", start)
        rec = self.only_record(self.attacker_record)
        self.assertEqual(rec["argv"][0], self.evil)  # named by evil.conf
        self.assertEqual(rec["env"]["MAILOAUTH_CONFIG"], self.evil_conf)

    # Setgid: only the compiled-in configuration counts.

    def check_secure_run(self, env):
        if not IS_ROOT:
            self.skipTest("making a setgid program and running it as nobody needs root")
        start = self.login(self.setgid, env)
        self.assertEqual(start["rc"], "SASL_OK", start)
        self.assertEqual(read_records(self.attacker_record), [])
        rec = self.only_record(os.path.join(self.store, "record.jsonl"))
        self.assertEqual(rec["argv"], [self.good, "get"])
        # The premise: the program really ran setgid, as nobody.
        self.assertEqual(rec["uid"], self.uid)
        self.assertEqual(rec["egid"], PROGRAM_GID)
        self.assertNotEqual(rec["gid"], PROGRAM_GID)
        # Nothing of the caller's reached the helper: PATH and the configured
        # store only (Python may add LC_CTYPE for its own locale coercion).
        self.assertEqual(rec["env"]["PATH"], "/usr/local/bin:/usr/bin:/bin")
        self.assertEqual(rec["env"]["MAILOAUTH_STORE"], self.store)
        self.assertEqual(set(rec["env"]) - {"LC_CTYPE"}, {"PATH", "MAILOAUTH_STORE"}, rec["env"])
        token = rec["token"]
        self.assertIn(("auth=Bearer " + token).encode(), start["bytes"])

    def test_setgid_program_ignores_mailoauth_helper(self):
        self.check_secure_run(self.caller_env(MAILOAUTH_CONFIG=None))

    def test_setgid_program_ignores_mailoauth_config(self):
        self.check_secure_run(self.caller_env(MAILOAUTH_HELPER=None))

    def test_setgid_program_ignores_everything_at_once(self):
        self.check_secure_run(self.caller_env())


if __name__ == "__main__":
    tap.main()
