package qupath.ext.deepliif.core;

import java.util.ArrayList;
import java.util.List;

/**
 * Splitting a region into overlapping tiles and deciding which tile owns each cell.
 * <p>
 * Along each axis, tiles of {@code tileSize} start every {@code tileSize - overlap} pixels; the
 * last tile is moved back to end at the region's edge, so every tile is full size when the region
 * is at least one tile long. Two neighbours share an overlap band; the boundary between their
 * cores is the middle of that band, so a cell cut by one tile's edge (at least half the overlap
 * away) is owned by the neighbour, which sees it whole.
 */
public final class Tiling {

    /** Largest tile edge sent, in pixels. */
    public static final int MAX_TILE_SIZE = 2048;
    /** Overlap between neighbouring tiles, in pixels. */
    public static final int DEFAULT_OVERLAP = 64;
    /** The server rejects images smaller than this on either side. */
    public static final int MIN_IMAGE_SIZE = 16;
    /** Bytes per pixel of an RGB image before compression: a PNG is at most about this. */
    private static final double PNG_WORST_BYTES_PER_PIXEL = 3.1;

    private Tiling() {
    }

    /**
     * Tiles covering a {@code width x height} region.
     *
     * @param width    region width in pixels (> 0)
     * @param height   region height in pixels (> 0)
     * @param tileSize largest tile edge in pixels
     * @param overlap  pixels shared by neighbours, {@code 0 <= overlap < tileSize / 2}
     * @return tiles in row-major order
     */
    public static List<Tile> tiles(int width, int height, int tileSize, int overlap) {
        if (width <= 0 || height <= 0)
            throw new IllegalArgumentException("Region " + width + " x " + height + " is empty");
        if (overlap < 0 || 2 * overlap >= tileSize)
            throw new IllegalArgumentException("Overlap " + overlap + " must be >= 0 and below half the tile size " + tileSize);
        int[] xs = starts(width, tileSize, overlap);
        int[] ys = starts(height, tileSize, overlap);
        int tw = Math.min(tileSize, width);
        int th = Math.min(tileSize, height);
        List<Tile> tiles = new ArrayList<>(xs.length * ys.length);
        for (int j = 0; j < ys.length; j++) {
            for (int i = 0; i < xs.length; i++) {
                tiles.add(new Tile(xs[i], ys[j], tw, th,
                        coreStart(xs, i, tw), coreStart(ys, j, th),
                        coreStart(xs, i + 1, tw), coreStart(ys, j + 1, th)));
            }
        }
        return tiles;
    }

    /** Tile starts along one axis of {@code length} pixels. */
    static int[] starts(int length, int tileSize, int overlap) {
        if (length <= tileSize)
            return new int[] {0};
        int step = tileSize - overlap;
        int n = (int) Math.ceil((length - tileSize) / (double) step) + 1;
        int[] starts = new int[n];
        for (int i = 0; i < n; i++)
            starts[i] = Math.min(i * step, length - tileSize);
        return starts;
    }

    /**
     * Start of core {@code i} along one axis (= end of core {@code i - 1}): the middle of the
     * overlap between tiles {@code i - 1} and {@code i}; -infinity / +infinity at the ends.
     */
    private static double coreStart(int[] starts, int i, int size) {
        if (i == 0)
            return Double.NEGATIVE_INFINITY;
        if (i == starts.length)
            return Double.POSITIVE_INFINITY;
        return (starts[i] + starts[i - 1] + size) / 2.0;
    }

    /**
     * Largest tile edge the server accepts: at most {@link #MAX_TILE_SIZE}, with width x height
     * within {@code max_pixels} and a worst-case PNG within {@code max_request_bytes}.
     *
     * @param limits  the server's limits (from {@code /api/health})
     * @param overlap the overlap to be used
     * @return tile edge in pixels
     * @throws DeepLIIFException if the limits leave no room for a tile larger than twice the overlap
     */
    public static int tileSizeFor(ServerHealth.Limits limits, int overlap) throws DeepLIIFException {
        long byPixels = (long) Math.floor(Math.sqrt(limits.maxPixels()));
        long byBytes = (long) Math.floor(Math.sqrt(limits.maxRequestBytes() / PNG_WORST_BYTES_PER_PIXEL));
        long size = Math.min(MAX_TILE_SIZE, Math.min(byPixels, byBytes));
        if (size <= 2L * overlap || size < MIN_IMAGE_SIZE)
            throw new DeepLIIFException(0, "Server limits too small",
                    "The server accepts at most " + limits.maxPixels() + " pixels and " + limits.maxRequestBytes()
                            + " bytes per request: too little for tiles with " + overlap + " px overlap. Raise the server's limits.");
        return (int) size;
    }
}
