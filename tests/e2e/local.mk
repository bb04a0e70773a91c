# The local mail environment (Dovecot + Postfix on loopback) and its own test.
# Needs dovecot-imapd, dovecot-pop3d, dovecot-submissiond, dovecot-lmtpd,
# postfix and cyrus-clients from Debian; the Postfix cases need root.
TESTS += tests/e2e/test_mailenv.py
EXTRA_DIST += tests/lib/mailenv.py tests/e2e/test_mailenv.py \
	tests/e2e/dovecot.conf.in tests/e2e/dovecot-oauth2.conf.ext.in \
	tests/e2e/postfix-main.cf.in tests/e2e/postfix-relay.cf.in \
	tests/e2e/postfix-master.cf.in

# Mail programs that take a token command (`mailoauth token ACCOUNT`) rather
# than the plugin: msmtp, mutt, neomutt (GNU SASL on Debian) and getmail6,
# with the configurations the README shows.  Needs those packages and script.
TESTS += tests/e2e/test_token_clients.py
EXTRA_DIST += tests/e2e/test_token_clients.py \
	tests/e2e/clients/msmtprc.in tests/e2e/clients/muttrc.in \
	tests/e2e/clients/getmailrc.in

# Real SASL clients through libmailoauth.so (imtest, pop3test, smtptest,
# Postfix chrooted and not, mbsync) and the token lifecycle against Dovecot
# (expiry, revoked access token and the error challenge, revoked refresh
# token, shared mailbox).  Needs isync besides the packages above; root for
# Postfix.
TESTS += tests/e2e/test_sasl_clients.py tests/e2e/test_lifecycle.py
EXTRA_DIST += tests/e2e/test_sasl_clients.py tests/e2e/test_lifecycle.py \
	tests/e2e/sasl/sasllib.py tests/e2e/sasl/saslclient.py \
	tests/e2e/sasl/mbsyncrc.in

# nmh (send/post over submission, inc over POP3) through libmailoauth.so
# with OAUTHBEARER, with the ~/.mh_profile the README shows.  Needs nmh.
TESTS += tests/e2e/test_nmh.py
EXTRA_DIST += tests/e2e/test_nmh.py tests/e2e/sasl/nmhlib.py \
	tests/e2e/clients/mh_profile.in

# A token the server refuses, with imtest, pop3test, smtptest (both
# mechanisms) and mbsync: the reply to the error challenge, the forced
# refresh, the next run logs in.
TESTS += tests/e2e/test_refused_token.py
EXTRA_DIST += tests/e2e/test_refused_token.py

# More programs with a token command: mpop, curl, offlineimap3, s-nail,
# Python's imaplib and smtplib, with the configurations the README shows.
TESTS += tests/e2e/test_more_clients.py
EXTRA_DIST += tests/e2e/test_more_clients.py \
	tests/e2e/clients/mpoprc.in tests/e2e/clients/curl-imap.sh.in \
	tests/e2e/clients/curl-smtp.sh.in tests/e2e/clients/python-imap.py.in \
	tests/e2e/clients/python-smtp.py.in \
	tests/e2e/clients/offlineimaprc.in tests/e2e/clients/offlineimap.py.in \
	tests/e2e/clients/mailrc.in

# `mailoauth connect` with the programs that hand it their connection:
# fetchmail (plugin, IMAP and POP3, implicit TLS and STARTTLS), mutt and
# neomutt (tunnel), mbsync (Tunnel), offlineimap3 (preauthtunnel), with the
# configurations the README shows; refused and revoked tokens, an unknown
# CA, a silent server, a client that leaves.  Needs fetchmail, offlineimap3
# and the packages above.
TESTS += tests/e2e/test_connect.py
EXTRA_DIST += tests/e2e/test_connect.py \
	tests/e2e/clients/fetchmailrc-imap.in tests/e2e/clients/fetchmailrc-pop3.in \
	tests/e2e/clients/muttrc-tunnel.in tests/e2e/clients/mbsyncrc-tunnel.in \
	tests/e2e/clients/offlineimaprc-tunnel.in

# sendmail as an SMTP client through libmailoauth.so (FEATURE(authinfo),
# AuthInfo with M:XOAUTH2), relaying to Dovecot's submission port with
# STARTTLS.  sendmail-bin conflicts with Postfix, so scripts/install-deps
# keeps its .deb in /var/cache/mailoauth-tests and the test unpacks it with
# dpkg-deb -x and runs it with its own configuration (built with m4 from
# sendmail-cf).  sendmail clears its environment, so libsasl2 loads plugins
# from the system directory only and the plugin reads only its compiled-in
# configuration file: this build of the plugin reads
# tests/e2e/sendmail-etc/mailoauth.conf in the build tree (its own, so it
# cannot race test_secure_host.py for tests/plugin/secure-etc), and the
# test copies it into the system plugin directory under a name of its own
# for the run.  Needs root.
check_LTLIBRARIES += tests/e2e/sendmail-plugin/libmailoauth.la
tests_e2e_sendmail_plugin_libmailoauth_la_SOURCES = $(plugin_libplugincore_la_SOURCES) \
	$(plugin_libmailoauth_la_SOURCES) $(common_libcommon_la_SOURCES)
tests_e2e_sendmail_plugin_libmailoauth_la_CPPFLAGS = $(AM_CPPFLAGS) $(SASL_CFLAGS) -UMAILOAUTH_SYSCONFDIR \
	-DMAILOAUTH_SYSCONFDIR='"$(abs_top_builddir)/tests/e2e/sendmail-etc"'
tests_e2e_sendmail_plugin_libmailoauth_la_CXXFLAGS = $(AM_CXXFLAGS) -fvisibility=hidden -fvisibility-inlines-hidden
# -rpath: a check library is otherwise built only as a static archive.
tests_e2e_sendmail_plugin_libmailoauth_la_LDFLAGS = -module -avoid-version -shared -rpath '$(abs_builddir)' \
	-Wl,--version-script=$(srcdir)/plugin/exports.map
clean-local: mailoauth-clean-sendmail-etc
mailoauth-clean-sendmail-etc:
	rm -rf tests/e2e/sendmail-etc
.PHONY: mailoauth-clean-sendmail-etc
TESTS += tests/e2e/test_sendmail.py
EXTRA_DIST += tests/e2e/test_sendmail.py tests/e2e/clients/sendmail.mc.in \
	tests/e2e/clients/authinfo.in tests/e2e/clients/access.in

# Issue 11: app-only accounts (client credentials) served by the agent to
# chrooted Postfix (certificate; secret from $CREDENTIALS_DIRECTORY), to
# imtest, pop3test and mbsync through the plugin; a wrong mailbox refused.
# Needs root and the packages above.
TESTS += tests/e2e/test_app_only.py
EXTRA_DIST += tests/e2e/test_app_only.py

# Issue 10: browser sign-in (authorization code + PKCE, the scripted browser
# of tests/lib/browser.py) per provider against the fake -- Microsoft global
# and usgov, personal accounts, Google, a generic OIDC issuer, --paste --
# then a refresh, IMAP through the plugin and msmtp through `mailoauth token`.
TESTS += tests/e2e/test_providers.py
EXTRA_DIST += tests/e2e/test_providers.py
