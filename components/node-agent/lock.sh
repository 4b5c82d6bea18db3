# The node's lock. Part of node-agent.sh (sourced).
#
# One writer at a time on this node, shared by every installation (claiming a host directory, see
# claimed_by, must be atomic across installations too): flock(2) on certs.d itself, through fd 9.
# The kernel keeps a paused process's lock (SIGSTOP, a frozen cgroup, a throttled or swapping node)
# for as long as it is paused and releases a dead one's at once, so no pod ever writes after another
# has taken the node, and there is no lease to check and no stale lock to break. The image is
# Alpine's, whose busybox has the applet (CONFIG_FLOCK=y in alpinelinux/aports main/busybox/busyboxconfig;
# `flock [-sxun] FD`, installed as /usr/bin/flock). Locking the directory rather than a file in it
# leaves no name of ours that a user's namespace or Service could collide with, and nothing to
# clean up after a kill.
# `local` scopes each function's variables: busybox ash (the image's sh) and dash both have it.
# shellcheck shell=sh disable=SC3043

# Fails, rather than waiting forever, when certs.d is missing or not writable, and (after SIGTERM)
# when another pod still holds the lock $LOCK_WAIT_SECONDS later: the grace period (30 s) is not forever.
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
    if [ -n "$STOP" ] && gave_up_waiting; then
      exec 9<&-
      return 1
    fi
    sleep 0.1
  done
  LOCKED=1
}
# After SIGTERM, true once the lock has been waited for long enough; says so once.
gave_up_waiting() {
  local now
  now=$(date +%s)
  [ -n "$GIVE_UP_AT" ] || GIVE_UP_AT=$((now + LOCK_WAIT_SECONDS))
  [ "$now" -ge "$GIVE_UP_AT" ] || return 1
  [ -n "$GAVE_UP" ] || log "stopping (SIGTERM) while another pod still holds the node's lock: left the node as it is, no uninstall done (if this is an uninstall, run 'node-agent.sh remove' on the node: see its README)"
  GAVE_UP=1
}
# Whether certs.d can be changed (busybox's `test -w` is always true for root): setting its mtime
# fails on a read-only mount and, unlike a probe entry a pod killed at that instant would leave
# behind, adds nothing to the node.
writable() { touch -c "$CERTS_DIR" 2>/dev/null; }
# Held since lock(): a kernel lock is not lost while its process lives, so this only catches a
# change attempted outside lock() by mistake.
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
