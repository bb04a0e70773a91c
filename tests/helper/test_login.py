"""mailoauth login: the device authorization grant against the fake
identity provider (pending, approved, slow_down, declined, expired,
provider faults, an untrusted certificate)."""
import os
import stat
import time

import tap
from fakeidp import FakeIdP
from helperlib import ACCOUNT, HelperTestCase, ZzNoSecretsInOutput  # noqa: F401
import testca


class Login(HelperTestCase):
    """Each case runs its own login: the login is what they check.  The
    polling rules in detail (interval, slow_down, expiry, errors) are
    tests/unit/test_device_flow.cc's, with a fake clock; here they are seen
    end to end, on the real clock, as briefly as they can be."""
    idp_options = {"interval": 1}

    def device_polls(self):
        return [r["t"] for r in self.idp.requests() if r.get("grant_type") == "device_code"]

    def wait_for_polls(self, n, timeout=20):
        """Waits until the fake has answered n device-code polls."""
        deadline = time.monotonic() + timeout
        while len(self.device_polls()) < n:
            self.assertLess(time.monotonic(), deadline, "fewer than %d polls" % n)
            time.sleep(0.05)

    def test_full_login_pending_then_approved(self):
        proc = self.spawn(*self.login_args())
        code = self.idp.wait_for_pending(timeout=15)
        self.wait_for_polls(1)              # it polled while pending
        self.idp.approve(code, username=ACCOUNT)
        r = self.finish(proc)
        self.assertEqual(r.rc, 0, r)
        self.assertIn(code, r.err)          # the code is shown to the person
        self.assertIn("https://microsoft.com/devicelogin", r.err)
        self.assertIn("Signed in", r.err)
        self.assertEqual(r.out, "")
        c = self.idp.counters()
        self.assertEqual(c.get("devicecode"), 1)
        self.assertGreaterEqual(c.get("grant:device_code", 0), 2)  # pending, then success
        # The store: 0700 directory, 0600 file, settings kept with the tokens.
        self.assertEqual(stat.S_IMODE(os.stat(self.store).st_mode), 0o700)
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.store, ACCOUNT)).st_mode), 0o600)
        rec = self.record()
        self.assertEqual(rec["client_id"], self.idp.client_id)
        self.assertEqual(rec["authority"], self.idp.authority())
        self.assertEqual(rec["ca_file"], self.idp.ca_file)
        self.assertIn("offline_access", rec["scope"])
        self.assertTrue(self.idp.valid_access_token(rec["access_token"]))
        # Later calls need only the account name.
        t = self.mailoauth("token", ACCOUNT)
        self.assertEqual(t.rc, 0, t)
        self.assertEqual(t.out, rec["access_token"] + "\n")

    def test_polling_honours_interval(self):
        proc = self.spawn(*self.login_args())
        code = self.idp.wait_for_pending(timeout=15)
        self.wait_for_polls(2)              # two pending polls, then success
        self.idp.approve(code)
        self.assertEqual(self.finish(proc).rc, 0)
        polls = self.device_polls()
        gaps = [b - a for a, b in zip(polls, polls[1:])]
        self.assertGreaterEqual(len(gaps), 2, polls)
        self.assertTrue(all(g >= 0.9 for g in gaps), gaps)   # interval is 1 s here

    def test_slow_down_adds_five_seconds(self):
        # Approved before the first poll, which gets slow_down: the login
        # ends at the next poll, 1 + 5 s later.
        self.idp.fault("token", "slow_down", count=1, grant_type="device_code")
        proc = self.spawn(*self.login_args())
        self.idp.approve(self.idp.wait_for_pending(timeout=15))
        r = self.finish(proc)
        self.assertEqual(r.rc, 0, r)
        polls = self.device_polls()
        self.assertEqual(len(polls), 2, polls)
        gap = polls[1] - polls[0]             # the first poll got slow_down
        self.assertGreaterEqual(gap, 5.9, polls)   # interval 1 + 5
        self.assertLess(gap, 9, polls)
        self.assertIn("more slowly", r.err)

    def test_declined(self):
        proc = self.spawn(*self.login_args())
        code = self.idp.wait_for_pending(timeout=15)
        self.idp.decline(code)
        r = self.finish(proc, timeout=30)
        self.assertEqual(r.rc, 77, r)
        self.assertIn("declined", r.err.lower())
        self.assertFalse(os.path.exists(os.path.join(self.store, ACCOUNT)))

    def test_expired(self):
        proc = self.spawn(*self.login_args())
        code = self.idp.wait_for_pending(timeout=15)
        self.idp.expire(code)
        r = self.finish(proc, timeout=30)
        self.assertEqual(r.rc, 77, r)
        self.assertIn("mailoauth login", r.err)
        self.assertIn("expired", r.err.lower())

    def test_local_deadline(self):
        fake = FakeIdP(os.path.join(self.tmp, "idp2"), interval=1, device_expires=3,
                       ca=os.path.dirname(self.idp.ca_file))
        with fake:
            t0 = time.monotonic()
            r = self.mailoauth("login", ACCOUNT, "--client-id", fake.client_id, "--authority",
                               fake.authority(), "--ca-file", fake.ca_file, timeout=30)
            self.assertLess(time.monotonic() - t0, 15)
        self.assertEqual(r.rc, 77, r)
        self.assertIn("expired", r.err)

    def test_missing_client_id_explains_registration(self):
        r = self.mailoauth("login", ACCOUNT)
        self.assertEqual(r.rc, 64, r)
        self.assertIn("Allow public client flows", r.err)
        self.assertIn("IMAP.AccessAsUser.All", r.err)

    def test_unknown_client_id_is_configuration_error(self):
        r = self.mailoauth("login", ACCOUNT, "--client-id", "99999999-0000-0000-0000-000000000000",
                           "--authority", self.idp.authority(), "--ca-file", self.idp.ca_file)
        self.assertEqual(r.rc, 78, r)
        self.assertIn("700016", r.err)
        self.assertIn("trace_id", r.err)

    def test_devicecode_5xx_is_temporary(self):
        self.idp.fault("devicecode", "status", count=1, status=503)
        r = self.mailoauth(*self.login_args())
        self.assertEqual(r.rc, 75, r)

    def test_devicecode_malformed_json(self):
        for kind in ("malformed", "html", "huge"):
            with self.subTest(kind=kind):
                self.idp.fault("devicecode", kind, count=1)
                r = self.mailoauth(*self.login_args())
                self.assertEqual(r.rc, 75, r)
                self.assertLess(len(r.err), 2000)   # no body dumped at the user

    def test_transport_errors_during_polling_back_off(self):
        proc = self.spawn(*self.login_args())
        code = self.idp.wait_for_pending(timeout=15)
        self.idp.fault("token", "status", count=1, status=502, grant_type="device_code")
        self.wait_for_polls(1)              # answered 502
        self.idp.approve(code)
        r = self.finish(proc, timeout=40)
        self.assertEqual(r.rc, 0, r)
        self.assertIn("retrying", r.err)

    def test_untrusted_certificate_refused(self):
        cert, key = testca.untrusted_cert(os.path.join(self.tmp, "bad"))
        fake = FakeIdP(os.path.join(self.tmp, "idp3"), interval=1, ca=os.path.dirname(self.idp.ca_file),
                       cert=cert, key=key)
        with fake:
            r = self.mailoauth("login", ACCOUNT, "--client-id", fake.client_id, "--authority",
                               fake.authority(), "--ca-file", self.idp.ca_file)
        self.assertEqual(r.rc, 78, r)
        self.assertIn("certificate", r.err.lower())

    def test_plain_http_authority_refused(self):
        r = self.mailoauth("login", ACCOUNT, "--client-id", "x", "--authority",
                           "http://login.example.com/organizations")
        self.assertEqual(r.rc, 64, r)
        self.assertIn("https", r.err)


if __name__ == "__main__":
    tap.main()
