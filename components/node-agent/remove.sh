# Remove: each file taken back (its backup restored, or deleted) only while it is still ours, and
# the directories this agent created dropped once empty. Part of node-agent.sh (sourced).
# `local` scopes each function's variables: busybox ash (the image's sh) and dash both have it.
# shellcheck shell=sh disable=SC3043

# Someone deleted the backup of $1: the original is lost. Ours goes (never left live where the
# original should be), and the failure is reported, once.
backup_lost() {
  local rel="$1"
  rm -f "$CERTS_DIR/$rel"
  set_hash "$rel" || return 1
  del_line "$BACKED_UP" "$rel" || return 1
  log "could not restore $CERTS_DIR/$rel: its backup in $STATE/backup is gone; removed this agent's file, the original is lost"
  return 1
}

# Takes back one file: restores its backup, or deletes it, but only while it is still ours.
release_file() {
  local rel="$1" dir="${1%/*}" dst="$CERTS_DIR/$1"
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
    restore_backup "$rel" || return 1
  elif listed_line "$BACKED_UP" "$rel"; then
    backup_lost "$rel"
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

# Finishes what it can: a file it cannot put back is reported and the state kept for the next try.
remove() {
  local rel dir failed=0
  if [ ! -d "$STATE" ]; then
    log "nothing to remove"
    return 0
  fi
  state_dir_ok || return 1
  settle_journal || return 1
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
