"""Optional valgrind memcheck around the programs that load the plugin
through libsasl2 (sasl-driver, imtest, pop3test, smtptest).

Off unless MAILOAUTH_MEMCHECK names a directory: then each such program runs
under memcheck with its report in that directory (one file per process),
and scripts/memcheck-run sums the reports up.  CI keeps ASan/UBSan for the
unit tests; a memcheck run of the integration tests is slow (tens of
minutes), so it is run by hand before a release and its result noted.
Setgid copies are not wrapped: valgrind cannot run a program with the
privileges its mode grants, so the secure-host tests run bare."""
import os

DIR = os.environ.get("MAILOAUTH_MEMCHECK", "")
# libsasl2 keeps its plugin list and some of what plugins allocate at init
# until sasl_done: "still reachable" is not ours to judge.
OPTIONS = [
    "valgrind", "--tool=memcheck", "-q", "--error-exitcode=99",
    "--leak-check=full", "--errors-for-leak-kinds=definite",
    "--show-leak-kinds=definite", "--track-fds=no", "--num-callers=30",
    "--suppressions=" + os.path.join(os.path.dirname(os.path.abspath(__file__)), "memcheck.supp"),
]


def enabled():
    return bool(DIR)


def wrap(argv, timeout):
    """argv under memcheck when enabled, and a timeout scaled for it."""
    if not DIR:
        return list(argv), timeout
    os.makedirs(DIR, exist_ok=True)
    name = os.path.basename(argv[0])
    log = os.path.join(DIR, "%s.%%p.log" % name)
    return OPTIONS + ["--log-file=" + log] + list(argv), timeout * 20
