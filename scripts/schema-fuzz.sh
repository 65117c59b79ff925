#!/usr/bin/env bash
# Schema fuzzing: schemathesis (pinned, from PyPI) against `parachute server` on a
# throwaway vault and home, inside a network namespace that has only loopback (a
# generated MCP or bot URL can reach nothing), over every documented route but the auth
# mode switch and the sandbox image build. Fails on any 5xx, any response that breaks
# its documented schema, or a panic in the server's log. Needs root (unshare). It builds
# the debug binary first, unless SCHEMA_FUZZ_NO_BUILD=1 says the caller just did (CI runs
# it right after `cargo test --workspace`, whose feature set a lone build would not
# share, so it would compile much of the workspace again).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."
ST_VERSION=4.32.5
SEED=${SCHEMA_FUZZ_SEED:-20261202}

if [ -z "${PARACHUTE_FUZZ_NETNS:-}" ]; then
  venv=target/schema-fuzz/venv
  if ! "$venv/bin/st" --version 2>/dev/null | grep -q "$ST_VERSION"; then
    rm -rf "$venv" && python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "schemathesis==$ST_VERSION"
  fi
  if [ -z "${SCHEMA_FUZZ_NO_BUILD:-}" ]; then
    cargo build --quiet -p parachute --bin parachute
  fi
  [ -x target/debug/parachute ] || { echo "schema-fuzz: no target/debug/parachute" >&2; exit 1; }
  # Its own network namespace (only loopback) and PID namespace: when the script ends,
  # however it ends, the server and anything it started end with it.
  exec unshare --net --pid --fork --kill-child env PARACHUTE_FUZZ_NETNS=1 "$self" "$@"
fi

ip link set lo up
work=$(mktemp -d)
mkdir -p "$work/home"
# The sample vault's tracked files only (not a developer's local server state).
git ls-files -z sample-vault | xargs -0 cp --parents -t "$work"
mv "$work/sample-vault" "$work/vault"
port=3333
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
}
trap 'stop_server; rm -rf "$work"' EXIT

env -u CLAUDE_CODE_OAUTH_TOKEN -u ANTHROPIC_API_KEY -u AUTH_MODE -u VAULT_PATH \
  HOME="$work/home" PARACHUTE_HOME="$work/home/.parachute" PARACHUTE_KEYRING=off \
  SPARE_CLI_PROCESSES=0 ANTHROPIC_BASE_URL=http://127.0.0.1:9 \
  DOCKER_HOST="unix://$work/no-docker.sock" \
  target/debug/parachute server -f --vault "$work/vault" --port "$port" > "$work/server.log" 2>&1 &
server_pid=$!
healthy=
for _ in $(seq 300); do
  if curl -sf "http://127.0.0.1:$port/api/health" > /dev/null; then healthy=1; break; fi
  sleep 0.1
done
if [ -z "$healthy" ]; then
  cat "$work/server.log" >&2
  echo "schema-fuzz: the server did not become healthy" >&2
  exit 1
fi

# Known data for the fuzzer's id dictionaries (scripts/schemathesis.toml): an imported
# session with a fixed id, and a workspace.
api() { curl -sf -X "$1" "http://127.0.0.1:$port$2" -H 'Content-Type: application/json' -d "$3" > /dev/null; }
api POST /api/import '{"archived":false,"data":[{"uuid":"5e55a0e0-0000-4000-8000-000000000001","name":"Fuzz","chat_messages":[{"sender":"human","text":"hello"},{"sender":"assistant","text":"hi"}]}]}'
api POST /api/workspaces '{"name":"Fuzz"}'

start=$(date +%s)
status=0
# Run from the throwaway folder: schemathesis keeps its cache in the working directory.
# One worker: with two, Python 3.11's ast module fails now and then inside hypothesis
# ("AST constructor recursion depth mismatch"), an error of the tool, not of the API.
repo=$PWD
(cd "$work" && "$repo/target/schema-fuzz/venv/bin/st" --config-file "$repo/scripts/schemathesis.toml" run \
  "http://127.0.0.1:$port/api/openapi.json" \
  --exclude-path /api/auth/settings --exclude-path /api/sandbox/build \
  --phases examples,coverage,fuzzing,stateful --seed "$SEED" \
  --workers 1 --request-timeout 30 --suppress-health-check all --no-color \
  > "$work/st.out" 2>&1) || status=$?
cat "$work/st.out"
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "schema-fuzz: the server died during the run" >&2
  status=1
fi
if grep -q "panicked" "$work/server.log"; then
  grep -B2 -A5 "panicked" "$work/server.log" >&2
  echo "schema-fuzz: the server panicked" >&2
  status=1
fi
echo "schema-fuzz: $(grep -Eo '[0-9]+ generated' "$work/st.out" | tail -1) cases in $(( $(date +%s) - start )) s, exit $status"
exit "$status"
