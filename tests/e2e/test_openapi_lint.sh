#!/usr/bin/env bash
# Lints docs/openapi.yaml with Redocly CLI (npm @redocly/cli, pinned in
# tests/openapi/package-lock.json), every recommended rule an error; checks
# that the linter catches a broken copy, so a lint that passes means
# something; and that the build's openapi.json, which dagd serves, is the
# docs file's content.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

LINT="$DAGD_SOURCE_DIR/tests/openapi"
DOC="$DAGD_SOURCE_DIR/docs/openapi.yaml"
command -v node >/dev/null && command -v npm >/dev/null || { echo "FAIL: node and npm are needed (scripts/dev deps)"; exit 1; }
if [ ! -x "$LINT/node_modules/@redocly/cli/bin/cli.js" ]; then
  (cd "$LINT" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || { echo "FAIL: npm ci in $LINT"; exit 1; }
fi
# No telemetry and no update check: the linter works offline.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
redocly() { node "$LINT/node_modules/@redocly/cli/bin/cli.js" "$@"; }

run redocly lint --config "$LINT/redocly.yaml" --format stylish "$DOC"
expect_rc 0 "docs/openapi.yaml lints clean"

# A copy with an operation missing its operationId and a dangling $ref.
sed -e '0,/operationId: get_dags/{/operationId: get_dags/d}' \
    -e 's|#/components/schemas/DAGRunCollection|#/components/schemas/NoSuchSchema|' "$DOC" >"$WORK/broken.yaml"
run redocly lint --config "$LINT/redocly.yaml" --format stylish "$WORK/broken.yaml"
expect_rc 1 "a broken copy fails the lint"
expect_out "operation-operationId" "the missing operationId is reported"
expect_out "no-unresolved-refs" "the dangling reference is reported"

# What dagd serves (built in from build/openapi.json) is the docs file.
run /usr/bin/python3 - "$DOC" "$DAGD_BUILD_DIR/openapi.json" <<'PY'
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
built = json.load(open(sys.argv[2], encoding="utf-8"))
sys.exit(0 if doc == built else "build/openapi.json differs from docs/openapi.yaml: rebuild")
PY
expect_rc 0 "build/openapi.json is docs/openapi.yaml"
finish
