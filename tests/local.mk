# tests/: every test reports TAP, one line per test case, through automake's
# tap-driver.  Unit tests are CppUnit programs sharing tests/unit/tap_main.cc;
# integration tests are Python unittest modules sharing tests/lib/.
TAP_DRIVER = env AM_TAP_AWK='$(AWK)' $(SHELL) $(top_srcdir)/build-aux/tap-driver.sh
LOG_DRIVER = $(TAP_DRIVER)
TEST_EXTENSIONS = .py .sh
PY_LOG_DRIVER = $(TAP_DRIVER)
PY_LOG_COMPILER = $(PYTHON)
SH_LOG_DRIVER = $(TAP_DRIVER)
SH_LOG_COMPILER = $(SHELL)
# A failing case is already counted from its TAP line; a crash still shows
# as "too few tests run".
AM_LOG_DRIVER_FLAGS = --ignore-exit
AM_PY_LOG_DRIVER_FLAGS = --ignore-exit
AM_SH_LOG_DRIVER_FLAGS = --ignore-exit
AM_TESTS_ENVIRONMENT = \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	MAILOAUTH_BIN='$(abs_top_builddir)/mailoauth'; export MAILOAUTH_BIN; \
	PYTHONDONTWRITEBYTECODE=1; export PYTHONDONTWRITEBYTECODE; \
	PYTHONPATH='$(abs_top_srcdir)/tests/lib'; export PYTHONPATH;

UNIT_LDADD = $(CPPUNIT_LIBS)
UNIT_CXXFLAGS = $(AM_CXXFLAGS) $(CPPUNIT_CFLAGS)

EXTRA_DIST += tests/lib/tap.py tests/lib/memcheck.py tests/lib/memcheck.supp

# Common unit tests.
check_PROGRAMS += tests/unit/test_common
tests_unit_test_common_SOURCES = tests/unit/tap_main.cc \
	tests/unit/test_protocol.cc tests/unit/test_config.cc tests/unit/test_secret.cc \
	tests/unit/test_sha256.cc tests/unit/test_socket_name.cc \
	tests/unit/test_sanitize.cc
tests_unit_test_common_CXXFLAGS = $(UNIT_CXXFLAGS)
tests_unit_test_common_LDADD = common/libcommon.la $(UNIT_LDADD)
TESTS += tests/unit/test_common

include $(srcdir)/tests/fake/local.mk
include $(srcdir)/tests/unit/tokenhelper.mk
include $(srcdir)/tests/unit/manpages.mk
include $(srcdir)/tests/unit/agent.mk
include $(srcdir)/tests/helper/local.mk
include $(srcdir)/tests/plugin/local.mk
include $(srcdir)/tests/e2e/local.mk
