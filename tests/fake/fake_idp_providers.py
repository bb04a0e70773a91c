"""Browser sign-in and more providers for the fake identity provider.

A module of its own beside tests/fake/fake_idp.py, which binds it at start
(bind()) and calls it from a few hooks: dispatch() for the paths below,
grant_authorization_code() from Microsoft's token endpoint,
conditional_access_error() when a device code is redeemed, note_scopes()
for every OAuth form, control_op() for the controls, reset() from
State.reset_all().

Microsoft (the v2.0 endpoints, beside devicecode and token):
  GET  /{tenant}/oauth2/v2.0/authorize
  POST /{tenant}/oauth2/v2.0/token   grant_type=authorization_code
Google-shaped, under /google:
  GET  /google/o/oauth2/v2/auth
  POST /google/token            authorization_code, refresh_token, device_code
  POST /google/device/code
A generic OpenID Connect issuer with Keycloak's paths, under /realms/mail:
  GET  /realms/mail/.well-known/openid-configuration
  GET  /realms/mail/protocol/openid-connect/auth
  POST /realms/mail/protocol/openid-connect/token
  POST /realms/mail/protocol/openid-connect/auth/device
  POST /realms/mail/protocol/openid-connect/token/introspect
Controls (JSON, under /_fake/; see tests/lib/fakeidp.py):
  browser              GET/POST  what the person at the browser does:
                                 username, outcome (approve, deny, error,
                                 page), error, error_description,
                                 error_codes, code_lifetime
  conditional_access   GET/POST  {"code": 53003 | 530033 | null}
  clouds               GET       scope prefixes (https://host/) seen
  google               GET/POST  the Google client: client_id, client_secret
  oidc                 GET/POST  the issuer's public client_ids
  expire_auth_codes    POST      every authorization code expires now
  auth_codes           GET       metadata of the codes (never their values)

Choices where the providers' documentation is silent or loose:
  * An authorization endpoint answers at once as if the person signed in
    (or declined) in the browser: a 302 to the redirect URI.  Errors about
    the client or the redirect URI are shown as a 400 page and never
    redirected (the redirect URI cannot be trusted then), as Entra,
    Google and Keycloak do; all later errors are redirected with the state.
  * Redirect URIs: only http://127.0.0.1:PORT/ and http://localhost:PORT/
    (the loopback redirect of RFC 8252, path "/").
  * PKCE is required everywhere, with S256 and a 43-character challenge
    (Microsoft and Keycloak also accept "plain"; the fake does not, so a
    client's PKCE is always exercised).
  * Codes are single use and live 10 minutes (code_lifetime).  Microsoft's
    token errors: unknown code invalid_grant AADSTS70000, redeemed
    AADSTS54005, expired AADSTS70008, another redirect URI AADSTS50011,
    verifier mismatch AADSTS501481, a missing parameter AADSTS900144.
    Google's and Keycloak's: {"error", "error_description"} only.
  * Google requires its client_secret on every token request (401
    invalid_client otherwise), issues a refresh token only for
    access_type=offline, never rotates it (a refresh answer has none), and
    its device endpoint refuses https://mail.google.com/ with a bare
    {"error": "invalid_scope"}, as Google does.
  * The OIDC issuer's refresh tokens rotate on every use; the old one stays
    valid unless rotation_revokes_old is set (shared with Microsoft's).
  * Conditional Access mode blocks the device-code flow only: a device code
    approved in the browser is answered with invalid_grant and AADSTS53003
    (or 530033, a policy requiring a managed device) when redeemed.  The
    browser flow is not blocked.
  * Every token any of these issue is listed for /_fake/introspect.
  * /_fake/secrets (issued_secrets(), what the leak checks look for) lists
    the authorization codes, the Google client secret and every PKCE
    code_verifier a token endpoint received.
"""
import base64
import hashlib
import html
import re
import time
import urllib.parse
import uuid

core = None  # the fake_idp module, set by bind()

MS_AUTHORIZE_RE = re.compile(r"^/([^/]+)/oauth2/v2\.0/authorize$")
REDIRECT_RE = re.compile(r"^http://(127\.0\.0\.1|localhost):([0-9]{1,5})/$")
CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")
CODE_LIFETIME = 600
GOOGLE = "/google"
GOOGLE_MAIL_SCOPE = "https://mail.google.com/"
GOOGLE_VERIFICATION_URL = "https://www.google.com/device"
DEFAULT_GOOGLE_CLIENT_ID = ("123456789012-fakeclientid0123456789abcdef"
                            ".apps.googleusercontent.com")
OIDC = "/realms/mail"
OIDC_PROTO = OIDC + "/protocol/openid-connect"
DEFAULT_OIDC_CLIENT_ID = "mailoauth"
OUTCOMES = ("approve", "deny", "error", "page")
CA_TEXT = {
    53003: "Access has been blocked by Conditional Access policies. The "
           "access policy does not allow token issuance.",
    530033: "Access has been blocked by Conditional Access policies: this "
            "sign-in authorizes a remote device, and a policy requires a "
            "managed device, which the device code flow cannot prove.",
}


def bind(module):
    global core
    core = module


class PlainError(Exception):
    """An error in Google's or Keycloak's shape: no error_codes."""

    def __init__(self, status, error, description=None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description

    def body(self):
        b = {"error": self.error}
        if self.description is not None:
            b["error_description"] = self.description
        return b


class CodeError(Exception):
    """Why a code cannot be redeemed; each provider words it its own way."""

    def __init__(self, kind, detail=""):
        super().__init__(kind)
        self.kind = kind
        self.detail = detail


# --- state -------------------------------------------------------------

def reset(st):
    """From State.reset_all (the caller holds the lock or constructs)."""
    if not hasattr(st, "google_default"):
        # Generated once per fake, so it is a real secret of the run: it is
        # listed among the issued secrets the leak checks look for.
        st.google_default = {"client_id": DEFAULT_GOOGLE_CLIENT_ID,
                             "client_secret": st.new_secret(18, "GOCSPX-")}
    st.google_client = dict(st.google_default)
    st.oidc_clients = [DEFAULT_OIDC_CLIENT_ID]
    st.browser = {"username": "alice@example.com", "outcome": "approve",
                  "error": None, "error_description": None,
                  "error_codes": None, "code_lifetime": CODE_LIFETIME}
    st.conditional_access = None
    st.codes = {}
    st.cloud_requests = []


def note_scopes(st, scope, endpoint):
    """Records the https://host/ prefixes of the scopes of one request, so a
    test can tell which cloud a client asked for."""
    prefixes = []
    for s in (scope or "").split():
        m = re.match(r"^(https://[^/]+/)", s)
        if m and m.group(1).lower() not in prefixes:
            prefixes.append(m.group(1).lower())
    if prefixes:
        with st.lock:
            st.cloud_requests.append({"endpoint": endpoint,
                                      "prefixes": prefixes})


def conditional_access_error(st):
    """The error for redeeming an approved device code in Conditional
    Access mode, or None.  Called with the lock held."""
    code = st.conditional_access
    if code is None:
        return None
    return core.OAuthError("invalid_grant", code, CA_TEXT[code])


# --- plumbing ----------------------------------------------------------

def query(h):
    q = {}
    for k, v in urllib.parse.parse_qsl(urllib.parse.urlsplit(h.path).query,
                                       keep_blank_values=True):
        q.setdefault(k, v)
    return q


def read_form(h):
    """The form of a POST, or None after answering an error."""
    body = h.read_body()
    if body is None:
        return None
    form = {}
    ctype = h.headers.get("Content-Type", "")
    if ctype.split(";")[0].strip().lower() == \
            "application/x-www-form-urlencoded":
        try:
            pairs = urllib.parse.parse_qsl(body.decode("utf-8"),
                                           keep_blank_values=True)
        except UnicodeDecodeError:
            pairs = []
        for k, v in pairs:
            form.setdefault(k, v)
    return form


def count(h, endpoint, grant_type=None):
    st = h.state
    with st.lock:
        st.counters[endpoint] = st.counters.get(endpoint, 0) + 1
        if grant_type:
            key = "grant:" + core.grant_key(grant_type)
            st.counters[key] = st.counters.get(key, 0) + 1


def send_page(h, status, title, text):
    body = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>%s"
            "</title></head>\n<body><h1>%s</h1>\n<p>%s</p>\n</body></html>\n"
            % (html.escape(title), html.escape(title), html.escape(text)))
    h.send_bytes(status, body.encode("utf-8"), "text/html; charset=utf-8")
    return status


def redirect(h, redirect_uri, params):
    location = redirect_uri + "?" + urllib.parse.urlencode(params)
    h.send_response(302)
    h.send_header("Location", location)
    h.send_header("Content-Length", "0")
    h.send_header("Cache-Control", "no-store, no-cache")
    h.end_headers()
    return 302


def base_url(h):
    """https://HOST:PORT of this fake, as the client named it."""
    port = h.server.server_address[1]
    host = h.headers.get("Host", "")
    if host in ("127.0.0.1:%d" % port, "localhost:%d" % port):
        return "https://" + host
    return "https://127.0.0.1:%d" % port


def s256(verifier):
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def scopes_of(scope):
    return [s for s in scope.split() if s]


# --- tokens ------------------------------------------------------------

def issue_plain(st, provider, username, client_id, scope, with_refresh,
                access_prefix, refresh_prefix, extra=None):
    """Tokens of Google and the OIDC issuer.  Called with the lock held."""
    lifetime = st.config["access_lifetime"]
    scopes = scopes_of(scope)
    granted = [s for s in scopes if s.lower() != "offline_access"]
    access = st.new_secret(48, access_prefix)
    st.access[access] = {
        "username": username, "client_id": client_id,
        "scope": " ".join(granted), "exp": int(time.time()) + lifetime,
        "revoked": False, "tenant": provider,
    }
    body = {"access_token": access, "expires_in": lifetime,
            "scope": " ".join(granted), "token_type": "Bearer"}
    if with_refresh:
        rt = st.new_secret(48, refresh_prefix)
        st.refresh[rt] = {
            "username": username, "client_id": client_id,
            "scope": " ".join(scopes), "revoked": None, "tenant": provider,
            "provider": provider,
        }
        body["refresh_token"] = rt
    if "openid" in (s.lower() for s in scopes):
        body["id_token"] = st.id_token(username, client_id, provider)
    body.update(extra or {})
    return body


# --- the authorization endpoints --------------------------------------

def authorize(h, provider, tenant=None):
    """The authorization endpoint of PROVIDER ("microsoft", "google",
    "oidc"): validate, then answer as the scripted person would."""
    t = time.monotonic()
    endpoint = {"microsoft": "authorize", "google": "google_auth",
                "oidc": "oidc_auth"}[provider]
    count(h, endpoint)
    status = authorize_answer(h, provider, tenant, query(h))
    h.record(endpoint, None, status, t)


def show_error(h, provider, code, text, error="invalid_request"):
    """An error the endpoint shows instead of redirecting."""
    if provider == "microsoft":
        return send_page(h, 400, "Sign in to your account",
                         "AADSTS%d: %s" % (code, text))
    if provider == "google":
        return send_page(h, 400, "Error 400: %s" % error, text)
    return send_page(h, 400, "We are sorry...", text)


def redirect_error(h, provider, redirect_uri, state, error, code, text):
    params = [("error", error)]
    if provider == "microsoft":
        now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        params.append(("error_description",
                       "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s"
                       "\r\nTimestamp: %s" % (code, text, uuid.uuid4(),
                                              uuid.uuid4(), now)))
    elif text:
        params.append(("error_description", text))
    if state is not None:
        params.append(("state", state))
    return redirect(h, redirect_uri, params)


def authorize_answer(h, provider, tenant, q):
    st = h.state
    if h.command not in ("GET", "HEAD"):
        return send_page(h, 405, "Method Not Allowed",
                         "The authorization endpoint takes GET requests.")
    # Shown, not redirected: the tenant, the client, the redirect URI.
    if provider == "microsoft" and (
            not core.TENANT_RE.match(tenant) or tenant.lower() in
            (x.lower() for x in st.config["unknown_tenants"])):
        return show_error(h, provider, 90002,
                          "Tenant '%s' not found." % tenant[:100])
    client_id = q.get("client_id", "")
    with st.lock:
        known = {"microsoft": st.config["client_ids"],
                 "google": [st.google_client["client_id"]],
                 "oidc": st.oidc_clients}[provider]
    if not client_id:
        return show_error(h, provider, 900144, "The request must contain "
                          "the following parameter: 'client_id'.")
    if client_id not in known:
        if provider == "microsoft":
            return show_error(h, provider, 700016,
                              "Application with identifier '%s' was not "
                              "found in the directory 'Fake Tenant'."
                              % client_id[:100])
        if provider == "google":
            return show_error(h, provider, 0, "The OAuth client was not "
                              "found.", error="invalid_client")
        return show_error(h, provider, 0, "Client not found.")
    redirect_uri = q.get("redirect_uri", "")
    m = REDIRECT_RE.match(redirect_uri)
    if not m or not 0 < int(m.group(2)) < 65536:
        if provider == "microsoft":
            return show_error(h, provider, 50011,
                              "The redirect URI '%s' specified in the "
                              "request does not match the redirect URIs "
                              "configured for the application '%s'."
                              % (redirect_uri[:200], client_id))
        if provider == "google":
            return show_error(h, provider, 0, "The redirect URI in the "
                              "request does not match the ones authorized "
                              "for the OAuth client.",
                              error="redirect_uri_mismatch")
        return show_error(h, provider, 0, "Invalid parameter: redirect_uri")

    # Redirected from here on, with the state.
    state = q.get("state")
    if q.get("response_type") != "code":
        return redirect_error(h, provider, redirect_uri, state,
                              "unsupported_response_type", 700054,
                              "response_type '%s' is not supported; use "
                              "'code'." % q.get("response_type", "")[:50])
    scope = " ".join(q.get("scope", "").split())
    if not scope:
        return redirect_error(h, provider, redirect_uri, state,
                              "invalid_request", 900144,
                              "The request must contain the following "
                              "parameter: 'scope'.")
    challenge = q.get("code_challenge", "")
    method = q.get("code_challenge_method", "")
    if not challenge:
        return redirect_error(h, provider, redirect_uri, state,
                              "invalid_request", 900144,
                              "The request must contain the following "
                              "parameter: 'code_challenge' (this fake "
                              "requires PKCE).")
    if method != "S256":
        return redirect_error(h, provider, redirect_uri, state,
                              "invalid_request", 50149,
                              "Invalid code_challenge_method '%s'; this "
                              "fake accepts only S256." % method[:20])
    if not CHALLENGE_RE.match(challenge):
        return redirect_error(h, provider, redirect_uri, state,
                              "invalid_request", 501491,
                              "Invalid size of the code_challenge "
                              "parameter.")
    note_scopes(st, scope, "authorize" if provider == "microsoft"
                else provider + "_auth")

    with st.lock:
        b = dict(st.browser)
        if b["outcome"] == "approve":
            code = st.new_secret({"microsoft": 96, "google": 48,
                                  "oidc": 36}[provider],
                                 {"microsoft": "0.AXEA", "google": "4/0A",
                                  "oidc": ""}[provider])
            now = time.monotonic()
            st.codes[code] = {
                "provider": provider, "client_id": client_id,
                "redirect_uri": redirect_uri, "challenge": challenge,
                "scope": scope, "username": b["username"],
                "tenant": (tenant or provider).lower(),
                "expires_at": now + b["code_lifetime"], "used": False,
                "access_type": q.get("access_type", "online"),
            }
    if b["outcome"] == "page":
        return send_page(h, 400, "Sign-in blocked",
                         b["error_description"] or "You cannot access "
                         "this right now.")
    if b["outcome"] in ("deny", "error"):
        if b["outcome"] == "deny":
            error, codes = "access_denied", [65004]
            text = b["error_description"] or \
                "The user declined to consent to access the app."
        else:
            error = b["error"] or "server_error"
            codes = b["error_codes"] or [0]
            text = b["error_description"] or "Injected error."
        if provider == "google" and b["outcome"] == "deny":
            text = None     # Google sends error=access_denied alone
        return redirect_error(h, provider, redirect_uri, state, error,
                              codes[0], text)
    params = [("code", code)]
    if state is not None:
        params.append(("state", state))
    # What each provider adds, which a client must ignore.
    if provider == "microsoft":
        params.append(("session_state", str(uuid.uuid4())))
    elif provider == "google":
        params += [("scope", scope), ("authuser", "0"), ("prompt", "consent")]
    else:
        params += [("session_state", str(uuid.uuid4())),
                   ("iss", base_url(h) + OIDC)]
    return redirect(h, redirect_uri, params)


# --- redeeming a code --------------------------------------------------

def redeem(st, provider, client_id, form, tenant=None):
    """The code's entry, marked used; raises CodeError.  Lock held."""
    code = form.get("code", "")
    if not code:
        raise CodeError("missing", "code")
    c = st.codes.get(code)
    if c is None or c["provider"] != provider or \
            c["client_id"] != client_id or \
            (tenant is not None and c["tenant"] != tenant.lower()):
        raise CodeError("unknown")
    if c["used"]:
        raise CodeError("used")
    if time.monotonic() >= c["expires_at"]:
        raise CodeError("expired")
    redirect_uri = form.get("redirect_uri", "")
    if not redirect_uri:
        raise CodeError("missing", "redirect_uri")
    if redirect_uri != c["redirect_uri"]:
        raise CodeError("redirect", redirect_uri[:200])
    verifier = form.get("code_verifier", "")
    if not verifier:
        raise CodeError("missing", "code_verifier")
    # The verifier is the client's secret, not the fake's, but it must
    # never show either: listed with the issued secrets, the leak checks
    # (tests/lib/tap.py, helperlib) look for it too.
    if verifier not in st.issued:
        st.issued.append(verifier)
    try:
        ok = s256(verifier) == c["challenge"]
    except UnicodeEncodeError:
        ok = False
    if not ok:
        raise CodeError("verifier")
    c["used"] = True
    return c


def grant_authorization_code(h, tenant, client_id, form):
    """Microsoft's token endpoint, grant_type=authorization_code: the
    token body, or raises fake_idp's OAuthError."""
    st = h.state
    with st.lock:
        try:
            c = redeem(st, "microsoft", client_id, form, tenant)
        except CodeError as e:
            raise ms_code_error(e) from None
        with_refresh = "offline_access" in \
            (s.lower() for s in c["scope"].split())
        return st.issue_tokens(c["username"], client_id, c["scope"],
                               c["tenant"], with_refresh)


def ms_code_error(e):
    if e.kind == "missing":
        return core.missing(e.detail)
    if e.kind == "used":
        return core.OAuthError(
            "invalid_grant", 54005, "OAuth2 authorization code was already "
            "redeemed; request a new code or use the refresh token.")
    if e.kind == "expired":
        return core.OAuthError(
            "invalid_grant", 70008, "The provided authorization code has "
            "expired. Send a new interactive authorization request.")
    if e.kind == "redirect":
        return core.OAuthError(
            "invalid_grant", 50011, "The redirect URI '%s' does not match "
            "the redirect URI used to request the authorization code."
            % e.detail)
    if e.kind == "verifier":
        return core.OAuthError(
            "invalid_grant", 501481, "The code_verifier does not match the "
            "code_challenge supplied in the authorization request.")
    return core.OAuthError("invalid_grant", 70000,
                           "Provided grant is invalid or malformed.")


def plain_code_error(provider, e):
    if e.kind == "missing":
        return PlainError(400, "invalid_request",
                          "Missing parameter: %s" % e.detail)
    if provider == "google":
        if e.kind == "verifier":
            return PlainError(400, "invalid_grant", "Invalid code verifier.")
        if e.kind == "redirect":
            return PlainError(400, "redirect_uri_mismatch", "Bad Request")
        return PlainError(400, "invalid_grant", "Bad Request")
    if e.kind == "verifier":
        return PlainError(400, "invalid_grant",
                          "PKCE verification failed: invalid code verifier")
    if e.kind == "redirect":
        return PlainError(400, "invalid_grant", "Incorrect redirect_uri")
    return PlainError(400, "invalid_grant", "Code not valid")


# --- device codes of Google and the OIDC issuer ------------------------

DEVICE_ERRORS = {
    # state: (google status, error, description), (oidc status, ...)
    "pending": ((428, "authorization_pending", "Precondition Required."),
                (400, "authorization_pending",
                 "The authorization request is still pending")),
    "slow_down": ((403, "slow_down", "Forbidden"),
                  (400, "slow_down", "Slow down")),
    "declined": ((403, "access_denied", "Forbidden"),
                 (400, "access_denied", "The end user denied the "
                  "authorization request")),
    "expired": ((400, "expired_token", "Bad Request"),
                (400, "expired_token", "Device code is expired")),
    "redeemed": ((400, "invalid_grant", "Bad Request"),
                 (400, "invalid_grant", "Device code not valid")),
}


def new_device(st, provider, client_id, scope):
    """A device entry in fake_idp's table, so /_fake/approve and the
    auto-approver work for it too.  Lock held."""
    cfg = st.config
    device_code = st.new_secret(48, "AH-1Ng" if provider == "google" else "")
    user_code = st.new_user_code()
    now = time.monotonic()
    st.devices[device_code] = {
        "user_code": user_code, "client_id": client_id,
        "scope": " ".join(scope.split()), "tenant": provider,
        "created": now, "expires_at": now + cfg["device_expires"],
        "interval": cfg["interval"], "state": "pending",
        "username": None, "last_poll": None, "provider": provider,
    }
    return device_code, user_code[:4] + "-" + user_code[4:]


def poll_device(st, provider, client_id, form, t):
    """The approved entry, now redeemed; raises PlainError.  Lock held."""
    dc = form.get("device_code", "")
    if not dc:
        raise PlainError(400, "invalid_request", "Missing parameter: "
                         "device_code")
    d = st.devices.get(dc)
    which = 0 if provider == "google" else 1
    if d is None or d.get("provider") != provider or \
            d["client_id"] != client_id:
        raise PlainError(400, "invalid_grant", "Bad Request" if which == 0
                         else "Device code not valid")
    state = st.device_state(d)
    last, d["last_poll"] = d["last_poll"], t
    if state in ("redeemed", "expired", "declined"):
        raise PlainError(*DEVICE_ERRORS[state][which])
    if st.config["enforce_interval"] and last is not None and \
            t - last < 0.9 * d["interval"]:
        raise PlainError(*DEVICE_ERRORS["slow_down"][which])
    if state == "pending":
        raise PlainError(*DEVICE_ERRORS["pending"][which])
    d["state"] = "redeemed"
    return d


def plain_refresh(st, provider, client_id, form, rotate):
    """A refresh of Google or the OIDC issuer.  Lock held."""
    rt = form.get("refresh_token", "")
    if not rt:
        raise PlainError(400, "invalid_request",
                         "Missing parameter: refresh_token")
    r = st.refresh.get(rt)
    if r is None or r.get("provider") != provider or \
            r["client_id"] != client_id or r["revoked"]:
        if provider == "google":
            raise PlainError(400, "invalid_grant",
                             "Token has been expired or revoked.")
        raise PlainError(400, "invalid_grant", "Invalid refresh token")
    if provider == "google":
        # Google keeps the refresh token: the answer carries none.
        return issue_plain(st, "google", r["username"], client_id,
                           r["scope"], False, "ya29.", "1//")
    if st.config["rotation_revokes_old"]:
        r["revoked"] = "revoked"
    return issue_plain(st, "oidc", r["username"], client_id, r["scope"],
                       rotate, "eyJ", "eyJr", {"refresh_expires_in": 1800})


# --- Google ------------------------------------------------------------

def google_check_client(st, form, need_secret=True):
    if form.get("client_id", "") != st.google_client["client_id"]:
        raise PlainError(401, "invalid_client", "The OAuth client was not "
                         "found.")
    if need_secret and form.get("client_secret", "") != \
            st.google_client["client_secret"]:
        raise PlainError(401, "invalid_client", "Unauthorized")
    return form["client_id"]


def plain_endpoint(h, endpoint, body_fn):
    """Runs body_fn(form) -> (status, JSON) for a POST endpoint answering
    in the plain {"error", "error_description"} shape."""
    t = time.monotonic()
    if h.command != "POST":
        count(h, endpoint)
        h.send_json(405, {"error": "invalid_request",
                          "error_description": "POST only"},
                    {"Allow": "POST"})
        h.record(endpoint, None, 405, t)
        return
    form = read_form(h)
    if form is None:
        count(h, endpoint)
        h.record(endpoint, None, 413, t)
        return
    grant_type = form.get("grant_type")
    count(h, endpoint, grant_type)
    try:
        status, body = body_fn(form, t)
    except PlainError as e:
        status, body = e.status, e.body()
    h.send_json(status, body)
    h.record(endpoint, grant_type, status, t)


def google_token(h):
    st = h.state

    def answer(form, t):
        gt = form.get("grant_type", "")
        if not gt:
            raise PlainError(400, "unsupported_grant_type",
                             "Invalid grant_type: ")
        with st.lock:
            client_id = google_check_client(st, form)
            if gt == "authorization_code":
                try:
                    c = redeem(st, "google", client_id, form)
                except CodeError as e:
                    raise plain_code_error("google", e) from None
                return 200, issue_plain(st, "google", c["username"],
                                        client_id, c["scope"],
                                        c["access_type"] == "offline",
                                        "ya29.", "1//")
            if gt == "refresh_token":
                return 200, plain_refresh(st, "google", client_id, form,
                                          False)
            if gt == core.DEVICE_GRANT:
                d = poll_device(st, "google", client_id, form, t)
                return 200, issue_plain(st, "google", d["username"],
                                        client_id, d["scope"], True,
                                        "ya29.", "1//")
        raise PlainError(400, "unsupported_grant_type",
                         "Invalid grant_type: %s" % gt[:100])

    plain_endpoint(h, "google_token", answer)


def google_device(h):
    st = h.state

    def answer(form, t):
        with st.lock:
            client_id = google_check_client(st, form, need_secret=False)
        scope = form.get("scope", "")
        if not scope.strip():
            raise PlainError(400, "invalid_request",
                             "Missing required parameter: scope")
        note_scopes(st, scope, "google_device")
        if GOOGLE_MAIL_SCOPE in scope.split():
            # What Google answers for the mail scope in this flow.
            raise PlainError(400, "invalid_scope")
        with st.lock:
            device_code, user_code = new_device(st, "google", client_id,
                                                scope)
            cfg = st.config
            return 200, {"device_code": device_code, "user_code": user_code,
                         "verification_url": GOOGLE_VERIFICATION_URL,
                         "expires_in": cfg["device_expires"],
                         "interval": cfg["interval"]}

    plain_endpoint(h, "google_device", answer)


# --- the generic OpenID Connect issuer ---------------------------------

def oidc_check_client(st, form):
    client_id = form.get("client_id", "")
    if client_id not in st.oidc_clients:
        raise PlainError(401, "invalid_client",
                         "Invalid client or Invalid client credentials")
    return client_id


def oidc_token(h):
    st = h.state

    def answer(form, t):
        gt = form.get("grant_type", "")
        with st.lock:
            client_id = oidc_check_client(st, form)
            extra = {"refresh_expires_in": 1800,
                     "session_state": str(uuid.uuid4())}
            if gt == "authorization_code":
                try:
                    c = redeem(st, "oidc", client_id, form)
                except CodeError as e:
                    raise plain_code_error("oidc", e) from None
                return 200, issue_plain(st, "oidc", c["username"], client_id,
                                        c["scope"], True, "eyJ", "eyJr",
                                        extra)
            if gt == "refresh_token":
                return 200, plain_refresh(st, "oidc", client_id, form, True)
            if gt == core.DEVICE_GRANT:
                d = poll_device(st, "oidc", client_id, form, t)
                return 200, issue_plain(st, "oidc", d["username"], client_id,
                                        d["scope"], True, "eyJ", "eyJr",
                                        extra)
        raise PlainError(400, "unsupported_grant_type",
                         "Unsupported grant_type")

    plain_endpoint(h, "oidc_token", answer)


def oidc_device(h):
    st = h.state
    base = base_url(h)

    def answer(form, t):
        with st.lock:
            client_id = oidc_check_client(st, form)
            device_code, user_code = new_device(
                st, "oidc", client_id, form.get("scope", "openid"))
            cfg = st.config
        page = base + OIDC + "/device"
        return 200, {"device_code": device_code, "user_code": user_code,
                     "verification_uri": page,
                     "verification_uri_complete":
                         page + "?user_code=" + user_code,
                     "expires_in": cfg["device_expires"],
                     "interval": cfg["interval"]}

    plain_endpoint(h, "oidc_device", answer)


def oidc_discovery(h):
    t = time.monotonic()
    count(h, "oidc_discovery")
    if h.command not in ("GET", "HEAD"):
        h.send_json(405, {"error": "method not allowed"})
        h.record("oidc_discovery", None, 405, t)
        return
    issuer = base_url(h) + OIDC
    h.send_json(200, {
        "issuer": issuer,
        "authorization_endpoint": issuer + "/protocol/openid-connect/auth",
        "token_endpoint": issuer + "/protocol/openid-connect/token",
        "device_authorization_endpoint":
            issuer + "/protocol/openid-connect/auth/device",
        "introspection_endpoint":
            issuer + "/protocol/openid-connect/token/introspect",
        "response_types_supported": ["code"],
        "grant_types_supported": ["authorization_code", "refresh_token",
                                  core.DEVICE_GRANT],
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "email", "profile", "offline_access"],
        "token_endpoint_auth_methods_supported": ["none",
                                                  "client_secret_post"],
    })
    h.record("oidc_discovery", None, 200, t)


# --- routing and controls ----------------------------------------------

# Exact paths and their handlers; Microsoft's authorize path has the tenant.
ROUTES = {
    GOOGLE + "/o/oauth2/v2/auth": lambda h, path: authorize(h, "google"),
    GOOGLE + "/token": lambda h, path: google_token(h),
    GOOGLE + "/device/code": lambda h, path: google_device(h),
    OIDC + "/.well-known/openid-configuration":
        lambda h, path: oidc_discovery(h),
    OIDC_PROTO + "/auth": lambda h, path: authorize(h, "oidc"),
    OIDC_PROTO + "/token": lambda h, path: oidc_token(h),
    OIDC_PROTO + "/auth/device": lambda h, path: oidc_device(h),
    OIDC_PROTO + "/token/introspect":
        lambda h, path: h.introspect_endpoint(path),
}


def dispatch(h, path):
    """Answers PATH if it is one of this module's; False otherwise."""
    m = MS_AUTHORIZE_RE.match(path)
    if m:
        authorize(h, "microsoft", m.group(1))
        return True
    route = ROUTES.get(path)
    if route is None:
        return False
    route(h, path)
    return True


CONTROLS = ("browser", "conditional_access", "clouds", "google", "oidc",
            "expire_auth_codes", "auth_codes")


def control_op(h, name, req):
    """(status, JSON) for this module's controls, None for others."""
    if name not in CONTROLS:
        return None
    st = h.state
    get = h.command == "GET"
    with st.lock:
        if name == "browser":
            if not get:
                for k, v in req.items():
                    if k not in st.browser:
                        raise KeyError(k)
                    if k == "outcome" and v not in OUTCOMES:
                        raise ValueError("outcome")
                    if k == "code_lifetime":
                        v = float(v)
                    elif k == "error_codes":
                        v = None if v is None else [int(c) for c in v]
                    elif v is not None:
                        v = str(v)
                    st.browser[k] = v
            return 200, dict(st.browser)
        if name == "conditional_access":
            if not get:
                code = req.get("code")
                if code is not None and int(code) not in CA_TEXT:
                    raise ValueError("code")
                st.conditional_access = None if code is None else int(code)
            return 200, {"code": st.conditional_access}
        if name == "clouds" and get:
            seen = []
            for r in st.cloud_requests:
                for p in r["prefixes"]:
                    if p not in seen:
                        seen.append(p)
            return 200, {"prefixes": seen,
                         "requests": list(st.cloud_requests)}
        if name == "google":
            if not get:
                for k in ("client_id", "client_secret"):
                    if k in req:
                        st.google_client[k] = str(req[k])
                st.issued.append(st.google_client["client_secret"])
            return 200, dict(st.google_client)
        if name == "oidc":
            if not get:
                st.oidc_clients = [str(c) for c in req["client_ids"]]
            return 200, {"client_ids": list(st.oidc_clients)}
        if name == "expire_auth_codes" and not get:
            for c in st.codes.values():
                c["expires_at"] = 0
            return 200, {"expired": len(st.codes)}
        if name == "auth_codes" and get:
            now = time.monotonic()
            return 200, {"codes": [
                {"provider": c["provider"], "client_id": c["client_id"],
                 "redirect_uri": c["redirect_uri"], "scope": c["scope"],
                 "username": c["username"], "used": c["used"],
                 "expired": now >= c["expires_at"]}
                for c in st.codes.values()]}
    return 405, {"error": "method not allowed"}
