"""What every program that loads libsasl2 sees of libmailoauth.so: the only
exported function is sasl_client_plug_init, it links nothing but the C and
C++ runtimes, and saslpluginviewer lists XOAUTH2 and OAUTHBEARER from it."""
import os
import re
import subprocess
import unittest

import tap
from pluginlib import PLUGIN, PLUGIN_DIR


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kw)


class Module(unittest.TestCase):
    def test_only_sasl_client_plug_init_is_exported(self):
        p = run(["nm", "-D", "--defined-only", PLUGIN])
        self.assertEqual(p.returncode, 0, p.stderr)
        symbols = [line.split()[-1] for line in p.stdout.splitlines() if line.strip()]
        functions = [line.split()[-1] for line in p.stdout.splitlines()
                     if len(line.split()) == 3 and line.split()[1] in "TtWi"]
        self.assertEqual(functions, ["sasl_client_plug_init"])
        self.assertEqual(symbols, ["sasl_client_plug_init"])

    def test_links_only_the_c_and_cxx_runtimes(self):
        p = run(["objdump", "-p", PLUGIN])
        self.assertEqual(p.returncode, 0, p.stderr)
        needed = sorted(re.findall(r"NEEDED\s+(\S+)", p.stdout))
        # The C++ runtime is linked in statically by default; a build with
        # PLUGIN_CXXRT_LIBS=-lstdc++ needs the shared one.  ld.so is part of libc.
        allowed = {"libc.so.6", "libstdc++.so.6", "libm.so.6", "libgcc_s.so.1"}
        others = [n for n in needed if n not in allowed and not n.startswith("ld-linux")]
        self.assertEqual(others, [], needed)
        self.assertIn("libc.so.6", needed)

    def test_saslpluginviewer_lists_both_mechanisms(self):
        env = dict(os.environ, SASL_PATH=PLUGIN_DIR)
        p = run(["saslpluginviewer", "-c"], env=env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, r'Plugin "mailoauth" \[loaded\].*\n\s*SASL mechanism: XOAUTH2')
        self.assertRegex(p.stdout,
                         r'Plugin "mailoauth" \[loaded\].*\n\s*SASL mechanism: OAUTHBEARER')
        self.assertIn("NO_PLAINTEXT", p.stdout)
        self.assertEqual(p.stderr, "")

    def test_saslpluginviewer_with_broken_config_still_lists(self):
        env = dict(os.environ, SASL_PATH=PLUGIN_DIR,
                   MAILOAUTH_CONFIG="/nonexistent/mailoauth.conf")
        p = run(["saslpluginviewer", "-c"], env=env, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("SASL mechanism: XOAUTH2", p.stdout)


if __name__ == "__main__":
    tap.main()
