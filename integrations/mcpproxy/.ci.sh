#!/usr/bin/env bash
# Installs the third-party MCP server the end-to-end tests run the proxy
# against, from the npm registry, into node_modules (ignored by git).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v npm >/dev/null; then
  apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
fi
pkg=@modelcontextprotocol/server-filesystem@2026.8.31
if [ ! -f node_modules/@modelcontextprotocol/server-filesystem/package.json ] ||
   ! grep -q '"version": "2026.8.31"' node_modules/@modelcontextprotocol/server-filesystem/package.json; then
  npm install --no-save --no-audit --no-fund --silent --prefix . "$pkg"
fi
