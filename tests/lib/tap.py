"""Run a Python unittest module and report each test as a TAP line.

automake's tap-driver then counts test cases, not test programs.  Usage at
the bottom of a test module:

    if __name__ == "__main__":
        tap.main()
"""
import sys
import traceback
import unittest


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
            for line in detail.rstrip().splitlines():
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
