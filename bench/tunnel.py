#!/usr/bin/env python3
"""A 50 MB message fetched over IMAP through `mailoauth connect` against the
same fetch through `openssl s_client` as the tunnel, measured in one run,
interleaved.  Target (issue 12): tunnel / s_client <= 1.1x.

Both arms are a tunnel in the sense of mutt's `tunnel` or fetchmail's
`plugin`: a program whose standard input and output are an IMAP session
with Dovecot's IMAPS port.  The same small client (below) drives both: it
starts the program, logs in where needed, sends SELECT INBOX and
FETCH 1 BODY.PEEK[], reads the 50 MB literal, sends LOGOUT and waits for the
program to exit.

  tunnel    mailoauth connect ACCOUNT 127.0.0.1 PORT --ca-file CA
            (TLS, XOAUTH2 with the stored token, then PREAUTH and the
            pass-through)
  s_client  openssl s_client -quiet -connect 127.0.0.1:PORT -CAfile CA
            -verify_return_error, and the client logs in itself with
            AUTHENTICATE XOAUTH2 and the same token, so the server does the
            same work in both arms

Two times per repetition: the whole session (spawn to exit: start-up, TLS,
login, transfer) and the transfer alone (FETCH sent to the last byte of the
literal read).  Medians, quartiles and the ratios are printed; RESULT lines
feed bench/run's table.  Each repetition moves 100 MB through loopback and
TLS, so the default is 15 repetitions per arm, not 60.

The token is read from the store into this process's memory only; it is
never printed.
"""
import base64
import os
import select
import subprocess
import sys
import time

import benchlib as B

SIZE = 50 * 1024 * 1024


def big_message():
    """SIZE bytes of a plain-text message with 998-byte lines at most."""
    head = (b"From: bob@example.com\r\nTo: %s\r\nSubject: mailoauth tunnel "
            b"benchmark\r\n\r\n" % B.ACCOUNT.encode())
    line = (b"0123456789abcdefghijklmnopqrstuvwxyz" * 2)[:70] + b"\r\n"
    body = line * ((SIZE - len(head)) // len(line) + 1)
    return (head + body)[:SIZE - 2] + b"\r\n"


class Session:
    """An IMAP session on a child's stdin/stdout, read in big chunks."""

    def __init__(self, argv, env):
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env,
                                     bufsize=0)
        self.fd = self.proc.stdout.fileno()
        self.buf = bytearray()

    def _more(self, timeout=60):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if not r:
            raise TimeoutError("no answer from %s" % self.proc.args[0])
        chunk = os.read(self.fd, 1 << 20)
        if not chunk:
            raise EOFError("%s closed the session: %s" % (
                self.proc.args[0], self.proc.stderr.read()[-500:]))
        self.buf += chunk

    def line(self):
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[:i + 2]
                return out
            self._more()

    def until(self, tag):
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError("server: %r" % line[:200])
                return line
            if line.endswith(b"}"):
                return line

    def send(self, data):
        self.proc.stdin.write(data)

    def literal(self, n):
        while len(self.buf) < n:
            self._more()
        del self.buf[:n]

    def finish(self):
        self.send(b"z LOGOUT\r\n")
        while True:
            line = self.line()
            if line.startswith(b"z "):
                break
        self.proc.stdin.close()
        self.proc.wait(30)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return time.monotonic() - self.t0


def fetch(argv, env, login=None):
    """One session; returns (whole seconds, transfer seconds)."""
    s = Session(argv, env)
    greeting = s.line()
    if login:
        if not greeting.startswith(b"* OK"):
            raise RuntimeError("greeting %r" % greeting[:100])
        s.send(b"l AUTHENTICATE XOAUTH2 " + login + b"\r\n")
        s.until(b"l")
    elif not greeting.startswith(b"* PREAUTH"):
        raise RuntimeError("greeting %r" % greeting[:100])
    s.send(b"s SELECT INBOX\r\n")
    s.until(b"s")
    t1 = time.monotonic()
    s.send(b"f FETCH 1 BODY.PEEK[]\r\n")
    head = s.until(b"f")
    n = int(head[head.rindex(b"{") + 1:-1])
    if n != SIZE:
        raise RuntimeError("fetched %d bytes, not %d" % (n, SIZE))
    s.literal(n)
    t2 = time.monotonic()
    s.until(b"f")
    return s.finish(), t2 - t1


def main():
    p = B.arg_parser(__doc__.split("\n\n")[0])
    p.set_defaults(reps=int(os.environ.get("BENCH_TUNNEL_REPS", "15")))
    args = p.parse_args()
    top = B.builddir(args)
    env = B.BenchEnv(top, keep=args.keep)
    env.start()
    try:
        env.login()
        dc = env.dovecot
        import imaplib
        m = imaplib.IMAP4_SSL("127.0.0.1", dc.ports["imaps"],
                              ssl_context=dc.ssl_context(), timeout=120)
        m.login(B.ACCOUNT, B.PASSWORD)
        m.append("INBOX", None, None, big_message())
        m.logout()
        token = env.record()["access_token"]
        raw = ("user=%s\x01auth=Bearer %s\x01\x01" % (B.ACCOUNT, token))
        login = base64.b64encode(raw.encode())
        del raw, token
        port = str(dc.ports["imaps"])
        arms = {
            "tunnel": ([env.mailoauth, "connect", B.ACCOUNT, "127.0.0.1",
                        port, "--ca-file", dc.ca_file], None),
            "s_client": (["openssl", "s_client", "-quiet", "-connect",
                          "127.0.0.1:" + port, "-CAfile", dc.ca_file,
                          "-verify_return_error"], login),
        }
        whole = {a: [] for a in arms}
        transfer = {a: [] for a in arms}
        names = list(arms)
        fetch(*arms["tunnel"][:1], env.env(False), arms["tunnel"][1])  # warm
        for i in range(args.reps):
            for a in names[i % 2:] + names[:i % 2]:
                w, t = fetch(arms[a][0], env.env(False), arms[a][1])
                whole[a].append(w)
                transfer[a].append(t)
        print("50 MB message, IMAPS on 127.0.0.1, %d repetitions per arm, "
              "%d CPUs" % (args.reps, os.cpu_count()))
        for a in names:
            print(B.summary_line("%s: whole session" % a, whole[a]))
            print(B.summary_line("%s: transfer (FETCH to last byte)" % a,
                                 transfer[a]))
        rw = B.median(whole["tunnel"]) / B.median(whole["s_client"])
        rt = B.median(transfer["tunnel"]) / B.median(transfer["s_client"])
        mbps = SIZE / B.median(transfer["tunnel"]) / 1e6
        print("ratio tunnel/s_client: whole session %.2fx, transfer %.2fx "
              "(target <= 1.1x); tunnel %.0f MB/s" % (rw, rt, mbps))
        B.result("tunnel.ratio", "%.3f" % rw)
        B.result("tunnel.transfer_ratio", "%.3f" % rt)
        B.result("tunnel.tunnel_ms", "%.1f" % (B.median(whole["tunnel"]) * 1e3))
        B.result("tunnel.s_client_ms",
                 "%.1f" % (B.median(whole["s_client"]) * 1e3))
    finally:
        env.stop()


if __name__ == "__main__":
    main()
