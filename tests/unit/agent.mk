# unit tests of the agent: allow lists, socket names, single flight
# (tokenhelper/peercred.cc, tokenhelper/agent_listen.cc, tokenhelper/agent_broker.cc).
check_PROGRAMS += tests/unit/test_agent
tests_unit_test_agent_SOURCES = tests/unit/tap_main.cc tests/unit/test_agent.cc
tests_unit_test_agent_CXXFLAGS = $(UNIT_CXXFLAGS) -pthread
tests_unit_test_agent_LDADD = tokenhelper/libtokenhelper.la tokenhelper/libnet.la $(UNIT_LDADD)
tests_unit_test_agent_LDFLAGS = -pthread
TESTS += tests/unit/test_agent
# Renewal ahead of need (tokenhelper/agent_renew.cc, TokenBroker::renew):
# schedule, jitter, back-off, single flight, the thread's stop.
check_PROGRAMS += tests/unit/test_agent_renew
tests_unit_test_agent_renew_SOURCES = tests/unit/tap_main.cc tests/unit/test_agent_renew.cc
tests_unit_test_agent_renew_CXXFLAGS = $(UNIT_CXXFLAGS) -pthread
tests_unit_test_agent_renew_LDADD = tokenhelper/libtokenhelper.la tokenhelper/libnet.la $(UNIT_LDADD)
tests_unit_test_agent_renew_LDFLAGS = -pthread
TESTS += tests/unit/test_agent_renew
