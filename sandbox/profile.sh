# shellcheck shell=sh
# Installed as /etc/profile.d/safe-ai.sh; read by login shells (`ssh` logins, `bash -l`,
# `su - dev`).
#
# The entrypoint writes the session environment (the proxy variables, the rest of the
# container's environment) to /run at start, since the proxy address is only known then.
# sshd already hands it to SSH sessions; this covers login shells that sshd did not start
# (`docker compose exec sandbox su - dev`).
if [ -r /run/safe-ai/env.sh ]; then
    # shellcheck source=/dev/null
    . /run/safe-ai/env.sh
fi

# Brokered credentials added by a proxy reload after this container started: their
# variables (placeholders; the proxy holds the keys) reach new login shells too.
if [ -r /etc/safe-ai/policy/sandbox.env ]; then
    while IFS='=' read -r safeai_name safeai_value; do
        case $safeai_name in
            '' | \#* | *[!A-Za-z0-9_]* | [0-9]*) continue ;;
        esac
        if [ -z "$(eval "printf %s \"\${$safeai_name:-}\"")" ]; then
            export "$safeai_name=$safeai_value"
        fi
    done </etc/safe-ai/policy/sandbox.env
    unset safeai_name safeai_value
fi

# Interactive logins start in the workspace, where the agent's files are.
case $- in
    *i*)
        if [ "$PWD" = "$HOME" ] && [ -d /workspace ]; then
            cd /workspace || true
        fi
        ;;
esac
