#!/usr/bin/env bash
# deb-systemd.sh — tests the jetai .debs for real (issue 6); run by
# `make test-deb` after `make deb` for both architectures, and by CI.
#
# amd64: a Debian root file system (debootstrap, cached as a tarball in
# $JETAI_DEB_CACHE) boots a real systemd as PID 1 in its own PID, mount, UTS,
# IPC and cgroup namespaces (chroot; proc, /sys read-only, /dev, tmpfs /run
# and a private cgroup2 tree). It shares the host's network, so the REST
# socket is reached on the host's loopback. The package is installed with
# apt, its dependencies with it, and driven through systemctl, journalctl,
# curl and jetai-ctl: socket activation, STATUS, reload, journal fields, the
# admin socket's group, restart on SIGKILL, the watchdog, draining stop,
# upgrade, remove and purge. lintian checks both packages.
#
# arm64: the package is extracted and its jetaid runs under
# qemu-aarch64-static: --version, and one generation through a runner.
#
# Needs root, debootstrap, unshare/nsenter (util-linux), lintian, dpkg-deb,
# curl, qemu-user-static and the aarch64 cross libraries (.ci/run installs
# them). A missing tool or model is a failure, never a skip.
#
# Environment: JETAI_TEST_MODEL (stories260K.gguf), JETAI_DEB_CACHE (root
# file system cache, default /var/cache/jetai-deb-test), DEB_AMD64 and
# DEB_ARM64 (default dist/jetai_VERSION_ARCH.deb), KEEP=1 keeps the work
# directory for inspection.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

passed=0
ok() { passed=$((passed + 1)); echo "ok $passed - $*"; }
fail() {
	echo "FAIL: $*" >&2
	exit 1
}
# check DESC CMD...: CMD must succeed.
check() {
	local desc=$1
	shift
	"$@" || fail "$desc"
	ok "$desc"
}
# wait_for SECONDS DESC CMD...: retries CMD every 0.2 s until it succeeds.
wait_for() {
	local limit=$1 desc=$2 end
	shift 2
	end=$((SECONDS + limit))
	until "$@"; do
		[ $SECONDS -lt $end ] || fail "$desc (not within ${limit}s)"
		sleep 0.2
	done
}

# --- prerequisites -----------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "must run as root (debootstrap, namespaces, chroot)"
for tool in debootstrap unshare nsenter lintian dpkg-deb curl qemu-aarch64-static gzip; do
	command -v "$tool" >/dev/null || fail "$tool not found (apt-get install debootstrap lintian qemu-user-static curl)"
done
model=${JETAI_TEST_MODEL:-$(cd .. && pwd)/shared/models/stories260K.gguf}
[ -f "$model" ] || fail "model $model not found (JETAI_TEST_MODEL)"
version=$(packaging/deb-version.sh)
deb=${DEB_AMD64:-dist/jetai_${version}_amd64.deb}
deb_arm=${DEB_ARM64:-dist/jetai_${version}_arm64.deb}
for f in "$deb" "$deb_arm"; do
	[ -f "$f" ] || fail "$f not found: run make deb ARCH=amd64 and ARCH=arm64 first"
done
[ -d /usr/aarch64-linux-gnu/lib ] || fail "/usr/aarch64-linux-gnu missing (apt-get install g++-aarch64-linux-gnu)"
cache=${JETAI_DEB_CACHE:-/var/cache/jetai-deb-test}
T0=$SECONDS

work=$(mkdir -p "$cache" && mktemp -d "$cache/run.XXXXXX")
root=$work/root
ct_pid=
cg=
teardown() {
	local rc=$?
	if [ $rc -ne 0 ] && [ -n "$ct_pid" ]; then
		echo "--- jetaid journal (last 60 lines) ---" >&2
		in_ct journalctl -u jetaid -u jetaid.socket -u jetaid-admin.socket --no-pager -n 60 >&2 || true
		echo "$passed passed, 1 failed"
	fi
	if [ -n "$ct_pid" ] && kill -0 "$ct_pid" 2>/dev/null; then
		in_ct systemctl poweroff --no-block >/dev/null 2>&1 || true
		for _ in $(seq 50); do kill -0 "$ct_pid" 2>/dev/null || break; sleep 0.2; done
		# Killing PID 1 of the namespace kills everything in it.
		kill -KILL "$ct_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$ct_pid" 2>/dev/null || break; sleep 0.1; done
	fi
	if [ -n "$cg" ] && [ -d "$cg" ]; then
		find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
	fi
	# The container's mounts lived in its own mount namespace, gone with it:
	# below $root there are only the files of the root file system.
	if [ "${KEEP:-}" = 1 ]; then
		echo "kept $work" >&2
	elif [ -n "$ct_pid" ] && kill -0 "$ct_pid" 2>/dev/null; then
		echo "container $ct_pid still alive; leaving $work" >&2
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap teardown EXIT

# in_ct CMD...: runs CMD inside the container, as root.
in_ct() {
	nsenter --target "$ct_pid" --mount --pid --uts --ipc --cgroup --root --wd -- \
		/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 \
		SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive "$@"
}
# as_user USER CMD...: runs CMD inside the container as USER (with its groups).
as_user() {
	local user=$1
	shift
	in_ct setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"
}
prop() { in_ct systemctl show -p "$2" --value "$1"; }
main_pid() { prop jetaid.service MainPID; }
active() { [ "$(prop "$1" ActiveState)" = "${2:-active}" ]; }
# listening PORT: a TCP socket listens on 127.0.0.1:PORT (read from /proc,
# so that looking does not activate the socket).
listening() {
	local hex
	hex=$(printf '0100007F:%04X' "$1")
	awk -v a="$hex" '$2 == a && $4 == "0A" { found = 1 } END { exit !found }' /proc/net/tcp
}

# --- lintian (both packages, on the host) --------------------------------------
# Accepted warnings, each with its reason; any other warning or any error
# fails the test.
#   (none yet)
accepted_lintian=()
for f in "$deb" "$deb_arm"; do
	out=$(lintian --no-tag-display-limit --display-info "$f" 2>&1) || true
	echo "$out" | sed "s|^|lintian $(basename "$f"): |"
	if grep -q '^E: ' <<<"$out"; then
		fail "lintian reports errors for $f"
	fi
	while read -r tag; do
		[ -n "$tag" ] || continue
		printf '%s\n' "${accepted_lintian[@]}" | grep -qx "$tag" || fail "lintian warning $tag for $f is not on the accepted list"
	done < <(grep '^W: ' <<<"$out" | awk '{print $3}' | sort -u)
	ok "lintian: no errors and no unaccepted warnings for $(basename "$f")"
done

# --- arm64: the packaged binaries under qemu -----------------------------------
arm=$work/arm64
mkdir -p "$arm"
dpkg-deb -x "$deb_arm" "$arm"
check "arm64 package holds aarch64 binaries" \
	grep -q 'Machine:.*AArch64' <(LC_ALL=C readelf -h "$arm/usr/bin/jetaid")
qemu=(qemu-aarch64-static -L /usr/aarch64-linux-gnu)
got=$("${qemu[@]}" "$arm/usr/bin/jetaid" --version)
check "arm64 jetaid --version under qemu says $version (got: $got)" [ "$got" = "jetaid $version" ]
go build -o "$work/qemurunner" ./packaging/test/qemurunner
if ! "$work/qemurunner" -model "$model" -tokens 24 -- "${qemu[@]}" "$arm/usr/bin/jetaid" \
	>"$work/arm64-gen.out" 2>"$work/arm64-gen.log"; then
	tail -20 "$work/arm64-gen.log" >&2
	fail "arm64 runner generation under qemu"
fi
ok "arm64 runner under qemu generates from stories260K.gguf: $(tail -1 "$work/arm64-gen.out")"

# --- boot systemd in a Debian root file system ---------------------------------
tarball=$(packaging/test/rootfs.sh "$cache")
mkdir -p "$root"
tar -C "$root" --numeric-owner --xattrs -xzf "$tarball"
# Units that would reach the host's kernel (sysctl, binfmt, modules, audit,
# kernel file systems) or its consoles, and timers that would go to the
# network: masked in the container.
for u in systemd-binfmt.service proc-sys-fs-binfmt_misc.automount proc-sys-fs-binfmt_misc.mount \
	systemd-sysctl.service systemd-modules-load.service systemd-journald-audit.socket \
	systemd-pstore.service systemd-firstboot.service systemd-remount-fs.service \
	sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount sys-fs-fuse-connections.mount \
	console-getty.service getty@tty1.service getty-static.service serial-getty@.service \
	apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer; do
	ln -sf /dev/null "$root/etc/systemd/system/$u"
done
# The REST socket on a free port of the shared loopback, through the drop-in
# that README.Debian documents for changing the address. It is in place
# before the package is installed, so postinst starts the socket on it.
port=
for _ in $(seq 50); do
	p=$((20000 + RANDOM % 20000))
	if ! listening "$p"; then
		port=$p
		break
	fi
done
[ -n "$port" ] || fail "no free loopback port"
mkdir -p "$root/etc/systemd/system/jetaid.socket.d"
printf '[Socket]\nListenStream=\nListenStream=127.0.0.1:%s\n' "$port" >"$root/etc/systemd/system/jetaid.socket.d/test-port.conf"
cp "$deb" "$root/root/jetai.deb"
cp "$model" "$root/root/stories260K.gguf"
api=http://127.0.0.1:$port

# A cgroup2 subtree of our own, so the container's systemd manages that and
# nothing of the host's cgroups.
cgbase=
for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
	if [ "$(stat -fc %T "$d" 2>/dev/null)" = cgroup2fs ]; then
		cgbase=$d
		break
	fi
done
[ -n "$cgbase" ] || fail "no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified"
cg=$cgbase$(awk -F: '$1 == "0" { print $3 }' /proc/self/cgroup | sed 's|/$||')/jetai-deb-test-$$
mkdir "$cg"

boot='set -e
root=$1
mount --bind "$root" "$root"
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount -o remount,bind,ro "$root/sys"
mount -t cgroup2 -o nsdelegate cgroup2 "$root/sys/fs/cgroup"
mount --rbind /dev "$root/dev"
exec chroot "$root" /usr/bin/env -i container=jetai-test PATH=/usr/sbin:/usr/bin:/sbin:/bin /lib/systemd/systemd --system'
(
	echo "$BASHPID" >"$cg/cgroup.procs"
	exec unshare --pid --fork --mount --uts --ipc --cgroup --propagation private -- sh -c "$boot" sh "$root"
) >"$work/console.log" 2>&1 &
unshare_pid=$!
wait_for 10 "unshare starts systemd" pgrep -P "$unshare_pid" >/dev/null
ct_pid=$(pgrep -P "$unshare_pid")
booted() {
	local s
	s=$(in_ct systemctl is-system-running 2>/dev/null) || true
	[ "$s" = running ] || [ "$s" = degraded ]
}
wait_for 60 "systemd boots in the container" booted
ok "systemd $(in_ct systemctl --version | head -1 | awk '{print $2}') booted as PID 1 in $root ($(in_ct systemctl is-system-running || true))"

# --- install --------------------------------------------------------------------
if in_ct dpkg -s adduser >/dev/null 2>&1; then
	fail "adduser is in the root file system already; the install would not show that apt brings it"
fi
if ! in_ct apt-get install -y --no-install-recommends /root/jetai.deb </dev/null >"$work/install.log" 2>&1; then
	cat "$work/install.log" >&2
	fail "apt-get install ./jetai.deb"
fi
ok "apt-get install ./jetai_${version}_amd64.deb (with its dependencies)"
check "dependency adduser installed by apt" in_ct dpkg -s adduser >/dev/null
IFS=: read -r _ _ uid _ _ home shell < <(in_ct getent passwd jetai)
check "system user jetai (uid $uid < 1000, home $home, shell $shell)" \
	[ "$uid" -lt 1000 -a "$home:$shell" = /var/lib/jetai:/usr/sbin/nologin ]
check "groups jetai and render exist" in_ct getent group jetai render >/dev/null
for u in jetaid.socket jetaid-admin.socket; do
	check "$u enabled and listening after install" \
		[ "$(in_ct systemctl is-enabled $u):$(prop $u ActiveState)" = enabled:active ]
done
check "jetaid.service not started by the install (socket activation)" active jetaid.service inactive
check "REST socket listens on 127.0.0.1:$port" listening "$port"
check "admin socket /run/jetai/admin.sock: socket, mode 660, root:jetai" \
	[ "$(in_ct stat -c '%F %a %U:%G' /run/jetai/admin.sock)" = "socket 660 root:jetai" ]
check "/var/lib/jetai and /var/cache/jetai belong to jetai" \
	[ "$(in_ct stat -c '%U:%G %a' /var/lib/jetai /var/lib/jetai/models /var/cache/jetai | tr '\n' ' ')" = "jetai:jetai 750 jetai:jetai 755 jetai:jetai 750 " ]
check "conffile /etc/jetai/jetai.hcl is packaging/jetai.hcl" cmp -s "$root/etc/jetai/jetai.hcl" packaging/jetai.hcl
check "/etc/jetai/jetai.hcl is registered as a conffile" \
	grep -q '^ /etc/jetai/jetai.hcl ' <(in_ct dpkg-query -W -f='${Conffiles}\n' jetai)
check "bash completion installed" in_ct test -s /usr/share/bash-completion/completions/jetai-ctl
check "man pages and README.Debian installed" \
	in_ct test -s /usr/share/man/man8/jetaid.8.gz -a -s /usr/share/man/man1/jetai-ctl.1.gz -a -s /usr/share/doc/jetai/README.Debian

# --- unit checks ------------------------------------------------------------------
units=(/lib/systemd/system/jetaid.service /lib/systemd/system/jetaid.socket /lib/systemd/system/jetaid-admin.socket)
verify=$(in_ct systemd-analyze verify "${units[@]}" 2>&1) || fail "systemd-analyze verify failed: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify is not clean: $verify"
ok "systemd-analyze verify: clean for jetaid.service, jetaid.socket, jetaid-admin.socket"
in_ct systemd-analyze security --no-pager jetaid.service >"$work/security.txt" 2>&1 || true
exposure=$(grep -o 'Overall exposure level for jetaid.service: [0-9.]*' "$work/security.txt" | awk '{print $NF}')
echo "systemd-analyze security jetaid.service:"
grep -E '^✗|Overall' "$work/security.txt" | sed 's/^/  /'
check "systemd-analyze security: exposure $exposure (at most 2.5)" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.5) }'

echo "setup: $((SECONDS - T0)) s"
