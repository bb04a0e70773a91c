#!/usr/bin/python3
"""A fake Microsoft identity platform (v2.0 endpoints) for mailoauth's tests.

HTTPS on 127.0.0.1 only, Python standard library only.  It follows the
documented protocol of login.microsoftonline.com closely enough for a real
client to run against it unchanged:

  POST /{tenant}/oauth2/v2.0/devicecode   device authorization request
  POST /{tenant}/oauth2/v2.0/token        device_code and refresh_token grants

and, in tests/fake/fake_idp_providers.py, the authorization endpoint
(GET /{tenant}/oauth2/v2.0/authorize, grant_type=authorization_code with
PKCE), a Conditional-Access mode, a Google-shaped provider under /google and
a generic OpenID Connect issuer under /realms/mail,

and adds, for the tests, token introspection for Dovecot's oauth2 passdb

  POST /_fake/introspect (form token=...), GET /_fake/introspect?token=...,
  GET /_fake/introspect with "Authorization: Bearer ..."

and JSON control endpoints under /_fake/ (approve, decline, expire, faults,
counters, revocation, ...; see CONTROL below and tests/lib/fakeidp.py).

Choices where Microsoft's documentation is silent or loose (kept here so a
reader of a test failure can find them):
  * Errors are HTTP 400 with a JSON body: error, error_description
    ("AADSTSnnnn: text" plus trace/correlation/timestamp lines, as Microsoft
    sends), error_codes, timestamp, trace_id, correlation_id, error_uri.
  * Unknown client_id: 400 unauthorized_client, AADSTS700016.
  * Unknown device_code, or one polled with another client_id or tenant:
    bad_verification_code (AADSTS70018).  Expired: expired_token
    (AADSTS70020).  Declined: authorization_declined (AADSTS70000).
    Already redeemed: invalid_grant (AADSTS70000).
  * Polling faster than 0.9 x interval: slow_down (AADSTS70016 family).
  * A refresh_token is issued only when offline_access was requested, as
    documented.  Every refresh rotates it; the old one stays valid unless
    rotation_revokes_old is set.
  * Refresh tokens made invalid by the tests: reason "revoked" ->
    invalid_grant AADSTS50173, "expired" -> invalid_grant AADSTS700082;
    unknown ones -> invalid_grant AADSTS70000.
  * Wrong Content-Type: the body is not parsed, so the request fails like
    Microsoft's with invalid_request AADSTS900144 (missing parameter).
  * Non-POST on an OAuth endpoint: 405, invalid_request AADSTS900561.

Hostile text for the tests of the client's sanitizer: any fault whose
answer is JSON (and the kind "inject", which lets the endpoint answer as it
would) may carry "fields" (members set or replaced, JSON-encoded: a "\u009b"
goes out as that escape) and "raw_fields" (members whose value is given in
base64 and written verbatim between the quotes, so a raw 0x9B byte, invalid
UTF-8, reaches the client as Python's json module would never send it).

The request log on stderr holds only method, path (without query), grant
type and status: never a token, code or form value.
"""
import argparse
import base64
import datetime
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The authorization endpoints, Google and the OIDC issuer, Conditional
# Access mode: a module of their own beside this file (see its docstring).
import fake_idp_providers
import fake_idp_app  # app-only accounts: client credentials (its own file)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
VERIFICATION_URI = "https://microsoft.com/devicelogin"
MAX_BODY = 64 * 1024
MAX_DELAY = 600
MAX_HUGE = 64 * 1024 * 1024
DEFAULT_CLIENT_ID = "11111111-2222-3333-4444-555555555555"
USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]{0,253}$")
OAUTH_PATH_RE = re.compile(r"^/([^/]+)/oauth2/v2\.0/(devicecode|token)$")
FAULT_KINDS = ("status", "delay", "malformed", "html", "huge", "slow_down",
               "error", "reset", "inject")

STOP = threading.Event()


def log(msg):
    sys.stderr.write("fake-idp: %s\n" % msg)
    sys.stderr.flush()


def say(msg):
    """A line on stdout: what a human at the browser would have done."""
    sys.stdout.write("fake-idp: %s\n" % msg)
    sys.stdout.flush()


def grant_key(grant_type):
    """Short name of a grant type for counters and logs."""
    if grant_type == DEVICE_GRANT:
        return "device_code"
    if grant_type in ("refresh_token", "authorization_code",
                      "client_credentials", "password", "device_code"):
        return grant_type
    return "other"


# The "kid" of the fake's JWT access tokens (--jwt-key).
JWT_KEY_ID = "mailoauth-fake-1"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def raw_json_string(data):
    """The bytes of a JSON string literal's inside, kept verbatim except
    what would end or break the literal (quote, backslash, C0 controls)."""
    out = bytearray()
    for b in data:
        if b in (0x22, 0x5c):
            out += b"\\" + bytes([b])
        elif b < 0x20:
            out += b"\\u%04x" % b
        else:
            out.append(b)
    return bytes(out)


def json_body(obj, fields=None, raw_fields=None):
    """obj as JSON bytes, with fields set and raw_fields ({name: bytes})
    written verbatim (see raw_json_string)."""
    obj = dict(obj)
    obj.update(fields or {})
    marks = {}
    for name, data in (raw_fields or {}).items():
        mark = "@@raw-%s@@" % uuid.uuid4().hex
        obj[name] = mark
        marks[mark] = data
    body = json.dumps(obj).encode("utf-8")
    for mark, data in marks.items():
        body = body.replace(json.dumps(mark).encode(),
                            b'"' + raw_json_string(data) + b'"')
    return body


class OAuthError(Exception):
    def __init__(self, error, code, text, status=400, headers=None):
        super().__init__(error)
        self.error = error
        self.code = code
        self.text = text
        self.status = status
        self.headers = headers or {}


def missing(param):
    return OAuthError("invalid_request", 900144,
                      "The request body must contain the following parameter:"
                      " '%s'." % param)


class State:
    """Everything the fake knows; one lock guards it all."""

    def __init__(self, args):
        self.lock = threading.Lock()
        self.args = args
        self.issued = []         # every secret ever issued; never reset
        self.jwt_key = None
        if args.jwt_key:
            with open(args.jwt_key, "rb") as f:
                self.jwt_key = f.read()
        self.reset_all()

    # --- configuration and reset -------------------------------------

    def reset_all(self):
        """Back to the start-up state.  Callers hold the lock (or are
        the constructor)."""
        a = self.args
        self.config = {
            "access_lifetime": int(a.access_lifetime),
            "interval": int(a.interval),
            "device_expires": int(a.device_expires),
            "client_ids": list(a.client_id or [DEFAULT_CLIENT_ID]),
            "unknown_tenants": list(a.unknown_tenant or
                                    ["nosuchtenant.example"]),
            "rotation_revokes_old": False,
            "enforce_interval": True,
            "auto_approve_after": a.auto_approve_after,
            "auto_approve_user": a.auto_approve_user,
        }
        self.devices = {}        # device_code -> dict
        self.access = {}         # access token -> dict
        self.refresh = {}        # refresh token -> dict
        self.faults = []
        fake_idp_providers.reset(self)
        fake_idp_app.reset(self)   # app registrations, seen jtis
        self.reset_counters()

    def reset_counters(self):
        self.counters = {"devicecode": 0, "token": 0, "introspect": 0}
        self.requests = []

    # --- secrets -----------------------------------------------------

    def new_secret(self, nbytes, prefix=""):
        s = prefix + secrets.token_urlsafe(nbytes)
        self.issued.append(s)
        return s

    def new_user_code(self):
        while True:
            code = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
            if not any(d["user_code"] == code for d in self.devices.values()):
                return code

    # --- device codes ------------------------------------------------

    def device_state(self, d, now=None):
        now = time.monotonic() if now is None else now
        if d["state"] == "pending" and now >= d["expires_at"]:
            d["state"] = "expired"
        return d["state"]

    def find_pending(self, user_code):
        """The pending device entry for user_code, or the latest pending."""
        now = time.monotonic()
        pending = [d for d in self.devices.values()
                   if self.device_state(d, now) == "pending"]
        if user_code:
            norm = user_code.replace("-", "").upper()
            pending = [d for d in pending if d["user_code"] == norm]
        if not pending:
            return None
        return max(pending, key=lambda d: d["created"])

    # --- tokens ------------------------------------------------------

    def issue_tokens(self, username, client_id, scope, tenant, with_refresh):
        cfg = self.config
        lifetime = cfg["access_lifetime"]
        scopes = [s for s in scope.split() if s]
        granted = [s for s in scopes if s.lower() != "offline_access"]
        if self.jwt_key:
            access = self.jwt_access_token(username, client_id, granted,
                                           tenant, lifetime)
        else:
            access = self.new_secret(48, "EwA")
        self.access[access] = {
            "username": username, "client_id": client_id,
            "scope": " ".join(granted), "exp": int(time.time()) + lifetime,
            "revoked": False, "tenant": tenant,
        }
        body = {
            "token_type": "Bearer",
            "scope": " ".join(granted),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": access,
        }
        if with_refresh:
            rt = self.new_secret(64, "M.C5")
            self.refresh[rt] = {
                "username": username, "client_id": client_id,
                "scope": " ".join(scopes), "revoked": None, "tenant": tenant,
            }
            body["refresh_token"] = rt
        if "openid" in (s.lower() for s in scopes):
            body["id_token"] = self.id_token(username, client_id, tenant)
        return body

    def jwt_access_token(self, username, client_id, scopes, tenant, lifetime):
        """An access token as work accounts get them for Exchange Online: a
        JWT the resource server checks by itself, without asking the
        provider.  Microsoft signs with RS256 and publishes its keys; the
        fake signs with HS256 and a key file it shares with the test's
        server (Dovecot's local validation), which is enough to check
        signature, expiry and user.  Still listed for introspection, so
        revocation works where the server introspects."""
        now = int(time.time())
        tid = tenant if re.match(r"^[0-9a-f-]{36}$", tenant) else \
            "9188040d-6c67-4c5b-b112-36a304b66dad"
        header = {"typ": "JWT", "alg": "HS256", "kid": JWT_KEY_ID}
        payload = {
            "aud": "https://outlook.office.com",
            "iss": "https://sts.windows.net/%s/" % tid,
            "iat": now, "nbf": now, "exp": now + lifetime,
            "appid": client_id, "tid": tid, "ver": "1.0",
            "oid": str(uuid.UUID(bytes=hashlib.sha256(
                username.encode()).digest()[:16], version=4)),
            "scp": " ".join(s.rsplit("/", 1)[-1] for s in scopes),
            "sub": b64url(hashlib.sha256(
                (username + client_id).encode()).digest()),
            "upn": username, "unique_name": username,
            # Unique per token, as Microsoft's "uti" is.
            "uti": secrets.token_urlsafe(16),
        }
        signing_input = "%s.%s" % (
            b64url(json.dumps(header, separators=(",", ":")).encode()),
            b64url(json.dumps(payload, separators=(",", ":")).encode()))
        sig = hmac.new(self.jwt_key, signing_input.encode(),
                       hashlib.sha256).digest()
        tok = signing_input + "." + b64url(sig)
        self.issued.append(tok)
        return tok

    def id_token(self, username, client_id, tenant):
        now = int(time.time())
        tid = tenant if re.match(r"^[0-9a-f-]{36}$", tenant) else \
            "9188040d-6c67-4c5b-b112-36a304b66dad"
        oid = str(uuid.UUID(bytes=hashlib.sha256(
            username.encode()).digest()[:16], version=4))
        header = {"typ": "JWT", "alg": "none"}
        payload = {
            "aud": client_id,
            "iss": "https://login.microsoftonline.com/%s/v2.0" % tid,
            "iat": now, "nbf": now, "exp": now + 3600,
            "name": username.split("@")[0].capitalize(),
            "oid": oid, "preferred_username": username,
            "sub": b64url(hashlib.sha256(
                (username + client_id).encode()).digest()),
            "tid": tid, "ver": "2.0",
        }
        tok = "%s.%s.%s" % (
            b64url(json.dumps(header, separators=(",", ":")).encode()),
            b64url(json.dumps(payload, separators=(",", ":")).encode()),
            b64url(secrets.token_bytes(32)))
        self.issued.append(tok)
        return tok

    def introspect(self, token):
        a = self.access.get(token) if token else None
        if not a or a["revoked"] or a["exp"] <= time.time():
            return {"active": False}
        return {
            "active": True,
            "username": a["username"],
            "email": a["username"],
            "preferred_username": a["username"],
            "sub": a["username"],
            "scope": a["scope"],
            "client_id": a["client_id"],
            "token_type": "Bearer",
            "exp": a["exp"],
        }

    # --- faults ------------------------------------------------------

    def take_fault(self, endpoint, grant_type):
        for f in self.faults:
            if f["endpoint"] != endpoint:
                continue
            if f["grant_type"] and f["grant_type"] != grant_key(grant_type) \
                    and f["grant_type"] != grant_type:
                continue
            f["count"] -= 1
            if f["count"] <= 0:
                self.faults.remove(f)
            return f
        return None


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, handler, ctx, state):
        self.ctx = ctx
        self.state = state
        super().__init__(addr, handler)

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread, so
        # a slow or failing client cannot stall the accept loop.
        request.settimeout(15)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            log("TLS handshake failed: %s" % e.__class__.__name__)
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        log("internal error: %r" % (exc,))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    # TCP_NODELAY, as real servers set it: without it the answer's second
    # small write waits for the client's delayed ACK of the TLS session
    # tickets (Nagle), 40 ms on Linux, which bench/ would count as the
    # client's cost.
    disable_nagle_algorithm = True

    def version_string(self):
        return "fake-idp/1"

    # Quiet the default access log: it would print the query string.
    def log_message(self, fmt, *args):
        pass

    @property
    def state(self):
        return self.server.state

    # --- plumbing ----------------------------------------------------

    def clean_path(self):
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_fake/introspect/"):
            path = "/_fake/introspect/<token>"
        return path

    def access_log(self, status, grant_type=None):
        log("%s %s%s %s" % (self.command, self.clean_path(),
                            " grant_type=%s" % grant_key(grant_type)
                            if grant_type else "", status))

    def read_body(self):
        """The request body (bytes), or None after answering an error."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.send_json(411, {"error": "chunked bodies not supported"})
            return None
        try:
            n = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            n = -1
        if n < 0:
            self.send_json(400, {"error": "bad Content-Length"})
            return None
        if n > MAX_BODY:
            # Drain a moderately large body so the client sees the answer
            # rather than a reset; then close the connection.
            if n <= 16 * MAX_BODY:
                self.rfile.read(n)
            self.close_connection = True
            self.send_json(413, {"error": "request body too large"})
            return None
        return self.rfile.read(n) if n else b""

    def send_bytes(self, status, body, ctype, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store, no-cache")
        self.send_header("Pragma", "no-cache")
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, headers=None):
        # A fault's fields/raw_fields edit the one answer to its request.
        edit, self.edit = getattr(self, "edit", None), None
        body = json_body(obj, *edit) if edit else json.dumps(obj).encode("utf-8")
        self.send_bytes(status, body, "application/json; charset=utf-8",
                        headers)

    def oauth_error_body(self, error, code, text):
        now = datetime.datetime.now(datetime.timezone.utc)
        ts = now.strftime("%Y-%m-%d %H:%M:%SZ")
        trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
        return {
            "error": error,
            "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\n"
                                 "Correlation ID: %s\r\nTimestamp: %s"
                                 % (code, text, trace, corr, ts),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": "https://login.microsoftonline.com/error?code=%d"
                         % code,
        }

    def send_oauth_error(self, e):
        self.send_json(e.status, self.oauth_error_body(e.error, e.code, e.text),
                       e.headers)
        return e.status

    # --- dispatch ----------------------------------------------------

    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def dispatch(self):
        path = urllib.parse.urlsplit(self.path).path
        self.edit = None    # set by oauth() from a fault, for its answer only
        try:
            m = OAUTH_PATH_RE.match(path)
            if m:
                self.oauth(m.group(1), m.group(2))
            elif path == "/_fake/introspect" or \
                    path.startswith("/_fake/introspect/"):
                self.introspect_endpoint(path)
            elif path.startswith("/_fake/"):
                self.control(path[len("/_fake/"):])
            elif fake_idp_providers.dispatch(self, path):
                pass
            else:
                self.send_json(404, {"error": "not_found"})
                self.access_log(404)
        except (ConnectionError, ssl.SSLError, TimeoutError):
            self.close_connection = True

    # --- the OAuth endpoints -----------------------------------------

    def record(self, endpoint, grant_type, status, t):
        st = self.state
        with st.lock:
            # dt: how long this request took the provider (its answer
            # written), for bench/ to tell the provider's time apart.
            st.requests.append({"t": t, "dt": time.monotonic() - t,
                                "path": self.clean_path(),
                                "endpoint": endpoint,
                                "grant_type": grant_key(grant_type)
                                if grant_type else None,
                                "status": status})
        self.access_log(status, grant_type)

    def oauth(self, tenant, endpoint):
        t = time.monotonic()
        st = self.state
        body = b""
        if self.command == "POST":
            body = self.read_body()
            if body is None:
                with st.lock:
                    st.counters[endpoint] += 1
                self.record(endpoint, None, 413, t)
                return
        form = {}
        ctype = self.headers.get("Content-Type", "")
        if ctype.split(";")[0].strip().lower() == \
                "application/x-www-form-urlencoded":
            try:
                pairs = urllib.parse.parse_qsl(body.decode("utf-8"),
                                               keep_blank_values=True,
                                               strict_parsing=False)
            except UnicodeDecodeError:
                pairs = []
            for k, v in pairs:
                form.setdefault(k, v)
        fake_idp_providers.note_scopes(st, form.get("scope"), endpoint)
        grant_type = form.get("grant_type") if endpoint == "token" else None
        with st.lock:
            st.counters[endpoint] += 1
            if grant_type:
                key = "grant:" + grant_key(grant_type)
                st.counters[key] = st.counters.get(key, 0) + 1
            fault = st.take_fault(endpoint, grant_type) \
                if self.command == "POST" else None
        status = None
        self.edit = None
        if fault:
            p = fault["params"]
            if p.get("fields") or p.get("raw_fields"):
                self.edit = (dict(p.get("fields") or {}),
                             {k: base64.b64decode(v) for k, v in
                              (p.get("raw_fields") or {}).items()})
            status = self.apply_fault(fault, t, grant_type)
            if status is not None:
                self.record(endpoint, grant_type, status, t)
                return
        try:
            if self.command != "POST":
                raise OAuthError(
                    "invalid_request", 900561,
                    "The endpoint only accepts POST, OPTIONS requests. "
                    "Received a %s request." % self.command, status=405,
                    headers={"Allow": "POST, OPTIONS"})
            if not TENANT_RE.match(tenant) or tenant.lower() in \
                    (x.lower() for x in st.config["unknown_tenants"]):
                raise OAuthError(
                    "invalid_request", 90002,
                    "Tenant '%s' not found. Check to make sure you have the "
                    "correct tenant ID and are signing into the correct "
                    "cloud. Check with your subscription administrator, this "
                    "may happen if there are no active subscriptions for the "
                    "tenant." % tenant)
            if endpoint == "devicecode":
                resp = self.devicecode(tenant, form)
            else:
                resp = self.token(tenant, form, t)
            self.send_json(200, resp)
            status = 200
        except OAuthError as e:
            status = self.send_oauth_error(e)
        self.record(endpoint, grant_type, status, t)

    def check_client(self, form):
        client_id = form.get("client_id", "")
        if not client_id:
            raise missing("client_id")
        if client_id not in self.state.config["client_ids"]:
            raise OAuthError(
                "unauthorized_client", 700016,
                "Application with identifier '%s' was not found in the "
                "directory 'Fake Tenant'. This can happen if the application "
                "has not been installed by the administrator of the tenant "
                "or consented to by any user in the tenant. You may have "
                "sent your authentication request to the wrong tenant."
                % client_id[:100])
        return client_id

    def devicecode(self, tenant, form):
        st = self.state
        client_id = self.check_client(form)
        scope = form.get("scope", "")
        if not scope.strip():
            raise missing("scope")
        with st.lock:
            cfg = st.config
            device_code = st.new_secret(96, "DAQABIQEAAAB")
            user_code = st.new_user_code()
            now = time.monotonic()
            st.devices[device_code] = {
                "user_code": user_code, "client_id": client_id,
                "scope": " ".join(scope.split()), "tenant": tenant.lower(),
                "created": now, "expires_at": now + cfg["device_expires"],
                "interval": cfg["interval"], "state": "pending",
                "username": None, "last_poll": None,
            }
            return {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": VERIFICATION_URI,
                "expires_in": cfg["device_expires"],
                "interval": cfg["interval"],
                "message": "To sign in, use a web browser to open the page %s "
                           "and enter the code %s to authenticate."
                           % (VERIFICATION_URI, user_code),
            }

    def token(self, tenant, form, t):
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise missing("grant_type")
        if grant_type == "client_credentials":   # see fake_idp_app.py
            return fake_idp_app.grant(
                self.state, tenant, form, "https://%s/%s/oauth2/v2.0/token"
                % (self.headers.get("Host", ""), tenant), OAuthError)
        if grant_type not in (DEVICE_GRANT, "refresh_token",
                              "authorization_code"):
            raise OAuthError(
                "unsupported_grant_type", 70003,
                "The app requested an unsupported grant type '%s'."
                % grant_type[:100])
        client_id = self.check_client(form)
        if grant_type == DEVICE_GRANT:
            return self.grant_device_code(tenant, client_id, form, t)
        if grant_type == "authorization_code":
            return fake_idp_providers.grant_authorization_code(
                self, tenant, client_id, form)
        return self.grant_refresh(tenant, client_id, form)

    def grant_device_code(self, tenant, client_id, form, t):
        st = self.state
        dc = form.get("device_code", "")
        if not dc:
            raise missing("device_code")
        with st.lock:
            d = st.devices.get(dc)
            if d is None or d["client_id"] != client_id or \
                    d["tenant"] != tenant.lower():
                raise OAuthError(
                    "bad_verification_code", 70018,
                    "The provided value for the input parameter "
                    "'device_code' is not valid.")
            state = st.device_state(d)
            last, d["last_poll"] = d["last_poll"], t
            if state == "redeemed":
                raise OAuthError(
                    "invalid_grant", 70000,
                    "The provided value for the 'device_code' is not valid. "
                    "It has already been redeemed.")
            if state == "expired":
                raise OAuthError(
                    "expired_token", 70020,
                    "The provided value for the input parameter "
                    "'device_code' is not valid. This device code has "
                    "expired.")
            if state == "declined":
                raise OAuthError(
                    "authorization_declined", 70000,
                    "The user declined the authorization request "
                    "(user declined).")
            if st.config["enforce_interval"] and last is not None and \
                    t - last < 0.9 * d["interval"]:
                raise OAuthError(
                    "slow_down", 70016,
                    "The client is polling too frequently; slow down.")
            if state == "pending":
                raise OAuthError(
                    "authorization_pending", 70016,
                    "OAuth 2.0 device flow error. Authorization is pending. "
                    "Continue polling.")
            # approved
            blocked = fake_idp_providers.conditional_access_error(st)
            if blocked:
                raise blocked
            d["state"] = "redeemed"
            with_refresh = "offline_access" in \
                (s.lower() for s in d["scope"].split())
            return st.issue_tokens(d["username"], client_id, d["scope"],
                                   d["tenant"], with_refresh)

    def grant_refresh(self, tenant, client_id, form):
        st = self.state
        rt = form.get("refresh_token", "")
        if not rt:
            raise missing("refresh_token")
        with st.lock:
            r = st.refresh.get(rt)
            if r is None or r["client_id"] != client_id:
                raise OAuthError(
                    "invalid_grant", 70000,
                    "Provided grant is invalid or malformed.")
            if r["revoked"] == "expired":
                raise OAuthError(
                    "invalid_grant", 700082,
                    "The refresh token has expired due to inactivity. The "
                    "token was issued on 2024-01-01T00:00:00Z and was "
                    "inactive for 90.00:00:00.")
            if r["revoked"]:
                raise OAuthError(
                    "invalid_grant", 50173,
                    "The provided grant has expired due to it being revoked, "
                    "a fresh auth token is needed. The user might have "
                    "changed or reset their password.")
            scope = form.get("scope", "").strip()
            if scope:
                extra = {s.lower() for s in scope.split()} - \
                    {s.lower() for s in r["scope"].split()} - \
                    {"offline_access", "openid", "profile", "email"}
                if extra:
                    raise OAuthError(
                        "invalid_grant", 65001,
                        "The user or administrator has not consented to use "
                        "the application with ID '%s'. Send an interactive "
                        "authorization request for this user and resource."
                        % client_id)
                new_scope = " ".join(scope.split())
                if "offline_access" not in new_scope.lower().split():
                    new_scope += " offline_access"
            else:
                new_scope = r["scope"]
            if st.config["rotation_revokes_old"]:
                r["revoked"] = "revoked"
            return st.issue_tokens(r["username"], client_id, new_scope,
                                   r["tenant"], True)

    def apply_fault(self, f, t, grant_type):
        """Answer per fault f; returns the status, or None to go on."""
        p = f["params"]
        kind = f["kind"]
        if kind == "delay":
            STOP.wait(min(float(p.get("seconds", 5)), MAX_DELAY))
            return None
        if kind == "reset":
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return 0
        if kind == "inject":
            return None     # the endpoint answers; fields/raw_fields edit it
        if kind == "slow_down":
            return self.send_oauth_error(OAuthError(
                "slow_down", 70016,
                "The client is polling too frequently; slow down."))
        if kind == "status":
            status = int(p.get("status", 500))
            headers = {}
            if p.get("retry_after") is not None:
                headers["Retry-After"] = p["retry_after"]
            error = p.get("error") or ("temporarily_unavailable"
                                       if status in (429, 503)
                                       else "server_error")
            code = int(p.get("code", 90033 if status == 429 else 90006))
            text = p.get("error_description") or (
                "Too many requests." if status == 429 else
                "The server encountered an unexpected error. Try again.")
            self.send_json(status, self.oauth_error_body(error, code, text),
                           headers)
            return status
        if kind == "error":
            status = int(p.get("status", 400))
            codes = [int(c) for c in p.get("error_codes", [70000])]
            body = self.oauth_error_body(
                p.get("error", "invalid_grant"), codes[0] if codes else 0,
                p.get("error_description", "Injected error."))
            body["error_codes"] = codes
            if p.get("error_description_raw") is not None:
                body["error_description"] = p["error_description_raw"]
            headers = {}
            if p.get("retry_after") is not None:
                headers["Retry-After"] = p["retry_after"]
            self.send_json(status, body, headers)
            return status
        if kind == "malformed":
            status = int(p.get("status", 200))
            body = p.get("body", '{"token_type": "Bearer", "access_token": '
                                 '"abc", "expires_in": 36')
            self.send_bytes(status, body.encode("utf-8"),
                            "application/json; charset=utf-8")
            return status
        if kind == "html":
            status = int(p.get("status", 502))
            body = ("<!DOCTYPE html><html><head><title>%d Bad Gateway</title>"
                    "</head><body><h1>Bad Gateway</h1><p>The proxy server "
                    "received an invalid response from an upstream server."
                    "</p></body></html>\n" % status).encode()
            self.send_bytes(status, body, "text/html; charset=utf-8")
            return status
        if kind == "huge":
            status = int(p.get("status", 200))
            size = min(int(p.get("size", 5 * 1024 * 1024)), MAX_HUGE)
            head = b'{"token_type":"Bearer","padding":"'
            tail = b'"}'
            pad = max(0, size - len(head) - len(tail))
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(head) + pad + len(tail)))
            self.end_headers()
            self.close_connection = True
            try:
                self.wfile.write(head)
                chunk = b"A" * 65536
                while pad > 0:
                    n = min(pad, len(chunk))
                    self.wfile.write(chunk[:n])
                    pad -= n
                self.wfile.write(tail)
            except (ConnectionError, ssl.SSLError, TimeoutError, OSError):
                pass
            return status
        return None

    # --- introspection -----------------------------------------------

    def introspect_endpoint(self, path):
        st = self.state
        t = time.monotonic()
        token = None
        if self.command == "POST":
            body = self.read_body()
            if body is None:
                return
            ctype = self.headers.get("Content-Type", "")
            if "json" in ctype.lower():
                try:
                    token = json.loads(body.decode("utf-8")).get("token")
                except (ValueError, AttributeError, UnicodeDecodeError):
                    token = None
            else:
                form = dict(urllib.parse.parse_qsl(
                    body.decode("utf-8", "replace"), keep_blank_values=True))
                token = form.get("token")
        if token is None and path.startswith("/_fake/introspect/"):
            token = urllib.parse.unquote(path[len("/_fake/introspect/"):])
        if token is None:
            q = dict(urllib.parse.parse_qsl(
                urllib.parse.urlsplit(self.path).query))
            token = q.get("token") or q.get("access_token")
        if token is None:
            auth = self.headers.get("Authorization", "")
            if auth[:7].lower() == "bearer ":
                token = auth[7:].strip()
        with st.lock:
            st.counters["introspect"] += 1
            result = st.introspect(token)
            # dt: how long this request took the provider (its answer
            # written), for bench/ to tell the provider's time apart.
            st.requests.append({"t": t, "dt": time.monotonic() - t,
                                "path": self.clean_path(),
                                "endpoint": "introspect", "grant_type": None,
                                "status": 200})
        self.send_json(200, result)
        self.access_log(200)

    # --- control -----------------------------------------------------

    def control(self, name):
        st = self.state
        req = {}
        if self.command == "POST":
            body = self.read_body()
            if body is None:
                return
            if body.strip():
                try:
                    req = json.loads(body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError):
                    self.send_json(400, {"error": "bad JSON"})
                    self.access_log(400)
                    return
                if not isinstance(req, dict):
                    self.send_json(400, {"error": "JSON object expected"})
                    self.access_log(400)
                    return
        try:
            status, resp = self.control_op(name, req)
        except (KeyError, ValueError, TypeError) as e:
            status, resp = 400, {"error": "bad request: %s" % e}
        self.send_json(status, resp)
        self.access_log(status)

    def control_op(self, name, req):
        st = self.state
        mine = fake_idp_providers.control_op(self, name, req)
        if mine is not None:
            return mine
        if name.startswith("app/"):              # see fake_idp_app.py
            return fake_idp_app.control(st, self.command, name[4:], req)
        get = self.command == "GET"
        with st.lock:
            if name == "health" and get:
                return 200, {"ok": True, "pid": os.getpid()}
            if name == "pending" and get:
                now = time.monotonic()
                codes = sorted((d for d in st.devices.values()
                                if st.device_state(d, now) == "pending"),
                               key=lambda d: d["created"])
                return 200, {"pending": [d["user_code"] for d in codes]}
            if name in ("approve", "decline", "expire") and not get:
                d = st.find_pending(req.get("user_code"))
                if d is None:
                    return 404, {"error": "no such pending code"}
                if name == "approve":
                    d["state"] = "approved"
                    d["username"] = req.get("username") or "alice@example.com"
                else:
                    d["state"] = "declined" if name == "decline" else "expired"
                return 200, {"user_code": d["user_code"],
                             "state": d["state"]}
            if name == "auto_approve" and not get:
                after = req.get("after")
                st.config["auto_approve_after"] = \
                    None if after is None else float(after)
                st.config["auto_approve_user"] = \
                    req.get("username") or "alice@example.com"
                return 200, {"ok": True}
            if name == "config":
                if not get:
                    for k, v in req.items():
                        if k not in st.config:
                            raise KeyError(k)
                        if k in ("access_lifetime", "interval",
                                 "device_expires"):
                            v = int(v)
                            if v < 0:
                                raise ValueError(k)
                        elif k in ("rotation_revokes_old",
                                   "enforce_interval"):
                            v = bool(v)
                        elif k in ("client_ids", "unknown_tenants"):
                            v = [str(x) for x in v]
                        elif k == "auto_approve_after":
                            v = None if v is None else float(v)
                        st.config[k] = v
                return 200, dict(st.config)
            if name == "revoke" and not get:
                what = req.get("what", "both")
                user = req.get("username")
                reason = req.get("reason", "revoked")
                if reason not in ("revoked", "expired"):
                    raise ValueError("reason")
                n = 0
                if what in ("access", "both"):
                    for a in st.access.values():
                        if user is None or a["username"] == user:
                            a["revoked"] = True
                            n += 1
                if what in ("refresh", "both"):
                    for r in st.refresh.values():
                        if user is None or r["username"] == user:
                            r["revoked"] = reason
                            n += 1
                return 200, {"revoked": n}
            if name == "fault" and not get:
                endpoint = req["endpoint"]
                kind = req["kind"]
                if endpoint not in ("devicecode", "token"):
                    raise ValueError("endpoint")
                if kind not in FAULT_KINDS:
                    raise ValueError("kind")
                params = dict(req.get("params") or {})
                if not isinstance(params.get("fields") or {}, dict):
                    raise ValueError("fields")
                for v in (params.get("raw_fields") or {}).values():
                    base64.b64decode(v, validate=True)
                gt = req.get("grant_type")
                st.faults.append({
                    "endpoint": endpoint, "kind": kind,
                    "count": int(req.get("count", 1)),
                    "grant_type": grant_key(gt) if gt else None,
                    "params": params,
                })
                return 200, {"queued": len(st.faults)}
            if name == "faults":
                if not get:
                    st.faults.clear()
                return 200, {"faults": [dict(f) for f in st.faults]}
            if name == "counters" and get:
                return 200, dict(st.counters)
            if name == "requests" and get:
                return 200, {"requests": list(st.requests)}
            if name == "reset_counters" and not get:
                st.reset_counters()
                return 200, {"ok": True}
            if name == "reset" and not get:
                st.reset_all()
                return 200, {"ok": True}
            if name == "secrets" and get:
                return 200, {"secrets": list(st.issued)}
            if name == "tokens" and get:
                # Metadata only, no token values: for debugging tests.
                return 200, {
                    "access": [{k: v for k, v in a.items()}
                               for a in st.access.values()],
                    "refresh": [{k: v for k, v in r.items()}
                                for r in st.refresh.values()],
                }
        if name in ("health", "pending", "approve", "decline", "expire",
                    "auto_approve", "config", "revoke", "fault", "faults",
                    "counters", "requests", "reset_counters", "reset",
                    "secrets", "tokens"):
            return 405, {"error": "method not allowed"}
        return 404, {"error": "no such control endpoint"}


def auto_approver(state):
    while not STOP.wait(0.05):
        with state.lock:
            after = state.config["auto_approve_after"]
            if after is None:
                continue
            now = time.monotonic()
            for d in sorted(state.devices.values(),
                            key=lambda d: d["created"]):
                if state.device_state(d, now) == "pending" and \
                        now - d["created"] >= after:
                    d["state"] = "approved"
                    d["username"] = state.config["auto_approve_user"]
                    say("the user at the browser approved code %s as %s"
                        % (d["user_code"], d["username"]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--access-lifetime", type=int, default=3600)
    ap.add_argument("--interval", type=int, default=5)
    ap.add_argument("--device-expires", type=int, default=900)
    ap.add_argument("--client-id", action="append")
    ap.add_argument("--unknown-tenant", action="append")
    ap.add_argument("--auto-approve-after", type=float)
    ap.add_argument("--auto-approve-user", default="alice@example.com")
    ap.add_argument("--jwt-key", help="issue access tokens as HS256 JWTs "
                    "signed with the bytes of this file")
    args = ap.parse_args(argv)

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)

    fake_idp_providers.bind(sys.modules[__name__])
    state = State(args)
    httpd = Server(("127.0.0.1", args.port), Handler, ctx, state)
    port = httpd.server_address[1]

    def on_term(signum, frame):
        STOP.set()
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    threading.Thread(target=auto_approver, args=(state,), daemon=True).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    log("listening on https://127.0.0.1:%d" % port)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        STOP.set()
        httpd.server_close()
        log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
