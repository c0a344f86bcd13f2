# A throwaway PostgreSQL cluster for the monitoring service's tests (tests/monitor), sourced by
# .ci/run and usable by hand:
#
#   . .ci/postgres.sh && start_test_postgres && export STALWART_TEST_POSTGRES
#   ... run the tests ...
#   stop_test_postgres
#
# start_test_postgres installs Debian's `postgresql` when no server binaries are found (root and
# apt-get needed), initialises a cluster in a new temporary directory (owned by the `postgres` user
# when run as root: the server refuses to run as root), starts it on 127.0.0.1 on a free port with
# a random password, creates the database `stalwart_test` and sets STALWART_TEST_POSTGRES to its
# SQLAlchemy URL. It returns non-zero, with a note on stderr, when any step fails; the caller then
# goes on without PostgreSQL (those tests skip). stop_test_postgres stops the server and deletes
# the directory; it never fails.

_stalwart_pg_dir=""
_stalwart_pg_bin=""

_stalwart_pg_note() { echo "note: PostgreSQL tests will be skipped: $*" >&2; }

# the newest server's bin directory (Debian keeps them off PATH, in /usr/lib/postgresql/<major>/bin)
_stalwart_pg_find_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/createdb" ]; then echo "$d"; return 0; fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 && command -v createdb >/dev/null 2>&1; then
    dirname "$(readlink -f "$(command -v initdb)")"
    return 0
  fi
  return 1
}

# run a server binary as the cluster's owner: `postgres` when we are root, ourselves otherwise
_stalwart_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_test_postgres() {
  local port pw attempt tmp
  if ! _stalwart_pg_bin=$(_stalwart_pg_find_bin); then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
      _stalwart_pg_note "no PostgreSQL server found and cannot install one (needs root and apt-get)"
      return 1
    fi
    # no default cluster on 5432 from the package's post-install: we start our own below
    mkdir -p /etc/postgresql-common/createcluster.d 2>/dev/null \
      && echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/50-stalwart-ci.conf
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
          postgresql) >/dev/null 2>&1 || ! _stalwart_pg_bin=$(_stalwart_pg_find_bin); then
      _stalwart_pg_note "apt-get could not install Debian's postgresql package"
      return 1
    fi
  fi
  if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
    _stalwart_pg_note "running as root and there is no 'postgres' user to own the cluster"
    return 1
  fi
  # in /tmp when root: the `postgres` user may not reach into root's own TMPDIR
  tmp="${TMPDIR:-/tmp}"
  [ "$(id -u)" = 0 ] && tmp=/tmp
  if ! _stalwart_pg_dir=$(mktemp -d "$tmp/stalwart-pg.XXXXXX"); then
    _stalwart_pg_note "cannot create a temporary directory"
    return 1
  fi
  chmod 755 "$_stalwart_pg_dir"
  pw=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
  printf '%s\n' "$pw" > "$_stalwart_pg_dir/pw"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$_stalwart_pg_dir"
  if ! _stalwart_pg_as_owner "$_stalwart_pg_bin/initdb" -D "$_stalwart_pg_dir/data" -U postgres \
        --auth=scram-sha-256 --pwfile="$_stalwart_pg_dir/pw" -E UTF8 --locale=C --no-sync \
        >"$_stalwart_pg_dir/initdb.log" 2>&1; then
    _stalwart_pg_note "initdb failed: $(tail -n 3 "$_stalwart_pg_dir/initdb.log" | tr '\n' ' ')"
    return 1
  fi
  rm -f "$_stalwart_pg_dir/pw"
  # a port that is free now; tried again with another one should the server lose the race for it
  for attempt in 1 2 3; do
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
      || { _stalwart_pg_note "python3 cannot pick a free port"; return 1; }
    # durability settings off: the cluster lives for one test run
    if _stalwart_pg_as_owner "$_stalwart_pg_bin/pg_ctl" -D "$_stalwart_pg_dir/data" -l "$_stalwart_pg_dir/server.log" \
        -w -t 60 -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$_stalwart_pg_dir \
        -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
      if PGPASSWORD=$pw "$_stalwart_pg_bin/createdb" -h 127.0.0.1 -p "$port" -U postgres stalwart_test 2>/dev/null; then
        export STALWART_TEST_POSTGRES="postgresql+psycopg://postgres:$pw@127.0.0.1:$port/stalwart_test"
        echo "PostgreSQL $("$_stalwart_pg_bin/pg_ctl" --version | awk '{print $3}') for the tests on 127.0.0.1:$port" >&2
        return 0
      fi
      _stalwart_pg_as_owner "$_stalwart_pg_bin/pg_ctl" -D "$_stalwart_pg_dir/data" -m immediate stop >/dev/null 2>&1
    fi
  done
  _stalwart_pg_note "the server did not start: $(tail -n 3 "$_stalwart_pg_dir/server.log" 2>/dev/null | tr '\n' ' ')"
  return 1
}

stop_test_postgres() {
  if [ -n "$_stalwart_pg_dir" ] && [ -d "$_stalwart_pg_dir" ]; then
    if [ -f "$_stalwart_pg_dir/data/postmaster.pid" ]; then
      _stalwart_pg_as_owner "$_stalwart_pg_bin/pg_ctl" -D "$_stalwart_pg_dir/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
    fi
    rm -rf "$_stalwart_pg_dir" || true
  fi
  _stalwart_pg_dir=""
  unset STALWART_TEST_POSTGRES
  return 0
}
