# The fake Microsoft identity provider and its own conformance test.
TESTS += tests/fake/test_fake_idp.py
EXTRA_DIST += tests/fake/fake_idp.py tests/fake/test_fake_idp.py tests/lib/testca.py tests/lib/fakeidp.py
