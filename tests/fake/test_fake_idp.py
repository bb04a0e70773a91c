"""Protocol conformance of the fake identity provider (tests/fake/fake_idp.py).

The other tests trust the fake to behave like Microsoft's v2.0 endpoints;
this module checks that it does, plus its test controls.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import browser  # noqa: E402
import fakeidp  # noqa: E402
import testca  # noqa: E402
from fakeidp import DEVICE_GRANT, FakeIdP  # noqa: E402

SCOPE = ("https://outlook.office.com/IMAP.AccessAsUser.All "
         "https://outlook.office.com/SMTP.Send offline_access")
GUID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
                     r"[0-9a-f]{12}$")

WORK = None


def setUpModule():
    global WORK
    WORK = tempfile.mkdtemp(prefix="test_fake_idp.")


def tearDownModule():
    shutil.rmtree(WORK, ignore_errors=True)


class Base(unittest.TestCase):
    """One fake for the whole class, reset before each test."""

    @classmethod
    def setUpClass(cls):
        cls.idp = FakeIdP(os.path.join(WORK, cls.__name__), interval=0,
                          access_lifetime=3600,
                          client_ids=("11111111-2222-3333-4444-555555555555",
                                      "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
                          ca=os.path.join(WORK, "ca"))
        cls.idp.start()

    @classmethod
    def tearDownClass(cls):
        cls.idp.stop()

    def setUp(self):
        self.idp.reset()

    # helpers
    def devicecode(self, scope=SCOPE, tenant="organizations", client_id=None):
        return self.idp.post_form(self.idp.devicecode_url(tenant), {
            "client_id": client_id or self.idp.client_id, "scope": scope})

    def new_code(self, scope=SCOPE, tenant="organizations"):
        status, _, body = self.devicecode(scope, tenant)
        self.assertEqual(status, 200, body)
        return body

    def poll(self, device_code, tenant="organizations", client_id=None):
        return self.idp.post_form(self.idp.token_url(tenant), {
            "grant_type": DEVICE_GRANT,
            "client_id": client_id or self.idp.client_id,
            "device_code": device_code})

    def refresh(self, rt, scope=None, client_id=None, tenant="organizations"):
        form = {"grant_type": "refresh_token",
                "client_id": client_id or self.idp.client_id,
                "refresh_token": rt}
        if scope is not None:
            form["scope"] = scope
        return self.idp.post_form(self.idp.token_url(tenant), form)

    def login(self, username="alice@example.com", scope=SCOPE):
        dc = self.new_code(scope)
        self.idp.approve(dc["user_code"], username=username)
        status, _, body = self.poll(dc["device_code"])
        self.assertEqual(status, 200, body)
        return body

    def assertOAuthError(self, resp, error, code, status=400):
        st, headers, body = resp
        self.assertEqual(st, status, body)
        self.assertEqual(headers.get("Content-Type"),
                         "application/json; charset=utf-8")
        self.assertIsInstance(body, dict)
        self.assertEqual(body["error"], error)
        self.assertTrue(body["error_description"].startswith(
            "AADSTS%d: " % code), body["error_description"])
        self.assertEqual(body["error_codes"], [code])
        self.assertRegex(body["timestamp"],
                         r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$")
        self.assertRegex(body["trace_id"], UUID_RE)
        self.assertRegex(body["correlation_id"], UUID_RE)
        return body


class DeviceCode(Base):
    def test_success_fields(self):
        st, headers, body = self.devicecode()
        self.assertEqual(st, 200)
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        self.assertEqual(set(body), {"user_code", "device_code",
                                     "verification_uri", "expires_in",
                                     "interval", "message"})
        self.assertEqual(body["verification_uri"],
                         "https://microsoft.com/devicelogin")
        self.assertEqual(body["expires_in"], 900)
        self.assertEqual(body["interval"], 0)
        self.assertRegex(body["user_code"], r"^[A-Z0-9]{8}$")
        self.assertGreaterEqual(len(body["device_code"]), 40)
        self.assertIn(body["user_code"], body["message"])
        self.assertIn("https://microsoft.com/devicelogin", body["message"])

    def test_configurable_interval_and_expiry(self):
        self.idp.set_config(interval=7, device_expires=123)
        body = self.new_code()
        self.assertEqual((body["interval"], body["expires_in"]), (7, 123))

    def test_tenants_accepted(self):
        for tenant in ("common", "organizations", "consumers", GUID,
                       "contoso.onmicrosoft.com"):
            self.assertEqual(self.devicecode(tenant=tenant)[0], 200, tenant)

    def test_unknown_tenant(self):
        body = self.assertOAuthError(
            self.devicecode(tenant="nosuchtenant.example"),
            "invalid_request", 90002)
        self.assertIn("Tenant", body["error_description"])

    def test_unknown_client(self):
        body = self.assertOAuthError(
            self.devicecode(client_id="99999999-0000-0000-0000-000000000000"),
            "unauthorized_client", 700016)
        self.assertIn("99999999-0000-0000-0000-000000000000",
                      body["error_description"])

    def test_missing_fields(self):
        url = self.idp.devicecode_url()
        self.assertOAuthError(self.idp.post_form(url, {"scope": SCOPE}),
                              "invalid_request", 900144)
        self.assertOAuthError(
            self.idp.post_form(url, {"client_id": self.idp.client_id}),
            "invalid_request", 900144)

    def test_get_is_405(self):
        req = urllib.request.Request(self.idp.devicecode_url(), method="GET")
        st, headers, body = self.idp._open(req, 5)
        self.assertEqual(st, 405)
        self.assertIn("POST", headers.get("Allow", ""))
        self.assertEqual(body["error"], "invalid_request")

    def test_wrong_content_type(self):
        req = urllib.request.Request(
            self.idp.devicecode_url(), method="POST",
            data=json.dumps({"client_id": self.idp.client_id,
                             "scope": SCOPE}).encode(),
            headers={"Content-Type": "application/json"})
        st, _, body = self.idp._open(req, 5)
        self.assertEqual(st, 400)
        self.assertEqual(body["error"], "invalid_request")

    def test_body_too_large(self):
        st, _, _ = self.idp.post_form(self.idp.devicecode_url(),
                                      {"client_id": self.idp.client_id,
                                       "scope": "x" * 70000})
        self.assertEqual(st, 413)

    def test_unknown_path(self):
        req = urllib.request.Request(self.idp.base_url + "/nothing/here",
                                     method="GET")
        self.assertEqual(self.idp._open(req, 5)[0], 404)


class DeviceFlow(Base):
    def test_pending_then_approved(self):
        dc = self.new_code("openid profile " + SCOPE)
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "authorization_pending", 70016)
        self.assertEqual(self.idp.pending_codes(), [dc["user_code"]])
        self.assertEqual(self.idp.wait_for_pending(1), dc["user_code"])
        self.idp.approve(dc["user_code"], username="bob@example.com")
        self.assertEqual(self.idp.pending_codes(), [])
        st, headers, tok = self.poll(dc["device_code"])
        self.assertEqual(st, 200, tok)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertEqual(tok["expires_in"], 3600)
        self.assertEqual(tok["ext_expires_in"], 3600)
        self.assertNotIn("offline_access", tok["scope"].split())
        self.assertIn("https://outlook.office.com/IMAP.AccessAsUser.All",
                      tok["scope"].split())
        self.assertGreaterEqual(len(tok["access_token"]), 40)
        self.assertRegex(tok["access_token"], r"^[A-Za-z0-9_\-]+$")
        self.assertTrue(tok["refresh_token"])
        # id_token: unsigned JWT with preferred_username.
        parts = tok["id_token"].split(".")
        self.assertEqual(len(parts), 3)
        payload = json.loads(fakeidp_b64(parts[1]))
        self.assertEqual(payload["preferred_username"], "bob@example.com")
        self.assertEqual(payload["aud"], self.idp.client_id)
        self.assertEqual(self.idp.introspect(tok["access_token"])["username"],
                         "bob@example.com")

    def test_no_id_token_without_openid(self):
        tok = self.login(scope=SCOPE)
        self.assertNotIn("id_token", tok)

    def test_no_refresh_token_without_offline_access(self):
        tok = self.login(scope="https://outlook.office.com/SMTP.Send")
        self.assertNotIn("refresh_token", tok)
        self.assertEqual(tok["scope"], "https://outlook.office.com/SMTP.Send")

    def test_redeemable_once(self):
        dc = self.new_code()
        self.idp.approve()
        self.assertEqual(self.poll(dc["device_code"])[0], 200)
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "invalid_grant", 70000)

    def test_declined(self):
        dc = self.new_code()
        self.idp.decline()
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "authorization_declined", 70000)

    def test_expired_by_control(self):
        dc = self.new_code()
        self.idp.expire(dc["user_code"])
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "expired_token", 70020)

    def test_expired_by_time(self):
        self.idp.set_config(device_expires=1)
        dc = self.new_code()
        time.sleep(1.1)
        self.assertEqual(self.idp.pending_codes(), [])
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "expired_token", 70020)

    def test_bad_verification_code(self):
        self.assertOAuthError(self.poll("not-a-device-code"),
                              "bad_verification_code", 70018)
        dc = self.new_code()
        self.assertOAuthError(
            self.poll(dc["device_code"],
                      client_id="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
            "bad_verification_code", 70018)
        self.assertOAuthError(self.poll(dc["device_code"], tenant="common"),
                              "bad_verification_code", 70018)

    def test_slow_down_when_polled_too_fast(self):
        self.idp.set_config(interval=1)
        dc = self.new_code()
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "authorization_pending", 70016)
        self.assertOAuthError(self.poll(dc["device_code"]), "slow_down", 70016)
        time.sleep(1.0)
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "authorization_pending", 70016)

    def test_approve_specific_and_latest(self):
        a = self.new_code()
        b = self.new_code()
        self.idp.approve(a["user_code"], "a@example.com")
        self.idp.approve(None, "b@example.com")   # the latest pending
        ta = self.poll(a["device_code"])[2]
        tb = self.poll(b["device_code"])[2]
        self.assertEqual(self.idp.introspect(ta["access_token"])["username"],
                         "a@example.com")
        self.assertEqual(self.idp.introspect(tb["access_token"])["username"],
                         "b@example.com")
        with self.assertRaises(fakeidp.FakeIdPError):
            self.idp.approve()

    def test_auto_approve(self):
        self.idp.set_auto_approve(0.2, "carol@example.com")
        dc = self.new_code()
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "authorization_pending", 70016)
        deadline = time.monotonic() + 5
        while True:
            st, _, body = self.poll(dc["device_code"])
            if st == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(st, 200, body)
        self.assertIn("fake-idp: the user at the browser approved code %s as "
                      "carol@example.com" % dc["user_code"],
                      self.idp.stdout_text())

    def test_unsupported_and_missing_grant_type(self):
        url = self.idp.token_url()
        self.assertOAuthError(
            self.idp.post_form(url, {"grant_type": "password",
                                     "client_id": self.idp.client_id}),
            "unsupported_grant_type", 70003)
        self.assertOAuthError(
            self.idp.post_form(url, {"client_id": self.idp.client_id}),
            "invalid_request", 900144)
        self.assertOAuthError(
            self.idp.post_form(url, {"grant_type": DEVICE_GRANT,
                                     "client_id": self.idp.client_id}),
            "invalid_request", 900144)
        self.assertOAuthError(
            self.idp.post_form(url, {"grant_type": "refresh_token",
                                     "client_id": self.idp.client_id}),
            "invalid_request", 900144)
        self.assertOAuthError(
            self.idp.post_form(url, {"grant_type": DEVICE_GRANT,
                                     "device_code": "x"}),
            "invalid_request", 900144)

    def test_token_unknown_client(self):
        self.assertOAuthError(
            self.poll("x", client_id="99999999-0000-0000-0000-000000000000"),
            "unauthorized_client", 700016)


def fakeidp_b64(s):
    import base64
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)).decode()


class Refresh(Base):
    def test_rotation_old_stays_valid(self):
        tok = self.login()
        st, _, new = self.refresh(tok["refresh_token"])
        self.assertEqual(st, 200, new)
        self.assertNotEqual(new["refresh_token"], tok["refresh_token"])
        self.assertNotEqual(new["access_token"], tok["access_token"])
        self.assertNotIn("offline_access", new["scope"].split())
        self.assertEqual(self.idp.introspect(new["access_token"])["username"],
                         "alice@example.com")
        # Microsoft does not revoke the previous refresh token.
        self.assertEqual(self.refresh(tok["refresh_token"])[0], 200)
        self.assertEqual(self.refresh(new["refresh_token"])[0], 200)

    def test_rotation_revokes_old(self):
        self.idp.set_rotation_revokes_old(True)
        tok = self.login()
        st, _, new = self.refresh(tok["refresh_token"])
        self.assertEqual(st, 200)
        self.assertOAuthError(self.refresh(tok["refresh_token"]),
                              "invalid_grant", 50173)
        self.assertEqual(self.refresh(new["refresh_token"])[0], 200)

    def test_unknown_refresh_token(self):
        self.assertOAuthError(self.refresh("M.C5nope"), "invalid_grant", 70000)

    def test_refresh_token_bound_to_client(self):
        tok = self.login()
        self.assertOAuthError(
            self.refresh(tok["refresh_token"],
                         client_id="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
            "invalid_grant", 70000)

    def test_revoked_and_expired(self):
        a = self.login("alice@example.com")
        b = self.login("bob@example.com")
        self.assertEqual(self.idp.revoke_refresh_tokens("alice@example.com"), 1)
        self.assertOAuthError(self.refresh(a["refresh_token"]),
                              "invalid_grant", 50173)
        self.assertEqual(self.refresh(b["refresh_token"])[0], 200)
        self.idp.revoke_refresh_tokens(reason="expired")
        body = self.assertOAuthError(self.refresh(b["refresh_token"]),
                                     "invalid_grant", 700082)
        self.assertIn("inactivity", body["error_description"])

    def test_scope_subset_and_extra(self):
        tok = self.login()
        st, _, new = self.refresh(
            tok["refresh_token"],
            scope="https://outlook.office.com/SMTP.Send offline_access")
        self.assertEqual(st, 200, new)
        self.assertEqual(new["scope"], "https://outlook.office.com/SMTP.Send")
        self.assertOAuthError(
            self.refresh(tok["refresh_token"],
                         scope="https://graph.microsoft.com/Mail.Read"),
            "invalid_grant", 65001)

    def test_access_lifetime(self):
        self.idp.set_access_lifetime(120)
        tok = self.login()
        self.assertEqual(tok["expires_in"], 120)
        info = self.idp.introspect(tok["access_token"])
        self.assertAlmostEqual(info["exp"], time.time() + 120, delta=5)
        self.idp.set_access_lifetime(0)
        st, _, new = self.refresh(tok["refresh_token"])
        self.assertEqual(new["expires_in"], 0)
        self.assertFalse(self.idp.valid_access_token(new["access_token"]))


class Introspection(Base):
    def get(self, url, headers=None):
        req = urllib.request.Request(url, headers=headers or {})
        return self.idp._open(req, 5)

    def test_modes(self):
        tok = self.login()["access_token"]
        info = self.idp.introspect(tok)        # post mode
        self.assertTrue(info["active"])
        self.assertEqual(info["username"], "alice@example.com")
        self.assertEqual(info["email"], "alice@example.com")
        self.assertEqual(info["client_id"], self.idp.client_id)
        self.assertIn("exp", info)
        self.assertIn("scope", info)
        st, _, body = self.get(self.idp.introspect_url + "?token=" + tok)
        self.assertTrue(body["active"])
        st, _, body = self.get(self.idp.introspect_url,
                               {"Authorization": "Bearer " + tok})
        self.assertTrue(body["active"])
        st, _, body = self.get(self.idp.introspect_url + "/" + tok)
        self.assertTrue(body["active"])
        self.assertEqual(self.idp.counters()["introspect"], 4)

    def test_inactive(self):
        self.assertEqual(self.idp.introspect("nope"), {"active": False})
        st, _, body = self.get(self.idp.introspect_url)
        self.assertEqual(body, {"active": False})
        a = self.login("alice@example.com")["access_token"]
        b = self.login("bob@example.com")["access_token"]
        self.idp.revoke_access_tokens("alice@example.com")
        self.assertFalse(self.idp.valid_access_token(a))
        self.assertTrue(self.idp.valid_access_token(b))
        self.idp.revoke_access_tokens()
        self.assertFalse(self.idp.valid_access_token(b))


class JwtAccessTokens(Base):
    """With jwt_key the access tokens are HS256 JWTs a server can check by
    itself (bench/: Dovecot's local validation), shaped like Exchange
    Online's: issuer, audience, expiry, user, scopes.  They still rotate,
    introspect and revoke like the opaque ones."""

    @classmethod
    def setUpClass(cls):
        cls.key = os.urandom(32)
        d = os.path.join(WORK, cls.__name__)
        os.makedirs(d, exist_ok=True)
        cls.key_file = os.path.join(d, "jwt.key")
        with open(cls.key_file, "wb") as f:
            f.write(cls.key)
        cls.idp = FakeIdP(d, interval=0, access_lifetime=600,
                          ca=os.path.join(WORK, "ca"), jwt_key=cls.key_file)
        cls.idp.start()

    @staticmethod
    def part(b64):
        return base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))

    def test_signed_claims(self):
        before = int(time.time())
        body = self.login("alice@example.com")
        tok = body["access_token"]
        head, payload, sig = tok.split(".")
        header = json.loads(self.part(head))
        self.assertEqual(header, {"typ": "JWT", "alg": "HS256",
                                  "kid": fakeidp.JWT_KEY_ID})
        want = hmac.new(self.key, (head + "." + payload).encode(),
                        hashlib.sha256).digest()
        self.assertEqual(self.part(sig), want)
        claims = json.loads(self.part(payload))
        self.assertEqual(claims["upn"], "alice@example.com")
        self.assertEqual(claims["aud"], "https://outlook.office.com")
        self.assertRegex(claims["iss"], r"^https://sts\.windows\.net/[0-9a-f-]{36}/$")
        self.assertEqual(claims["appid"], self.idp.client_id)
        self.assertEqual(claims["scp"], "IMAP.AccessAsUser.All SMTP.Send")
        self.assertGreaterEqual(claims["iat"], before)
        self.assertEqual(claims["exp"] - claims["iat"], 600)
        self.assertEqual(body["expires_in"], 600)

    def test_rotate_introspect_revoke(self):
        first = self.login("alice@example.com")
        st, _, second = self.refresh(first["refresh_token"])
        self.assertEqual(st, 200, second)
        self.assertNotEqual(first["access_token"], second["access_token"])
        self.assertNotEqual(first["refresh_token"], second["refresh_token"])
        self.assertTrue(self.idp.introspect(second["access_token"])["active"])
        self.idp.revoke_access_tokens("alice@example.com")
        self.assertFalse(self.idp.valid_access_token(second["access_token"]))


class Faults(Base):
    def test_status_with_retry_after(self):
        self.idp.fault("token", "status", status=429, retry_after=7)
        st, headers, body = self.poll("x")
        self.assertEqual(st, 429)
        self.assertEqual(headers.get("Retry-After"), "7")
        self.assertTrue(body["error_description"].startswith("AADSTS"))
        # one-shot: the next request is normal again
        self.assertOAuthError(self.poll("x"), "bad_verification_code", 70018)

    def test_status_count(self):
        self.idp.fault("devicecode", "status", count=2, status=503)
        self.assertEqual(self.devicecode()[0], 503)
        self.assertEqual(self.devicecode()[0], 503)
        self.assertEqual(self.devicecode()[0], 200)

    def test_grant_type_filter(self):
        tok = self.login()
        self.idp.fault("token", "status", grant_type="refresh_token",
                       status=500)
        self.assertOAuthError(self.poll("x"), "bad_verification_code", 70018)
        self.assertEqual(self.refresh(tok["refresh_token"])[0], 500)
        self.assertEqual(self.refresh(tok["refresh_token"])[0], 200)

    def test_delay(self):
        self.idp.fault("devicecode", "delay", seconds=0.6)
        t0 = time.monotonic()
        st, _, _ = self.devicecode()
        self.assertGreaterEqual(time.monotonic() - t0, 0.55)
        self.assertEqual(st, 200)

    def test_delay_exceeds_client_timeout(self):
        self.idp.fault("devicecode", "delay", seconds=2)
        with self.assertRaises((TimeoutError, socket.timeout,
                                urllib.error.URLError)):
            self.idp.post_form(self.idp.devicecode_url(),
                               {"client_id": self.idp.client_id,
                                "scope": SCOPE}, timeout=0.5)

    def test_malformed(self):
        self.idp.fault("token", "malformed")
        st, headers, body = self.poll("x")
        self.assertEqual(st, 200)
        self.assertIsInstance(body, bytes)
        self.assertTrue(headers["Content-Type"].startswith("application/json"))
        with self.assertRaises(ValueError):
            json.loads(body)

    def test_html(self):
        self.idp.fault("token", "html")
        st, headers, body = self.poll("x")
        self.assertEqual(st, 502)
        self.assertTrue(headers["Content-Type"].startswith("text/html"))
        self.assertIn(b"<html>", body)

    def test_huge(self):
        self.idp.fault("token", "huge")
        st, headers, body = self.poll("x")
        self.assertEqual(st, 200)
        self.assertEqual(int(headers["Content-Length"]), 5 * 1024 * 1024)
        self.assertEqual(len(json.dumps(body)) > 5_000_000, True)

    def test_slow_down(self):
        dc = self.new_code()
        self.idp.fault("token", "slow_down", grant_type=DEVICE_GRANT)
        self.assertOAuthError(self.poll(dc["device_code"]), "slow_down", 70016)
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "authorization_pending", 70016)

    def test_arbitrary_error(self):
        self.idp.fault("token", "error", error="invalid_grant",
                       error_codes=[50076, 50079],
                       error_description="Due to a configuration change "
                       "you must use multi-factor authentication.")
        st, _, body = self.poll("x")
        self.assertEqual(st, 400)
        self.assertEqual(body["error"], "invalid_grant")
        self.assertEqual(body["error_codes"], [50076, 50079])
        self.assertTrue(body["error_description"].startswith("AADSTS50076: "))

    def test_inject_fields_and_raw_bytes(self):
        # A JSON-encoded C1 control and a raw 0x9B byte, into a success.
        self.idp.inject("devicecode", fields={"message": "see \u009b here"},
                        raw_fields={"verification_uri": b"https://x/\x9b\"\\"})
        st, _, body = self.devicecode()
        self.assertEqual(st, 200)
        self.assertIsInstance(body, bytes)      # not UTF-8 any more
        self.assertIn(b'"message": "see \\u009b here"', body)
        self.assertIn(b'"verification_uri": "https://x/\x9b\\"\\\\"', body)
        self.assertNotIn(b"@@raw-", body)
        # Everything else is as usual: the JSON is fine but for the byte.
        parsed = json.loads(body.decode("latin-1"))
        self.assertEqual(parsed["message"], "see \u009b here")
        self.assertEqual(parsed["verification_uri"], "https://x/\x9b\"\\")
        self.assertTrue(parsed["device_code"] and parsed["user_code"])
        # Only once: the next answer is clean.
        self.assertEqual(self.new_code()["verification_uri"],
                         "https://microsoft.com/devicelogin")

    def test_inject_into_an_error(self):
        # The endpoint's own error, edited; and the "error" kind, edited.
        self.idp.inject("token", fields={"error_codes": [9999999]},
                        raw_fields={"error_description": b"bad\xc2\x9b\x9b\x1b"})
        st, _, body = self.poll("no-such-code")
        self.assertEqual(st, 400)
        self.assertIn(b'"error_description": "bad\xc2\x9b\x9b\\u001b"', body)
        parsed = json.loads(body.decode("latin-1"))
        self.assertEqual(parsed["error"], "bad_verification_code")
        self.assertEqual(parsed["error_codes"], [9999999])

        self.idp.fault("token", "error", error="invalid_grant",
                       raw_fields={"error_description": b"x\x9by"})
        st, _, body = self.poll("x")
        self.assertEqual(st, 400)
        self.assertIn(b'"error_description": "x\x9by"', body)

    def test_inject_rejects_bad_base64(self):
        with self.assertRaises(fakeidp.FakeIdPError):
            self.idp._call("POST", "fault", {
                "endpoint": "token", "kind": "inject",
                "params": {"raw_fields": {"error": "not base64!"}}})

    def test_reset(self):
        self.idp.fault("token", "reset")
        with self.assertRaises((ConnectionError, urllib.error.URLError,
                                ssl.SSLError, OSError)):
            self.poll("x")
        self.assertOAuthError(self.poll("x"), "bad_verification_code", 70018)

    def test_bad_fault_rejected(self):
        with self.assertRaises(fakeidp.FakeIdPError):
            self.idp.fault("token", "no-such-kind")
        with self.assertRaises(fakeidp.FakeIdPError):
            self.idp.fault("nowhere", "status")


class Observation(Base):
    def test_counters_and_requests(self):
        tok = self.login()
        self.refresh(tok["refresh_token"])
        self.idp.introspect(tok["access_token"])
        c = self.idp.counters()
        self.assertEqual(c["devicecode"], 1)
        self.assertEqual(c["token"], 2)
        self.assertEqual(c["grant:device_code"], 1)
        self.assertEqual(c["grant:refresh_token"], 1)
        self.assertEqual(c["introspect"], 1)
        reqs = self.idp.requests()
        self.assertEqual([(r["path"], r["grant_type"], r["status"])
                          for r in reqs],
                         [("/organizations/oauth2/v2.0/devicecode", None, 200),
                          ("/organizations/oauth2/v2.0/token", "device_code",
                           200),
                          ("/organizations/oauth2/v2.0/token", "refresh_token",
                           200),
                          ("/_fake/introspect", None, 200)])
        ts = [r["t"] for r in reqs]
        self.assertEqual(ts, sorted(ts))
        # Same clock as the test's time.monotonic().
        self.assertLess(abs(ts[-1] - time.monotonic()), 5)
        self.idp.reset_counters()
        self.assertEqual(self.idp.counters(),
                         {"devicecode": 0, "token": 0, "introspect": 0})
        self.assertEqual(self.idp.requests(), [])

    def test_faults_are_counted(self):
        self.idp.fault("token", "status", status=500)
        self.poll("x")
        self.assertEqual(self.idp.requests()[-1]["status"], 500)
        self.assertEqual(self.idp.counters()["grant:device_code"], 1)

    def test_secrets_listed_and_not_logged(self):
        dc = self.new_code("openid " + SCOPE)
        self.idp.approve()
        tok = self.poll(dc["device_code"])[2]
        new = self.refresh(tok["refresh_token"])[2]
        self.idp.introspect(tok["access_token"])
        req = urllib.request.Request(
            self.idp.introspect_url + "?token=" + new["access_token"])
        self.idp._open(req, 5)
        secrets = self.idp.issued_secrets()
        for s in (dc["device_code"], tok["access_token"],
                  tok["refresh_token"], tok["id_token"],
                  new["access_token"], new["refresh_token"]):
            self.assertIn(s, secrets)
        self.idp.reset()
        self.assertIn(tok["access_token"], self.idp.issued_secrets())
        log = self.idp.stderr_text() + self.idp.stdout_text()
        for s in secrets:
            self.assertNotIn(s, log)
        self.assertNotIn(dc["user_code"], self.idp.stderr_text())
        self.assertIn("POST /organizations/oauth2/v2.0/token "
                      "grant_type=refresh_token 200", log)


class Lifecycle(unittest.TestCase):
    def test_cli_options_sigterm_and_untrusted(self):
        d = os.path.join(WORK, "lifecycle")
        idp = FakeIdP(d, interval=3, device_expires=60, access_lifetime=77,
                      auto_approve_after=0.1, auto_approve_user="dave@x.test",
                      ca=os.path.join(WORK, "ca"))
        with idp:
            self.assertTrue(idp.running())
            self.assertEqual(idp.authority("common"),
                             idp.base_url + "/common")
            cfg = idp.config()
            self.assertEqual((cfg["interval"], cfg["device_expires"],
                              cfg["access_lifetime"]), (3, 60, 77))
            st, _, body = idp.post_form(idp.devicecode_url(), {
                "client_id": idp.client_id, "scope": SCOPE})
            self.assertEqual(body["interval"], 3)
            deadline = time.monotonic() + 5
            while "dave@x.test" not in idp.stdout_text() and \
                    time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIn("approved code %s as dave@x.test"
                          % body["user_code"], idp.stdout_text())
            proc = idp.proc
        self.assertIsNone(idp.proc)
        self.assertEqual(proc.returncode, 0)     # clean exit on SIGTERM
        self.assertIn("stopped", idp.stderr_text())

        cert, key = testca.untrusted_cert(d)
        bad = FakeIdP(os.path.join(d, "untrusted"), cert=cert, key=key,
                      ca=os.path.join(WORK, "ca"))
        with bad:
            # A client trusting only ca_file (the test CA) refuses it.
            ctx = ssl.create_default_context(cafile=bad.ca_file)
            with self.assertRaises(urllib.error.URLError) as cm:
                urllib.request.urlopen(bad.devicecode_url(), data=b"x=1",
                                       context=ctx, timeout=5)
            self.assertIsInstance(cm.exception.reason,
                                  ssl.SSLCertVerificationError)
            # The fake itself stays observable (its control client trusts
            # the untrusted CA); nothing reached the OAuth endpoints.
            self.assertEqual(bad.counters()["devicecode"], 0)
            self.assertIn("TLS handshake failed", bad.stderr_text())

    def test_binds_loopback_only(self):
        with FakeIdP(os.path.join(WORK, "loopback"),
                     ca=os.path.join(WORK, "ca")) as idp:
            with socket.create_connection(("127.0.0.1", idp.port), 2):
                pass
            # localhost is in the certificate too.
            ctx = ssl.create_default_context(cafile=idp.ca_file)
            with socket.create_connection(("127.0.0.1", idp.port), 2) as s:
                with ctx.wrap_socket(s, server_hostname="localhost"):
                    pass

    def test_free_port(self):
        low, high = testca._port_range()
        ports = [testca.free_port() for _ in range(3)]
        self.assertEqual(len(set(ports)), 3, ports)
        for p in ports:
            # Below the kernel's ephemeral range: no client connection or
            # bind(0) elsewhere can take it between our pick and the bind.
            self.assertTrue(1024 < low <= p < high, (low, p, high))
            with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
                self.assertLess(p, int(f.read().split()[0]))



# --- the browser sign-in and the other providers ----------------------
# (tests/fake/fake_idp_providers.py, driven through tests/lib/browser.py)

GOOGLE_MAIL = "https://mail.google.com/"
REDIRECT = "http://127.0.0.1:8400/"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_pkce():
    verifier = b64url(os.urandom(32))
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def query_of(url):
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query,
                                       keep_blank_values=True))


class BrowserBase(Base):
    """Authorization requests as mailoauth sends them, through the scripted
    browser."""

    def auth_url(self, endpoint, client_id=None, scope=SCOPE,
                 redirect_uri=REDIRECT, challenge=None, drop=(), **extra):
        self.verifier, ch = new_pkce()
        self.state = b64url(os.urandom(24))
        params = {"client_id": client_id or self.idp.client_id,
                  "response_type": "code", "redirect_uri": redirect_uri,
                  "scope": scope, "state": self.state,
                  "code_challenge": ch if challenge is None else challenge,
                  "code_challenge_method": "S256"}
        params.update(extra)
        for k in drop:
            params.pop(k, None)
        return endpoint + "?" + urllib.parse.urlencode(params)

    def sign_in(self, url):
        """The redirect's query after the (scripted) person signed in."""
        location = browser.redirect_location(url, self.idp.ca_file)
        self.assertTrue(location.startswith(REDIRECT + "?"), location)
        return query_of(location)

    def redeem(self, token_url, code, verifier=None, redirect_uri=REDIRECT,
               client_id=None, drop=(), **extra):
        form = {"grant_type": "authorization_code",
                "client_id": client_id or self.idp.client_id, "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier or self.verifier}
        form.update(extra)
        for k in drop:
            form.pop(k, None)
        return self.idp.post_form(token_url, form)

    def assertPage(self, url, status, *texts):
        st, headers, body = browser.get(url, self.idp.ca_file)
        self.assertEqual(st, status, body[:300])
        self.assertNotIn("location", headers)
        self.assertTrue(headers["content-type"].startswith("text/html"))
        for t in texts:
            self.assertIn(t, body.decode())
        return body.decode()

    def assertPlainError(self, resp, status, error):
        st, _, body = resp
        self.assertEqual(st, status, body)
        self.assertEqual(body["error"], error)
        # Google's and Keycloak's shape: no AADSTS codes.
        self.assertLessEqual(set(body), {"error", "error_description"})
        return body


class BrowserMicrosoft(BrowserBase):
    def test_code_flow_end_to_end(self):
        url = self.auth_url(self.idp.authorize_url(),
                            scope="openid " + SCOPE, login_hint="alice")
        q = self.sign_in(url)
        self.assertEqual(set(q), {"code", "state", "session_state"})
        self.assertEqual(q["state"], self.state)
        self.assertGreaterEqual(len(q["code"]), 100)
        st, headers, tok = self.redeem(self.idp.token_url(), q["code"])
        self.assertEqual(st, 200, tok)
        self.assertEqual(tok["token_type"], "Bearer")
        self.assertIn("refresh_token", tok)  # offline_access was asked for
        self.assertIn("id_token", tok)
        self.assertNotIn("offline_access", tok["scope"])
        info = self.idp.introspect(tok["access_token"])
        self.assertTrue(info["active"])
        self.assertEqual(info["username"], "alice@example.com")
        # The refresh path is the device flow's, unchanged.
        st, _, again = self.refresh(tok["refresh_token"])
        self.assertEqual(st, 200, again)
        self.assertNotEqual(again["refresh_token"], tok["refresh_token"])
        c = self.idp.counters()
        self.assertEqual((c["authorize"], c["grant:authorization_code"]),
                         (1, 1))
        # The code is listed among issued secrets (for the leak checks),
        # and its metadata shows it used.
        self.assertIn(q["code"], self.idp.issued_secrets())
        codes = self.idp.auth_codes()
        self.assertEqual(len(codes), 1)
        self.assertTrue(codes[0]["used"])
        self.assertNotIn(q["code"], json.dumps(codes))
        # The request log holds no code.
        self.assertNotIn(q["code"], self.idp.stderr_text())

    def test_localhost_redirect_and_no_state(self):
        url = self.auth_url(self.idp.authorize_url(), drop=("state",),
                            redirect_uri="http://localhost:51234/")
        location = browser.redirect_location(url, self.idp.ca_file)
        self.assertTrue(location.startswith("http://localhost:51234/?"))
        self.assertNotIn("state", query_of(location))

    def test_code_is_single_use(self):
        q = self.sign_in(self.auth_url(self.idp.authorize_url()))
        self.assertEqual(self.redeem(self.idp.token_url(), q["code"])[0], 200)
        self.assertOAuthError(self.redeem(self.idp.token_url(), q["code"]),
                              "invalid_grant", 54005)

    def test_verifier_must_match(self):
        q = self.sign_in(self.auth_url(self.idp.authorize_url()))
        other, _ = new_pkce()
        body = self.assertOAuthError(
            self.redeem(self.idp.token_url(), q["code"], verifier=other),
            "invalid_grant", 501481)
        self.assertIn("code_verifier", body["error_description"])

    def test_missing_or_different_parameters(self):
        q = self.sign_in(self.auth_url(self.idp.authorize_url()))
        tok = self.idp.token_url()
        for field in ("code_verifier", "redirect_uri", "code"):
            body = self.assertOAuthError(
                self.redeem(tok, q["code"], drop=(field,)),
                "invalid_request", 900144)
            self.assertIn(field, body["error_description"])
        self.assertOAuthError(
            self.redeem(tok, q["code"], redirect_uri="http://127.0.0.1:8401/"),
            "invalid_grant", 50011)
        # Another client, another tenant, an unknown code.
        self.assertOAuthError(
            self.redeem(tok, q["code"],
                        client_id="aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"),
            "invalid_grant", 70000)
        self.assertOAuthError(
            self.redeem(self.idp.token_url("common"), q["code"]),
            "invalid_grant", 70000)
        self.assertOAuthError(self.redeem(tok, "0.AXEA-no-such-code"),
                              "invalid_grant", 70000)
        # None of these used the code up.
        self.assertEqual(self.redeem(tok, q["code"])[0], 200)

    def test_expired_code(self):
        q = self.sign_in(self.auth_url(self.idp.authorize_url()))
        self.assertEqual(self.idp.expire_auth_codes(), 1)
        self.assertOAuthError(self.redeem(self.idp.token_url(), q["code"]),
                              "invalid_grant", 70008)
        self.idp.set_browser(code_lifetime=0)
        q = self.sign_in(self.auth_url(self.idp.authorize_url()))
        self.assertOAuthError(self.redeem(self.idp.token_url(), q["code"]),
                              "invalid_grant", 70008)

    def test_errors_shown_not_redirected(self):
        ep = self.idp.authorize_url()
        self.assertPage(self.auth_url(
            ep, client_id="99999999-0000-0000-0000-000000000000"),
            400, "AADSTS700016")
        self.assertPage(self.auth_url(ep, drop=("client_id",)), 400,
                        "AADSTS900144")
        for bad in ("https://127.0.0.1:8400/", "http://example.com:8400/",
                    "http://127.0.0.1:8400/callback", "http://127.0.0.1/",
                    "http://127.0.0.1:0/", "http://127.0.0.1:70000/", ""):
            self.assertPage(self.auth_url(ep, redirect_uri=bad), 400,
                            "AADSTS50011")
        self.assertPage(self.auth_url(self.idp.authorize_url(
            "nosuchtenant.example")), 400, "AADSTS90002")
        self.assertEqual(self.idp.auth_codes(), [])

    def test_errors_redirected_with_state(self):
        ep = self.idp.authorize_url()
        cases = [
            (dict(response_type="token"), "unsupported_response_type",
             700054),
            (dict(drop=("scope",)), "invalid_request", 900144),
            (dict(drop=("code_challenge",)), "invalid_request", 900144),
            (dict(code_challenge_method="plain"), "invalid_request", 50149),
            (dict(challenge="tooshort"), "invalid_request", 501491),
            (dict(challenge="a" * 42 + "="), "invalid_request", 501491),
        ]
        for kw, error, code in cases:
            q = self.sign_in(self.auth_url(ep, **kw))
            self.assertEqual(q["error"], error, kw)
            self.assertTrue(q["error_description"].startswith(
                "AADSTS%d: " % code), q["error_description"])
            self.assertIn("\r\nTrace ID: ", q["error_description"])
            self.assertEqual(q["state"], self.state)
            self.assertNotIn("code", q)
        self.assertEqual(self.idp.auth_codes(), [])

    def test_person_declines_or_fails(self):
        ep = self.idp.authorize_url()
        self.idp.set_browser(outcome="deny")
        q = self.sign_in(self.auth_url(ep))
        self.assertEqual(q["error"], "access_denied")
        self.assertTrue(q["error_description"].startswith("AADSTS65004: "))
        self.assertEqual(q["state"], self.state)
        self.idp.set_browser(outcome="error", error="interaction_required",
                             error_codes=[50076],
                             error_description="MFA is required.")
        q = self.sign_in(self.auth_url(ep))
        self.assertEqual(q["error"], "interaction_required")
        self.assertTrue(q["error_description"].startswith(
            "AADSTS50076: MFA is required."))
        self.idp.set_browser(outcome="page",
                             error_description="AADSTS53003: blocked")
        self.assertPage(self.auth_url(ep), 400, "AADSTS53003: blocked")
        self.assertEqual(self.idp.auth_codes(), [])
        with self.assertRaises(fakeidp.FakeIdPError):
            self.idp.set_browser(outcome="maybe")
        self.idp.reset()
        self.assertEqual(self.idp.browser_config()["outcome"], "approve")

    def test_signed_in_user_control(self):
        self.idp.set_signed_in_user("bob@example.com")
        q = self.sign_in(self.auth_url(self.idp.authorize_url()))
        st, _, tok = self.redeem(self.idp.token_url(), q["code"])
        self.assertEqual(st, 200, tok)
        self.assertEqual(self.idp.introspect(tok["access_token"])["username"],
                         "bob@example.com")

    def test_no_offline_access_no_refresh_token(self):
        q = self.sign_in(self.auth_url(
            self.idp.authorize_url(),
            scope="https://outlook.office.com/IMAP.AccessAsUser.All"))
        st, _, tok = self.redeem(self.idp.token_url(), q["code"])
        self.assertEqual(st, 200, tok)
        self.assertNotIn("refresh_token", tok)

    def test_post_is_refused(self):
        url = self.auth_url(self.idp.authorize_url())
        st, _, _ = self.idp.post_form(url, {})
        self.assertEqual(st, 405)


class ConditionalAccess(BrowserBase):
    def test_device_flow_blocked(self):
        for code in (53003, 530033):
            self.idp.set_conditional_access(code)
            dc = self.new_code()
            self.idp.approve(dc["user_code"])
            body = self.assertOAuthError(self.poll(dc["device_code"]),
                                         "invalid_grant", code)
            self.assertTrue(body["error_description"].startswith(
                "AADSTS%d: Access has been blocked by Conditional Access "
                "policies" % code), body["error_description"])
            # Still blocked on the next poll; no token was issued.
            self.assertOAuthError(self.poll(dc["device_code"]),
                                  "invalid_grant", code)
        self.assertEqual(self.idp._call("GET", "tokens")["access"], [])

    def test_pending_is_still_pending(self):
        self.idp.set_conditional_access(53003)
        dc = self.new_code()
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "authorization_pending", 70016)

    def test_browser_flow_is_not_blocked(self):
        self.idp.set_conditional_access(53003)
        q = self.sign_in(self.auth_url(self.idp.authorize_url()))
        st, _, tok = self.redeem(self.idp.token_url(), q["code"])
        self.assertEqual(st, 200, tok)

    def test_lifted_and_reset(self):
        self.idp.set_conditional_access(53003)
        self.idp.set_conditional_access(None)
        self.login()
        self.idp.set_conditional_access(530033)
        self.idp.reset()
        self.login()
        with self.assertRaises(fakeidp.FakeIdPError):
            self.idp.set_conditional_access(50076)


class Google(BrowserBase):
    def setUp(self):
        super().setUp()
        self.client_id, self.secret = self.idp.google_client()

    def google_sign_in(self, **kw):
        kw.setdefault("scope", GOOGLE_MAIL)
        url = self.auth_url(self.idp.google_auth_url(),
                            client_id=self.client_id, **kw)
        return self.sign_in(url)

    def google_redeem(self, code, **kw):
        kw.setdefault("client_id", self.client_id)
        kw.setdefault("client_secret", self.secret)
        return self.redeem(self.idp.google_token_url(), code, **kw)

    def test_code_flow(self):
        q = self.google_sign_in(access_type="offline", prompt="consent")
        self.assertTrue(q["code"].startswith("4/0A"), q)
        self.assertEqual(q["state"], self.state)
        self.assertEqual(q["scope"], GOOGLE_MAIL)
        st, headers, tok = self.google_redeem(q["code"])
        self.assertEqual(st, 200, tok)
        self.assertEqual(set(tok), {"access_token", "expires_in",
                                    "refresh_token", "scope", "token_type"})
        self.assertTrue(tok["access_token"].startswith("ya29."))
        self.assertTrue(tok["refresh_token"].startswith("1//"))
        self.assertEqual(tok["scope"], GOOGLE_MAIL)
        info = self.idp.introspect(tok["access_token"])
        self.assertTrue(info["active"])
        self.assertEqual((info["username"], info["scope"]),
                         ("alice@example.com", GOOGLE_MAIL))
        self.assertEqual(self.idp.counters()["google_token"], 1)
        # The client secret is a secret of the run.
        self.assertIn(self.secret, self.idp.issued_secrets())

    def test_secret_required(self):
        q = self.google_sign_in(access_type="offline")
        self.assertPlainError(self.google_redeem(q["code"],
                                                 drop=("client_secret",)),
                              401, "invalid_client")
        self.assertPlainError(self.google_redeem(q["code"],
                                                 client_secret="GOCSPX-no"),
                              401, "invalid_client")
        self.assertPlainError(self.google_redeem(q["code"],
                                                 client_id="other"),
                              401, "invalid_client")
        self.assertEqual(self.google_redeem(q["code"])[0], 200)
        # A client secret of one's own.
        self.idp.set_google_client(client_secret="GOCSPX-mine-0123456789")
        q = self.google_sign_in()
        self.assertEqual(self.google_redeem(
            q["code"], client_secret="GOCSPX-mine-0123456789")[0], 200)

    def test_refresh_token_not_rotated(self):
        q = self.google_sign_in(access_type="offline")
        rt = self.google_redeem(q["code"])[2]["refresh_token"]
        form = {"grant_type": "refresh_token", "client_id": self.client_id,
                "client_secret": self.secret, "refresh_token": rt}
        for _ in range(2):
            st, _, tok = self.idp.post_form(self.idp.google_token_url(), form)
            self.assertEqual(st, 200, tok)
            self.assertNotIn("refresh_token", tok)
            self.assertTrue(self.idp.valid_access_token(tok["access_token"]))
        self.assertPlainError(self.idp.post_form(
            self.idp.google_token_url(), dict(form, client_secret="x")),
            401, "invalid_client")
        self.idp.revoke_refresh_tokens()
        body = self.assertPlainError(self.idp.post_form(
            self.idp.google_token_url(), form), 400, "invalid_grant")
        self.assertEqual(body["error_description"],
                         "Token has been expired or revoked.")

    def test_online_access_has_no_refresh_token(self):
        q = self.google_sign_in()
        st, _, tok = self.google_redeem(q["code"])
        self.assertEqual(st, 200, tok)
        self.assertNotIn("refresh_token", tok)

    def test_code_errors_in_googles_shape(self):
        q = self.google_sign_in()
        other, _ = new_pkce()
        self.assertPlainError(self.google_redeem(q["code"], verifier=other),
                              400, "invalid_grant")
        self.assertPlainError(self.google_redeem(q["code"],
                                                 drop=("code_verifier",)),
                              400, "invalid_request")
        self.assertEqual(self.google_redeem(q["code"])[0], 200)
        self.assertPlainError(self.google_redeem(q["code"]), 400,
                              "invalid_grant")
        self.assertPlainError(self.idp.post_form(
            self.idp.google_token_url(),
            {"grant_type": "password", "client_id": self.client_id,
             "client_secret": self.secret}), 400, "unsupported_grant_type")

    def test_auth_endpoint_errors(self):
        ep = self.idp.google_auth_url()
        self.assertPage(self.auth_url(ep, client_id="nope", scope=GOOGLE_MAIL),
                        400, "invalid_client")
        self.assertPage(self.auth_url(ep, client_id=self.client_id,
                                      scope=GOOGLE_MAIL,
                                      redirect_uri="http://evil.example/"),
                        400, "redirect_uri_mismatch")
        self.idp.set_browser(outcome="deny")
        q = self.google_sign_in()
        self.assertEqual(q, {"error": "access_denied", "state": self.state})

    def test_device_flow_refuses_the_mail_scope(self):
        st, _, body = self.idp.post_form(self.idp.google_device_url(), {
            "client_id": self.client_id,
            "scope": "openid " + GOOGLE_MAIL})
        self.assertEqual(st, 400)
        self.assertEqual(body, {"error": "invalid_scope"})

    def test_device_flow_other_scopes(self):
        st, _, dc = self.idp.post_form(self.idp.google_device_url(), {
            "client_id": self.client_id, "scope": "openid email"})
        self.assertEqual(st, 200, dc)
        self.assertEqual(dc["verification_url"],
                         "https://www.google.com/device")
        self.assertRegex(dc["user_code"], r"^[A-Z0-9]{4}-[A-Z0-9]{4}$")
        form = {"grant_type": DEVICE_GRANT, "client_id": self.client_id,
                "client_secret": self.secret,
                "device_code": dc["device_code"]}
        self.assertPlainError(self.idp.post_form(self.idp.google_token_url(),
                                                 form),
                              428, "authorization_pending")
        self.idp.approve(dc["user_code"], username="carol@example.com")
        st, _, tok = self.idp.post_form(self.idp.google_token_url(), form)
        self.assertEqual(st, 200, tok)
        self.assertIn("refresh_token", tok)
        self.assertEqual(self.idp.introspect(tok["access_token"])["username"],
                         "carol@example.com")
        # Microsoft's endpoint does not know Google's device codes.
        self.assertOAuthError(self.poll(dc["device_code"]),
                              "bad_verification_code", 70018)


class Oidc(BrowserBase):
    def discovery(self):
        st, _, doc = self.idp.get_json(self.idp.oidc_discovery_url())
        self.assertEqual(st, 200, doc)
        return doc

    def test_discovery_document(self):
        doc = self.discovery()
        issuer = self.idp.oidc_issuer()
        self.assertEqual(doc["issuer"], issuer)
        self.assertTrue(issuer.startswith("https://127.0.0.1:%d/"
                                          % self.idp.port))
        for k in ("authorization_endpoint", "token_endpoint",
                  "device_authorization_endpoint", "introspection_endpoint"):
            self.assertTrue(doc[k].startswith(issuer + "/protocol/"), k)
        self.assertIn("S256", doc["code_challenge_methods_supported"])
        self.assertIn(DEVICE_GRANT, doc["grant_types_supported"])

    def test_device_flow_and_rotation(self):
        doc = self.discovery()
        st, _, dc = self.idp.post_form(doc["device_authorization_endpoint"], {
            "client_id": "mailoauth", "scope": "openid email offline_access"})
        self.assertEqual(st, 200, dc)
        self.assertTrue(dc["verification_uri_complete"].endswith(
            "?user_code=" + dc["user_code"]))
        form = {"grant_type": DEVICE_GRANT, "client_id": "mailoauth",
                "device_code": dc["device_code"]}
        self.assertPlainError(self.idp.post_form(doc["token_endpoint"], form),
                              400, "authorization_pending")
        self.idp.approve(dc["user_code"])
        st, _, tok = self.idp.post_form(doc["token_endpoint"], form)
        self.assertEqual(st, 200, tok)
        rt = tok["refresh_token"]
        refresh = {"grant_type": "refresh_token", "client_id": "mailoauth",
                   "refresh_token": rt}
        st, _, tok2 = self.idp.post_form(doc["token_endpoint"], refresh)
        self.assertEqual(st, 200, tok2)
        self.assertNotEqual(tok2["refresh_token"], rt)   # rotated
        self.assertEqual(self.idp.post_form(doc["token_endpoint"],
                                            refresh)[0], 200)
        self.idp.set_rotation_revokes_old(True)
        refresh["refresh_token"] = tok2["refresh_token"]
        self.assertEqual(self.idp.post_form(doc["token_endpoint"],
                                            refresh)[0], 200)
        self.assertPlainError(self.idp.post_form(doc["token_endpoint"],
                                                 refresh),
                              400, "invalid_grant")

    def test_code_flow(self):
        doc = self.discovery()
        q = self.sign_in(self.auth_url(doc["authorization_endpoint"],
                                       client_id="mailoauth",
                                       scope="openid email"))
        self.assertEqual(q["state"], self.state)
        self.assertEqual(q["iss"], doc["issuer"])
        st, _, tok = self.redeem(doc["token_endpoint"], q["code"],
                                 client_id="mailoauth")
        self.assertEqual(st, 200, tok)
        self.assertIn("refresh_token", tok)
        st, _, info = self.idp.post_form(doc["introspection_endpoint"],
                                         {"token": tok["access_token"]})
        self.assertEqual(st, 200)
        self.assertTrue(info["active"])
        self.assertPlainError(self.redeem(doc["token_endpoint"], q["code"],
                                          client_id="mailoauth"),
                              400, "invalid_grant")

    def test_clients(self):
        doc = self.discovery()
        self.assertPlainError(self.idp.post_form(doc["token_endpoint"], {
            "grant_type": "refresh_token", "client_id": "other",
            "refresh_token": "x"}), 401, "invalid_client")
        self.assertPage(self.auth_url(doc["authorization_endpoint"],
                                      client_id="other"), 400,
                        "Client not found")
        self.idp.set_oidc_clients(["other"])
        q = self.sign_in(self.auth_url(doc["authorization_endpoint"],
                                       client_id="other"))
        self.assertIn("code", q)


class Clouds(BrowserBase):
    def test_national_cloud_scopes(self):
        us = ("https://outlook.office365.us/IMAP.AccessAsUser.All "
              "https://outlook.office365.us/SMTP.Send offline_access")
        dc = self.new_code(us)
        self.idp.approve(dc["user_code"])
        st, _, tok = self.poll(dc["device_code"])
        self.assertEqual(st, 200, tok)
        self.assertIn("https://outlook.office365.us/SMTP.Send", tok["scope"])
        self.assertEqual(self.idp.cloud_prefixes(),
                         ["https://outlook.office365.us/"])
        cn = "https://partner.outlook.cn/IMAP.AccessAsUser.All offline_access"
        q = self.sign_in(self.auth_url(self.idp.authorize_url(), scope=cn))
        self.assertEqual(self.redeem(self.idp.token_url(), q["code"])[0], 200)
        self.assertEqual(self.idp.cloud_prefixes(),
                         ["https://outlook.office365.us/",
                          "https://partner.outlook.cn/"])
        self.assertEqual([r["endpoint"] for r in self.idp.cloud_requests()],
                         ["devicecode", "authorize"])
        self.idp.reset()
        self.assertEqual(self.idp.cloud_prefixes(), [])


class _Listener(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.paths.append(self.path)
        body = b"<html><body>Signed in</body></html>"
        self.send_response(404 if self.path == "/favicon.ico" else 200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


class ScriptedBrowser(BrowserBase):
    """tests/lib/browser.py against the fake and a tiny loopback listener
    standing in for mailoauth's."""

    def setUp(self):
        super().setUp()
        self.listener = HTTPServer(("127.0.0.1", 0), _Listener)
        self.listener.paths = []
        self.redirect = "http://127.0.0.1:%d/" % self.listener.server_port
        self.thread = threading.Thread(target=self.listener.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def tearDown(self):
        self.listener.shutdown()
        self.listener.server_close()
        self.thread.join(5)

    def test_follow(self):
        url = self.auth_url(self.idp.authorize_url(),
                            redirect_uri=self.redirect)
        st, body = browser.follow(url, self.idp.ca_file)
        self.assertEqual((st, body),
                         (200, "<html><body>Signed in</body></html>"))
        self.assertEqual(len(self.listener.paths), 1)
        q = query_of(self.listener.paths[0])
        self.assertEqual(q["state"], self.state)
        self.assertTrue(self.listener.paths[0].startswith("/?code="))
        st, _ = browser.follow(self.auth_url(self.idp.authorize_url(),
                                             redirect_uri=self.redirect),
                               self.idp.ca_file, favicon_first=True)
        self.assertEqual(st, 200)
        self.assertEqual(self.listener.paths[1], "/favicon.ico")
        self.assertTrue(self.listener.paths[2].startswith("/?code="))

    def test_redirect_location_goes_nowhere(self):
        url = self.auth_url(self.idp.authorize_url(),
                            redirect_uri=self.redirect)
        location = browser.redirect_location(url, self.idp.ca_file)
        self.assertTrue(location.startswith(self.redirect + "?code="))
        self.assertEqual(self.listener.paths, [])
        st, body = browser.follow(url, self.idp.ca_file, follow_redirect=False)
        self.assertEqual((st, body), (302, ""))
        self.assertEqual(self.listener.paths, [])

    def test_no_redirect_no_listener(self):
        url = self.auth_url(self.idp.authorize_url(), client_id="nope",
                            redirect_uri=self.redirect)
        st, body = browser.follow(url, self.idp.ca_file)
        self.assertEqual(st, 400)
        self.assertIn("AADSTS700016", body)
        self.assertEqual(self.listener.paths, [])
        with self.assertRaises(browser.BrowserError):
            browser.redirect_location(url, self.idp.ca_file)

    def test_loopback_only(self):
        for url in ("https://login.microsoftonline.com/common/oauth2/v2.0/"
                    "authorize?response_type=code", "ftp://127.0.0.1/",
                    "http://192.0.2.1/"):
            with self.assertRaises(browser.BrowserError):
                browser.get(url, self.idp.ca_file)
        # A redirect is followed to plain http on loopback only.
        with self.assertRaises(browser.BrowserError):
            browser._loopback("https://127.0.0.1:1/?code=x", "http")
        # The fake's own certificate is checked against the test CA.
        cert, _ = testca.untrusted_cert(os.path.join(WORK,
                                                     "untrusted-browser"))
        other_ca = os.path.join(os.path.dirname(cert), "ca.pem")
        with self.assertRaises(ssl.SSLCertVerificationError):
            browser.get(self.idp.authorize_url(), other_ca)

    def test_url_from_output(self):
        url = self.auth_url(self.idp.authorize_url())
        lines = ["", "To sign in, open this address in a web browser:", "",
                 "    " + url, "", "Waiting for the sign-in: 4:59 left"]
        self.assertEqual(browser.auth_url_from_lines(lines), url)
        self.assertIsNone(browser.auth_url_in(
            "Open: https://microsoft.com/devicelogin"))
        self.assertIsNone(browser.auth_url_from_lines(lines[:3]))
        # From a pipe, line by line; what follows stays unread.
        r, w = os.pipe()
        with os.fdopen(r, "rb", buffering=0) as rf:
            os.write(w, ("\n".join(lines) + "\n").encode())
            seen = []
            self.assertEqual(browser.read_auth_url(rf, 5, seen), url)
            self.assertEqual(seen, lines[:4])
            self.assertEqual(os.read(r, 1), b"\n")
            t0 = time.monotonic()
            with self.assertRaises(browser.BrowserError):
                browser.read_auth_url(rf, 0.2)
            self.assertLess(time.monotonic() - t0, 2)
            os.close(w)
            with self.assertRaises(browser.BrowserError):
                browser.read_auth_url(rf, 5)


if __name__ == "__main__":
    import tap
    tap.main()
