#!/usr/bin/env bash
# Compile the extension's QuPath-independent core (qupath.ext.deepliif.core) with javac against
# Debian's jars (apt: libgoogle-gson-java libjts-java junit5) and run its JUnit 5 tests.
#
# The QuPath/JavaFX glue (qupath.ext.deepliif) is NOT compiled here: it needs QuPath's jars,
# which only the Gradle build (./gradlew build) fetches.
#
# Environment:
#   DEEPLIIF_URL, DEEPLIIF_TOKEN  a running napari-deepliif server; without DEEPLIIF_URL the
#                                 tests tagged "server" are excluded (and the script says so)
#   DEEPLIIF_SAMPLE               real IHC image file (one the server can open) for the region tests
#   DEEPLIIF_RESULT               folder the round-trip test writes server.json and upload.json to
#   JAVA_LIB                      folder of the jars (default /usr/share/java)
# Exit status: 0 when everything compiled and every test passed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
lib=${JAVA_LIB:-/usr/share/java}
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

main_cp="$lib/gson.jar:$lib/jts-core.jar"
test_cp="$main_cp:$lib/junit-jupiter-api.jar:$lib/junit-jupiter-params.jar:$lib/opentest4j.jar:$lib/apiguardian-api.jar"
for jar in ${test_cp//:/ } "$lib/junit-platform-console-standalone.jar"; do
    [[ -f $jar ]] || { echo "test-core.sh: missing $jar (apt-get install libgoogle-gson-java libjts-java junit5)" >&2; exit 2; }
done

mapfile -t main_src < <(find "$root/src/main/java/qupath/ext/deepliif/core" -name '*.java' | sort)
mapfile -t test_src < <(find "$root/src/test/java" -name '*.java' | sort)

javac --release 17 -encoding UTF-8 -Xlint:all -Werror -d "$build/main" -cp "$main_cp" "${main_src[@]}"
javac --release 17 -encoding UTF-8 -Xlint:all,-processing -d "$build/test" -cp "$build/main:$test_cp" "${test_src[@]}"

filter=()
if [[ -z ${DEEPLIIF_URL:-} ]]; then
    echo "test-core.sh: DEEPLIIF_URL not set: excluding the tests tagged 'server'" >&2
    filter=(--exclude-tag server)
fi

java -jar "$lib/junit-platform-console-standalone.jar" \
    --disable-banner --disable-ansi-colors --details=tree --fail-if-no-tests \
    --class-path "$build/main:$build/test:$main_cp" \
    --scan-class-path "$build/test" "${filter[@]}"
