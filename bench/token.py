#!/usr/bin/env python3
"""`mailoauth token ACCOUNT` with a valid cached token versus the floor of
starting a process that reads the same store file (`cat`), measured in one
run, interleaved.  Target (issue 4): token / cat <= 2x.

Arms (each spawned with posix_spawn, stdout to /dev/null, timed from spawn
to exit; the order rotates every repetition):
  cat        /bin/cat STORE/ACCOUNT                  the floor
  token      mailoauth token ACCOUNT                 the cache-hit path
  version    mailoauth --version                     the helper starting and
                                                     doing nothing: its
                                                     dynamic linking cost
  linkfloor  an empty main() linked with the same    what merely linking
             libraries as mailoauth (compiled here,  mailoauth's libraries
             if a compiler and the -dev links exist) costs (libcurl is no
                                                     longer one of them)

mailoauth loads its HTTP stack (tokenhelper/.libs/mailoauth-curl.so, which
links libcurl) with dlopen() only when it makes a request; the run checks,
with LD_DEBUG=files, that `mailoauth token` with a valid cached token does
not load it.

The store holds a token from a real `mailoauth login` against the fake
provider; the run checks that no refresh request reached the provider.
With hyperfine installed, the same commands are also timed by hyperfine
(not interleaved: a cross-check only).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import benchlib as B


def build_linkfloor(tmp, mailoauth):
    """An empty program linked against mailoauth's direct dependencies."""
    cc = os.environ.get("CXX", "c++")
    if not shutil.which(cc):
        return None
    r = subprocess.run(["readelf", "-d", mailoauth], capture_output=True,
                       text=True)
    libs = []
    for line in r.stdout.splitlines():
        if "(NEEDED)" in line and "[" in line:
            name = line.split("[", 1)[1].split("]", 1)[0]
            # libfoo.so.N -> -lfoo (needs the -dev symlink)
            if name.startswith("lib") and ".so" in name:
                base = name[3:name.index(".so")]
                if base not in ("c", "m", "gcc_s", "stdc++"):
                    libs.append("-l" + base)
    src = os.path.join(tmp, "linkfloor.cc")
    out = os.path.join(tmp, "linkfloor")
    with open(src, "w") as f:
        f.write("#include <string>\nint main() { std::string s(\"x\"); "
                "return s.size() == 1 ? 0 : 1; }\n")
    r = subprocess.run([cc, "-O2", "-Wl,--no-as-needed", "-o", out, src,
                        *libs], capture_output=True, text=True)
    if r.returncode != 0:
        print("(linkfloor not built: %s)" % r.stderr.strip()[:200])
        return None
    return out, libs


def loads_http_module(mailoauth, env):
    """Whether `mailoauth token` loads mailoauth-curl.so or libcurl (the
    dynamic loader's own log, on stderr; stdout, the token, is discarded).
    Returns (loaded, checked)."""
    e = dict(env, LD_DEBUG="files")
    r = subprocess.run([mailoauth, "token", B.ACCOUNT], env=e,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    if "file=" not in r.stderr:             # LD_DEBUG not honoured
        return False, False
    return ("mailoauth-curl.so" in r.stderr or "libcurl" in r.stderr), True


def hyperfine(cmds, env, reps, tmp):
    out = os.path.join(tmp, "hyperfine.json")
    argv = ["hyperfine", "-N", "--style", "none", "--warmup", "5",
            "--runs", str(reps), "--export-json", out]
    for name, cmd in cmds:
        argv += ["-n", name, " ".join(cmd)]
    r = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=600)
    if r.returncode != 0:
        print("(hyperfine failed: %s)" % r.stderr.strip()[-300:])
        return None
    with open(out) as f:
        data = json.load(f)
    return {res["command"]: res["median"] for res in data["results"]}


def main():
    ap = B.arg_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--no-hyperfine", action="store_true",
                    help="skip the hyperfine cross-check")
    args = ap.parse_args()
    top = B.builddir(args)
    B.check_reps(args)
    print("token.py: %d repetitions per arm; build tree %s"
          % (args.reps, top))
    with tempfile.TemporaryDirectory(prefix="mailoauth-bench-bin-") as tmp, \
            B.BenchEnv(top, dovecot=False, keep=args.keep) as env:
        env.login()
        env.token_ok()
        arms = [("cat", ["/bin/cat", env.store_file]),
                ("token", [env.mailoauth, "token", B.ACCOUNT]),
                ("version", [env.mailoauth, "--version"])]
        lf = build_linkfloor(tmp, env.mailoauth)
        if lf:
            arms.append(("linkfloor", [lf[0]]))
        e = env.env(False)
        loaded, checked = loads_http_module(env.mailoauth, e)
        if checked:
            print("cache hit loads the HTTP module (mailoauth-curl.so, "
                  "libcurl): %s" % ("YES" if loaded else "no"))
            B.result("token.loads_http", "yes" if loaded else "no")
        for _ in range(5):                           # warm-up
            for _name, argv in arms:
                B.time_spawn(argv, e)
        before = env.idp.counters()
        times = {name: [] for name, _ in arms}
        bad = {name: 0 for name, _ in arms}
        for i in range(args.reps):
            for j in range(len(arms)):
                name, argv = arms[(i + j) % len(arms)]
                dt, rc = B.time_spawn(argv, e)
                if rc == 0:
                    times[name].append(dt)
                else:
                    bad[name] += 1
        after = env.idp.counters()
        refreshes = after.get("grant:refresh_token", 0) - \
            before.get("grant:refresh_token", 0)

        print()
        labels = {"cat": "cat STORE/ACCOUNT (floor)",
                  "token": "mailoauth token ACCOUNT (cache hit)",
                  "version": "mailoauth --version (start, no work)",
                  "linkfloor": "empty main() linked like mailoauth"}
        for name, _ in arms:
            print(B.summary_line(labels[name], times[name]))
        for name, n in bad.items():
            if n:
                print("  %s: %d runs exited non-zero" % (name, n))
        m = {name: B.median(times[name]) for name, _ in arms}
        ratio = m["token"] / m["cat"]
        print("ratio token/cat:                       %.3fx   (target <= 2x)"
              % ratio)
        print("ratio --version/cat (linking only):    %.3fx"
              % (m["version"] / m["cat"]))
        if "linkfloor" in m:
            print("ratio linkfloor/cat (%s): %.3fx"
                  % (" ".join(lf[1]), m["linkfloor"] / m["cat"]))
        print("refresh requests during the run: %d (expected 0)" % refreshes)
        B.result("token.cat_ms", "%.3f" % (m["cat"] * 1e3))
        B.result("token.token_ms", "%.3f" % (m["token"] * 1e3))
        B.result("token.version_ms", "%.3f" % (m["version"] * 1e3))
        if "linkfloor" in m:
            B.result("token.linkfloor_ratio", "%.3f"
                     % (m["linkfloor"] / m["cat"]))
        B.result("token.ratio", "%.3f" % ratio)
        B.result("token.version_ratio", "%.3f" % (m["version"] / m["cat"]))
        B.result("token.refreshes", "%d" % refreshes)

        if not args.no_hyperfine and shutil.which("hyperfine"):
            hf = hyperfine([(n, a) for n, a in arms if n in ("cat", "token")],
                           e, args.reps, tmp)
            if hf:
                print("hyperfine cross-check (not interleaved): cat %s, "
                      "token %s, ratio %.3fx" % (
                          B.fmt_ms(hf["cat"]), B.fmt_ms(hf["token"]),
                          hf["token"] / hf["cat"]))
                B.result("token.hyperfine_ratio", "%.3f"
                         % (hf["token"] / hf["cat"]))
        return 1 if sum(bad.values()) or refreshes or loaded else 0


if __name__ == "__main__":
    sys.exit(main())
