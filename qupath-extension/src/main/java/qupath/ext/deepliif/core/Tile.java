package qupath.ext.deepliif.core;

/**
 * One tile of a region, in pixels of the region as read (region-local, after downsampling).
 * <p>
 * The tile sends pixels {@code [x, x + width) x [y, y + height)}. It <em>owns</em> the core
 * {@code [coreMinX, coreMaxX) x [coreMinY, coreMaxY)}: the cores of a tiling partition the
 * plane (outer cores reach to infinity), so a cell whose centroid lies in a tile's core is kept
 * from that tile only, and every centroid has exactly one owner.
 *
 * @param x        left of the pixels sent
 * @param y        top of the pixels sent
 * @param width    width of the pixels sent
 * @param height   height of the pixels sent
 * @param coreMinX left of the owned core (inclusive, may be -infinity)
 * @param coreMinY top of the owned core (inclusive, may be -infinity)
 * @param coreMaxX right of the owned core (exclusive, may be +infinity)
 * @param coreMaxY bottom of the owned core (exclusive, may be +infinity)
 */
public record Tile(int x, int y, int width, int height,
                   double coreMinX, double coreMinY, double coreMaxX, double coreMaxY) {

    /**
     * @param cx centroid x, region-local pixels
     * @param cy centroid y, region-local pixels
     * @return whether this tile owns a cell with that centroid
     */
    public boolean owns(double cx, double cy) {
        return cx >= coreMinX && cx < coreMaxX && cy >= coreMinY && cy < coreMaxY;
    }
}
