"""Run a Python unittest module and report each test as a TAP line.

automake's tap-driver then counts test cases, not test programs.  Usage at
the bottom of a test module:

    if __name__ == "__main__":
        tap.main()
"""
import re
import sys
import traceback
import unittest

# Failure details are test output, and tokens must never reach it: an
# assertEqual between two tokens prints both.  Every detail line goes
# through redact(): exact secrets from the registered sources (the fake
# identity provider's issued tokens), then any run of 40 or more token
# characters, which is how the fake's and Microsoft's tokens look.
_SECRETISH = re.compile(r"[A-Za-z0-9_\-.~+=]{40,}")
_secret_sources = []


def add_secret_source(source):
    """SOURCE() returns an iterable of secrets to blank out of failure details."""
    _secret_sources.append(source)


def redact(text):
    for source in _secret_sources:
        try:
            secrets = sorted((s for s in source() if len(s) >= 8), key=len, reverse=True)
        except Exception:  # a stopped fake: the pattern below still applies
            secrets = []
        for secret in secrets:
            text = text.replace(secret, "<secret>")
    return _SECRETISH.sub("<redacted>", text)


class _TapResult(unittest.TestResult):
    def __init__(self):
        super().__init__()
        self.n = 0
        self.bad = 0
        self._reported = False
        self._subtest_failures = []

    def startTest(self, test):
        super().startTest(test)
        self._reported = False
        self._subtest_failures = []

    def addSubTest(self, test, subtest, err):
        # A failed subTest means the test method gets no addSuccess call:
        # remember it and report the method once, in stopTest.
        if err is not None:
            self._subtest_failures.append(
                f"{subtest._subDescription()}\n" + "".join(traceback.format_exception(*err)))

    def stopTest(self, test):
        if not self._reported and self._subtest_failures:
            self.bad += 1
            self._line(False, test, detail="\n".join(self._subtest_failures))
        super().stopTest(test)

    def _line(self, ok, test, extra="", detail=None):
        self._reported = True
        self.n += 1
        name = test.id().split(".", 1)[-1]
        print(("ok " if ok else "not ok ") + f"{self.n} - {name}{extra}", flush=True)
        if detail:
            for line in redact(detail).rstrip().splitlines():
                print("# " + line, flush=True)

    def addSuccess(self, test):
        self._line(True, test)

    def addFailure(self, test, err):
        self.bad += 1
        self._line(False, test, detail="".join(traceback.format_exception(*err)))

    def addError(self, test, err):
        self.bad += 1
        self._line(False, test, detail="".join(traceback.format_exception(*err)))

    def addSkip(self, test, reason):
        self._line(True, test, extra=f" # SKIP {reason}")

    def addExpectedFailure(self, test, err):
        self._line(False, test, extra=" # TODO expected failure",
                   detail="".join(traceback.format_exception(*err)))

    def addUnexpectedSuccess(self, test):
        self._line(True, test, extra=" # TODO unexpectedly passed")


def main(module="__main__"):
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[module])
    print(f"1..{suite.countTestCases()}", flush=True)
    result = _TapResult()
    suite.run(result)
    sys.exit(1 if result.bad else 0)
