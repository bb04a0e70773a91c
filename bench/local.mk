# bench build rules
# Login, token and refresh-storm benchmarks: run on demand with bench/run
# (not built by make, not part of make check).
EXTRA_DIST += bench/run bench/README.md bench/benchlib.py bench/login.py \
	bench/token.py bench/storm.py bench/sasl_login_loop.c \
	bench/refresh.py bench/refresh_breakdown.py bench/agent.py bench/agent_load.c
EXTRA_DIST += bench/plugin-load.sh bench/tunnel.py
EXTRA_DIST += bench/agent_expiry.py
