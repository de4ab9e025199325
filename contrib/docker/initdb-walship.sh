#!/bin/sh
# Run once by the official image's entrypoint on a new cluster: the replication user the
# basebackup sidecar connects as. Its password is the one in secrets/walship_pgpass
# (host:port:db:user:password); set it with ALTER ROLE walship PASSWORD '...' after start,
# or here from a mounted secret.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
CREATE ROLE walship WITH LOGIN REPLICATION;
SQL
