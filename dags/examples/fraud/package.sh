#!/bin/sh
# The fraud pipeline's package step (dags/fraud_detection.lua): pushes the
# trained model to the registry as the serving image's candidate, the way
# a CI job would after `docker build`: a layer holding model.json, an
# image config, and a Docker v2 manifest tagged TAG, uploaded with plain
# HTTP calls (the Registry API: POST an upload, PUT it with its digest).
# Writes digest= and image= (REGISTRY/REPO@digest) to $DAGD_OUTPUT.
#
# usage: package.sh MODEL.json REGISTRY REPO TAG   (REGISTRY is host:port;
# FRAUD_REGISTRY_SCHEME=https for a TLS registry, default http)
# SPDX-License-Identifier: MIT
set -eu
[ $# -eq 4 ] || { echo "usage: package.sh MODEL.json REGISTRY REPO TAG" >&2; exit 2; }
model=$1 reg=$2 repo=$3 tag=$4
base="${FRAUD_REGISTRY_SCHEME:-http}://$reg/v2/$repo"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

# A reproducible layer: the same model gives the same digest.
mkdir "$dir/root"
cp "$model" "$dir/root/model.json"
tar -C "$dir/root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$dir/layer.tar" model.json
gzip -n -c "$dir/layer.tar" >"$dir/layer"
sha() { sha256sum "$1" | cut -d' ' -f1; }
printf '{"architecture":"amd64","os":"linux","config":{"Env":["MODEL=/model.json"],"Labels":{"dagd.run":"%s"}},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "${DAGD_RUN_ID:-}" "$(sha "$dir/layer.tar")" >"$dir/config"

# push FILE: a monolithic blob upload; prints the digest.
push() {
  digest="sha256:$(sha "$1")"
  loc=$(curl -sSf -X POST -D - -o /dev/null "$base/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  [ -n "$loc" ] || { echo "package: the registry gave no upload location" >&2; exit 1; }
  case "$loc" in http*) ;; *) loc="${base%%/v2/*}$loc" ;; esac
  case "$loc" in *\?*) loc="$loc&digest=$digest" ;; *) loc="$loc?digest=$digest" ;; esac
  curl -sSf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$1" "$loc" >/dev/null
  echo "$digest"
}
cfg=$(push "$dir/config")
layer=$(push "$dir/layer")
printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"%s"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":"%s"}]}' \
  "$(stat -c %s "$dir/config")" "$cfg" "$(stat -c %s "$dir/layer")" "$layer" >"$dir/manifest"
curl -sSf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
  --data-binary "@$dir/manifest" "$base/manifests/$tag" >/dev/null
digest="sha256:$(sha "$dir/manifest")"
echo "package: pushed $reg/$repo:$tag ($digest), model layer $layer"
if [ -n "${DAGD_OUTPUT:-}" ]; then
  printf 'digest=%s\nimage=%s/%s@%s\n' "$digest" "$reg" "$repo" "$digest" >>"$DAGD_OUTPUT"
fi
