#!/usr/bin/env bash
# Starts the sandbox (fake Wappi + fake Gemini), whatsapp-gateway and ai-agent-service in the
# foreground; Ctrl-C stops all of them. SANDBOX=0 skips the sandbox and leaves Wappi/Gemini
# settings to each service's own .env (real tokens, real base URLs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY="$ROOT/.venv/bin/python"
SANDBOX=${SANDBOX:-1}
SANDBOX_PORT=${SANDBOX_PORT:-8090}
GATEWAY_PORT=${GATEWAY_PORT:-8001}
AGENT_PORT=${AGENT_PORT:-8002}
PG=${PG_URL:-postgresql://postgres@127.0.0.1:5432}

export RABBITMQ_URL=${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/}

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo "run: stopping"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

sandbox_env=()
agent_env=()
if [ "$SANDBOX" = "1" ]; then
  # A short key is fine against the sandbox; with the real APIs each service's .env holds a long one.
  export ADMIN_API_KEY=${ADMIN_API_KEY:-local-admin-key}
  "$PY" -m sandbox --port "$SANDBOX_PORT" --log-level warning &
  pids+=($!)
  sandbox_url="http://127.0.0.1:$SANDBOX_PORT"
  sandbox_env=(WAPPI_BASE_URL="$sandbox_url" WAPPI_TOKEN=sandbox-token WAPPI_PROFILE_ID=sandbox-profile
    GEMINI_BASE_URL="$sandbox_url" GEMINI_API_KEY=sandbox-key)
  # The sample knowledge base describes this company; with the real APIs ai-agent-service/.env names yours.
  # SANDBOX_URL gives the console its "try it as a customer" page.
  agent_env=(BUSINESS_NAME="${BUSINESS_NAME:-ТОО «СкладПро»}" SANDBOX_URL="$sandbox_url")
fi

(cd whatsapp-gateway && exec env "${sandbox_env[@]}" DATABASE_URL="${GATEWAY_DATABASE_URL:-$PG/whatsapp_gateway}" \
  PORT="$GATEWAY_PORT" "$PY" app.py) &
pids+=($!)
# MALLOC_ARENA_MAX=2 as in its Dockerfile: fewer glibc arenas for its threads, less memory kept after a burst.
(cd ai-agent-service && exec env "${sandbox_env[@]}" "${agent_env[@]}" MALLOC_ARENA_MAX=2 GATEWAY_URL="http://127.0.0.1:$GATEWAY_PORT" \
  DATABASE_URL="${AGENT_DATABASE_URL:-$PG/ai_agent}" PORT="$AGENT_PORT" "$PY" app.py) &
pids+=($!)

for port in "$GATEWAY_PORT" "$AGENT_PORT"; do
  for _ in $(seq 60); do
    curl -fsS "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    sleep 1
  done
done
echo "run: sandbox :$SANDBOX_PORT  whatsapp-gateway :$GATEWAY_PORT  ai-agent-service :$AGENT_PORT  (Ctrl-C stops all)"
echo "run: console http://127.0.0.1:$AGENT_PORT/console (password: CONSOLE_PASSWORD, else ADMIN_API_KEY)"
if [ "$SANDBOX" = "1" ]; then
  echo "run: try it as a customer http://127.0.0.1:$AGENT_PORT/console/try"
fi
# Any one process dying takes the others down, so a broken start is not mistaken for a running system.
wait -n "${pids[@]}"
