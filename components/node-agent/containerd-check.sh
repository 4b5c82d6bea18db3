#!/bin/sh
# cluster-registry's containerd check: will this node's containerd read the hosts.toml files the
# node agent writes?
#
#   containerd-check.sh CONFIG NODE_CERTS_DIR [CONTAINERD_VERSION]
#
#   CONFIG              the node's containerd config file, readable here (a hostPath mount is fine):
#                       /etc/containerd/config.toml, or k3s's generated
#                       /var/lib/rancher/k3s/agent/etc/containerd/config.toml
#   NODE_CERTS_DIR      the directory the agent writes to, as the NODE names it (the hostPath path,
#                       not where it is mounted in the pod): containerd's config_path names it so
#   CONTAINERD_VERSION  optional: `containerd --version` output or just its number (1.7.24, 2.1.9, v2.2.0)
#
#   exit 0  containerd will read NODE_CERTS_DIR; prints nothing
#   exit 1  it will not; prints ONE line on stdout, starting `containerd-check:`, saying what to change
#   exit 2  usage error or CONFIG unreadable; one line on stderr
#
# containerd reads hosts.toml from CONFIG's registry config_path:
#   version 1 or 2 config  [plugins."io.containerd.grpc.v1.cri".registry] config_path
#                          (containerd 2.x migrates these; 1.x reads only these)
#   version 3 config       [plugins."io.containerd.cri.v1.images".registry] config_path (2.x only)
# It must name NODE_CERTS_DIR, alone or as one of several `:`-separated directories. Several
# directories are NOT read by containerd 2.1+'s transfer-service pull (containerd issues 12415,
# 12808: the hosts.toml files are ignored and the pull goes to DNS) unless CRI pulls images itself:
# `discard_unpacked_layers = true` ([plugins."io.containerd.grpc.v1.cri".containerd] in a version 2
# config, [plugins."io.containerd.cri.v1.images"] in version 3) or `use_local_image_pull = true`
# (version 3). containerd 1.x reads several directories.
# A version 3 config runs only on containerd 2.x. A version 1/2 config runs on both; unless
# CONTAINERD_VERSION says 1.x, the 2.x rule applies (the safe answer: a needless warning rather
# than a node that pulls past its mirrors in silence).
# From containerd 2.2 an absent config_path defaults to /etc/containerd/certs.d:/etc/docker/certs.d;
# that is assumed only when CONTAINERD_VERSION says 2.2 or later.
#
# Not followed: `imports` (drop-in files), inline tables (`registry = { config_path = ... }`),
# multi-line strings. Parsed with sed/awk as busybox has them: whitespace, ' or " quotes, comments,
# dotted keys and table headers in either quoting are handled.
set -eu

usage() {
  echo "usage: containerd-check.sh CONFIG NODE_CERTS_DIR [CONTAINERD_VERSION]" >&2
  exit 2
}
if [ $# -lt 2 ] || [ $# -gt 3 ]; then usage; fi
CONFIG=$1
NODE_DIR=$2
VERSION_TEXT=${3:-}
[ -n "$NODE_DIR" ] || usage
[ -r "$CONFIG" ] || {
  echo "containerd-check: cannot read containerd config $CONFIG" >&2
  exit 2
}

V2_CRI='plugins."io.containerd.grpc.v1.cri"'
V3_IMAGES='plugins."io.containerd.cri.v1.images"'

# Every `key = value` of CONFIG as one line `full.dotted.key<TAB>value`: table prefix applied,
# whitespace and comments dropped, '...' quoting turned into "..." in keys, quotes removed from
# string values, `plugins.cri` (version 1 name) spelled as in version 2.
flatten() {
  awk -v sq="'" '
    # The part of a line before a # that is outside quotes.
    function uncomment(s,   i, c, q, out) {
      q = ""; out = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (q == "" && c == "#") break
        if (q == "" && (c == "\"" || c == sq)) q = c
        else if (q != "" && c == q) q = ""
        out = out c
      }
      return out
    }
    # A dotted key with spaces outside quotes removed and single quotes made double.
    function normkey(s,   i, c, q, out) {
      q = ""; out = ""
      for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (q == "" && (c == " " || c == "\t")) continue
        if (q == "" && (c == "\"" || c == sq)) { q = c; out = out "\""; continue }
        if (q != "" && c == q) { q = ""; out = out "\""; continue }
        out = out c
      }
      if (out ~ /^plugins\.cri(\.|$)/) out = "plugins.\"io.containerd.grpc.v1.cri\"" substr(out, 12)
      return out
    }
    function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
    {
      line = trim(uncomment($0))
      if (line == "") next
      if (line ~ /^\[/) {
        gsub(/^\[+|\]+$/, "", line)
        table = normkey(line)
        next
      }
      eq = index(line, "=")
      if (eq == 0) next
      key = normkey(substr(line, 1, eq - 1))
      value = trim(substr(line, eq + 1))
      if (value ~ /^"/) { value = substr(value, 2); sub(/".*$/, "", value) }
      else if (substr(value, 1, 1) == sq) { value = substr(value, 2); value = substr(value, 1, index(value, sq) - 1) }
      else sub(/[ \t].*$/, "", value)
      if (table != "") key = table "." key
      if (table == "" && key ~ /^plugins\.cri(\.|$)/) key = normkey(key)
      print key "\t" value
    }
  ' "$CONFIG"
}
FLAT=$(flatten)

# The value of a full key (the last one wins, as in containerd's decoder for repeated dotted keys).
get() {
  printf '%s\n' "$FLAT" | awk -F '\t' -v k="$1" '$1 == k { v = $2; found = 1 } END { if (found) print v }'
}
has_prefix() {
  printf '%s\n' "$FLAT" | awk -F '\t' -v p="$1" 'index($1, p) == 1 { found = 1 } END { exit found ? 0 : 1 }'
}

config_version=$(get version)
[ -n "$config_version" ] || config_version=1

# containerd's major.minor from the optional argument: the first x.y number in it.
major=""
minor=""
if [ -n "$VERSION_TEXT" ]; then
  # The first word that reads vX.Y or X.Y (`containerd --version` has a `/v2` in its module path first).
  num=$(printf '%s\n' "$VERSION_TEXT" | awk '{
    for (i = 1; i <= NF; i++) {
      w = $i; sub(/^v/, "", w)
      if (w ~ /^[0-9]+\.[0-9]+/) { split(w, p, "."); sub(/[^0-9].*$/, "", p[2]); print p[1] " " p[2]; exit }
    }
  }')
  [ -n "$num" ] || {
    echo "containerd-check: cannot tell a version in '$VERSION_TEXT' (want e.g. 1.7.24 or 2.1.9)" >&2
    exit 2
  }
  major=${num% *}
  minor=${num#* }
fi

case $config_version in
  3)
    registry="$V3_IMAGES.registry"
    images_section="[$V3_IMAGES]"
    discard=$(get "$V3_IMAGES.discard_unpacked_layers")
    local_pull=$(get "$V3_IMAGES.use_local_image_pull")
    if [ "$major" = 1 ]; then
      echo "containerd-check: containerd $VERSION_TEXT cannot read $CONFIG (version = 3 needs containerd 2.x): write a version = 2 config"
      exit 1
    fi
    major=2
    ;;
  1 | 2)
    registry="$V2_CRI.registry"
    images_section="[$V2_CRI.containerd]"
    discard=$(get "$V2_CRI.containerd.discard_unpacked_layers")
    local_pull=""
    ;;
  *)
    echo "containerd-check: $CONFIG has version = $config_version, which no containerd reads" >&2
    exit 2
    ;;
esac
registry_section="[$registry]"

config_path=$(get "$registry.config_path")
if [ -z "$config_path" ] && [ "${major:-0}" -ge 2 ] && { [ "$major" -gt 2 ] || [ "${minor:-0}" -ge 2 ]; } &&
  ! has_prefix "$registry.config_path" && ! has_prefix "$registry.mirrors."; then
  config_path=/etc/containerd/certs.d:/etc/docker/certs.d
fi

say() {
  echo "containerd-check: $*"
  exit 1
}

# Directories compare without trailing slashes.
want=$(printf '%s\n' "$NODE_DIR" | sed 's:/*$::')
if [ -z "$config_path" ]; then
  say "containerd reads no hosts.toml (config_path is empty or absent in $CONFIG): set config_path = \"$want\" in $registry_section and restart containerd; on kind, create the cluster with this stack's kindClusterConfig output"
fi

dirs=0
named=no
old_ifs=$IFS
IFS=:
for d in $config_path; do
  [ -n "$d" ] || continue
  dirs=$((dirs + 1))
  [ "$(printf '%s\n' "$d" | sed 's:/*$::')" = "$want" ] && named=yes
done
IFS=$old_ifs

if [ "$named" = no ]; then
  say "containerd reads hosts.toml from $config_path, not $want: add $want to config_path in $registry_section of $CONFIG (or point the agent at a directory it names) and restart containerd"
fi
[ "$dirs" -gt 1 ] || exit 0
[ "$major" = 1 ] && exit 0
[ "$discard" = true ] && exit 0
[ "$local_pull" = true ] && exit 0

if [ "$config_version" = 3 ]; then
  fix="set discard_unpacked_layers = true or use_local_image_pull = true in $images_section"
else
  fix="set discard_unpacked_layers = true in $images_section (or pass this node's containerd version if it is 1.x)"
fi
say "containerd 2.x ignores hosts.toml when config_path names several directories ($config_path): $fix of $CONFIG and restart containerd"
