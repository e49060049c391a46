package qupath.ext.deepliif.core;

import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;

import org.locationtech.jts.geom.Envelope;
import org.locationtech.jts.geom.Geometry;

/**
 * One region to score: an annotation's bounds in level-0 (full-resolution) pixels, its outline,
 * and the image file the server may read it from.
 *
 * @param imagePath absolute path of the image file, null when the server cannot be given one
 *                  (the pixels are then uploaded)
 * @param x         left edge, level-0 pixels
 * @param y         top edge, level-0 pixels
 * @param width     width, level-0 pixels (> 0)
 * @param height    height, level-0 pixels (> 0)
 * @param roi       outline in level-0 pixels: cells count only if their centroid lies inside;
 *                  null for the whole rectangle
 * @param mpp       level-0 pixel size in µm, NaN when the image has none
 */
public record ScoreRegion(String imagePath, int x, int y, int width, int height, Geometry roi, double mpp) {

    public ScoreRegion {
        if (width <= 0 || height <= 0)
            throw new IllegalArgumentException("Empty region: " + width + " x " + height);
        if (x < 0 || y < 0)
            throw new IllegalArgumentException("A region starts inside the image, got (" + x + ", " + y + ")");
    }

    /**
     * The region of an outline: its bounds rounded out to whole pixels and clipped to the image.
     *
     * @param imagePath   see {@link ScoreRegion}
     * @param roi         the outline, level-0 pixels
     * @param imageWidth  image width, level-0 pixels
     * @param imageHeight image height, level-0 pixels
     * @param mpp         level-0 pixel size in µm, NaN when unknown
     * @return the region, null when the outline lies outside the image or covers no whole pixel
     */
    public static ScoreRegion of(String imagePath, Geometry roi, int imageWidth, int imageHeight, double mpp) {
        Envelope e = roi.getEnvelopeInternal();
        if (e.isNull())
            return null;
        int x0 = (int) Math.max(0, Math.floor(e.getMinX()));
        int y0 = (int) Math.max(0, Math.floor(e.getMinY()));
        int x1 = (int) Math.min(imageWidth, Math.ceil(e.getMaxX()));
        int y1 = (int) Math.min(imageHeight, Math.ceil(e.getMaxY()));
        if (x1 <= x0 || y1 <= y0)
            return null;
        return new ScoreRegion(imagePath, x0, y0, x1 - x0, y1 - y0, roi, mpp);
    }

    /** @return the same region with no file for the server to read (the pixels are uploaded) */
    public ScoreRegion withoutImagePath() {
        return new ScoreRegion(null, x, y, width, height, roi, mpp);
    }

    /**
     * The body of {@code POST /api/regions/score}.
     *
     * @param settings  magnification and thresholds
     * @param requestId id usable with {@code /api/cancel}
     * @return {@code {"image", "region", "roi", "resolution", "mpp", thresholds..., "request_id"}}
     * @throws IllegalStateException when the region has no image path
     */
    public JsonObject requestBody(ScoreSettings settings, String requestId) {
        if (imagePath == null)
            throw new IllegalStateException("No image file for the server to read: upload the pixels instead");
        JsonObject body = new JsonObject();
        body.addProperty("image", imagePath);
        JsonArray region = new JsonArray(4);
        region.add(x);
        region.add(y);
        region.add(width);
        region.add(height);
        body.add("region", region);
        body.add("roi", roi == null ? JsonNull.INSTANCE : GeoJsonGeometry.write(roi));
        settings.addTo(body);
        if (mpp > 0 && !Double.isInfinite(mpp))
            body.addProperty("mpp", mpp);
        else
            body.add("mpp", JsonNull.INSTANCE);
        body.addProperty("request_id", requestId);
        return body;
    }
}
