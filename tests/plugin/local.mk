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

# The C boundary and the mechanism state machine called directly through the
# plug table, with a fake sasl_utils_t and a fake token source.
check_PROGRAMS += tests/plugin/test_mechanism
tests_plugin_test_mechanism_SOURCES = tests/unit/tap_main.cc \
	tests/plugin/fake_sasl_utils.h tests/plugin/fake_sasl_utils.cc \
	tests/plugin/test_mechanism.cc plugin/plugin_init.cc
tests_plugin_test_mechanism_CPPFLAGS = $(AM_CPPFLAGS) $(SASL_CFLAGS)
tests_plugin_test_mechanism_CXXFLAGS = $(UNIT_CXXFLAGS)
tests_plugin_test_mechanism_LDADD = plugin/libplugincore.la common/libcommon.la $(UNIT_LDADD)

TESTS += tests/plugin/test_wire tests/plugin/test_mechanism tests/plugin/test_plugin.py tests/plugin/test_module.py
EXTRA_DIST += tests/plugin/pluginlib.py tests/plugin/test_plugin.py tests/plugin/test_module.py \
	tests/plugin/fake-helpers/ok tests/plugin/fake-helpers/fail \
	tests/plugin/fake-helpers/hang tests/plugin/fake-helpers/crash \
	tests/plugin/fake-helpers/garbage tests/plugin/fake-helpers/flood \
	tests/plugin/fake-helpers/silent
