"""Throwaway test certificate authorities, made at test time with openssl(1).

    ca = testca.ensure(directory)       # trusted CA + server cert for 127.0.0.1
    ca.ca_file, ca.ca_key, ca.cert, ca.key
    cert, key = testca.untrusted_cert(workdir)   # signed by a CA nobody trusts
    port = testca.free_port()

Everything is generated into the given directory and reused when it is
already there (and not about to expire).  Generation is serialised with a
lock file, so parallel tests sharing one directory are safe.  Keys are EC
P-256: quick to make, accepted by libcurl/OpenSSL, Python and Dovecot.

Command line (for shell tests):  python3 testca.py DIR  prints the paths.
"""
import collections
import contextlib
import fcntl
import os
import socket
import subprocess
import sys
import tempfile

OPENSSL = os.environ.get("OPENSSL", "openssl")
DAYS = "30"
# Regenerate anything expiring within the next day.
CHECKEND = str(24 * 3600)

TestCA = collections.namedtuple("TestCA", "dir ca_file ca_key cert key")


def _run(*args, cwd=None):
    r = subprocess.run([OPENSSL, *args], cwd=cwd, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError("openssl %s failed: %s" % (
            args[0], r.stderr.decode("utf-8", "replace").strip()))
    return r.stdout


@contextlib.contextmanager
def _locked(directory):
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _valid(cert):
    if not os.path.exists(cert):
        return False
    try:
        _run("x509", "-in", cert, "-noout", "-checkend", CHECKEND)
        return True
    except RuntimeError:
        return False


def _newkey(path):
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", path)
    os.chmod(path, 0o600)


def _make_ca(directory, prefix, cn):
    key = os.path.join(directory, prefix + ".key")
    cert = os.path.join(directory, prefix + ".pem")
    if _valid(cert) and os.path.exists(key):
        return cert, key, False
    _newkey(key)
    _run("req", "-x509", "-new", "-key", key, "-out", cert, "-days", DAYS,
         "-subj", "/O=mailoauth tests/CN=" + cn,
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign",
         "-addext", "subjectKeyIdentifier=hash")
    return cert, key, True


def issue_server_cert(directory, ca_file, ca_key, basename="server",
                      ips=("127.0.0.1",), dns=("localhost",), force=False):
    """Issue (or reuse) a server certificate signed by ca_file/ca_key.

    Returns (cert, key).  Callers must hold the directory lock or use a
    directory of their own.
    """
    key = os.path.join(directory, basename + ".key")
    cert = os.path.join(directory, basename + ".pem")
    if not force and _valid(cert) and os.path.exists(key):
        return cert, key
    _newkey(key)
    sans = ["IP:" + ip for ip in ips] + ["DNS:" + d for d in dns]
    cn = (list(ips) + list(dns))[0]
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        csr = os.path.join(tmp, "req.csr")
        ext = os.path.join(tmp, "ext.cnf")
        with open(ext, "w") as f:
            f.write("basicConstraints=critical,CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectKeyIdentifier=hash\n"
                    "authorityKeyIdentifier=keyid\n"
                    "subjectAltName=" + ",".join(sans) + "\n")
        _run("req", "-new", "-key", key, "-out", csr,
             "-subj", "/O=mailoauth tests/CN=" + cn)
        _run("x509", "-req", "-in", csr, "-CA", ca_file, "-CAkey", ca_key,
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
             "-days", DAYS, "-sha256", "-extfile", ext, "-out", cert)
    return cert, key


def ensure(directory):
    """The trusted test CA and a server cert for 127.0.0.1/localhost."""
    directory = os.path.abspath(directory)
    with _locked(directory):
        ca_file, ca_key, fresh = _make_ca(directory, "ca", "mailoauth test CA")
        cert, key = issue_server_cert(directory, ca_file, ca_key, "server",
                                      force=fresh)
    return TestCA(directory, ca_file, ca_key, cert, key)


def untrusted_cert(workdir):
    """(cert, key) for 127.0.0.1/localhost signed by a second, untrusted CA.

    The untrusted CA lives in WORKDIR/untrusted-ca, apart from any trusted
    one, so nothing ever trusts it by accident.
    """
    directory = os.path.join(os.path.abspath(workdir), "untrusted-ca")
    with _locked(directory):
        ca_file, ca_key, fresh = _make_ca(directory, "ca",
                                          "mailoauth UNTRUSTED test CA")
        return issue_server_cert(directory, ca_file, ca_key, "server",
                                 force=fresh)


# Ports handed out by free_port() come from below the kernel's ephemeral
# range and from one counter shared (under a lock) by every test process on
# the machine.  A port taken with bind(0) and released is an ephemeral port:
# the kernel may give it to the next client connection or bind(0) of a test
# running in parallel before our server binds it (make -j2 check saw Dovecot
# lose such a race).  Below the range only our own allocations compete, and
# the shared counter makes parallel tests take different ones.
# One counter per user: a file another user made may not be writable.
PORT_STATE = os.path.join(tempfile.gettempdir(),
                          "mailoauth-test-ports.%d" % os.getuid())
PORT_FLOOR = 20000


def _port_range():
    """[low, high) for free_port(): from PORT_FLOOR up to the kernel's
    ephemeral range (or PORT_FLOOR + 10000 if that range starts too low)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_low = 32768
    if eph_low - PORT_FLOOR >= 2000:
        return PORT_FLOOR, eph_low
    return 1024 + 1000, 1024 + 1000 + min(10000, max(eph_low - 2024, 1000))


def _bindable(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port():
    """A TCP port on 127.0.0.1 that is free now and that no other test
    process on this machine has been given recently."""
    low, high = _port_range()
    fd = os.open(PORT_STATE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            current = int(os.pread(fd, 32, 0).decode() or 0)
        except ValueError:
            current = 0
        if not low <= current < high:
            current = low + os.getpid() % (high - low)
        for _ in range(high - low):
            port = current
            current = current + 1 if current + 1 < high else low
            if _bindable(port):
                data = str(current).encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
                return port
        raise OSError("no free TCP port on 127.0.0.1 in %d-%d"
                      % (low, high - 1))
    finally:
        os.close(fd)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: testca.py DIR")
    ca = ensure(sys.argv[1])
    print("ca_file=" + ca.ca_file)
    print("cert=" + ca.cert)
    print("key=" + ca.key)
