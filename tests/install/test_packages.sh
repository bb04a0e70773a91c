#!/usr/bin/env bash
# Installation test of the Debian packages: installs the given .debs with
# apt-get, checks what they put on the machine (the plugin seen by libsasl2,
# the system user, the private store, the agent run with its service's own
# command line and user, Postfix with its smtp client chrooted relaying
# through the agent: test_installed_postfix.py), then purges them and
# removes what they left (the system user, when this test created it).  TAP
# on stdout.  Run as root:
#
#   tests/install/test_packages.sh mailoauth_*.deb libsasl2-modules-mailoauth_*.deb
#
# systemd is not running in CI, so the agent is started the way systemd
# would start it: the unit's ExecStart=, as its User=/Group=, umask 077, a
# clean environment; its own PID is the one signalled.
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
store=/var/lib/mailoauth
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
plugin=/usr/lib/$multiarch/sasl2/libmailoauth.so
user_existed=
getent passwd mailoauth >/dev/null && user_existed=1
agent_pid=
cleanup() {
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then kill -KILL "$agent_pid"; fi
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

# --- the agent service ---------------------------------------------------------
check "the agent's unit $unit is installed" test -f "$unit"
if command -v systemd-analyze >/dev/null; then
  # Without man-db, verify complains about Documentation=man:...; nothing else may.
  out=$(systemd-analyze verify "$unit" 2>&1 | grep -v "Command 'man ")
  if [ -z "$out" ]; then ok "systemd-analyze verify finds no problem in the unit"
  else not_ok "systemd-analyze verify finds no problem in the unit" "$out"; fi
else
  ok "systemd-analyze verify finds no problem in the unit # SKIP systemd-analyze is not installed"
fi
if [ -e /etc/systemd/system/multi-user.target.wants/mailoauth-agent.service ]; then
  not_ok "the agent service is installed disabled (README.Debian: enabled by the administrator)"
else
  ok "the agent service is installed disabled (README.Debian: enabled by the administrator)"
fi
unit_value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
exec_start=$(unit_value ExecStart)
svc_user=$(unit_value User)
svc_group=$(unit_value Group)
if [ "$svc_user" = mailoauth ] && [ "$svc_group" = mailoauth ]; then ok "the service runs as User=mailoauth Group=mailoauth"
else not_ok "the service runs as User=mailoauth Group=mailoauth" "User=$svc_user Group=$svc_group"; fi

# The socket name: agent_socket from the configuration, else the default.
socket=@mailoauth-agent
if [ -r /etc/mailoauth.conf ]; then
  s=$(sed -n 's/^[[:space:]]*agent_socket[[:space:]]*=[[:space:]]*//p' /etc/mailoauth.conf | tail -n 1)
  [ -n "$s" ] && socket=$s
fi
svc_type=$(unit_value Type)
listener() { ss -xlpn | grep -F -- "$socket " | sed -n 's/.*pid=\([0-9]*\),.*/\1/p' | head -n 1; }
# Type=forking: the started process exits once the daemon listens, and the
# daemon is the main process.  Otherwise the started process must be the one
# listening (systemd would take its exit for the service's end).
listening() {
  local pid; pid=$(listener)
  [ -n "$pid" ] || return 1
  if [ "$svc_type" = forking ]; then
    [ "$pid" != "$started_pid" ] && ! kill -0 "$started_pid" 2>/dev/null && agent_pid=$pid
  else
    [ "$pid" = "$agent_pid" ]
  fi
}

read -r -a argv <<<"$exec_start"
log=$(mktemp)
# Like systemd: setuid/setgid and exec (no PAM session, no extra process),
# umask from UMask=, an environment with nothing but PATH.
( umask 077; cd /; exec env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    setpriv --reuid="$svc_user" --regid="$svc_group" --init-groups -- "${argv[@]}" ) >"$log" 2>&1 </dev/null &
agent_pid=$! started_pid=$!
if wait_for 100 listening; then
  ok "the agent ($exec_start) listens on $socket"
  owner=$(ps -o user= -p "$agent_pid" | tr -d ' ')
  if [ "$owner" = mailoauth ]; then ok "the agent runs as mailoauth"; else not_ok "the agent runs as mailoauth" "ps says: $owner"; fi
  # A request from a caller no account allows (nobody) gets an answer (an
  # error), not silence.
  reply=$(timeout 10 runuser -u nobody -- python3 - "$socket" <<'PY' 2>&1
import socket, sys
name = sys.argv[1]
addr = "\0" + name[1:] if name.startswith("@") else name
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(8)
s.connect(addr)
s.sendall(b"version=1\naccount=install-test@example.com\nprotocol=smtp\nhost=localhost\nmechanism=XOAUTH2\n\n")
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
    if b"\n\n" in data:
        break
sys.stdout.write(data.decode("utf-8", "replace"))
PY
)
  if grep -q '^error=' <<<"$reply"; then
    ok "the agent answers a caller it does not allow with an error"
    sed 's/^/# reply: /' <<<"$reply"
  else not_ok "the agent answers a caller it does not allow with an error" "reply: $reply"; fi
  kill -TERM "$agent_pid"
  t=100; while kill -0 "$agent_pid" 2>/dev/null && [ $t -gt 0 ]; do sleep 0.1; t=$((t - 1)); done
  if kill -0 "$agent_pid" 2>/dev/null; then
    not_ok "the agent exits on SIGTERM" "still running after 10 s; log: $(cat "$log")"
  else
    rc=0; [ "$agent_pid" = "$started_pid" ] && { wait "$agent_pid"; rc=$?; }
    if [ "$rc" = 0 ] || [ "$rc" = 143 ]; then ok "the agent exits on SIGTERM (status $rc)"
    else not_ok "the agent exits on SIGTERM" "exit status $rc; log: $(cat "$log")"; fi
    agent_pid=
    if ss -xln | grep -qF -- "$socket "; then not_ok "the agent's socket is gone after it exits" "$(ss -xln | grep -F -- "$socket ")"
    else ok "the agent's socket is gone after it exits"; fi
  fi
else
  running=no; kill -0 "$agent_pid" 2>/dev/null && running=yes
  stray=$(listener)
  not_ok "the agent ($exec_start) listens on $socket" \
    "started pid $started_pid still running: $running; pid listening on $socket: ${stray:-none} (Type=${svc_type:-simple})" \
    "its output:" "$(cat "$log")"
  # A daemon that detached from the pid we started: ours to stop all the same.
  if [ -n "$stray" ] && [ "$(ps -o user= -p "$stray" | tr -d ' ')" = mailoauth ]; then
    kill -TERM "$stray" 2>/dev/null
    t=50; while kill -0 "$stray" 2>/dev/null && [ $t -gt 0 ]; do sleep 0.1; t=$((t - 1)); done
  fi
  # The same number of results whatever happens.
  for t in "the agent runs as mailoauth" "the agent answers a caller it does not allow with an error" \
           "the agent exits on SIGTERM" "the agent's socket is gone after it exits"; do
    not_ok "$t # not run: the agent did not start"
  done
fi
rm -f "$log"

# --- Postfix, chrooted, relaying through the agent as README.Debian sets it up --
# test_installed_postfix.py prints a plan and one "ok - ..."/"not ok - ..."
# line per check (numbered here), with the unit's command line and user.
postfix_test=$(dirname "$0")/test_installed_postfix.py
plan= got=0
while IFS= read -r line; do
  case "$line" in
    "ok - "*)     got=$((got + 1)); ok "${line#ok - }" ;;
    "not ok - "*) got=$((got + 1)); not_ok "${line#not ok - }" ;;
    1..*)         plan=${line#1..} ;;
    "#"*)         printf '%s\n' "$line" ;;
    *)            printf '# %s\n' "$line" ;;
  esac
done < <(timeout 300 python3 "$postfix_test" --exec-start "$exec_start" --user "$svc_user" --group "$svc_group" 2>&1)
if [ -z "$plan" ] || [ "$got" != "$plan" ]; then
  not_ok "$postfix_test reported all its checks" "plan: ${plan:-none}, results: $got"
fi

# --- purge ----------------------------------------------------------------------
if out=$(DEBIAN_FRONTEND=noninteractive apt-get purge -y -q "${packages[@]}" 2>&1); then
  ok "apt-get purge ${packages[*]}"
else
  not_ok "apt-get purge ${packages[*]}" "$(tail -n 20 <<<"$out")"
fi
check "purge removed the plugin" test ! -e "$plugin"
check "purge removed $store" test ! -e "$store"
check "purge removed the unit" test ! -e "$unit"
exit "$failed"
