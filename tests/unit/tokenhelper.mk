# unit tests of tokenhelper/ modules

# The token store (tokenhelper/store.cc).
check_PROGRAMS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/tap_main.cc tests/unit/test_store.cc tests/unit/test_secret_file.cc
tests_unit_test_store_CXXFLAGS = $(UNIT_CXXFLAGS)
tests_unit_test_store_LDADD = tokenhelper/libtokenhelper.la $(UNIT_LDADD)
TESTS += tests/unit/test_store
# libFuzzer target for parse_record; built by hand with clang (see the file).
EXTRA_DIST += fuzz/fuzz_store.cc

# Form encoding, the HTTP wrapper, the JSON reply parsers and the error
# explanations (tokenhelper/{form,http,oauth,errors}.cc).
check_PROGRAMS += tests/unit/test_http_json
tests_unit_test_http_json_SOURCES = tests/unit/tap_main.cc \
	tests/unit/test_form.cc tests/unit/test_http.cc \
	tests/unit/test_oauth.cc tests/unit/test_errors.cc
tests_unit_test_http_json_CXXFLAGS = $(UNIT_CXXFLAGS) $(JSONCPP_CFLAGS) $(CURL_CFLAGS)
tests_unit_test_http_json_LDADD = tokenhelper/libtokenhelper.la tokenhelper/libnet.la $(UNIT_LDADD)
TESTS += tests/unit/test_http_json
# libFuzzer target for the three reply parsers; see fuzz/README.
EXTRA_DIST += fuzz/fuzz_oauth.cc
EXTRA_DIST += fuzz/README

# mailoauth doctor's judgements (tokenhelper/doctor.cc).
check_PROGRAMS += tests/unit/test_doctor
tests_unit_test_doctor_SOURCES = tests/unit/tap_main.cc tests/unit/test_doctor.cc
tests_unit_test_doctor_CXXFLAGS = $(UNIT_CXXFLAGS) -pthread
tests_unit_test_doctor_LDADD = tokenhelper/libtokenhelper.la tokenhelper/libnet.la $(UNIT_LDADD)
tests_unit_test_doctor_LDFLAGS = -pthread
TESTS += tests/unit/test_doctor

# The refresh margin clamped to a token's lifetime (common/margin.h), used by
# tokenhelper/tokens.cc and meant for the plugin's cache.
check_PROGRAMS += tests/unit/test_margin
tests_unit_test_margin_SOURCES = tests/unit/tap_main.cc tests/unit/test_margin.cc common/margin.h
tests_unit_test_margin_CXXFLAGS = $(UNIT_CXXFLAGS)
tests_unit_test_margin_LDADD = $(UNIT_LDADD)
TESTS += tests/unit/test_margin

# The rules of the device flow's polling (tokenhelper/device_flow.cc) and of
# refreshing (tokenhelper/tokens.cc), with a scripted HTTP client and a fake
# clock: what tests/helper/ would wait minutes of wall-clock time for; and
# the countdown's minutes:seconds (tokenhelper/timefmt.cc).
check_PROGRAMS += tests/unit/test_flow_rules
tests_unit_test_flow_rules_SOURCES = tests/unit/tap_main.cc tests/unit/fake_http.h \
	tests/unit/test_device_flow.cc tests/unit/test_refresh_rules.cc tests/unit/test_timefmt.cc
tests_unit_test_flow_rules_CXXFLAGS = $(UNIT_CXXFLAGS) -pthread
tests_unit_test_flow_rules_LDADD = tokenhelper/libtokenhelper.la tokenhelper/libnet.la $(UNIT_LDADD)
tests_unit_test_flow_rules_LDFLAGS = -pthread
TESTS += tests/unit/test_flow_rules

# mailoauth connect: the line parsers before the hand-over and the
# pass-through after it (tokenhelper/connect_proto.cc, connect_relay.cc).
check_PROGRAMS += tests/unit/test_connect
tests_unit_test_connect_SOURCES = tests/unit/tap_main.cc \
	tests/unit/test_connect_proto.cc tests/unit/test_connect_relay.cc
tests_unit_test_connect_CXXFLAGS = $(UNIT_CXXFLAGS) -pthread
tests_unit_test_connect_LDADD = tokenhelper/libtokenhelper.la $(UNIT_LDADD)
tests_unit_test_connect_LDFLAGS = -pthread
TESTS += tests/unit/test_connect
# libFuzzer target for the connect parsers; see fuzz/README.
EXTRA_DIST += fuzz/fuzz_connect.cc

# The browser sign-in: PKCE and state, the redirect parser, the loopback
# listener on real sockets and the whole flow against a fake HTTP client
# (tokenhelper/{pkce,redirect,loopback_listener,browser_flow}.cc).
check_PROGRAMS += tests/unit/test_browser_flow
tests_unit_test_browser_flow_SOURCES = tests/unit/tap_main.cc \
	tests/unit/test_pkce.cc tests/unit/test_redirect.cc \
	tests/unit/test_loopback_listener.cc tests/unit/test_browser_flow.cc \
	tests/unit/browser_test_util.h tests/unit/fake_http.h
tests_unit_test_browser_flow_CXXFLAGS = $(UNIT_CXXFLAGS) -pthread
tests_unit_test_browser_flow_LDADD = tokenhelper/libtokenhelper.la tokenhelper/libnet.la $(UNIT_LDADD)
tests_unit_test_browser_flow_LDFLAGS = -pthread
TESTS += tests/unit/test_browser_flow
# libFuzzer target for the redirect and paste parser; see fuzz/README.
EXTRA_DIST += fuzz/fuzz_redirect.cc fuzz/seeds/redirect/code.txt fuzz/seeds/redirect/error.txt \
	fuzz/seeds/redirect/google.txt

# App-only accounts: the client assertion and the roles claim (module side:
# tokenhelper/client_assertion.cc, jwt_claims.cc), the credential sources,
# the client-credentials request and its explanations (tokenhelper/
# credential_source.cc, app_token.cc, app_errors.cc).  Keys and certificates
# are made at run time (tests/unit/testcert.h).
check_PROGRAMS += tests/unit/test_app
tests_unit_test_app_SOURCES = tests/unit/tap_main.cc tests/unit/testcert.h tests/unit/fake_http.h \
	tests/unit/test_client_assertion.cc tests/unit/test_credential_source.cc \
	tests/unit/test_app_token.cc tests/unit/test_app_errors.cc
tests_unit_test_app_CXXFLAGS = $(UNIT_CXXFLAGS) $(JSONCPP_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_test_app_LDADD = tokenhelper/libtokenhelper.la tokenhelper/libnet.la $(OPENSSL_LIBS) \
	$(JSONCPP_LIBS) $(UNIT_LDADD)
TESTS += tests/unit/test_app

# The providers and the settings precedence (tokenhelper/provider*.cc,
# providers.cc, settings.cc), with a fake HttpClient and a fake clock.
check_PROGRAMS += tests/unit/test_providers
tests_unit_test_providers_SOURCES = tests/unit/tap_main.cc tests/unit/fake_http.h \
	tests/unit/test_providers.cc tests/unit/test_settings.cc
tests_unit_test_providers_CXXFLAGS = $(UNIT_CXXFLAGS)
tests_unit_test_providers_LDADD = tokenhelper/libtokenhelper.la tokenhelper/libnet.la $(UNIT_LDADD)
TESTS += tests/unit/test_providers
