"""Start, drive and stop the fake identity provider (tests/fake/fake_idp.py).

    with FakeIdP(workdir) as idp:
        authority = idp.authority()        # https://127.0.0.1:PORT/organizations
        ... run `mailoauth login` against it, with idp.ca_file as CA ...
        idp.approve(idp.wait_for_pending(), username="alice@example.com")

Control calls go over the fake's own HTTPS port (paths under /_fake/),
verifying its certificate against the test CA, with a timeout.
"""
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import testca
from testca import free_port, untrusted_cert  # noqa: F401  (re-exported)

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_IDP = os.path.normpath(os.path.join(HERE, "..", "fake", "fake_idp.py"))
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
CONTROL_TIMEOUT = 10


# The "kid" of the JWT access tokens a fake started with jwt_key issues
# (tests/fake/fake_idp.py).
JWT_KEY_ID = "mailoauth-fake-1"


class FakeIdPError(RuntimeError):
    pass


class FakeIdP:
    def __init__(self, workdir, access_lifetime=3600, interval=1,
                 device_expires=900,
                 client_ids=("11111111-2222-3333-4444-555555555555",),
                 auto_approve_after=None,
                 auto_approve_user="alice@example.com", ca=None,
                 cert=None, key=None, rotation_revokes_old=False,
                 jwt_key=None):
        """workdir: a directory of this test's own (created if needed).
        ca: an existing testca directory to reuse (default WORKDIR/ca).
        cert/key: serve this certificate instead (e.g. testca.untrusted_cert).
        jwt_key: a file of key bytes: access tokens are HS256 JWTs signed
        with it (for a server that validates them locally).
        """
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.access_lifetime = access_lifetime
        self.interval = interval
        self.device_expires = device_expires
        self.client_ids = tuple(client_ids)
        self.client_id = self.client_ids[0]
        self.auto_approve_after = auto_approve_after
        self.auto_approve_user = auto_approve_user
        self.rotation_revokes_old = rotation_revokes_old
        self.jwt_key = jwt_key
        self.ca = testca.ensure(ca or os.path.join(self.workdir, "ca"))
        self.ca_file = self.ca.ca_file
        self.cert = cert or self.ca.cert
        self.key = key or self.ca.key
        self.stdout_path = os.path.join(self.workdir, "fake_idp.stdout")
        self.stderr_path = os.path.join(self.workdir, "fake_idp.stderr")
        self.port_file = os.path.join(self.workdir, "fake_idp.port")
        self.proc = None
        self.port = None
        self.base_url = None
        self.introspect_url = None
        self.introspection_url = None
        # Control calls also trust the CA of a certificate served instead
        # (testca.untrusted_cert keeps its CA beside it as ca.pem), so a
        # fake with an untrusted certificate can still be observed;
        # ca_file, what the client under test gets, stays the test CA.
        self._ctx = ssl.create_default_context(cafile=self.ca_file)
        other_ca = os.path.join(os.path.dirname(os.path.abspath(self.cert)),
                                "ca.pem")
        if self.cert != self.ca.cert and os.path.exists(other_ca):
            self._ctx.load_verify_locations(cafile=other_ca)
            self._control_ok = True
        else:
            self._control_ok = self.cert == self.ca.cert

    # --- lifecycle ---------------------------------------------------

    def start(self, timeout=15):
        if self.proc is not None:
            raise FakeIdPError("already started")
        try:
            os.unlink(self.port_file)
        except FileNotFoundError:
            pass
        cmd = [sys.executable, FAKE_IDP, "--cert", self.cert,
               "--key", self.key, "--port", "0",
               "--port-file", self.port_file,
               "--access-lifetime", str(int(self.access_lifetime)),
               "--interval", str(int(self.interval)),
               "--device-expires", str(int(self.device_expires))]
        for c in self.client_ids:
            cmd += ["--client-id", c]
        if self.jwt_key:
            cmd += ["--jwt-key", self.jwt_key]
        if self.auto_approve_after is not None:
            cmd += ["--auto-approve-after", str(self.auto_approve_after),
                    "--auto-approve-user", self.auto_approve_user]
        with open(self.stdout_path, "ab") as out, \
                open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err,
                                         close_fds=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                self.proc = None
                raise FakeIdPError("fake_idp.py exited early:\n" +
                                   self.stderr_text())
            try:
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    break
            except FileNotFoundError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise FakeIdPError("fake_idp.py did not start")
            time.sleep(0.02)
        self.base_url = "https://127.0.0.1:%d" % self.port
        self.introspect_url = self.base_url + "/_fake/introspect"
        self.introspection_url = self.introspect_url      # alias
        if self._control_ok:
            self._call("GET", "health")
            if self.rotation_revokes_old:
                self.set_config(rotation_revokes_old=True)
        return self

    def stop(self):
        """Stop exactly the process start() made: SIGTERM, then SIGKILL."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stdout_text(self):
        try:
            with open(self.stdout_path, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stderr_text(self):
        try:
            with open(self.stderr_path, encoding="utf-8",
                      errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # --- URLs --------------------------------------------------------

    def authority(self, tenant="organizations"):
        return "%s/%s" % (self.base_url, tenant)

    def devicecode_url(self, tenant="organizations"):
        return self.authority(tenant) + "/oauth2/v2.0/devicecode"

    def token_url(self, tenant="organizations"):
        return self.authority(tenant) + "/oauth2/v2.0/token"

    # --- raw HTTP ----------------------------------------------------

    def _call(self, method, name, body=None, timeout=CONTROL_TIMEOUT):
        url = "%s/_fake/%s" % (self.base_url, name)
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=data, method=method,
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout,
                                        context=self._ctx) as r:
                return json.loads(r.read(1 << 24).decode())
        except urllib.error.HTTPError as e:
            text = e.read(65536).decode("utf-8", "replace")
            raise FakeIdPError("fake control %s %s: HTTP %d %s"
                               % (method, name, e.code, text)) from None

    def post_form(self, url, fields, timeout=CONTROL_TIMEOUT, headers=None):
        """POST a form like a client would; returns (status, headers,
        parsed JSON or raw bytes)."""
        data = urllib.parse.urlencode(fields).encode()
        h = {"Content-Type": "application/x-www-form-urlencoded"}
        h.update(headers or {})
        req = urllib.request.Request(url, data=data, method="POST", headers=h)
        return self._open(req, timeout)

    def _open(self, req, timeout):
        try:
            r = urllib.request.urlopen(req, timeout=timeout, context=self._ctx)
        except urllib.error.HTTPError as e:
            r = e
        with r:
            raw = r.read(8 << 20)
            try:
                body = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                body = raw
            return r.status if hasattr(r, "status") else r.code, \
                dict(r.headers), body

    # --- the user at the browser -------------------------------------

    def approve(self, user_code=None, username="alice@example.com"):
        return self._call("POST", "approve", {"user_code": user_code,
                                              "username": username})

    def decline(self, user_code=None):
        return self._call("POST", "decline", {"user_code": user_code})

    def expire(self, user_code=None):
        return self._call("POST", "expire", {"user_code": user_code})

    def pending_codes(self):
        return self._call("GET", "pending")["pending"]

    def wait_for_pending(self, timeout=10):
        deadline = time.monotonic() + timeout
        while True:
            codes = self.pending_codes()
            if codes:
                return codes[-1]
            if time.monotonic() > deadline:
                raise FakeIdPError("no device code became pending within "
                                   "%gs" % timeout)
            if self.proc is not None and self.proc.poll() is not None:
                raise FakeIdPError("fake_idp.py died")
            time.sleep(0.05)

    def set_auto_approve(self, after_seconds, username="alice@example.com"):
        return self._call("POST", "auto_approve",
                          {"after": after_seconds, "username": username})

    # --- configuration -----------------------------------------------

    def set_config(self, **kw):
        """Any of access_lifetime, interval, device_expires, client_ids,
        unknown_tenants, rotation_revokes_old, enforce_interval,
        auto_approve_after, auto_approve_user.  Returns the new config."""
        return self._call("POST", "config", kw)

    def config(self):
        return self._call("GET", "config")

    def set_access_lifetime(self, seconds):
        return self.set_config(access_lifetime=int(seconds))

    def set_rotation_revokes_old(self, on=True):
        return self.set_config(rotation_revokes_old=bool(on))

    def reset(self):
        """Forget all codes, tokens, faults and counters; back to the
        start-up configuration.  issued_secrets() keeps its history."""
        return self._call("POST", "reset", {})

    # --- revocation --------------------------------------------------

    def revoke_access_tokens(self, username=None):
        return self._call("POST", "revoke", {"what": "access",
                                             "username": username})["revoked"]

    def revoke_refresh_tokens(self, username=None, reason="revoked"):
        return self._call("POST", "revoke", {"what": "refresh",
                                             "username": username,
                                             "reason": reason})["revoked"]

    # --- faults ------------------------------------------------------

    def fault(self, endpoint, kind, count=1, grant_type=None, **params):
        """Queue a fault for the next COUNT requests to ENDPOINT
        ("devicecode" or "token"), optionally only for one grant_type
        ("device_code", "refresh_token" or the full URN).

        kind and its params:
          status     status=500, retry_after=None, error=, code=,
                     error_description=   (JSON error body)
          delay      seconds=5            (then answers normally)
          malformed  status=200, body=    (truncated JSON by default)
          html       status=502           (text/html error page)
          huge       status=200, size=5 MiB   (valid JSON, huge)
          slow_down                       (400 slow_down)
          error      status=400, error=, error_codes=[...],
                     error_description=, error_description_raw=,
                     retry_after=
          reset                           (connection closed, no answer)
          inject                          (answers as it would, edited)

        Every kind that answers with JSON (status, slow_down, error,
        inject) also takes fields={name: value} (members set, JSON-encoded,
        so "\u009b" travels as that escape) and raw_fields={name: bytes}
        (written verbatim inside the JSON string: a raw 0x9B byte, invalid
        UTF-8, reaches the client).
        """
        raw = params.get("raw_fields")
        if raw:
            params["raw_fields"] = {k: base64.b64encode(v).decode()
                                    for k, v in raw.items()}
        return self._call("POST", "fault", {
            "endpoint": endpoint, "kind": kind, "count": count,
            "grant_type": grant_type, "params": params})

    def inject(self, endpoint, count=1, grant_type=None, fields=None,
               raw_fields=None):
        """The next answer of ENDPOINT, whatever it is, with fields set and
        raw_fields written as raw bytes (see fault)."""
        return self.fault(endpoint, "inject", count=count,
                          grant_type=grant_type, fields=fields or {},
                          raw_fields=raw_fields or {})

    def clear_faults(self):
        return self._call("POST", "faults", {})

    # --- observation -------------------------------------------------

    def counters(self):
        return self._call("GET", "counters")

    def requests(self):
        return self._call("GET", "requests")["requests"]

    def reset_counters(self):
        return self._call("POST", "reset_counters", {})

    def issued_secrets(self):
        return self._call("GET", "secrets")["secrets"]

    # --- the browser sign-in and the other providers -------------------
    # (tests/fake/fake_idp_providers.py; tests/lib/browser.py follows the
    # authorization redirect like a browser)

    def authorize_url(self, tenant="organizations"):
        return self.authority(tenant) + "/oauth2/v2.0/authorize"

    def google_auth_url(self):
        return self.base_url + "/google/o/oauth2/v2/auth"

    def google_token_url(self):
        return self.base_url + "/google/token"

    def google_device_url(self):
        return self.base_url + "/google/device/code"

    def oidc_issuer(self):
        """The generic OpenID Connect issuer (Keycloak's paths)."""
        return self.base_url + "/realms/mail"

    def oidc_discovery_url(self):
        return self.oidc_issuer() + "/.well-known/openid-configuration"

    def set_browser(self, **kw):
        """What the person at the browser does at every authorization
        endpoint: username (default alice@example.com), outcome ("approve",
        "deny": access_denied, "error": error/error_description/error_codes
        redirected, "page": a 400 page, nothing redirected), code_lifetime
        (seconds, default 600).  Returns the whole setting."""
        return self._call("POST", "browser", kw)

    def browser_config(self):
        return self._call("GET", "browser")

    def set_signed_in_user(self, username):
        return self.set_browser(username=username)

    def set_conditional_access(self, code=53003):
        """Block the device-code flow (53003, or 530033 for a policy that
        requires a managed device); None lifts the block."""
        return self._call("POST", "conditional_access", {"code": code})

    def cloud_prefixes(self):
        """The scope prefixes (https://host/) clients asked for, in order."""
        return self._call("GET", "clouds")["prefixes"]

    def cloud_requests(self):
        """[{"endpoint": ..., "prefixes": [...]}] per request with scopes."""
        return self._call("GET", "clouds")["requests"]

    def google_client(self):
        """(client_id, client_secret) of the Google-shaped provider."""
        c = self._call("GET", "google")
        return c["client_id"], c["client_secret"]

    def set_google_client(self, client_id=None, client_secret=None):
        kw = {}
        if client_id is not None:
            kw["client_id"] = client_id
        if client_secret is not None:
            kw["client_secret"] = client_secret
        return self._call("POST", "google", kw)

    def set_oidc_clients(self, client_ids):
        return self._call("POST", "oidc", {"client_ids": list(client_ids)})

    def expire_auth_codes(self):
        return self._call("POST", "expire_auth_codes", {})["expired"]

    def auth_codes(self):
        """Metadata of the authorization codes issued (never their values)."""
        return self._call("GET", "auth_codes")["codes"]

    def get_json(self, url, timeout=CONTROL_TIMEOUT):
        """GET a JSON document (e.g. discovery); (status, headers, body)."""
        req = urllib.request.Request(url, method="GET")
        return self._open(req, timeout)

    def introspect(self, token):
        status, _, body = self.post_form(self.introspect_url,
                                         {"token": token})
        if status != 200:
            raise FakeIdPError("introspect: HTTP %d" % status)
        return body

    def valid_access_token(self, token):
        return bool(self.introspect(token).get("active"))
