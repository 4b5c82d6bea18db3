#!/bin/sh
# cluster-registry's node agent. Keeps containerd's hosts.toml files (and the CA they name) for the
# in-cluster registries under $CERTS_DIR, and puts the node back as it was when it is uninstalled.
#   apply   write the files; a file this agent did not write is backed up first
#   remove  delete what apply wrote, restore the backups, drop the directories it created
#   run     the DaemonSet's mode: apply and hold the node, re-apply every $REAPPLY_SECONDS, and on
#           SIGTERM remove everything, unless a newer pod (a rollout's) has taken the node over
#
# This file is the same for every cluster: what it writes reaches it as data. $FILES_DIR (a mounted
# Secret) holds `manifest`, one `KEY PATH` line per file, and each file under its KEY; the file goes
# to $CERTS_DIR/PATH, PATH being `<host dir>/<file name>`. $OWNER (`<namespace>.<service>`) tells
# this installation's state from another's on the same node; $POD_UID tells this pod from the next.
#
# POSIX sh, because it runs in the registry's own image (busybox): an air-gapped cluster needs one
# image, not two.
set -eu
umask 022

log() { echo "node-config: $*"; }
die() {
  echo "node-config: $*" >&2
  exit 2
}

: "${CERTS_DIR:?set CERTS_DIR to the node directory containerd reads hosts.toml files from}"
: "${FILES_DIR:?set FILES_DIR to the directory the node files (manifest and one file per key) are mounted in}"
: "${OWNER:?set OWNER to the name of this installation, <namespace>.<service>}"
# The same rule as the program's: OWNER becomes part of a directory name on the node.
case $OWNER in
  [!a-z0-9]* | *[!a-z0-9.-]*) die "OWNER '$OWNER' must be a lower-case DNS-like name ([a-z0-9][a-z0-9.-]*)" ;;
esac

# The leading dot keeps containerd from taking the state directory for a registry host.
STATE="$CERTS_DIR/.cluster-registry.$OWNER"
MANAGED="$STATE/managed"
CREATED="$STATE/created-dirs"
HOLDER="$STATE/holder"
STAGE="$STATE/stage"
STAGE_LIST="$STATE/stage.list"
LOCK="$STATE.lock"
ME="${POD_UID:-pid-$$}"
NL='
'

listed() { [ -f "$1" ] && grep -qxF -- "$2" "$1"; }
unlist() {
  [ -f "$1" ] || return 0
  grep -vxF -- "$2" "$1" > "$1.tmp" || true
  mv -f "$1.tmp" "$1"
}

# A manifest path names a file on the node: exactly `<host dir>/<file>`, each part starting with a
# letter or digit, no `..`, nothing absolute, nothing the shell or a command could read as a pattern
# or an option. The program applies the same rule before it writes the Secret.
safe_path() {
  case $1 in
    */*/* | *..* | /* | */) return 1 ;;
    ?*/?*) ;;
    *) return 1 ;;
  esac
  case ${1%/*} in [!A-Za-z0-9]* | *[!A-Za-z0-9._:-]*) return 1 ;; esac
  case ${1#*/} in [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) return 1 ;; esac
}
# A key is a file name in $FILES_DIR; starting with a letter or digit keeps kubelet's own `..data`
# and `..<timestamp>` entries, and anything climbing out, from being named.
safe_key() {
  case $1 in
    "" | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) return 1 ;;
  esac
}

# kubelet keeps a Secret volume's files in a timestamped directory behind a `..data` symlink and
# swaps the symlink when the Secret changes. Resolving it once and reading everything from there
# gives one consistent version of the manifest and the files, even mid-swap.
pin_source() {
  SRC=$FILES_DIR
  if [ -L "$FILES_DIR/..data" ]; then
    target=$(readlink "$FILES_DIR/..data") || return 1
    case $target in
      /*) SRC=$target ;;
      *) SRC="$FILES_DIR/$target" ;;
    esac
  fi
}

# Reads the manifest once through without writing anything: a bad line leaves the node untouched.
# The files are named by the manifest, never found by listing the directory (kubelet's own entries
# live there too).
check_manifest() {
  if [ ! -f "$SRC/manifest" ]; then
    log "refusing $FILES_DIR: it has no manifest"
    return 1
  fi
  seen=$NL
  while read -r key rel extra || [ -n "$key" ]; do
    if [ -z "$key$rel$extra" ]; then continue; fi
    if [ -n "$extra" ] || ! safe_key "$key" || ! safe_path "$rel"; then
      log "refusing manifest line '$key $rel${extra:+ $extra}': want KEY <host dir>/<file>"
      return 1
    fi
    case $seen in
      *"$NL$rel$NL"*)
        log "refusing manifest: $rel is listed twice"
        return 1
        ;;
    esac
    seen="$seen$rel$NL"
    if [ ! -f "$SRC/$key" ]; then
      log "refusing manifest: $rel names the key $key, which $FILES_DIR does not have"
      return 1
    fi
  done < "$SRC/manifest"
}

# Copies the checked files to $STAGE, in manifest order, listing them in $STAGE_LIST.
copy_to_stage() {
  rm -rf "$STAGE" "$STAGE_LIST" || return 1
  mkdir -p "$STAGE" || return 1
  : > "$STAGE_LIST" || return 1
  while read -r key rel extra || [ -n "$key" ]; do
    if [ -z "$key$rel$extra" ]; then continue; fi
    mkdir -p "$STAGE/${rel%/*}" || return 1
    # cat, not cp: the file gets this umask's mode, not the Secret volume's 0400.
    cat "$SRC/$key" > "$STAGE/$rel" || return 1
    echo "$rel" >> "$STAGE_LIST" || return 1
  done < "$SRC/manifest"
}

# Checks the mounted files and stages them; on failure says why and leaves the node as it is. It
# only ever runs as a condition (`if stage`), where `set -e` is off, so every step checks itself.
stage() {
  if ! pin_source || ! check_manifest; then
    log "the node files in $FILES_DIR are unusable: nothing changed"
    return 1
  fi
  if ! copy_to_stage; then
    rm -rf "$STAGE" "$STAGE_LIST"
    log "could not stage the node files: nothing changed"
    return 1
  fi
}

# One writer at a time on this node (a rollout's new pod starts before the old one stops).
lock() {
  tries=0
  until mkdir "$LOCK" 2>/dev/null; do
    tries=$((tries + 1))
    # An apply takes milliseconds, so a lock still held after 100 tries 0.1 s apart (about 10 s)
    # was left by a killed pod. The lock has no age to read: the tries are the clock.
    if [ "$tries" -ge 100 ]; then
      log "taking over a stale lock"
      rm -rf "$LOCK"
      tries=0
    fi
    sleep 0.1
  done
}
unlock() { rmdir "$LOCK" 2>/dev/null || true; }

# Every step is recorded before it is taken, so a pod killed at any point leaves nothing that
# remove does not know about.
install_file() {
  rel=$1
  dst="$CERTS_DIR/$rel"
  dir=${rel%/*}
  if [ ! -d "$CERTS_DIR/$dir" ]; then
    listed "$CREATED" "$dir" || echo "$dir" >> "$CREATED"
    mkdir -p "$CERTS_DIR/$dir"
  fi
  if [ -e "$dst" ] && ! listed "$MANAGED" "$rel" && [ ! -e "$STATE/backup/$rel" ]; then
    mkdir -p "$STATE/backup/$dir"
    cp "$dst" "$STATE/backup/$rel.tmp"
    mv -f "$STATE/backup/$rel.tmp" "$STATE/backup/$rel"
    log "backed up $dst"
  fi
  listed "$MANAGED" "$rel" || echo "$rel" >> "$MANAGED"
  if ! cmp -s "$STAGE/$rel" "$dst"; then
    # Same directory, so the rename is atomic: containerd never reads a half-written file.
    cp "$STAGE/$rel" "$dst.cluster-registry-tmp"
    mv -f "$dst.cluster-registry-tmp" "$dst"
    log "wrote $dst"
  fi
}

release_file() {
  rel=$1
  dst="$CERTS_DIR/$rel"
  dir=${rel%/*}
  rm -f "$dst.cluster-registry-tmp"
  if [ -e "$STATE/backup/$rel" ]; then
    mv -f "$STATE/backup/$rel" "$dst"
    rmdir "$STATE/backup/$dir" 2>/dev/null || true
    log "restored $dst"
  elif [ -e "$dst" ]; then
    rm -f "$dst"
    log "removed $dst"
  fi
  unlist "$MANAGED" "$rel"
  if listed "$CREATED" "$dir" && rmdir "$CERTS_DIR/$dir" 2>/dev/null; then
    unlist "$CREATED" "$dir"
  fi
}

# Puts the staged files in place and releases the ones no longer wanted (stage has succeeded).
# The loops read their list through a redirect, so release_file's rewrites of $MANAGED (a new
# file renamed over it) do not disturb the copy being read.
apply_staged() {
  touch "$MANAGED" "$CREATED"
  while read -r rel; do
    if [ ! -f "$STAGE/$rel" ]; then release_file "$rel"; fi
  done < "$MANAGED"
  while read -r rel; do
    install_file "$rel"
  done < "$STAGE_LIST"
  rm -rf "$STAGE" "$STAGE_LIST"
}

remove() {
  if [ ! -d "$STATE" ]; then
    log "nothing to remove"
    return 0
  fi
  if [ -f "$MANAGED" ]; then
    while read -r rel; do
      release_file "$rel"
    done < "$MANAGED"
  fi
  if [ -f "$CREATED" ]; then
    while read -r dir; do
      rmdir "$CERTS_DIR/$dir" 2>/dev/null || true
    done < "$CREATED"
  fi
  rm -rf "$STATE"
  log "node restored"
}

holding() { [ "$(cat "$HOLDER" 2>/dev/null)" = "$ME" ]; }

run() {
  stop=
  sleeper=
  # Only a flag: an apply or remove under way always finishes before the pod acts on SIGTERM.
  trap 'stop=1; [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true' TERM INT
  lock
  # Checked before this pod takes the node over: a pod with unusable files leaves it to the old one.
  if ! stage; then
    unlock
    exit 1
  fi
  echo "$ME" > "$HOLDER.tmp"
  mv -f "$HOLDER.tmp" "$HOLDER"
  apply_staged
  unlock
  log "applied; re-applying every ${REAPPLY_SECONDS:-300}s"
  while [ -z "$stop" ]; do
    sleep "${REAPPLY_SECONDS:-300}" &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=
    [ -z "$stop" ] || break
    lock
    # Files that became unusable meanwhile keep the last good ones on the node.
    if holding && stage; then apply_staged; fi
    unlock
  done
  lock
  if holding; then
    remove
  else
    log "a newer pod holds this node: leaving its files"
  fi
  unlock
  exit 0
}

case "${1:-run}" in
  apply)
    lock
    if ! stage; then
      unlock
      exit 1
    fi
    apply_staged
    unlock
    ;;
  remove)
    lock
    remove
    unlock
    ;;
  run) run ;;
  *)
    echo "usage: $0 [apply|remove|run]" >&2
    exit 2
    ;;
esac
