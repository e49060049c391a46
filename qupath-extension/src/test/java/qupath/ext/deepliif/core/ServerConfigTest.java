package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ServerConfigTest {

    private static final Path HOME = Path.of("/home/ana");

    @Test
    void environmentVariableOverridesEverything() {
        assertEquals(Path.of("/data/cfg"), ServerConfig.configDir(Map.of("NAPARI_DEEPLIIF_CONFIG_DIR", "/data/cfg"), "Linux", HOME));
        assertEquals(HOME.resolve("cfg"), ServerConfig.configDir(Map.of("NAPARI_DEEPLIIF_CONFIG_DIR", "~/cfg"), "Mac OS X", HOME));
    }

    @Test
    void linuxUsesAbsoluteXdgConfigHomeElseDotConfig() {
        assertEquals(HOME.resolve(".config/napari-deepliif"), ServerConfig.configDir(Map.of(), "Linux", HOME));
        assertEquals(Path.of("/xdg/napari-deepliif"), ServerConfig.configDir(Map.of("XDG_CONFIG_HOME", "/xdg"), "Linux", HOME));
        assertEquals(HOME.resolve(".config/napari-deepliif"),
                ServerConfig.configDir(Map.of("XDG_CONFIG_HOME", "relative"), "Linux", HOME), "relative XDG paths are ignored");
    }

    @Test
    void macUsesApplicationSupport() {
        assertEquals(HOME.resolve("Library/Application Support/napari-deepliif"), ServerConfig.configDir(Map.of(), "Mac OS X", HOME));
    }

    @Test
    void windowsUsesLocalAppDataWithAuthorAndAppName() {
        Path dir = ServerConfig.configDir(Map.of("LOCALAPPDATA", "/c/Users/ana/AppData/Local"), "Windows 11", HOME);
        assertEquals(Path.of("/c/Users/ana/AppData/Local/napari-deepliif/napari-deepliif"), dir);
    }

    @Test
    void tokenFileIsReadAndStripped(@TempDir Path dir) throws IOException, DeepLIIFException {
        Path file = dir.resolve(ServerConfig.TOKEN_FILE);
        Files.writeString(file, "  abc-123_XYZ\n");
        assertEquals("abc-123_XYZ", ServerConfig.readToken(file));
        assertEquals("mine", ServerConfig.resolveToken(" mine "));
    }

    @Test
    void missingOrEmptyTokenFilesSayWhatToDo(@TempDir Path dir) throws IOException {
        DeepLIIFException missing = assertThrows(DeepLIIFException.class, () -> ServerConfig.readToken(dir.resolve("none")));
        assertTrue(missing.getMessage().contains("napari-deepliif serve"));
        Path empty = Files.writeString(dir.resolve("empty"), "\n");
        DeepLIIFException blank = assertThrows(DeepLIIFException.class, () -> ServerConfig.readToken(empty));
        assertTrue(blank.getMessage().contains("empty"));
    }
}
