#!/bin/sh
# The daily backup (docker-compose.yml's `backup` service): a pg_dump of each database named as an argument,
# now and then every day, to $BACKUP_DIR/<database>-<YYYY-MM-DD>.dump (pg_restore's custom format). Dumps
# older than BACKUP_KEEP_DAYS days are deleted. A failed dump is tried again an hour later.
# The server comes from libpq's variables (PGHOST, PGUSER, PGPASSWORD). Restoring: README, "Backups".
set -u
BACKUP_DIR=${BACKUP_DIR:-/backups}
BACKUP_KEEP_DAYS=${BACKUP_KEEP_DAYS:-7}
DAY=86400
RETRY=3600

dump() {  # dump <database>: written under a temporary name first, so a dump cut short is never taken for one
  target="$BACKUP_DIR/$1-$(date -u +%Y-%m-%d).dump"
  if pg_dump --format=custom --file="$target.partial" "$1" && mv "$target.partial" "$target"; then
    echo "backup: wrote $target"
  else
    rm -f "$target.partial"
    echo "backup: pg_dump of $1 failed; trying again in $RETRY s" >&2
    return 1
  fi
}

# As a container's first process the shell gets no default signal handling: stop on `docker compose stop`.
trap 'exit 0' TERM INT
mkdir -p "$BACKUP_DIR"
while :; do
  failed=0
  for database in "$@"; do
    dump "$database" || failed=1
  done
  # -mtime +N: older than N+1 whole days, so the last BACKUP_KEEP_DAYS days' dumps stay.
  find "$BACKUP_DIR" -name '*.dump' -mtime +"$((BACKUP_KEEP_DAYS - 1))" -exec rm -f {} +
  if [ "$failed" = 1 ]; then pause=$RETRY; else pause=$DAY; fi
  sleep "$pause" &
  wait "$!"  # a signal ends `wait` at once, where it would wait for a foreground sleep to finish
done
