# plugin/: libmailoauth.so, the Cyrus SASL client plugin (XOAUTH2,
# OAUTHBEARER).  It is loaded into every program that calls
# sasl_client_init, so it links nothing but common/ and the C/C++ runtimes
# (check with ldd) and exports only sasl_client_plug_init.
#
# Everything but the C entry point goes into a convenience library so the
# unit tests link the same objects.
noinst_LTLIBRARIES += plugin/libplugincore.la
plugin_libplugincore_la_SOURCES = \
	plugin/log.h plugin/log.cc \
	plugin/wire.h plugin/wire.cc \
	plugin/credentials.h plugin/credentials.cc \
	plugin/token_source.h \
	plugin/subprocess.h plugin/subprocess.cc \
	plugin/helper_source.h plugin/helper_source.cc \
	plugin/token_cache.h plugin/token_cache.cc \
	plugin/settings.h plugin/settings.cc \
	plugin/mechanism.h plugin/mechanism.cc
plugin_libplugincore_la_CPPFLAGS = $(AM_CPPFLAGS) $(SASL_CFLAGS)
plugin_libplugincore_la_CXXFLAGS = $(AM_CXXFLAGS) -fvisibility=hidden -fvisibility-inlines-hidden

saslplugin_LTLIBRARIES = plugin/libmailoauth.la
plugin_libmailoauth_la_SOURCES = plugin/plugin_init.cc
plugin_libmailoauth_la_CPPFLAGS = $(AM_CPPFLAGS) $(SASL_CFLAGS)
plugin_libmailoauth_la_CXXFLAGS = $(AM_CXXFLAGS) -fvisibility=hidden -fvisibility-inlines-hidden
# No libsasl2 on the link line: a plugin gets everything through sasl_utils_t.
# -z defs turns any undefined symbol into a link error, so nothing outside
# libc/libstdc++ can creep in unnoticed.
plugin_libmailoauth_la_LDFLAGS = -module -avoid-version -no-undefined -shared \
	-Wl,-z,defs -Wl,--as-needed \
	-Wl,--version-script=$(srcdir)/plugin/exports.map
plugin_libmailoauth_la_LIBADD = plugin/libplugincore.la common/libcommon.la
EXTRA_plugin_libmailoauth_la_DEPENDENCIES = plugin/exports.map
EXTRA_DIST += plugin/exports.map

# libsasl2 loads *.so and reads *.la; only the .so belongs in its directory.
install-exec-hook: mailoauth-plugin-remove-la
mailoauth-plugin-remove-la:
	rm -f '$(DESTDIR)$(saslplugindir)/libmailoauth.la'
uninstall-hook: mailoauth-plugin-uninstall-so
mailoauth-plugin-uninstall-so:
	rm -f '$(DESTDIR)$(saslplugindir)/libmailoauth.so'
.PHONY: mailoauth-plugin-remove-la mailoauth-plugin-uninstall-so

# distcheck installs as an ordinary user under a temporary prefix: keep the
# plugin there too instead of libsasl2's system directory.
AM_DISTCHECK_CONFIGURE_FLAGS = '--with-sasl-plugindir=$${libdir}/sasl2'
