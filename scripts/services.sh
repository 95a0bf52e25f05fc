#!/usr/bin/env bash
# Start the local services the tests use, when they are not answering.
set -uo pipefail
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_up() { for _ in $(seq 1 60); do up "$1" && return 0; sleep 0.5; done; echo "service on port $1 did not start" >&2; return 1; }

if ! up 6379; then
  echo "starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_up 6379
fi
if ! up 5432; then
  echo "starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  wait_up 5432
fi
if ! up 3306; then
  echo "starting mariadb"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_up 3306
fi
exit 0
