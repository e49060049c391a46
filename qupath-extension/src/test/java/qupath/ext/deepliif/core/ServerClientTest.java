package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.net.URI;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/**
 * The client against the real napari-deepliif server (ci/test-core.sh passes its URL and token).
 * Each test says which endpoint it needs beyond {@code /api/health} and {@code /api/cancel}.
 */
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
    }

    /** Needs the score record layout of POST /api/score and its {@code downsample} query parameter. */
    @Test
    void anUploadComesBackInLevel0PixelsFromItsOriginAndDownsample() throws IOException, DeepLIIFException {
        var query = ScoreSettings.defaults(Magnification.X40).queryParameters(Magnification.X40, 500, 1000, 2, null);
        ScoreResponse response = ServerEnv.client().score(samplePng(256), "image/png", query);
        assertFalse(response.cells().isEmpty(), "no cells in a 256 px crop of a real IHC image");
        assertEquals(response.cells().size(), response.score().scoring().numTotal());
        long positive = response.cells().stream().filter(Cell::isPositive).count();
        assertEquals(positive, response.score().scoring().numPos());
        for (Cell cell : response.cells()) {
            assertTrue(Set.of(Cell.POSITIVE, Cell.NEGATIVE).contains(cell.classification()), cell.classification());
            var e = cell.geometry().getEnvelopeInternal();
            assertTrue(e.getMinX() >= 1000 && e.getMaxX() <= 1512 && e.getMinY() >= 2000 && e.getMaxY() <= 2512, e.toString());
        }
        var placement = response.score().placement();
        assertEquals(2.0, placement.downsample());
        assertEquals("40x", placement.resolution());
        assertEquals(256, placement.width());
        assertEquals(256, placement.height());
        assertTrue(response.score().provenance().containsKey("engine"));
        assertNotNull(response.score().scoring().sizeThresh(), "the default size threshold the server computed");
    }

    /** Needs POST /api/regions/score. */
    @Test
    void theServerReadsARegionOfTheFileItself() throws DeepLIIFException {
        var scorer = new RegionScorer(ServerEnv.client(), ScoreSettings.defaults(Magnification.X40), ServerEnv.client().health().limits());
        var region = new ScoreRegion(ServerEnv.samplePath(), 300, 200, 400, 300, null, Double.NaN);
        RegionResult result = scorer.score(region, (x, y, w, h, d) -> {
            throw new IOException("the server should read the file itself");
        });
        assertFalse(result.uploaded());
        assertFalse(result.cells().isEmpty());
        for (Cell cell : result.cells()) {
            var c = cell.centroid();
            assertTrue(c.x >= 300 && c.x <= 700 && c.y >= 200 && c.y <= 500, "centroid in level-0 pixels of the region: " + c);
        }
        assertEquals(0, result.score().placement().level());
        assertEquals(1.0, result.score().placement().downsample());
        assertEquals("40x", result.score().placement().resolution());
    }

    /** Needs POST /api/regions/score. */
    @Test
    void everyThresholdMayBeLeftToTheServersDefault() throws DeepLIIFException {
        var settings = new ScoreSettings(Magnification.X40, null, Threshold.DEFAULT, Threshold.DEFAULT, Threshold.DEFAULT);
        var region = new ScoreRegion(ServerEnv.samplePath(), 300, 200, 400, 300, null, Double.NaN);
        ScoreResponse response = ServerEnv.client().scoreRegion(region.requestBody(settings, "defaults-1"));
        var scoring = response.score().scoring();
        assertNotNull(scoring.sizeThresh());
        assertNotNull(scoring.sizeThreshUpper(), "'default' upper size threshold applied");
        assertNotNull(scoring.markerThresh(), "'default' marker threshold applied");
        var none = ServerEnv.client().scoreRegion(region.requestBody(ScoreSettings.defaults(Magnification.X40), "none-1"));
        assertNull(none.score().scoring().sizeThreshUpper(), "null: not applied");
        assertNull(none.score().scoring().markerThresh(), "null: not applied");
    }

    /**
     * Needs a stain-engine server whose POST /api/regions/score and /api/score take
     * {@code dab_threshold}: a raised threshold leaves the cells and makes fewer of them positive,
     * read by the server or uploaded alike, and the record says which threshold was used.
     */
    @Test
    void theStainEnginesDabThresholdIsSentWithTheRegionAndTheUpload() throws IOException, DeepLIIFException {
        var client = ServerEnv.client();
        var region = new ScoreRegion(ServerEnv.samplePath(), 300, 200, 400, 300, null, Double.NaN);
        var settings = ScoreSettings.defaults(Magnification.X40);
        var plain = client.scoreRegion(region.requestBody(settings, "dab-plain")).score();
        var raised = client.scoreRegion(region.requestBody(settings.withDabThreshold(0.45), "dab-raised")).score();
        assertEquals(Map.of("dab_threshold", 0.2), plain.parameters());
        assertEquals(Map.of("dab_threshold", 0.45), raised.parameters());
        assertEquals(plain.scoring().numTotal(), raised.scoring().numTotal(), "the same nuclei");
        assertTrue(raised.scoring().numPos() < plain.scoring().numPos(),
                raised.scoring().numPos() + " positive at 0.45 OD, " + plain.scoring().numPos() + " at 0.2");
        var scorer = new RegionScorer(client, settings.withDabThreshold(0.45), client.health().limits());
        RegionResult uploaded = scorer.score(region.withoutImagePath(),
                (x, y, w, h, d) -> ServerEnv.crop(ServerEnv.sample(), x, y, w, h));
        assertTrue(uploaded.uploaded());
        assertEquals(Map.of("dab_threshold", 0.45), uploaded.score().parameters());
        assertEquals(ScoreMeasurements.of(uploaded).get(ScoreMeasurements.DAB_THRESHOLD), 0.45);
    }

    /**
     * Needs a server whose POST /api/regions/score and /api/score take the compartment options:
     * a membrane score with bins comes back with its settings, bin counts and H-score, read by
     * the server or uploaded alike, and every cell carries the stain measurements QuPath users
     * classify on.
     */
    @Test
    void aCompartmentScoreComesBackWithBinsAndMeasurementsOnEveryCell() throws IOException, DeepLIIFException {
        var client = ServerEnv.client();
        var membrane = new CompartmentSettings("membrane", 0.3, 0.4, 0.6, null, 3.0);
        var settings = ScoreSettings.defaults(Magnification.X40).withCompartment(membrane);
        var region = new ScoreRegion(ServerEnv.samplePath(), 300, 200, 400, 300, null, Double.NaN);
        var read = new RegionScorer(client, settings, client.health().limits()).score(region, (x, y, w, h, d) -> {
            throw new IOException("the server should read the file itself");
        });
        var uploaded = new RegionScorer(client, settings, client.health().limits()).score(region.withoutImagePath(),
                (x, y, w, h, d) -> ServerEnv.crop(ServerEnv.sample(), x, y, w, h));
        for (RegionResult result : List.of(read, uploaded)) {
            var score = result.score();
            assertEquals("membrane", score.compartment());
            assertEquals(0.3, score.compartmentScoring().get("positive_od"));
            assertEquals(3.0, score.compartmentScoring().get("expansion_um"));
            double binned = score.compartmentScoring().get("num_1plus") + score.compartmentScoring().get("num_2plus")
                    + score.compartmentScoring().get("num_3plus");
            assertEquals(score.scoring().numPos(), binned, 0, "every positive cell is in one bin");
            var m = ScoreMeasurements.of(result);
            assertEquals(3.0, m.get(ScoreMeasurements.POSITIVE_BY));
            assertTrue(m.get(ScoreMeasurements.H_SCORE) >= 0);
            for (Cell cell : result.cells())
                for (String name : List.of("Nucleus: DAB OD mean", "Cell: Area µm^2"))
                    assertTrue(cell.measurements().containsKey(name), name + " missing from " + cell.measurements().keySet());
        }
        var plain = client.scoreRegion(region.requestBody(ScoreSettings.defaults(Magnification.X40), "class-1")).score();
        assertEquals("class", plain.compartment());
        assertTrue(plain.compartmentScoring().isEmpty());
    }

    /** Needs POST /api/regions/score (its 422 image-not-readable) and the new POST /api/score. */
    @Test
    void aFileTheServerCannotOpenFallsBackToOneUpload() throws IOException, DeepLIIFException {
        var client = ServerEnv.client();
        var missing = new ScoreRegion("/no/such/folder/slide.svs", 300, 200, 400, 300, null, Double.NaN);
        DeepLIIFException e = assertThrows(DeepLIIFException.class,
                () -> client.scoreRegion(missing.requestBody(ScoreSettings.defaults(Magnification.X40), "missing-1")));
        assertEquals(422, e.getStatus());
        assertTrue(e.isProblem(RegionScorer.IMAGE_NOT_READABLE), "problem type " + e.getType());
        BufferedImage image = ServerEnv.sample();
        List<int[]> reads = new ArrayList<>();
        var scorer = new RegionScorer(client, ScoreSettings.defaults(Magnification.X40), client.health().limits());
        RegionResult result = scorer.score(missing, (x, y, w, h, d) -> {
            reads.add(new int[] {x, y, w, h});
            return ServerEnv.crop(image, x, y, w, h);
        });
        assertTrue(result.uploaded());
        assertEquals(1, reads.size());
        assertEquals(List.of(300, 200, 400, 300), Arrays.stream(reads.get(0)).boxed().toList());
        assertFalse(result.cells().isEmpty());
    }

    @Test
    void wrongTokenIs401WithTheServersReason() throws IOException, DeepLIIFException {
        var client = new DeepLIIFClient(URI.create(ServerEnv.require("DEEPLIIF_URL")), "not-the-token");
        var query = ScoreSettings.defaults(Magnification.X40).queryParameters(Magnification.X40, 0, 0, 1, null);
        byte[] png = samplePng(64);
        DeepLIIFException e = assertThrows(DeepLIIFException.class, () -> client.score(png, "image/png", query));
        assertEquals(401, e.getStatus());
        assertFalse(e.getTitle().startsWith("HTTP "), "the title should come from problem JSON: " + e.getTitle());
        assertTrue(e.getMessage().contains("napari-deepliif token"), e.getMessage());
    }

    @Test
    void badRequestsGetProblemDetails() throws IOException, DeepLIIFException {
        var client = ServerEnv.client();
        var query = ScoreSettings.defaults(Magnification.X40).queryParameters(Magnification.X40, 0, 0, 1, null);
        byte[] png = samplePng(64);
        DeepLIIFException wrongType = assertThrows(DeepLIIFException.class,
                () -> client.score(png, "text/plain", query));
        assertEquals(415, wrongType.getStatus());
        byte[] truncated = Arrays.copyOf(png, png.length / 2);
        DeepLIIFException broken = assertThrows(DeepLIIFException.class,
                () -> client.score(truncated, "image/png", query));
        assertEquals(422, broken.getStatus());
        assertFalse(broken.getMessage().isBlank());
        byte[] tiny = RegionScorer.png(new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB));
        DeepLIIFException small = assertThrows(DeepLIIFException.class,
                () -> client.score(tiny, "image/png", query));
        assertEquals(422, small.getStatus());
        var badMagnification = new java.util.LinkedHashMap<>(query);
        badMagnification.put("resolution", "5x");
        DeepLIIFException bad = assertThrows(DeepLIIFException.class,
                () -> client.score(png, "image/png", badMagnification));
        assertTrue(bad.getStatus() == 400 || bad.getStatus() == 422, "status " + bad.getStatus());
    }

    @Test
    void cancellingAnUnknownRequestCancelsNothing() throws DeepLIIFException {
        assertFalse(ServerEnv.client().cancel("no-such-request"));
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
