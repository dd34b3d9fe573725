# safe-ai-java: the sandbox with OpenJDK 21 (java, javac, jshell, jar).
#
#   docker build -f examples/java.Dockerfile -t safe-ai-java:latest examples
#
# Where Java 21 comes from: Debian's openjdk-21 packages. Debian 12, the default base, has
# only Java 17, and JDK download sites (Adoptium, Oracle) are not reachable from every
# build machine, while Debian's mirror is. So on Debian 12 the JDK comes from Debian 13
# (trixie) at a low pin priority: only the JDK and what it needs come from there, which
# also moves the C library to 2.41 (still running every Debian 12 program) and with it
# dpkg and base-files (/etc/os-release then says 13). Where the base has openjdk-21 itself
# (Ubuntu 24.04, Debian 13), that is used and nothing else changes.
#
# Maven and Gradle: use the project's wrapper (./mvnw, ./gradlew) and allowlist
# repo.maven.apache.org (and services.gradle.org, plugins.gradle.org for Gradle).
ARG BASE=safe-ai-sandbox:latest
FROM ${BASE}

ARG DEBIAN_FRONTEND=noninteractive

RUN set -eux; \
    apt-get update; \
    target=''; \
    if ! apt-cache show openjdk-21-jdk-headless >/dev/null 2>&1; then \
        . /etc/os-release; \
        if [ "$ID" != debian ]; then echo "no openjdk-21 package for $PRETTY_NAME" >&2; exit 1; fi; \
        echo 'deb http://deb.debian.org/debian trixie main' >/etc/apt/sources.list.d/trixie.list; \
        printf 'Package: *\nPin: release n=trixie\nPin-Priority: 100\n' >/etc/apt/preferences.d/trixie; \
        apt-get update; \
        target='-t trixie'; \
    fi; \
    apt-get install -y --no-install-recommends $target openjdk-21-jdk-headless; \
    rm -rf /var/lib/apt/lists/*; \
    # One path for JAVA_HOME on every architecture.
    ln -s "$(dirname "$(dirname "$(readlink -f "$(command -v javac)")")")" /usr/lib/jvm/java-21; \
    java -version; javac -version

# Java 21's JDK, whatever the architecture. (The entrypoint hands image ENV on to SSH
# sessions.)
ENV JAVA_HOME=/usr/lib/jvm/java-21

# The JVM ignores HTTP(S)_PROXY and the system bundle: at start, these hooks turn the
# proxy variables into JAVA_TOOL_OPTIONS and point it at a trust store with the stack CA.
COPY java-proxy.sh java-trust.sh /etc/safe-ai/entrypoint.d/
RUN chmod 0644 /etc/safe-ai/entrypoint.d/java-proxy.sh /etc/safe-ai/entrypoint.d/java-trust.sh
