#!/bin/sh
# cluster-registry's node agent. Keeps containerd's hosts.toml files (and the CA they name) for the
# in-cluster registries under $CERTS_DIR, and puts the node back as it was when it is uninstalled.
#   apply   write the files; a file this agent did not write is backed up first
#   remove  delete what apply wrote, restore the backups, drop the directories it created
#   run     the DaemonSet's mode: apply and hold the node, re-apply every $REAPPLY_SECONDS; on
#           SIGTERM remove everything only if this pod still holds the node and its DaemonSet is
#           gone or being deleted (a restart, an eviction or a rollout is not an uninstall)
#
# This file is the same for every cluster: what it writes reaches it as data. $FILES_DIR (a mounted
# Secret) holds `manifest`, one `KEY PATH` line per file, and each file under its KEY; the file goes
# to $CERTS_DIR/PATH, PATH being `<host dir>/<file name>`. $OWNER (`<namespace>.<service>`) tells
# this installation's state from another's on the same node; $POD_UID tells this pod from the next.
#
# Rules that hold at every step, so a pod killed after any command leaves a node the next pod (or
# remove) completes or rolls back:
#   - a file is ours only while its content hashes to one listed for it in $MANAGED; anything else
#     (changed by someone else, a symlink) is never deleted or overwritten;
#   - a hash is listed before the file is written, and a backup is complete (copied, then renamed)
#     before the file it backs up is replaced;
#   - a restore is journaled before the backup is renamed back, and the journal is settled first
#     thing under the lock;
#   - every state file is rewritten through a temp file and a rename, and a failed write is a failure.
#
# POSIX sh, because it runs in the registry's own image (busybox): an air-gapped cluster needs one
# image, not two. No `set -e`: remove must go on past a failed file, so every step checks itself.
set -u
# Every file it writes is the root's alone (containerd reads them as root; hosts.toml may carry a
# node credential): 0600, directories 0700, except host directories it creates (0755, as certs.d's own).
umask 077

log() { echo "node-config: $*"; }
die() {
  echo "node-config: $*" >&2
  exit 2
}

: "${CERTS_DIR:?set CERTS_DIR to the node directory containerd reads hosts.toml files from}"
: "${FILES_DIR:?set FILES_DIR to the directory the node files (manifest and one file per key) are mounted in}"
: "${OWNER:?set OWNER to the name of this installation, <namespace>.<service>}"
# The same rule as the program's: OWNER becomes part of a directory name on the node. Namespace and
# Service names are DNS labels (no dot), so exactly one dot makes every pair its own directory.
case $OWNER in
  *.*.* | .* | *. | [!a-z0-9]* | *.[!a-z0-9]* | *[!a-z0-9.-]*) die "OWNER '$OWNER' must be a lower-case DNS-like name <namespace>.<service> ([a-z0-9][a-z0-9-]*.[a-z0-9][a-z0-9-]*)" ;;
  *.*) ;;
  *) die "OWNER '$OWNER' must be a lower-case DNS-like name <namespace>.<service> ([a-z0-9][a-z0-9-]*.[a-z0-9][a-z0-9-]*)" ;;
esac
case ${REAPPLY_SECONDS:-300} in
  "" | *[!0-9]*) die "REAPPLY_SECONDS '$REAPPLY_SECONDS' must be a whole number of seconds" ;;
esac
case ${CONTAINERD_CHECK:-off} in
  off) ;;
  enforce | warn)
    : "${CONTAINERD_CONFIG:?set CONTAINERD_CONFIG to the containerd config file of this node, as mounted here}"
    : "${NODE_CERTS_DIR:?set NODE_CERTS_DIR to the path of CERTS_DIR as the node names it}"
    ;;
  *) die "CONTAINERD_CHECK '$CONTAINERD_CHECK' must be enforce, warn or off" ;;
esac

# The leading dot keeps containerd from taking the state directory for a registry host. Every other
# name of ours in certs.d starts `.cluster-registry-` (a dash, not a dot), so no OWNER can reach it.
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
# containerd-check.sh ships beside this file. enforce: not ready while the node's containerd will not
# read $NODE_CERTS_DIR (the node's name for $CERTS_DIR); warn: say so and be ready; off: no check.
CONTAINERD_CHECK=${CONTAINERD_CHECK:-off}
case $0 in
  */*) CHECK_SCRIPT="${0%/*}/containerd-check.sh" ;;
  *) CHECK_SCRIPT=./containerd-check.sh ;;
esac
CHECK_SAID=
LOCKED=
stop=
# After SIGTERM: when lock() stops waiting for the lock, and whether it has said so.
GIVE_UP_AT=
GAVE_UP=
NL='
'

# ---- small, checked building blocks -------------------------------------------------------------

# Writes stdin to a new file $1, a name only this agent uses: whatever is there (a killed pod's
# leftover, or a symlink planted to lead the write elsewhere) is removed first, and the file is
# created exclusively (noclobber: O_EXCL), so no write ever goes through a symlink. umask: 0600.
write_new() {
  rm -f "$1" || return 1
  (
    set -C
    cat > "$1"
  )
}
# A directory this agent works in (a host directory, its state, a backup directory) is never a
# symlink: following one would lead a write or a delete out of certs.d.
no_link() {
  [ -L "$1" ] || return 0
  log "refusing to work in $1: it is a symlink, and this agent follows none it did not create"
  return 1
}
# What state files name is checked again before it is used, as anything read from the node: a
# line that is not `<host dir>/<file>` (e.g. `../x`) is ignored, said on stderr (stdout is the list).
checked_paths() {
  while read -r p; do
    if safe_path "$p"; then echo "$p"; else log "ignoring '$p' in $STATE: not a <host dir>/<file> path" >&2; fi
  done
}

# Replaces a state file with stdin, through a temp file and a rename; a write error (full disk) fails.
put() {
  write_new "$1.tmp" && mv -fT "$1.tmp" "$1" && return 0
  rm -f "$1.tmp"
  log "could not write $1"
  return 1
}
listed_line() { [ -f "$1" ] && grep -qxF -- "$2" "$1"; }
add_line() {
  if listed_line "$1" "$2"; then return 0; fi
  { [ ! -f "$1" ] || cat "$1"; echo "$2"; } | put "$1"
}
del_line() {
  [ -f "$1" ] || return 0
  listed_line "$1" "$2" || return 0
  { grep -vxF -- "$2" "$1" || true; } | put "$1"
}

# The sha256 of a regular file (not a symlink), or nothing.
hash_of() {
  [ -f "$1" ] && [ ! -L "$1" ] || return 1
  h=$(sha256sum < "$1") || return 1
  echo "${h%% *}"
}
# Lines of $MANAGED are `<path> <sha256>`; a path may have two while it is being rewritten.
hashes_of() { [ -f "$MANAGED" ] && awk -v p="$1" '$1 == p { print $2 }' "$MANAGED"; }
is_listed() { [ -f "$MANAGED" ] && awk -v p="$1" '$1 == p { found = 1 } END { exit !found }' "$MANAGED"; }
ours() {
  h=$(hash_of "$CERTS_DIR/$1") || return 1
  # A line without a hash was written by the agent before hashes were kept: it wrote that file.
  awk -v p="$1" '$1 == p && NF == 1 { found = 1 } END { exit !found }' "$MANAGED" && return 0
  hashes_of "$1" | grep -qxF -- "$h"
}
add_hash() { add_line "$MANAGED" "$1 $2"; }
# Keeps only `<path> <hash>` for the path, or (no hash) drops the path.
set_hash() {
  [ -f "$MANAGED" ] || : | put "$MANAGED" || return 1
  awk -v p="$1" -v h="${2:-}" '$1 != p || $2 == h' "$MANAGED" | put "$MANAGED"
}
# The node's file is the backup we took of it (a pod died between the backup and the write).
same_as_backup() {
  b="$STATE/backup/$1"
  d="$CERTS_DIR/$1"
  if [ -L "$b" ]; then
    [ -L "$d" ] && [ "$(readlink "$b")" = "$(readlink "$d")" ]
  else
    [ -f "$b" ] && [ -f "$d" ] && [ ! -L "$d" ] && cmp -s "$b" "$d"
  fi
}
exists() { [ -e "$1" ] || [ -L "$1" ]; }

ready() { [ -z "$READY_FILE" ] || : > "$READY_FILE" || true; }
unready() { [ -z "$READY_FILE" ] || rm -f "$READY_FILE"; }

# ---- the lock -----------------------------------------------------------------------------------

# One writer at a time on this node, shared by every installation (claiming a host directory, see
# claimed_by, must be atomic across installations too): flock(2) on certs.d itself, through fd 9.
# The kernel keeps a paused process's lock (SIGSTOP, a frozen cgroup, a throttled or swapping node)
# for as long as it is paused and releases a dead one's at once, so no pod ever writes after another
# has taken the node, and no lease or stale-lock breaking is needed. The `registry:3.1.1` image is
# Alpine's, whose busybox has the applet (CONFIG_FLOCK=y in alpinelinux/aports main/busybox/busyboxconfig,
# `flock [-sxun] FD`). Locking the directory rather than a file in it leaves no name of ours that a
# user's namespace or Service could collide with, and nothing to clean up after a kill.
# Fails, rather than waiting forever, when certs.d is missing or not writable, and (after SIGTERM)
# when another pod still holds it $LOCK_WAIT_SECONDS later: the pod's grace period (30 s) is not forever.
lock() {
  if [ ! -d "$CERTS_DIR" ]; then
    log "cannot work: $CERTS_DIR does not exist (is the hostPath mounted?)"
    return 1
  fi
  if ! writable; then
    log "cannot write to $CERTS_DIR (read-only?): nothing changed"
    return 1
  fi
  # `command`: a failed redirection of `exec` would otherwise end the script.
  command exec 9< "$CERTS_DIR" || return 1
  # -n and a poll, not a blocking flock: a SIGTERM is acted on only between commands.
  until flock -n 9; do
    if [ -n "$stop" ] && gave_up_waiting; then
      exec 9<&-
      return 1
    fi
    sleep 0.1
  done
  LOCKED=1
}
# After SIGTERM, true once the lock has been waited for long enough; says so once.
gave_up_waiting() {
  now=$(date +%s)
  [ -n "$GIVE_UP_AT" ] || GIVE_UP_AT=$((now + LOCK_WAIT_SECONDS))
  [ "$now" -ge "$GIVE_UP_AT" ] || return 1
  [ -n "$GAVE_UP" ] || log "stopping (SIGTERM) while another pod still holds the node's lock: left the node as it is, no uninstall done (if this is an uninstall, run '$0 remove' on the node)"
  GAVE_UP=1
}
# Whether certs.d takes a new entry (busybox's `test -w` is always true for root). Named after this
# pod and process: pods do not share a PID namespace, and each container's agent may be PID 1.
writable() {
  probe="$CERTS_DIR/.cluster-registry-probe.$ME.$$"
  mkdir "$probe" 2>/dev/null && rmdir "$probe"
}
# Held since lock(): a kernel lock is not lost while its process lives, so this only catches a
# function called outside lock() by mistake.
guard() {
  [ -n "$LOCKED" ] && return 0
  log "not holding the node's lock: no change made"
  return 1
}
unlock() {
  if [ -n "$LOCKED" ]; then flock -u 9 || true; fi
  exec 9<&-
  LOCKED=
}

# ---- the files to write -------------------------------------------------------------------------

# A manifest path names a file on the node: exactly `<host dir>/<file>`, each part starting with a
# letter or digit, no `..`, nothing absolute, nothing the shell or a command could read as a pattern
# or an option. The program applies the same rule before it writes the Secret.
safe_path() {
  case $1 in
    */*/* | *..* | /* | */) return 1 ;;
    ?*/?*) ;;
    *) return 1 ;;
  esac
  safe_dir "${1%/*}" || return 1
  case ${1#*/} in [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) return 1 ;; esac
}
safe_dir() {
  case $1 in "" | *..* | [!A-Za-z0-9]* | *[!A-Za-z0-9._:-]*) return 1 ;; esac
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

# Another installation on this node that has files in host directory $1, if any: two installations
# writing docker.io/ would back up each other's files and restore stale ones over live ones.
claimed_by() {
  for m in "$CERTS_DIR"/.cluster-registry.*/managed; do
    if [ ! -f "$m" ] || [ "$m" = "$MANAGED" ]; then continue; fi
    if awk -v d="$1/" 'index($1, d) == 1 { found = 1 } END { exit !found }' "$m"; then
      other=${m%/managed}
      echo "${other##*/.cluster-registry.}"
      return 0
    fi
  done
  return 1
}
check_claims() {
  while read -r key rel extra || [ -n "$key" ]; do
    if [ -z "$key$rel$extra" ]; then continue; fi
    if other=$(claimed_by "${rel%/*}"); then
      log "refusing: ${rel%/*} on this node is managed by the installation $other; two installations must not manage the same host directory (give each its own caches): nothing changed"
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

# Checks the mounted files and stages them; on failure says why and leaves the node as it is.
stage() {
  # A pod killed mid-apply leaves its stage: this apply finishes the work (the rules above).
  [ ! -f "$STAGE_LIST" ] || log "a pod stopped mid-apply on this node (killed?): this apply finishes its work"
  if ! pin_source || ! check_manifest; then
    log "the node files in $FILES_DIR are unusable: nothing changed"
    return 1
  fi
  check_claims || return 1
  state_dir_ok || return 1
  if ! mkdir -p "$STATE" 2>/dev/null || ! copy_to_stage; then
    rm -rf "$STAGE" "$STAGE_LIST"
    log "could not stage the node files in $STATE (disk full or read-only?): nothing changed"
    return 1
  fi
}

# ---- changing the node --------------------------------------------------------------------------

# Settles a restore a killed pod had started: once the backup has been renamed back, the file on the
# node is the original and no longer ours.
# The state directory and its backups are real directories (see no_link).
state_dir_ok() {
  no_link "$STATE" && no_link "$STATE/backup" && no_link "$STATE/stage"
}

settle_journal() {
  [ -f "$JOURNAL" ] || return 0
  read -r what rel < "$JOURNAL" || true
  if [ "$what" = restore ] && safe_path "$rel" && ! exists "$STATE/backup/$rel"; then
    set_hash "$rel" || return 1
    del_line "$BACKED_UP" "$rel" || return 1
  fi
  rm -f "$JOURNAL"
}

install_file() {
  rel=$1
  dst="$CERTS_DIR/$rel"
  dir=${rel%/*}
  guard || return 1
  no_link "$CERTS_DIR/$dir" && no_link "$STATE/backup/$dir" || return 1
  new=$(hash_of "$STAGE/$rel") || return 1
  if released "$rel"; then
    if exists "$dst"; then
      theirs=$(hash_of "$dst") || theirs=-
      # Still theirs: left alone, quietly (said once, when it was released). What a killed pod left
      # of our record of it is dropped.
      if [ "$(released_hash "$rel")" != "$theirs" ]; then set_released "$rel" "$theirs" || return 1; fi
      if is_listed "$rel"; then set_hash "$rel" || return 1; fi
      if exists "$STATE/backup/$rel" || listed_line "$BACKED_UP" "$rel"; then
        rm -rf "$STATE/backup/$rel"
        del_line "$BACKED_UP" "$rel" || return 1
      fi
      return 0
    fi
    # They deleted it: the path is free, ours again.
    log "$dst, left to someone else, is gone: this agent writes it again"
    set_released "$rel" || return 1
  fi
  if [ ! -d "$CERTS_DIR/$dir" ]; then
    add_line "$CREATED" "$dir" || return 1
    mkdir -m 755 "$CERTS_DIR/$dir" || [ -d "$CERTS_DIR/$dir" ] || return 1
  fi
  if exists "$dst" && ! ours "$rel" && ! same_as_backup "$rel"; then
    if is_listed "$rel"; then
      # Ours once, changed since by someone else: theirs now, kept as it is and never restored over.
      log "$dst was changed by someone else since this agent wrote it: keeping theirs, not managing it while it is there"
      # Recorded first: a pod killed after it finishes the rest at the next apply.
      set_released "$rel" "$(hash_of "$dst" || echo -)" || return 1
      set_hash "$rel" || return 1
      rm -rf "$STATE/backup/$rel"
      del_line "$BACKED_UP" "$rel"
      return
    fi
    mkdir -p "$STATE/backup/$dir" || return 1
    rm -rf "$STATE/backup/$rel.tmp"
    # -a: the copy keeps mode, owner, mtime, and a symlink stays the same symlink (never followed).
    if ! cp -a "$dst" "$STATE/backup/$rel.tmp" || ! add_line "$BACKED_UP" "$rel" || ! mv -fT "$STATE/backup/$rel.tmp" "$STATE/backup/$rel"; then
      rm -rf "$STATE/backup/$rel.tmp"
      log "could not back up $dst: leaving it as it is"
      return 1
    fi
    log "backed up $dst"
  fi
  # A file of ours not 0600 (written by an agent before 0600, or chmod-ed since) is written again,
  # not chmod-ed: chmod follows a symlink, a new file and a rename never do.
  if [ "$(hash_of "$dst")" != "$new" ] || [ "$(stat -c %a "$dst" 2>/dev/null)" != 600 ]; then
    add_hash "$rel" "$new" || return 1
    # Same directory, so the rename is atomic: containerd never reads a half-written file. -T: the
    # rename replaces whatever is at $dst, never moves into a directory it names.
    if ! write_new "$dst.cluster-registry-tmp" < "$STAGE/$rel" || ! mv -fT "$dst.cluster-registry-tmp" "$dst"; then
      rm -f "$dst.cluster-registry-tmp"
      log "could not write $dst"
      return 1
    fi
    log "wrote $dst"
  fi
  set_hash "$rel" "$new"
}

# Takes back one file: restores its backup, or deletes it, but only while it is still ours.
release_file() {
  rel=$1
  dst="$CERTS_DIR/$rel"
  dir=${rel%/*}
  guard || return 1
  no_link "$CERTS_DIR/$dir" && no_link "$STATE/backup/$dir" || return 1
  rm -f "$dst.cluster-registry-tmp"
  if exists "$dst" && ! ours "$rel"; then
    if same_as_backup "$rel"; then
      log "$dst is already the original"
    else
      log "$dst was changed by someone else since this agent wrote it: keeping theirs"
    fi
    rm -rf "$STATE/backup/$rel"
    del_line "$BACKED_UP" "$rel" || return 1
  elif exists "$STATE/backup/$rel"; then
    echo "restore $rel" | put "$JOURNAL" || return 1
    # A rename: the original comes back with its mode, owner, mtime, or as the symlink it was.
    if ! mv -fT "$STATE/backup/$rel" "$dst"; then
      rm -f "$JOURNAL"
      log "could not restore $dst"
      # Never leave our file live where the original should be.
      rm -f "$dst"
      return 1
    fi
    log "restored $dst"
  elif listed_line "$BACKED_UP" "$rel"; then
    # Someone deleted the backup: the original is lost. Ours goes (never left live where the
    # original should be), and the failure is reported, once.
    rm -f "$dst"
    set_hash "$rel" || return 1
    del_line "$BACKED_UP" "$rel" || return 1
    log "could not restore $dst: its backup in $STATE/backup is gone; removed this agent's file, the original is lost"
    return 1
  elif exists "$dst"; then
    if ! rm -f "$dst"; then
      log "could not remove $dst"
      return 1
    fi
    log "removed $dst"
  fi
  set_hash "$rel" || return 1
  del_line "$BACKED_UP" "$rel" || return 1
  rm -f "$JOURNAL"
  rmdir "$STATE/backup/$dir" 2> /dev/null
  if listed_line "$CREATED" "$dir" && rmdir "$CERTS_DIR/$dir" 2> /dev/null; then
    del_line "$CREATED" "$dir" || return 1
  fi
  return 0
}

released() { [ -f "$RELEASED" ] && awk -v p="$1" '$1 == p { found = 1 } END { exit !found }' "$RELEASED"; }
released_paths() { [ ! -f "$RELEASED" ] || awk '{ print $1 }' "$RELEASED" | checked_paths; }
released_hash() { [ -f "$RELEASED" ] && awk -v p="$1" '$1 == p { print $2; exit }' "$RELEASED"; }
# Keeps only `<path> <hash>` for the path, or (no hash) drops the path.
set_released() {
  [ -f "$RELEASED" ] || : | put "$RELEASED" || return 1
  { awk -v p="$1" '$1 != p' "$RELEASED"; [ -z "${2:-}" ] || echo "$1 $2"; } | put "$RELEASED"
}

managed_paths() { [ ! -f "$MANAGED" ] || awk '!seen[$1]++ { print $1 }' "$MANAGED" | checked_paths; }

# Puts the staged files in place and releases the ones no longer wanted (stage has succeeded).
apply_staged() {
  settle_journal || return 1
  [ -f "$MANAGED" ] || : | put "$MANAGED" || return 1
  [ -f "$CREATED" ] || : | put "$CREATED" || return 1
  for rel in $(managed_paths); do
    if [ ! -f "$STAGE/$rel" ]; then release_file "$rel" || return 1; fi
  done
  while read -r rel; do
    install_file "$rel" || return 1
  done < "$STAGE_LIST"
  # A path no longer wanted is no longer anyone's concern here.
  if [ -f "$RELEASED" ]; then
    for rel in $(released_paths); do
      grep -qxF -- "$rel" "$STAGE_LIST" || set_released "$rel" || return 1
    done
  fi
  rm -rf "$STAGE" "$STAGE_LIST"
}

# Finishes what it can: a file it cannot put back is reported and the state kept for the next try.
remove() {
  if [ ! -d "$STATE" ]; then
    log "nothing to remove"
    return 0
  fi
  state_dir_ok || return 1
  settle_journal || return 1
  failed=0
  for rel in $(managed_paths); do
    release_file "$rel" || failed=$((failed + 1))
  done
  if [ -f "$CREATED" ]; then
    while read -r dir; do
      # Checked again, as every path read back from state: rmdir never leaves certs.d.
      if safe_dir "$dir"; then rmdir "$CERTS_DIR/$dir" 2> /dev/null || true; fi
    done < "$CREATED"
  fi
  if [ "$failed" -gt 0 ]; then
    log "node NOT fully restored: $failed file(s) could not be put back; what is left is listed in $STATE"
    return 1
  fi
  if ! rm -rf "$STATE"; then
    log "node restored, but $STATE could not be removed"
    return 1
  fi
  log "node restored"
}

# ---- who holds the node -------------------------------------------------------------------------

# Pods are ordered by when they first reached this node: each pod UID gets the next serial once, and
# keeps it across container restarts. A rollout's new pod always starts after the old one is running
# (maxSurge), so the higher serial is the newer configuration. The pod template cannot carry such
# a number: Pulumi has no counter to put there and a content checksum is not ordered.
my_serial() {
  s=$(awk -v u="$ME" '$2 == u { print $1 }' "$PODS" 2>/dev/null)
  if [ -z "$s" ]; then
    last=$(awk '$1 > m { m = $1 } END { print m + 0 }' "$PODS" 2>/dev/null || echo 0)
    s=$((last + 1))
    # The last 50 are plenty: only pods alive at the same time are ever compared.
    { [ ! -f "$PODS" ] || tail -n 49 "$PODS"; echo "$s $ME"; } | put "$PODS" || return 1
  fi
  echo "$s"
}
holder_serial() { awk '{ print $1; exit }' "$HOLDER" 2>/dev/null; }
holding() { [ "$(cat "$HOLDER" 2>/dev/null)" = "$SERIAL $ME" ]; }
# This pod may take the node: nobody holds it, or a pod that reached the node earlier does.
may_take() {
  h=$(holder_serial)
  case $h in
    "" | *[!0-9]*) return 0 ;; # nobody, or the agent before serials (a bare pod UID)
  esac
  [ "$h" -le "$SERIAL" ]
}

# ---- is this an uninstall? ----------------------------------------------------------------------

# Asks the Kubernetes API whether this pod's DaemonSet is gone or being deleted (`pulumi destroy`,
# or a replacement with a new name). Prints gone, present or unknown. The ServiceAccount may only
# `get` this one DaemonSet. busybox wget takes --header (checked with busybox 1.35).
daemonset_state() {
  if [ -z "${DAEMONSET:-}" ] || [ -z "${NAMESPACE:-}" ] || [ -z "${KUBERNETES_SERVICE_HOST:-}" ] || [ ! -r "${TOKEN_FILE:-}" ]; then
    echo unknown
    return
  fi
  host=$KUBERNETES_SERVICE_HOST
  case $host in *:*) host="[$host]" ;; esac
  url="https://$host:${KUBERNETES_SERVICE_PORT:-443}/apis/apps/v1/namespaces/$NAMESPACE/daemonsets/$DAEMONSET"
  err="${RUN_DIR:-/tmp}/wget.err"
  # --no-check-certificate: busybox wget cannot be given the cluster's CA (its openssl helper checks
  # only the system's), so it would refuse the API server. The token can read one DaemonSet, nothing else.
  body=$(timeout 10 wget -q -O - --no-check-certificate --header "Authorization: Bearer $(cat "$TOKEN_FILE")" "$url" 2> "$err")
  rc=$?
  if [ "$rc" -eq 0 ]; then
    case $body in
      *'"deletionTimestamp"'*) echo gone ;;
      *'"kind":"DaemonSet"'* | *'"kind": "DaemonSet"'*) echo present ;;
      *) echo unknown ;;
    esac
  elif grep -q ' 404 ' "$err" 2> /dev/null; then
    echo gone
  else
    echo unknown
  fi
}

# ---- will containerd read it? -------------------------------------------------------------------

# Runs containerd-check.sh on the node's containerd config; says its one line when the answer
# changes. False only under `enforce` with a node that will not read $NODE_CERTS_DIR. No containerd
# version is passed: the check's answer is then the cautious one (see README, Nodes).
containerd_reads() {
  [ "$CONTAINERD_CHECK" != off ] || return 0
  said=$(sh "$CHECK_SCRIPT" "$CONTAINERD_CONFIG" "$NODE_CERTS_DIR" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then
    [ -z "$CHECK_SAID" ] || log "containerd now reads $NODE_CERTS_DIR"
    CHECK_SAID=
    return 0
  fi
  said=${said%%"$NL"*}
  [ -n "$said" ] || said="containerd-check: failed ($rc) on $CONTAINERD_CONFIG"
  # The node's name for its config, not where it is mounted here.
  if [ -n "${NODE_CONTAINERD_CONFIG:-}" ]; then
    while :; do
      case $said in
        *"$CONTAINERD_CONFIG"*) said="${said%%"$CONTAINERD_CONFIG"*}$NODE_CONTAINERD_CONFIG${said#*"$CONTAINERD_CONFIG"}" ;;
        *) break ;;
      esac
    done
  fi
  if [ "$said" != "$CHECK_SAID" ]; then
    if [ "$CONTAINERD_CHECK" = enforce ]; then
      log "not ready: $said"
    else
      log "warning (containerdCheck: warn): $said"
    fi
  fi
  CHECK_SAID=$said
  [ "$CONTAINERD_CHECK" = warn ]
}

# ---- modes --------------------------------------------------------------------------------------

on_exit() {
  unready
  unlock
}

# Sleeps $1 seconds (a whole number), or less: one second at a time, the stop flag tested before
# each, so a SIGTERM at any instant (the trap only sets the flag) is acted on within a second. A
# single long sleeper killed from the trap loses a SIGTERM that lands after the flag's test but
# before the sleeper exists, or before the forked shell has become `sleep`: 300 s, past kubelet's 30.
rest() {
  # Tests only: widens the window between the loop's test of the flag and the sleep.
  [ -z "${RACE_WINDOW_SECONDS:-}" ] || sleep "$RACE_WINDOW_SECONDS"
  left=$1
  while [ -z "$stop" ] && [ "$left" -gt 0 ]; do
    sleep 1
    left=$((left - 1))
  done
}

run() {
  # Only a flag: an apply or remove under way always finishes before the pod acts on SIGTERM.
  trap 'stop=1' TERM INT
  # RUN_DIR is an emptyDir: a restarted container (SIGKILL, OOM) finds the last one's ready file.
  unready
  lock || exit 1
  # Checked before this pod takes the node over: a pod with unusable files leaves it to the old one.
  stage || exit 1
  if ! SERIAL=$(my_serial); then
    log "cannot record this pod on the node: $STATE is not writable"
    exit 1
  fi
  passive=
  if ! may_take; then
    passive=1
    rm -rf "$STAGE" "$STAGE_LIST"
    log "a newer pod (serial $(holder_serial)) holds this node; this pod (serial $SERIAL) of an earlier rollout leaves it alone"
    unlock
  else
    if ! guard || ! echo "$SERIAL $ME" | put "$HOLDER" || ! apply_staged; then
      log "could not apply: stopping; what was written is recorded, for the next pod to finish and uninstall to remove"
      exit 1
    fi
    unlock
    # Readiness settled before the line that says it applied.
    if containerd_reads; then ready; fi
    log "applied; re-applying every ${REAPPLY_SECONDS:-300}s"
  fi
  while [ -z "$stop" ]; do
    rest "${REAPPLY_SECONDS:-300}"
    [ -z "$stop" ] || break
    [ -z "$passive" ] || continue
    lock || {
      unready
      continue
    }
    if ! holding; then
      passive=1
      unready
      log "a newer pod holds this node: leaving it alone"
    elif stage; then
      # Files that became unusable meanwhile keep the last good ones on the node.
      if apply_staged && containerd_reads; then ready; else unready; fi
    fi
    unlock
  done
  lock || exit 1
  if ! holding; then
    log "a newer pod holds this node: leaving its files"
  else
    case $(daemonset_state) in
      gone) remove || {
        unlock
        exit 1
      } ;;
      present) log "the DaemonSet remains (a restart, an eviction or a drain, not an uninstall): keeping the node's files" ;;
      *) log "cannot tell whether the DaemonSet was deleted: keeping the node's files (run '$0 remove' on the node to restore it)" ;;
    esac
  fi
  unlock
  exit 0
}

trap on_exit EXIT
case "${1:-run}" in
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
