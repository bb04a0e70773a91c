"""libmailoauth.so through the real libsasl2 client API (sasl_client_init,
sasl_client_new, sasl_client_start, sasl_client_step) with SASL_PATH set to
the build: the bytes of both initial responses, the error-challenge replies,
force_refresh after a rejection, the in-process cache, fake helpers that
misbehave, configuration errors, and no token in any log line.

Every exchange runs twice: with callbacks (Postfix) and with SASL_INTERACT
prompts answered by the program (mbsync)."""
import hashlib
import json
import os
import re
import signal
import shutil
import time
import unittest

import tap
from pluginlib import (LOG_DIR, LOG_FILE, PLUGIN_DIR, SASL_CB_AUTHNAME, SASL_CB_PASS,
                       SASL_CB_USER, SASL_SEC_NOANONYMOUS, SASL_SEC_NOPLAINTEXT, Scenario,
                       helper, step)

SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
ERR_401 = json.dumps({"status": "401", "schemes": "bearer", "scope": SCOPE})
ERR_INVALID = json.dumps({"status": "invalid_token", "scope": "https://mail.google.com/",
                          "openid-configuration": "https://example.com/.well-known/openid"})

ALL_TOKENS = set()   # every token a fake helper handed out, for the log audit


def living_in_group(pgid):
    """Processes of process group pgid that are not zombies."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(pid))
    return found


def xoauth2(user, token):
    return b"user=" + user.encode() + b"\x01auth=Bearer " + token.encode() + b"\x01\x01"


def oauthbearer(authz, token, host=None, port=None):
    out = b"n,a=" + authz.encode() + b",\x01"
    if host:
        out += b"host=" + host.encode() + b"\x01"
    if port:
        out += b"port=" + port.encode() + b"\x01"
    return out + b"auth=Bearer " + token.encode() + b"\x01\x01"


class Base(unittest.TestCase):
    interact = False

    def scenario(self, **kw):
        s = Scenario(**kw)
        self.addCleanup(s.cleanup)
        self.addCleanup(lambda: ALL_TOKENS.update(r["token"] for r in s.records() if "token" in r))
        return s

    def run_driver(self, s, actions, **kw):
        kw.setdefault("interact", self.interact)
        res = s.run(actions, **kw)
        self.assertEqual(res[0]["action"], "init")
        self.assertEqual(res[0]["rc"], "SASL_OK")
        if kw["interact"]:
            for r in res:
                if r["action"] == "start" and r["prompts"]:
                    # mbsync answers what it is asked; the plugin must never
                    # ask for a password it does not need.
                    self.assertNotIn(SASL_CB_PASS, r["prompts"])
                    self.assertIn(SASL_CB_AUTHNAME, r["prompts"])
        return res[1:]

    def tokens(self, s):
        return [r["token"] for r in s.records() if r.get("helper") == "ok"]

    def requests(self, s):
        return [r["request"] for r in s.records()]


class Exchange(Base):
    """Byte-exact exchanges, with callbacks."""

    def test_xoauth2_initial_response_and_success(self):
        s = self.scenario()
        start, done = self.run_driver(s, ["start:XOAUTH2", step(b"")])
        self.assertEqual(start["rc"], "SASL_OK")
        self.assertEqual(start["mech"], "XOAUTH2")
        [token] = self.tokens(s)
        self.assertEqual(start["bytes"], xoauth2("alice@example.com", token))
        self.assertEqual(done["rc"], "SASL_OK")
        self.assertEqual(self.requests(s), [
            "version=1\naccount=alice@example.com\nprotocol=imap\nhost=imap.example.com\n"
            "port=993\nmechanism=XOAUTH2\n\n"])
        self.assertEqual(s.records()[0]["argv"][1:], ["get"])

    def test_oauthbearer_initial_response_with_host_and_port(self):
        s = self.scenario()
        start, done = self.run_driver(s, ["start:OAUTHBEARER", step(b"")],
                                      remote="192.0.2.7;993", service="imap")
        [token] = self.tokens(s)
        self.assertEqual(start["mech"], "OAUTHBEARER")
        self.assertEqual(start["bytes"],
                         oauthbearer("alice@example.com", token, "imap.example.com", "993"))
        self.assertEqual(done["rc"], "SASL_OK")
        self.assertIn("mechanism=OAUTHBEARER\n", self.requests(s)[0])

    def test_oauthbearer_without_host_or_port(self):
        s = self.scenario()
        [start] = self.run_driver(s, ["start:OAUTHBEARER"], host=None, remote=None)
        [token] = self.tokens(s)
        self.assertEqual(start["bytes"], oauthbearer("alice@example.com", token))
        self.assertEqual(self.requests(s), [
            "version=1\naccount=alice@example.com\nprotocol=imap\nmechanism=OAUTHBEARER\n\n"])

    def test_smtp_service_and_port(self):
        s = self.scenario()
        [start] = self.run_driver(s, ["start:XOAUTH2"], service="smtp", host="smtp.example.com",
                                  remote="192.0.2.9;587")
        self.assertIn("protocol=smtp\nhost=smtp.example.com\nport=587\n", self.requests(s)[0])

    def test_shared_mailbox_user_from_helper(self):
        s = self.scenario(fake={"USER": "shared@example.com"})
        x, o = self.run_driver(s, ["start:XOAUTH2", "start:OAUTHBEARER"])
        [token] = self.tokens(s)  # the second connection is served from the cache
        self.assertEqual(x["bytes"], xoauth2("shared@example.com", token))
        self.assertEqual(o["bytes"],
                         oauthbearer("shared@example.com", token, "imap.example.com", "993"))

    def test_authzid_is_put_on_the_wire_with_gs2_escaping(self):
        s = self.scenario()
        x, o = self.run_driver(s, ["start:XOAUTH2", "start:OAUTHBEARER"],
                               user="a,b=c@example.com")
        [token] = self.tokens(s)
        self.assertIn("account=alice@example.com\n", self.requests(s)[0])
        self.assertEqual(x["bytes"], xoauth2("a,b=c@example.com", token))
        self.assertEqual(o["bytes"], b"n,a=a=2Cb=3Dc@example.com,\x01host=imap.example.com\x01"
                                     b"port=993\x01auth=Bearer " + token.encode() + b"\x01\x01")

    def test_xoauth2_error_challenge_then_force_refresh(self):
        s = self.scenario()
        start, reply, again = self.run_driver(
            s, ["start:XOAUTH2", step(ERR_401), "start:XOAUTH2"])
        first, second = self.tokens(s)
        self.assertEqual(start["bytes"], xoauth2("alice@example.com", first))
        self.assertEqual(reply["rc"], "SASL_CONTINUE")
        self.assertEqual(reply["bytes"], b"")            # XOAUTH2: empty response
        logged = " ".join(reply["logs"])
        self.assertIn("status 401", logged)
        self.assertIn("scope " + SCOPE, logged)
        # The refused token is replaced while answering the challenge (the
        # next attempt may be another process); the request names it.
        req1, req2 = self.requests(s)
        self.assertNotIn("force_refresh", req1)
        # Named by the first 8 bytes of its SHA-256, never by its characters.
        self.assertIn("mechanism=XOAUTH2\nforce_refresh=1\nrejected=" +
                      hashlib.sha256(first.encode()).hexdigest()[:16] + "\n\n", req2)
        self.assertIn("new token", " ".join(reply["logs"]))
        self.assertNotEqual(first, second)
        self.assertEqual(again["bytes"], xoauth2("alice@example.com", second))

    def test_oauthbearer_error_challenge_then_force_refresh(self):
        s = self.scenario()
        start, reply, again, later = self.run_driver(
            s, ["start:OAUTHBEARER", step(ERR_INVALID), "start:OAUTHBEARER", "start:OAUTHBEARER"])
        self.assertEqual(reply["rc"], "SASL_CONTINUE")
        self.assertEqual(reply["bytes"], b"\x01")        # RFC 7628 3.2.3
        self.assertIn("status invalid_token", " ".join(reply["logs"]))
        reqs = self.requests(s)
        self.assertEqual(len(reqs), 2)  # the fresh token is cached again
        self.assertIn("force_refresh=1\n", reqs[1])
        second = self.tokens(s)[1]
        self.assertEqual(later["bytes"],
                         oauthbearer("alice@example.com", second, "imap.example.com", "993"))

    def test_non_json_error_challenge_still_answered(self):
        s = self.scenario()
        _, reply, after = self.run_driver(s, ["start:XOAUTH2", step(b"\x00junk"), step(b"x")])
        self.assertEqual(reply["rc"], "SASL_CONTINUE")
        self.assertEqual(reply["bytes"], b"")
        self.assertIn("not JSON", " ".join(reply["logs"]))
        self.assertEqual(after["rc"], "SASL_BADPROT")


class ExchangeInteract(Exchange):
    """The same exchanges with SASL_INTERACT prompts (mbsync)."""
    interact = True


class Credentials(Base):
    """Where the account comes from when a program gives only some names."""

    def test_user_callback_only_is_the_account(self):
        # A program that registers SASL_CB_USER but no SASL_CB_AUTHNAME: that
        # name is the account, not libsasl2's default (the Unix login name).
        s = self.scenario(env={"USER": "unixlogin"})
        [start] = self.run_driver(s, ["start:XOAUTH2"], authname=None, user="carol@example.com")
        [token] = self.tokens(s)
        self.assertIn("account=carol@example.com\n", self.requests(s)[0])
        self.assertEqual(start["bytes"], xoauth2("carol@example.com", token))

    def test_authname_and_user_both_given(self):
        s = self.scenario()
        [start] = self.run_driver(s, ["start:XOAUTH2"], authname="alice@example.com",
                                  user="shared@example.com")
        [token] = self.tokens(s)
        self.assertIn("account=alice@example.com\n", self.requests(s)[0])
        self.assertEqual(start["bytes"], xoauth2("shared@example.com", token))


class Cache(Base):
    def test_helper_runs_once_for_several_connections(self):
        s = self.scenario()
        res = self.run_driver(s, ["start:XOAUTH2", step(b""), "start:XOAUTH2", step(b""),
                                  "start:OAUTHBEARER", step(b"")])
        self.assertEqual(len(s.records()), 1)
        [token] = self.tokens(s)
        self.assertEqual(res[2]["bytes"], xoauth2("alice@example.com", token))
        self.assertTrue(all(r["rc"] == "SASL_OK" for r in res), res)

    def test_helper_runs_again_when_token_nears_expiry(self):
        # Valid for refresh_margin + 3 s: cached for about 3 s, then refreshed.
        s = self.scenario(config="refresh_margin = 600\n", fake={"TTL": 603})
        res = self.run_driver(s, ["start:XOAUTH2", "start:XOAUTH2", "sleep:3600",
                                  "start:XOAUTH2"])
        first, second = self.tokens(s)
        self.assertEqual(res[1]["bytes"], xoauth2("alice@example.com", first))
        self.assertEqual(res[2]["bytes"], xoauth2("alice@example.com", second))
        self.assertNotIn("force_refresh", self.requests(s)[1])

    def test_token_inside_margin_is_used_but_not_cached(self):
        s = self.scenario(config="[account alice@example.com]\nrefresh_margin = 900\n",
                          fake={"TTL": 800})
        res = self.run_driver(s, ["start:XOAUTH2", "start:XOAUTH2"])
        self.assertEqual(len(s.records()), 2)
        self.assertTrue(all(r["rc"] == "SASL_OK" for r in res))

    def test_cache_is_per_account(self):
        s = self.scenario()
        res = self.run_driver(s, ["as:alice@example.com", "start:XOAUTH2",
                                  "as:bob@example.com", "start:XOAUTH2",
                                  "as:alice@example.com", "start:XOAUTH2"])
        reqs = self.requests(s)
        self.assertEqual(len(reqs), 2)
        self.assertIn("account=alice@example.com\n", reqs[0])
        self.assertIn("account=bob@example.com\n", reqs[1])
        alice, bob = self.tokens(s)
        self.assertEqual(res[2]["bytes"], xoauth2("alice@example.com", alice))
        self.assertEqual(res[1]["bytes"], xoauth2("bob@example.com", bob))

    def test_rejection_marks_only_that_account(self):
        s = self.scenario()
        self.run_driver(s, ["as:alice@example.com", "start:XOAUTH2",
                            "as:bob@example.com", "start:XOAUTH2",
                            "as:alice@example.com", "start:XOAUTH2", step(ERR_401),
                            "as:bob@example.com", "start:XOAUTH2",
                            "as:alice@example.com", "start:XOAUTH2"])
        reqs = self.requests(s)
        self.assertEqual(len(reqs), 3)
        self.assertNotIn("force_refresh", reqs[1])
        self.assertIn("account=alice@example.com\n", reqs[2])
        self.assertIn("force_refresh=1\n", reqs[2])


class CacheInteract(Cache):
    interact = True


class FakeHelpers(Base):
    """Helpers that misbehave: the right SASL code, a clear message, no hang."""

    def start(self, s, **kw):
        t0 = time.monotonic()
        [r] = self.run_driver(s, ["start:XOAUTH2"], **kw)
        return r, time.monotonic() - t0

    def test_hang_is_killed_at_time_limit_with_its_group(self):
        s = self.scenario(config="timeout = 1\n", helper_name="hang")
        r, elapsed = self.start(s)
        self.assertEqual(r["rc"], "SASL_TRYAGAIN")
        self.assertIn("did not answer within 1 s", r["detail"])
        self.assertLess(elapsed, 6)
        [rec] = s.records()
        self.assertEqual(rec["pid"], rec["pgid"])  # its own process group
        self.assertNotEqual(rec["pgid"], os.getpgid(0))
        # Nothing of the group is left running.  A killed orphan may stay a
        # zombie until init gets round to reaping it: that is not running.
        self.assertEqual(living_in_group(rec["pgid"]), [])

    def test_crash(self):
        r, _ = self.start(self.scenario(helper_name="crash"))
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("killed by SIGSEGV", r["detail"])

    def test_exit_75_is_try_again(self):
        s = self.scenario(helper_name="fail", fake={"EXIT": 75, "ERROR": "temporarily_unavailable",
                                                    "DESC": "login.microsoftonline.com: timeout"})
        r, _ = self.start(s)
        self.assertEqual(r["rc"], "SASL_TRYAGAIN")
        self.assertIn("login.microsoftonline.com: timeout", r["detail"])

    def test_exit_77_needs_login(self):
        s = self.scenario(helper_name="fail", fake={
            "EXIT": 77, "DESC": "AADSTS700082: the refresh token has expired \x1b[31mred\x07"})
        r, _ = self.start(s)
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("AADSTS700082: the refresh token has expired ?[31mred?", r["detail"])
        self.assertNotIn("\x1b", r["detail"])
        self.assertIn("mailoauth login alice@example.com", r["detail"])

    def test_exit_78_configuration(self):
        s = self.scenario(helper_name="fail", fake={
            "EXIT": 78, "ERROR": "config", "DESC": "no client_id for account alice@example.com"})
        r, _ = self.start(s)
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("no client_id for account alice@example.com", r["detail"])
        self.assertIn("mailoauth login alice@example.com", r["detail"])

    def test_exit_64_bad_usage(self):
        s = self.scenario(helper_name="fail", fake={"EXIT": 64, "DESC": "unknown key"})
        r, _ = self.start(s)
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("refused the request (exit status 64): unknown key", r["detail"])

    def test_garbage(self):
        r, _ = self.start(self.scenario(helper_name="garbage"))
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("malformed reply (line 1", r["detail"])
        self.assertNotIn("HTTP", r["detail"])  # never the helper's raw output

    def test_megabytes(self):
        r, elapsed = self.start(self.scenario(helper_name="flood"))
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("printed more than 64 KiB", r["detail"])
        self.assertLess(elapsed, 5)

    def test_nothing(self):
        r, _ = self.start(self.scenario(helper_name="silent"))
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("printed no reply", r["detail"])

    def test_missing_helper(self):
        s = self.scenario(helper_name=None, env={"MAILOAUTH_HELPER": "/nonexistent/mailoauth"})
        r, _ = self.start(s)
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("cannot run the token helper /nonexistent/mailoauth: No such file", r["detail"])

    def test_token_with_separator_is_refused(self):
        s = self.scenario(fake={"TOKEN": "abc\x01user=mallory"})
        r, _ = self.start(s)
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn("characters a bearer token cannot have", r["detail"])

    def test_environment_is_a_whitelist(self):
        s = self.scenario(config="store = /var/lib/mailoauth-test\n",
                          env={"FOO": "bar", "LD_LIBRARY_PATH": "/nonexistent", "LC_ALL": "C.UTF-8",
                               "TZ": "UTC", "MAILOAUTH_EXTRA": "1", "XDG_STATE_HOME": "/x"})
        self.start(s)
        env = s.records()[0]["env"]
        for gone in ("FOO", "LD_LIBRARY_PATH", "SASL_PATH"):
            self.assertNotIn(gone, env)
        self.assertEqual(env["PATH"], "/usr/local/bin:/usr/bin:/bin")
        self.assertEqual(env["MAILOAUTH_STORE"], "/var/lib/mailoauth-test")
        for kept in ("LC_ALL", "TZ", "MAILOAUTH_EXTRA", "XDG_STATE_HOME", "HOME",
                     "MAILOAUTH_CONFIG"):
            self.assertIn(kept, env)

    def test_environment_store_wins_over_config(self):
        s = self.scenario(config="store = /from/config\n", env={"MAILOAUTH_STORE": "/from/env"})
        self.start(s)
        self.assertEqual(s.records()[0]["env"]["MAILOAUTH_STORE"], "/from/env")

    def test_helper_from_config(self):
        s = self.scenario(config="helper = %s\n" % helper("ok"), helper_name=None)
        r, _ = self.start(s)
        self.assertEqual(r["rc"], "SASL_OK")
        self.assertEqual(len(s.records()), 1)


class FakeHelpersInteract(FakeHelpers):
    interact = True


class ReapingHost(Base):
    """A host that ignores SIGCHLD or reaps children in its own handler
    takes the helper's exit status before the plugin can read it; the
    reply's status=N (as `mailoauth get` sends) then carries it, so "try
    again later" stays SASL_TRYAGAIN and 77/78 keep their advice."""

    def start(self, mode, helper_name, fake):
        s = self.scenario(helper_name=helper_name, fake=fake)
        [r] = self.run_driver(s, ["start:XOAUTH2"], extra_args=["--sigchld", mode])
        if mode == "reap":
            # The premise: the host's handler took the helper.
            self.assertGreaterEqual(r["reaped"], 1, r)
        return r

    def test_status_75_is_try_again(self):
        for mode in ("ignore", "reap"):
            r = self.start(mode, "fail", {"EXIT": 75, "STATUS": 75, "ERROR": "temporarily_unavailable",
                                          "DESC": "login.microsoftonline.com: timeout"})
            self.assertEqual(r["rc"], "SASL_TRYAGAIN", (mode, r))
            self.assertIn("temporary failure", r["detail"])
            self.assertIn("login.microsoftonline.com: timeout", r["detail"])

    def test_status_77_keeps_login_advice(self):
        for mode in ("ignore", "reap"):
            r = self.start(mode, "fail", {"EXIT": 77, "STATUS": 77,
                                          "DESC": "AADSTS700082: the refresh token has expired"})
            self.assertEqual(r["rc"], "SASL_FAIL", (mode, r))
            self.assertIn("AADSTS700082: the refresh token has expired", r["detail"])
            self.assertIn("mailoauth login alice@example.com", r["detail"])

    def test_status_78_keeps_configuration_advice(self):
        for mode in ("ignore", "reap"):
            r = self.start(mode, "fail", {"EXIT": 78, "STATUS": 78, "ERROR": "config",
                                          "DESC": "no client_id for account alice@example.com"})
            self.assertEqual(r["rc"], "SASL_FAIL", (mode, r))
            self.assertIn("no client_id for account alice@example.com", r["detail"])

    def test_nothing_or_garbage_is_named_as_such(self):
        for mode in ("ignore", "reap"):
            r = self.start(mode, "silent", {})
            self.assertIn("printed no reply", r["detail"])
            r = self.start(mode, "garbage", {})
            self.assertIn("malformed reply", r["detail"])

    def test_token_still_served(self):
        for mode in ("ignore", "reap"):
            for fake in ({"STATUS": 0}, {}):  # `mailoauth get`, and an older helper without status
                r = self.start(mode, "ok", fake)
                self.assertEqual(r["rc"], "SASL_OK", (mode, fake, r))

    def test_without_status_the_loss_is_named(self):
        # The premise of the cases above: with SIGCHLD ignored the exit
        # status is really gone, and a failure reply without status is not
        # mistaken for success.
        r = self.start("ignore", "fail", {"EXIT": 75, "DESC": "timeout"})
        self.assertEqual(r["rc"], "SASL_FAIL", r)
        self.assertIn("the exit status of the token helper %s was lost" % helper("fail"), r["detail"])
        self.assertIn("timeout", r["detail"])

    def test_exit_status_wins_over_reply_status(self):
        # Both known and different: the exit status is the helper's last
        # word (mailoauth-plugin(8)).
        s = self.scenario(helper_name="fail", fake={"EXIT": 75, "STATUS": 0})
        [r] = self.run_driver(s, ["start:XOAUTH2"])
        self.assertEqual(r["rc"], "SASL_TRYAGAIN", r)
        s = self.scenario(fake={"STATUS": 75})
        [r] = self.run_driver(s, ["start:XOAUTH2"])
        self.assertEqual(r["rc"], "SASL_OK", r)


class Configuration(Base):
    def check_broken(self, s, *needles):
        res = self.run_driver(s, ["listmech", "start:XOAUTH2", "start:OAUTHBEARER"])
        mechs = res[0]["bytes"].decode().split()
        self.assertIn("XOAUTH2", mechs)      # init did not fail: still loadable
        self.assertIn("OAUTHBEARER", mechs)
        for r in res[1:]:
            self.assertEqual(r["rc"], "SASL_FAIL")
            for n in needles:
                self.assertIn(n, r["detail"])
        self.assertEqual(s.records(), [])  # the helper was never run

    def test_missing_config_file(self):
        s = self.scenario(env={"MAILOAUTH_CONFIG": "/nonexistent/mailoauth.conf"})
        self.check_broken(s, "/nonexistent/mailoauth.conf: cannot open")

    def test_malformed_config_names_file_and_line(self):
        s = self.scenario(config="# mailoauth\nlog_level = debug\nbogus = 1\n")
        self.check_broken(s, s.config + ":3: unknown setting 'bogus'")

    def test_bad_timeout_names_line(self):
        s = self.scenario(config="\ntimeout = forever\n")
        self.check_broken(s, s.config + ":2: 'timeout' must be a whole number")

    def test_relative_helper_names_line(self):
        s = self.scenario(config="helper = mailoauth\n", helper_name=None)
        self.check_broken(s, s.config + ":1: 'helper' must be an absolute path")

    def test_bad_account_refresh_margin(self):
        s = self.scenario(config="[account alice@example.com]\nrefresh_margin = -5\n")
        [r] = self.run_driver(s, ["start:XOAUTH2"])
        self.assertEqual(r["rc"], "SASL_FAIL")
        self.assertIn(s.config + ":2: 'refresh_margin'", r["detail"])

    def test_relative_helper_from_environment(self):
        s = self.scenario(helper_name=None, env={"MAILOAUTH_HELPER": "bin/mailoauth"})
        self.check_broken(s, "MAILOAUTH_HELPER must be an absolute path")

    def test_init_warns_about_broken_config(self):
        s = self.scenario(config="bogus\n")
        res = s.run(["start:XOAUTH2"], interact=self.interact)
        self.assertIn(s.config + ":1:", " ".join(res[1]["logs"]))


class Selection(Base):
    """Postfix's default smtp_sasl_security_options (noplaintext,
    noanonymous) with Debian's own modules beside ours: XOAUTH2 is chosen
    over LOGIN and PLAIN even when the server lists them first."""

    def test_postfix_default_security_options_pick_xoauth2(self):
        s = self.scenario()
        mods = os.path.join(s.dir, "sasl2")
        os.mkdir(mods)
        libdir = os.popen("pkg-config --variable=libdir libsasl2").read().strip()
        debian = os.path.join(libdir, "sasl2")
        # The system's own modules, but none that registers XOAUTH2: an
        # installed mailoauth (the Debian package) or a rival would stand
        # in for the build under test, or collide with its link.
        not_theirs = {"libmailoauth.so", "libxoauth2.so", "libsasl-xoauth2.so"}
        if os.path.isdir(debian):
            for name in os.listdir(debian):
                if name.endswith(".so") and name not in not_theirs:
                    os.symlink(os.path.join(debian, name), os.path.join(mods, name))
        os.symlink(os.path.join(PLUGIN_DIR, "libmailoauth.so"), os.path.join(mods, "libmailoauth.so"))
        s.env["SASL_PATH"] = mods
        [r] = self.run_driver(s, ["start:LOGIN PLAIN XOAUTH2"], service="smtp",
                              secflags=SASL_SEC_NOPLAINTEXT | SASL_SEC_NOANONYMOUS,
                              extra_args=["--pass", "unused"])
        self.assertEqual(r["rc"], "SASL_OK")
        self.assertEqual(r["mech"], "XOAUTH2")

    def test_rival_xoauth2_module_is_reported(self):
        s = self.scenario()
        mods = os.path.join(s.dir, "sasl2")
        os.mkdir(mods)
        os.symlink(os.path.join(PLUGIN_DIR, "libmailoauth.so"), os.path.join(mods, "libmailoauth.so"))
        # Not a real module (libsasl2 just fails to load it): only its name matters.
        open(os.path.join(mods, "libxoauth2.so"), "w").close()
        s.env["SASL_PATH"] = mods
        # Logged at init (where libsasl2 sends it to syslog) and again, once,
        # on the first connection, through the program's own log callback.
        res = s.run(["start:XOAUTH2", "start:XOAUTH2"], interact=self.interact)
        self.assertIn("libxoauth2.so also provides XOAUTH2", " ".join(res[1]["logs"]))
        self.assertNotIn("also provides", " ".join(res[2]["logs"]))


class TestZZLogAudit(unittest.TestCase):
    """Runs last (unittest sorts by name): everything the SASL log callback
    received in this run, and every error string, holds no token."""

    def test_no_token_in_any_log_line(self):
        self.assertTrue(ALL_TOKENS, "no tokens were handed out: did the other tests run?")
        with open(LOG_FILE, encoding="utf-8", errors="replace") as f:
            text = f.read()
        self.assertIn("mailoauth:", text)
        self.assertIn("status 401", text)
        for token in ALL_TOKENS:
            # Not the token, nor any 12-character piece of it (a 4-character
            # fingerprint is allowed).
            for i in range(0, max(1, len(token) - 12)):
                self.assertNotIn(token[i:i + 12], text)
        shutil.rmtree(LOG_DIR, ignore_errors=True)


if __name__ == "__main__":
    tap.main()
