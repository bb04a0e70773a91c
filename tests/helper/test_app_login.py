"""App-only accounts (issue 11): `mailoauth login ACCOUNT --app` with a
client secret, a certificate (PS256, RS256) or --credential-from (a file,
and a $CREDENTIALS_DIRECTORY directory as systemd's LoadCredential= gives
the agent); every refusal explained with the right exit code and nothing
stored; new tokens by client credentials at expiry; status, status --json
and doctor; the secret and the private key never in any output."""
import json
import os
import time

import tap
import fakeidp
import helperlib
from helperlib import HelperTestCase, ZzNoSecretsInOutput  # noqa: F401

CLIENT = "99999999-8888-7777-6666-555555555555"
TENANT = "contoso.onmicrosoft.com"
SECRET = "Qx8~app-login.test-secret_value-0123456789"
MAILBOX = "relay@contoso.com"
ACCOUNT = "relay"

CERTS = {}  # name -> (cert path, key path), made once for the module


def key_lines(path):
    """The base64 lines of a private key: none may appear anywhere."""
    with open(path) as f:
        return [l for l in f.read().splitlines() if l and not l.startswith("-----")]


def secrets():
    out = {SECRET}
    for name in ("app", "other", "expired"):
        if name in CERTS:
            out.update(key_lines(CERTS[name][1]))
    return out


# The client secret and every key line are secrets of these tests: the
# module's leak check looks for them in every captured stderr, and TAP
# failure details blank them out.
tap.add_secret_source(secrets)


def write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def read(path):
    with open(path) as f:
        return f.read()


class AppLogin(HelperTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = os.path.join(cls.workdir, "certs")
        CERTS["app"] = fakeidp.make_app_certificate(d, "app")
        CERTS["other"] = fakeidp.make_app_certificate(d, "other")
        CERTS["expired"] = fakeidp.make_app_certificate(d, "expired", not_before_days=-30,
                                                        not_after_days=-1)
        CERTS["soon"] = fakeidp.make_app_certificate(d, "soon", not_after_days=10)
        helperlib.issued_secrets.update(secrets())

    def setUp(self):
        super().setUp()
        self.idp.reset()
        self.idp.register_app(CLIENT, tenant=TENANT, mailbox=MAILBOX, secret=SECRET,
                              certificates=[CERTS["app"][0], CERTS["expired"][0], CERTS["soon"][0]])
        self.secret_file = write(os.path.join(self.tmp, "secret"), SECRET + "\n")

    def app_login(self, *credential, env=None, stdin=None, extra=()):
        return self.mailoauth("login", ACCOUNT, "--app", "--client-id", CLIENT,
                              "--authority", self.idp.authority(TENANT), "--ca-file", self.idp.ca_file,
                              "--user", MAILBOX, *credential, *extra, env=env, stdin=stdin)

    def assertNoSecrets(self, *texts):
        for text in texts:
            for s in secrets():
                self.assertNotIn(s, text)
            self.assertNotIn("PRIVATE KEY", text)

    def assertNothingStored(self):
        self.assertFalse(os.path.exists(os.path.join(self.store, ACCOUNT)))

    def expire_soon(self):
        self.edit_record(ACCOUNT, access_expires_at=int(time.time()) + 100)

    def token_by_app(self, env=None):
        """`token` after the cached token nears expiry: one client-credentials request."""
        before = self.record(ACCOUNT)["access_token"]
        self.expire_soon()
        self.idp.reset_counters()
        r = self.mailoauth("token", ACCOUNT, env=env)
        self.assertEqual(r.rc, 0, r)
        token = r.out.strip()
        self.assertNotEqual(token, before)
        self.assertEqual(token, self.record(ACCOUNT)["access_token"])
        self.assertEqual(self.idp.counters().get("grant:client_credentials", 0), 1)
        self.assertEqual(self.idp.introspect(token)["username"], MAILBOX)
        return token

    # --- the three credentials ------------------------------------------

    def test_secret_file(self):
        r = self.app_login("--client-secret-file", self.secret_file)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("SMTP.SendAsApp", r.err)
        rec = self.record(ACCOUNT)
        self.assertEqual(rec["grant"], "client_credentials")
        self.assertEqual(rec["provider"], "microsoft")
        self.assertEqual(rec["user"], MAILBOX)
        self.assertEqual(rec["scope"], "https://outlook.office365.com/.default")
        self.assertEqual(rec["token_endpoint"], self.idp.token_url(TENANT))
        self.assertEqual(rec["client_secret"], SECRET)
        self.assertEqual(rec["refresh_token"], "")
        self.assertNotIn("private_key", rec)
        self.assertTrue(self.idp.valid_access_token(rec["access_token"]))
        self.assertEqual(oct(os.stat(os.path.join(self.store, ACCOUNT)).st_mode & 0o777), "0o600")
        # The helper protocol serves it like any account, user = the mailbox.
        req = "version=1\naccount=%s\nprotocol=smtp\nmechanism=XOAUTH2\n\n" % ACCOUNT
        g = self.mailoauth("get", stdin=req)
        self.assertEqual(g.rc, 0, g)
        reply = dict(l.split("=", 1) for l in g.out.splitlines() if l)
        self.assertEqual(reply["user"], MAILBOX)
        self.assertEqual(reply["access_token"], rec["access_token"])
        self.token_by_app()
        st = self.mailoauth("status", ACCOUNT)
        self.assertEqual(st.rc, 0, st)
        self.assertIn("app-only", st.out)
        self.assertIn("stored client secret", st.out)
        self.assertIn("refresh token:  none", st.out)
        js = json.loads(self.mailoauth("status", "--json").out)[0]
        self.assertEqual(js["kind"], "app-only")
        self.assertEqual(js["credential_source"], "stored client secret")
        self.assertNoSecrets(r.err, st.out, json.dumps(js))

    def test_secret_from_standard_input(self):
        r = self.app_login("--client-secret-file", "-", stdin=SECRET + "\n")
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.record(ACCOUNT)["client_secret"], SECRET)

    def test_certificate_ps256_then_rs256(self):
        cert, key = CERTS["app"]
        for alg, extra in (("PS256", ()), ("RS256", ("--assertion-alg", "RS256"))):
            r = self.app_login("--certificate", cert, "--private-key", key, extra=extra)
            self.assertEqual(r.rc, 0, r)
            rec = self.record(ACCOUNT)
            self.assertEqual(rec["assertion_alg"], alg)
            self.assertNotIn("client_secret", rec)
            self.assertIn("BEGIN CERTIFICATE", rec["certificate"])
            self.assertIn("PRIVATE KEY", rec["private_key"])
            self.assertNotIn("\n", rec["private_key"])
            self.token_by_app()
        st = self.mailoauth("status", ACCOUNT)
        self.assertIn("stored certificate, thumbprint ", st.out)
        self.assertIn("(RS256)", st.out)
        self.assertNotIn("warning:", st.out)
        js = json.loads(self.mailoauth("status", "--json", ACCOUNT).out)[0]
        self.assertRegex(js["certificate_thumbprint"], r"^[0-9A-F]{40}$")
        self.assertGreater(js["certificate_expires_at"], time.time() + 300 * 86400)
        self.assertNoSecrets(st.out, json.dumps(js))

    def test_certificate_expiring_soon_is_warned(self):
        cert, key = CERTS["soon"]
        r = self.app_login("--certificate", cert, "--private-key", key)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("Warning:", r.err)
        st = self.mailoauth("status", ACCOUNT)
        self.assertIn("warning:", st.out)
        self.assertIn("days", st.out)
        js = json.loads(self.mailoauth("status", "--json", ACCOUNT).out)[0]
        self.assertTrue(js["certificate_warning"])
        d = self.mailoauth("doctor", ACCOUNT)
        self.assertRegex(d.out, r"note .*relay: app-only.*days")

    def test_credential_from_file(self):
        cert, key = CERTS["app"]
        pem = write(os.path.join(self.tmp, "relay.pem"), read(key) + read(cert))
        r = self.app_login("--credential-from", pem)
        self.assertEqual(r.rc, 0, r)
        rec = self.record(ACCOUNT)
        self.assertEqual(rec["credential_from"], pem)
        for field in ("client_secret", "private_key", "certificate"):
            self.assertNotIn(field, rec)
        self.token_by_app()
        # Read at each use: a broken file breaks the next token request,
        # which keeps the still-valid token and says why.
        os.chmod(pem, 0o644)
        self.expire_soon()
        t = self.mailoauth("token", ACCOUNT)
        self.assertEqual(t.rc, 0, t)
        self.assertIn("chmod", t.err)
        self.edit_record(ACCOUNT, access_expires_at=int(time.time()) - 10)
        t = self.mailoauth("token", ACCOUNT)
        self.assertEqual(t.rc, 78, t)
        self.assertIn("chmod 600", t.err)
        st = self.mailoauth("status", ACCOUNT)
        self.assertIn("credential-from " + pem, st.out)
        self.assertIn("last error:", st.out)

    def test_credential_from_credentials_directory(self):
        creds = os.path.join(self.tmp, "credentials")
        os.mkdir(creds, 0o700)
        write(os.path.join(creds, "client-secret"), SECRET, 0o400)
        env = {"CREDENTIALS_DIRECTORY": creds}
        r = self.app_login("--credential-from", "$CREDENTIALS_DIRECTORY", env=env)
        self.assertEqual(r.rc, 0, r)
        self.assertEqual(self.record(ACCOUNT)["credential_from"], "$CREDENTIALS_DIRECTORY")
        self.assertNotIn("client_secret", self.record(ACCOUNT))
        self.token_by_app(env=env)
        # Without the variable (not the agent's unit) the path means nothing.
        self.edit_record(ACCOUNT, access_expires_at=int(time.time()) - 10)
        t = self.mailoauth("token", ACCOUNT)
        self.assertEqual(t.rc, 78, t)
        self.assertIn("CREDENTIALS_DIRECTORY", t.err)
        d = self.mailoauth("doctor", ACCOUNT)
        self.assertIn("LoadCredential", d.out)

    # --- refusals: each explained, right exit code, nothing stored ------

    def test_refusals_by_the_identity_provider(self):
        cert, key = CERTS["app"]
        other_cert, other_key = CERTS["other"]
        secret = ("--client-secret-file", self.secret_file)
        cases = [
            ("wrong secret", lambda: self.idp.update_app(CLIENT, secret="another-" + SECRET), secret,
             ["AADSTS7000215", "not its Secret ID"]),
            ("expired secret", lambda: self.idp.update_app(CLIENT, secret_expired=True), secret,
             ["AADSTS7000222", "Certificates & secrets"]),
            ("unregistered certificate", lambda: None,
             ("--certificate", other_cert, "--private-key", other_key), ["AADSTS700027", "Upload the certificate"]),
            ("clock skew", lambda: self.idp.set_app_clock_offset(3600),
             ("--certificate", cert, "--private-key", key), ["AADSTS700024", "timedatectl"]),
            ("unknown app", lambda: self.idp.unregister_app(CLIENT), secret, ["AADSTS700016", "--client-id"]),
            ("no admin consent", lambda: self.idp.update_app(CLIENT, admin_consent=False), secret,
             ["Grant admin consent", "IMAP.AccessAsApp"]),
        ]
        for name, arrange, credential, words in cases:
            with self.subTest(name):
                self.setUp()
                arrange()
                r = self.app_login(*credential)
                self.assertEqual(r.rc, 78, r)
                for w in words:
                    self.assertIn(w, r.err)
                self.assertNothingStored()
                self.assertNoSecrets(r.err)
                self.idp.set_app_clock_offset(0)

    def test_refusals_before_any_request(self):
        cert, key = CERTS["app"]
        open_secret = write(os.path.join(self.tmp, "open-secret"), SECRET, 0o644)
        cases = [
            ("expired certificate", ("--certificate", CERTS["expired"][0], "--private-key", CERTS["expired"][1]),
             78, ["expired"]),
            ("key of another certificate", ("--certificate", cert, "--private-key", CERTS["other"][1]),
             78, ["does not belong to the certificate"]),
            ("world-readable secret", ("--client-secret-file", open_secret), 78, ["chmod 600"]),
            ("no credential", (), 64, ["--client-secret-file", "--credential-from"]),
            ("two credentials", ("--client-secret-file", self.secret_file, "--certificate", cert,
                                 "--private-key", key), 64, ["one credential"]),
            ("certificate without key", ("--certificate", cert), 64, ["--private-key"]),
            ("bad algorithm", ("--certificate", cert, "--private-key", key, "--assertion-alg", "HS256"),
             64, ["PS256", "RS256"]),
            ("delegated scope", ("--client-secret-file", self.secret_file, "--scope",
                                 "https://outlook.office365.com/SMTP.Send"), 64, ["/.default"]),
        ]
        self.idp.reset_counters()
        for name, credential, code, words in cases:
            with self.subTest(name):
                r = self.app_login(*credential)
                self.assertEqual(r.rc, code, r)
                for w in words:
                    self.assertIn(w, r.err)
                self.assertNothingStored()
                self.assertNoSecrets(r.err)
        self.assertEqual(self.idp.counters().get("token", 0), 0)

    def test_missing_tenant_and_user(self):
        base = ["login", ACCOUNT, "--app", "--client-id", CLIENT, "--client-secret-file", self.secret_file,
                "--ca-file", self.idp.ca_file]
        r = self.mailoauth(*base, "--user", MAILBOX)
        self.assertEqual(r.rc, 64, r)
        self.assertIn("--tenant", r.err)
        r = self.mailoauth(*base, "--authority", self.idp.authority(TENANT))
        self.assertEqual(r.rc, 64, r)
        self.assertIn("--user MAILBOX", r.err)
        self.assertNothingStored()

    # --- after login ------------------------------------------------------

    def test_failed_renewal_keeps_the_valid_token_and_doctor_explains(self):
        r = self.app_login("--client-secret-file", self.secret_file)
        self.assertEqual(r.rc, 0, r)
        old = self.record(ACCOUNT)["access_token"]
        self.idp.update_app(CLIENT, secret_expired=True)
        self.edit_record(ACCOUNT, access_expires_at=int(time.time()) + 300)
        t = self.mailoauth("token", ACCOUNT)
        self.assertEqual(t.rc, 0, t)
        self.assertEqual(t.out.strip(), old)
        self.assertIn("AADSTS7000222", t.err)
        self.assertEqual(self.record(ACCOUNT)["access_token"], old)
        d = self.mailoauth("doctor", ACCOUNT)
        self.assertIn("AADSTS7000222", d.out)
        self.assertIn("New-ServicePrincipal -AppId " + CLIENT, d.out)
        self.assertIn("Add-MailboxPermission -Identity " + MAILBOX, d.out)
        self.assertIn("535 5.7.3", d.out)
        self.assertIn("SendAsDeniedException", d.out)
        self.assertNoSecrets(t.err, d.out)


if __name__ == "__main__":
    tap.main()
