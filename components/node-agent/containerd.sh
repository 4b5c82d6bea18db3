# Will containerd read what the agent wrote? Part of node-agent.sh (sourced); the check itself is
# containerd-check.sh, beside it, a program of its own that tests run on real configs.
# `local` scopes each function's variables: busybox ash (the image's sh) and dash both have it.
# shellcheck shell=sh disable=SC3043

# Runs containerd-check.sh on the node's containerd config; says its one line when the answer
# changes. False only under `enforce` with a node that will not read $NODE_CERTS_DIR. No containerd
# version is passed: the check's answer is then the cautious one (see README, Nodes).
containerd_reads() {
  local said rc
  [ "$CONTAINERD_CHECK" != off ] || return 0
  said=$(sh "$AGENT_DIR/containerd-check.sh" "$CONTAINERD_CONFIG" "$NODE_CERTS_DIR" 2>&1)
  rc=$?
  if [ "$rc" -eq 0 ]; then
    [ -z "$CHECK_SAID" ] || log "containerd now reads $NODE_CERTS_DIR"
    CHECK_SAID=
    return 0
  fi
  said=${said%%"$NL"*}
  [ -n "$said" ] || said="containerd-check: failed ($rc) on $CONTAINERD_CONFIG"
  said=$(node_names "$said")
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

# $1 with the node's name for its config, not where it is mounted here.
node_names() {
  local said="$1"
  if [ -n "${NODE_CONTAINERD_CONFIG:-}" ]; then
    while :; do
      case $said in
        *"$CONTAINERD_CONFIG"*) said="${said%%"$CONTAINERD_CONFIG"*}$NODE_CONTAINERD_CONFIG${said#*"$CONTAINERD_CONFIG"}" ;;
        *) break ;;
      esac
    done
  fi
  echo "$said"
}
