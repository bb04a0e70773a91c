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
	plugin/token_source.h plugin/token_source.cc \
	plugin/subprocess.h plugin/subprocess.cc \
	plugin/helper_source.h plugin/helper_source.cc \
	plugin/agent_source.h plugin/agent_source.cc \
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
# libc and the C++ runtime can creep in unnoticed.
plugin_libmailoauth_la_LDFLAGS = -module -avoid-version -no-undefined -shared \
	-Wl,-z,defs -Wl,--as-needed \
	-Wl,--version-script=$(srcdir)/plugin/exports.map
# The C++ runtime is linked in statically, privately (the version script
# hides every symbol but the entry point).  libsasl2 loads this module into
# every program that calls sasl_client_init, and most of them (Postfix,
# mbsync, ldapsearch) are C: loading libstdc++.so into them costs more than
# all of Debian's SASL modules together (bench/plugin-load.sh: 1.35x with
# the shared runtime, 1.00x with this).  No C++ object crosses the C
# boundary, so a private runtime is safe.  A distribution that insists on
# the shared runtime builds with: make PLUGIN_CXXRT_LIBS=-lstdc++
PLUGIN_CXXRT_LIBS = $(shell $(CXX) -print-file-name=libstdc++.a) \
	$(shell $(CXX) -print-file-name=libgcc_eh.a)
plugin_libmailoauth_la_LIBADD = plugin/libplugincore.la common/libcommon.la
# libtool's C++ link adds -nostdlib and "-lstdc++ -lgcc_s" of its own, which
# would bring the shared runtime back: link through its C configuration
# (libtool puts the runtime after the objects whatever its place here).
plugin_libmailoauth_la_LINK = $(LIBTOOL) $(AM_V_lt) --tag=CC $(AM_LIBTOOLFLAGS) \
	$(LIBTOOLFLAGS) --mode=link $(CXXLD) $(plugin_libmailoauth_la_CXXFLAGS) $(CXXFLAGS) \
	$(plugin_libmailoauth_la_LDFLAGS) $(LDFLAGS) $(PLUGIN_CXXRT_LIBS) -o $@
EXTRA_plugin_libmailoauth_la_DEPENDENCIES = plugin/exports.map
EXTRA_DIST += plugin/exports.map

# libsasl2 loads *.so and reads *.la; only the .so belongs in its directory.
# (saslplugindir has no "exec" in its name, so automake installs it with
# install-data.)
install-data-hook: mailoauth-plugin-remove-la
mailoauth-plugin-remove-la:
	rm -f '$(DESTDIR)$(saslplugindir)/libmailoauth.la'
uninstall-hook: mailoauth-plugin-uninstall-so
mailoauth-plugin-uninstall-so:
	rm -f '$(DESTDIR)$(saslplugindir)/libmailoauth.so'
.PHONY: mailoauth-plugin-remove-la mailoauth-plugin-uninstall-so

# distcheck installs as an ordinary user under a temporary prefix: keep the
# plugin there too instead of libsasl2's system directory.
AM_DISTCHECK_CONFIGURE_FLAGS = '--with-sasl-plugindir=$${libdir}/sasl2'
