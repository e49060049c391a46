package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
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

/**
 * Reads a region of a real IHC image, scores it through the server as the extension does and
 * writes the cells it ends up with to {@code $DEEPLIIF_RESULT}; tests/test_qupath_core.py
 * compares them with the engine's own result for the same pixels.
 * <ul>
 * <li>"single": the region as one tile: must equal {@code engine.score(image, region=...)}.</li>
 * <li>"tiled": 512 px tiles with 64 px overlap, duplicates removed by ownership, and an
 * elliptical mask: must equal the engine run on each tile, each cell taken from the tile owning
 * its centroid, inside the mask.</li>
 * </ul>
 */
@Tag("server")
class RoundTripTest {

    /** Region of the sample scored, full-image pixels: x, y, width, height. */
    static final int[] REGION = {200, 100, 900, 700};

    private static JsonObject run(BufferedImage image, int tileSize, Geometry mask) throws DeepLIIFException {
        int x0 = REGION[0];
        int y0 = REGION[1];
        var scorer = new RegionScorer(ServerEnv.client(), ScoreSettings.defaults(Magnification.X40), tileSize, Tiling.DEFAULT_OVERLAP);
        RegionResult result = scorer.score((x, y, w, h) -> ServerEnv.crop(image, x0 + x, y0 + y, w, h), REGION[2], REGION[3],
                new ScalePlan(1.0, Magnification.X40, null), new CoordinateMapping(x0, y0, 1.0), mask, null);
        JsonObject out = new JsonObject();
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
        JsonArray tiles = new JsonArray();
        for (Tile t : result.tiles()) {
            JsonObject tile = new JsonObject();
            tile.addProperty("x", t.x());
            tile.addProperty("y", t.y());
            tile.addProperty("width", t.width());
            tile.addProperty("height", t.height());
            JsonArray core = new JsonArray();
            for (double v : new double[] {t.coreMinX(), t.coreMinY(), t.coreMaxX(), t.coreMaxY()})
                core.add(Double.isFinite(v) ? Double.toString(v) : (v > 0 ? "inf" : "-inf"));
            tile.add("core", core);
            tiles.add(tile);
        }
        out.add("tiles", tiles);
        out.addProperty("num_positive", result.numPositive());
        out.addProperty("percent_positive", result.percentPositive());
        out.addProperty("engine", result.provenance().get("engine"));
        if (mask != null)
            out.addProperty("mask_wkt", mask.toText());
        return out;
    }

    @Test
    void writesSingleTileAndTiledCellsOfARealRegion() throws IOException, DeepLIIFException {
        BufferedImage image = ServerEnv.sample();
        JsonObject result = new JsonObject();
        JsonArray region = new JsonArray();
        for (int v : REGION)
            region.add(v);
        result.add("region", region);

        JsonObject single = run(image, 1024, null);
        assertEquals(1, single.getAsJsonArray("tiles").size());
        assertTrue(single.getAsJsonArray("cells").size() > 50, "too few cells in a 900 x 700 px IHC region");
        result.add("single", single);

        var gf = new GeometryFactory();
        Geometry ellipse = gf.createPoint(new Coordinate(0, 0)).buffer(1, 64);
        Geometry mask = new org.locationtech.jts.geom.util.AffineTransformation()
                .scale(430, 330).translate(REGION[0] + 450, REGION[1] + 350).transform(ellipse);
        JsonObject tiled = run(image, 512, mask);
        assertEquals(4, tiled.getAsJsonArray("tiles").size());
        assertTrue(tiled.getAsJsonArray("cells").size() > 50);
        result.add("tiled", tiled);

        Path out = Path.of(ServerEnv.require("DEEPLIIF_RESULT"));
        Files.writeString(out, new GsonBuilder().setPrettyPrinting().create().toJson(result), StandardCharsets.UTF_8);
    }
}
