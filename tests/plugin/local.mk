# tests/plugin/: libmailoauth.so loaded by the real libsasl2.
#
# sasl-driver is a small libsasl2 client (callbacks or SASL_INTERACT) that
# prints each exchange as JSON; test_plugin.py runs it against the built
# module with fake helpers and checks the bytes.  test_module.py checks what
# the module exports and links, and what saslpluginviewer sees.
check_PROGRAMS += tests/plugin/sasl-driver tests/plugin/test_wire
tests_plugin_sasl_driver_SOURCES = tests/plugin/sasl_driver.cc
tests_plugin_sasl_driver_CPPFLAGS = $(AM_CPPFLAGS) $(SASL_CFLAGS)
tests_plugin_sasl_driver_LDADD = $(SASL_LIBS)

tests_plugin_test_wire_SOURCES = tests/unit/tap_main.cc tests/plugin/test_wire.cc
tests_plugin_test_wire_CPPFLAGS = $(AM_CPPFLAGS) $(SASL_CFLAGS)
tests_plugin_test_wire_CXXFLAGS = $(UNIT_CXXFLAGS)
tests_plugin_test_wire_LDADD = plugin/libplugincore.la common/libcommon.la $(UNIT_LDADD)

# How run() waits for the helper's exit (pidfd, the nap fallback, a host
# that ignores SIGCHLD, the deadline).
check_PROGRAMS += tests/plugin/test_subprocess
tests_plugin_test_subprocess_SOURCES = tests/unit/tap_main.cc tests/plugin/test_subprocess.cc
tests_plugin_test_subprocess_CXXFLAGS = $(UNIT_CXXFLAGS)
tests_plugin_test_subprocess_LDADD = plugin/libplugincore.la common/libcommon.la $(UNIT_LDADD)

# The C boundary and the mechanism state machine called directly through the
# plug table, with a fake sasl_utils_t and a fake token source.
check_PROGRAMS += tests/plugin/test_mechanism
tests_plugin_test_mechanism_SOURCES = tests/unit/tap_main.cc \
	tests/plugin/fake_sasl_utils.h tests/plugin/fake_sasl_utils.cc \
	tests/plugin/test_mechanism.cc plugin/plugin_init.cc
tests_plugin_test_mechanism_CPPFLAGS = $(AM_CPPFLAGS) $(SASL_CFLAGS)
tests_plugin_test_mechanism_CXXFLAGS = $(UNIT_CXXFLAGS)
tests_plugin_test_mechanism_LDADD = plugin/libplugincore.la common/libcommon.la $(UNIT_LDADD)

# A second build of the plugin whose compiled-in configuration directory
# (MAILOAUTH_SYSCONFDIR) is tests/plugin/secure-etc in the build tree.
# test_secure_host.py loads it into a setgid program, where the plugin
# ignores MAILOAUTH_CONFIG and only the compiled-in file counts; the real
# module's compiled-in file is the system's, which a test must not write.
check_LTLIBRARIES += tests/plugin/secure/libmailoauth.la
tests_plugin_secure_libmailoauth_la_SOURCES = $(plugin_libplugincore_la_SOURCES) \
	$(plugin_libmailoauth_la_SOURCES) $(common_libcommon_la_SOURCES)
tests_plugin_secure_libmailoauth_la_CPPFLAGS = $(AM_CPPFLAGS) $(SASL_CFLAGS) -UMAILOAUTH_SYSCONFDIR \
	-DMAILOAUTH_SYSCONFDIR='"$(abs_top_builddir)/tests/plugin/secure-etc"'
tests_plugin_secure_libmailoauth_la_CXXFLAGS = $(AM_CXXFLAGS) -fvisibility=hidden -fvisibility-inlines-hidden
# -rpath: a check library is otherwise built only as a static archive.
tests_plugin_secure_libmailoauth_la_LDFLAGS = -module -avoid-version -shared -rpath '$(abs_builddir)' \
	-Wl,--version-script=$(srcdir)/plugin/exports.map
clean-local: mailoauth-clean-secure-etc
mailoauth-clean-secure-etc:
	rm -rf tests/plugin/secure-etc
.PHONY: mailoauth-clean-secure-etc

TESTS += tests/plugin/test_wire tests/plugin/test_subprocess tests/plugin/test_mechanism tests/plugin/test_plugin.py tests/plugin/test_module.py \
	tests/plugin/test_secure_host.py tests/plugin/test_agent_trust.py
EXTRA_DIST += tests/plugin/pluginlib.py tests/plugin/test_plugin.py tests/plugin/test_module.py \
	tests/plugin/test_secure_host.py tests/plugin/test_agent_trust.py \
	tests/plugin/fake-helpers/ok tests/plugin/fake-helpers/fail \
	tests/plugin/fake-helpers/hang tests/plugin/fake-helpers/crash \
	tests/plugin/fake-helpers/garbage tests/plugin/fake-helpers/flood \
	tests/plugin/fake-helpers/silent
