"""The README's main job, explained as it happens (run by ./demo)."""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--prefix", required=True)
ap.add_argument("--srcdir", required=True)
args = ap.parse_args()
sys.path.insert(0, os.path.join(args.srcdir, "tests", "lib"))

from fakeidp import FakeIdP  # noqa: E402

ACCOUNT = "alice@example.com"
MAILOAUTH = os.path.join(args.prefix, "bin", "mailoauth")


def step(text):
    print(f"\n==> {text}", flush=True)


def fingerprint(token):
    return f"{len(token)} characters, ending in ...{token[-4:]}"


def run(*argv, env, check=True, capture=False):
    print("    $ " + " ".join(argv), flush=True)
    p = subprocess.run(argv, env=env, text=True, capture_output=capture)
    if check and p.returncode != 0:
        sys.exit(f"demo: '{' '.join(argv)}' failed with exit code {p.returncode}")
    return p


def read_record(store):
    rec = {}
    with open(os.path.join(store, ACCOUNT)) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                rec[k] = v
    return rec


work = tempfile.mkdtemp(prefix="mailoauth-demo-")
idp = FakeIdP(os.path.join(work, "idp"), interval=2, auto_approve_after=6,
              auto_approve_user=ACCOUNT, access_lifetime=3600)
try:
    step("Starting the local demo identity provider (stands in for login.microsoftonline.com)")
    idp.start()
    print(f"    It speaks Microsoft's OAuth2 v2.0 protocol over HTTPS at {idp.authority()}")
    print(f"    with a certificate from a test CA ({idp.ca_file}).")
    print("    In 6 seconds it will approve the sign-in by itself, standing in for you at the browser.")

    store = os.path.join(work, "store")
    env = {"PATH": f"{args.prefix}/bin:/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8",
           "MAILOAUTH_STORE": store, "MAILOAUTH_CONFIG": os.path.join(work, "mailoauth.conf")}
    with open(env["MAILOAUTH_CONFIG"], "w") as f:
        f.write("# demo configuration\nhttp_timeout = 10\n")

    step(f"Signing in {ACCOUNT} with the device-code flow (mailoauth login)")
    print("    With Office 365 you would open the URL shown, enter the code and sign in.")
    run(MAILOAUTH, "login", ACCOUNT, "--client-id", idp.client_id,
        "--authority", idp.authority(), "--ca-file", idp.ca_file, env=env)
    for line in idp.stdout_text().splitlines():
        if "approved" in line:
            print("    (" + line.strip() + ")")
    rec = read_record(store)
    print(f"    The store {store} (mode 0700) now holds {ACCOUNT} (mode 0600):")
    print(f"    access token {fingerprint(rec['access_token'])}; refresh token {fingerprint(rec['refresh_token'])}")

    step("Showing the account (mailoauth status)")
    run(MAILOAUTH, "status", env=env)

    step("Getting an access token the way msmtp, mutt or mbsync do (mailoauth token)")
    p = run(MAILOAUTH, "token", ACCOUNT, env=env, capture=True)
    token = p.stdout.strip()
    print(f"    Printed a token of {fingerprint(token)} (the cached one: no request was made).")
    print(f"    The identity provider accepts it: {idp.valid_access_token(token)}")

    step("Forcing a refresh, as after a server rejected the token (mailoauth token --force-refresh)")
    p = run(MAILOAUTH, "token", ACCOUNT, "--force-refresh", env=env, capture=True)
    new = read_record(store)
    print(f"    New access token {fingerprint(p.stdout.strip())}.")
    print(f"    The refresh token was rotated: ...{rec['refresh_token'][-4:]} -> ...{new['refresh_token'][-4:]},")
    print("    and the new one was saved (temp file, fsync, rename) before the access token was printed.")
    c = idp.counters()
    print(f"    Requests the identity provider saw: device code {c.get('devicecode', 0)}, "
          f"polls {c.get('grant:device_code', 0)}, refreshes {c.get('grant:refresh_token', 0)}.")

    step("Asking through helper protocol v1, as the SASL plugin does (mailoauth get)")
    p = subprocess.run([MAILOAUTH, "get"], input=f"version=1\naccount={ACCOUNT}\nprotocol=imap\n\n",
                       env=env, text=True, capture_output=True)
    keys = [line.split("=", 1)[0] for line in p.stdout.splitlines() if line]
    print(f"    Reply keys: {', '.join(keys)} (exit code {p.returncode})")

    step("Done. Everything the demo started is stopped; nothing was left running.")
finally:
    idp.stop()
    shutil.rmtree(work, ignore_errors=True)
