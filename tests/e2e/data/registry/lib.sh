# Helpers for the tests that need a real docker-registry on loopback:
# start one (optionally with basic auth or delete disabled) and populate it
# with plain HTTP calls, as a CI job pushing an image would.
# SPDX-License-Identifier: MIT

# free_port: a port nothing listens on now.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# registry_start NAME [htpasswd-file] [delete:true|false]: starts a
# registry with its storage under $WORK/NAME; sets REG (host:port) and
# REG_PID. Waits (with a deadline) until /v2/ answers.
registry_start() {
  local name=$1 htpasswd=${2:-} delete=${3:-true} port
  port=$(free_port)
  mkdir -p "$WORK/$name"
  {
    echo "version: 0.1"
    echo "log: {level: warn}"
    echo "storage:"
    echo "  filesystem: {rootdirectory: $WORK/$name/data}"
    echo "  delete: {enabled: $delete}"
    echo "http: {addr: 127.0.0.1:$port}"
    [ -z "$htpasswd" ] || printf 'auth:\n  htpasswd: {realm: dagd-test, path: %s}\n' "$htpasswd"
  } >"$WORK/$name/config.yml"
  docker-registry serve "$WORK/$name/config.yml" >"$WORK/$name/log" 2>&1 &
  REG_PID=$!
  REG=127.0.0.1:$port
  local deadline=$((SECONDS + 20)) code
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/" || true)
    [ "$code" = 200 ] || [ "$code" = 401 ] && break
    if [ $SECONDS -ge $deadline ] || ! kill -0 $REG_PID 2>/dev/null; then
      echo "docker-registry did not start:"; cat "$WORK/$name/log"; return 1
    fi
    sleep 0.05
  done
}

# push_blob REG REPO FILE [curl auth args...]: uploads FILE monolithically
# (POST an upload, PUT its location with the digest); prints the digest.
push_blob() {
  local reg=$1 repo=$2 file=$3
  shift 3
  local digest loc
  digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
  loc=$(curl -sf "$@" -X POST -D - -o /dev/null "http://$reg/v2/$repo/blobs/uploads/" |
    tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [ -n "$loc" ] || { echo "no upload location" >&2; return 1; }
  case "$loc" in http*) ;; *) loc="http://$reg$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -sf "$@" -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$loc" >/dev/null ||
    { echo "blob upload failed" >&2; return 1; }
  echo "$digest"
}

# push_image REG REPO TAG SEED [curl auth args...]: a small Docker v2
# schema 2 image (a config blob and a layer made from SEED) under TAG;
# prints the manifest's digest.
push_image() {
  local reg=$1 repo=$2 tag=$3 seed=$4
  shift 4
  local dir="$WORK/img-$seed" cfg layer
  mkdir -p "$dir"
  echo "layer $seed" | gzip -n >"$dir/layer"
  printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$(echo "layer $seed" | sha256sum | cut -d' ' -f1)" >"$dir/config"
  cfg=$(push_blob "$reg" "$repo" "$dir/config" "$@") || return 1
  layer=$(push_blob "$reg" "$repo" "$dir/layer" "$@") || return 1
  printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"%s"}]}' \
    "$(stat -c %s "$dir/config")" "$cfg" "$(stat -c %s "$dir/layer")" "$layer" >"$dir/manifest"
  curl -sf "$@" -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
    --data-binary "@$dir/manifest" "http://$reg/v2/$repo/manifests/$tag" >/dev/null ||
    { echo "manifest upload failed" >&2; return 1; }
  echo "sha256:$(sha256sum "$dir/manifest" | cut -d' ' -f1)"
}

# tag_digest REG REPO TAG [curl auth args...]: the digest the registry
# serves for TAG (Docker-Content-Digest of a HEAD), or nothing.
tag_digest() {
  local reg=$1 repo=$2 tag=$3
  shift 3
  curl -s "$@" -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$reg/v2/$repo/manifests/$tag" | tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}

# dagd_start [env...]: a dagd on a free port over $WORK/dags; sets
# DAGD_URL and DAGD_PID.
dagd_start() {
  env "$@" "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" \
    --logs-folder "$WORK/logs" >>"$WORK/dagd.log" 2>&1 &
  DAGD_PID=$!
  local deadline=$((SECONDS + 10)) n
  n=$(grep -c "listening on" "$WORK/dagd.log" 2>/dev/null || true)
  until [ "$(grep -c "listening on" "$WORK/dagd.log")" -gt "${n:-0}" ]; do
    [ $SECONDS -lt $deadline ] && kill -0 $DAGD_PID 2>/dev/null || { echo "dagd did not start"; cat "$WORK/dagd.log"; return 1; }
    sleep 0.02
  done
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
}

# ti_field DAG RUN TASK FIELD: a field of a task instance ("outputs.digest" for an output).
ti_field() {
  "$DAGCTL" -o json tasks "$1" "$2" | python3 -c '
import json, sys
tis = {t["task_id"]: t for t in json.load(sys.stdin)["task_instances"]}
v = tis[sys.argv[1]]
for k in sys.argv[2].split("."):
    v = (v or {}).get(k)
print("" if v is None else v)' "$3" "$4"
}
