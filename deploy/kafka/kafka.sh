#!/usr/bin/env bash
# Launcher for a REAL Apache Kafka broker (single-node KRaft, broker+controller
# in one JVM) built from Maven Central jars, for flexstream's integration tests.
# No Docker, no Kafka tarball: deploy/kafka/pom.xml pins the jars, mvn fetches
# them into a cache directory outside the repository.
#
# Usage: deploy/kafka/kafka.sh {fetch|start|stop|restart|clean|status|version}
#
#   fetch    resolve the jars of pom.xml into $CACHE/kafka-<version>/libs
#            (skipped when the marker says that directory is complete for the
#            current pom.xml)
#   start    fetch if needed, format storage if the state dir is new, start the
#            broker in the background and wait until it serves; prints exactly
#            one line, "127.0.0.1:<port>", on stdout (progress goes to stderr)
#   stop     SIGTERM the broker by the pid in its pid file, SIGKILL after 30 s;
#            a no-op when it is not running
#   restart  stop, then start on the same state dir (data is kept)
#   clean    stop, then delete the state dir (the jars stay cached)
#   status   exit 0 and print "127.0.0.1:<port>" if the broker runs, else exit 3
#   version  print the Kafka version pinned in pom.xml (no network)
#
# Environment:
#   FLEXSTREAM_CACHE_DIR              cache root (default $HOME/.cache/flexstream)
#   FLEXSTREAM_KAFKA_PORT             PLAINTEXT port (default 19092)
#   FLEXSTREAM_KAFKA_CONTROLLER_PORT  CONTROLLER port (default PORT+1)
#   FLEXSTREAM_KAFKA_STATE            state dir: config, data, log, pid
#                                     (default $CACHE/kafka-<version>/run)
#   FLEXSTREAM_KAFKA_START_TIMEOUT    seconds start waits (default 90)
#   FLEXSTREAM_KAFKA_HEAP_OPTS        JVM heap flags (default "-Xms256m -Xmx512m")
#   FLEXSTREAM_KAFKA_LOG_LEVEL        level of the root logger (default WARN)
#   JAVA_HOME                         java is $JAVA_HOME/bin/java if set, else java
#
# Files in the state dir: server.properties, log4j2.xml, data/ (log.dirs),
# kafka.log (the broker's stdout+stderr, previous run in kafka.log.1),
# kafka.pid.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/pom.xml"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kafka_version() {
  local v
  v="$(sed -n 's:.*<kafka\.version>[[:space:]]*\([^<[:space:]]*\)[[:space:]]*</kafka\.version>.*:\1:p' "$POM" | head -n 1)"
  [[ -n "$v" ]] || die "no <kafka.version> in $POM"
  printf '%s\n' "$v"
}

VERSION="$(kafka_version)"
CACHE_ROOT="${FLEXSTREAM_CACHE_DIR:-${HOME:?HOME is not set}/.cache/flexstream}"
HOME_DIR="$CACHE_ROOT/kafka-$VERSION"
LIBS="$HOME_DIR/libs"
MARKER="$HOME_DIR/libs.complete"

PORT="${FLEXSTREAM_KAFKA_PORT:-19092}"
[[ "$PORT" =~ ^[0-9]+$ ]] && (( PORT > 0 && PORT < 65535 )) || die "bad FLEXSTREAM_KAFKA_PORT: $PORT"
CTRL_PORT="${FLEXSTREAM_KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
[[ "$CTRL_PORT" =~ ^[0-9]+$ ]] && (( CTRL_PORT > 0 && CTRL_PORT < 65536 && CTRL_PORT != PORT )) \
  || die "bad controller port: $CTRL_PORT"
STATE="${FLEXSTREAM_KAFKA_STATE:-$HOME_DIR/run}"
START_TIMEOUT="${FLEXSTREAM_KAFKA_START_TIMEOUT:-90}"
HEAP_OPTS="${FLEXSTREAM_KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
LOG_LEVEL="${FLEXSTREAM_KAFKA_LOG_LEVEL:-WARN}"
if [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA="java"; fi

PROPS="$STATE/server.properties"
LOG4J="$STATE/log4j2.xml"
DATA="$STATE/data"
LOGFILE="$STATE/kafka.log"
PIDFILE="$STATE/kafka.pid"
STATE_MARK="$STATE/.flexstream-kafka-state"
STARTED_RE='Kafka Server started'

pom_sum() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$POM" | cut -d' ' -f1
  else shasum -a 256 "$POM" | cut -d' ' -f1; fi
}

# Holds an exclusive lock on $1 for the rest of the script (released on exit).
lock() {
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$(dirname "$1")"
  exec {LOCK_FD}>"$1"
  flock -w 600 "$LOCK_FD" || die "could not lock $1"
}

# ---------------------------------------------------------------- fetch
libs_complete() {
  [[ -f "$MARKER" && -d "$LIBS" ]] && [[ "$(cat "$MARKER")" == "version=$VERSION pom-sha256=$(pom_sum)" ]]
}

cmd_fetch() {
  if libs_complete; then log "jars for Kafka $VERSION already in $LIBS"; return 0; fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found on PATH"
  mkdir -p "$HOME_DIR"
  (
    lock "$HOME_DIR/fetch.lock"
    if libs_complete; then exit 0; fi
    log "fetching Kafka $VERSION jars from Maven Central into $LIBS"
    local tmp="$HOME_DIR/libs.tmp.$$"
    local mvnlog="$HOME_DIR/fetch.log"
    rm -rf "$tmp" "$HOME_DIR/mvn-build"
    # mvn's output goes to a file (our stdout is reserved for the address) and
    # is shown on stderr only if mvn fails.
    if ! mvn -q -B -Dstyle.color=never -f "$POM" package \
        -Dkafka.libs="$tmp" -Dkafka.build.dir="$HOME_DIR/mvn-build" >"$mvnlog" 2>&1; then
      sed 's/\x1b\[[0-9;]*m//g' "$mvnlog" >&2
      rm -rf "$tmp"
      die "mvn could not resolve the Kafka $VERSION jars (output above, also in $mvnlog)"
    fi
    compgen -G "$tmp/kafka_2.13-$VERSION.jar" >/dev/null || { rm -rf "$tmp"; die "kafka_2.13-$VERSION.jar missing after mvn"; }
    rm -rf "$LIBS" "$HOME_DIR/mvn-build"
    mv "$tmp" "$LIBS"
    printf 'version=%s pom-sha256=%s\n' "$VERSION" "$(pom_sum)" >"$MARKER"
    log "$(find "$LIBS" -name '*.jar' | wc -l | tr -d ' ') jars in $LIBS"
  )
}

# ---------------------------------------------------------------- process helpers
# Prints the pid from the pid file if that pid is alive AND is our broker
# (a java running kafka.Kafka on this state dir's server.properties).
running_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid cmdline
  pid="$(tr -dc '0-9' <"$PIDFILE")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline")"
  else
    cmdline="$(ps -o command= -p "$pid" 2>/dev/null || true)"
  fi
  [[ "$cmdline" == *kafka.Kafka*"$PROPS"* ]] || return 1
  printf '%s\n' "$pid"
}

port_open() {
  if command -v timeout >/dev/null 2>&1; then
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
  else
    bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
  fi
}

# The port a running broker was started with (from its server.properties).
running_port() {
  sed -n 's/^advertised\.listeners=PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$PROPS" 2>/dev/null | head -n 1
}

log_tail() {
  if [[ -f "$LOGFILE" ]]; then
    log "last lines of $LOGFILE:"
    tail -n "${1:-60}" "$LOGFILE" >&2 || true
  fi
}

# ---------------------------------------------------------------- config
write_config() {
  cat >"$PROPS" <<EOF
# Written by deploy/kafka/kafka.sh on every start; edits are overwritten.
# Single-node KRaft: this JVM is both broker and the only controller.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CTRL_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CTRL_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA

num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0

offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=1

# Small machine (2 cores), small heap.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
EOF

  cat >"$LOG4J" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Written by deploy/kafka/kafka.sh. Console goes to $LOGFILE. -->
<!-- No log4j shutdown hook: Kafka logs its own shutdown from its hook. -->
<Configuration status="WARN" shutdownHook="disable">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="$LOG_LEVEL"><AppenderRef ref="STDOUT"/></Root>
    <!-- Start/stop lines, incl. "$STARTED_RE", which start waits for. -->
    <Logger name="kafka.server.KafkaRaftServer" level="INFO"/>
    <Logger name="kafka.server.BrokerServer" level="INFO"/>
    <Logger name="kafka.server.ControllerServer" level="INFO"/>
    <Logger name="kafka.Kafka" level="INFO"/>
  </Loggers>
</Configuration>
EOF
}

formatted() { [[ -f "$DATA/meta.properties" ]]; }

format_storage() {
  local cid
  cid="$("$JAVA" -cp "$LIBS/*" kafka.tools.StorageTool random-uuid 2>>"$LOGFILE")" \
    || { log_tail 30; die "StorageTool random-uuid failed"; }
  cid="$(printf '%s' "$cid" | tail -n 1 | tr -d '[:space:]')"
  log "formatting $DATA with cluster id $cid"
  "$JAVA" -Dlog4j2.configurationFile="$LOG4J" -cp "$LIBS/*" kafka.tools.StorageTool \
      format -t "$cid" -c "$PROPS" >>"$LOGFILE" 2>&1 \
    || { log_tail 30; die "StorageTool format failed"; }
}

# ---------------------------------------------------------------- start/stop
cmd_start() {
  cmd_fetch
  mkdir -p "$STATE"
  lock "$STATE/.lock"
  touch "$STATE_MARK"

  local pid
  if pid="$(running_pid)"; then
    local rport; rport="$(running_port)"
    [[ "$rport" == "$PORT" ]] || die "broker already running (pid $pid) on port $rport, not $PORT; stop it first"
    log "already running (pid $pid)"
    printf '127.0.0.1:%s\n' "$PORT"
    return 0
  fi
  rm -f "$PIDFILE"
  for p in "$PORT" "$CTRL_PORT"; do
    ! port_open "$p" || die "port $p on 127.0.0.1 is already in use by another process"
  done

  [[ -f "$LOGFILE" ]] && mv -f "$LOGFILE" "$LOGFILE.1"
  : >"$LOGFILE"
  mkdir -p "$DATA" "$STATE/logs"
  write_config
  if formatted; then
    log "reusing formatted storage in $DATA"
  else
    format_storage
  fi

  local t0=$SECONDS
  log "starting Kafka $VERSION on 127.0.0.1:$PORT (controller $CTRL_PORT), state $STATE"
  # shellcheck disable=SC2086 # HEAP_OPTS is a list of flags
  (
    echo "$BASHPID" >"$PIDFILE"
    # The broker must not inherit the state lock (stop would wait on it).
    if [[ -n "${LOCK_FD:-}" ]]; then exec {LOCK_FD}>&-; fi
    exec "$JAVA" $HEAP_OPTS \
      -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
      -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$LOG4J" -Dkafka.logs.dir="$STATE/logs" \
      -cp "$LIBS/*" kafka.Kafka "$PROPS"
  ) </dev/null >>"$LOGFILE" 2>&1 &
  local child=$!

  local deadline=$((SECONDS + START_TIMEOUT))
  while :; do
    if ! kill -0 "$child" 2>/dev/null; then
      wait "$child" 2>/dev/null || true
      rm -f "$PIDFILE"
      log_tail
      die "broker exited during startup"
    fi
    if port_open "$PORT" && grep -q "$STARTED_RE" "$LOGFILE"; then
      break
    fi
    if (( SECONDS >= deadline )); then
      log_tail
      log "broker did not come up within ${START_TIMEOUT}s; stopping it"
      stop_pid "$child"
      die "start timed out"
    fi
    sleep 0.2
  done
  log "Kafka $VERSION up after $((SECONDS - t0))s (pid $child)"
  printf '127.0.0.1:%s\n' "$PORT"
}

# SIGTERM, wait up to 30 s, SIGKILL. Only ever signals the given pid.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid still alive after 30s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "pid $pid survived SIGKILL"
}

cmd_stop() {
  [[ -d "$STATE" ]] || return 0
  lock "$STATE/.lock"
  local pid
  if pid="$(running_pid)"; then
    log "stopping broker (pid $pid)"
    stop_pid "$pid"
    log "stopped"
  fi
  rm -f "$PIDFILE"
}

cmd_clean() {
  cmd_stop
  [[ -d "$STATE" ]] || return 0
  [[ -f "$STATE_MARK" ]] || die "$STATE was not made by kafka.sh (no $(basename "$STATE_MARK")); not deleting it"
  rm -rf "$STATE"
  log "removed $STATE"
}

cmd_status() {
  local pid
  if [[ -d "$STATE" ]] && pid="$(running_pid)"; then
    log "running (pid $pid), state $STATE"
    printf '127.0.0.1:%s\n' "$(running_port)"
    return 0
  fi
  log "not running"
  return 3
}

case "${1:-}" in
  fetch)   cmd_fetch ;;
  start)   cmd_start ;;
  stop)    cmd_stop ;;
  restart) (cmd_stop); cmd_start ;;
  clean)   cmd_clean ;;
  status)  cmd_status ;;
  version) printf '%s\n' "$VERSION" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
