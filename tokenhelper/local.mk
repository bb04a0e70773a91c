# tokenhelper/: the `mailoauth` program.  Everything but main.cc goes into a
# convenience library so the unit tests link the same objects.
noinst_LTLIBRARIES += tokenhelper/libtokenhelper.la
tokenhelper_libtokenhelper_la_SOURCES = \
	tokenhelper/form.h tokenhelper/form.cc \
	tokenhelper/http.h tokenhelper/http.cc \
	tokenhelper/oauth.h tokenhelper/oauth.cc \
	tokenhelper/errors.h tokenhelper/errors.cc \
	tokenhelper/store.h tokenhelper/store.cc \
	tokenhelper/settings.h tokenhelper/settings.cc \
	tokenhelper/tokens.h tokenhelper/tokens.cc \
	tokenhelper/device_flow.h tokenhelper/device_flow.cc \
	tokenhelper/commands.h tokenhelper/commands.cc \
	tokenhelper/peercred.h tokenhelper/peercred.cc \
	tokenhelper/agent.h tokenhelper/agent.cc
# -pthread: the agent serves each connection in a thread.
tokenhelper_libtokenhelper_la_CXXFLAGS = $(AM_CXXFLAGS) -pthread $(CURL_CFLAGS) $(JSONCPP_CFLAGS)
tokenhelper_libtokenhelper_la_LIBADD = common/libcommon.la $(CURL_LIBS) $(JSONCPP_LIBS)
tokenhelper_libtokenhelper_la_LDFLAGS = -pthread

bin_PROGRAMS += mailoauth
mailoauth_SOURCES = tokenhelper/main.cc
mailoauth_CXXFLAGS = $(AM_CXXFLAGS)
mailoauth_LDADD = tokenhelper/libtokenhelper.la
