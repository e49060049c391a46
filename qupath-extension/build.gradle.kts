plugins {
    // Optional fat jar; the extension needs nothing beyond what QuPath ships (JDK HTTP client, Gson, JTS)
    id("com.gradleup.shadow") version "8.3.5"
    // QuPath's convention plugin: Java toolchain of the QuPath release (21 for 0.6), manifest, javadoc
    id("qupath-conventions")
}

qupathExtension {
    name = "qupath-extension-deepliif"
    group = "io.github.napari-deepliif"
    version = "0.1.0"
    description = "Score IHC annotations with DeepLIIF running locally (napari-deepliif's engine server)"
    automaticModule = "qupath.ext.deepliif"
}

dependencies {
    // Provided by QuPath at runtime: never bundled into the jar
    shadow(libs.bundles.qupath)
    shadow(libs.bundles.logging)
    shadow(libs.qupath.fxtras)

    testImplementation(libs.bundles.qupath)
    testImplementation(libs.junit)
}

tasks.test {
    useJUnitPlatform {
        // The "server" tests need a running napari-deepliif server (see ci/test-core.sh)
        if (System.getenv("DEEPLIIF_URL") == null)
            excludeTags("server")
    }
}
