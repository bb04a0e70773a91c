"""mailoauth token / get / status / logout after a login: refresh at the
margin with rotation, single-flight across processes, provider faults,
the store's defences, and crash or full-disk safety."""
import json
import os
import shutil
import signal
import subprocess
import threading
import time

import tap
from helperlib import ACCOUNT, HelperTestCase, ZzNoSecretsInOutput  # noqa: F401


class Tokens(HelperTestCase):
    idp_options = {"interval": 1, "access_lifetime": 3600}

    def setUp(self):
        super().setUp()
        self.use_class_login()
        self.idp.set_access_lifetime(3600)

    def test_cached_token_needs_no_request(self):
        rec = self.record()
        for _ in range(3):
            r = self.mailoauth("token", ACCOUNT)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual(r.out, rec["access_token"] + "\n")
        self.assertEqual(self.idp.counters().get("token", 0), 0)

    def test_refresh_at_margin_saves_rotated_refresh_token(self):
        before = self.record()
        # An hour's token with 900 s left (its margin is clamped to no less
        # than 1200 s, a third of its lifetime, so margins up to that apply):
        # a margin of 300 s is not reached ...
        self.edit_record(access_expires_at=int(time.time()) + 900)
        r = self.mailoauth("--refresh-margin", "300", "token", ACCOUNT)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.idp.counters().get("grant:refresh_token", 0), 0)
        # ... a margin of 1000 s (set per account in the config) is.
        self.write_config("http_timeout = 5\nrefresh_margin = 300\n[account %s]\nrefresh_margin = 1000\n" % ACCOUNT)
        r = self.mailoauth("token", ACCOUNT)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.idp.counters().get("grant:refresh_token", 0), 1)
        after = self.record()
        self.assertNotEqual(after["refresh_token"], before["refresh_token"])
        self.assertNotEqual(after["access_token"], before["access_token"])
        self.assertEqual(r.out, after["access_token"] + "\n")
        self.assertTrue(self.idp.valid_access_token(after["access_token"]))

    def test_force_refresh(self):
        before = self.record()
        r = self.mailoauth("token", ACCOUNT, "--force-refresh")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.idp.counters().get("grant:refresh_token", 0), 1)
        self.assertNotEqual(self.record()["refresh_token"], before["refresh_token"])

    def test_expired_access_token_is_refreshed(self):
        self.idp.set_access_lifetime(1)
        self.assertEqual(self.mailoauth("token", ACCOUNT, "--force-refresh").rc, 0)
        old = self.record()["access_token"]
        self.wait_until_expired()
        self.assertFalse(self.idp.valid_access_token(old))     # expired at the provider too
        r = self.mailoauth("--refresh-margin", "0", "token", ACCOUNT)
        self.assertEqual(r.rc, 0, r)
        self.assertTrue(self.idp.valid_access_token(r.out.strip()))

    def test_invalid_grant_asks_for_login(self):
        self.idp.revoke_refresh_tokens(ACCOUNT)
        r = self.mailoauth("token", ACCOUNT, "--force-refresh")
        self.assertEqual(r.rc, 77, r)
        self.assertIn("mailoauth login " + ACCOUNT, r.err)
        self.assertEqual(r.out, "")
        st = self.mailoauth("status", ACCOUNT)
        self.assertIn("mailoauth login", st.out)   # last error recorded

    def test_refresh_token_expired_by_inactivity(self):
        self.idp.revoke_refresh_tokens(ACCOUNT, reason="expired")
        r = self.mailoauth("token", ACCOUNT, "--force-refresh")
        self.assertEqual(r.rc, 77, r)
        self.assertIn("700082", r.err)

    def test_5xx_and_429_are_temporary(self):
        for status in (500, 503, 429):
            with self.subTest(status=status):
                self.idp.fault("token", "status", count=1, status=status)
                r = self.mailoauth("token", ACCOUNT, "--force-refresh")
                self.assertEqual(r.rc, 75, r)
                self.assertLess(r.elapsed, 10)

    def test_timeout_is_temporary_and_bounded(self):
        self.write_config("http_timeout = 2\n")
        self.idp.fault("token", "delay", count=1, seconds=8)
        r = self.mailoauth("token", ACCOUNT, "--force-refresh")
        self.assertEqual(r.rc, 75, r)
        self.assertLess(r.elapsed, 6)

    def test_bad_bodies_are_handled(self):
        before = self.record()
        for kind in ("malformed", "html", "huge"):
            with self.subTest(kind=kind):
                self.idp.fault("token", kind, count=1)
                r = self.mailoauth("token", ACCOUNT, "--force-refresh")
                self.assertEqual(r.rc, 75, r)
                self.assertLess(len(r.err), 2000)
                self.assertEqual(self.record()["refresh_token"], before["refresh_token"])
        r = self.mailoauth("token", ACCOUNT)
        self.assertEqual(r.rc, 0, r)

    def test_temporary_failure_serves_still_valid_token(self):
        # Inside the margin but not expired: a failed refresh is not fatal.
        self.edit_record(access_expires_at=int(time.time()) + 900)
        before = self.record()
        self.idp.fault("token", "status", count=1, status=503)
        r = self.mailoauth("--refresh-margin", "1000", "token", ACCOUNT)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.idp.counters().get("grant:refresh_token", 0), 1)  # it did try
        self.assertIn("using the current token", r.err)
        self.assertTrue(r.out == before["access_token"] + "\n", "not the current token")
        # A forced refresh (the server refused the token) has no fallback.
        self.idp.fault("token", "status", count=1, status=503)
        r = self.mailoauth("--refresh-margin", "1000", "token", ACCOUNT, "--force-refresh")
        self.assertEqual(r.rc, 75, r)

    def test_32_concurrent_calls_refresh_once(self):
        self.idp.set_access_lifetime(1)
        self.mailoauth("token", ACCOUNT, "--force-refresh")
        self.idp.set_access_lifetime(3600)
        self.wait_until_expired()
        self.idp.reset_counters()
        procs = [self.spawn("--refresh-margin", "0", "token", ACCOUNT) for _ in range(32)]
        results = [self.finish(p) for p in procs]
        self.assertEqual([r.rc for r in results], [0] * 32, [r for r in results if r.rc])
        self.assertEqual(self.idp.counters().get("grant:refresh_token", 0), 1)
        tokens = {r.out for r in results}
        self.assertEqual(len(tokens), 1)
        self.assertTrue(self.idp.valid_access_token(tokens.pop().strip()))
        self.assertEqual(self.mailoauth("status", ACCOUNT).rc, 0)
        self.assertEqual([f for f in os.listdir(self.store) if ".tmp" in f], [])

    def test_store_file_with_loose_mode_refused(self):
        path = os.path.join(self.store, ACCOUNT)
        os.chmod(path, 0o644)
        r = self.mailoauth("token", ACCOUNT)
        self.assertEqual(r.rc, 78, r)
        self.assertIn("chmod 600", r.err)
        self.assertEqual(r.out, "")

    def test_store_directory_with_loose_mode_refused(self):
        os.chmod(self.store, 0o755)
        r = self.mailoauth("token", ACCOUNT)
        self.assertEqual(r.rc, 78, r)
        self.assertIn("chmod 700", r.err)

    def test_symlinked_store_file_refused(self):
        path = os.path.join(self.store, ACCOUNT)
        os.rename(path, os.path.join(self.tmp, "elsewhere"))
        os.symlink(os.path.join(self.tmp, "elsewhere"), path)
        r = self.mailoauth("token", ACCOUNT)
        self.assertEqual(r.rc, 78, r)
        self.assertIn("symlink", r.err)

    def test_symlinked_store_directory_refused(self):
        link = os.path.join(self.tmp, "linked-store")
        os.symlink(self.store, link)
        r = self.mailoauth("token", ACCOUNT, env={"MAILOAUTH_STORE": link})
        self.assertEqual(r.rc, 78, r)
        self.assertIn("symlink", r.err)

    def test_corrupt_store_file_is_a_clear_error(self):
        path = os.path.join(self.store, ACCOUNT)
        with open(path, "w") as f:
            f.write("this is not a store record\n")
        r = self.mailoauth("token", ACCOUNT)
        self.assertEqual(r.rc, 78, r)
        self.assertIn(ACCOUNT, r.err)

    def test_unknown_account(self):
        r = self.mailoauth("token", "bob@example.com")
        self.assertEqual(r.rc, 77, r)
        self.assertIn("mailoauth login bob@example.com", r.err)

    def test_get_protocol(self):
        rec = self.record()
        req = "version=1\naccount=%s\nprotocol=imap\nhost=outlook.office365.com\nmechanism=XOAUTH2\nfuture_key=1\n\n" % ACCOUNT
        r = self.mailoauth("get", stdin=req)
        self.assertEqual(r.rc, 0, r)
        reply = dict(l.split("=", 1) for l in r.out.splitlines() if l)
        self.assertEqual(reply["access_token"], rec["access_token"])
        self.assertEqual(reply["user"], ACCOUNT)
        self.assertGreater(int(reply["expires_at"]), time.time() + 3000)
        self.assertTrue(r.out.endswith("\n\n"))
        # force_refresh=1 after a server rejected the token.
        r = self.mailoauth("get", stdin=req.replace("\n\n", "\nforce_refresh=1\n\n"))
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.idp.counters().get("grant:refresh_token", 0), 1)

    def test_get_bad_requests(self):
        cases = [
            ("", 65), ("account=\n\n", 65), ("garbage\n\n", 65), ("version=2\naccount=a\n\n", 65),
            ("account=../etc\n\n", 65), ("account=a\naccount=b\n\n", 65),
            ("account=nobody@example.com\n\n", 77),
        ]
        for req, rc in cases:
            with self.subTest(req=req):
                r = self.mailoauth("get", stdin=req)
                self.assertEqual(r.rc, rc, r)
                reply = dict(l.split("=", 1) for l in r.out.splitlines() if l)
                self.assertIn("error", reply)
                self.assertIn("error_description", reply)

    def test_get_refused_with_revoked_refresh_token(self):
        self.idp.revoke_refresh_tokens(ACCOUNT)
        r = self.mailoauth("get", stdin="version=1\naccount=%s\nforce_refresh=1\n\n" % ACCOUNT)
        self.assertEqual(r.rc, 77, r)
        reply = dict(l.split("=", 1) for l in r.out.splitlines() if l)
        self.assertEqual(reply["error"], "invalid_grant")
        self.assertIn("mailoauth login " + ACCOUNT, reply["error_description"])

    def test_status_and_logout(self):
        r = self.mailoauth("status")
        self.assertEqual(r.rc, 0, r)
        self.assertIn(ACCOUNT, r.out)
        self.assertIn("valid until", r.out)
        j = self.mailoauth("status", "--json")
        data = json.loads(j.out)
        self.assertEqual(data[0]["account"], ACCOUNT)
        self.assertTrue(data[0]["access_token_valid"])
        rec = self.record()
        self.assertNotIn(rec["access_token"], r.out + j.out)
        self.assertNotIn(rec["refresh_token"], r.out + j.out)
        self.assertEqual(self.mailoauth("logout", ACCOUNT).rc, 0)
        self.assertEqual(self.mailoauth("token", ACCOUNT).rc, 77)

    def test_crash_during_refresh_leaves_working_store(self):
        before = self.record()
        self.idp.fault("token", "delay", count=1, seconds=3)
        p = self.spawn("token", ACCOUNT, "--force-refresh")
        time.sleep(1.0)              # the refresh request is in flight
        p.send_signal(signal.SIGKILL)
        self.finish(p)
        self.assertEqual(self.record()["refresh_token"], before["refresh_token"])
        r = self.mailoauth("token", ACCOUNT, "--force-refresh")
        self.assertEqual(r.rc, 0, r)

    def test_full_disk_during_refresh_keeps_previous_tokens(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to mount a small tmpfs")
        mnt = os.path.join(self.tmp, "small")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs", mnt]).returncode:
            self.skipTest("mount not permitted here")
        try:
            store = os.path.join(mnt, "store")
            shutil.copytree(self.store, store)
            os.chmod(store, 0o700)
            env = {"MAILOAUTH_STORE": store}
            filler = os.path.join(mnt, "filler")
            fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
            try:
                while True:
                    os.write(fd, b"x" * 512)
            except OSError:
                pass
            finally:
                os.close(fd)
            r = self.mailoauth("token", ACCOUNT, "--force-refresh", env=env)
            self.assertEqual(r.rc, 75, r)
            self.assertIn("previous tokens are kept", r.err)
            os.unlink(filler)
            r = self.mailoauth("token", ACCOUNT, "--force-refresh", env=env)
            self.assertEqual(r.rc, 0, r)
            self.assertEqual([f for f in os.listdir(store) if ".tmp" in f], [])
        finally:
            subprocess.run(["umount", mnt])


class CommandLine(HelperTestCase):
    def test_usage_errors(self):
        for args in (["token"], ["frobnicate"], ["token", ACCOUNT, "--bogus"], ["login", "a/b", "--client-id", "x"],
                     ["--http-timeout", "0", "status"], ["status", "--force-refresh"]):
            with self.subTest(args=args):
                self.assertEqual(self.mailoauth(*args).rc, 64)

    def test_help_lists_every_verb(self):
        r = self.mailoauth("--help")
        self.assertEqual(r.rc, 0)
        for verb in ("login", "token", "get", "status", "logout"):
            self.assertIn(verb, r.out)

    def test_broken_config_names_file_and_line(self):
        self.write_config("http_timeout = 5\nfrobnicate = yes\n")
        r = self.mailoauth("status")
        self.assertEqual(r.rc, 78, r)
        self.assertIn(self.config + ":2:", r.err)

    def test_missing_explicit_config(self):
        r = self.mailoauth("status", env={"MAILOAUTH_CONFIG": "/nonexistent/mailoauth.conf"})
        self.assertEqual(r.rc, 78, r)
        self.assertIn("/nonexistent/mailoauth.conf", r.err)


if __name__ == "__main__":
    tap.main()
