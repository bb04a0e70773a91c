"""nmh (`send`, which runs `post`, for SMTP; `inc` for POP3) as a user runs
it, through libmailoauth.so: an MH profile rendered from
tests/e2e/clients/mh_profile.in (the README's, with the local host and
ports), a mail directory, and an mts.conf of its own (MHMTSCONF) so that
the machine's /etc/nmh/mts.conf plays no part.

nmh checks the server's certificate against the system's CA store only
and its host name with X509_VERIFY_PARAM_set1_host: the test CA reaches it
through SSL_CERT_FILE, and the host is `localhost` (a name in the test
certificate), not 127.0.0.1.
"""
import os
import subprocess
import time

import mailenv

MH_BIN = "/usr/bin/mh"          # Debian installs nmh's commands here
MH_LIB = "/usr/lib/mh"          # ... and post here
PROFILE_TEMPLATE = os.path.join("clients", "mh_profile.in")
PROGRAMS = (os.path.join(MH_BIN, "send"), os.path.join(MH_BIN, "inc"),
            os.path.join(MH_LIB, "post"))


def profile_values(dovecot):
    return {"SMTP_HOST": "localhost",
            "SUBMISSION_PORT": dovecot.ports["submission"],
            "POP_HOST": "localhost", "POP3S_PORT": dovecot.ports["pop3s"]}


class MhUser:
    """A home directory with ~/.mh_profile and ~/Mail for SETUP's Dovecot;
    ENV: the environment of the SASL clients (MAILOAUTH_CONFIG,
    SASL_PATH)."""

    def __init__(self, setup, env, name="nmh"):
        self.setup = setup
        self.home = setup.path(name)
        os.makedirs(os.path.join(self.home, "Mail", "inbox"), exist_ok=True)
        self.profile = os.path.join(self.home, ".mh_profile")
        with open(self.profile, "w") as f:
            f.write(mailenv.render(PROFILE_TEMPLATE,
                                   profile_values(setup.dovecot)))
        self.mts_conf = os.path.join(self.home, "mts.conf")
        with open(self.mts_conf, "w") as f:
            f.write("mts: smtp\nservers: localhost\n")
        self.env = dict(env, HOME=self.home, MH=self.profile,
                        MHMTSCONF=self.mts_conf,
                        PATH=MH_BIN + ":" + env.get("PATH", "/usr/bin:/bin"),
                        SSL_CERT_FILE=setup.ca.ca_file)

    def run(self, argv, timeout=60):
        """(exit status, redacted output, seconds)."""
        t0 = time.monotonic()
        r = subprocess.run(argv, env=self.env, cwd=self.home,
                           stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=timeout)
        self.setup.outputs.append((os.path.basename(argv[0]),
                                   r.stdout + r.stderr))
        return (r.returncode, self.setup.redact(r.stdout + r.stderr),
                time.monotonic() - t0)

    def send(self, sender, to, subject, extra=()):
        """`send DRAFT`: the profile's send: line gives post its server and
        SASL switches; EXTRA are added on the command line (they win)."""
        draft = os.path.join(self.home, "draft-" + subject.split()[-1])
        with open(draft, "w") as f:
            f.write("From: %s\nTo: %s\nSubject: %s\n\nsent by nmh\n"
                    % (sender, to, subject))
        return self.run([os.path.join(MH_BIN, "send"), *extra, draft])

    def inc(self, extra=()):
        return self.run([os.path.join(MH_BIN, "inc"), *extra])

    def inbox(self):
        """Contents of the messages inc put into +inbox."""
        d = os.path.join(self.home, "Mail", "inbox")
        out = []
        for name in sorted(os.listdir(d)):
            if name.isdigit():
                with open(os.path.join(d, name), "rb") as f:
                    out.append(f.read())
        return out
