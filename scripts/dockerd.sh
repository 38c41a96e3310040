#!/usr/bin/env bash
# Start or stop a private dockerd for the image tests (CI and developers), by PID, never by name.
#
#   scripts/dockerd.sh start    # prints DOCKER_HOST=unix://... once the daemon answers
#   scripts/dockerd.sh stop
#
# Its own socket, data root and exec root, so it never touches a dockerd someone else runs on
# this machine. No bridge and no iptables rules: the tests run containers with --network host
# and bind them to loopback. The data root (DAKERA_DOCKER_ROOT, default /var/lib/dakera-docker)
# is kept between runs as the layer cache of `docker build`.
set -euo pipefail

ROOT="${DAKERA_DOCKER_ROOT:-/var/lib/dakera-docker}"
RUN="${DAKERA_DOCKER_RUN:-/run/dakera-docker}"
SOCKET="$RUN/docker.sock"
PIDFILE="$RUN/dockerd.pid"

case "${1:-}" in
  start)
    mkdir -p "$ROOT" "$RUN"
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "DOCKER_HOST=unix://$SOCKET"
      exit 0
    fi
    # setsid: the daemon outlives this script; it is stopped by `stop` through its PID file.
    setsid dockerd --data-root "$ROOT" --exec-root "$RUN/exec" -H "unix://$SOCKET" \
      --pidfile "$PIDFILE" --bridge=none --iptables=false --ip-masq=false \
      >"$RUN/dockerd.log" 2>&1 </dev/null &
    for _ in $(seq 1 60); do
      if DOCKER_HOST="unix://$SOCKET" docker version >/dev/null 2>&1; then
        echo "DOCKER_HOST=unix://$SOCKET"
        exit 0
      fi
      sleep 0.5
    done
    echo "dockerd did not answer within 30 s; its log:" >&2
    tail -20 "$RUN/dockerd.log" >&2
    exit 1
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then
      pid="$(cat "$PIDFILE")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
    fi
    # dockerd leaves its default network namespace mounted under the exec root.
    if mountpoint -q "$RUN/exec/netns/default" 2>/dev/null; then
      umount "$RUN/exec/netns/default" || true
    fi
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
