package qupath.ext.deepliif.core;

import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.StringJoiner;

import com.google.gson.JsonNull;
import com.google.gson.JsonObject;

/**
 * What the user asks the server to score with: the magnification and the thresholds, sent in
 * the body of {@code POST /api/regions/score} or as query parameters of {@code POST /api/score}.
 * The defaults are the server's; nothing of DeepLIIF's rules is copied here.
 *
 * @param magnification   magnification to score at; null lets the server decide from the
 *                        image's pixel size
 * @param segThresh       segmentation threshold (0-255), null for the server's default (left out)
 * @param sizeThresh      smallest cell size in pixels: a number or {@link Threshold#DEFAULT}
 *                        (the server needs one of the two)
 * @param sizeThreshUpper largest cell size in pixels: a number, default, or not applied
 * @param markerThresh    marker threshold (0-255): a number, default, or not applied
 * @param dabThreshold    the stain engine's DAB threshold (mean nuclear DAB OD above which a
 *                        nucleus is positive), null for the server's default (left out); a
 *                        DeepLIIF server refuses it
 * @param compartment     what decides positive (the engine's class or a compartment's DAB OD),
 *                        bins, completeness and cell expansion; null for {@link CompartmentSettings#CLASS}
 */
public record ScoreSettings(Magnification magnification, Integer segThresh, Threshold sizeThresh,
                            Threshold sizeThreshUpper, Threshold markerThresh, Double dabThreshold,
                            CompartmentSettings compartment) {

    /** Query parameters the server reads as a list: their value "a,b" is sent as {@code key=a&key=b}. */
    static final Set<String> REPEATED = Set.of("bins_od");

    /** What the script line and preferences write for "the server decides the magnification". */
    public static final String AUTO = "auto";

    public ScoreSettings {
        if (sizeThresh == null || !sizeThresh.isApplied())
            throw new IllegalArgumentException("The size threshold must be a whole number or \"default\"");
        if (sizeThreshUpper == null || markerThresh == null)
            throw new IllegalArgumentException("Use Threshold.NONE for a threshold that is not applied");
        if (segThresh != null && segThresh < 0)
            throw new IllegalArgumentException("The segmentation threshold must be >= 0, got " + segThresh);
        if (dabThreshold != null && !(Double.isFinite(dabThreshold) && dabThreshold >= 0))
            throw new IllegalArgumentException("The DAB threshold is an optical density, 0 or more, got " + dabThreshold);
        if (compartment == null)
            compartment = CompartmentSettings.CLASS;
    }

    /** Settings with the server's DAB threshold, positive by the engine's class (see the canonical constructor). */
    public ScoreSettings(Magnification magnification, Integer segThresh, Threshold sizeThresh,
                         Threshold sizeThreshUpper, Threshold markerThresh) {
        this(magnification, segThresh, sizeThresh, sizeThreshUpper, markerThresh, null, null);
    }

    /**
     * @param dabThreshold the stain engine's DAB threshold (OD), null for the server's default
     * @return these settings with that DAB threshold
     */
    public ScoreSettings withDabThreshold(Double dabThreshold) {
        return new ScoreSettings(magnification, segThresh, sizeThresh, sizeThreshUpper, markerThresh, dabThreshold,
                compartment);
    }

    /**
     * @param compartment what decides positive, null for the engine's class
     * @return these settings scoring that way
     */
    public ScoreSettings withCompartment(CompartmentSettings compartment) {
        return new ScoreSettings(magnification, segThresh, sizeThresh, sizeThreshUpper, markerThresh, dabThreshold,
                compartment);
    }

    /**
     * @param text an optical density such as "0.3", or blank / null for the server's default
     * @return the DAB threshold, null for the server's default
     * @throws IllegalArgumentException for text that is not a finite number, 0 or more
     */
    public static Double dabThreshold(String text) {
        if (text == null || text.isBlank())
            return null;
        double value;
        try {
            value = Double.parseDouble(text.strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("An optical density such as 0.3 (or empty for the server's default), got '"
                    + text.strip() + "'", e);
        }
        if (!(Double.isFinite(value) && value >= 0))
            throw new IllegalArgumentException("An optical density is a finite number, 0 or more, got '" + text.strip() + "'");
        return value;
    }

    /**
     * @param magnification magnification to score at, null for the server's choice
     * @return the server's defaults: default size threshold, no upper size or marker threshold
     */
    public static ScoreSettings defaults(Magnification magnification) {
        return new ScoreSettings(magnification, null, Threshold.DEFAULT, Threshold.NONE, Threshold.NONE);
    }

    /**
     * @param label "40x", "20x", "10x", or "auto" / blank / null for the server's choice
     * @return the magnification, null for the server's choice
     * @throws IllegalArgumentException for any other label
     */
    public static Magnification magnification(String label) {
        if (label == null || label.isBlank() || label.strip().toLowerCase(Locale.ROOT).equals(AUTO))
            return null;
        return Magnification.parse(label);
    }

    /** @return the magnification's label, or "auto" when the server decides */
    public String magnificationLabel() {
        return magnification == null ? AUTO : magnification.label();
    }

    /**
     * Write the settings into a {@code /api/regions/score} body: {@code resolution} (null: the
     * server decides), {@code seg_thresh} (left out for the server's default),
     * {@code size_thresh}, {@code size_thresh_upper}, {@code marker_thresh} (a number,
     * "default", or null for not applied), {@code dab_threshold} (left out for the server's
     * default).
     *
     * @param body the request body to add to
     */
    public void addTo(JsonObject body) {
        if (magnification == null)
            body.add("resolution", JsonNull.INSTANCE);
        else
            body.addProperty("resolution", magnification.label());
        if (segThresh != null)
            body.addProperty("seg_thresh", segThresh);
        body.add("size_thresh", sizeThresh.toJson());
        body.add("size_thresh_upper", sizeThreshUpper.toJson());
        body.add("marker_thresh", markerThresh.toJson());
        if (dabThreshold != null)
            body.addProperty("dab_threshold", dabThreshold);
        compartment.addTo(body);
    }

    /**
     * Query parameters of one {@code POST /api/score} upload. The server returns each cell at
     * {@code (x + origin) * downsample}: level-0 pixels when the image was read at
     * {@code downsample} from level-0 {@code origin * downsample}.
     *
     * @param resolution magnification of the uploaded pixels
     * @param originX    added to every returned x before scaling (pixels of the upload)
     * @param originY    added to every returned y before scaling
     * @param downsample level-0 pixels per uploaded pixel (>= 1)
     * @param requestId  id usable with {@code /api/cancel}, may be null
     * @return name -> value, in a stable order; thresholds not applied are left out
     */
    public Map<String, String> queryParameters(Magnification resolution, int originX, int originY, double downsample,
                                               String requestId) {
        Map<String, String> query = new LinkedHashMap<>();
        query.put("resolution", resolution.label());
        if (segThresh != null)
            query.put("seg_thresh", segThresh.toString());
        query.put("size_thresh", sizeThresh.toQuery());
        if (sizeThreshUpper.isApplied())
            query.put("size_thresh_upper", sizeThreshUpper.toQuery());
        if (markerThresh.isApplied())
            query.put("marker_thresh", markerThresh.toQuery());
        if (dabThreshold != null)
            query.put("dab_threshold", number(dabThreshold));
        compartment.addTo(query);
        query.put("origin_x", Integer.toString(originX));
        query.put("origin_y", Integer.toString(originY));
        query.put("downsample", number(downsample));
        if (requestId != null)
            query.put("request_id", requestId);
        return query;
    }

    /** A double as Python reads it back exactly ("2" rather than "2.0" for whole numbers). */
    static String number(double value) {
        return value == Math.rint(value) && Math.abs(value) < 1e15 ? Long.toString((long) value) : Double.toString(value);
    }

    /**
     * @param query name -> value
     * @return the URL-encoded query string, without the leading '?'
     */
    public static String encode(Map<String, String> query) {
        StringJoiner joiner = new StringJoiner("&");
        query.forEach((k, v) -> {
            for (String value : REPEATED.contains(k) ? v.split(",") : new String[] {v})
                joiner.add(URLEncoder.encode(k, StandardCharsets.UTF_8) + "=" + URLEncoder.encode(value, StandardCharsets.UTF_8));
        });
        return joiner.toString();
    }
}
