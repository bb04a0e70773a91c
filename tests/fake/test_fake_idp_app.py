"""The fake identity provider's client-credentials grant
(tests/fake/fake_idp_app.py): secrets and client assertions checked as
Microsoft Entra checks them, Microsoft's error shapes, and tokens that
introspect as the granted mailbox only.
"""
import base64
import json
import os
import re
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import fakeidp  # noqa: E402
from fakeidp import FakeIdP  # noqa: E402

CLIENT = "99999999-8888-7777-6666-555555555555"
TENANT = "contoso.onmicrosoft.com"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SECRET = "Qx8~test-only.secret_value-0123456789"
MAILBOX = "relay@contoso.com"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}$")

WORK = None
CERT = KEY = OTHER_CERT = OTHER_KEY = None


def setUpModule():
    global WORK, CERT, KEY, OTHER_CERT, OTHER_KEY
    WORK = tempfile.mkdtemp(prefix="test_fake_idp_app.")
    CERT, KEY = fakeidp.make_app_certificate(os.path.join(WORK, "certs"), "app")
    OTHER_CERT, OTHER_KEY = fakeidp.make_app_certificate(
        os.path.join(WORK, "certs"), "other")


def tearDownModule():
    shutil.rmtree(WORK, ignore_errors=True)


class AppGrant(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.idp = FakeIdP(os.path.join(WORK, "idp"), ca=os.path.join(WORK, "ca"))
        cls.idp.start()

    @classmethod
    def tearDownClass(cls):
        cls.idp.stop()

    def setUp(self):
        self.idp.reset()
        self.idp.register_app(CLIENT, tenant=TENANT, tenant_aliases=[TENANT_ID],
                              mailbox=MAILBOX, secret=SECRET,
                              certificates=[CERT])

    # helpers
    def aud(self, tenant=TENANT):
        return self.idp.token_url(tenant)

    def assertion(self, alg="PS256", cert=None, key=None, **kw):
        return fakeidp.make_client_assertion(cert or CERT, key or KEY, CLIENT,
                                             kw.pop("aud", self.aud()), alg=alg,
                                             **kw)

    def assertRefused(self, reply, status, error, code):
        st, _, body = reply
        self.assertEqual(st, status, body)
        self.assertEqual(body["error"], error, body)
        self.assertEqual(body["error_codes"], [code])
        self.assertTrue(body["error_description"].startswith(
            "AADSTS%d: " % code), body["error_description"])
        self.assertRegex(body["trace_id"], UUID_RE)
        self.assertRegex(body["correlation_id"], UUID_RE)
        self.assertRegex(body["timestamp"],
                         r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
        return body

    def assertIssued(self, reply):
        st, _, body = reply
        self.assertEqual(st, 200, body)
        self.assertEqual(body["token_type"], "Bearer")
        self.assertNotIn("refresh_token", body)
        self.assertGreater(body["expires_in"], 0)
        return body

    # --- secrets --------------------------------------------------------

    def test_secret_gives_a_token_for_the_granted_mailbox(self):
        body = self.assertIssued(self.idp.app_token(CLIENT, secret=SECRET))
        claims = fakeidp.decode_jwt_payload(body["access_token"])
        self.assertEqual(claims["appid"], CLIENT)
        self.assertEqual(claims["appidacr"], "1")
        self.assertEqual(claims["aud"], "https://outlook.office365.com")
        self.assertEqual(sorted(claims["roles"]), ["IMAP.AccessAsApp",
                                                   "POP.AccessAsApp",
                                                   "SMTP.SendAsApp"])
        self.assertNotIn("upn", claims)
        info = self.idp.introspect(body["access_token"])
        self.assertTrue(info["active"])
        self.assertEqual(info["username"], MAILBOX)
        self.assertEqual(info["client_id"], CLIENT)
        # The tenant ID names the same directory.
        self.assertIssued(self.idp.app_token(CLIENT, tenant=TENANT_ID,
                                             secret=SECRET))

    def test_wrong_and_expired_secret(self):
        self.assertRefused(self.idp.app_token(CLIENT, secret="nope"),
                           401, "invalid_client", 7000215)
        self.idp.update_app(CLIENT, secret_expired=True)
        body = self.assertRefused(self.idp.app_token(CLIENT, secret=SECRET),
                                  401, "invalid_client", 7000222)
        self.assertIn("expired", body["error_description"])
        self.idp.update_app(CLIENT, secret=None, secret_expired=False)
        self.assertRefused(self.idp.app_token(CLIENT, secret=SECRET),
                           401, "invalid_client", 7000215)

    def test_unknown_app_or_tenant(self):
        self.assertRefused(self.idp.app_token(
            "00000000-0000-0000-0000-000000000000", secret=SECRET),
            400, "unauthorized_client", 700016)
        self.assertRefused(self.idp.app_token(
            CLIENT, tenant="fabrikam.com", secret=SECRET),
            400, "unauthorized_client", 700016)
        self.assertRefused(self.idp.post_form(self.idp.token_url(TENANT), {
            "grant_type": "client_credentials", "scope": fakeidp.APP_SCOPE,
            "client_secret": SECRET}), 400, "invalid_request", 900144)

    def test_scope_must_be_exchange_default(self):
        self.assertRefused(self.idp.app_token(
            CLIENT, secret=SECRET,
            scope="https://outlook.office.com/IMAP.AccessAsUser.All"),
            400, "invalid_scope", 1002012)
        self.assertRefused(self.idp.app_token(
            CLIENT, secret=SECRET,
            scope=fakeidp.APP_SCOPE + " offline_access"),
            400, "invalid_scope", 1002012)
        self.assertRefused(self.idp.app_token(
            CLIENT, secret=SECRET, scope="https://graph.microsoft.com/.default"),
            400, "invalid_scope", 70011)
        body = self.assertIssued(self.idp.app_token(
            CLIENT, secret=SECRET, scope="https://outlook.office365.us/.default"))
        self.assertEqual(fakeidp.decode_jwt_payload(body["access_token"])["aud"],
                         "https://outlook.office365.us")

    def test_credential_missing_or_twice(self):
        self.assertRefused(self.idp.app_token(CLIENT), 401, "invalid_client",
                           7000218)
        self.assertRefused(self.idp.app_token(
            CLIENT, secret=SECRET, assertion=self.assertion()),
            400, "invalid_request", 9002313)

    # --- client assertions ------------------------------------------

    def test_ps256_and_rs256_assertions(self):
        for alg in ("PS256", "RS256"):
            body = self.assertIssued(self.idp.app_token(
                CLIENT, assertion=self.assertion(alg)))
            claims = fakeidp.decode_jwt_payload(body["access_token"])
            self.assertEqual(claims["appidacr"], "2")
            self.assertEqual(self.idp.introspect(body["access_token"])
                             ["username"], MAILBOX)

    def test_unregistered_certificate_or_bad_signature(self):
        self.assertRefused(self.idp.app_token(CLIENT, assertion=self.assertion(
            cert=OTHER_CERT, key=OTHER_KEY)), 401, "invalid_client", 700027)
        # The registered certificate's thumbprint, another key's signature.
        body = self.assertRefused(self.idp.app_token(
            CLIENT, assertion=self.assertion(key=OTHER_KEY)),
            401, "invalid_client", 700027)
        self.assertIn("did not match", body["error_description"])
        # A PSS signature presented as RS256 (x5t of the same certificate).
        ps = self.assertion("PS256").split(".")
        rs = self.assertion("RS256").split(".")
        self.assertRefused(self.idp.app_token(
            CLIENT, assertion=rs[0] + "." + rs[1] + "." + ps[2]),
            401, "invalid_client", 700027)
        # A claim changed after signing.
        forged = self.assertion().split(".")
        claims = fakeidp.decode_jwt_payload(".".join(forged))
        claims["exp"] += 3600
        forged[1] = base64.urlsafe_b64encode(json.dumps(claims).encode()) \
            .rstrip(b"=").decode()
        self.assertRefused(self.idp.app_token(CLIENT, assertion=".".join(forged)),
                           401, "invalid_client", 700027)

    def test_claims_checked(self):
        self.assertRefused(self.idp.app_token(CLIENT, assertion=self.assertion(
            aud="https://login.microsoftonline.com/%s/oauth2/v2.0/token" % TENANT)),
            401, "invalid_client", 50027)
        self.assertRefused(self.idp.app_token(CLIENT, assertion=self.assertion(
            claims_extra={"iss": "someone-else"})), 401, "invalid_client", 700021)
        self.assertRefused(self.idp.app_token(CLIENT, assertion=self.assertion(
            claims_extra={"sub": "someone-else"})), 401, "invalid_client", 700021)
        self.assertRefused(self.idp.app_token(CLIENT, assertion=self.assertion(
            alg="HS256")), 401, "invalid_client", 50027)
        self.assertRefused(self.idp.app_token(
            CLIENT, assertion=self.assertion(), assertion_type="jwt"),
            401, "invalid_client", 50027)
        self.assertRefused(self.idp.app_token(CLIENT, assertion="not.a-jwt"),
                           401, "invalid_client", 50027)

    def test_time_range_and_clock(self):
        now = int(time.time())
        body = self.assertRefused(self.idp.app_token(
            CLIENT, assertion=self.assertion(now=now - 3600)),
            401, "invalid_client", 700024)
        self.assertIn("valid time range", body["error_description"])
        self.assertRefused(self.idp.app_token(
            CLIENT, assertion=self.assertion(now=now + 3600)),
            401, "invalid_client", 700024)
        # Within the tolerated skew: fine.
        self.assertIssued(self.idp.app_token(
            CLIENT, assertion=self.assertion(now=now + 200)))
        # This machine's clock an hour behind, as the fake sees it.
        self.idp.set_app_clock_offset(3600)
        self.assertRefused(self.idp.app_token(CLIENT, assertion=self.assertion()),
                           401, "invalid_client", 700024)
        self.idp.set_app_clock_offset(0)
        self.assertIssued(self.idp.app_token(CLIENT, assertion=self.assertion()))

    def test_jti_not_reused(self):
        a = self.assertion(jti="b1f0c6e0-0000-4000-8000-000000000001")
        self.assertIssued(self.idp.app_token(CLIENT, assertion=a))
        self.assertRefused(self.idp.app_token(CLIENT, assertion=a),
                           401, "invalid_client", 50013)

    # --- consent and mailbox ----------------------------------------

    def test_no_admin_consent_gives_a_useless_token(self):
        self.idp.update_app(CLIENT, admin_consent=False)
        body = self.assertIssued(self.idp.app_token(CLIENT, secret=SECRET))
        self.assertNotIn("roles", fakeidp.decode_jwt_payload(body["access_token"]))
        self.assertFalse(self.idp.valid_access_token(body["access_token"]))

    def test_revocation_and_expiry_apply_to_app_tokens(self):
        body = self.assertIssued(self.idp.app_token(CLIENT, secret=SECRET))
        self.assertTrue(self.idp.valid_access_token(body["access_token"]))
        self.idp.revoke_access_tokens(username=MAILBOX)
        self.assertFalse(self.idp.valid_access_token(body["access_token"]))

    # --- controls ---------------------------------------------------

    def test_controls_never_show_the_secret(self):
        apps = self.idp.apps()
        self.assertEqual(len(apps), 1)
        a = apps[0]
        self.assertTrue(a["has_secret"])
        self.assertEqual(a["mailbox"], MAILBOX)
        self.assertEqual(a["tenants"], [TENANT, TENANT_ID])
        self.assertEqual(len(a["certificates"]), 1)
        self.assertRegex(a["certificates"][0], r"^[0-9A-F]{40}$")
        self.assertNotIn(SECRET, repr(apps))
        self.idp.app_token(CLIENT, secret=SECRET)
        self.idp.app_token(CLIENT, secret="wrong-" + SECRET)
        self.assertNotIn(SECRET, self.idp.stderr_text())
        self.assertEqual(self.idp.counters().get("grant:client_credentials"), 2)
        self.idp.reset()
        self.assertEqual(self.idp.apps(), [])
        self.idp.register_app(CLIENT, secret=SECRET, mailbox="other@contoso.com")
        self.assertTrue(self.idp.unregister_app(CLIENT)["removed"])

    def test_faults_apply_to_the_grant(self):
        self.idp.fault("token", "status", grant_type="client_credentials",
                       status=503)
        st, _, _ = self.idp.app_token(CLIENT, secret=SECRET)
        self.assertEqual(st, 503)
        self.assertIssued(self.idp.app_token(CLIENT, secret=SECRET))


if __name__ == "__main__":
    import tap
    tap.main()
