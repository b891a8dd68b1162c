#!/usr/bin/env bash
# Installs what a fresh Debian machine with only Node 20 + npm needs to build and test.
# Safe to run again: every step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Runs a command as root: directly when we are root, else through sudo when it exists.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "setup: need root (or sudo) to run: $*" >&2
    exit 1
  fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    echo "setup: apt-get update"
    as_root apt-get update -qq
    apt_updated=1
  fi
  echo "setup: apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# nats-server: Debian installs it in /usr/sbin, which is often not on a normal user's PATH.
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
  apt_install nats-server
fi

# ---- More system packages go here, e.g.: ----
# if ! python3 -c 'import grpc' 2>/dev/null; then apt_install python3-grpcio; fi
# protoc and grpc_python_plugin for `buf generate` (gen/python), and the Debian python3's
# grpcio + protobuf for examples/python and test/python-client.test.ts.
python_packages=()
[ -x /usr/bin/protoc ] || python_packages+=(protobuf-compiler)
[ -x /usr/bin/grpc_python_plugin ] || python_packages+=(protobuf-compiler-grpc)
if ! /usr/bin/python3 -c 'import grpc, google.protobuf' 2>/dev/null; then
  python_packages+=(python3-grpcio python3-protobuf)
fi
# The Python package (clients/python): a virtual environment on the system's packages, built
# with the system's setuptools and wheel (pip install --no-build-isolation --no-index).
# (Debian's python3 has the venv module without the pip and setuptools wheels it installs.)
dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q 'ok installed' ||
  python_packages+=(python3-venv)
/usr/bin/python3 -c 'import setuptools' 2>/dev/null || python_packages+=(python3-setuptools)
/usr/bin/python3 -c 'import wheel' 2>/dev/null || python_packages+=(python3-wheel)
# curl runs the README's curl lines in test/readme.test.ts.
command -v curl >/dev/null 2>&1 || python_packages+=(curl)
# Debian's chromium: test/console.test.ts drives it headless with playwright-core (which
# downloads no browser of its own).
[ -x /usr/bin/chromium ] || python_packages+=(chromium)
if [ "${#python_packages[@]}" -gt 0 ]; then
  apt_install "${python_packages[@]}"
fi
# ---- end of system packages ----

# npm writes node_modules/.package-lock.json after every install; when it is newer than both
# package.json and the lockfile, node_modules already matches and a reinstall would only
# cost time. `npm ci` installs exactly the lockfile and fails when it is out of sync with
# package.json (so CI fails on drift instead of rewriting the lockfile): after changing a
# dependency, run `npm install` and commit package-lock.json.
marker=node_modules/.package-lock.json
if [ ! -f "$marker" ] || [ package.json -nt "$marker" ] || [ package-lock.json -nt "$marker" ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The CLI (bin/sessionbus.mjs) and `npm start` run the compiled dist/: build it now rather
# than at the first CLI command. Skipped when dist/ is newer than src/.
echo "setup: npm run build"
node scripts/build.mjs --if-stale
