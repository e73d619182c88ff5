# dagd in a container: a build stage compiles and installs dagd, dagctl and
# dagd-shim with the Lua library and the UI (`cmake --install` into a
# staging tree); the runtime stage is Debian 12 with only the shared
# libraries, the time zones and CA certificates, and runs dagd as the
# non-root user `dagd` from /var/lib/dagd. See docs/operations.md.
#
#   docker build -t dagd .
#   docker run --rm dagd --version
#
# Build arguments (the defaults build from Debian's packages):
#   BUILD_BASE, RUNTIME_BASE  the two stages' base images
#   APT_GET=no                install no package: the bases already hold
#                             what the stages need (an offline build)
#   PREBUILT=DIR              copy the install tree DIR of the build context
#                             (made by `DESTDIR=... cmake --install`)
#                             instead of compiling
#   EXTRA_PACKAGES            more Debian packages for the runtime, e.g.
#                             "docker.io python3" for docker and Python tasks
# Written for both BuildKit and the classic builder (which builds every
# stage), so the arguments above decide what runs, not the target.
# SPDX-License-Identifier: MIT
ARG BUILD_BASE=debian:12
ARG RUNTIME_BASE=debian:12-slim

FROM ${BUILD_BASE} AS build
ARG APT_GET=yes
ARG PREBUILT=
RUN if [ "$APT_GET" = yes ] && [ -z "$PREBUILT" ]; then \
      apt-get update && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        build-essential cmake pkg-config \
        libuv1-dev libsqlite3-dev liblua5.4-dev libcurl4-openssl-dev libjansson-dev \
        libhttp-parser-dev libssl-dev libcsv-dev libsystemd-dev python3 python3-yaml && \
      rm -rf /var/lib/apt/lists/*; \
    fi
COPY . /src
RUN if [ -n "$PREBUILT" ]; then \
      mkdir -p /staging && cp -a "/src/$PREBUILT/." /staging/; \
    else \
      cmake -S /src -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDAGD_TESTS=OFF && \
      cmake --build /build -j"$(nproc)" && \
      DESTDIR=/staging cmake --install /build; \
    fi

FROM ${RUNTIME_BASE}
ARG APT_GET=yes
ARG EXTRA_PACKAGES=
RUN if [ "$APT_GET" = yes ]; then \
      apt-get update && \
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates tzdata \
        libuv1 libsqlite3-0 liblua5.4-0 libcurl4 libjansson4 libhttp-parser2.9 libssl3 libcsv3 libsystemd0 \
        $EXTRA_PACKAGES && \
      rm -rf /var/lib/apt/lists/*; \
    fi
RUN useradd --system --user-group --home-dir /var/lib/dagd --create-home --shell /usr/sbin/nologin dagd
COPY --from=build /staging/ /
USER dagd
WORKDIR /var/lib/dagd
# The state, the logs and (mount them here) the DAG files: dags/, var/.
VOLUME ["/var/lib/dagd"]
# dagd listens on 127.0.0.1:8787 by default; to be reached from outside
# the container it needs api_tokens (or DAGD_API_TOKEN) and
# DAGD_LISTEN=0.0.0.0:8787.
EXPOSE 8787
ENTRYPOINT ["dagd"]
