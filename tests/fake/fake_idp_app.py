"""App-only accounts for the fake identity provider: the client-credentials
grant (RFC 6749 section 4.4) with a client secret or a client assertion
(RFC 7523), checked as Microsoft Entra checks them.

fake_idp.py hands a token request with grant_type=client_credentials to
grant() and control paths /_fake/app/... to control(); everything else about
app registrations lives here.  The signature check needs the python3
`cryptography` package, imported only when an assertion arrives, so the
fake still starts (and serves every other grant) without it.

An app registration (POST /_fake/app/register, tests/lib/fakeidp.py
register_app) has a tenant (plus aliases: a domain and a tenant ID name the
same directory), a client_id, a client secret and/or certificates (PEM),
whether the secret has expired, whether an administrator granted consent,
the application permissions ("roles") and the one mailbox Exchange lets it
use.

What a request gets, in Entra's order (HTTP 400 unless said):
  * no client_id: invalid_request AADSTS900144.
  * no app with that client_id in that tenant: unauthorized_client
    AADSTS700016.
  * no scope: AADSTS900144; a scope not ending in "/.default":
    invalid_scope AADSTS1002012; another resource's /.default than Exchange
    Online's (or a national cloud's): invalid_scope AADSTS70011 (Entra
    would issue a token Exchange cannot use; the fake refuses it at once).
  * neither client_secret nor client_assertion: 401 invalid_client
    AADSTS7000218; both: invalid_request AADSTS9002313 (a fake choice).
  * client_secret wrong: 401 invalid_client AADSTS7000215; right but
    expired: 401 invalid_client AADSTS7000222.
  * client_assertion_type not jwt-bearer, an assertion that is not a JWT,
    an alg other than PS256/RS256, missing claims: 401 invalid_client
    AADSTS50027 (a fake choice of Entra's "invalid JWT" code).
  * x5t#S256 / x5t naming no registered certificate, or a signature that
    does not verify against it (PS256: RSA-PSS, SHA-256, MGF1-SHA-256, salt
    32; RS256: PKCS #1 v1.5): 401 invalid_client AADSTS700027.
  * iss or sub not the client_id: 401 invalid_client AADSTS700021; aud not
    this token endpoint's URL: 401 invalid_client AADSTS50027.
  * exp passed or nbf ahead by more than SKEW seconds (the fake's clock
    may be shifted with /_fake/app/clock): 401 invalid_client AADSTS700024.
  * a jti seen before: 401 invalid_client AADSTS50013 (a fake choice).
  * otherwise 200: an access token (a JWT: HS256 with --jwt-key, else with
    a key of this process) for https://outlook.office365.com with appid,
    tid, oid (the service principal) and "roles" when admin consent was
    given.  No refresh token, as documented.  Without consent Entra still
    issues a token, with no roles, which Exchange refuses: so does the
    fake, whose introspection then answers inactive.  With consent the
    token introspects as the granted mailbox (username), so Dovecot accepts
    it for that mailbox only.
"""
import base64
import datetime
import hashlib
import hmac
import json
import re
import secrets
import ssl
import threading
import time
import uuid

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Exchange Online's resource in each cloud (worldwide, GCC High, DoD,
# 21Vianet) as the client-credentials scope names it.
EXCHANGE_RESOURCES = (
    "https://outlook.office365.com",
    "https://outlook.office.com",
    "https://outlook.office365.us",
    "https://outlook-dod.office365.us",
    "https://partner.outlook.cn",
)
DEFAULT_ROLES = ("IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp")
SKEW = 300                  # seconds of clock difference Entra tolerates
MAX_ASSERTION = 16 * 1024
_PROCESS_KEY = secrets.token_bytes(32)
_LOCK = threading.Lock()    # guards the lazily loaded cryptography module


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    if not re.match(r"^[A-Za-z0-9_-]*$", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- state ----------------------------------------------------------------

def reset(st):
    """Called from State.reset_all (lock held or constructor)."""
    st.apps = {}            # client_id -> registration
    st.app_jtis = {}        # jti -> exp, to refuse a replay
    st.app_clock_offset = 0


def cert_info(pem):
    der = ssl.PEM_cert_to_DER_cert(pem.strip() + "\n")
    return {"pem": pem, "x5t": b64url(hashlib.sha1(der).digest()),
            "x5t#S256": b64url(hashlib.sha256(der).digest()),
            "thumbprint": hashlib.sha1(der).hexdigest().upper()}


def public_view(app):
    """A registration as the control endpoints show it: no secret."""
    return {
        "tenant": app["tenants"][0], "tenants": list(app["tenants"]),
        "client_id": app["client_id"], "object_id": app["object_id"],
        "has_secret": app["secret"] is not None,
        "secret_expired": app["secret_expired"],
        "certificates": [c["thumbprint"] for c in app["certificates"]],
        "mailbox": app["mailbox"], "admin_consent": app["admin_consent"],
        "roles": list(app["roles"]),
    }


def apply_fields(app, req):
    if "tenant" in req or "tenant_aliases" in req:
        tenant = str(req.get("tenant", app["tenants"][0] if app["tenants"] else ""))
        if not tenant:
            raise ValueError("tenant")
        app["tenants"] = [tenant] + [str(t) for t in req.get("tenant_aliases", app["tenants"][1:])]
    if "secret" in req:
        app["secret"] = None if req["secret"] is None else str(req["secret"])
    if "secret_expired" in req:
        app["secret_expired"] = bool(req["secret_expired"])
    if "certificates" in req:
        app["certificates"] = [cert_info(str(p)) for p in req["certificates"]]
    if "mailbox" in req:
        app["mailbox"] = str(req["mailbox"])
    if "admin_consent" in req:
        app["admin_consent"] = bool(req["admin_consent"])
    if "roles" in req:
        app["roles"] = [str(r) for r in req["roles"]]


def control(st, method, name, req):
    """/_fake/app/NAME; returns (status, JSON)."""
    get = method == "GET"
    with st.lock:
        if name == "register" and not get:
            client_id = str(req["client_id"])
            app = {"client_id": client_id, "tenants": [],
                   "object_id": str(req.get("object_id") or uuid.uuid4()),
                   "secret": None, "secret_expired": False, "certificates": [],
                   "mailbox": "relay@example.com", "admin_consent": True,
                   "roles": list(DEFAULT_ROLES)}
            req = dict(req)
            req.setdefault("tenant", "contoso.onmicrosoft.com")
            apply_fields(app, req)
            st.apps[client_id] = app
            return 200, public_view(app)
        if name == "update" and not get:
            app = st.apps.get(str(req["client_id"]))
            if app is None:
                return 404, {"error": "no such app"}
            apply_fields(app, req)
            return 200, public_view(app)
        if name == "unregister" and not get:
            gone = st.apps.pop(str(req["client_id"]), None)
            return 200, {"removed": gone is not None}
        if name == "list" and get:
            return 200, {"apps": [public_view(a) for a in st.apps.values()]}
        if name == "clock":
            if not get:
                st.app_clock_offset = int(req.get("offset", 0))
            return 200, {"offset": st.app_clock_offset}
    if name in ("register", "update", "unregister", "list"):
        return 405, {"error": "method not allowed"}
    return 404, {"error": "no such control endpoint"}


# --- the grant ------------------------------------------------------------

def grant(st, tenant, form, token_url, OAuthError):
    """The token endpoint's answer (a dict) to a client-credentials request,
    or OAuthError raised (fake_idp.py's class, passed in: fake_idp runs as
    __main__, so importing it here would make a second copy)."""
    def invalid_client(code, text):
        return OAuthError("invalid_client", code, text, status=401)

    client_id = form.get("client_id", "")
    if not client_id:
        raise OAuthError("invalid_request", 900144, "The request body must "
                         "contain the following parameter: 'client_id'.")
    with st.lock:
        app = st.apps.get(client_id)
        if app is not None:
            app = dict(app)
    if app is None or tenant.lower() not in (t.lower() for t in app["tenants"]):
        raise OAuthError(
            "unauthorized_client", 700016,
            "Application with identifier '%s' was not found in the directory "
            "'%s'. This can happen if the application has not been installed "
            "by the administrator of the tenant or consented to by any user in "
            "the tenant. You may have sent your authentication request to the "
            "wrong tenant." % (client_id[:100], tenant[:100]))

    scope = form.get("scope", "").strip()
    if not scope:
        raise OAuthError("invalid_request", 900144, "The request body must "
                         "contain the following parameter: 'scope'.")
    if len(scope.split()) != 1 or not scope.endswith("/.default"):
        raise OAuthError(
            "invalid_scope", 1002012,
            "The provided value for scope %s is not valid. Client credential "
            "flows must have a scope value with /.default suffixed to the "
            "resource identifier (application ID URI)." % scope[:200])
    resource = scope[:-len("/.default")].rstrip("/").lower()
    if resource not in EXCHANGE_RESOURCES:
        raise OAuthError(
            "invalid_scope", 70011,
            "The provided value for the input parameter 'scope' is not valid. "
            "The scope %s is not valid." % scope[:200])

    secret = form.get("client_secret")
    assertion = form.get("client_assertion")
    if secret is not None and assertion is not None:
        raise OAuthError("invalid_request", 9002313,
                         "Invalid request. Request is malformed or invalid.")
    if secret is None and assertion is None:
        raise invalid_client(
            7000218, "The request body must contain the following parameter: "
            "'client_assertion' or 'client_secret'.")
    if secret is not None:
        if app["secret"] is None or not hmac.compare_digest(
                secret.encode(), app["secret"].encode()):
            raise invalid_client(
                7000215, "Invalid client secret provided. Ensure the secret "
                "being sent in the request is the client secret value, not the "
                "client secret ID, for a secret added to app '%s'." % client_id)
        if app["secret_expired"]:
            raise invalid_client(
                7000222, "The provided client secret keys for app '%s' are "
                "expired. Visit the Azure portal to create new keys for your "
                "app: https://aka.ms/NewClientSecret, or consider using "
                "certificate credentials for added security: "
                "https://aka.ms/certCreds." % client_id)
        acr = "1"
    else:
        check_assertion(st, app, form, assertion, token_url, invalid_client)
        acr = "2"
    return issue(st, app, tenant, resource, acr)


def check_assertion(st, app, form, assertion, token_url, invalid_client):
    def malformed(why):
        return invalid_client(50027, "JWT token is invalid or malformed: %s."
                              % why)

    if form.get("client_assertion_type") != ASSERTION_TYPE:
        raise malformed("client_assertion_type must be '%s'" % ASSERTION_TYPE)
    if len(assertion) > MAX_ASSERTION:
        raise malformed("the assertion is too large")
    parts = assertion.split(".")
    if len(parts) != 3:
        raise malformed("the assertion is not a signed JWT")
    try:
        header = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
        signature = b64url_decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise malformed("the assertion does not decode") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise malformed("the assertion does not decode")
    alg = header.get("alg")
    if alg not in ("PS256", "RS256"):
        raise malformed("unsupported alg '%s'" % str(alg)[:20])

    cert = None
    for c in app["certificates"]:
        if header.get("x5t#S256") == c["x5t#S256"] or \
                header.get("x5t") == c["x5t"]:
            cert = c
            break
    thumb = header.get("x5t#S256") or header.get("x5t") or ""
    if cert is None:
        raise invalid_client(
            700027, "Client assertion contains an invalid signature. [Reason "
            "- The key was not found., Thumbprint of key used by client: "
            "'%s', Please visit the Azure Portal, Graph Explorer or directly "
            "use MS Graph to see configured keys for app Id '%s'.]"
            % (str(thumb)[:100], app["client_id"]))
    if not verify_signature(cert["pem"], alg, (parts[0] + "." + parts[1])
                            .encode("ascii"), signature):
        raise invalid_client(
            700027, "Client assertion contains an invalid signature. [Reason "
            "- The provided signature value did not match the expected "
            "signature value., Thumbprint of key used by client: '%s']"
            % str(thumb)[:100])

    for claim in ("aud", "iss", "sub", "exp", "jti"):
        if claim not in claims:
            raise malformed("the claim '%s' is missing" % claim)
    if claims["iss"] != app["client_id"] or claims["sub"] != app["client_id"]:
        raise invalid_client(
            700021, "Client assertion application identifier doesn't match "
            "'client_id' parameter.")
    aud = claims["aud"]
    auds = aud if isinstance(aud, list) else [aud]
    if not any(isinstance(a, str) and a.lower() == token_url.lower()
               for a in auds):
        raise malformed("the audience '%s' is not this token endpoint"
                        % str(aud)[:200])
    try:
        exp = int(claims["exp"])
        nbf = int(claims.get("nbf", claims.get("iat", 0)))
    except (TypeError, ValueError):
        raise malformed("exp or nbf is not a number") from None
    with st.lock:
        now = int(time.time()) + st.app_clock_offset
        if now > exp + SKEW or nbf > now + SKEW:
            fmt = lambda t: datetime.datetime.fromtimestamp(
                t, datetime.timezone.utc).strftime("%m/%d/%Y %H:%M:%S")
            raise invalid_client(
                700024, "Client assertion is not within its valid time range. "
                "Current time: %s, assertion valid from %s, expiry time of "
                "assertion %s. Review the documentation at "
                "https://learn.microsoft.com/entra/identity-platform/"
                "certificate-credentials ." % (fmt(now), fmt(nbf), fmt(exp)))
        jti = str(claims["jti"])
        for j in [j for j, e in st.app_jtis.items() if e + SKEW < now]:
            del st.app_jtis[j]
        if jti in st.app_jtis:
            raise invalid_client(
                50013, "Assertion failed signature validation. [Reason - The "
                "assertion was already used (jti replayed).]")
        st.app_jtis[jti] = exp


def verify_signature(pem, alg, data, signature):
    with _LOCK:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        return False
    if alg == "PS256":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        pad = padding.PKCS1v15()
    try:
        key.verify(signature, data, pad, hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def issue(st, app, tenant, resource, acr):
    with st.lock:
        lifetime = st.config["access_lifetime"]
        now = int(time.time())
        tid = tenant if re.match(r"^[0-9a-f-]{36}$", tenant) else \
            "9188040d-6c67-4c5b-b112-36a304b66dad"
        payload = {
            "aud": resource, "iss": "https://sts.windows.net/%s/" % tid,
            "iat": now, "nbf": now, "exp": now + lifetime,
            "appid": app["client_id"], "appidacr": acr,
            "idp": "https://sts.windows.net/%s/" % tid,
            "oid": app["object_id"], "sub": app["object_id"], "tid": tid,
            "ver": "1.0", "uti": secrets.token_urlsafe(16),
        }
        if app["admin_consent"] and app["roles"]:
            payload["roles"] = list(app["roles"])
        header = {"typ": "JWT", "alg": "HS256", "kid": "mailoauth-fake-1"}
        signing_input = "%s.%s" % (
            b64url(json.dumps(header, separators=(",", ":")).encode()),
            b64url(json.dumps(payload, separators=(",", ":")).encode()))
        key = st.jwt_key or _PROCESS_KEY
        tok = signing_input + "." + b64url(hmac.new(
            key, signing_input.encode(), hashlib.sha256).digest())
        st.issued.append(tok)
        if "roles" in payload:
            # Introspection (Dovecot) sees the mailbox Exchange granted.
            st.access[tok] = {
                "username": app["mailbox"], "client_id": app["client_id"],
                "scope": resource + "/.default", "exp": now + lifetime,
                "revoked": False, "tenant": tenant.lower(), "app": True,
                "roles": list(payload["roles"]),
            }
        return {"token_type": "Bearer", "expires_in": lifetime,
                "ext_expires_in": lifetime, "access_token": tok}
