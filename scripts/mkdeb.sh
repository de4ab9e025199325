#!/bin/sh
# mkdeb.sh BIN VERSION OUTDIR — build OUTDIR/walship_VERSION_ARCH.deb with dpkg-deb (make deb).
# Depends: is what dpkg-shlibdeps computes for the libraries BIN links, plus the two it
# dlopens at first use (walship/storage/curl_dl.c: libcurl.so.4, walship/pq_dl.c: libpq.so.5),
# which no ELF tool can see. Run from the source root.
set -eu
BIN=$1 VERSION=$2 OUT=$3
ARCH=$(dpkg --print-architecture)
STAGE=$OUT/deb-stage
ROOT=$STAGE/root
DEB=$OUT/walship_${VERSION}_${ARCH}.deb
rm -rf "$STAGE" && mkdir -p "$ROOT/DEBIAN"

d() { install -d -m 0755 "$ROOT/$1"; }
f() { install -m "$1" "$2" "$ROOT/$3"; }
d usr/bin; d usr/share/man/man1; d usr/share/doc/walship/examples; d usr/lib/systemd/system
d usr/share/bash-completion/completions; d usr/share/lintian/overrides
install -m 0755 -s "$BIN" "$ROOT/usr/bin/walship"
gzip -9n <docs/walship.1 >"$ROOT/usr/share/man/man1/walship.1.gz"
chmod 0644 "$ROOT/usr/share/man/man1/walship.1.gz"
f 0644 README.md usr/share/doc/walship/README.md
for doc in docs/*.md; do f 0644 "$doc" "usr/share/doc/walship/$(basename "$doc")"; done
f 0644 conf/walship.conf.sample usr/share/doc/walship/examples/walship.conf.sample
f 0644 debian/copyright usr/share/doc/walship/copyright
# the units and cron example name the packaged binary
sed 's|/usr/local/bin/walship|/usr/bin/walship|g' contrib/walship-basebackup.service \
	>"$ROOT/usr/lib/systemd/system/walship-basebackup.service"
f 0644 contrib/walship-basebackup.timer usr/lib/systemd/system/walship-basebackup.timer
sed 's|^PATH=/usr/local/bin:|PATH=|' contrib/walship-basebackup.cron \
	>"$ROOT/usr/share/doc/walship/examples/walship-basebackup.cron"
chmod 0644 "$ROOT"/usr/lib/systemd/system/* "$ROOT"/usr/share/doc/walship/examples/*
f 0644 contrib/walship.bash-completion usr/share/bash-completion/completions/walship
f 0644 debian/lintian-overrides usr/share/lintian/overrides/walship
sed "s/@VERSION@/$VERSION/; s/@DATE@/$(date -R -d @"${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")/" \
	debian/changelog.in | gzip -9n >"$ROOT/usr/share/doc/walship/changelog.gz"
chmod 0644 "$ROOT/usr/share/doc/walship/changelog.gz"

# dpkg-shlibdeps wants a debian/control in its working directory
mkdir -p "$STAGE/src/debian"
printf 'Source: walship\n\nPackage: walship\nArchitecture: any\n' >"$STAGE/src/debian/control"
shlibs=$(cd "$STAGE/src" && dpkg-shlibdeps -O "$(cd "$OLDPWD" && realpath "$ROOT/usr/bin/walship")" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
# dlopened: the packages that ship these sonames here. Unversioned: the soname is the ABI
# walship's shims ask for, and every libcurl.so.4 / libpq.so.5 Debian 12 can install has the
# functions they look up (a missing one is reported by the shim when it is first used).
dlopened=""
for so in libcurl.so.4 libpq.so.5; do
	path=$(ldconfig -p | awk -v so="$so" '$1 == so && /x86-64|64bit/ { print $NF; exit }')
	[ -n "$path" ] || { echo "mkdeb: $so is not installed here" >&2; exit 1; }
	pkg=$(dpkg -S "$(realpath "$path")" | sed 's/:.*//; s/,.*//' | head -1)
	dlopened="$dlopened, $pkg"
done
size=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<CTRL
Package: walship
Version: $VERSION
Architecture: $ARCH
Maintainer: walship developers <walship@example.org>
Installed-Size: $size
Depends: $shlibs$dlopened
Section: database
Priority: optional
Homepage: https://example.org/walship
Description: continuous WAL archiving and point-in-time recovery for PostgreSQL
 walship is PostgreSQL's archive_command and restore_command: it checks,
 compresses and stores WAL segments in a local directory or S3, takes base
 backups over the replication protocol and restores a cluster to a time, LSN,
 xid or restore point. libcurl (S3) and libpq (basebackup) are loaded when
 first used.
CTRL
(cd "$ROOT" && find . -type f ! -path './DEBIAN/*' -printf '%P\n' | sort | xargs md5sum) >"$ROOT/DEBIAN/md5sums"
chmod 0644 "$ROOT/DEBIAN/control" "$ROOT/DEBIAN/md5sums"
dpkg-deb --root-owner-group -Zxz --build "$ROOT" "$DEB" >/dev/null
echo "$DEB"
