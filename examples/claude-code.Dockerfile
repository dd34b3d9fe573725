# safe-ai-claude: the Node image with Claude Code (`claude`).
#
#   docker build -f examples/node.Dockerfile -t safe-ai-node:latest examples
#   docker build -f examples/claude-code.Dockerfile -t safe-ai-claude:latest examples
#
# Allowlist what it talks to (api.anthropic.com, plus claude.ai and console.anthropic.com
# for the browser login) and pass ANTHROPIC_API_KEY through the compose override.
# Pin a release with --build-arg CLAUDE_CODE_VERSION=2.0.0.
ARG BASE=safe-ai-node:latest
FROM ${BASE}

ARG CLAUDE_CODE_VERSION=latest

RUN set -eux; \
    npm install -g --no-fund --no-audit "@anthropic-ai/claude-code@${CLAUDE_CODE_VERSION}"; \
    rm -rf /root/.npm; \
    claude --version

# The install is root's, on a read-only root: it cannot update itself, so it does not try.
# (The entrypoint hands image ENV on to SSH sessions.)
ENV DISABLE_AUTOUPDATER=1
