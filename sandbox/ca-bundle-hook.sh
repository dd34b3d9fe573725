#!/bin/sh
# Installed as /etc/ca-certificates/update.d/safe-ai-bundle; update-ca-certificates runs
# it (and every hook there) after writing the bundle, at image build.
#
# The root is read-only at run time, so the bundle every TLS library reads,
# /etc/ssl/certs/ca-certificates.crt, is a symlink to /run/safe-ai/ca-certificates.crt,
# which the entrypoint writes at each start: the system CAs plus the stack's CA.
# update-ca-certificates replaces that symlink with a fresh bundle (mv). This keeps the
# fresh bundle as the system copy, ca-certificates.system.crt, and restores the symlink,
# so an image built FROM the sandbox can still add its own CA the usual way.
set -eu

certs=/etc/ssl/certs
bundle=$certs/ca-certificates.crt
system=$certs/ca-certificates.system.crt
runtime=/run/safe-ai/ca-certificates.crt

# The names of the added and removed certificates arrive on stdin; this hook needs none.
cat >/dev/null

if [ -f "$bundle" ] && [ ! -L "$bundle" ]; then
    mv -f "$bundle" "$system"
    chmod 0644 "$system"
fi
if [ ! -f "$system" ]; then
    echo "safe-ai-bundle: $system is missing: run update-ca-certificates" >&2
    exit 1
fi
ln -sfn "$runtime" "$bundle.tmp"
mv -Tf "$bundle.tmp" "$bundle"

# Later build steps (curl, pip, npm in a derived image) read the bundle through the
# symlink too, before any entrypoint has run. At run time a tmpfs on /run hides this.
if [ ! -e "$runtime" ]; then
    mkdir -p "${runtime%/*}"
    ln -sfn "$system" "$runtime"
fi
