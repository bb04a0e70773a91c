"""Shared fixtures for the plugin tests: run tests/plugin/sasl-driver (the
real libsasl2 client API) against the built libmailoauth.so, with a
configuration file and a fake helper from tests/plugin/fake-helpers/."""
import json
import os
import shutil
import subprocess
import tempfile

import memcheck

SRC = os.environ.get("top_srcdir") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("top_builddir") or SRC
DRIVER = os.path.join(BUILD, "tests", "plugin", "sasl-driver")
PLUGIN_DIR = os.path.join(BUILD, "plugin", ".libs")
PLUGIN = os.path.join(PLUGIN_DIR, "libmailoauth.so")
HELPERS = os.path.join(SRC, "tests", "plugin", "fake-helpers")

SASL_CB_USER = 0x4001
SASL_CB_AUTHNAME = 0x4002
SASL_CB_PASS = 0x4004
SASL_SEC_NOPLAINTEXT = 0x0001
SASL_SEC_NOANONYMOUS = 0x0010

# Everything the SASL log callback received, across all tests of a run
# (test_plugin.py's last test reads it back).
LOG_DIR = os.environ.get("MAILOAUTH_TEST_LOG_DIR") or tempfile.mkdtemp(
    prefix="mailoauth-plugin-log-")
LOG_FILE = os.path.join(LOG_DIR, "sasl-log.txt")


def helper(name):
    return os.path.join(HELPERS, name)


class Scenario:
    """One temporary directory: config file, helper record, extra env."""

    def __init__(self, config="", helper_name="ok", fake=None, env=None):
        self.dir = tempfile.mkdtemp(prefix="mailoauth-plugin-")
        self.config = os.path.join(self.dir, "mailoauth.conf")
        self.record = os.path.join(self.dir, "record.jsonl")
        with open(self.config, "w") as f:
            f.write(config)
        self.env = {
            "PATH": "/usr/bin:/bin",
            "SASL_PATH": PLUGIN_DIR,
            "MAILOAUTH_CONFIG": self.config,
            "MAILOAUTH_FAKE_RECORD": self.record,
            "HOME": self.dir,
        }
        if helper_name:
            self.env["MAILOAUTH_HELPER"] = helper(helper_name)
        for k, v in (fake or {}).items():
            self.env["MAILOAUTH_FAKE_" + k] = str(v)
        self.env.update(env or {})

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def records(self):
        if not os.path.exists(self.record):
            return []
        with open(self.record) as f:
            return [json.loads(line) for line in f if line.strip()]

    def run(self, actions, authname="alice@example.com", user=None, interact=False,
            host="imap.example.com", remote="127.0.0.1;993", service="imap",
            secflags=None, timeout=30, extra_args=(), driver=DRIVER, log_file=LOG_FILE,
            as_user=None):
        """as_user: (uid, gid) to run the driver as (the test runs as root);
        log_file must then be writable by it."""
        args = [driver, "--log", log_file, "--service", service]
        if interact:
            args.append("--interact")
        if authname is not None:
            args += ["--authname", authname]
        if user is not None:
            args += ["--user", user]
        if host is not None:
            args += ["--host", host]
        if remote is not None:
            args += ["--local", "127.0.0.1;40000", "--remote", remote]
        if secflags is not None:
            args += ["--secflags", str(secflags)]
        if interact:
            args += ["--pass", "unused"]
        args += list(extra_args) + list(actions)
        ids = {}
        if as_user is not None:
            ids = {"user": as_user[0], "group": as_user[1], "extra_groups": []}
        if driver == DRIVER:  # never a setgid copy: valgrind would drop its privileges
            args, timeout = memcheck.wrap(args, timeout)
        p = subprocess.run(args, env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, **ids)
        if p.returncode != 0:
            raise AssertionError("sasl-driver failed (%d): %s" % (
                p.returncode, p.stderr.decode(errors="replace")))
        if p.stderr:
            raise AssertionError("something printed to stderr: %r" % p.stderr)
        results = [json.loads(line) for line in p.stdout.decode().splitlines()]
        for r in results:
            r["bytes"] = bytes.fromhex(r["out"]) if r.get("out") is not None else None
        return results


def step(data):
    if isinstance(data, str):
        data = data.encode()
    return "step:" + data.hex()
