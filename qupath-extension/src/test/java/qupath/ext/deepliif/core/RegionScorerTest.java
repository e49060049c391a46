package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;
import org.locationtech.jts.geom.Coordinate;
import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.GeometryFactory;

/** The one-request-per-region logic and the upload fallback, against a scripted loopback server. */
class RegionScorerTest {

    private static final GeometryFactory GF = new GeometryFactory();
    private static final ServerHealth.Limits LIMITS = new ServerHealth.Limits(64L << 20, 4096L * 4096, 4);
    private static final String NOT_READABLE = "https://napari-deepliif.example/problems/image-not-readable";

    /** Records what was read; answers a blank image of the asked size. */
    private static final class Reader implements RegionScorer.PixelReader {
        final List<double[]> reads = new ArrayList<>();

        @Override
        public BufferedImage read(int x, int y, int width, int height, double downsample) {
            reads.add(new double[] {x, y, width, height, downsample});
            return new BufferedImage((int) Math.round(width / downsample), (int) Math.round(height / downsample),
                    BufferedImage.TYPE_INT_RGB);
        }
    }

    private static String answer(double downsample, String... cells) {
        return Answers.answer(downsample, cells).toString();
    }

    private static RegionScorer scorer(FakeServer server, ScoreSettings settings) {
        return new RegionScorer(new DeepLIIFClient(server.url(), "secret"), settings, LIMITS);
    }

    @Test
    void aRegionIsOneJsonRequestAndTheAnswerIsUsedAsItIs() throws IOException, DeepLIIFException {
        try (var server = new FakeServer().on("/api/regions/score",
                FakeServer.Answer.json(answer(2, Answers.cell(120, 60, 10, true), Answers.cell(5000, 5000, 10, false))))) {
            Geometry roi = GF.toGeometry(new org.locationtech.jts.geom.Envelope(100, 400, 50, 250));
            var region = ScoreRegion.of("/slides/a.svs", roi, 10000, 10000, 0.25);
            var settings = new ScoreSettings(Magnification.X20, null, Threshold.DEFAULT, Threshold.DEFAULT, Threshold.DEFAULT);
            var reader = new Reader();
            RegionResult result = scorer(server, settings).score(region, reader);
            assertFalse(result.uploaded());
            assertNull(result.uploadReason());
            assertNull(result.scaleWarning());
            assertEquals(2, result.cells().size(), "the server decides which cells count: nothing is dropped here");
            assertEquals(1, result.numPositive());
            assertTrue(reader.reads.isEmpty(), "no pixels are read when the server reads the file");
            assertEquals(List.of("/api/regions/score"), server.paths());
            var sent = server.received().get(0);
            assertEquals("Bearer secret", sent.authorization());
            assertEquals("application/json", sent.contentType());
            JsonObject body = JsonParser.parseString(sent.text()).getAsJsonObject();
            assertEquals("/slides/a.svs", body.get("image").getAsString());
            assertEquals("[100,50,300,200]", body.get("region").toString());
            assertEquals("Polygon", body.getAsJsonObject("roi").get("type").getAsString());
            assertEquals("20x", body.get("resolution").getAsString());
            assertEquals(0.25, body.get("mpp").getAsDouble());
            assertEquals("default", body.get("size_thresh").getAsString());
            assertEquals("default", body.get("size_thresh_upper").getAsString());
            assertEquals("default", body.get("marker_thresh").getAsString());
            assertFalse(body.get("request_id").getAsString().isBlank());
        }
    }

    @Test
    void aFileTheServerCannotOpenIsReadOnceAndUploadedWithItsDownsample() throws IOException, DeepLIIFException {
        try (var server = new FakeServer()
                .on("/api/regions/score", FakeServer.Answer.problem(422, NOT_READABLE, "cannot open /slides/a.vsi"))
                .on("/api/score", FakeServer.Answer.json(answer(2, Answers.cell(120, 60, 10, true),
                        Answers.cell(390, 240, 10, false))))) {
            Geometry roi = GF.createPolygon(new Coordinate[] {new Coordinate(101, 50), new Coordinate(401, 50),
                    new Coordinate(101, 250), new Coordinate(101, 50)});
            var region = ScoreRegion.of("/slides/a.vsi", roi, 10000, 10000, 0.25);
            var reader = new Reader();
            RegionResult result = scorer(server, ScoreSettings.defaults(Magnification.X20)).score(region, reader);
            assertTrue(result.uploaded());
            assertEquals("cannot open /slides/a.vsi", result.uploadReason());
            assertEquals(1, reader.reads.size(), "the region is read once, not tile by tile");
            double[] read = reader.reads.get(0);
            assertEquals(List.of(100.0, 50.0, 300.0, 200.0, 2.0), List.of(read[0], read[1], read[2], read[3], read[4]));
            var upload = server.received().get(1);
            assertEquals("/api/score", upload.path());
            assertEquals("image/png", upload.contentType());
            assertEquals("resolution=20x&size_thresh=default&origin_x=50&origin_y=25&downsample=2&request_id=",
                    upload.query().replaceAll("request_id=.*", "request_id="));
            assertEquals(1, result.cells().size(), "the cell outside the triangle is dropped");
            assertEquals(new ScoreRecord.Scoring(1, 1, 0, 100.0, 120, 31, null, 90), result.score().scoring(),
                    "counts are those of the cells kept; thresholds as the server used them");
        }
    }

    /** A points model's answer: Point features of class {@code tumour+} or {@code tumour-}, counted by the record. */
    private static String pointsAnswer(double[][] points, boolean[] positive) {
        List<String> features = new ArrayList<>();
        int pos = 0;
        for (int i = 0; i < points.length; i++) {
            features.add(String.format(java.util.Locale.ROOT, """
                    {"type": "Feature", "geometry": {"type": "Point", "coordinates": [%s, %s]},
                     "properties": {"objectType": "detection", "classification": "%s",
                                    "measurements": {"Confidence": 0.9}}}""",
                    points[i][0], points[i][1], positive[i] ? "tumour+" : "tumour-"));
            pos += positive[i] ? 1 : 0;
        }
        return String.format(java.util.Locale.ROOT, """
                {"type": "FeatureCollection", "features": [%s],
                 "score": {"format": "napari-deepliif/score", "format_version": 1,
                           "scoring": {"num_total": %d, "num_pos": %d, "num_neg": %d, "percent_pos": %s,
                                       "seg_thresh": null, "size_thresh": null, "size_thresh_upper": null,
                                       "marker_thresh": null, "classes": {"tumour+": %d, "tumour-": %d},
                                       "positive_classes": ["tumour+"]},
                           "provenance": {"engine": "points", "model": "pdl1", "model_hash": "abc", "version": "0.2.0"},
                           "placement": {"level": 0, "downsample": 2, "mpp": 0.5, "resolution": "20x",
                                         "origin": [50, 25], "shape": [100, 150], "region": null},
                           "regions": {}, "run": {"threshold": 0.3, "min_distance_um": 3.0}}}""",
                String.join(",", features), points.length, pos, points.length - pos,
                ScoreRecord.Scoring.percent(pos, points.length), pos, points.length - pos);
    }

    @Test
    void anUploadedPointsModelsPointsAreRecountedByTheRecordsPositiveClasses() throws IOException, DeepLIIFException {
        double[][] points = {{120.5, 60.5}, {130.5, 70.5}, {140.5, 80.5}, {390.5, 240.5}, {395.5, 245.5}};
        boolean[] positive = {true, true, false, true, false};
        try (var server = new FakeServer()
                .on("/api/regions/score", FakeServer.Answer.problem(422, NOT_READABLE, "cannot open /slides/a.vsi"))
                .on("/api/score", FakeServer.Answer.json(pointsAnswer(points, positive)))) {
            Geometry roi = GF.createPolygon(new Coordinate[] {new Coordinate(101, 50), new Coordinate(401, 50),
                    new Coordinate(101, 250), new Coordinate(101, 50)});
            var region = ScoreRegion.of("/slides/a.vsi", roi, 10000, 10000, 0.25);
            RegionResult result = scorer(server, ScoreSettings.defaults(Magnification.X20)).score(region, new Reader());
            assertTrue(result.uploaded());
            assertEquals(3, result.cells().size(), "the two points outside the triangle are dropped");
            assertEquals(List.of("tumour+", "tumour+", "tumour-"),
                    result.cells().stream().map(Cell::classification).toList());
            assertEquals(new ScoreRecord.Scoring(3, 2, 1, 66.7, null, null, null, null), result.score().scoring(),
                    "a points model's classes are not named Positive: tumour+ counts as the record says");
            assertEquals(List.of("tumour+"), result.score().positiveClasses());
        }
    }

    @Test
    void aPointsModelsRegionReadByTheServerKeepsTheServersCounts() throws IOException, DeepLIIFException {
        try (var server = new FakeServer().on("/api/regions/score", FakeServer.Answer.json(
                pointsAnswer(new double[][] {{120.5, 60.5}, {140.5, 80.5}}, new boolean[] {true, false})))) {
            var region = new ScoreRegion("/a.tif", 100, 50, 300, 200, GF.createPolygon(new Coordinate[] {
                    new Coordinate(101, 50), new Coordinate(401, 50), new Coordinate(101, 250), new Coordinate(101, 50)}),
                    0.25);
            RegionResult result = scorer(server, ScoreSettings.defaults(Magnification.X20)).score(region, new Reader());
            assertFalse(result.uploaded());
            assertEquals(List.of("/api/regions/score"), server.paths(), "the outline goes to the server as roi");
            String sent = new String(server.received().get(0).body(), java.nio.charset.StandardCharsets.UTF_8);
            assertTrue(sent.contains("\"roi\""), sent);
            assertEquals(1, result.numPositive());
            assertEquals(2, result.numTotal());
            assertTrue(result.score().isPositive(result.cells().get(0)));
            assertFalse(result.score().isPositive(result.cells().get(1)));
        }
    }

    @Test
    void anOlderServerWithoutTheRouteGetsAnUploadToo() throws IOException, DeepLIIFException {
        try (var server = new FakeServer().on("/api/score", FakeServer.Answer.json(answer(1)))) {
            var region = new ScoreRegion("/a.png", 0, 0, 100, 100, null, Double.NaN);
            RegionResult result = scorer(server, ScoreSettings.defaults(Magnification.X40)).score(region, new Reader());
            assertEquals(List.of("/api/regions/score", "/api/score"), server.paths());
            assertTrue(result.uploadReason().contains("older napari-deepliif"), result.uploadReason());
        }
    }

    @Test
    void aRegionWithoutAFileIsUploadedStraightAway() throws IOException, DeepLIIFException {
        try (var server = new FakeServer().on("/api/score", FakeServer.Answer.json(answer(1)))) {
            var region = new ScoreRegion(null, 10, 10, 100, 100, null, Double.NaN);
            RegionResult result = scorer(server, ScoreSettings.defaults(null)).score(region, new Reader());
            assertEquals(List.of("/api/score"), server.paths());
            assertTrue(result.uploaded());
            assertTrue(server.received().get(0).query().startsWith("resolution=40x&"), "uncalibrated: assumed 40x");
            assertTrue(result.scaleWarning().contains("no pixel size"), result.scaleWarning());
        }
    }

    @Test
    void otherRefusalsAreNotHiddenByAnUpload() throws IOException {
        try (var server = new FakeServer().on("/api/regions/score", FakeServer.Answer.problem(422,
                "https://napari-deepliif.example/problems/image-too-small", "the region is smaller than 16 px"))) {
            var region = new ScoreRegion("/a.png", 0, 0, 8, 8, null, Double.NaN);
            DeepLIIFException e = assertThrows(DeepLIIFException.class,
                    () -> scorer(server, ScoreSettings.defaults(null)).score(region, new Reader()));
            assertEquals(422, e.getStatus());
            assertEquals("the region is smaller than 16 px", e.getMessage());
            assertEquals(List.of("/api/regions/score"), server.paths());
        }
    }

    @Test
    void anUploadLargerThanTheServerTakesFailsBeforeReadingPixels() throws IOException {
        try (var server = new FakeServer().on("/api/regions/score", FakeServer.Answer.problem(422, NOT_READABLE, "no reader"))) {
            var region = new ScoreRegion("/big.vsi", 0, 0, 40000, 30000, null, 0.25);
            var reader = new Reader();
            DeepLIIFException e = assertThrows(DeepLIIFException.class,
                    () -> scorer(server, ScoreSettings.defaults(Magnification.X40)).score(region, reader));
            assertTrue(e.getMessage().contains("40000 x 30000 pixels"), e.getMessage());
            assertTrue(e.getMessage().contains("smaller annotation") && e.getMessage().contains("no reader"), e.getMessage());
            assertTrue(reader.reads.isEmpty());
            assertEquals(List.of("/api/regions/score"), server.paths());
        }
    }

    @Test
    void aBusyServerIsAskedAgainAfterRetryAfter() throws IOException, DeepLIIFException {
        var busy = new FakeServer.Answer(429, "application/problem+json",
                "{\"title\": \"Busy\", \"status\": 429, \"detail\": \"queue full\"}", Map.of("Retry-After", "1"));
        try (var server = new FakeServer().on("/api/regions/score", busy, FakeServer.Answer.json(answer(1)))) {
            var region = new ScoreRegion("/a.png", 0, 0, 100, 100, null, Double.NaN);
            long start = System.nanoTime();
            scorer(server, ScoreSettings.defaults(null)).score(region, new Reader());
            assertTrue(System.nanoTime() - start >= 900_000_000L, "waited for Retry-After");
            assertEquals(2, server.paths().size());
            String first = JsonParser.parseString(server.received().get(0).text()).getAsJsonObject().get("request_id").getAsString();
            String second = JsonParser.parseString(server.received().get(1).text()).getAsJsonObject().get("request_id").getAsString();
            assertFalse(first.equals(second), "each attempt has its own request id");
        }
    }

    @Test
    void cancelledScorersSendNothingAndTheServers409IsACancel() throws IOException, DeepLIIFException {
        try (var server = new FakeServer().on("/api/regions/score",
                FakeServer.Answer.problem(409, "https://napari-deepliif.example/problems/cancelled", "cancelled"))) {
            var region = new ScoreRegion("/a.png", 0, 0, 100, 100, null, Double.NaN);
            var cancelled = scorer(server, ScoreSettings.defaults(null));
            cancelled.cancel();
            assertThrows(CancelledException.class, () -> cancelled.score(region, new Reader()));
            assertTrue(server.paths().isEmpty());
            assertThrows(CancelledException.class, () -> scorer(server, ScoreSettings.defaults(null)).score(region, new Reader()));
        }
    }

    @Test
    void uploadsStartOnTheDownsampledGridInsideTheRegion() {
        var exact = RegionScorer.Upload.of(new ScoreRegion(null, 101, 50, 300, 200, null, 0.25), ScalePlan.plan(Magnification.X20, 0.25));
        assertEquals(new RegionScorer.Upload(100, 50, 300, 200, 50, 25, 150, 100, new ScalePlan(2.0, Magnification.X20, null)), exact);
        var fractional = RegionScorer.Upload.of(new ScoreRegion(null, 100, 0, 300, 30, null, 0.5 / 1.5),
                ScalePlan.plan(Magnification.X20, 0.5 / 1.5));
        assertEquals(1.5, fractional.scale().downsample(), 1e-12);
        assertEquals(66, fractional.originX());
        assertEquals(99, fractional.readX(), "round(66 * 1.5): within half a level-0 pixel of where cells land");
        assertEquals(200, fractional.width());
        assertTrue(fractional.readX() + fractional.readWidth() <= 400, "the read stays inside the region");
    }
}
