#!/bin/sh
# test-deb.sh [DEB] — install the walship .deb into a clean Debian 12 root (debootstrap
# --variant=minbase bookworm: the base of the official postgres image) with apt resolving its
# dependencies, then run walship --version, a push and a fetch of a real WAL segment inside it.
# Needs root and the Debian mirror. The bootstrapped root is cached in build/debroot-cache.tar.
# Prints TAP.
set -eu
DEB=${1:-$(ls build/walship_*_"$(dpkg --print-architecture)".deb | tail -1)}
CACHE=${DEBROOT_CACHE:-build/debroot-cache.tar}
WORK=$(mktemp -d /tmp/walship-debroot.XXXXXX)
ROOT=$WORK/root
chmod 0755 "$WORK" # the scratch cluster below belongs to postgres
MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
mounted=""
cleanup() {
	[ -z "$mounted" ] || umount "$ROOT/proc" 2>/dev/null || umount -l "$ROOT/proc" || true
	rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
n=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); echo "not ok $n - $1"; shift; for l in "$@"; do echo "# $l"; done; fail=1; }
fail=0
command -v debootstrap >/dev/null || apt-get install -y --no-install-recommends debootstrap >/dev/null

t0=$(date +%s)
mkdir -p "$ROOT"
if [ -f "$CACHE" ]; then
	tar -C "$ROOT" -xf "$CACHE"
	echo "# debootstrap root from the cache $CACHE ($(du -m "$CACHE" | cut -f1) MB): $(($(date +%s) - t0)) s"
else
	debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
	mkdir -p "$(dirname "$CACHE")"
	tar -C "$ROOT" -cf "$CACHE" .
	echo "# debootstrap --variant=minbase bookworm: $(($(date +%s) - t0)) s, $(du -sm "$ROOT" | cut -f1) MB (cached in $CACHE)"
fi
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
cp "$DEB" "$ROOT/tmp/walship.deb"

t1=$(date +%s)
if chroot "$ROOT" sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /tmp/walship.deb' \
	>"$WORK/apt.log" 2>&1; then
	ok "apt-get install /tmp/walship.deb in a clean bookworm root ($(($(date +%s) - t1)) s)"
else
	not_ok "apt-get install /tmp/walship.deb" "$(tail -15 "$WORK/apt.log")"
fi
pulled=$(awk '/^The following NEW packages/ { on = 1; next } on && /^  / { printf "%s", $0; next } { on = 0 }' "$WORK/apt.log" | tr -s ' ')
echo "# apt pulled in:$pulled"

out=$(chroot "$ROOT" walship --version 2>&1) || true
case $out in
*"libcurl:  loaded"*"libpq:    loaded"*) ok "walship --version in the root: libcurl and libpq load" ;;
*) not_ok "walship --version in the root" "$out" ;;
esac
echo "$out" | sed 's/^/# /'

# a real WAL segment: a scratch PostgreSQL 15 cluster made outside, copied in
id postgres >/dev/null
install -d -o postgres "$WORK/pg"
su postgres -c "$PG_BIN/initdb -D $WORK/pg/data -A trust >/dev/null"
seg=$(ls "$WORK/pg/data/pg_wal" | grep -E '^[0-9A-F]{24}$' | head -1)
cp -a "$WORK/pg/data" "$ROOT/var/tmp/pgdata"
chroot "$ROOT" mkdir -p /var/tmp/repo
if out=$(chroot "$ROOT" walship --repo /var/tmp/repo --async off push "/var/tmp/pgdata/pg_wal/$seg" 2>&1); then
	ok "walship push $seg into a posix repository inside the root"
else
	not_ok "walship push in the root" "$out"
fi
if out=$(chroot "$ROOT" walship --repo /var/tmp/repo --fetch-prefetch 0 fetch "$seg" /var/tmp/fetched 2>&1) &&
	cmp -s "$WORK/pg/data/pg_wal/$seg" "$ROOT/var/tmp/fetched"; then
	ok "walship fetch in the root returns the segment byte for byte"
else
	not_ok "walship fetch in the root" "$out"
fi
echo "# total: $(($(date +%s) - t0)) s"
echo "1..$n"
exit $fail
