# Integration tests of the mailoauth program against the fake identity provider.
TESTS += tests/helper/test_login.py tests/helper/test_tokens.py
EXTRA_DIST += tests/helper/test_login.py tests/helper/test_tokens.py tests/lib/helperlib.py
