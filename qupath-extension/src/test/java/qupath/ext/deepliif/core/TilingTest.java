package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.TreeSet;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class TilingTest {

    @Test
    void startsStepByTileMinusOverlapAndEndAtTheEdge() {
        assertArrayEquals(new int[] {0, 448, 488}, Tiling.starts(1000, 512, 64));
        assertArrayEquals(new int[] {0, 448}, Tiling.starts(960, 512, 64));
        assertArrayEquals(new int[] {0}, Tiling.starts(512, 512, 64));
        assertArrayEquals(new int[] {0}, Tiling.starts(100, 512, 64));
    }

    @Test
    void coresMeetInTheMiddleOfEachOverlap() {
        List<Tile> tiles = Tiling.tiles(900, 700, 512, 64);
        assertEquals(4, tiles.size());
        Tile first = tiles.get(0);
        Tile second = tiles.get(1);
        // x starts 0 and 388: overlap [388, 512), middle 450; y starts 0 and 188: overlap [188, 512), middle 350
        assertEquals(388, second.x());
        assertEquals(Double.NEGATIVE_INFINITY, first.coreMinX());
        assertEquals(450.0, first.coreMaxX());
        assertEquals(450.0, second.coreMinX());
        assertEquals(Double.POSITIVE_INFINITY, second.coreMaxX());
        assertEquals(350.0, tiles.get(2).coreMinY());
        for (Tile t : tiles) {
            assertEquals(512, t.width());
            assertEquals(512, t.height());
        }
    }

    /** Probe values along one axis: every 7th pixel, the edges, and each core bound with its neighbours. */
    private static double[] probes(int length, List<Tile> tiles, boolean alongX) {
        TreeSet<Double> values = new TreeSet<>(List.of(-1.0, -0.5, 0.0, length - 0.5, length + 0.0));
        for (int v = 0; v < length; v += 7)
            values.add(v + 0.5);
        for (Tile t : tiles) {
            for (double bound : alongX ? new double[] {t.coreMinX(), t.coreMaxX()} : new double[] {t.coreMinY(), t.coreMaxY()}) {
                if (Double.isFinite(bound)) {
                    for (double near : new double[] {bound - 1, Math.nextDown(bound), bound, Math.nextUp(bound), bound + 1})
                        values.add(near);
                }
            }
        }
        return values.stream().mapToDouble(Double::doubleValue).toArray();
    }

    @ParameterizedTest
    @CsvSource({"900, 700, 512, 64", "2000, 300, 512, 64", "3000, 2500, 2048, 64", "1030, 1030, 512, 0", "17, 3000, 256, 100"})
    void everyPointIsOwnedByExactlyOneTileThatContainsIt(int width, int height, int size, int overlap) {
        List<Tile> tiles = Tiling.tiles(width, height, size, overlap);
        double[] xs = probes(width, tiles, true);
        double[] ys = probes(height, tiles, false);
        for (double y : ys) {
            for (double x : xs) {
                int owners = 0;
                for (Tile t : tiles) {
                    if (t.owns(x, y)) {
                        owners++;
                        if (x >= 0 && y >= 0 && x < width && y < height)
                            assertTrue(x >= t.x() && x < t.x() + t.width() && y >= t.y() && y < t.y() + t.height(),
                                    "owner does not contain " + x + "," + y);
                    }
                }
                if (owners != 1)
                    assertEquals(1, owners, "owners of " + x + "," + y);
            }
        }
    }

    @Test
    void coresStayHalfAnOverlapInsideTheirTile() {
        for (Tile t : Tiling.tiles(3000, 2500, 1024, 64)) {
            if (Double.isFinite(t.coreMinX()))
                assertTrue(t.coreMinX() - t.x() >= 32);
            if (Double.isFinite(t.coreMaxX()))
                assertTrue(t.x() + t.width() - t.coreMaxX() >= 32);
            if (Double.isFinite(t.coreMaxY()))
                assertTrue(t.y() + t.height() - t.coreMaxY() >= 32);
        }
    }

    @Test
    void rejectsEmptyRegionsAndOverlapsOfHalfATile() {
        assertThrows(IllegalArgumentException.class, () -> Tiling.tiles(0, 10, 512, 64));
        assertThrows(IllegalArgumentException.class, () -> Tiling.tiles(10, 10, 128, 64));
        assertThrows(IllegalArgumentException.class, () -> Tiling.tiles(10, 10, 128, -1));
    }

    @Test
    void tileSizeRespectsPixelAndByteLimits() throws DeepLIIFException {
        assertEquals(2048, Tiling.tileSizeFor(new ServerHealth.Limits(1L << 30, 100_000_000L, 4), 64));
        assertEquals(1000, Tiling.tileSizeFor(new ServerHealth.Limits(1L << 30, 1_000_000L, 4), 64));
        int bytesLimited = Tiling.tileSizeFor(new ServerHealth.Limits(3_100_000L, 100_000_000L, 4), 64);
        assertEquals(1000, bytesLimited);
        DeepLIIFException e = assertThrows(DeepLIIFException.class,
                () -> Tiling.tileSizeFor(new ServerHealth.Limits(1L << 30, 10_000L, 4), 64));
        assertTrue(e.getMessage().contains("10000 pixels"));
    }
}
