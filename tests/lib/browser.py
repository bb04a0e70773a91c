"""A scripted browser for the tests of the browser sign-in.

    url = browser.read_auth_url(proc.stderr)       # what mailoauth printed
    status, body = browser.follow(url, idp.ca_file)  # the person signs in
    location = browser.redirect_location(url, idp.ca_file)  # for --paste

follow() GETs the authorization URL at the fake identity provider (HTTPS,
verified against the test CA), takes the 302's Location and GETs it on the
redirect listener, as a browser would; redirect_location() stops at the
Location, which is what a person copies from the address bar in paste mode.

Only loopback traffic: the authorization URL must be https:// to a loopback
host, and a redirect is followed only to http:// on a loopback host.
"""
import http.client
import os
import re
import select
import ssl
import time
import urllib.parse

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_BODY = 1 << 20
URL_RE = re.compile(r"https?://[^\s\"'<>]+")


class BrowserError(RuntimeError):
    pass


def _loopback(url, scheme):
    u = urllib.parse.urlsplit(url)
    if u.scheme != scheme or u.hostname not in LOOPBACK_HOSTS:
        raise BrowserError("the scripted browser goes only to %s:// on "
                           "loopback, not to %r" % (scheme, url[:200]))
    return u


def get(url, ca_file=None, timeout=10):
    """One GET, no redirect followed: (status, headers, body bytes)."""
    scheme = urllib.parse.urlsplit(url).scheme
    u = _loopback(url, scheme if scheme in ("http", "https") else "https")
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=ca_file)
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout,
                                           context=ctx)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    target = (u.path or "/") + ("?" + u.query if u.query else "")
    try:
        conn.request("GET", target, headers={
            "User-Agent": "mailoauth-test-browser/1",
            "Accept": "text/html,application/xhtml+xml"})
        r = conn.getresponse()
        body = r.read(MAX_BODY)
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        conn.close()


def redirect_location(auth_url, ca_file, timeout=10):
    """The address the browser ends on after signing in (the Location of
    the authorization endpoint's redirect), without going there."""
    status, headers, body = get(auth_url, ca_file, timeout)
    if status not in REDIRECT_STATUSES or "location" not in headers:
        raise BrowserError("the authorization endpoint answered HTTP %d, not "
                           "a redirect: %s" % (status, body[:300]))
    return headers["location"]


def follow(auth_url, ca_file, follow_redirect=True, favicon_first=False,
           timeout=10):
    """Signs in: GETs auth_url, then (unless follow_redirect is False, or
    the endpoint did not redirect) GETs the redirect on the loopback
    listener.  Returns (status, body text) of the last page.  With
    favicon_first, asks the listener for /favicon.ico first, as browsers
    do, and ignores its answer."""
    status, headers, body = get(auth_url, ca_file, timeout)
    if not follow_redirect or status not in REDIRECT_STATUSES:
        return status, body.decode("utf-8", "replace")
    location = headers.get("location", "")
    u = _loopback(location, "http")
    if favicon_first:
        try:
            get("http://%s/favicon.ico" % u.netloc, timeout=timeout)
        except OSError:
            pass
    status, _, body = get(location, timeout=timeout)
    return status, body.decode("utf-8", "replace")


def auth_url_in(line):
    """The authorization URL on one line of mailoauth's output, or None."""
    for m in URL_RE.finditer(line):
        url = m.group(0).rstrip(".,;)")
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        if q.get("response_type") == ["code"]:
            return url
    return None


def auth_url_from_lines(lines):
    for line in lines:
        url = auth_url_in(line)
        if url:
            return url
    return None


def read_auth_url(stream, timeout=10, seen=None):
    """Reads a pipe (e.g. Popen.stderr) line by line until the
    authorization URL appears, within timeout seconds.  Lines read are
    appended to seen (a list) when given; what follows the URL's line stays
    unread in the pipe.  Raises BrowserError on end of output or timeout."""
    fd = stream.fileno()
    deadline = time.monotonic() + timeout
    buf = b""
    while True:
        while b"\n" in buf:
            raw, buf = buf.split(b"\n", 1)
            line = raw.decode("utf-8", "replace")
            if seen is not None:
                seen.append(line)
            url = auth_url_in(line)
            if url:
                return url
        left = deadline - time.monotonic()
        if left <= 0:
            raise BrowserError("no authorization URL within %gs" % timeout)
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        # One byte at a time: nothing after the URL's line is taken from
        # the pipe, so the caller can go on reading it.
        chunk = os.read(fd, 1)
        if not chunk:
            raise BrowserError("the output ended without an authorization "
                               "URL")
        buf += chunk
