/**
 * The script the node-config DaemonSet runs on every node. POSIX sh, because it runs in the
 * registry's own image (busybox), so an air-gapped cluster needs one image, not two.
 */

/** A file the script keeps on the node, relative to containerd's certs.d directory. */
export interface NodeFile {
    /** `<host dir>/<file>`, e.g. `registry.registry.svc.cluster.local:5000/hosts.toml`. */
    path: string;
    content: string;
}

const SAFE_PATH = /^[A-Za-z0-9][A-Za-z0-9._:-]*\/[A-Za-z0-9][A-Za-z0-9._-]*$/;
const SAFE_OWNER = /^[a-z0-9][a-z0-9.-]*$/;
const EOF_MARK = "CLUSTER_REGISTRY_EOF";

/** The state directory's name inside certs.d; a leading dot so containerd never takes it for a host. */
export function stateDirName(owner: string): string {
    return `.cluster-registry.${owner}`;
}

/**
 * Renders the script. `owner` tells this installation's state apart from another's on the same
 * node. Modes: `apply` writes the files (backing up any file it did not write), `remove` puts the
 * node back as it was, `run` applies and holds the node (re-applying every REAPPLY_SECONDS), and
 * on SIGTERM removes everything unless a newer pod holds the node: a rollout's new pod starts first
 * (maxSurge), so nodes are never without their configuration, and uninstalling still cleans up.
 */
export function renderNodeScript(owner: string, files: readonly NodeFile[]): string {
    if (!SAFE_OWNER.test(owner)) throw new Error(`owner ${JSON.stringify(owner)} must be a lower-case DNS-like name`);
    const seen = new Set<string>();
    for (const f of files) {
        // Paths become shell words and file names on the node: allow nothing that could escape.
        if (!SAFE_PATH.test(f.path) || f.path.includes("..")) throw new Error(`unsafe node file path ${JSON.stringify(f.path)}`);
        if (seen.has(f.path)) throw new Error(`node file ${f.path} is given twice`);
        if (f.content.split("\n").includes(EOF_MARK)) throw new Error(`node file ${f.path} contains the line ${EOF_MARK}`);
        seen.add(f.path);
    }
    const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
    const dirs = [...new Set(sorted.map((f) => f.path.slice(0, f.path.indexOf("/"))))];
    const staging = [
        ...dirs.map((d) => `    mkdir -p '${d}'`),
        ...sorted.map((f) => `    cat > '${f.path}' <<'${EOF_MARK}'\n${f.content.endsWith("\n") ? f.content : f.content + "\n"}${EOF_MARK}`),
    ].join("\n");
    const desired = sorted.map((f) => f.path).join("\n");

    return `#!/bin/sh
# Written by cluster-registry (${owner}). Keeps containerd's hosts.toml files for the in-cluster
# registries under $CERTS_DIR, and puts the node back as it was when it is uninstalled.
#   apply   write the files; a file this script did not write is backed up first
#   remove  delete what apply wrote, restore the backups, drop the directories it created
#   run     the DaemonSet's mode: apply and hold the node, re-apply every $REAPPLY_SECONDS, and on
#           SIGTERM remove everything, unless a newer pod (a rollout's) has taken the node over
set -eu
umask 022
: "\${CERTS_DIR:?set CERTS_DIR to the node directory containerd reads hosts.toml files from}"
STATE="$CERTS_DIR/${stateDirName(owner)}"
MANAGED="$STATE/managed"
CREATED="$STATE/created-dirs"
HOLDER="$STATE/holder"
LOCK="$STATE.lock"
ME="\${POD_UID:-pid-$$}"

log() { echo "node-config: $*"; }
listed() { [ -f "$1" ] && grep -qxF -- "$2" "$1"; }
unlist() {
  [ -f "$1" ] || return 0
  grep -vxF -- "$2" "$1" > "$1.tmp" || true
  mv -f "$1.tmp" "$1"
}

# One writer at a time on this node (a rollout's new pod starts before the old one stops).
lock() {
  tries=0
  until mkdir "$LOCK" 2>/dev/null; do
    tries=$((tries + 1))
    # apply takes milliseconds: a lock this old was left by a killed pod.
    if [ "$tries" -ge 100 ]; then
      log "taking over a stale lock"
      rm -rf "$LOCK"
      tries=0
    fi
    sleep 0.1
  done
}
unlock() { rmdir "$LOCK" 2>/dev/null || true; }

desired() {
  cat <<'${EOF_MARK}'
${desired}
${EOF_MARK}
}

stage() {
  rm -rf "$STATE/stage"
  mkdir -p "$STATE/stage"
  (
    cd "$STATE/stage"
${staging}
  )
}

# Every step is recorded before it is taken, so a pod killed at any point leaves nothing that
# remove does not know about.
install_file() {
  rel=$1
  dst="$CERTS_DIR/$rel"
  dir=\${rel%/*}
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
  if ! cmp -s "$STATE/stage/$rel" "$dst"; then
    # Same directory, so the rename is atomic: containerd never reads a half-written file.
    cp "$STATE/stage/$rel" "$dst.cluster-registry-tmp"
    mv -f "$dst.cluster-registry-tmp" "$dst"
    log "wrote $dst"
  fi
}

release_file() {
  rel=$1
  dst="$CERTS_DIR/$rel"
  dir=\${rel%/*}
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

apply() {
  mkdir -p "$STATE"
  touch "$MANAGED" "$CREATED"
  stage
  for rel in $(cat "$MANAGED"); do
    [ -f "$STATE/stage/$rel" ] || release_file "$rel"
  done
  for rel in $(desired); do
    install_file "$rel"
  done
  rm -rf "$STATE/stage"
}

remove() {
  if [ ! -d "$STATE" ]; then
    log "nothing to remove"
    return 0
  fi
  for rel in $(cat "$MANAGED" 2>/dev/null); do
    release_file "$rel"
  done
  for dir in $(cat "$CREATED" 2>/dev/null); do
    rmdir "$CERTS_DIR/$dir" 2>/dev/null || true
  done
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
  mkdir -p "$STATE"
  echo "$ME" > "$HOLDER.tmp"
  mv -f "$HOLDER.tmp" "$HOLDER"
  apply
  unlock
  log "applied; re-applying every \${REAPPLY_SECONDS:-300}s"
  while [ -z "$stop" ]; do
    sleep "\${REAPPLY_SECONDS:-300}" &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=
    [ -z "$stop" ] || break
    lock
    if holding; then apply; fi
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

case "\${1:-run}" in
  apply) lock; apply; unlock ;;
  remove) lock; remove; unlock ;;
  run) run ;;
  *) echo "usage: $0 [apply|remove|run]" >&2; exit 2 ;;
esac
`;
}
