# Shared by scripts/demo and scripts/test; sourced, not run. Every step says
# what it does before doing it, and does nothing that is already done.

say() { printf '==> %s\n' "$*"; }
die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# as_root runs a command as root: directly when this is root, else through
# sudo when it is installed.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "this step needs root and sudo is not installed: run the script as root, or run as root: $*"
  fi
}

# ensure_go puts Go on PATH (the official tarball lives in /usr/local/go).
ensure_go() {
  if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
  fi
  command -v go >/dev/null 2>&1 || die "Go is not installed: install it from https://go.dev/dl/ (go.mod names the version), then run this again"
}

# pg_required are the programs Regent runs from the server's binary
# directory (internal/postgres requiredBinaries).
pg_required=(postgres initdb pg_ctl pg_basebackup pg_rewind pg_controldata)

pg_server_dir_ok() {
  local b
  for b in "${pg_required[@]}"; do [ -f "$1/$b" ] && [ -x "$1/$b" ] || return 1; done
}

# pg_server_dir prints the directory regent will use when postgresql.bin_dir
# is not set, by the same rule as internal/postgres FindBinDir: the newest
# /usr/lib/postgresql/<major>/bin holding every program, else pg_config's.
pg_lib=/usr/lib/postgresql
pg_server_dir() {
  local d
  for d in $(ls -d "$pg_lib"/*/bin 2>/dev/null | sed -n 's|^\(.*/\)\([0-9][0-9.]*\)/bin$|\2 \1\2/bin|p' | sort -V -r -k1,1 | cut -d" " -f2); do
    if pg_server_dir_ok "$d"; then
      echo "$d"
      return 0
    fi
  done
  if command -v pg_config >/dev/null 2>&1 && d=$(pg_config --bindir 2>/dev/null) && pg_server_dir_ok "$d"; then
    echo "$d"
    return 0
  fi
  return 1
}

# apt_install installs Debian packages without their recommendations.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* with this system's package manager, then run this again"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# pg_install_prepare tells Debian's postgresql-common not to create and
# start its own "main" cluster when a server package is installed: Regent
# runs its own data directories. The drop-in file (and its directory, when
# this created it) is removed again by pg_install_done, or on exit when the
# install fails, so later server installs behave as Debian's default.
cc_dir=/etc/postgresql-common/createcluster.d
cc_dropin=$cc_dir/regent-no-main-cluster.conf
cc_made_dir=
pg_install_prepare() {
  if [ ! -d "$cc_dir" ]; then
    as_root mkdir -p "$cc_dir"
    cc_made_dir=1
  fi
  trap pg_install_cleanup EXIT
  echo "create_main_cluster = false" | as_root tee "$cc_dropin" >/dev/null
}
pg_install_cleanup() {
  as_root rm -f "$cc_dropin"
  if [ -n "$cc_made_dir" ]; then as_root rmdir --ignore-fail-on-non-empty "$cc_dir"; fi
  cc_made_dir=
}
pg_install_done() {
  pg_install_cleanup
  trap - EXIT
  local d
  d=$(pg_server_dir) || die "the PostgreSQL server is still not found after installing it (looked in $pg_lib/*/bin and pg_config --bindir)"
  say "PostgreSQL server installed: $d"
}

# ensure_postgres_user creates the unprivileged OS user Regent runs
# PostgreSQL as when Regent runs as root (the server package normally
# creates it; a non-root Regent runs PostgreSQL as itself).
ensure_postgres_user() {
  [ "$(id -u)" -eq 0 ] || return 0
  id postgres >/dev/null 2>&1 && return 0
  say "creating the system user postgres (PostgreSQL refuses to run as root; Regent runs it as postgres)"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
}
