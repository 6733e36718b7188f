#!/bin/sh
# `make demo`: the main job end to end on this machine, in a temporary
# directory that is removed afterwards.
#   1. start sigil-server (embedded RocksDB datastore, self-signed CA)
#   2. generate a join token and register a workload for the current user
#   3. mint an X509-SVID and a JWT-SVID through the admin API and verify them
#   4. start sigil-agent, which attests with the join token
#   5. fetch this process's X509-SVID and a JWT-SVID from the Workload API,
#      and verify them with openssl and the agent's validator
set -eu
[ -n "${DEMO_TRACE:-}" ] && set -x

BIN=${1:-build/bin}
BIN=$(cd "$BIN" && pwd)
WORK=$(mktemp -d /tmp/sigil-demo.XXXXXX)
TD=example.org
PORT=$(( 20000 + $$ % 20000 ))
SERVER_SOCK="$WORK/server/api.sock"
AGENT_SOCK="$WORK/agent/public/api.sock"
SERVER_PID=""
AGENT_PID=""

cleanup() {
  [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { echo "demo failed: $*" >&2; [ -f "$WORK/server.log" ] && tail -20 "$WORK/server.log" >&2; [ -f "$WORK/agent.log" ] && tail -20 "$WORK/agent.log" >&2; exit 1; }
wait_for() {  # wait_for <what> <command...>
  what=$1; shift
  i=0
  until "$@" >/dev/null 2>&1; do
    i=$((i + 1)); [ $i -gt 100 ] && fail "timed out waiting for $what"
    sleep 0.2
  done
}

step "Starting sigil-server for trust domain $TD (data in $WORK/server)"
"$BIN/sigil-server" run -trustDomain "$TD" -dataDir "$WORK/server/data" -socketPath "$SERVER_SOCK" \
  -bindAddress 127.0.0.1 -serverPort "$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
wait_for "the server" "$BIN/sigil-server" healthcheck -socketPath "$SERVER_SOCK"
"$BIN/sigil-server" healthcheck -socketPath "$SERVER_SOCK"

step "Generating a join token for this node"
TOKEN=$("$BIN/sigil-server" token generate -socketPath "$SERVER_SOCK" -spiffeID "spiffe://$TD/demo-node" -ttl 600 |
  sed -n 's/^Token: //p')
[ -n "$TOKEN" ] || fail "no token"
echo "Token: $TOKEN"

step "Registering spiffe://$TD/demo/workload for uid $(id -u) on that node"
"$BIN/sigil-server" entry create -socketPath "$SERVER_SOCK" -parentID "spiffe://$TD/demo-node" \
  -spiffeID "spiffe://$TD/demo/workload" -selector "unix:uid:$(id -u)" -x509SVIDTTL 600

step "Minting an X509-SVID through the admin API and verifying it with openssl"
"$BIN/sigil-server" x509 mint -socketPath "$SERVER_SOCK" -spiffeID "spiffe://$TD/demo/minted" -ttl 5m \
  -write "$WORK/minted"
openssl verify -CAfile "$WORK/minted/bundle.pem" "$WORK/minted/svid.pem"
openssl x509 -in "$WORK/minted/svid.pem" -noout -subject -ext subjectAltName -enddate

step "Minting a JWT-SVID through the admin API"
JWT=$("$BIN/sigil-server" jwt mint -socketPath "$SERVER_SOCK" -spiffeID "spiffe://$TD/demo/minted" -audience demo)
# The claims (base64url without padding; base64 -d stops at the missing pad).
echo "$JWT" | cut -d. -f2 | tr '_-' '/+' | base64 -d 2>/dev/null || true
echo

step "Starting sigil-agent with the join token"
"$BIN/sigil-server" bundle show -socketPath "$SERVER_SOCK" >"$WORK/bootstrap.pem"
"$BIN/sigil-agent" run -trustDomain "$TD" -serverAddress 127.0.0.1 -serverPort "$PORT" \
  -dataDir "$WORK/agent/data" -socketPath "$AGENT_SOCK" -joinToken "$TOKEN" \
  -trustBundle "$WORK/bootstrap.pem" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
wait_for "the agent" "$BIN/sigil-agent" healthcheck -socketPath "$AGENT_SOCK"
"$BIN/sigil-agent" healthcheck -socketPath "$AGENT_SOCK"
"$BIN/sigil-server" agent list -socketPath "$SERVER_SOCK"

step "Fetching this process's X509-SVID from the Workload API"
wait_for "the workload SVID" "$BIN/sigil-agent" api fetch x509 -socketPath "$AGENT_SOCK" -write "$WORK/fetched"
"$BIN/sigil-agent" api fetch x509 -socketPath "$AGENT_SOCK" -write "$WORK/fetched"
openssl verify -CAfile "$WORK/fetched/bundle.0.pem" "$WORK/fetched/svid.0.pem"
openssl x509 -in "$WORK/fetched/svid.0.pem" -noout -subject -ext subjectAltName -enddate

step "Fetching a JWT-SVID for audience 'demo' and validating it through the agent"
WJWT=$("$BIN/sigil-agent" api fetch jwt -socketPath "$AGENT_SOCK" -audience demo |
  sed -n '/^token(/{n;s/^[[:space:]]*//;p;q}')
[ -n "$WJWT" ] || fail "no JWT-SVID"
"$BIN/sigil-agent" api validate jwt -socketPath "$AGENT_SOCK" -audience demo -svid "$WJWT"

step "Done: server and agent stop and $WORK is removed"
