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
