package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import com.google.gson.GsonBuilder;
import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.locationtech.jts.geom.Coordinate;
import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.GeometryFactory;
import org.locationtech.jts.geom.util.AffineTransformation;

/**
 * Scores an elliptical annotation of a real IHC image as the extension does and writes the
 * cells it ends up with to {@code $DEEPLIIF_RESULT/<route>.json}; tests/test_qupath_regions.py
 * compares them with the engine's {@code score} of the same region, counted in the same outline:
 * <ul>
 * <li>{@code server.json}: the server reads the region from the file ({@code POST /api/regions/score}).</li>
 * <li>{@code upload.json}: the region's pixels read once and uploaded ({@code POST /api/score}),
 * the cells outside the outline dropped by the extension.</li>
 * </ul>
 */
@Tag("server")
class RoundTripTest {

    /** Region of the sample scored, level-0 pixels: x, y, width, height. */
    static final int[] REGION = {200, 100, 900, 700};

    /** The annotation: an ellipse inscribed in the region (less 20 px). */
    static Geometry outline() {
        Geometry circle = new GeometryFactory().createPoint(new Coordinate(0, 0)).buffer(1, 64);
        return new AffineTransformation().scale(REGION[2] / 2.0 - 20, REGION[3] / 2.0 - 20)
                .translate(REGION[0] + REGION[2] / 2.0, REGION[1] + REGION[3] / 2.0).transform(circle);
    }

    private static void write(String name, RegionResult result, Geometry outline) throws IOException {
        JsonObject out = new JsonObject();
        JsonArray region = new JsonArray();
        for (int v : REGION)
            region.add(v);
        out.add("region", region);
        out.addProperty("roi_wkt", outline.toText());
        JsonArray cells = new JsonArray();
        for (Cell cell : result.cells()) {
            Coordinate c = cell.centroid();
            JsonArray row = new JsonArray();
            row.add(c.x);
            row.add(c.y);
            row.add(cell.classification());
            row.add(cell.geometry().getArea());
            cells.add(row);
        }
        out.add("cells", cells);
        var s = result.score().scoring();
        out.addProperty("num_total", s.numTotal());
        out.addProperty("num_positive", s.numPos());
        out.addProperty("percent_positive", s.percentPos());
        out.addProperty("engine", result.score().provenance().get("engine"));
        out.addProperty("uploaded", result.uploaded());
        Path folder = Path.of(ServerEnv.require("DEEPLIIF_RESULT"));
        Files.createDirectories(folder);
        Files.writeString(folder.resolve(name + ".json"), new GsonBuilder().setPrettyPrinting().create().toJson(out),
                StandardCharsets.UTF_8);
    }

    private static ScoreRegion region(String imagePath) {
        return ScoreRegion.of(imagePath, outline(), Integer.MAX_VALUE, Integer.MAX_VALUE, Double.NaN);
    }

    private static RegionScorer scorer() throws DeepLIIFException {
        DeepLIIFClient client = ServerEnv.client();
        return new RegionScorer(client, ScoreSettings.defaults(Magnification.X40), client.health().limits());
    }

    /** Needs POST /api/regions/score. */
    @Test
    void writesTheCellsTheServerReadsFromTheFile() throws IOException, DeepLIIFException {
        RegionResult result = scorer().serverRead(region(ServerEnv.samplePath()));
        assertFalse(result.uploaded());
        assertTrue(result.numTotal() > 50, "too few cells in a 860 x 660 px ellipse of an IHC image: " + result.numTotal());
        write("server", result, outline());
    }

    /** Needs the new POST /api/score (score record, downsample). */
    @Test
    void writesTheCellsOfOneUpload() throws IOException, DeepLIIFException {
        BufferedImage image = ServerEnv.sample();
        var region = region(null);
        assertEquals(new ScoreRegion(null, 220, 120, 860, 660, region.roi(), Double.NaN), region);
        RegionResult result = scorer().upload(region, (x, y, w, h, d) -> ServerEnv.crop(image, x, y, w, h), "test");
        assertTrue(result.uploaded());
        assertTrue(result.numTotal() > 50, "too few cells: " + result.numTotal());
        write("upload", result, outline());
    }
}
