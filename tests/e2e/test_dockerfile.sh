#!/usr/bin/env bash
# The repository's Dockerfile, built by a Docker engine the test starts (no
# networking, so nothing can be pulled or apt-get installed) and run: the
# image's dagd answers --version and /health, serves the UI, loads a DAG
# with its Lua library and runs a task through its shim, as the non-root
# user dagd.
#
# How it builds offline: the Dockerfile's own arguments. Both stages start
# FROM a base made here from this Debian 12 machine's files (the shared
# libraries dagd links, sh, cp, mkdir, useradd, the time zones), `docker
# import`ed as test_docker.sh makes its images; APT_GET=no skips the
# package installs; PREBUILT points the build stage at the install tree
# that `cmake --install` (DESTDIR) makes of this build, instead of
# compiling in the container. Everything else (the user, the copy of the
# install tree, the working directory, the volume, the entrypoint) is the
# Dockerfile as users build it.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || { echo "FAIL: dockerd needs root here (the test runs it with its own data root)"; exit 1; }
for c in dockerd docker curl; do
  command -v $c >/dev/null || { echo "FAIL: $c is not installed (scripts/dev deps)"; exit 1; }
done
. "$DATA/docker/dockerd.sh"
rc=0
out=""
cleanup() {
  dockerd_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$DAGD_BUILD_DIR/CMakeCache.txt")
[ "$prefix" = /usr/local ] || { echo "FAIL: the build's prefix is $prefix; the image's PATH and data dir are /usr/local"; exit 1; }
dockerd_start "$WORK/docker" || exit 1

# The base: a Debian 12 root made of this machine's files. usr-merged as
# Debian 12 is: /bin, /sbin, /lib, /lib64 are links into /usr.
R="$WORK/rootfs"
mkdir -p "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib" "$R/usr/lib64" "$R/etc/skel" "$R/tmp" "$R/var/lib" "$R/usr/share"
chmod 1777 "$R/tmp"
for l in bin sbin lib lib64; do ln -s usr/$l "$R/$l"; done
# put FILE: the file, dereferenced, at its usr-merged place in the root.
put() {
  local dest="$R/usr${1#/usr}"
  mkdir -p "$(dirname "$dest")"
  cp -L "$1" "$dest"
}
progs=(/usr/bin/cp /usr/bin/mkdir /usr/sbin/useradd /usr/sbin/nologin)
for p in "${progs[@]}"; do put "$p"; done
cp -L /usr/bin/dash "$R/usr/bin/sh"
for lib in $(ldd "$DAGD_BUILD_DIR/dagd" "$DAGD_BUILD_DIR/dagctl" /usr/bin/dash "${progs[@]}" |
  awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u); do
  put "$lib"
done
cp -r /usr/share/zoneinfo "$R/usr/share/"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
printf 'root:*:19000:0:99999:7:::\n' >"$R/etc/shadow"
printf 'root:*::\n' >"$R/etc/gshadow"
chmod 600 "$R/etc/shadow" "$R/etc/gshadow"
cp /etc/login.defs "$R/etc/"
tar -C "$R" --numeric-owner -cf "$WORK/base.tar" .
docker import "$WORK/base.tar" dagd-test/debian12-base:1 >/dev/null && ok || fail "docker import of the base"

# The build context: the install tree of this build, as the Dockerfile's
# build stage makes it (DESTDIR=/staging cmake --install).
CTX="$WORK/context"
mkdir -p "$CTX"
run env DESTDIR="$CTX/stage" cmake --install "$DAGD_BUILD_DIR"
expect_rc 0 "cmake --install into the context"
run env DOCKER_BUILDKIT=0 docker build -f "$DAGD_SOURCE_DIR/Dockerfile" -t dagd-test/dagd:1 \
  --build-arg BUILD_BASE=dagd-test/debian12-base:1 --build-arg RUNTIME_BASE=dagd-test/debian12-base:1 \
  --build-arg APT_GET=no --build-arg PREBUILT=stage "$CTX"
expect_rc 0 "docker build of the Dockerfile"

run docker image inspect dagd-test/dagd:1 --format '{{.Config.User}}|{{json .Config.Entrypoint}}|{{.Config.WorkingDir}}|{{json .Config.Volumes}}'
[ "$out" = 'dagd|["dagd"]|/var/lib/dagd|{"/var/lib/dagd":{}}' ] && ok ||
  fail "the image runs dagd as the user dagd in /var/lib/dagd, a volume"
want=$("$DAGD" --version)
run docker run --rm --network none dagd-test/dagd:1 --version
expect_rc 0 "the image's dagd --version"
[ "$out" = "$want" ] && ok || fail "the image's dagd is this build's: $want"
run docker run --rm --network none --entrypoint sh dagd-test/dagd:1 -c \
  'while read k v rest; do [ "$k" = Uid: ] && echo "uid=$v"; done </proc/self/status; for f in /usr/local/share/dagd/ui/index.html /usr/local/share/dagd/lua/dagd/init.lua /usr/local/bin/dagd-shim /usr/local/bin/dagctl; do [ -e "$f" ] || echo "missing $f"; done'
expect_rc 0 "a shell in the image"
expect_no_out "uid=0" "the image's user is not root"
expect_out "uid=" "the image's user id is read"
expect_no_out "missing" "the UI, the Lua library, dagctl and dagd-shim are in the image"

# dagd in the image, on the host's loopback (host networking: the test's
# engine has no bridge), with one DAG mounted into its dags folder.
mkdir -p "$WORK/dags"
cat >"$WORK/dags/in_image.lua" <<'EOF'
local dagd = require "dagd"
local d = dagd.dag { id = "in_image" }
d:shell { id = "hello", cmd = { "sh", "-c", "echo hello from the image" } }
EOF
run docker run -d --name dagd-in-image --network host \
  --mount "type=bind,source=$WORK/dags,target=/var/lib/dagd/dags,readonly" dagd-test/dagd:1 --listen 127.0.0.1:0
expect_rc 0 "dagd starts in the image"
deadline=$((SECONDS + 20))
port=""
until [ -n "$port" ]; do
  [ $SECONDS -lt $deadline ] || break
  port=$(docker logs dagd-in-image 2>&1 | sed -n 's/.*listening on.*(port \([0-9]*\)).*/\1/p' | tail -1)
  [ -n "$port" ] || sleep 0.1
done
[ -n "$port" ] || { out=$(docker logs dagd-in-image 2>&1); fail "dagd in the image did not say where it listens"; finish; exit; }
export DAGD_URL="http://127.0.0.1:$port"
run curl -s -o /dev/null -w '%{http_code}' "$DAGD_URL/health"
[ "$out" = 200 ] && ok || fail "the image's dagd answers /health"
run curl -s "$DAGD_URL/"
expect_out "<html" "the image's dagd serves the UI"
run "$DAGCTL" trigger in_image --wait
expect_rc 0 "a run of the mounted DAG succeeds in the image (Lua library, shim, state and logs as dagd)"
run docker logs dagd-in-image
grep -qE '^[0-9TZ:-]+ +(error|fatal) ' <<<"$out" && fail "dagd in the image logs an error" || ok
docker rm -f dagd-in-image >/dev/null

finish
