#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks that import into it: a fresh data
# directory in a temp dir, listening only on a unix socket in that same dir (no TCP port, so it
# never collides with another server on the machine), stopped and deleted at the end.
#
#   .ci/postgres.sh npm test                  # run a command with a server around it
#   source .ci/postgres.sh && nexure_pg_start # or start one in this shell (exports PG*) ...
#   npm test; npm run bench:import            # ... use it ...
#   nexure_pg_stop                            # ... and stop it (the data dir goes with it)
#
# The server's binaries are found on PATH or in Debian's /usr/lib/postgresql/<version>/bin; when
# there are none and we are root, Debian's `postgresql` package is installed. PostgreSQL refuses
# to run as root, so as root the server runs as the `postgres` user (or `nobody`). Extra
# arguments to nexure_pg_start are passed to the server (`-c fsync=off` for a quick local run).
# The connection is exported the way every PostgreSQL client reads it: PGHOST (the socket dir),
# PGPORT, PGUSER (a superuser, trust auth: nothing but this machine can reach the socket) and
# PGDATABASE.

nexure_pg_bindir () {
  local dir
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

nexure_pg_install () {
  if [ "$(id -u)" -ne 0 ]; then
    echo "postgres.sh: PostgreSQL is not installed, and installing it needs root: apt-get install postgresql" >&2
    return 1
  fi
  echo "postgres.sh: installing PostgreSQL from the system's packages" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
}

nexure_pg_start () {
  if [ -n "${NEXURE_PG_DIR:-}" ]; then
    echo "postgres.sh: a server is already running in $NEXURE_PG_DIR" >&2
    return 1
  fi
  local bindir user=""
  bindir=$(nexure_pg_bindir) || { nexure_pg_install && bindir=$(nexure_pg_bindir); } || {
    echo "postgres.sh: no PostgreSQL binaries found (initdb, pg_ctl)" >&2
    return 1
  }
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/nexure-pg.XXXXXX") || return 1
  chmod 755 "$dir"
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    user=postgres
    id -u postgres >/dev/null 2>&1 || user=nobody
    chown "$user" "$dir"
    run=("$(PATH="$PATH:/usr/sbin:/sbin" command -v runuser || echo runuser)" -u "$user" --)
  fi
  if ! "${run[@]}" "$bindir/initdb" -D "$dir/data" -U nexure -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1; then
    echo "postgres.sh: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    rm -rf "$dir"
    return 1
  fi
  # listen_addresses='': the unix socket in $dir only.
  local options="-c listen_addresses='' -k $dir -p 5432 $*"
  if ! "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -o "$options" -w -t 60 start >/dev/null; then
    echo "postgres.sh: the server did not start:" >&2
    cat "$dir/server.log" >&2
    rm -rf "$dir"
    return 1
  fi
  export NEXURE_PG_DIR=$dir NEXURE_PG_BINDIR=$bindir NEXURE_PG_USER=$user
  export PGHOST=$dir PGPORT=5432 PGUSER=nexure PGDATABASE=postgres
  echo "postgres.sh: $("$bindir/postgres" --version) on $dir/.s.PGSQL.5432" >&2
}

nexure_pg_stop () {
  [ -n "${NEXURE_PG_DIR:-}" ] || return 0
  local run=()
  [ -n "${NEXURE_PG_USER:-}" ] && run=("$(PATH="$PATH:/usr/sbin:/sbin" command -v runuser || echo runuser)" -u "$NEXURE_PG_USER" --)
  "${run[@]}" "$NEXURE_PG_BINDIR/pg_ctl" -D "$NEXURE_PG_DIR/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
    echo "postgres.sh: pg_ctl stop failed; see $NEXURE_PG_DIR/server.log" >&2
  rm -rf "$NEXURE_PG_DIR"
  unset NEXURE_PG_DIR NEXURE_PG_BINDIR NEXURE_PG_USER PGHOST PGPORT PGUSER PGDATABASE
}

# Executed rather than sourced: run the command line with a server around it.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  if [ $# -eq 0 ]; then
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
  fi
  nexure_pg_start || exit 1
  trap nexure_pg_stop EXIT
  trap 'exit 130' INT TERM
  "$@"
  exit $?
fi
