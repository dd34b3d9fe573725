# safe-ai-codex: the Node image with the OpenAI Codex CLI (`codex`).
#
#   docker build -f examples/node.Dockerfile -t safe-ai-node:latest examples
#   docker build -f examples/codex.Dockerfile -t safe-ai-codex:latest examples
#
# Allowlist api.openai.com (plus auth.openai.com and chatgpt.com for a ChatGPT login) and
# pass OPENAI_API_KEY through the compose override.
# Pin a release with --build-arg CODEX_VERSION=0.50.0.
ARG BASE=safe-ai-node:latest
FROM ${BASE}

ARG CODEX_VERSION=latest

RUN set -eux; \
    npm install -g --no-fund --no-audit "@openai/codex@${CODEX_VERSION}"; \
    rm -rf /root/.npm; \
    codex --version

# ~/.codex/config.toml: /home/dev is a volume, so a file put there in the image reaches
# only home volumes created afterwards. The file goes to the seed directory instead: the
# entrypoint copies it into the home directory at start whenever it is missing there.
COPY codex-config.toml /etc/safe-ai/home/.codex/config.toml
RUN chmod 0755 /etc/safe-ai/home/.codex && chmod 0644 /etc/safe-ai/home/.codex/config.toml
