package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** The client against the real napari-deepliif server (ci/test-core.sh passes its URL and token). */
@Tag("server")
class ServerClientTest {

    private static byte[] samplePng(int size) throws IOException, DeepLIIFException {
        return RegionScorer.png(ServerEnv.crop(ServerEnv.sample(), 300, 200, size, size));
    }

    @Test
    void healthNamesTheEngineAndLimits() throws DeepLIIFException {
        ServerHealth health = ServerEnv.client().health();
        assertTrue(health.isOk(), "status " + health.status());
        assertTrue(Set.of("stain", "deepliif").contains(health.engine()), health.engine());
        assertTrue(health.limits().maxPixels() >= 2048L * 2048, "max_pixels " + health.limits().maxPixels());
        assertTrue(health.limits().maxRequestBytes() > 0);
        assertEquals(Tiling.MAX_TILE_SIZE, Tiling.tileSizeFor(health.limits(), Tiling.DEFAULT_OVERLAP));
    }

    @Test
    void scoresOneTileWithCellsInsideItPlusTheOrigin() throws IOException, DeepLIIFException {
        var query = ScoreSettings.defaults(Magnification.X40).queryParameters(1000, 2000, null);
        ScoreResponse response = ServerEnv.client().score(samplePng(256), "image/png", query, CoordinateMapping.IDENTITY);
        assertFalse(response.cells().isEmpty(), "no cells in a 256 px crop of a real IHC image");
        assertEquals(response.cells().size(), response.score().get("num_total").intValue());
        long positive = response.cells().stream().filter(Cell::isPositive).count();
        assertEquals(positive, response.score().get("num_pos").longValue());
        for (Cell cell : response.cells()) {
            assertTrue(Set.of(Cell.POSITIVE, Cell.NEGATIVE).contains(cell.classification()), cell.classification());
            var e = cell.geometry().getEnvelopeInternal();
            assertTrue(e.getMinX() >= 1000 && e.getMaxX() <= 1256 && e.getMinY() >= 2000 && e.getMaxY() <= 2256, e.toString());
        }
        assertEquals("40x", response.provenance().get("resolution"));
        assertTrue(response.provenance().containsKey("engine"));
    }

    @Test
    void wrongTokenIs401WithTheServersReason() throws IOException, DeepLIIFException {
        var client = new DeepLIIFClient(URI.create(ServerEnv.require("DEEPLIIF_URL")), "not-the-token");
        var query = ScoreSettings.defaults(Magnification.X40).queryParameters(0, 0, null);
        byte[] png = samplePng(64);
        DeepLIIFException e = assertThrows(DeepLIIFException.class, () -> client.score(png, "image/png", query, CoordinateMapping.IDENTITY));
        assertEquals(401, e.getStatus());
        assertFalse(e.getTitle().startsWith("HTTP "), "the title should come from problem JSON: " + e.getTitle());
        assertTrue(e.getMessage().contains("napari-deepliif token"), e.getMessage());
    }

    @Test
    void badRequestsGetProblemDetails() throws IOException, DeepLIIFException {
        var client = ServerEnv.client();
        var query = ScoreSettings.defaults(Magnification.X40).queryParameters(0, 0, null);
        byte[] png = samplePng(64);
        DeepLIIFException wrongType = assertThrows(DeepLIIFException.class,
                () -> client.score(png, "text/plain", query, CoordinateMapping.IDENTITY));
        assertEquals(415, wrongType.getStatus());
        byte[] truncated = Arrays.copyOf(png, png.length / 2);
        DeepLIIFException broken = assertThrows(DeepLIIFException.class,
                () -> client.score(truncated, "image/png", query, CoordinateMapping.IDENTITY));
        assertEquals(422, broken.getStatus());
        assertFalse(broken.getMessage().isBlank());
        byte[] tiny = RegionScorer.png(new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB));
        DeepLIIFException small = assertThrows(DeepLIIFException.class,
                () -> client.score(tiny, "image/png", query, CoordinateMapping.IDENTITY));
        assertEquals(422, small.getStatus());
        var badMagnification = new java.util.LinkedHashMap<>(query);
        badMagnification.put("resolution", "5x");
        DeepLIIFException bad = assertThrows(DeepLIIFException.class,
                () -> client.score(png, "image/png", badMagnification, CoordinateMapping.IDENTITY));
        assertTrue(bad.getStatus() == 400 || bad.getStatus() == 422, "status " + bad.getStatus());
    }

    @Test
    void cancellingAnUnknownRequestCancelsNothing() throws DeepLIIFException {
        assertFalse(ServerEnv.client().cancel("no-such-request"));
    }

    @Test
    void cancelBetweenTilesStopsTheRun() throws IOException {
        BufferedImage region = ServerEnv.crop(ServerEnv.sample(), 0, 0, 900, 700);
        var scorer = new RegionScorer(ServerEnv.client(), ScoreSettings.defaults(Magnification.X40), 512, 64);
        List<Integer> progress = new ArrayList<>();
        assertThrows(CancelledException.class, () -> scorer.score(
                (x, y, w, h) -> region.getSubimage(x, y, w, h), 900, 700, new ScalePlan(1, Magnification.X40, null),
                CoordinateMapping.IDENTITY, null, (done, total) -> {
                    progress.add(done);
                    try {
                        scorer.cancel();
                    } catch (DeepLIIFException e) {
                        throw new IllegalStateException(e);
                    }
                }));
        assertEquals(List.of(1), progress, "the run must stop after the tile in which cancel was called");
    }

    @Test
    void theTokenFileIsFoundWhereTheServerWroteIt() throws DeepLIIFException {
        assertEquals(ServerEnv.require("DEEPLIIF_TOKEN"), ServerConfig.resolveToken(null),
                "token file " + ServerConfig.tokenFile());
    }

    @Test
    void anUnreachableServerSaysHowToStartIt() {
        var client = new DeepLIIFClient(URI.create("http://127.0.0.1:9"), "x");
        DeepLIIFException e = assertThrows(DeepLIIFException.class, client::health);
        assertEquals(0, e.getStatus());
        assertTrue(e.getMessage().contains("napari-deepliif serve"), e.getMessage());
    }
}
