#!/bin/bash
# Users for the application, the proxy's monitor and replication (runs once on the primary).
set -euo pipefail
mariadb -uroot -p"$MARIADB_ROOT_PASSWORD" <<SQL
CREATE USER IF NOT EXISTS 'app'@'%' IDENTIFIED BY '${APP_PASSWORD}';
GRANT ALL ON app.* TO 'app'@'%';
CREATE USER IF NOT EXISTS 'monitor'@'%' IDENTIFIED BY '${MONITOR_PASSWORD}';
GRANT REPLICATION CLIENT, SLAVE MONITOR ON *.* TO 'monitor'@'%';
CREATE USER IF NOT EXISTS 'repl'@'%' IDENTIFIED BY 'repl';
GRANT REPLICATION SLAVE ON *.* TO 'repl'@'%';
SQL
