#!/bin/sh
# cluster-registry's node agent. Keeps containerd's hosts.toml files (and the CA they name) for the
# in-cluster registries under $CERTS_DIR, and puts the node back as it was when it is uninstalled.
#   apply   write the files; a file this agent did not write is backed up first
#   remove  delete what apply wrote, restore the backups, drop the directories it created (needs
#           only CERTS_DIR and OWNER: see README.md, "Removing by hand")
#   run     the DaemonSet's mode: apply and hold the node, re-apply every $REAPPLY_SECONDS; on
#           SIGTERM remove everything only if this pod still holds the node and its DaemonSet is
#           gone or being deleted (a restart, an eviction or a rollout is not an uninstall)
#
# This file is the same for every cluster: what it writes reaches it as data. $FILES_DIR (a mounted
# Secret) holds `manifest`, one `KEY PATH` line per file, and each file under its KEY; the file goes
# to $CERTS_DIR/PATH, PATH being `<host dir>/<file name>`. $OWNER (`<namespace>.<service>`) tells
# this installation's state from another's on the same node; $POD_UID tells this pod from the next.
#
# Its parts, beside it (one ConfigMap), one concern each: state.sh (the state files, paths read back),
# lock.sh (one writer per node), journal.sh (the restore that is written down first), apply.sh,
# remove.sh, holder.sh (which pod holds the node, is a stop an uninstall), containerd.sh (will
# containerd read it; runs containerd-check.sh). README.md describes the state files and lifecycle.
#
# Rules that hold at every step, so a pod killed after any command leaves a node the next pod (or
# remove) completes or rolls back:
#   - a file is ours only while its content hashes to one listed for it in $MANAGED; anything else
#     (changed by someone else, a symlink) is never deleted or overwritten;
#   - a hash is listed before the file is written, and a backup is complete (copied, then renamed)
#     before the file it backs up is replaced;
#   - a restore is journaled before the backup is renamed back, and the journal is settled first
#     thing under the lock;
#   - every state file is rewritten through a new file and a rename, and a failed write is a failure;
#   - nothing is written, chmod-ed or deleted outside certs.d: no symlink it did not create is
#     followed, and every path read back from state is checked again.
#
# POSIX sh (plus `local`, which busybox ash and dash have), because it runs in the registry's own
# image (busybox): an air-gapped cluster needs one image, not two. No `set -e`: remove must go on
# past a failed file, so every step checks itself.
# `local` scopes each function's variables: busybox ash (the image's sh) and dash both have it.
# shellcheck disable=SC3043
# Its parts are found beside it, wherever shellcheck is run from.
# shellcheck source-path=SCRIPTDIR
set -u
# No globbing: state paths are split into words (`for rel in $(managed_paths)`) and must never be
# taken for patterns. The one glob (claimed_by) turns it on for its line.
set -f
# Every file it writes is the root's alone (containerd reads them as root; hosts.toml may carry a
# node credential): 0600, directories 0700, except host directories it creates (0755, as certs.d's own).
umask 077

log() { echo "node-config: $*"; }
die() {
  echo "node-config: $*" >&2
  exit 2
}

MODE=${1:-run}
: "${CERTS_DIR:?set CERTS_DIR to the node directory containerd reads hosts.toml files from}"
: "${OWNER:?set OWNER to the name of this installation, <namespace>.<service>}"
# remove takes back what the state lists: it needs no files to write.
[ "$MODE" = remove ] || : "${FILES_DIR:?set FILES_DIR to the directory the node files (manifest and one file per key) are mounted in}"
# The same rule as the program's: OWNER becomes part of a directory name on the node. Namespace and
# Service names are DNS labels (no dot), so exactly one dot makes every pair its own directory.
case $OWNER in
  *.*.* | [!a-z0-9]* | *.[!a-z0-9]* | *. | *[!a-z0-9.-]*) die "OWNER '$OWNER' must be a lower-case DNS-like name <namespace>.<service> ([a-z0-9][a-z0-9-]*.[a-z0-9][a-z0-9-]*)" ;;
  *.*) ;;
  *) die "OWNER '$OWNER' must be a lower-case DNS-like name <namespace>.<service> ([a-z0-9][a-z0-9-]*.[a-z0-9][a-z0-9-]*)" ;;
esac
case ${REAPPLY_SECONDS:-300} in
  "" | *[!0-9]*) die "REAPPLY_SECONDS '$REAPPLY_SECONDS' must be a whole number of seconds" ;;
esac
# containerd-check.sh ships beside this file. enforce: not ready while the node's containerd will not
# read $NODE_CERTS_DIR (the node's name for $CERTS_DIR); warn: say so and be ready; off: no check.
CONTAINERD_CHECK=${CONTAINERD_CHECK:-off}
case $CONTAINERD_CHECK in
  off) ;;
  enforce | warn)
    : "${CONTAINERD_CONFIG:?set CONTAINERD_CONFIG to the containerd config file of this node, as mounted here}"
    : "${NODE_CERTS_DIR:?set NODE_CERTS_DIR to the path of CERTS_DIR as the node names it}"
    ;;
  *) die "CONTAINERD_CHECK '$CONTAINERD_CHECK' must be enforce, warn or off" ;;
esac

# The leading dot keeps containerd from taking the state directory for a registry host. It is the
# only name of ours in certs.d itself (the lock is flock on certs.d), so no OWNER can reach another.
STATE="$CERTS_DIR/.cluster-registry.$OWNER"
MANAGED="$STATE/managed"
CREATED="$STATE/created-dirs"
# Files it has a backup of: a backup that went missing is reported, never taken for "nothing to restore".
BACKED_UP="$STATE/backed-up"
# Files that were ours once and that someone else changed since: `<path> <sha256 of theirs>`. Theirs
# while they exist (never backed up, overwritten or restored over); once they delete it, ours again.
RELEASED="$STATE/released"
HOLDER="$STATE/holder"
PODS="$STATE/pods"
JOURNAL="$STATE/journal"
STAGE="$STATE/stage"
STAGE_LIST="$STATE/stage.list"
# After SIGTERM, how long to wait for a lock another pod holds before leaving the node as it is.
LOCK_WAIT_SECONDS=${LOCK_WAIT_SECONDS:-20}
ME="${POD_UID:-pid-$$}"
# A directory of the pod's own (an emptyDir): the readiness file, scratch for API calls.
RUN_DIR=${RUN_DIR:-}
READY_FILE=${RUN_DIR:+$RUN_DIR/ready}
case $0 in
  */*) AGENT_DIR=${0%/*} ;;
  *) AGENT_DIR=. ;;
esac
CHECK_SAID=
LOCKED=
STOP=
SERIAL=
SRC=
# After SIGTERM: when lock() stops waiting for the lock, and whether it has said so.
GIVE_UP_AT=
GAVE_UP=
NL='
'

# shellcheck source=state.sh
. "$AGENT_DIR/state.sh"
# shellcheck source=lock.sh
. "$AGENT_DIR/lock.sh"
# shellcheck source=journal.sh
. "$AGENT_DIR/journal.sh"
# shellcheck source=apply.sh
. "$AGENT_DIR/apply.sh"
# shellcheck source=remove.sh
. "$AGENT_DIR/remove.sh"
# shellcheck source=holder.sh
. "$AGENT_DIR/holder.sh"
# shellcheck source=containerd.sh
. "$AGENT_DIR/containerd.sh"

ready() { [ -z "$READY_FILE" ] || : > "$READY_FILE" || true; }
unready() { [ -z "$READY_FILE" ] || rm -f "$READY_FILE"; }

# Sleeps $1 seconds (a whole number), or less: one second at a time, the stop flag tested before
# each, so a SIGTERM at any instant (the trap only sets the flag) is acted on within a second. A
# single long sleeper killed from the trap loses a SIGTERM that lands after the flag's test but
# before the sleeper exists, or before the forked shell has become `sleep`: 300 s, past kubelet's 30.
rest() {
  local left="$1"
  # Tests only: widens the window between the loop's test of the flag and the sleep.
  [ -z "${RACE_WINDOW_SECONDS:-}" ] || sleep "$RACE_WINDOW_SECONDS"
  while [ -z "$STOP" ] && [ "$left" -gt 0 ]; do
    sleep 1
    left=$((left - 1))
  done
}

# The first apply of a run: checked before this pod takes the node over (a pod with unusable files
# leaves it to the old one), and only if no pod that reached the node later holds it. Prints
# `passive` when it stood back; fails when this pod cannot work here.
take_node() {
  lock || return 1
  stage || return 1
  if ! SERIAL=$(my_serial); then
    log "cannot record this pod on the node: $STATE is not writable"
    return 1
  fi
  if ! may_take; then
    rm -rf "$STAGE" "$STAGE_LIST"
    log "a newer pod (serial $(holder_serial)) holds this node; this pod (serial $SERIAL) of an earlier rollout leaves it alone"
    unlock
    PASSIVE=1
    return 0
  fi
  if ! guard || ! echo "$SERIAL $ME" | put "$HOLDER" || ! apply_staged; then
    log "could not apply: stopping; what was written is recorded, for the next pod to finish and uninstall to remove"
    return 1
  fi
  unlock
  # Readiness settled before the line that says it applied.
  if containerd_reads; then ready; fi
  log "applied; re-applying every ${REAPPLY_SECONDS:-300}s"
}

# A re-apply: puts back what someone deleted, picks up a changed Secret; stands back for good once
# a newer pod holds the node.
reapply() {
  if ! lock; then
    unready
    return
  fi
  if ! holding; then
    PASSIVE=1
    unready
    log "a newer pod holds this node: leaving it alone"
  elif stage; then
    # Files that became unusable meanwhile keep the last good ones on the node.
    if apply_staged && containerd_reads; then ready; else unready; fi
  fi
  unlock
}

# After SIGTERM: uninstall only if this pod holds the node and its DaemonSet is gone.
stop_run() {
  lock || return 1
  if ! holding; then
    log "a newer pod holds this node: leaving its files"
  else
    case $(daemonset_state) in
      gone) remove || return 1 ;;
      present) log "the DaemonSet remains (a restart, an eviction or a drain, not an uninstall): keeping the node's files" ;;
      *) log "cannot tell whether the DaemonSet was deleted: keeping the node's files (run 'node-agent.sh remove' on the node to restore it: see its README)" ;;
    esac
  fi
  unlock
}

run() {
  PASSIVE=
  # Only a flag: an apply or remove under way always finishes before the pod acts on SIGTERM.
  trap 'STOP=1' TERM INT
  # RUN_DIR is an emptyDir: a restarted container (SIGKILL, OOM) finds the last one's ready file.
  unready
  take_node || exit 1
  while [ -z "$STOP" ]; do
    rest "${REAPPLY_SECONDS:-300}"
    [ -z "$STOP" ] || break
    [ -n "$PASSIVE" ] || reapply
  done
  stop_run || exit 1
  exit 0
}

on_exit() {
  unready
  unlock
}

trap on_exit EXIT
case $MODE in
  apply)
    lock || exit 1
    stage || exit 1
    apply_staged || exit 1
    ;;
  remove)
    lock || exit 1
    remove || exit 1
    ;;
  run) run ;;
  *)
    echo "usage: $0 [apply|remove|run]" >&2
    exit 2
    ;;
esac
