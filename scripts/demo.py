"""The README's main job, explained as it happens (run by ./demo)."""
import argparse
import os
import subprocess
import sys
import tempfile

ap = argparse.ArgumentParser()
ap.add_argument("--prefix", required=True)
ap.add_argument("--srcdir", required=True)
args = ap.parse_args()
sys.path.insert(0, os.path.join(args.srcdir, "tests", "lib"))

from fakeidp import FakeIdP  # noqa: E402
import mailenv  # noqa: E402

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


workdir = mailenv.WorkDir(prefix="mailoauth-demo-")
work = workdir.path
ca = mailenv.test_ca(work)
idp = FakeIdP(os.path.join(work, "idp"), interval=2, auto_approve_after=6,
              auto_approve_user=ACCOUNT, access_lifetime=3600, ca=os.path.join(work, "ca"))
dovecot = postfix = agent = None
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

    step("Starting Dovecot (IMAP, POP3, submission) on free ports of 127.0.0.1")
    dovecot = mailenv.Dovecot(work, introspection_url=idp.introspection_url, ca=ca, debug=False)
    dovecot.start()
    print(f"    It checks every XOAUTH2 token with the identity provider ({idp.introspection_url}),")
    print(f"    as Exchange Online does; IMAP on port {dovecot.ports['imap']}.")

    conf = env["MAILOAUTH_CONFIG"]
    sasl_path = f"{args.prefix}/lib/sasl2:{mailenv.SYSTEM_SASL_PLUGINDIR}"
    with open(conf, "w") as f:
        f.write(f"# the plugin runs this helper with this store\nhttp_timeout = 10\n"
                f"helper = {MAILOAUTH}\nstore = {store}\n")
    os.chmod(work, 0o755)
    os.chmod(conf, 0o644)

    step("Logging in over IMAP with imtest (cyrus-clients) through the SASL plugin")
    print("    imtest knows nothing about OAuth: libsasl2 loads libmailoauth.so, which runs")
    print("    'mailoauth get' for the token and sends XOAUTH2.")
    subject = "Hello from the mailoauth demo"
    import smtplib
    with smtplib.LMTP("127.0.0.1", dovecot.ports["lmtp"], timeout=20) as lmtp:
        lmtp.sendmail(ACCOUNT, [ACCOUNT], (f"From: <{ACCOUNT}>\r\nTo: <{ACCOUNT}>\r\n"
                                           f"Subject: {subject}\r\n\r\nIt works.\r\n").encode())
    print(f"    $ imtest -t '' -m XOAUTH2 -a {ACCOUNT} -p {dovecot.ports['imap']} 127.0.0.1")
    _, out, _ = mailenv.run_session(
        ["/usr/lib/cyrus/bin/imtest", "-t", "", "-m", "XOAUTH2", "-a", ACCOUNT,
         "-p", str(dovecot.ports["imap"]), "127.0.0.1"],
        b"x1 SELECT INBOX\r\nx2 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\nx3 LOGOUT\r\n",
        env={**env, "SASL_PATH": sasl_path}, timeout=60)
    out = out.decode(errors="replace")
    # imtest echoes the AUTHENTICATE line, token included: show only results.
    if "Authenticated." not in out or ("Subject: " + subject) not in out:
        sys.exit("demo: the IMAP login through the plugin failed")
    print("    Authenticated. (Dovecot logged: method=XOAUTH2)" if "method=XOAUTH2" in dovecot.log()
          else "    Authenticated.")
    print(f"    The INBOX holds: Subject: {subject}")

    step("Relaying a message through Postfix, its smtp client chrooted as Debian ships it")
    print("    Inside the chroot no helper can run, so the plugin asks the mailoauth agent over an")
    print("    abstract Unix socket; the agent checks that the caller is user postfix.")
    sock = f"@mailoauth-demo-{os.getpid()}"
    with open(conf, "a") as f:
        f.write(f"agent_socket = {sock}\nagent_user = root\n[account {ACCOUNT}]\nallow_users = postfix\n")
    agent = subprocess.Popen([MAILOAUTH, "agent", "--foreground", "--socket", sock], env=env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(work, "agent.log"), "w"))
    mailenv.wait_for(lambda: "listening" in open(os.path.join(work, "agent.log")).read(), 15,
                     what="the agent")
    print(f"    $ mailoauth agent --foreground --socket {sock}   (pid {agent.pid})")
    postfix = mailenv.Postfix(work, dovecot.ports["submission"], ca.ca_file,
                              sasl_passwords={ACCOUNT: "unused"}, chroot=True,
                              environment={"SASL_PATH": sasl_path, "MAILOAUTH_CONFIG": conf})
    postfix.start()
    subject2 = "Relayed by Postfix with XOAUTH2"
    print(f"    $ sendmail -f {ACCOUNT} {ACCOUNT}")
    postfix.sendmail(ACCOUNT, ACCOUNT, f"From: <{ACCOUNT}>\nTo: <{ACCOUNT}>\nSubject: {subject2}\n\nHi.\n")
    dovecot.wait_for_message(ACCOUNT, subject2, 60)
    print(f"    Delivered: the message '{subject2}' is in the Dovecot mailbox, sent over")
    print("    submission with XOAUTH2 by Postfix's chrooted smtp client.")
    if "Verified TLS connection established" in postfix.log():
        print("    Postfix checked the server's certificate before it sent the token")
        print("    (smtp_tls_security_level = secure, as the README configures it).")

    step("Done. Everything the demo started is stopped; nothing was left running.")
finally:
    for thing in (postfix, dovecot):
        if thing:
            thing.stop()
    if agent:
        agent.terminate()
        agent.wait(10)
    idp.stop()
    workdir.cleanup()
