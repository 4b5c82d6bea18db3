# Apply: the mounted files checked and staged, then put in place, each backed up first when it is
# someone else's. Part of node-agent.sh (sourced).
# `local` scopes each function's variables: busybox ash (the image's sh) and dash both have it.
# shellcheck shell=sh disable=SC3043

# A key is a file name in $FILES_DIR; starting with a letter or digit keeps kubelet's own `..data`
# and `..<timestamp>` entries, and anything climbing out, from being named.
safe_key() {
  case $1 in
    "" | [!A-Za-z0-9]* | *[!A-Za-z0-9._-]*) return 1 ;;
  esac
}

# kubelet keeps a Secret volume's files in a timestamped directory behind a `..data` symlink and
# swaps the symlink when the Secret changes. Resolving it once and reading everything from there
# gives one consistent version of the manifest and the files, even mid-swap. Sets SRC.
pin_source() {
  local target
  SRC=$FILES_DIR
  [ -L "$FILES_DIR/..data" ] || return 0
  target=$(readlink "$FILES_DIR/..data") || return 1
  case $target in
    /*) SRC=$target ;;
    *) SRC="$FILES_DIR/$target" ;;
  esac
}

# Reads the manifest once through without writing anything: a bad line leaves the node untouched.
# The files are named by the manifest, never found by listing the directory (kubelet's own entries
# live there too).
check_manifest() {
  local key rel extra seen="$NL"
  if [ ! -f "$SRC/manifest" ]; then
    log "refusing $FILES_DIR: it has no manifest"
    return 1
  fi
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
  local m other
  # The one pattern the agent matches files with: globbing is on for this line only.
  set +f
  set -- "$1" "$CERTS_DIR"/.cluster-registry.*/managed
  set -f
  local dir="$1"
  shift
  for m in "$@"; do
    if [ ! -f "$m" ] || [ "$m" = "$MANAGED" ]; then continue; fi
    if awk -v d="$dir/" 'index($1, d) == 1 { found = 1 } END { exit !found }' "$m"; then
      other=${m%/managed}
      echo "${other##*/.cluster-registry.}"
      return 0
    fi
  done
  return 1
}
check_claims() {
  local key rel extra other
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
  local key rel extra
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
  # A pod killed mid-apply leaves its stage: this apply finishes the work (see the rules).
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

# A released file (ours once, theirs since) that still exists: left alone, quietly (said once, when
# it was released). What a killed pod left of our record of it is dropped.
keep_theirs() {
  local rel="$1" theirs
  theirs=$(hash_of "$CERTS_DIR/$rel") || theirs=-
  if [ "$(released_hash "$rel")" != "$theirs" ]; then set_released "$rel" "$theirs" || return 1; fi
  if is_listed "$rel"; then set_hash "$rel" || return 1; fi
  if exists "$STATE/backup/$rel" || listed_line "$BACKED_UP" "$rel"; then
    rm -rf "$STATE/backup/$rel"
    del_line "$BACKED_UP" "$rel" || return 1
  fi
}

# Ours once, changed since by someone else: theirs now, kept as it is and never restored over.
release_changed() {
  local rel="$1"
  log "$CERTS_DIR/$rel was changed by someone else since this agent wrote it: keeping theirs, not managing it while it is there"
  # Recorded first: a pod killed after it finishes the rest at the next apply.
  set_released "$rel" "$(hash_of "$CERTS_DIR/$rel" || echo -)" || return 1
  set_hash "$rel" || return 1
  rm -rf "$STATE/backup/$rel"
  del_line "$BACKED_UP" "$rel"
}

# Copies someone else's file aside before it is replaced: complete (copied, then renamed) first.
back_up() {
  local rel="$1" dst="$CERTS_DIR/$1"
  mkdir -p "$STATE/backup/${rel%/*}" || return 1
  rm -rf "$STATE/backup/$rel.tmp"
  # -a: the copy keeps mode, owner, mtime, and a symlink stays the same symlink (never followed).
  if ! cp -a "$dst" "$STATE/backup/$rel.tmp" || ! add_line "$BACKED_UP" "$rel" || ! mv -fT "$STATE/backup/$rel.tmp" "$STATE/backup/$rel"; then
    rm -rf "$STATE/backup/$rel.tmp"
    log "could not back up $dst: leaving it as it is"
    return 1
  fi
  log "backed up $dst"
}

# Puts the staged file in place, its hash listed first. A file of ours that is not 0600 (written
# by an agent before 0600, or chmod-ed since) is written again, not chmod-ed: chmod follows a
# symlink, a new file and a rename never do.
write_file() {
  local rel="$1" new="$2" dst="$CERTS_DIR/$1"
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

install_file() {
  local rel="$1" dir="${1%/*}" dst="$CERTS_DIR/$1" new
  guard || return 1
  no_link "$CERTS_DIR/$dir" && no_link "$STATE/backup/$dir" || return 1
  new=$(hash_of "$STAGE/$rel") || return 1
  if released "$rel"; then
    if exists "$dst"; then
      keep_theirs "$rel"
      return
    fi
    log "$dst, left to someone else, is gone: this agent writes it again"
    set_released "$rel" || return 1
  fi
  if [ ! -d "$CERTS_DIR/$dir" ]; then
    add_line "$CREATED" "$dir" || return 1
    mkdir -m 755 "$CERTS_DIR/$dir" || [ -d "$CERTS_DIR/$dir" ] || return 1
  fi
  if exists "$dst" && ! ours "$rel" && ! same_as_backup "$rel"; then
    if is_listed "$rel"; then
      release_changed "$rel"
      return
    fi
    back_up "$rel" || return 1
  fi
  write_file "$rel" "$new"
}

# Puts the staged files in place and releases the ones no longer wanted (stage has succeeded).
apply_staged() {
  local rel
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
  for rel in $(released_paths); do
    grep -qxF -- "$rel" "$STAGE_LIST" || set_released "$rel" || return 1
  done
  rm -rf "$STAGE" "$STAGE_LIST"
}
