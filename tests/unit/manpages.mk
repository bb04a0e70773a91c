# Consistency of the man pages with `mailoauth --help` and common/config.cc.
TESTS += tests/unit/test_manpages.sh
EXTRA_DIST += tests/unit/test_manpages.sh
