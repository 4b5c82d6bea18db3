# The node agent's state: files it keeps in $STATE, each rewritten through a new file and a rename,
# and the paths they name, checked again whenever they are read back. Part of node-agent.sh (sourced).
# `local` scopes each function's variables: busybox ash (the image's sh) and dash both have it.
# shellcheck shell=sh disable=SC3043

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
# Replaces a state file with stdin, through a new file and a rename; a write error (full disk) fails.
put() {
  write_new "$1.tmp" && mv -fT "$1.tmp" "$1" && return 0
  rm -f "$1.tmp"
  log "could not write $1"
  return 1
}
# A directory this agent works in (a host directory, its state, a backup directory) is never a
# symlink: following one would lead a write or a delete out of certs.d.
no_link() {
  [ -L "$1" ] || return 0
  log "refusing to work in $1: it is a symlink, and this agent follows none it did not create"
  return 1
}
state_dir_ok() {
  no_link "$STATE" && no_link "$STATE/backup" && no_link "$STATE/stage"
}
exists() { [ -e "$1" ] || [ -L "$1" ]; }

# A path names a file on the node: exactly `<host dir>/<file>`, each part starting with a letter or
# digit, no `..`, nothing absolute, nothing the shell or a command could read as a pattern or an
# option. The program applies the same rule before it writes the Secret.
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
# What state files name is checked again before it is used, as anything read from the node: a
# line that is not `<host dir>/<file>` (e.g. `../x`) is ignored, said on stderr (stdout is the list).
checked_paths() {
  local p
  while read -r p; do
    if safe_path "$p"; then echo "$p"; else log "ignoring '$p' in $STATE: not a <host dir>/<file> path" >&2; fi
  done
}

# Files of lines: added or dropped whole.
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
  local h
  [ -f "$1" ] && [ ! -L "$1" ] || return 1
  h=$(sha256sum < "$1") || return 1
  echo "${h%% *}"
}

# $MANAGED: `<path> <sha256>` lines; a path may have two while it is being rewritten.
managed_paths() { [ ! -f "$MANAGED" ] || awk '!seen[$1]++ { print $1 }' "$MANAGED" | checked_paths; }
hashes_of() { [ -f "$MANAGED" ] && awk -v p="$1" '$1 == p { print $2 }' "$MANAGED"; }
is_listed() { [ -f "$MANAGED" ] && awk -v p="$1" '$1 == p { found = 1 } END { exit !found }' "$MANAGED"; }
# A file is ours only while its content hashes to one listed for it.
ours() {
  local h
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

# $RELEASED: `<path> <sha256 of theirs>` for files ours once that someone else changed since.
released() { [ -f "$RELEASED" ] && awk -v p="$1" '$1 == p { found = 1 } END { exit !found }' "$RELEASED"; }
released_paths() { [ ! -f "$RELEASED" ] || awk '{ print $1 }' "$RELEASED" | checked_paths; }
released_hash() { [ -f "$RELEASED" ] && awk -v p="$1" '$1 == p { print $2; exit }' "$RELEASED"; }
# Keeps only `<path> <hash>` for the path, or (no hash) drops the path.
set_released() {
  [ -f "$RELEASED" ] || : | put "$RELEASED" || return 1
  { awk -v p="$1" '$1 != p' "$RELEASED"; [ -z "${2:-}" ] || echo "$1 $2"; } | put "$RELEASED"
}

# The node's file is the backup we took of it (a pod died between the backup and the write).
same_as_backup() {
  local b="$STATE/backup/$1" d="$CERTS_DIR/$1"
  if [ -L "$b" ]; then
    [ -L "$d" ] && [ "$(readlink "$b")" = "$(readlink "$d")" ]
  else
    [ -f "$b" ] && [ -f "$d" ] && [ ! -L "$d" ] && cmp -s "$b" "$d"
  fi
}
