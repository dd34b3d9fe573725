# safe-ai-python: the sandbox with Python tooling: pipx, uv and Poetry, and the headers
# that C extensions need to build.
#
#   docker build -f examples/python.Dockerfile -t safe-ai-python:latest examples
#
# The base's pip refuses system-wide installs (PEP 668), so the tools come from PyPI into
# venvs of their own, managed by pipx in its global location (/opt/pipx, commands in
# /usr/local/bin). The dev user's own `pipx install` goes to ~/.local as usual; projects
# get their venvs in /workspace (`uv venv`, `poetry install`).
# Allowlist pypi.org and files.pythonhosted.org to install packages from the sandbox.
ARG BASE=safe-ai-sandbox:latest
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends python3-dev; \
    rm -rf /var/lib/apt/lists/*

# pipx installs with uv once uv is there; both trust the system's CA bundle (the base
# sets UV_SYSTEM_CERTS and REQUESTS_CA_BUNDLE).
RUN set -eux; \
    python3 -m venv /tmp/bootstrap; \
    /tmp/bootstrap/bin/pip install --no-cache-dir --quiet pipx; \
    /tmp/bootstrap/bin/pipx install --global pipx; \
    rm -rf /tmp/bootstrap; \
    pipx install --global uv; \
    pipx install --global poetry; \
    rm -rf /root/.cache; \
    pipx --version; uv --version; poetry --version
