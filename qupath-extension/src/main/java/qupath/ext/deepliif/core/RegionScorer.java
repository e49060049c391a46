package qupath.ext.deepliif.core;

import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.UUID;

import javax.imageio.ImageIO;

import org.locationtech.jts.geom.Envelope;
import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.GeometryFactory;
import org.locationtech.jts.geom.prep.PreparedGeometry;
import org.locationtech.jts.geom.prep.PreparedGeometryFactory;

/**
 * Scores one region in one request. The server reads the region from the image file itself
 * ({@code POST /api/regions/score}) and owns everything about it: the pyramid level and
 * magnification, tiling, normalisation, thresholds, and which cells lie in the outline. Only
 * when it cannot open the file (or predates that route) are the region's pixels read once, at
 * one downsample, and uploaded as one image ({@code POST /api/score}).
 * <p>
 * One scorer runs one region at a time; {@link #cancel()} may be called from any thread and
 * cancels the request in flight on the server. A busy server (429) is retried after its
 * {@code Retry-After}.
 */
public final class RegionScorer {

    /** Reads level-0 pixels at a downsample, as an 8-bit RGB image (the upload fallback). */
    @FunctionalInterface
    public interface PixelReader {
        /**
         * @param x          left edge, level-0 pixels
         * @param y          top edge, level-0 pixels
         * @param width      width, level-0 pixels
         * @param height     height, level-0 pixels
         * @param downsample level-0 pixels per pixel read
         * @return about {@code width / downsample x height / downsample} pixels
         * @throws IOException if they cannot be read
         */
        BufferedImage read(int x, int y, int width, int height, double downsample) throws IOException;
    }

    /**
     * What an upload sends: the level-0 rectangle read, the downsample, and the origin in
     * downsampled pixels the server adds before scaling back (cells land at
     * {@code (x + origin) * downsample}, within half a level-0 pixel of their place when the
     * downsample is not a whole number).
     *
     * @param readX      left edge read, level-0 pixels ({@code round(originX * downsample)})
     * @param readY      top edge read, level-0 pixels
     * @param readWidth  width read, level-0 pixels
     * @param readHeight height read, level-0 pixels
     * @param originX    left edge in downsampled pixels
     * @param originY    top edge in downsampled pixels
     * @param width      image width sent, pixels
     * @param height     image height sent, pixels
     * @param scale      downsample and magnification
     */
    public record Upload(int readX, int readY, int readWidth, int readHeight, int originX, int originY, int width,
                         int height, ScalePlan scale) {

        /**
         * @param region the region
         * @param scale  how to read it
         * @return the upload of the region's bounds (the last partial downsampled pixel of each
         *         axis is dropped, so the read stays inside the region)
         */
        public static Upload of(ScoreRegion region, ScalePlan scale) {
            double d = scale.downsample();
            int ox = (int) Math.floor(region.x() / d);
            int oy = (int) Math.floor(region.y() / d);
            int rx = (int) Math.round(ox * d);
            int ry = (int) Math.round(oy * d);
            int w = (int) Math.floor((region.x() + region.width() - rx) / d);
            int h = (int) Math.floor((region.y() + region.height() - ry) / d);
            return new Upload(rx, ry, (int) Math.round(w * d), (int) Math.round(h * d), ox, oy, w, h, scale);
        }

        /** @return pixels sent */
        public long pixels() {
            return (long) width * height;
        }
    }

    private static final int MAX_BUSY_RETRIES = 20;
    private static final long SLEEP_SLICE_MS = 100;
    private static final GeometryFactory FACTORY = new GeometryFactory();
    /** Problem type (last segment) of a file the server cannot open. */
    public static final String IMAGE_NOT_READABLE = "image-not-readable";

    private final DeepLIIFClient client;
    private final ScoreSettings settings;
    private final ServerHealth.Limits limits;
    private volatile boolean cancelled;
    private volatile String inFlight;

    /**
     * @param client   server client
     * @param settings magnification and thresholds
     * @param limits   the server's limits (from {@code /api/health}), checked before an upload
     */
    public RegionScorer(DeepLIIFClient client, ScoreSettings settings, ServerHealth.Limits limits) {
        this.client = client;
        this.settings = settings;
        this.limits = limits;
    }

    /**
     * Score a region: the server reads it from the file, or, when the region has no file or the
     * server cannot open it, the pixels are read once and uploaded.
     *
     * @param region the region
     * @param reader reads the pixels for an upload
     * @return the counted cells and their score record
     * @throws DeepLIIFException with the server's reason; {@link CancelledException} after {@link #cancel()}
     */
    public RegionResult score(ScoreRegion region, PixelReader reader) throws DeepLIIFException {
        if (region.imagePath() == null)
            return upload(region, reader, "QuPath does not read this image from one local file");
        try {
            return serverRead(region);
        } catch (DeepLIIFException e) {
            if (!serverCannotRead(e))
                throw e;
            return upload(region, reader, e.getStatus() == 404
                    ? "the server at " + client.getBaseUrl() + " has no /api/regions/score (an older napari-deepliif)"
                    : e.getMessage());
        }
    }

    /**
     * @param e an error answer of {@code /api/regions/score}
     * @return whether the pixels should be uploaded instead: the server cannot open the file
     *         (422, problem type {@code .../image-not-readable}) or has no such route (404)
     */
    public static boolean serverCannotRead(DeepLIIFException e) {
        return e.getStatus() == 404 || (e.getStatus() == 422 && e.isProblem(IMAGE_NOT_READABLE));
    }

    /**
     * {@code POST /api/regions/score}: the server reads and scores the region.
     *
     * @param region the region, with an image path
     * @return the counted cells and the score record
     * @throws DeepLIIFException with the server's reason
     */
    public RegionResult serverRead(ScoreRegion region) throws DeepLIIFException {
        ScoreResponse response = send(id -> client.scoreRegion(region.requestBody(settings, id)));
        return new RegionResult(response.cells(), response.score(), null, null);
    }

    /**
     * Read the region's bounds once at the planned downsample ({@link ScalePlan}) and upload
     * them as one PNG; keep the cells whose centroid lies in the outline.
     *
     * @param region the region
     * @param reader reads the pixels
     * @param reason why the pixels are uploaded (kept in the result)
     * @return the counted cells and the score record, its counts those of the cells kept
     * @throws DeepLIIFException with the server's reason, or when the region is larger than
     *                           the server takes in one image
     */
    public RegionResult upload(ScoreRegion region, PixelReader reader, String reason) throws DeepLIIFException {
        Upload upload = Upload.of(region, ScalePlan.plan(settings.magnification(), region.mpp()));
        checkSize(upload.pixels(), upload.width(), upload.height(), reason);
        checkCancelled();
        BufferedImage image;
        try {
            image = reader.read(upload.readX(), upload.readY(), upload.readWidth(), upload.readHeight(),
                    upload.scale().downsample());
        } catch (IOException e) {
            throw new DeepLIIFException(0, "Image not readable", "Cannot read the pixels of (" + upload.readX() + ", "
                    + upload.readY() + ", " + upload.readWidth() + " x " + upload.readHeight() + "): " + e, e);
        }
        checkSize((long) image.getWidth() * image.getHeight(), image.getWidth(), image.getHeight(), reason);
        byte[] png = png(image);
        if (png.length > limits.maxRequestBytes())
            throw tooLarge(String.format(Locale.ROOT, "is %.1f MB as PNG, more than the %.1f MB", png.length / 1e6,
                    limits.maxRequestBytes() / 1e6), reason);
        double d = upload.scale().downsample();
        ScoreResponse response = send(id -> client.score(png, "image/png",
                settings.queryParameters(upload.scale().magnification(), upload.originX(), upload.originY(), d, id)));
        if (Math.abs(response.score().placement().downsample() - d) > 1e-6 * d)
            throw new DeepLIIFException(0, "Unexpected answer", "The server scored the upload at downsample "
                    + response.score().placement().downsample() + ", not " + d + ": update napari-deepliif.");
        return inside(response, region, reason, upload.scale().warning());
    }

    /**
     * The response's cells whose centroid (a point's position) lies in the region's outline,
     * recounted when some are dropped: positive as the record says ({@link ScoreRecord#isPositive}).
     */
    static RegionResult inside(ScoreResponse response, ScoreRegion region, String reason, String scaleWarning) {
        Geometry outline = region.roi() != null ? GeoJsonGeometry.polygonal(region.roi())
                : FACTORY.toGeometry(new Envelope(region.x(), region.x() + region.width(), region.y(),
                region.y() + region.height()));
        PreparedGeometry mask = PreparedGeometryFactory.prepare(outline);
        List<Cell> kept = new ArrayList<>(response.cells().size());
        int positive = 0;
        for (Cell cell : response.cells())
            if (mask.contains(FACTORY.createPoint(cell.centroid()))) {
                kept.add(cell);
                positive += response.score().isPositive(cell) ? 1 : 0;
            }
        ScoreRecord score = kept.size() == response.cells().size() ? response.score()
                : response.score().withCounts(positive, kept.size());
        return new RegionResult(List.copyOf(kept), score, reason, scaleWarning);
    }

    private void checkSize(long pixels, int width, int height, String reason) throws DeepLIIFException {
        if (pixels > limits.maxPixels())
            throw tooLarge(String.format(Locale.ROOT, "is %d x %d pixels at the chosen magnification, more than the %d",
                    width, height, limits.maxPixels()), reason);
    }

    private static DeepLIIFException tooLarge(String what, String reason) {
        return new DeepLIIFException(0, "Annotation too large to upload", "The server cannot read this image file itself ("
                + reason + "), so the annotation's pixels must be uploaded as one image, but it " + what
                + " the server takes in one request. Open an image file the server can read (e.g. an OME-TIFF or "
                + "SVS on this machine) or score a smaller annotation.");
    }

    /** Stop: the request in flight is cancelled on the server. Any thread. */
    public void cancel() throws DeepLIIFException {
        cancelled = true;
        String id = inFlight;
        if (id != null)
            client.cancel(id);
    }

    @FunctionalInterface
    private interface Request {
        ScoreResponse send(String requestId) throws DeepLIIFException;
    }

    private ScoreResponse send(Request request) throws DeepLIIFException {
        for (int attempt = 0; ; attempt++) {
            String id = UUID.randomUUID().toString();
            inFlight = id;
            try {
                checkCancelled();
                return request.send(id);
            } catch (ServerBusyException busy) {
                if (attempt >= MAX_BUSY_RETRIES)
                    throw busy;
                sleep(busy.getRetryAfterSeconds() * 1000L);
            } finally {
                inFlight = null;
            }
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
            throw new DeepLIIFException(0, "PNG encoding failed", "Cannot encode the region as PNG: " + e, e);
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
