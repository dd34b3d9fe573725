# shellcheck shell=bash
# Sourced (bash) by the sandbox entrypoint before sshd starts; installed by
# java.Dockerfile into /etc/safe-ai/entrypoint.d/.
#
# The JVM does not read the system bundle: it trusts its own store, cacerts (Debian's
# ca-certificates-java fills it from the system CAs when the image is built). So that
# every JVM also trusts the stack's CA (deny pages over HTTPS, hosts the proxy decrypts),
# this writes a PKCS12 copy of cacerts with the stack CA added to /run at every start
# (the root is read-only) and points JAVA_TOOL_OPTIONS at it. Its password, changeit, is
# the one every JDK's cacerts has: a trust store holds only public certificates, and the
# password guards nothing secret.
java_trust() {
    local store=/run/safe-ai/java-cacerts out
    local cacerts=${JAVA_HOME:-/usr/lib/jvm/java-21}/lib/security/cacerts
    rm -f "$store" "$store.tmp"
    if [[ -z ${SAFEAI_STACK_CA:-} ]]; then
        log "Java trusts the JDK's CAs only (no stack CA)"
        return 0
    fi
    # keytool is a JVM too: keep the container's JAVA_TOOL_OPTIONS away from it.
    if ! out=$(env -u JAVA_TOOL_OPTIONS keytool -importkeystore -noprompt \
        -srckeystore "$cacerts" -srcstorepass changeit \
        -destkeystore "$store.tmp" -deststoretype PKCS12 -deststorepass changeit 2>&1) ||
        ! out=$(env -u JAVA_TOOL_OPTIONS keytool -importcert -noprompt -alias safe-ai-stack-ca \
            -file "$SAFEAI_STACK_CA" -keystore "$store.tmp" -storetype PKCS12 -storepass changeit 2>&1); then
        rm -f "$store.tmp"
        log "warning: Java trusts the JDK's CAs only: could not build $store: ${out//$'\n'/ }"
        return 0
    fi
    chmod 0644 "$store.tmp"
    mv -f "$store.tmp" "$store"
    safeai_appendenv JAVA_TOOL_OPTIONS "-Djavax.net.ssl.trustStore=$store -Djavax.net.ssl.trustStoreType=PKCS12 -Djavax.net.ssl.trustStorePassword=changeit"
}
java_trust
