#!/usr/bin/env bash
# The registry operator against real docker-registry servers on loopback,
# populated with plain HTTP calls: wait for a tag (polling within a try,
# and rescheduled between pokes), resolve its digest, promote candidate ->
# prod keeping the digest (checked with curl), list tags, delete a
# manifest; a registry with basic auth: right credentials pass, wrong or
# missing ones fail with a clear error, a refused delete is reported, and
# no secret reaches any log.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
. "$DATA/registry/lib.sh"

command -v docker-registry >/dev/null || { echo "FAIL: docker-registry is not installed (scripts/dev deps)"; exit 1; }
command -v htpasswd >/dev/null || { echo "FAIL: htpasswd is not installed (apache2-utils)"; exit 1; }
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

registry_start open || exit 1
pids+=($REG_PID)
OPEN=$REG
PASS='s3cret-Pa55word'
BAD_PASS='wr0ng-Pa55word'
htpasswd -B -b -c "$WORK/htpasswd" ci "$PASS" 2>/dev/null
registry_start private "$WORK/htpasswd" false || exit 1
pids+=($REG_PID)
PRIVATE=$REG

candidate=$(push_image "$OPEN" team/model candidate 1) && ok || fail "push the candidate"
old=$(push_image "$OPEN" team/model old 2) && ok || fail "push an old image"
push_image "$PRIVATE" team/model candidate 1 -u "ci:$PASS" >/dev/null && ok || fail "push to the private registry"

mkdir -p "$WORK/dags"
cp "$DATA/registry/promote.lua" "$DATA/registry/private.lua" "$WORK/dags/"
# The scripted token service (Bearer tokens, Link pagination), used below.
python3 "$DATA/registry/token_stub.py" ci "$PASS" >"$WORK/stub.port" &
pids+=($!)
deadline=$((SECONDS + 10))
until [ -s "$WORK/stub.port" ]; do [ $SECONDS -lt $deadline ] || break; sleep 0.05; done
# private.lua and token.lua take the registry's host from conf: their
# credentials may go there only because secret_hosts lists it.
dagd_start DAGD_SECRET_REG_PASS="$PASS" DAGD_SECRET_REG_BAD_PASS="$BAD_PASS" \
  DAGD_SECRET_HOSTS="http://$PRIVATE,http://127.0.0.1:$(cat "$WORK/stub.port")" || exit 1
pids+=($DAGD_PID)

# wait -> resolve -> promote -> tags -> delete
run "$DAGCTL" trigger promote --run-id r1 --conf "{\"reg\": \"$OPEN\"}" --wait
expect_rc 0 "the promotion run succeeds"
[ "$(ti_field promote r1 resolve outputs.digest)" = "$candidate" ] && ok || fail "resolve's digest output is the candidate's"
[ "$(ti_field promote r1 wait outputs.digest)" = "$candidate" ] && ok || fail "wait's digest output"
[ "$(ti_field promote r1 promote outputs.digest)" = "$candidate" ] && ok || fail "promote's digest output"
[ "$(ti_field promote r1 resolve outputs.image)" = "$OPEN/team/model@$candidate" ] && ok || fail "resolve's image output"
[ "$(tag_digest "$OPEN" team/model prod)" = "$candidate" ] && ok || fail "prod has the candidate's digest (curl)"
tags=$(ti_field promote r1 tags outputs.tags | python3 -c 'import json, sys; print(" ".join(sorted(json.load(sys.stdin))))')
[ "$tags" = "candidate old prod" ] && ok || fail "tags lists candidate, old, prod (got $tags)"
[ -z "$(tag_digest "$OPEN" team/model old)" ] && ok || fail "old was deleted"
out=$(cat "$WORK/logs/promote/r1/delete/1.log")
expect_out "deleted $OPEN/team/model@$old" "delete logs the digest it deleted"
out=$(cat "$WORK/logs/promote/r1/promote/1.log")
expect_out "-> prod ($candidate)" "promote logs the copy"

# A tag that appears while waiting: `poll` waits within its try,
# `resched` goes up_for_reschedule between pokes; `missing` times out.
"$DAGCTL" trigger waiter --run-id w1 --conf "{\"reg\": \"$OPEN\", \"tag\": \"late\"}" --wait >"$WORK/waiter.out" 2>&1 &
waiter=$!
deadline=$((SECONDS + 20))
until grep -qs "not there yet" "$WORK/logs/waiter/w1/poll/1.log" &&
  [ "$(ti_field waiter w1 resched state 2>/dev/null)" = up_for_reschedule ]; do
  [ $SECONDS -lt $deadline ] || break
  sleep 0.1
done
[ "$(ti_field waiter w1 resched state)" = up_for_reschedule ] && ok || fail "resched is up_for_reschedule while the tag is missing"
late=$(push_image "$OPEN" team/model late 3)
wait $waiter && rc=0 || rc=$?
out=$(cat "$WORK/waiter.out")
expect_rc 1 "the waiter run fails (missing times out)"
[ "$(ti_field waiter w1 poll state)" = success ] && ok || fail "poll succeeds once the tag appears"
[ "$(ti_field waiter w1 poll outputs.digest)" = "$late" ] && ok || fail "poll's digest output"
[ "$(ti_field waiter w1 resched state)" = success ] && ok || fail "resched succeeds on a later poke"
[ "$(ti_field waiter w1 resched try_number)" = 1 ] && ok || fail "pokes used no try"
[ "$(ti_field waiter w1 missing state)" = failed ] && ok || fail "missing fails"
out=$(cat "$WORK/logs/waiter/w1/missing/1.log")
expect_out "did not appear within 2 s" "the timeout is explained"

# Basic auth.
run "$DAGCTL" trigger private --run-id p1 --conf "{\"reg\": \"$PRIVATE\"}" --wait
expect_rc 1 "the private run fails (wrong credentials)"
[ "$(ti_field private p1 good state)" = success ] && ok || fail "right credentials resolve"
[ "$(ti_field private p1 good outputs.digest)" = "$candidate" ] && ok || fail "same digest through auth"
[ "$(ti_field private p1 promote state)" = success ] && ok || fail "retag through auth"
[ "$(tag_digest "$PRIVATE" team/model prod -u "ci:$PASS")" = "$candidate" ] && ok || fail "private prod has the digest"
[ "$(ti_field private p1 bad state)" = failed ] && ok || fail "wrong credentials fail"
out=$(cat "$WORK/logs/private/p1/bad/1.log")
expect_out "refused the credentials (HTTP 401 Unauthorized)" "wrong credentials: clear error"
out=$(cat "$WORK/logs/private/p1/anonymous/1.log")
expect_out "refused an anonymous request: set username and password" "no credentials: clear error"
out=$(cat "$WORK/logs/private/p1/refused/1.log")
expect_out "refuses deletes (HTTP 405)" "a refused delete is reported"
[ -n "$(tag_digest "$PRIVATE" team/model candidate -u "ci:$PASS")" ] && ok || fail "the refused delete deleted nothing"
# Bearer tokens and Link pagination, against the scripted stand-in.
run "$DAGCTL" trigger token --run-id t1 --conf "{\"stub\": \"127.0.0.1:$(cat "$WORK/stub.port")\"}" --wait
expect_rc 1 "the token run fails (wrong credentials)"
[ "$(ti_field token t1 tags outputs.tags)" = '["a","b","c","d","e"]' ] && ok || fail "tags through a Bearer token, three pages"
out=$(grep -c "tags/list" "$WORK/logs/token/t1/tags/1.log")
[ "$out" = 3 ] && ok || fail "three pages fetched following Link (got $out)"
out=$(cat "$WORK/logs/token/t1/bad/1.log")
expect_out "the token service http://127.0.0.1:" "wrong credentials at the token service: clear error"
expect_out "refused the credentials (HTTP 401)" "the refusal is named"

# No secret in any log (the base64 of user:password included).
b64=$(printf 'ci:%s' "$PASS" | base64)
token=tok-$(printf '%s' "$PASS" | od -An -tx1 | tr -d ' \n' | tr a-f A-F | cut -c1-8)
out=$(grep -rlF -e "$PASS" -e "$BAD_PASS" -e "$b64" -e "$token" "$WORK/dagd.log" $(find "$WORK/logs" -name '*.log') || true)
[ -z "$out" ] && ok || fail "a secret is in a log: $out"

finish
