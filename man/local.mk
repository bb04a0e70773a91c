# man/: the manual pages, installed and distributed as they are (no
# generation step).  tests/unit/test_manpages.sh checks them against
# `mailoauth --help` and common/config.cc.
dist_man_MANS += man/mailoauth.1 man/mailoauth.conf.5
# The plugin's page, man/mailoauth-plugin.8, is added here with the plugin.
dist_man_MANS += man/mailoauth-plugin.8
dist_man_MANS += man/mailoauth-agent.8
