package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Path;

import javax.imageio.ImageIO;

/** The running server and files the "server" tests get from ci/test-core.sh's environment. */
final class ServerEnv {

    private ServerEnv() {
    }

    static String require(String name) {
        String value = System.getenv(name);
        assertNotNull(value, "environment variable " + name + " is not set (see ci/test-core.sh)");
        return value;
    }

    static DeepLIIFClient client() {
        return new DeepLIIFClient(URI.create(require("DEEPLIIF_URL")), require("DEEPLIIF_TOKEN"));
    }

    /** @return the absolute path of the sample image: a file the server can open itself */
    static String samplePath() {
        return Path.of(require("DEEPLIIF_SAMPLE")).toAbsolutePath().toString();
    }

    static BufferedImage sample() throws IOException {
        BufferedImage image = ImageIO.read(Path.of(require("DEEPLIIF_SAMPLE")).toFile());
        assertNotNull(image, "not an image: " + System.getenv("DEEPLIIF_SAMPLE"));
        return image;
    }

    /** A copy of a crop as TYPE_INT_RGB (what QuPath's readRegion gives for RGB images). */
    static BufferedImage crop(BufferedImage image, int x, int y, int width, int height) {
        BufferedImage out = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        var g = out.createGraphics();
        g.drawImage(image.getSubimage(x, y, width, height), 0, 0, null);
        g.dispose();
        return out;
    }
}
