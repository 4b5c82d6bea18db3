# The journal: the one step that cannot be made safe by ordering alone, renaming a backup over the
# node's file, is written down first, and settled first thing under the lock. Part of node-agent.sh.
# `local` scopes each function's variables: busybox ash (the image's sh) and dash both have it.
# shellcheck shell=sh disable=SC3043

# Puts the backup of $1 back, journaled. A rename: the original comes back with its mode, owner,
# mtime, or as the symlink it was.
restore_backup() {
  local rel="$1"
  echo "restore $rel" | put "$JOURNAL" || return 1
  if ! mv -fT "$STATE/backup/$rel" "$CERTS_DIR/$rel"; then
    rm -f "$JOURNAL"
    log "could not restore $CERTS_DIR/$rel"
    # Never leave our file live where the original should be.
    rm -f "$CERTS_DIR/$rel"
    return 1
  fi
  log "restored $CERTS_DIR/$rel"
}

# Settles a restore a killed pod had started: once the backup has been renamed back, the file on the
# node is the original and no longer ours. The path is checked again, as everything read back.
settle_journal() {
  local what rel
  [ -f "$JOURNAL" ] || return 0
  read -r what rel < "$JOURNAL" || true
  if [ "$what" = restore ] && safe_path "$rel" && ! exists "$STATE/backup/$rel"; then
    set_hash "$rel" || return 1
    del_line "$BACKED_UP" "$rel" || return 1
  fi
  rm -f "$JOURNAL"
}
