package qupath.ext.deepliif.core;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.StringJoiner;

/**
 * Scoring settings sent as query parameters of {@code POST /api/score}.
 * <p>
 * Thresholds are {@code null} for "default" (size, marker) or "none" (upper size): the server
 * then applies the reference DeepLIIF rule. The defaults are the server's; nothing is copied here.
 *
 * @param magnification   the magnification of the pixels sent
 * @param segThresh       segmentation threshold (0-255), null for the server's default
 * @param sizeThresh      smallest cell size in pixels, null for "default" (the reference KDE rule)
 * @param sizeThreshUpper largest cell size in pixels, null for none
 * @param markerThresh    marker threshold (0-255), null for none
 */
public record ScoreSettings(Magnification magnification, Integer segThresh, Integer sizeThresh,
                            Integer sizeThreshUpper, Integer markerThresh) {

    /**
     * @param magnification the magnification of the pixels sent
     * @return settings with every threshold left to the server
     */
    public static ScoreSettings defaults(Magnification magnification) {
        return new ScoreSettings(magnification, null, null, null, null);
    }

    /** @return the same settings at another magnification */
    public ScoreSettings withMagnification(Magnification other) {
        return new ScoreSettings(other, segThresh, sizeThresh, sizeThreshUpper, markerThresh);
    }

    /**
     * Query parameters for one request.
     *
     * @param originX   added by the server to every returned x (pixels)
     * @param originY   added by the server to every returned y (pixels)
     * @param requestId id usable with {@code /api/cancel}, may be null
     * @return name -> value, in a stable order
     */
    public Map<String, String> queryParameters(int originX, int originY, String requestId) {
        Map<String, String> query = new LinkedHashMap<>();
        query.put("resolution", magnification.label());
        if (segThresh != null)
            query.put("seg_thresh", segThresh.toString());
        query.put("size_thresh", sizeThresh == null ? "default" : sizeThresh.toString());
        if (sizeThreshUpper != null)
            query.put("size_thresh_upper", sizeThreshUpper.toString());
        if (markerThresh != null)
            query.put("marker_thresh", markerThresh.toString());
        query.put("origin_x", Integer.toString(originX));
        query.put("origin_y", Integer.toString(originY));
        if (requestId != null)
            query.put("request_id", requestId);
        return query;
    }

    /**
     * @param query name -> value
     * @return the URL-encoded query string, without the leading '?'
     */
    public static String encode(Map<String, String> query) {
        StringJoiner joiner = new StringJoiner("&");
        query.forEach((k, v) -> joiner.add(URLEncoder.encode(k, StandardCharsets.UTF_8) + "="
                + URLEncoder.encode(v, StandardCharsets.UTF_8)));
        return joiner.toString();
    }
}
