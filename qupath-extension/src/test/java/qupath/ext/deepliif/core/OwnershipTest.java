package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;
import org.locationtech.jts.geom.Coordinate;
import org.locationtech.jts.geom.Envelope;
import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.GeometryFactory;
import org.locationtech.jts.geom.Polygon;
import org.locationtech.jts.geom.prep.PreparedGeometryFactory;

/**
 * Duplicate removal on synthetic tiles with a known answer: a grid of square cells is "seen" by
 * every tile it overlaps, clipped at the tile's edge (as an engine sees a cut cell), and written
 * as the server's GeoJSON. After ownership filtering each cell must be kept exactly once, whole.
 */
class OwnershipTest {

    private static final GeometryFactory GF = new GeometryFactory();
    private static final int WIDTH = 900;
    private static final int HEIGHT = 700;
    private static final int CELL = 10;
    private static final int PITCH = 29;
    private static final CoordinateMapping MAPPING = new CoordinateMapping(1000, 500, 2.0);

    /** Square cells on a grid, region-local read pixels, with alternating classes. */
    private static Map<Polygon, String> world() {
        Map<Polygon, String> cells = new HashMap<>();
        int n = 0;
        for (int y = 3; y + CELL <= HEIGHT; y += PITCH)
            for (int x = 5; x + CELL <= WIDTH; x += PITCH)
                cells.put((Polygon) GF.toGeometry(new Envelope(x, x + CELL, y, y + CELL)), n++ % 3 == 0 ? "Positive" : "Negative");
        return cells;
    }

    /** What the server would answer for a tile: every cell it overlaps, clipped to it, as GeoJSON. */
    private static String tileGeoJson(Tile tile, Map<Polygon, String> world) {
        Geometry box = GF.toGeometry(new Envelope(tile.x(), tile.x() + tile.width(), tile.y(), tile.y() + tile.height()));
        List<String> features = new ArrayList<>();
        world.forEach((cell, cls) -> {
            Geometry seen = cell.intersection(box);
            if (seen.isEmpty() || seen.getArea() == 0)
                return;
            StringBuilder ring = new StringBuilder();
            for (Coordinate c : seen.getCoordinates())
                ring.append(ring.length() == 0 ? "" : ",").append(String.format(Locale.ROOT, "[%s,%s]", c.x, c.y));
            features.add("{\"type\":\"Feature\",\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[" + ring
                    + "]]},\"properties\":{\"objectType\":\"detection\",\"classification\":{\"name\":\"" + cls
                    + "\"},\"measurements\":{\"Area px\":" + seen.getArea() + "}}}");
        });
        return "{\"type\":\"FeatureCollection\",\"features\":[" + String.join(",", features) + "]}";
    }

    private static List<Cell> keptCells(List<Tile> tiles, Map<Polygon, String> world, Geometry mask) throws DeepLIIFException {
        List<Cell> kept = new ArrayList<>();
        for (Tile tile : tiles) {
            List<Cell> seen = GeoJsonCells.read(JsonParser.parseString(tileGeoJson(tile, world)).getAsJsonObject(),
                    CoordinateMapping.IDENTITY);
            kept.addAll(RegionScorer.ownedCells(tile, seen, MAPPING, mask == null ? null : PreparedGeometryFactory.prepare(mask)));
        }
        return kept;
    }

    private static String key(Coordinate c, String cls) {
        return String.format(Locale.ROOT, "%.3f,%.3f,%s", c.x, c.y, cls);
    }

    private static Map<String, Integer> expected(Map<Polygon, String> world, Geometry mask) {
        Map<String, Integer> expected = new HashMap<>();
        world.forEach((cell, cls) -> {
            Coordinate c = MAPPING.apply(cell).getCentroid().getCoordinate();
            if (mask == null || mask.contains(GF.createPoint(c)))
                expected.merge(key(c, cls), 1, Integer::sum);
        });
        return expected;
    }

    private static Map<String, Integer> counted(List<Cell> cells) {
        Map<String, Integer> counts = new HashMap<>();
        for (Cell cell : cells)
            counts.merge(key(cell.centroid(), cell.classification()), 1, Integer::sum);
        return counts;
    }

    @Test
    void everyCellIsKeptExactlyOnceAndWhole() throws DeepLIIFException {
        Map<Polygon, String> world = world();
        List<Tile> tiles = Tiling.tiles(WIDTH, HEIGHT, 512, 64);
        List<Cell> kept = keptCells(tiles, world, null);
        assertEquals(world.size(), kept.size());
        assertEquals(expected(world, null), counted(kept));
        for (Cell cell : kept)
            assertEquals(CELL * CELL * 4.0, cell.geometry().getArea(), 1e-9, "a cut cell was kept");
    }

    @Test
    void withoutOwnershipOverlapsWouldDuplicateCells() throws DeepLIIFException {
        Map<Polygon, String> world = world();
        int seen = 0;
        for (Tile tile : Tiling.tiles(WIDTH, HEIGHT, 512, 64))
            seen += GeoJsonCells.read(JsonParser.parseString(tileGeoJson(tile, world)).getAsJsonObject(),
                    CoordinateMapping.IDENTITY).size();
        assertTrue(seen > world.size() + 50, "the synthetic tiles should overlap: " + seen + " vs " + world.size());
    }

    @Test
    void cellsOutsideANonRectangularMaskAreDropped() throws DeepLIIFException {
        Map<Polygon, String> world = world();
        Geometry mask = GF.createPoint(new Coordinate(MAPPING.x(450), MAPPING.y(350))).buffer(500, 32);
        List<Cell> kept = keptCells(Tiling.tiles(WIDTH, HEIGHT, 512, 64), world, mask);
        Map<String, Integer> expected = expected(world, mask);
        assertTrue(expected.size() < world.size() && expected.size() > 100);
        assertEquals(expected, counted(kept));
    }

    @Test
    void aSingleTileKeepsEverything() throws DeepLIIFException {
        Map<Polygon, String> world = world();
        List<Cell> kept = keptCells(Tiling.tiles(WIDTH, HEIGHT, 1024, 64), world, null);
        assertEquals(expected(world, null), counted(kept));
    }
}
