# safe-ai-codex-java: the Java image with Node.js and the Codex CLI.
#
#   docker build -f examples/java.Dockerfile  -t safe-ai-java:latest  examples
#   docker build -f examples/node.Dockerfile  -t safe-ai-node:latest  examples
#   docker build -f examples/codex.Dockerfile -t safe-ai-codex:latest examples
#   docker build -f examples/codex-java.Dockerfile -t safe-ai-codex-java:latest examples
#
# Node, npm and Codex are copied from the Codex image, built on the same sandbox base, so
# nothing is downloaded twice and both images run the same versions. The copies keep no
# symlinks of /usr/local/bin; npm recreates the commands of the global packages.
ARG CODEX_IMAGE=safe-ai-codex:latest
ARG BASE=safe-ai-java:latest
FROM ${CODEX_IMAGE} AS codex

FROM ${BASE}

COPY --from=codex /usr/local/bin/node /usr/local/bin/node
COPY --from=codex /usr/local/include/node /usr/local/include/node
COPY --from=codex /usr/local/lib/node_modules /usr/local/lib/node_modules
COPY --from=codex /etc/safe-ai/home/.codex /etc/safe-ai/home/.codex

# As in node.Dockerfile.
ENV NODE_USE_ENV_PROXY=1 \
    NODE_OPTIONS=--disable-warning=UNDICI-EHPA \
    npm_config_nodedir=/usr/local \
    npm_config_update_notifier=false

RUN set -eux; \
    node /usr/local/lib/node_modules/npm/bin/npm-cli.js rebuild --global --ignore-scripts; \
    node --version; npm --version; codex --version; java -version
