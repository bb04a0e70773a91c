// main() for every CppUnit test program: runs all registered suites and
// reports each test as a TAP line, so automake's tap-driver (and .ci/run)
// counts individual test cases rather than programs.
#include <cppunit/Exception.h>
#include <cppunit/SourceLine.h>
#include <cppunit/Test.h>
#include <cppunit/TestFailure.h>
#include <cppunit/TestListener.h>
#include <cppunit/TestResult.h>
#include <cppunit/TestRunner.h>
#include <cppunit/extensions/TestFactoryRegistry.h>

#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

class TapListener : public CppUnit::TestListener {
public:
    void startTest(CppUnit::Test*) override { failed_ = false; detail_.clear(); }
    void addFailure(const CppUnit::TestFailure& f) override {
        failed_ = true;
        std::ostringstream os;
        os << f.sourceLine().fileName() << ":" << f.sourceLine().lineNumber() << ": "
           << f.thrownException()->what();
        detail_ = os.str();
    }
    void endTest(CppUnit::Test* t) override {
        ++n_;
        if (failed_) ++failures_;
        std::cout << (failed_ ? "not ok " : "ok ") << n_ << " - " << t->getName() << "\n";
        if (failed_) {
            std::istringstream is(detail_);
            std::string line;
            while (std::getline(is, line)) std::cout << "# " << line << "\n";
        }
        std::cout.flush();
    }
    int count() const { return n_; }
    int failures() const { return failures_; }

private:
    bool failed_ = false;
    std::string detail_;
    int n_ = 0;
    int failures_ = 0;
};

int count_tests(CppUnit::Test* t) { return t->countTestCases(); }

}  // namespace

int main() {
    CppUnit::Test* suite = CppUnit::TestFactoryRegistry::getRegistry().makeTest();
    std::cout << "1.." << count_tests(suite) << "\n";
    CppUnit::TestResult result;
    TapListener tap;
    result.addListener(&tap);
    CppUnit::TestRunner runner;
    runner.addTest(suite);
    runner.run(result);
    return tap.failures() == 0 ? 0 : 1;
}
