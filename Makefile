# Shortcuts for the usual commands. `make` (or `make help`) lists them.
# Each target's description is its `## ` comment; `help` prints those.

.DEFAULT_GOAL := help
SHELL := /bin/bash

COMPOSE ?= docker compose
CARGO ?= cargo
SAFEAI_DEV := $(CARGO) run -q -p safeai-cli --
# The SSH port for `make shell`: $SAFE_AI_SSH_PORT from the shell wins, then .env, then 2222.
ENV_SSH_PORT := $(shell sed -n 's/^SAFE_AI_SSH_PORT=//p' .env 2>/dev/null | tail -n 1 | tr -d "\"' ")
SSH_PORT_DEFAULT := $(or $(ENV_SSH_PORT),2222)

.PHONY: help setup build up down shell test logs reload verify generate check

help: ## List the targets (the default)
	@echo "Usage: make <target>"
	@echo
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN { FS = ":.*## " } { printf "  %-10s %s\n", $$1, $$2 }'

setup: ## Check Docker and Compose, create .env and the compose override from the examples
	@bash scripts/setup.sh

build: ## Build the proxy and sandbox images
	$(COMPOSE) build

up: ## Build if needed, start the stack in the background, wait until both are healthy
	$(COMPOSE) up -d --build --wait

down: ## Stop and remove the containers (the volumes and your files stay)
	$(COMPOSE) down

shell: ## Open an SSH session in the sandbox as dev (port SAFE_AI_SSH_PORT, default 2222)
	ssh -p $${SAFE_AI_SSH_PORT:-$(SSH_PORT_DEFAULT)} dev@localhost

test: ## Run the test suite (cargo test --workspace)
	$(CARGO) test --workspace

logs: ## Follow the proxy's log (allowed and denied requests, DNS queries)
	$(COMPOSE) logs -f proxy

reload: ## Make the running proxy re-read the allowlist
	$(COMPOSE) exec proxy safeai-proxy reload

verify: ## Check the isolation of the running stack (safeai verify)
	@if command -v safeai >/dev/null 2>&1; then \
		safeai verify; \
	else \
		$(SAFEAI_DEV) verify; \
	fi

generate: ## Regenerate docker-compose.yaml, seccomp.json, squid.conf and dnsmasq files
	$(SAFEAI_DEV) generate

check: ## Validate the allowlist (allowlist.yaml plus SAFE_AI_DEFAULT_DOMAINS)
	$(SAFEAI_DEV) check
