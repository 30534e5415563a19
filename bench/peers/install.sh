#!/usr/bin/env bash
# Installs the peer gateways `bench/run.py --peers` measures into bench/.peers (git-ignored, never
# project dependencies): the LiteLLM proxy from PyPI in its own venv, and the Portkey gateway from
# npm. Versions are pinned to ones seen to install and stream correctly on this kind of machine:
#  - LiteLLM 1.103.7: later releases want a newer certifi than some registries carry.
#  - Portkey 1.15.2 ships no lockfile; with the @hono/node-server npm would pick, streaming fails
#    (TypeError: immutable), so hono and @hono/node-server are pinned to what its repository locks.
set -euo pipefail
cd "$(dirname "$0")/.."
PEERS=.peers
LITELLM_VERSION=${LITELLM_VERSION:-1.103.7}
PORTKEY_VERSION=${PORTKEY_VERSION:-1.15.2}
PYTHON=${PYTHON:-python3}
if [ -z "${PIP_CERT:-}" ] && [ -f /etc/ssl/certs/ca-certificates.crt ]; then
    export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
mkdir -p "$PEERS"

if [ ! -x "$PEERS/litellm/bin/litellm" ]; then
    echo "installing the LiteLLM proxy $LITELLM_VERSION into bench/$PEERS/litellm"
    "$PYTHON" -m venv "$PEERS/litellm"
    "$PEERS/litellm/bin/pip" install -q --upgrade pip
    "$PEERS/litellm/bin/pip" install -q "litellm[proxy]==$LITELLM_VERSION"
fi

if [ ! -d "$PEERS/portkey/node_modules/@portkey-ai/gateway" ]; then
    command -v npm >/dev/null || { echo "the Portkey gateway needs Node.js and npm"; exit 1; }
    echo "installing the Portkey gateway $PORTKEY_VERSION into bench/$PEERS/portkey"
    mkdir -p "$PEERS/portkey"
    cat > "$PEERS/portkey/package.json" <<JSON
{
  "name": "fd2-bench-peers",
  "private": true,
  "dependencies": { "@portkey-ai/gateway": "$PORTKEY_VERSION" },
  "overrides": { "@hono/node-server": "1.13.5", "hono": "4.9.7" }
}
JSON
    (cd "$PEERS/portkey" && npm install --no-audit --no-fund --loglevel=error)
fi
echo "peers ready in bench/$PEERS"
