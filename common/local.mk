# common/: small pure modules shared by the plugin and the token helper.  They
# depend on nothing but the C++ runtime, because the plugin must not drag
# libcurl, jsoncpp or OpenSSL into every program that loads libsasl2.
noinst_LTLIBRARIES += common/libcommon.la
common_libcommon_la_SOURCES = \
	common/secret.h common/secret.cc \
	common/protocol.h common/protocol.cc \
	common/config.h common/config.cc \
	common/msgio.h common/msgio.cc \
	common/fd.h common/json_quote.h \
	common/sha256.h common/sha256.cc \
	common/margin.h \
	common/socket_name.h common/socket_name.cc \
	common/sasl_modules.h common/sasl_modules.cc \
	common/sanitize.h common/sanitize.cc
common_libcommon_la_CXXFLAGS = $(AM_CXXFLAGS) -fvisibility=hidden

# The fuzz targets built by hand and by fuzz/smoke (see fuzz/README).
EXTRA_DIST += fuzz/fuzz_sanitize.cc fuzz/fuzz_protocol.cc fuzz/fuzz_wire.cc fuzz/smoke \
	fuzz/seeds/oauth/device_code.json fuzz/seeds/oauth/error_c1.json fuzz/seeds/oauth/token.json
