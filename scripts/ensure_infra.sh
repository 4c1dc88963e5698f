#!/usr/bin/env bash
# Makes sure PostgreSQL and RabbitMQ answer on 127.0.0.1, starting a stopped one, and that the
# databases named as arguments exist. Used by `make db`, `make run`, `make test` and .ci/run.
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
export PGHOST PGPORT PGUSER

wait_for() {  # wait_for <what> <seconds> <command...>
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq "$seconds"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  echo "ensure_infra: $what did not come up within ${seconds}s" >&2
  return 1
}

if ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
  echo "ensure_infra: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
  wait_for PostgreSQL 60 pg_isready -q -h "$PGHOST" -p "$PGPORT"
fi

rabbit_up() { timeout 2 bash -c '</dev/tcp/127.0.0.1/5672'; }
if ! rabbit_up 2>/dev/null; then
  echo "ensure_infra: starting RabbitMQ"
  rabbitmq-server -detached || true
  wait_for RabbitMQ 120 rabbit_up
fi

for db in "$@"; do
  if [ "$(psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" != "1" ]; then
    echo "ensure_infra: creating database $db"
    createdb "$db"
  fi
done
