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


# --- app-only accounts (tests/fake/fake_idp_app.py) ----------------------

CLIENT_ASSERTION_TYPE = \
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
APP_SCOPE = "https://outlook.office365.com/.default"


def _app_call(self, method, name, body=None):
    return self._call(method, "app/" + name, body)


def register_app(self, client_id, tenant="contoso.onmicrosoft.com",
                 mailbox="relay@example.com", secret=None, certificates=(),
                 secret_expired=False, admin_consent=True, roles=None,
                 tenant_aliases=(), object_id=None):
    """Register an app for the client-credentials grant.  certificates:
    PEM texts or paths of PEM files (public certificates only).  roles:
    its application permissions (default IMAP.AccessAsApp, POP.AccessAsApp,
    SMTP.SendAsApp), carried by its tokens when admin_consent.  mailbox:
    the one mailbox its tokens introspect as.  Returns the registration
    without the secret (object_id, certificate thumbprints, ...)."""
    body = {"client_id": client_id, "tenant": tenant,
            "tenant_aliases": list(tenant_aliases), "mailbox": mailbox,
            "secret": secret, "secret_expired": bool(secret_expired),
            "certificates": [_pem_text(c) for c in certificates],
            "admin_consent": bool(admin_consent)}
    if roles is not None:
        body["roles"] = list(roles)
    if object_id is not None:
        body["object_id"] = object_id
    return self._app_call("POST", "register", body)


def update_app(self, client_id, **fields):
    """Change a registration: any of tenant, tenant_aliases, secret,
    secret_expired, certificates, mailbox, admin_consent, roles."""
    if "certificates" in fields:
        fields["certificates"] = [_pem_text(c) for c in fields["certificates"]]
    fields["client_id"] = client_id
    return self._app_call("POST", "update", fields)


def unregister_app(self, client_id):
    return self._app_call("POST", "unregister", {"client_id": client_id})


def apps(self):
    return self._app_call("GET", "list")["apps"]


def set_app_clock_offset(self, seconds):
    """Shift the fake's clock for client assertions (exp/nbf checks) by
    seconds, as if this machine's clock were off by -seconds."""
    return self._app_call("POST", "clock", {"offset": int(seconds)})


def app_token(self, client_id, tenant="contoso.onmicrosoft.com",
              scope=APP_SCOPE, secret=None, assertion=None,
              assertion_type=CLIENT_ASSERTION_TYPE):
    """A client-credentials request as a client would send it; returns
    (status, headers, body)."""
    fields = {"client_id": client_id, "scope": scope,
              "grant_type": "client_credentials"}
    if secret is not None:
        fields["client_secret"] = secret
    if assertion is not None:
        fields["client_assertion_type"] = assertion_type
        fields["client_assertion"] = assertion
    return self.post_form(self.token_url(tenant), fields)


for _f in (_app_call, register_app, update_app, unregister_app, apps,
           set_app_clock_offset, app_token):
    setattr(FakeIdP, _f.__name__, _f)
del _f


def _pem_text(c):
    if "-----BEGIN" in c:
        return c
    with open(c) as f:
        return f.read()


def make_app_certificate(directory, name="app", bits=2048,
                         not_before_days=-1, not_after_days=365,
                         cn="mailoauth test app"):
    """A test-only RSA key and self-signed certificate, made now with the
    `cryptography` package: writes DIRECTORY/NAME.key (mode 0600, PKCS #8,
    unencrypted) and DIRECTORY/NAME.crt; returns (cert_path, key_path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    import datetime
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    now = datetime.datetime.now(datetime.timezone.utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (x509.CertificateBuilder().subject_name(subject)
            .issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=not_before_days))
            .not_valid_after(now + datetime.timedelta(days=not_after_days))
            .sign(key, hashes.SHA256()))
    os.makedirs(directory, exist_ok=True)
    key_path = os.path.join(directory, name + ".key")
    cert_path = os.path.join(directory, name + ".crt")
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    os.chmod(key_path, 0o600)
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert_path, key_path


def make_client_assertion(cert_path, key_path, client_id, audience,
                          alg="PS256", now=None, lifetime=300, jti=None,
                          header_extra=None, claims_extra=None):
    """A client assertion built in Python (for testing the fake alone, and
    as a reference for the C++ one): PS256 with x5t#S256, or RS256 with
    x5t."""
    import hashlib
    import ssl as _ssl
    import uuid as _uuid
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    with open(cert_path) as f:
        der = _ssl.PEM_cert_to_DER_cert(f.read())
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    now = int(time.time()) if now is None else int(now)
    header = {"alg": alg, "typ": "JWT"}
    if alg == "PS256":
        header["x5t#S256"] = b64(hashlib.sha256(der).digest())
    else:
        header["x5t"] = b64(hashlib.sha1(der).digest())
    header.update(header_extra or {})
    claims = {"aud": audience, "iss": client_id, "sub": client_id,
              "jti": jti or str(_uuid.uuid4()), "nbf": now - 60, "iat": now,
              "exp": now + lifetime}
    claims.update(claims_extra or {})
    signing_input = (b64(json.dumps(header).encode()) + "." +
                     b64(json.dumps(claims).encode())).encode()
    pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) \
        if alg == "PS256" else padding.PKCS1v15()
    sig = key.sign(signing_input, pad, hashes.SHA256())
    return signing_input.decode() + "." + b64(sig)


def decode_jwt_payload(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
