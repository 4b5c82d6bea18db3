# Who holds the node, and whether a stop is an uninstall. Part of node-agent.sh (sourced).
# `local` scopes each function's variables: busybox ash (the image's sh) and dash both have it.
# shellcheck shell=sh disable=SC3043

# Pods are ordered by when they first reached this node: each pod UID gets the next serial once, and
# keeps it across container restarts. A rollout's new pod always starts after the old one is running
# (maxSurge), so the higher serial is the newer configuration. The pod template cannot carry such
# a number: Pulumi has no counter to put there and a content checksum is not ordered.
my_serial() {
  local s last
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
  local h
  h=$(holder_serial)
  case $h in
    "" | *[!0-9]*) return 0 ;; # nobody, or the agent before serials (a bare pod UID)
  esac
  [ "$h" -le "$SERIAL" ]
}

# Asks the Kubernetes API whether this pod's DaemonSet is gone or being deleted (`pulumi destroy`,
# or a replacement with a new name). Prints gone, present or unknown. The ServiceAccount may only
# `get` this one DaemonSet. busybox wget takes --header (checked with busybox 1.35).
daemonset_state() {
  local host url err body rc
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
