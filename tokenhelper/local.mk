# tokenhelper/: the `mailoauth` program.  Everything but main.cc goes into a
# convenience library so the unit tests link the same objects.
noinst_LTLIBRARIES += tokenhelper/libtokenhelper.la
tokenhelper_libtokenhelper_la_SOURCES = \
	tokenhelper/form.h tokenhelper/form.cc \
	tokenhelper/http.h tokenhelper/http_module.h tokenhelper/http_module.cc \
	tokenhelper/oauth.h \
	tokenhelper/errors.h tokenhelper/errors.cc \
	tokenhelper/store.h tokenhelper/store.cc \
	tokenhelper/secret_file.h tokenhelper/secret_file.cc \
	tokenhelper/credential_source.h tokenhelper/credential_source.cc \
	tokenhelper/app_token.h tokenhelper/app_token.cc \
	tokenhelper/app_errors.h tokenhelper/app_errors.cc \
	tokenhelper/client_assertion.h tokenhelper/jwt_claims.h \
	tokenhelper/settings.h tokenhelper/settings.cc \
	tokenhelper/timefmt.h tokenhelper/timefmt.cc \
	tokenhelper/tokens.h tokenhelper/tokens.cc \
	tokenhelper/device_flow.h tokenhelper/device_flow.cc \
	tokenhelper/pkce.h tokenhelper/pkce.cc \
	tokenhelper/redirect.h tokenhelper/redirect.cc \
	tokenhelper/loopback_listener.h tokenhelper/loopback_listener.cc \
	tokenhelper/browser_flow.h tokenhelper/browser_flow.cc \
	tokenhelper/provider.h tokenhelper/providers.cc \
	tokenhelper/provider_microsoft.cc tokenhelper/provider_google.cc tokenhelper/provider_oidc.cc \
	tokenhelper/login.h \
	tokenhelper/commands.h tokenhelper/cli.h tokenhelper/cli.cc tokenhelper/verbs.h \
	tokenhelper/verb_login.cc tokenhelper/verb_login_app.cc tokenhelper/app_account.h tokenhelper/app_account.cc \
	tokenhelper/verb_tokens.cc tokenhelper/verb_status.cc \
	tokenhelper/verb_services.cc \
	tokenhelper/peercred.h tokenhelper/peercred.cc \
	tokenhelper/agent.h \
	tokenhelper/agent_broker.h tokenhelper/agent_broker.cc \
	tokenhelper/agent_server.h tokenhelper/agent_server.cc \
	tokenhelper/agent_gate.h tokenhelper/agent_gate.cc \
	tokenhelper/agent_listen.h tokenhelper/agent_listen.cc \
	tokenhelper/agent_daemon.cc \
	tokenhelper/agent_config.h tokenhelper/agent_config.cc \
	tokenhelper/agent_log.h tokenhelper/agent_log.cc \
	tokenhelper/agent_pool.h tokenhelper/agent_pool.cc \
	tokenhelper/agent_renew.h tokenhelper/agent_renew.cc \
	tokenhelper/doctor.h tokenhelper/doctor.cc \
	tokenhelper/connect.h tokenhelper/connect.cc \
	tokenhelper/connect_proto.h tokenhelper/connect_proto.cc \
	tokenhelper/connect_transport.h tokenhelper/connect_transport.cc \
	tokenhelper/connect_relay.h tokenhelper/connect_relay.cc \
	tokenhelper/connect_tls.h tokenhelper/connect_tls.cc \
	plugin/wire.h plugin/wire.cc
# -pthread: the agent serves connections from a pool of threads.
tokenhelper_libtokenhelper_la_CPPFLAGS = $(AM_CPPFLAGS) -DMAILOAUTH_PKGLIBDIR='"$(pkglibdir)"' \
	-DMAILOAUTH_SASLPLUGINDIR='"$(saslplugindir)"'
tokenhelper_libtokenhelper_la_CXXFLAGS = $(AM_CXXFLAGS) -pthread
tokenhelper_libtokenhelper_la_LIBADD = common/libcommon.la -ldl
tokenhelper_libtokenhelper_la_LDFLAGS = -pthread

bin_PROGRAMS += mailoauth
mailoauth_SOURCES = tokenhelper/main.cc tokenhelper/oauth_forward.cc tokenhelper/app_forward.cc
mailoauth_CXXFLAGS = $(AM_CXXFLAGS)
mailoauth_LDADD = tokenhelper/libtokenhelper.la
# The C++ runtime is linked in: loading libstdc++.so costs `mailoauth token`
# more than the rest of its work (bench/token.py).  No C++ object or
# exception crosses into the network module except through NetModule,
# whose entries catch everything.
mailoauth_LDFLAGS = -Wc,-static-libstdc++ -Wc,-static-libgcc

# The network layer, loaded with dlopen() only when a request is made (see
# tokenhelper/http_module.h): `mailoauth token` with a cached token must not
# pay for loading libcurl, its TLS libraries and jsoncpp.
noinst_LTLIBRARIES += tokenhelper/libnet.la
tokenhelper_libnet_la_SOURCES = tokenhelper/http.h tokenhelper/http.cc \
	tokenhelper/oauth.h tokenhelper/oauth.cc \
	tokenhelper/client_assertion.h tokenhelper/client_assertion.cc \
	tokenhelper/jwt_claims.h tokenhelper/jwt_claims.cc
tokenhelper_libnet_la_CXXFLAGS = $(AM_CXXFLAGS) $(CURL_CFLAGS) $(JSONCPP_CFLAGS) $(OPENSSL_CFLAGS)
tokenhelper_libnet_la_LIBADD = $(CURL_LIBS) $(JSONCPP_LIBS) $(OPENSSL_LIBS)

pkglib_LTLIBRARIES = tokenhelper/mailoauth-curl.la
tokenhelper_mailoauth_curl_la_SOURCES = tokenhelper/curl_module.cc
tokenhelper_mailoauth_curl_la_CXXFLAGS = $(AM_CXXFLAGS) -fvisibility=hidden
tokenhelper_mailoauth_curl_la_LIBADD = tokenhelper/libnet.la common/libcommon.la
tokenhelper_mailoauth_curl_la_LDFLAGS = -module -avoid-version -shared -no-undefined

# The TLS client of `mailoauth connect`, loaded with dlopen() by that verb
# only: OpenSSL alone, without libcurl and jsoncpp (see connect_tls.h).
pkglib_LTLIBRARIES += tokenhelper/mailoauth-tls.la
tokenhelper_mailoauth_tls_la_SOURCES = tokenhelper/connect_tls.h tokenhelper/connect_tls_module.cc
tokenhelper_mailoauth_tls_la_CXXFLAGS = $(AM_CXXFLAGS) $(OPENSSL_CFLAGS) -fvisibility=hidden
tokenhelper_mailoauth_tls_la_LIBADD = $(OPENSSL_LIBS)
tokenhelper_mailoauth_tls_la_LDFLAGS = -module -avoid-version -shared -no-undefined

# Only the .so files are needed at run time.
install-exec-hook: mailoauth-curl-remove-la
mailoauth-curl-remove-la:
	rm -f '$(DESTDIR)$(pkglibdir)/mailoauth-curl.la' '$(DESTDIR)$(pkglibdir)/mailoauth-tls.la'
uninstall-hook: mailoauth-curl-uninstall-so
mailoauth-curl-uninstall-so:
	rm -f '$(DESTDIR)$(pkglibdir)/mailoauth-curl.so' '$(DESTDIR)$(pkglibdir)/mailoauth-tls.so'
.PHONY: mailoauth-curl-remove-la mailoauth-curl-uninstall-so
