"""The C++ client-credentials request (tokenhelper/app_token.cc, through
tests/unit/app_token_driver) against the fake provider: the C++ client
assertion must pass the fake's independent verifier (Python
`cryptography`), and each refusal must come back explained.

A stop-gap until `mailoauth login --app` is wired; then the helper tests
take over and this can go.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "lib"))
import fakeidp  # noqa: E402
from fakeidp import FakeIdP  # noqa: E402

DRIVER = os.path.join(os.environ.get("top_builddir", "."), "tests", "unit",
                      "app_token_driver")
CLIENT = "99999999-8888-7777-6666-555555555555"
TENANT = "contoso.onmicrosoft.com"
SECRET = "Qx8~driver-only.secret_value-0123456789"
MAILBOX = "relay@contoso.com"

WORK = None


def setUpModule():
    global WORK
    WORK = tempfile.mkdtemp(prefix="test_app_token_driver.")


def tearDownModule():
    shutil.rmtree(WORK, ignore_errors=True)


def write(path, data, mode=0o600):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def read(path):
    with open(path) as f:
        return f.read()


class Driver(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.idp = FakeIdP(os.path.join(WORK, "idp"), ca=os.path.join(WORK, "ca"))
        cls.idp.start()
        certs = os.path.join(WORK, "certs")
        cls.cert, cls.key = fakeidp.make_app_certificate(certs, "app")
        cls.other_cert, cls.other_key = fakeidp.make_app_certificate(certs, "other")
        cls.pem = write(os.path.join(WORK, "app.pem"),
                        read(cls.key) + read(cls.cert))
        cls.other_pem = write(os.path.join(WORK, "other.pem"),
                              read(cls.other_key) + read(cls.other_cert))
        cls.mismatch = write(os.path.join(WORK, "mismatch.pem"),
                             read(cls.other_key) + read(cls.cert))
        cls.secret_file = write(os.path.join(WORK, "secret"), SECRET + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.idp.stop()

    def setUp(self):
        self.idp.reset()
        self.idp.register_app(CLIENT, tenant=TENANT, mailbox=MAILBOX,
                              secret=SECRET, certificates=[self.cert])

    def run_driver(self, credential, alg="PS256", client=CLIENT, env=None):
        out = subprocess.run(
            [DRIVER, self.idp.token_url(TENANT), client, credential,
             self.idp.ca_file, alg],
            stdin=subprocess.DEVNULL, capture_output=True, text=True,
            timeout=30, env=dict(os.environ, **(env or {})))
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertNotIn(SECRET, out.stdout + out.stderr)
        self.assertNotIn("PRIVATE KEY", out.stdout + out.stderr)
        r = {}
        for line in out.stdout.splitlines():
            k, _, v = line.partition("=")
            r[k] = v
        r["exit_code"] = int(r["exit_code"])
        return r

    def assertExplained(self, r, code, *words):
        self.assertEqual(r["exit_code"], code, r["message"])
        for w in words:
            self.assertIn(w, r["message"])

    def test_certificate_ps256_and_rs256(self):
        for alg in ("PS256", "RS256"):
            r = self.run_driver(self.pem, alg)
            self.assertEqual(r["exit_code"], 0, r["message"])
            self.assertIn("SMTP.SendAsApp", r["roles"])
            info = self.idp.introspect(r["access_token"])
            self.assertTrue(info["active"])
            self.assertEqual(info["username"], MAILBOX)
        self.assertEqual(self.idp.counters()["grant:client_credentials"], 2)

    def test_secret_from_credentials_directory(self):
        d = os.path.join(WORK, "credentials")
        os.makedirs(d, exist_ok=True)
        write(os.path.join(d, "client-secret"), SECRET, 0o400)
        r = self.run_driver("$CREDENTIALS_DIRECTORY", env={
            "CREDENTIALS_DIRECTORY": d})
        self.assertEqual(r["exit_code"], 0, r["message"])
        self.assertTrue(self.idp.valid_access_token(r["access_token"]))

    def test_secret_refusals(self):
        self.idp.update_app(CLIENT, secret="another-" + SECRET)
        self.assertExplained(self.run_driver(self.secret_file), 78,
                             "AADSTS7000215", "not its Secret ID")
        self.idp.update_app(CLIENT, secret=SECRET, secret_expired=True)
        self.assertExplained(self.run_driver(self.secret_file), 78,
                             "AADSTS7000222", "Certificates & secrets")

    def test_assertion_refusals(self):
        self.assertExplained(self.run_driver(self.other_pem), 78,
                             "AADSTS700027", "Upload the certificate")
        self.idp.set_app_clock_offset(3600)
        self.assertExplained(self.run_driver(self.pem), 78, "AADSTS700024",
                             "timedatectl")
        self.idp.set_app_clock_offset(0)
        self.assertExplained(
            self.run_driver(self.pem, client="00000000-0000-0000-0000-000000000000"),
            78, "AADSTS700016", "--client-id")

    def test_missing_consent(self):
        self.idp.update_app(CLIENT, admin_consent=False)
        r = self.run_driver(self.secret_file)
        self.assertExplained(r, 78, "Grant admin consent", "IMAP.AccessAsApp")
        self.assertEqual(r["error"], "consent_required")

    def test_refused_before_any_request(self):
        self.idp.reset_counters()
        self.assertExplained(self.run_driver(self.mismatch), 78,
                             "does not belong to the certificate")
        open_secret = write(os.path.join(WORK, "open-secret"), SECRET, 0o644)
        self.assertExplained(self.run_driver(open_secret), 78, "chmod 600")
        self.assertEqual(self.idp.counters()["token"], 0)


if __name__ == "__main__":
    import tap
    tap.main()
