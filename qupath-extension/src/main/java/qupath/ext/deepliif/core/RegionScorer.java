package qupath.ext.deepliif.core;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;

import javax.imageio.ImageIO;

import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.GeometryFactory;
import org.locationtech.jts.geom.prep.PreparedGeometry;
import org.locationtech.jts.geom.prep.PreparedGeometryFactory;

/**
 * Scores one region tile by tile: reads each tile, sends it as PNG, keeps the cells the tile
 * owns ({@link Tile#owns}), maps them to full-resolution pixels and drops those whose centroid
 * lies outside the mask (a non-rectangular annotation).
 * <p>
 * One scorer runs one region at a time; {@link #cancel()} may be called from any thread and
 * stops the run between tiles and on the server.
 */
public final class RegionScorer {

    /** Reads region-local pixels (at the read downsample) as an 8-bit RGB image. */
    @FunctionalInterface
    public interface TileReader {
        /**
         * @param x      left, region-local read pixels
         * @param y      top, region-local read pixels
         * @param width  width in read pixels
         * @param height height in read pixels
         * @return the pixels
         * @throws IOException if they cannot be read
         */
        BufferedImage read(int x, int y, int width, int height) throws IOException;
    }

    /** Progress in tiles. */
    @FunctionalInterface
    public interface ProgressListener {
        /**
         * @param done  tiles finished
         * @param total tiles in the region
         */
        void update(int done, int total);
    }

    private static final int MAX_BUSY_RETRIES = 20;
    private static final long SLEEP_SLICE_MS = 100;
    private static final GeometryFactory FACTORY = new GeometryFactory();

    private final DeepLIIFClient client;
    private final ScoreSettings settings;
    private final int tileSize;
    private final int overlap;
    private volatile boolean cancelled;
    private volatile String inFlight;

    /**
     * @param client   server client
     * @param settings settings sent with every tile
     * @param tileSize tile edge in read pixels (see {@link Tiling#tileSizeFor})
     * @param overlap  overlap between tiles in read pixels
     */
    public RegionScorer(DeepLIIFClient client, ScoreSettings settings, int tileSize, int overlap) {
        this.client = client;
        this.settings = settings;
        this.tileSize = tileSize;
        this.overlap = overlap;
    }

    /**
     * Score a region.
     *
     * @param reader   reads region-local pixels
     * @param width    region width in read pixels
     * @param height   region height in read pixels
     * @param scale    how the region is read (its magnification is sent as {@code resolution})
     * @param mapping  region-local read pixels -> full-resolution image pixels
     * @param mask     full-resolution geometry cells' centroids must lie in; null for the whole region
     * @param progress told after every tile, may be null
     * @return the cells, each kept once
     * @throws DeepLIIFException with the server's reason; {@link CancelledException} after {@link #cancel()}
     */
    public RegionResult score(TileReader reader, int width, int height, ScalePlan scale, CoordinateMapping mapping,
                              Geometry mask, ProgressListener progress) throws DeepLIIFException {
        ScoreSettings sent = settings.withMagnification(scale.magnification());
        List<Tile> tiles = Tiling.tiles(width, height, tileSize, overlap);
        PreparedGeometry inside = mask == null ? null : PreparedGeometryFactory.prepare(mask);
        List<Cell> kept = new ArrayList<>();
        List<Map<String, Double>> scores = new ArrayList<>(tiles.size());
        Map<String, String> provenance = Map.of();
        for (int i = 0; i < tiles.size(); i++) {
            Tile tile = tiles.get(i);
            checkCancelled();
            ScoreResponse response = send(png(read(reader, tile)), sent, tile);
            kept.addAll(ownedCells(tile, response.cells(), mapping, inside));
            scores.add(response.score());
            provenance = response.provenance();
            if (progress != null)
                progress.update(i + 1, tiles.size());
        }
        return new RegionResult(List.copyOf(kept), List.copyOf(tiles), List.copyOf(scores), provenance, sent, scale);
    }

    /**
     * The cells of one tile that are kept: those whose centroid the tile owns, mapped to
     * full-resolution pixels, whose mapped centroid lies in {@code mask}.
     *
     * @param tile      the tile
     * @param tileCells the tile's cells in region-local read pixels
     * @param mapping   region-local read pixels -> full-resolution pixels
     * @param mask      full-resolution mask, null for none
     * @return the kept cells, in full-resolution pixels
     */
    public static List<Cell> ownedCells(Tile tile, List<Cell> tileCells, CoordinateMapping mapping, PreparedGeometry mask) {
        List<Cell> kept = new ArrayList<>();
        for (Cell cell : tileCells) {
            var c = cell.centroid();
            if (!tile.owns(c.x, c.y))
                continue;
            Cell full = cell.mapped(mapping);
            if (mask == null || mask.contains(FACTORY.createPoint(full.centroid())))
                kept.add(full);
        }
        return kept;
    }

    /** Stop the run: between tiles, and on the server for the tile in flight. Any thread. */
    public void cancel() throws DeepLIIFException {
        cancelled = true;
        String id = inFlight;
        if (id != null)
            client.cancel(id);
    }

    private ScoreResponse send(byte[] png, ScoreSettings sent, Tile tile) throws DeepLIIFException {
        for (int attempt = 0; ; attempt++) {
            String id = UUID.randomUUID().toString();
            inFlight = id;
            try {
                checkCancelled();
                return client.score(png, "image/png", sent.queryParameters(tile.x(), tile.y(), id), CoordinateMapping.IDENTITY);
            } catch (ServerBusyException busy) {
                if (attempt >= MAX_BUSY_RETRIES)
                    throw busy;
                sleep(busy.getRetryAfterSeconds() * 1000L);
            } finally {
                inFlight = null;
            }
        }
    }

    private static BufferedImage read(TileReader reader, Tile tile) throws DeepLIIFException {
        try {
            return reader.read(tile.x(), tile.y(), tile.width(), tile.height());
        } catch (IOException e) {
            throw new DeepLIIFException(0, "Image not readable", "Cannot read the pixels of tile (" + tile.x() + ", "
                    + tile.y() + ", " + tile.width() + " x " + tile.height() + "): " + e, e);
        }
    }

    /**
     * Encode pixels as an 8-bit RGB PNG (other image types are converted to RGB first).
     *
     * @param image the pixels
     * @return PNG bytes
     * @throws DeepLIIFException if encoding fails
     */
    public static byte[] png(BufferedImage image) throws DeepLIIFException {
        BufferedImage rgb = image;
        if (image.getType() != BufferedImage.TYPE_INT_RGB && image.getType() != BufferedImage.TYPE_3BYTE_BGR) {
            rgb = new BufferedImage(image.getWidth(), image.getHeight(), BufferedImage.TYPE_INT_RGB);
            var g = rgb.createGraphics();
            g.drawImage(image, 0, 0, null);
            g.dispose();
        }
        var bytes = new ByteArrayOutputStream();
        try {
            if (!ImageIO.write(rgb, "png", bytes))
                throw new IOException("no PNG writer");
        } catch (IOException e) {
            throw new DeepLIIFException(0, "PNG encoding failed", "Cannot encode a tile as PNG: " + e, e);
        }
        return bytes.toByteArray();
    }

    private void checkCancelled() throws CancelledException {
        if (cancelled || Thread.currentThread().isInterrupted())
            throw new CancelledException("Scoring was cancelled.");
    }

    private void sleep(long millis) throws CancelledException {
        long end = System.currentTimeMillis() + millis;
        while (System.currentTimeMillis() < end) {
            checkCancelled();
            try {
                Thread.sleep(Math.min(SLEEP_SLICE_MS, Math.max(1, end - System.currentTimeMillis())));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new CancelledException("Scoring was interrupted.");
            }
        }
    }
}
