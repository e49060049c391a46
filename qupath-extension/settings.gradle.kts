// QuPath extension build, after qupath/qupath-extension-template: the QuPath Gradle settings
// plugin sets up the repositories and the version catalog ('libs') of the QuPath release below.
pluginManagement {
    repositories {
        gradlePluginPortal()
        maven {
            url = uri("https://maven.scijava.org/content/repositories/releases")
        }
    }
}

qupath {
    version = "0.6.0"
}

plugins {
    id("io.github.qupath.qupath-extension-settings") version "0.2.1"
}

rootProject.name = "qupath-extension-deepliif"
