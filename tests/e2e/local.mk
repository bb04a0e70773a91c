# The local mail environment (Dovecot + Postfix on loopback) and its own test.
# Needs dovecot-imapd, dovecot-pop3d, dovecot-submissiond, dovecot-lmtpd,
# postfix and cyrus-clients from Debian; the Postfix cases need root.
TESTS += tests/e2e/test_mailenv.py
EXTRA_DIST += tests/lib/mailenv.py tests/e2e/test_mailenv.py \
	tests/e2e/dovecot.conf.in tests/e2e/dovecot-oauth2.conf.ext.in \
	tests/e2e/postfix-main.cf.in tests/e2e/postfix-master.cf.in
