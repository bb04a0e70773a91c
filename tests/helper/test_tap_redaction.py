"""The TAP runner keeps tokens out of failure details: a failing
assertEqual between tokens must not print them."""
import os
import subprocess
import sys
import tempfile
import unittest

import tap

INNER = '''
import unittest, tap
tap.add_secret_source(lambda: ["registered-secret-value"])
class Inner(unittest.TestCase):
    def test_tokens_differ(self):
        self.assertEqual("EwBgA1Zw3kLl0LXRZtM9-" + "q" * 40, "registered-secret-value")
if __name__ == "__main__":
    tap.main()
'''


class Redaction(unittest.TestCase):
    def test_failure_details_carry_no_token(self):
        with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
            f.write(INNER)
        try:
            p = subprocess.run([sys.executable, f.name], capture_output=True, text=True, timeout=60,
                               env={**os.environ, "PYTHONPATH": os.path.dirname(tap.__file__)})
        finally:
            os.unlink(f.name)
        self.assertIn("not ok 1 - Inner.test_tokens_differ", p.stdout)
        self.assertIn("<secret>", p.stdout)
        self.assertIn("<redacted>", p.stdout)
        self.assertNotIn("registered-secret-value", p.stdout)
        self.assertNotIn("q" * 40, p.stdout)


if __name__ == "__main__":
    tap.main()
