#!/bin/sh
# The hosted registry's push container, run by the image's busybox sh:
#
#   sh push-supervisor.sh SETTINGS_FILE
#
# It runs distribution's read-write registry on the push port and, at the scheduled minute (or on
# SIGUSR1 with gc_schedule=manual), swaps it for a read-only registry on the same port while
# distribution's own `registry garbage-collect` runs. garbage-collect is only safe while nothing
# writes (distribution's docs: "read-only mode or not running at all"): pushes racing it can lose
# blobs. Pulls never come here; the pull port's read-only registry serves them throughout. It also
# logs a warning while the storage volume is fuller than fill_warn_percent.
#
# A rollout (or a replacement pod) can briefly run a second push container, whose writer the stop
# here does not stop. So a collection also needs every other writer gone:
# - on a volume, writer_lock: a file on the volume that each supervisor holds flock-shared while its
#   writer runs and a collection needs exclusive (postponed while another writer holds it; a writer
#   starting during another pod's collection waits, its push port answering read-only meanwhile);
#   a second file beside it, the probe lock, lets a collection find another writer before it stops
#   its own (see collect);
# - on object storage (no shared filesystem), gc_holdoff_seconds: no collection until this
#   container has run for the grace period of a pod it may have replaced (the Deployment rolls with
#   Recreate, so a rollout never overlaps; this covers a deleted or evicted pod's replacement).
# A postponed collection is tried again every four looks until it runs.
#
# SETTINGS_FILE has KEY=VALUE lines (rendered by components/render/push-supervisor.ts, shipped in the
# registry's ConfigMap): write_config, readonly_config, storage (a directory, or - for object
# storage), gc_schedule (off, manual or HH:MM in UTC, daily), gc_delete_untagged (true or false),
# fill_warn_percent (1-99, or - for none), health_url (the push port's debug listener's health
# check, plain HTTP), writer_lock (a file on the volume, or - for none), gc_holdoff_seconds (an
# integer). Read as data, never sourced.
set -u

log() { echo "push-supervisor: $*"; }

write_config=""
readonly_config=""
storage="-"
gc_schedule="off"
gc_delete_untagged="false"
fill_warn_percent="-"
health_url=""
writer_lock="-"
gc_holdoff_seconds=0
while IFS='=' read -r key value; do
    case $key in
    write_config) write_config=$value ;;
    readonly_config) readonly_config=$value ;;
    storage) storage=$value ;;
    gc_schedule) gc_schedule=$value ;;
    gc_delete_untagged) gc_delete_untagged=$value ;;
    fill_warn_percent) fill_warn_percent=$value ;;
    health_url) health_url=$value ;;
    writer_lock) writer_lock=$value ;;
    gc_holdoff_seconds) gc_holdoff_seconds=$value ;;
    "" | "#"*) ;;
    *)
        log "unknown setting $key in $1"
        exit 2
        ;;
    esac
done <"$1"
[ -n "$write_config" ] || {
    log "no write_config in $1"
    exit 2
}

# A writer stopped for a window first finishes the pushes in flight (distribution drains only with
# http.draintimeout; without it, SIGTERM cuts them). A config that sets its own keeps it.
grep -q 'draintimeout:' "$write_config" || export REGISTRY_HTTP_DRAINTIMEOUT=60s
# How often the schedule and the fill level are looked at; a minute holds several looks.
tick=${PUSH_SUPERVISOR_TICK_SECONDS:-15}
# How long a writer waits for the writer lock before it exits (kubelet restarts the container, and
# the restart count shows it): the wait normally ends with another pod's collection, i.e. its
# writer's drain (60 s) and one garbage-collect, which reads every manifest and lists every blob on
# the volume; on a local volume even a large registry takes minutes, an hour is already extreme.
# Twice that, and the wait is more likely a flock that cannot succeed here (busybox flock answers 1
# for any failure: ENOLCK on an NFS volume looks like a held lock). A restart only waits again.
lock_wait_limit=${PUSH_SUPERVISOR_LOCK_WAIT_SECONDS:-7200}
# While waiting, a log line this often (seconds).
lock_wait_log=300
started_at=$(date +%s)

pid=0
collect_requested=0
last_collected_day=""
fill_warned=0
# A collection asked for (scheduled or SIGUSR1) that has not run yet, and when to try it again.
collect_pending=0
next_try=0

# Stops the registry on the push port and waits until it has exited: a trapped signal (USR1) can
# end a `wait` early, so wait again while it lives.
stop_registry() {
    [ "$pid" -ne 0 ] || return 0
    kill -TERM "$pid" 2>/dev/null
    while kill -0 "$pid" 2>/dev/null; do wait "$pid"; done
    pid=0
}

# Starts `registry serve CONFIG` on the push port and waits (up to 30 s) until its health check
# answers: its debug listener binds only once the last registry on this port has exited.
serve() {
    registry serve "$1" &
    pid=$!
    [ -n "$health_url" ] || return 0
    tries=0
    until wget -q -Y off -O /dev/null "$health_url" 2>/dev/null; do
        tries=$((tries + 1))
        [ "$tries" -lt 30 ] && kill -0 "$pid" 2>/dev/null || return 1
        sleep 1
    done
}

on_term() {
    stop_registry
    exit 0
}
trap on_term TERM INT
trap 'collect_requested=1' USR1

# The writer lock (fd 9, the file on the volume) and the probe lock (fd 8, the file beside it):
# both held shared while this container's writer runs, exclusive while it collects. A lock belongs
# to the open file, which every child inherits. Waits (polling, so TERM is still handled) while
# another pod collects; the push port answers read-only meanwhile, as it does during that
# collection. Exits after lock_wait_limit seconds.
hold_shared() {
    [ "$writer_lock" != - ] || return 0
    take_shared && return 0
    log "waiting: another pod collects garbage on $storage; pushes are refused until it is done"
    [ "$pid" -ne 0 ] || [ ! -f "$readonly_config" ] || serve "$readonly_config" || true
    wait_start=$(date +%s)
    logged_at=$wait_start
    until take_shared; do
        sleep 1
        now=$(date +%s)
        if [ $((now - wait_start)) -ge "$lock_wait_limit" ]; then
            log "gave up after $((now - wait_start)) s waiting for the writer lock $writer_lock: no collection takes that long, so flock probably fails on this volume (a filesystem without flock, e.g. NFS); exiting, kubelet restarts the container"
            stop_registry
            exit 1
        fi
        if [ $((now - logged_at)) -ge "$lock_wait_log" ]; then
            logged_at=$now
            log "still waiting for the writer lock $writer_lock after $((now - wait_start)) s: another pod still collects, or flock fails on this volume (a filesystem without flock, e.g. NFS); exiting after $lock_wait_limit s"
        fi
    done
    log "the other pod's garbage collection is over"
}

# Both locks shared, or neither: a writer lock held while this container waits for the probe lock
# (another pod draining its writer for a collection) would only postpone that collection.
take_shared() {
    flock -s -n 9 || return 1
    flock -s -n 8 && return 0
    flock -u 9
    return 1
}

# True when another writer holds the probe lock (or collects): this container's shared lock on it
# traded for an exclusive one, with the writer still running and the writer lock still held shared,
# so no pod can collect meanwhile. On success the probe lock stays exclusive until start_writer.
# Only an optimisation that spares this writer a needless stop (a writer of an older version holds
# no probe lock): the writer lock taken exclusive once the writer is stopped decides. /proc/locks
# cannot tell instead: in a container's PID namespace it hides the locks of processes outside it
# (another pod's) and of processes gone (the flock applet that took this container's own).
other_writer() {
    [ "$writer_lock" != - ] || return 1
    # Linux drops the shared lock before it tries the exclusive one.
    flock -x -n 8 && return 1
    # Taken shared again; another probe holding it exclusive for a moment is let go, and the next
    # probe takes it again anyway.
    tries=0
    until flock -s -n 8 || [ "$tries" -ge 5 ]; do
        tries=$((tries + 1))
        sleep 1
    done
    return 0
}

# Runs the writer, once this container may write.
start_writer() {
    hold_shared
    stop_registry
    serve "$write_config"
}

# One collection: the writer stops (in-flight pushes finish; new connections are refused while it
# drains), a read-only registry answers the push port (pushes get 405), garbage-collect runs once
# nothing else can write, the writer comes back. Every registry process started here is new, so no
# in-memory blob-descriptor cache on this port outlives the sweep. Returns 1 when postponed.
collect() {
    now=$(date +%s)
    if [ $((now - started_at)) -lt "$gc_holdoff_seconds" ]; then
        log "garbage collection postponed: this container started $((now - started_at)) s ago, and a pod it replaced may still be writing for up to $gc_holdoff_seconds s"
        return 1
    fi
    if other_writer; then
        log "garbage collection postponed: another writer runs on $storage (a rollout's second pod); this writer was not stopped"
        return 1
    fi
    log "garbage collection: stopping the writer; pushes are refused until it is back"
    stop_registry
    serve "$readonly_config" || log "garbage collection: the read-only registry is not answering; collecting anyway (nothing writes)"
    # Only with the writer stopped: flock turns a shared lock exclusive by dropping it first.
    if [ "$writer_lock" != - ] && ! flock -x -n 9; then
        # Linux drops the shared lock before it tries the exclusive one, so this container holds
        # none now; start_writer's hold_shared takes it (and the probe lock) shared again.
        log "garbage collection postponed: another writer runs on $storage (a rollout's second pod); the writer takes pushes again"
        start_writer || log "the writer is not answering yet"
        return 1
    fi
    flags=""
    [ "$gc_delete_untagged" = true ] && flags="--delete-untagged"
    log "garbage collection: running registry garbage-collect $flags"
    # shellcheck disable=SC2086 # flags is empty or one word
    { registry garbage-collect $flags "$write_config" 2>&1; echo "exit status $?"; } |
        awk '/eligible for deletion$/ || /^exit status/ || /failed/ || /level=(error|fatal)/ { print "push-supervisor: garbage collection: " $0 }'
    start_writer || log "garbage collection: the writer is not answering yet"
    log "garbage collection: done; the writer takes pushes again"
}

# Tries a collection that is due or asked for; a postponed one is tried again four looks later.
try_collect() {
    now=$(date +%s)
    [ "$now" -ge "$next_try" ] || return 0
    if collect; then
        collect_pending=0
    else
        next_try=$((now + 4 * tick))
    fi
}

# True in the scheduled minute of a day on which no collection ran yet.
due() {
    case $gc_schedule in off | manual) return 1 ;; esac
    [ "$(date -u +%H:%M)" = "$gc_schedule" ] || return 1
    [ "$(date -u +%Y-%m-%d)" != "$last_collected_day" ]
}

# A log line when the volume crosses fill_warn_percent (and when it is back under): pushes fail
# once it is full, and only deleting tags and collecting, or a bigger volume, frees space.
watch_fill() {
    [ "$fill_warn_percent" != - ] && [ "$storage" != - ] || return 0
    used=$(df -P "$storage" | awk 'NR == 2 { sub(/%$/, "", $5); print $5 }')
    case $used in "" | *[!0-9]*) return 0 ;; esac
    if [ "$used" -ge "$fill_warn_percent" ] && [ "$fill_warned" -eq 0 ]; then
        fill_warned=1
        log "warning: $storage is $used% full (warning at $fill_warn_percent%): pushes fail once it is full; delete tags and collect garbage, or grow storageSize (README: Storage)"
    elif [ "$used" -lt "$fill_warn_percent" ] && [ "$fill_warned" -eq 1 ]; then
        fill_warned=0
        log "$storage is $used% full, under the warning level ($fill_warn_percent%) again"
    fi
}

if [ "$writer_lock" != - ]; then
    # Without it, every lock attempt would fail like a held lock (127 from the shell): a wait that ends
    # only at lock_wait_limit, saying another pod collects.
    command -v flock >/dev/null || {
        log "no flock in this image (PATH=$PATH): the writer lock $writer_lock needs it (busybox's flock applet or util-linux's)"
        exit 1
    }
    # Tried in a subshell first: a failed redirection of exec ends the shell before any message.
    (: >>"$writer_lock" && : >>"$writer_lock.probe") 2>/dev/null || {
        log "cannot open the writer lock $writer_lock (or $writer_lock.probe)"
        exit 1
    }
    exec 9>>"$writer_lock" 8>>"$writer_lock.probe"
fi
start_writer || log "the registry is not answering yet"
log "serving pushes (garbage collection: $gc_schedule, delete untagged: $gc_delete_untagged)"
while :; do
    sleep "$tick" &
    sleeper=$!
    wait "$sleeper" 2>/dev/null
    # A signal ends the wait early: no sleeper left behind.
    kill "$sleeper" 2>/dev/null
    if ! kill -0 "$pid" 2>/dev/null; then
        wait "$pid"
        status=$?
        log "the registry exited with status $status"
        # Restarted by kubelet, as the registry alone would be.
        exit 1
    fi
    if [ "$collect_requested" -eq 1 ]; then
        collect_requested=0
        if [ "$gc_schedule" = off ]; then log "garbage collection is off (gcSchedule): nothing to do"; else collect_pending=1 next_try=0; fi
    elif due; then
        last_collected_day=$(date -u +%Y-%m-%d)
        collect_pending=1 next_try=0
    fi
    [ "$collect_pending" -eq 0 ] || try_collect
    watch_fill
done
