# shellcheck shell=bash
# Sourced (bash) by the sandbox entrypoint before sshd starts; installed by
# java.Dockerfile into /etc/safe-ai/entrypoint.d/.
#
# The JVM does not read HTTP_PROXY/HTTPS_PROXY/NO_PROXY. It reads the http(s).proxyHost,
# proxyPort and nonProxyHosts system properties, which JAVA_TOOL_OPTIONS gives to every
# JVM (java, Gradle and its wrapper, jshell): the proxy address is only known at start,
# so it is derived here from the container's own variables. Each JVM notes
# "Picked up JAVA_TOOL_OPTIONS" on stderr. Maven does not use these properties: give it a
# <proxy> in ~/.m2/settings.xml.
java_proxy() {
    local proxy=${HTTPS_PROXY:-${https_proxy:-}} no_proxy_list=${NO_PROXY:-${no_proxy:-}}
    local host port item opts non_proxy="" items=()
    if [[ ! $proxy =~ ^https?://([^/:@]+):([0-9]+)/?$ ]]; then
        [[ -z $proxy ]] || log "warning: JAVA_TOOL_OPTIONS not set: cannot read host and port from HTTPS_PROXY=$proxy"
        return 0
    fi
    host=${BASH_REMATCH[1]} port=${BASH_REMATCH[2]}
    opts="-Dhttp.proxyHost=$host -Dhttp.proxyPort=$port -Dhttps.proxyHost=$host -Dhttps.proxyPort=$port"
    # NO_PROXY "localhost,.corp.example" -> nonProxyHosts "localhost|*.corp.example"
    IFS=, read -ra items <<<"$no_proxy_list"
    for item in "${items[@]}"; do
        item=${item// /}
        [[ -n $item ]] || continue
        [[ $item != .* ]] || item="*$item"
        non_proxy+=${non_proxy:+|}$item
    done
    [[ -z $non_proxy ]] || opts+=" -Dhttp.nonProxyHosts=$non_proxy"
    safeai_appendenv JAVA_TOOL_OPTIONS "$opts"
}
java_proxy
