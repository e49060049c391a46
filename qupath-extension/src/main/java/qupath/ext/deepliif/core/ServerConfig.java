package qupath.ext.deepliif.core;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * Where napari-deepliif keeps its configuration, and the server token in it.
 * <p>
 * Mirrors napari-deepliif's {@code model_index.config_dir()}: {@code $NAPARI_DEEPLIIF_CONFIG_DIR}
 * if set, else platformdirs' {@code user_config_dir("napari-deepliif")}:
 * <ul>
 * <li>Linux: {@code $XDG_CONFIG_HOME/napari-deepliif} (when absolute), else {@code ~/.config/napari-deepliif}</li>
 * <li>macOS: {@code $XDG_CONFIG_HOME/napari-deepliif} (when absolute; platformdirs 4.x), else
 * {@code ~/Library/Application Support/napari-deepliif}</li>
 * <li>Windows: {@code %LOCALAPPDATA%\napari-deepliif\napari-deepliif} (platformdirs puts the app
 * author, which defaults to the app name, before the app name)</li>
 * </ul>
 */
public final class ServerConfig {

    /** The app name napari-deepliif passes to platformdirs. */
    public static final String APP_NAME = "napari-deepliif";
    /** Environment variable that overrides the config folder. */
    public static final String CONFIG_DIR_ENV = "NAPARI_DEEPLIIF_CONFIG_DIR";
    /** Name of the token file in the config folder. */
    public static final String TOKEN_FILE = "server-token";

    private ServerConfig() {
    }

    /** @return the config folder for this process's environment, OS and home */
    public static Path configDir() {
        return configDir(System.getenv(), System.getProperty("os.name", ""), Path.of(System.getProperty("user.home")));
    }

    /**
     * @param env    environment variables
     * @param osName {@code os.name} system property
     * @param home   the user's home folder
     * @return the config folder napari-deepliif uses in that environment
     */
    public static Path configDir(Map<String, String> env, String osName, Path home) {
        String override = env.get(CONFIG_DIR_ENV);
        if (override != null && !override.isEmpty())
            return expandUser(override, home);
        String os = osName.toLowerCase(Locale.ROOT);
        if (os.startsWith("windows")) {
            String local = env.get("LOCALAPPDATA");
            Path base = local != null && !local.isEmpty() ? Path.of(local) : home.resolve("AppData").resolve("Local");
            return base.resolve(APP_NAME).resolve(APP_NAME);
        }
        String xdg = env.get("XDG_CONFIG_HOME");
        if (xdg != null && xdg.startsWith("/"))
            return Path.of(xdg).resolve(APP_NAME);
        if (os.startsWith("mac"))
            return home.resolve("Library").resolve("Application Support").resolve(APP_NAME);
        return home.resolve(".config").resolve(APP_NAME);
    }

    /** @return the token file in {@link #configDir()} */
    public static Path tokenFile() {
        return configDir().resolve(TOKEN_FILE);
    }

    /**
     * Read a token file.
     *
     * @param file the token file
     * @return the token, stripped of surrounding whitespace
     * @throws DeepLIIFException if the file is missing, unreadable or empty
     */
    public static String readToken(Path file) throws DeepLIIFException {
        if (!Files.isRegularFile(file))
            throw new DeepLIIFException(0, "No server token", "No server token at " + file
                    + ": start the server once ('napari-deepliif serve') to create it, or paste the token of "
                    + "'napari-deepliif token' in Extensions > DeepLIIF > Preferences.");
        try {
            String token = Files.readString(file, StandardCharsets.UTF_8).strip();
            if (token.isEmpty())
                throw new DeepLIIFException(0, "Empty server token", "The token file " + file
                        + " is empty: restart the server to create a new one.");
            return token;
        } catch (IOException e) {
            throw new DeepLIIFException(0, "Token not readable", "Cannot read the token file " + file + ": " + e, e);
        }
    }

    /**
     * The token to use: {@code preferred} when not blank, else the token file's.
     *
     * @param preferred a token the user set, may be null or blank
     * @return the token
     * @throws DeepLIIFException if none is set and the token file cannot be read
     */
    public static String resolveToken(String preferred) throws DeepLIIFException {
        if (preferred != null && !preferred.isBlank())
            return preferred.strip();
        return readToken(tokenFile());
    }

    private static Path expandUser(String path, Path home) {
        if (path.equals("~"))
            return home;
        if (path.startsWith("~/") || path.startsWith("~\\"))
            return home.resolve(path.substring(2));
        return Path.of(path);
    }
}
