#!/usr/bin/env bash
# Installs the reference JavaScript verifier used by the credential tests
# (internal/credential: TestReferenceVerifier) from the committed lockfile.
# Needs node >= 18 and npm, and the npm registry. Idempotent.
set -euo pipefail
cd "$(dirname "$0")"
if [ -f node_modules/.package-lock.json ] && cmp -s package-lock.json node_modules/.certd-lock; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error
cp package-lock.json node_modules/.certd-lock
