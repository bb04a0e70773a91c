# The fake Microsoft identity provider and its own conformance test.
TESTS += tests/fake/test_fake_idp.py
EXTRA_DIST += tests/fake/fake_idp.py tests/fake/test_fake_idp.py tests/lib/testca.py tests/lib/fakeidp.py
# The browser sign-in's side of the fake (authorization endpoints, Google, a
# generic OIDC issuer, Conditional Access) and the scripted browser.
EXTRA_DIST += tests/fake/fake_idp_providers.py tests/lib/browser.py
# Its client-credentials grant for app-only accounts (tests/fake/fake_idp_app.py).
TESTS += tests/fake/test_fake_idp_app.py
EXTRA_DIST += tests/fake/fake_idp_app.py tests/fake/test_fake_idp_app.py
