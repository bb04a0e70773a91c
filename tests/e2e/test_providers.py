"""Browser sign-in end to end, per provider, against the real Dovecot.

One module fixture (sasllib.MailSetup: the fake identity provider and a
Dovecot whose oauth2 passdb introspects tokens at the fake).  Per provider
one `mailoauth login alice@example.com ... --browser`: the URL it prints is
followed by the scripted browser (tests/lib/browser.py) through the fake's
authorization endpoint to mailoauth's loopback listener.  Then the account

  * refreshes: `mailoauth token ACCOUNT --force-refresh` gets a new access
    token with the refresh-token grant at that provider's token endpoint
    (the fake's counters), and
  * logs in to Dovecot through the plugin (imtest, IMAP AUTHENTICATE) and
    through `mailoauth token` (msmtp with auth xoauth2 over submission;
    the message lands in the maildir).

The two SASL mechanisms are split across the providers, as the plugin's
mechanism code does not depend on the provider:

  provider                         plugin (imtest)       msmtp
  Microsoft global                 XOAUTH2               yes
  Microsoft --cloud usgov          OAUTHBEARER           -
  personal (--tenant consumers)    XOAUTH2               -
  Google (client secret file)      OAUTHBEARER           yes
  generic OIDC (discovery)         XOAUTH2, OAUTHBEARER  yes
  Microsoft, --paste               OAUTHBEARER           -

plus what is particular to each: the .us scope prefix of usgov, the
consumers tenant's endpoints, Google's record (provider google, the secret
kept) and its refresh with the secret (the fake refuses one without), the
issuer's discovery document, and a scripted user who pastes the address the
browser ended on.  The module ends by checking that no secret the fake
issued (tokens, codes, PKCE verifiers, the Google client secret) is in
anything captured.
"""
import os
import subprocess
import sys
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "sasl"))
import browser  # noqa: E402
import mailenv  # noqa: E402
import sasllib  # noqa: E402
from sasllib import ALICE  # noqa: E402
from test_token_clients import (message, render_client,  # noqa: E402
                                unique_subject, xoauth2_forms)

SETUP = None
MISSING = sasllib.missing_programs(extra=("/usr/bin/msmtp",
                                          "/usr/lib/dovecot/submission"))
IMAP_SELECT = (b"x1 SELECT INBOX\r\n"
               b"x2 LOGOUT\r\n")
US_PREFIX = "https://outlook.office365.us/"


def setUpModule():
    global SETUP
    if MISSING:
        return
    SETUP = sasllib.MailSetup().start()
    try:
        # `mailoauth` on PATH, as msmtp's passwordeval runs it.
        bindir = SETUP.path("bin")
        os.makedirs(bindir)
        os.symlink(os.path.abspath(sasllib.helper_path()),
                   os.path.join(bindir, "mailoauth"))
        SETUP.bindir = bindir
    except BaseException:
        SETUP.stop()
        SETUP = None
        raise


def tearDownModule():
    global SETUP
    setup, SETUP = SETUP, None
    try:
        if setup is not None:
            # msmtp's and imtest's debug output could carry a token's
            # XOAUTH2 form: the leak check looks for those too.
            setup._secrets.update([f for s in list(setup.secrets()) if len(s) >= 8
                                   for f in xoauth2_forms(s)])
    finally:
        sasllib.stop_checking_leaks(setup)


class Account:
    """One signed-in account: its own store and mailoauth.conf."""

    def __init__(self, setup, name):
        self.setup = setup
        self.name = name
        self.store = setup.make_store(name)
        self.dir = setup.path(name)
        self.conf = setup.write_config(self.dir, self.store)
        self.env = setup.client_env(self.conf, home=self.dir)

    def record(self):
        return self.setup.record(self.store)


class Providers(unittest.TestCase):

    def setUp(self):
        if SETUP is None:
            self.skipTest("not installed/built: " + " ".join(MISSING))
        self.setup = SETUP
        self.idp = SETUP.idp
        # Codes, tokens, counters and the scopes seen, from this test only
        # (the issued secrets keep their history for the leak check).
        self.idp.reset()

    # --- steps -----------------------------------------------------------

    def sign_in(self, name, *args, paste=False):
        """`mailoauth login alice ARGS --browser` (or --paste, the scripted
        user pasting the address the browser ended on) for a new Account."""
        acct = Account(self.setup, name)
        argv = [sasllib.helper_path(), "login", ALICE, *args,
                "--paste" if paste else "--browser", "--timeout", "30"]
        proc = subprocess.Popen(argv, env=acct.env, cwd=acct.dir,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        seen = []
        try:
            url = browser.read_auth_url(proc.stderr, timeout=15, seen=seen)
            if paste:
                line = browser.redirect_location(url, self.setup.ca.ca_file)
                out, err = proc.communicate((line + "\n").encode(), timeout=30)
            else:
                status, page = browser.follow(url, self.setup.ca.ca_file)
                self.assertEqual(status, 200, self.setup.redact(page))
                self.assertIn("Signed in", page)
                out, err = proc.communicate(timeout=30)
        except BaseException:
            proc.kill()
            proc.communicate(timeout=10)
            raise
        err = "\n".join(seen) + "\n" + err.decode("utf-8", "replace")
        self.setup.outputs.append(("mailoauth login " + name,
                                   out.decode("utf-8", "replace") + err))
        self.assertEqual(proc.returncode, 0, self.setup.redact(err))
        self.assertIn("Signed in.", err)
        rec = acct.record()
        self.assertEqual(rec["grant"], "authorization_code")
        self.assertTrue(self.idp.valid_access_token(rec["access_token"]))
        acct.url = url
        return acct

    def refreshes(self, acct, token_endpoint):
        """A forced refresh: one refresh-token grant at TOKEN_ENDPOINT (the
        fake's counter name), a new valid access token in the store."""
        before = acct.record()["access_token"]
        self.idp.reset_counters()
        r = self.setup.helper(acct.conf, "token", ALICE, "--force-refresh")
        self.assertEqual(r.returncode, 0, self.setup.redact(r.stderr))
        after = acct.record()["access_token"]
        self.assertEqual(r.stdout, after + "\n")
        self.assertNotEqual(after, before)
        self.assertTrue(self.idp.valid_access_token(after))
        c = self.idp.counters()
        self.assertEqual(c.get("grant:refresh_token"), 1, c)
        self.assertEqual(c.get(token_endpoint), 1, c)

    def imap_login(self, acct, mech):
        """imtest through libmailoauth.so (which runs `mailoauth get`)."""
        offset = len(self.setup.dovecot.log())
        rc, out, _ = self.setup.run_cyrus(
            "imtest", mech, self.setup.dovecot.ports["imap"], IMAP_SELECT,
            acct.env)
        self.assertIn("Authenticated.", out, out)
        self.assertRegex(out, r"x1 OK \[READ-WRITE\]", out)
        line = "imap-login: Info: Login: user=<%s>, method=%s" % (ALICE, mech)
        mailenv.wait_for(lambda: line in self.setup.dovecot.log()[offset:],
                         10, what="dovecot log line %r" % line)

    def msmtp_sends(self, acct):
        """msmtp with the README's configuration: `mailoauth token` gives
        the bearer token, XOAUTH2 over submission with STARTTLS."""
        rc_file = os.path.join(acct.dir, ".msmtprc")
        with open(rc_file, "w") as f:
            f.write(render_client("msmtprc.in", {
                "SMTP_HOST": "127.0.0.1",
                "SUBMISSION_PORT": self.setup.dovecot.ports["submission"],
                "CA_FILE": self.setup.ca.ca_file}))
        os.chmod(rc_file, 0o600)
        subject = unique_subject("providers-" + acct.name)
        env = dict(acct.env, PATH=self.setup.bindir + ":/usr/bin:/bin")
        offset = len(self.setup.dovecot.log())
        r = subprocess.run(["msmtp", ALICE], input=message(subject), env=env,
                           cwd=acct.dir, capture_output=True, timeout=30)
        text = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.setup.outputs.append(("msmtp " + acct.name, text))
        self.assertEqual(r.returncode, 0, self.setup.redact(text) + "\n" +
                         self.setup.redact(self.setup.dovecot.log()[offset:]))
        got = self.setup.dovecot.wait_for_message(ALICE, subject, 15)
        self.assertIn(b"with ESMTPSA", got)
        line = "submission-login: Info: Login: user=<%s>, method=XOAUTH2" % ALICE
        mailenv.wait_for(lambda: line in self.setup.dovecot.log()[offset:],
                         10, what="dovecot log line %r" % line)

    def ms_args(self, tenant="organizations", *extra):
        return ["--client-id", self.idp.client_id, "--authority",
                self.idp.authority(tenant), "--ca-file", self.setup.ca.ca_file,
                *extra]

    # --- the providers ---------------------------------------------------

    def test_microsoft_global(self):
        acct = self.sign_in("ms-global", *self.ms_args())
        rec = acct.record()
        self.assertEqual(rec["provider"], "microsoft")
        self.assertEqual(self.idp.cloud_prefixes(), ["https://outlook.office.com/"])
        self.refreshes(acct, "token")
        self.imap_login(acct, "XOAUTH2")
        self.msmtp_sends(acct)

    def test_microsoft_usgov_cloud(self):
        acct = self.sign_in("ms-usgov", *self.ms_args("organizations", "--cloud", "usgov"))
        rec = acct.record()
        self.assertEqual(rec["cloud"], "usgov")
        self.assertTrue(rec["scope"].startswith(US_PREFIX), rec["scope"])
        self.refreshes(acct, "token")
        # Sign-in and refresh both asked for the US Government resource.
        # (The code's redemption carries no scope: it has the code's.)
        reqs = self.idp.cloud_requests()
        self.assertEqual([r["endpoint"] for r in reqs], ["authorize", "token"], reqs)
        self.assertEqual(self.idp.cloud_prefixes(), [US_PREFIX], reqs)
        self.imap_login(acct, "OAUTHBEARER")

    def test_personal_account_consumers(self):
        acct = self.sign_in("ms-consumers", *self.ms_args("consumers", "--tenant", "consumers"))
        self.assertTrue(acct.record()["authority"].endswith("/consumers"))
        self.assertIn("/consumers/oauth2/v2.0/authorize", acct.url)
        self.refreshes(acct, "token")
        paths = [r["path"] for r in self.idp.requests() if r.get("grant_type") == "refresh_token"]
        self.assertEqual(paths, ["/consumers/oauth2/v2.0/token"])
        self.imap_login(acct, "XOAUTH2")

    def test_google(self):
        client_id, secret = self.idp.google_client()
        secret_file = self.setup.path("google-client-secret")
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        acct = self.sign_in("google", "--provider", "google", "--client-id", client_id,
                            "--client-secret-file", secret_file,
                            "--authorization-endpoint", self.idp.google_auth_url(),
                            "--token-endpoint", self.idp.google_token_url(),
                            "--ca-file", self.setup.ca.ca_file)
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(acct.url).query)
        self.assertEqual(q["access_type"], ["offline"])
        self.assertEqual(q["scope"], ["https://mail.google.com/"])
        rec = acct.record()
        self.assertEqual(rec["provider"], "google")
        self.assertEqual(rec["client_secret"], secret)
        self.assertEqual(os.stat(os.path.join(acct.store, ALICE)).st_mode & 0o777, 0o600)
        self.assertEqual(self.idp.counters().get("google_token"), 1)
        # The refresh sends the stored secret: without it the fake answers
        # 401 invalid_client, so a refresh that works proves it was sent.
        self.refreshes(acct, "google_token")
        self.assertEqual(acct.record()["refresh_token"], rec["refresh_token"])  # Google keeps it
        self.imap_login(acct, "OAUTHBEARER")
        self.msmtp_sends(acct)
        # Proof of the converse: the fake refuses a refresh without it.
        status, _, body = self.idp.post_form(self.idp.google_token_url(), {
            "grant_type": "refresh_token", "client_id": client_id,
            "refresh_token": rec["refresh_token"]})
        self.assertEqual((status, body.get("error")), (401, "invalid_client"))

    def test_oidc_discovery(self):
        acct = self.sign_in("oidc", "--provider", "oidc", "--issuer", self.idp.oidc_issuer(),
                            "--client-id", "mailoauth", "--ca-file", self.setup.ca.ca_file)
        rec = acct.record()
        self.assertEqual(rec["provider"], "oidc")
        self.assertEqual(rec["issuer"], self.idp.oidc_issuer())
        self.assertEqual(rec["token_endpoint"],
                         self.idp.oidc_issuer() + "/protocol/openid-connect/token")
        self.assertEqual(self.idp.counters().get("oidc_discovery"), 1)
        self.assertIn(self.idp.oidc_issuer() + "/protocol/openid-connect/auth?", acct.url)
        self.refreshes(acct, "oidc_token")
        self.imap_login(acct, "XOAUTH2")
        self.imap_login(acct, "OAUTHBEARER")
        self.msmtp_sends(acct)

    def test_oidc_device_flow(self):
        """The same issuer without --browser: the device flow at the
        discovered device_authorization_endpoint, approved at the fake."""
        acct = Account(self.setup, "oidc-device")
        argv = [sasllib.helper_path(), "login", ALICE, "--provider", "oidc",
                "--issuer", self.idp.oidc_issuer(), "--client-id", "mailoauth",
                "--ca-file", self.setup.ca.ca_file]
        proc = subprocess.Popen(argv, env=acct.env, cwd=acct.dir,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            code = self.idp.wait_for_pending(timeout=15)
            self.idp.approve(code, username=ALICE)
            out, err = proc.communicate(timeout=30)
        except BaseException:
            proc.kill()
            proc.communicate(timeout=10)
            raise
        self.setup.outputs.append(("mailoauth login oidc-device", out + err))
        self.assertEqual(proc.returncode, 0, self.setup.redact(err))
        rec = acct.record()
        self.assertEqual((rec["provider"], rec["grant"]), ("oidc", "device"))
        self.assertEqual(rec["device_endpoint"],
                         self.idp.oidc_issuer() + "/protocol/openid-connect/auth/device")
        self.assertEqual(self.idp.counters().get("oidc_device"), 1, self.idp.counters())
        self.imap_login(acct, "XOAUTH2")

    def test_paste_with_scripted_user(self):
        acct = self.sign_in("ms-paste", *self.ms_args(), paste=True)
        self.assertIn("paste it here", self.setup.outputs[-1][1])
        self.assertEqual([c["used"] for c in self.idp.auth_codes()][-1:], [True])
        self.refreshes(acct, "token")
        self.imap_login(acct, "OAUTHBEARER")


if __name__ == "__main__":
    import tap
    tap.main()
