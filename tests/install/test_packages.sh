#!/usr/bin/env bash
# Installation test of the Debian packages: installs the given .debs with
# apt-get, checks what they put on the machine (the plugin seen by libsasl2,
# the system user, the private store, the agent started by its socket and
# service units: test_socket_activation.py, Postfix with its smtp client
# chrooted relaying through the agent: test_installed_postfix.py), then
# purges them and removes what they left (the system user, when this test
# created it).  TAP on stdout.  Run as root:
#
#   tests/install/test_packages.sh mailoauth_*.deb libsasl2-modules-mailoauth_*.deb
#
# systemd is not running in CI, so the agent is started the way systemd
# would start it (tests/install/socketunit.py): the socket unit's
# ListenStream= bound as root first, then the service's ExecStart=, as its
# User=/Group=, umask 077, a clean environment, the socket as fd 3 with
# LISTEN_FDS/LISTEN_PID; its own PID is the one signalled.
set -uo pipefail

n=0 failed=0
ok()     { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=1; echo "not ok $n - $1"; shift; local l; for l in "$@"; do printf '%s\n' "$l" | sed 's/^/# /'; done; }
check()  { local name=$1; shift; local out; if out=$("$@" 2>&1); then ok "$name"; else not_ok "$name" "$out"; fi; }
# Polls a command for up to $1 tenths of a second.
wait_for() { local t=$1; shift; while ! "$@" >/dev/null 2>&1; do t=$((t - 1)); [ "$t" -gt 0 ] || return 1; sleep 0.1; done; }

if [ "$(id -u)" != 0 ]; then echo "1..0 # SKIP needs root"; exit 0; fi
if [ $# = 0 ]; then echo "usage: $0 DEB..." >&2; exit 64; fi

debs=()
for d in "$@"; do
  case "$d" in *-dbgsym_*) continue ;; esac   # debug symbols are not under test
  debs+=("$(readlink -f "$d")")
done

packages=(mailoauth libsasl2-modules-mailoauth)
unit=/lib/systemd/system/mailoauth-agent.service
socket_unit=/lib/systemd/system/mailoauth-agent.socket
store=/var/lib/mailoauth
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
plugin=/usr/lib/$multiarch/sasl2/libmailoauth.so
user_existed=
getent passwd mailoauth >/dev/null && user_existed=1
cleanup() {
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${packages[@]}" >/dev/null 2>&1
  if [ -z "$user_existed" ] && getent passwd mailoauth >/dev/null; then
    userdel mailoauth >/dev/null 2>&1
    getent group mailoauth >/dev/null && groupdel mailoauth >/dev/null 2>&1
  fi
  echo "1..$n"
}
trap cleanup EXIT

# --- install ------------------------------------------------------------------
if out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${debs[@]}" 2>&1); then
  ok "apt-get install ${debs[*]##*/}"
else
  not_ok "apt-get install ${debs[*]##*/}" "$(tail -n 30 <<<"$out")"
  exit 1
fi

# --- the plugin -----------------------------------------------------------------
check "the plugin is $plugin" test -f "$plugin"
sasl_dir=$(pkg-config --variable=libdir libsasl2 2>/dev/null)
if [ -n "$sasl_dir" ]; then
  check "libsasl2's plugin directory ($sasl_dir/sasl2) is the plugin's" test "$sasl_dir/sasl2/libmailoauth.so" -ef "$plugin"
fi
las=$(dpkg -L "${packages[@]}" | grep '\.la$')
if [ -z "$las" ]; then ok "no .la file installed"; else not_ok "no .la file installed" "$las"; fi

# saslpluginviewer names each plugin after its file: "mailoauth" is
# libmailoauth.so, whatever else provides the same mechanisms.
viewer=$(saslpluginviewer -c 2>&1)
for mech in XOAUTH2 OAUTHBEARER; do
  if awk -v m="$mech" '/^Plugin "/ { p = ($0 ~ /^Plugin "mailoauth" \[loaded\]/) }
                       p && $0 ~ "SASL mechanism: " m "," { found = 1 }
                       END { exit !found }' <<<"$viewer" \
     && grep -q "^  .*\\b$mech\\b" <<<"$viewer"; then
    ok "saslpluginviewer -c lists $mech from libmailoauth.so"
  else
    not_ok "saslpluginviewer -c lists $mech from libmailoauth.so" "$viewer"
  fi
done
# The package's autopkgtest, run here as well.
autopkgtest=$(dirname "$0")/../../debian/tests/saslpluginviewer
if [ -f "$autopkgtest" ]; then check "autopkgtest debian/tests/saslpluginviewer" sh "$autopkgtest"; fi
viewer_m=$(saslpluginviewer -c -m XOAUTH2 2>&1)
if grep -A1 '^Available SASL (client side) mechanisms' <<<"$viewer_m" | grep -qw XOAUTH2; then
  ok "saslpluginviewer -c -m XOAUTH2 offers XOAUTH2"
else
  not_ok "saslpluginviewer -c -m XOAUTH2 offers XOAUTH2" "$viewer_m"
fi

# The plugin is private to libsasl2: no shlibs file, no ldconfig trigger.
ctl=$(dpkg-query --control-list libsasl2-modules-mailoauth 2>&1)
if ! grep -qx 'shlibs\|triggers' <<<"$ctl"; then ok "the plugin package has no shlibs file and no ldconfig trigger"
else not_ok "the plugin package has no shlibs file and no ldconfig trigger" "$ctl"; fi

# --- the helper ----------------------------------------------------------------
check "mailoauth --version runs" mailoauth --version
# A request to a closed port: the helper must load its HTTP module from where
# the package put it and report a temporary network failure (75), not a
# missing module.
tmpstore=$(mktemp -d)
: >"$tmpstore/empty.conf"
out=$(MAILOAUTH_CONFIG="$tmpstore/empty.conf" timeout 60 mailoauth --store "$tmpstore/s" login install-test@example.com \
        --client-id 00000000-0000-0000-0000-000000000000 --authority https://127.0.0.1:9/organizations 2>&1 </dev/null)
rc=$?
if [ "$rc" = 75 ]; then ok "the helper loads its HTTP module and reports an unreachable identity provider (75)"
else not_ok "the helper loads its HTTP module and reports an unreachable identity provider (75)" "exit $rc:" "$out"; fi
rm -rf "$tmpstore"

# --- man pages ------------------------------------------------------------------
for page in man1/mailoauth.1.gz man5/mailoauth.conf.5.gz; do
  check "man page /usr/share/man/$page installed" test -s "/usr/share/man/$page"
done

# --- the system user and the store ----------------------------------------------
IFS=: read -r _ _ uid gid _ home shell < <(getent passwd mailoauth)
first_sys=100 last_sys=999
[ -r /etc/adduser.conf ] && . <(grep -E '^(FIRST|LAST)_SYSTEM_UID=' /etc/adduser.conf | sed 's/^FIRST_SYSTEM_UID/first_sys/; s/^LAST_SYSTEM_UID/last_sys/')
if [ -n "${uid:-}" ] && [ "$uid" -ge "$first_sys" ] && [ "$uid" -le "$last_sys" ]; then
  ok "user mailoauth is a system user (uid $uid)"
else
  not_ok "user mailoauth is a system user" "passwd entry: $(getent passwd mailoauth)"
fi
case "${shell:-}" in
  /usr/sbin/nologin|/sbin/nologin|/bin/false|/usr/bin/false) ok "user mailoauth has no login shell ($shell)" ;;
  *) not_ok "user mailoauth has no login shell" "shell: ${shell:-none}" ;;
esac
check "user mailoauth's home is $store" test "${home:-}" = "$store"
check "group mailoauth exists and is the user's group" test "$(getent group mailoauth | cut -d: -f3)" = "${gid:-x}"
meta=$(stat -c '%U:%G %a' "$store" 2>&1)
if [ "$meta" = "mailoauth:mailoauth 700" ]; then ok "$store is mailoauth:mailoauth 0700"
else not_ok "$store is mailoauth:mailoauth 0700" "found: $meta"; fi

# A token file as the agent would write it, then other users try to read it.
secret="$store/install-test.probe"
runuser -u mailoauth -- sh -c "umask 077; echo not-a-secret > '$secret'"
outsiders=(nobody)
getent passwd postfix >/dev/null && outsiders+=(postfix)
for u in "${outsiders[@]}"; do
  if runuser -u "$u" -- ls "$store" >/dev/null 2>&1 || runuser -u "$u" -- cat "$secret" >/dev/null 2>&1; then
    not_ok "user $u cannot list $store or read a file in it"
  else
    ok "user $u cannot list $store or read a file in it"
  fi
done

# Reinstalling (as an upgrade does) keeps the store, its contents and its mode.
if out=$(DEBIAN_FRONTEND=noninteractive apt-get install -y -q --reinstall "${debs[@]}" 2>&1); then
  meta=$(stat -c '%U:%G %a' "$store" 2>&1)
  if [ "$meta" = "mailoauth:mailoauth 700" ] && [ -f "$secret" ] && [ "$(getent passwd mailoauth | cut -d: -f3)" = "$uid" ]; then
    ok "reinstalling keeps the user, the store's owner and mode, and its contents"
  else
    not_ok "reinstalling keeps the user, the store's owner and mode, and its contents" "store: $meta; $(ls -la "$store" 2>&1)"
  fi
else
  not_ok "reinstalling keeps the user, the store's owner and mode, and its contents" "$(tail -n 20 <<<"$out")"
fi
rm -f "$secret"

# --- the agent service and its socket -------------------------------------------
check "the agent's unit $unit is installed" test -f "$unit"
check "the agent's socket unit $socket_unit is installed" test -f "$socket_unit"
if command -v systemd-analyze >/dev/null; then
  # Without man-db, verify complains about Documentation=man:...; nothing else may.
  out=$(systemd-analyze verify "$unit" "$socket_unit" 2>&1 | grep -v "Command 'man ")
  if [ -z "$out" ]; then ok "systemd-analyze verify finds no problem in the units"
  else not_ok "systemd-analyze verify finds no problem in the units" "$out"; fi
else
  ok "systemd-analyze verify finds no problem in the units # SKIP systemd-analyze is not installed"
fi
enabled=$(ls /etc/systemd/system/multi-user.target.wants/mailoauth-agent.service \
             /etc/systemd/system/sockets.target.wants/mailoauth-agent.socket 2>/dev/null)
if [ -n "$enabled" ]; then
  not_ok "the agent service and socket are installed disabled (README.Debian: enabled by the administrator)" "$enabled"
else
  ok "the agent service and socket are installed disabled (README.Debian: enabled by the administrator)"
fi
unit_value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
exec_start=$(unit_value ExecStart)
svc_user=$(unit_value User)
svc_group=$(unit_value Group)
if [ "$svc_user" = mailoauth ] && [ "$svc_group" = mailoauth ]; then ok "the service runs as User=mailoauth Group=mailoauth"
else not_ok "the service runs as User=mailoauth Group=mailoauth" "User=$svc_user Group=$svc_group"; fi

# The agent on the socket unit's socket, squatters, restarts:
# test_socket_activation.py prints a plan and one "ok - ..."/"not ok - ..."
# line per check (numbered here).
run_numbered() {  # run_numbered SCRIPT ARGS...: its TAP lines renumbered into ours
  local script=$1 plan= got=0 line
  shift
  while IFS= read -r line; do
    case "$line" in
      "ok - "*)     got=$((got + 1)); ok "${line#ok - }" ;;
      "not ok - "*) got=$((got + 1)); not_ok "${line#not ok - }" ;;
      1..*)         plan=${line#1..} ;;
      "#"*)         printf '%s\n' "$line" ;;
      *)            printf '# %s\n' "$line" ;;
    esac
  done < <(timeout 300 python3 "$script" "$@" 2>&1)
  if [ -z "$plan" ] || [ "$got" != "$plan" ]; then
    not_ok "$script reported all its checks" "plan: ${plan:-none}, results: $got"
  fi
}
activation_test=$(dirname "$0")/test_socket_activation.py
run_numbered "$activation_test"

# --- Postfix, chrooted, relaying through the agent as README.Debian sets it up --
# test_installed_postfix.py prints a plan and one "ok - ..."/"not ok - ..."
# line per check (numbered here), with the unit's command line and user.
postfix_test=$(dirname "$0")/test_installed_postfix.py
run_numbered "$postfix_test" --exec-start "$exec_start" --user "$svc_user" --group "$svc_group"

# --- purge ----------------------------------------------------------------------
if out=$(DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${packages[@]}" 2>&1); then
  ok "apt-get purge ${packages[*]}"
else
  not_ok "apt-get purge ${packages[*]}" "$(tail -n 20 <<<"$out")"
fi
check "purge removed the plugin" test ! -e "$plugin"
check "purge removed $store" test ! -e "$store"
check "purge removed the units" test ! -e "$unit" -a ! -e "$socket_unit"
exit "$failed"
