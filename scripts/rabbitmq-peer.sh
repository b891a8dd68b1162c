#!/usr/bin/env bash
# Installs the RabbitMQ peer of `npm run bench -- --peers` when it is missing: Debian's
# rabbitmq-server (3.10 on bookworm) and the Erlang runtime it pulls in. It only installs:
# the bench starts its own node from the package's scripts (bench/support/rabbitmq-server.ts)
# on loopback, on free ports, with a temporary data directory, and never uses a system
# service that the package may have set up. Prints the installed version.
set -euo pipefail

SERVER=/usr/lib/rabbitmq/bin/rabbitmq-server

if [[ ! -x "$SERVER" ]]; then
  if [[ "$(id -u)" != 0 ]]; then
    echo "rabbitmq-server is not installed; run as root: apt-get install -y rabbitmq-server" >&2
    exit 1
  fi
  echo "installing rabbitmq-server (apt-get)" >&2
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet.
  if ! apt-get install -y --no-install-recommends rabbitmq-server >&2; then
    apt-get update >&2
    apt-get install -y --no-install-recommends rabbitmq-server >&2
  fi
fi

dpkg-query -W -f '${Version}\n' rabbitmq-server
