# Integration tests of the mailoauth program against the fake identity provider.
TESTS += tests/helper/test_login.py tests/helper/test_tokens.py tests/helper/test_tap_redaction.py
EXTRA_DIST += tests/helper/test_login.py tests/helper/test_tokens.py tests/helper/test_tap_redaction.py tests/lib/helperlib.py
# The agent (tokenhelper/agent*.cc): sockets, access control, load, restarts,
# and the plugin's agent source (needs tests/plugin/sasl-driver).
TESTS += tests/helper/test_agent.py
EXTRA_DIST += tests/helper/test_agent.py
# mailoauth doctor against a real login, plugin directory and agent.
TESTS += tests/helper/test_doctor.py
EXTRA_DIST += tests/helper/test_doctor.py
# One battery of protocol cases run against `mailoauth get` and the agent.
TESTS += tests/helper/test_protocol_battery.py
EXTRA_DIST += tests/helper/test_protocol_battery.py
# Issue 9: short-lived tokens and the clamped margin, status without times;
# kill -9 during refreshes; no core dumps.
TESTS += tests/helper/test_margin.py tests/helper/test_crash.py tests/helper/test_coredump.py
EXTRA_DIST += tests/helper/test_margin.py tests/helper/test_crash.py tests/helper/test_coredump.py
# Text from peers (identity provider, helper, agent) with C1 controls in each
# form, on its way to the terminal, the store, the logs and the plugin.
TESTS += tests/helper/test_sanitize_idp.py
EXTRA_DIST += tests/helper/test_sanitize_idp.py
TESTS += tests/helper/test_sanitize_peers.py
EXTRA_DIST += tests/helper/test_sanitize_peers.py
# Issue 11: the agent renews tokens before they are needed (agent_renew.cc).
TESTS += tests/helper/test_agent_renew.py
EXTRA_DIST += tests/helper/test_agent_renew.py
# Issue 11: app-only accounts (login --app, client credentials at expiry,
# status and doctor), against the fake's client-credentials grant.
TESTS += tests/helper/test_app_login.py
EXTRA_DIST += tests/helper/test_app_login.py
# Issue 10: how the browser sign-in fails (state, code, error redirect,
# listener, timeout, paste), device code refused, no secret shown.
TESTS += tests/helper/test_browser_login.py
EXTRA_DIST += tests/helper/test_browser_login.py
