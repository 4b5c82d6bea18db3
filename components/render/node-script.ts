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
 * node back as it was, `run` applies, re-applies every REAPPLY_SECONDS, and removes on SIGTERM.
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
# registries under $CERTS_DIR, and puts the node back as it was when it stops.
#   apply   write the files; a file this script did not write is backed up first
#   remove  delete what apply wrote, restore the backups, drop the directories it created
#   run     apply, re-apply every $REAPPLY_SECONDS, and remove on SIGTERM (the DaemonSet's mode)
set -eu
umask 022
: "\${CERTS_DIR:?set CERTS_DIR to the node directory containerd reads hosts.toml files from}"
STATE="$CERTS_DIR/${stateDirName(owner)}"
MANAGED="$STATE/managed"
CREATED="$STATE/created-dirs"

log() { echo "node-config: $*"; }
listed() { [ -f "$1" ] && grep -qxF -- "$2" "$1"; }
unlist() {
  [ -f "$1" ] || return 0
  grep -vxF -- "$2" "$1" > "$1.tmp" || true
  mv -f "$1.tmp" "$1"
}

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

install_file() {
  rel=$1
  dst="$CERTS_DIR/$rel"
  dir=\${rel%/*}
  if [ ! -d "$CERTS_DIR/$dir" ]; then
    mkdir -p "$CERTS_DIR/$dir"
    listed "$CREATED" "$dir" || echo "$dir" >> "$CREATED"
  fi
  if [ -e "$dst" ] && ! listed "$MANAGED" "$rel" && [ ! -e "$STATE/backup/$rel" ]; then
    mkdir -p "$STATE/backup/$dir"
    cp "$dst" "$STATE/backup/$rel"
    log "backed up $dst"
  fi
  if ! cmp -s "$STATE/stage/$rel" "$dst"; then
    # Same directory, so the rename is atomic: containerd never reads a half-written file.
    cp "$STATE/stage/$rel" "$dst.cluster-registry-tmp"
    mv -f "$dst.cluster-registry-tmp" "$dst"
    log "wrote $dst"
  fi
  listed "$MANAGED" "$rel" || echo "$rel" >> "$MANAGED"
}

release_file() {
  rel=$1
  dst="$CERTS_DIR/$rel"
  dir=\${rel%/*}
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

run() {
  sleeper=
  trap 'kill $sleeper 2>/dev/null || true; remove; exit 0' TERM INT
  apply
  log "applied; re-applying every \${REAPPLY_SECONDS:-300}s"
  while :; do
    sleep "\${REAPPLY_SECONDS:-300}" &
    sleeper=$!
    wait "$sleeper" || true
    apply
  done
}

case "\${1:-run}" in
  apply) apply ;;
  remove) remove ;;
  run) run ;;
  *) echo "usage: $0 [apply|remove|run]" >&2; exit 2 ;;
esac
`;
}
