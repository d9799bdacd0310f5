#!/usr/bin/env bash
# Make sure a Docker engine answers; start dockerd (as root) when none does.
#   scripts/dockerd.sh start [PIDFILE]   exit 0 when the engine answers; prints "started" if we
#                                        started it (PIDFILE records our dockerd), "running" if not
#   scripts/dockerd.sh stop PIDFILE      stops the dockerd we started (only that one)
set -euo pipefail
cmd=${1:-start}
pidfile=${2:-}
sock=${DOCKER_SOCK:-/var/run/docker.sock}

answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

case "$cmd" in
start)
  if answers; then echo running; exit 0; fi
  if ! command -v "${DOCKERD:-dockerd}" >/dev/null 2>&1; then
    echo "docker: the engine is not reachable at $sock and dockerd is not installed;" \
         "run 'make host' as root (installs docker.io) or start Docker yourself." >&2
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "docker: the engine is not reachable at $sock and only root can start dockerd here;" \
         "start Docker (or add yourself to the docker group) and retry." >&2
    exit 1
  fi
  log=${DOCKERD_LOG:-/tmp/remediator-dockerd.log}
  nohup "${DOCKERD:-dockerd}" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 60); do
    if answers; then
      [ -n "$pidfile" ] && echo "$pid" >"$pidfile"
      echo started; exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "docker: dockerd did not come up (see $log):" >&2
  tail -n 5 "$log" >&2 || true
  kill "$pid" 2>/dev/null || true
  exit 1
  ;;
stop)
  [ -n "$pidfile" ] && [ -f "$pidfile" ] || exit 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  rm -f "$pidfile"
  ;;
*) echo "usage: $0 start|stop [PIDFILE]" >&2; exit 2 ;;
esac
