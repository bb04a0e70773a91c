#!/usr/bin/env python3
"""Where the client's time of a refresh goes: `mailoauth get` with an
expired stored token, REPS times, each under
    strace --seccomp-bpf -f -ttt -T -e trace=<a few syscalls>
(only the traced calls stop, the rest run at full speed; each stop costs
some 20-50 us, mostly in the phase that opens the 37 libraries).  The
phases, from the timestamps of marker calls, medians over the runs:

  start        exec to the account's lock taken (config, store, lock)
  load         lock to connect(): dlopen of mailoauth-curl.so, libcurl and
               its libraries, libcurl's global init, the request set up
  tls+request  connect() to the first byte of the answer, less the
               provider's own time: TCP and TLS handshakes (the CA file
               parsed), the request sent
  provider     the provider's own time (its request log, "dt")
  answer       the answer read and parsed, to the new record's temp file
  fsync file   fsync of the new record (its duration)
  fsync dir    fsync of the store directory after the rename
  exit         the rest: rename, reply, exit
"""
import os
import re
import subprocess
import sys
import tempfile

import benchlib as B
import login as L
import refresh as R

TRACE = "execve,openat,flock,connect,recvfrom,fsync,fdatasync,renameat,exit_group"
LINE = re.compile(r"^(\d+)\s+(\d+\.\d+) (\w+)\((.*?)\)\s+= (.*?)(?: <(\d+\.\d+)>)?$")


def phases(trace):
    ev = []
    for line in trace.splitlines():
        m = LINE.match(line)
        if m:
            ev.append((float(m.group(2)), m.group(3), m.group(4), m.group(5),
                       float(m.group(6) or 0)))
    t0 = ev[0][0]

    def first(pred, after=0.0):
        for e in ev:
            if e[0] >= after and pred(e):
                return e
        raise ValueError("marker not found")
    lock = first(lambda e: e[1] == "flock" and "LOCK_EX" in e[2]
                 and e[3].startswith("0"))
    conn = first(lambda e: e[1] == "connect" and "AF_INET" in e[2])
    # The answer: the first recvfrom after the request that waited (the
    # handshake's own reads come first, each answered at once); taken as
    # the recvfrom that ends the longest gap after connect.
    recvs = [e for e in ev if e[1] == "recvfrom" and e[0] > conn[0]
             and not e[3].startswith("-1")]
    gaps = [(recvs[i][0] - recvs[i - 1][0], i) for i in range(1, len(recvs))]
    answer = recvs[max(gaps)[1]] if gaps else recvs[0]
    tmp = first(lambda e: e[1] == "openat" and "O_TMPFILE" in e[2],
                answer[0])
    fs_file = first(lambda e: e[1] in ("fsync", "fdatasync"), tmp[0])
    ren = first(lambda e: e[1] == "renameat", fs_file[0])
    fs_dir = first(lambda e: e[1] in ("fsync", "fdatasync"), ren[0])
    end = ev[-1][0]
    return {
        "start": lock[0] + lock[4] - t0,
        "load": conn[0] - (lock[0] + lock[4]),
        "to_answer": answer[0] - conn[0],
        "answer": tmp[0] - answer[0],
        "fsync_file": fs_file[4],
        "fsync_dir": fs_dir[4],
        "total": end - t0,
    }


def main():
    p = B.arg_parser(__doc__.split("\n")[0])
    p.set_defaults(reps=15)
    args = p.parse_args()
    top = B.builddir(args)
    rows = []
    provider = []
    with B.BenchEnv(top, dovecot=False, keep=args.keep) as env:
        env.login()
        env.token_ok()
        tmp = tempfile.mkdtemp(prefix="mailoauth-bench-strace-")
        out = os.path.join(tmp, "trace")
        for i in range(args.reps):
            R.expire_stored_token(env)
            env.idp.reset_counters()
            r = subprocess.run(
                ["strace", "--seccomp-bpf", "-f", "-ttt", "-T", "-e",
                 "trace=" + TRACE, "-o", out, env.mailoauth, "get"],
                input=L.GET_REQUEST, env=env.env(False), capture_output=True,
                timeout=60)
            if r.returncode != 0 or b"access_token=" not in r.stdout:
                raise RuntimeError("mailoauth get failed under strace")
            with open(out) as f:
                rows.append(phases(f.read()))
            provider += R.refresh_times(env, 0)
        os.system("rm -rf '%s'" % tmp)
    pr = B.median(provider)
    med = {k: B.median([r[k] for r in rows]) for k in rows[0]}
    med["tls_request"] = med["to_answer"] - pr
    med["provider"] = pr
    med["exit"] = med["total"] - sum(med[k] for k in (
        "start", "load", "to_answer", "answer", "fsync_file", "fsync_dir"))
    print("refresh breakdown (median of %d runs under strace, ms):" % len(rows))
    for k in ("start", "load", "tls_request", "provider", "answer",
              "fsync_file", "fsync_dir", "exit", "total"):
        print("  %-12s %7.2f" % (k, med[k] * 1e3))
        B.result("breakdown.%s_ms" % k, "%.2f" % (med[k] * 1e3))
    return 0


if __name__ == "__main__":
    sys.exit(main())
