package qupath.ext.deepliif.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The numeric measurements a scored annotation gets, all named {@code "DeepLIIF: ..."} so they
 * sit apart from QuPath's own "Num Positive" / "Positive %" (which QuPath computes from the
 * detections' Positive/Negative classes).
 */
public final class ScoreMeasurements {

    /** Prefix of every measurement name. */
    public static final String PREFIX = "DeepLIIF: ";
    /** Cells counted. */
    public static final String NUM_TOTAL = PREFIX + "Num total";
    /** Marker-positive cells. */
    public static final String NUM_POSITIVE = PREFIX + "Num positive";
    /** Marker-negative cells. */
    public static final String NUM_NEGATIVE = PREFIX + "Num negative";
    /** Positive in percent of all cells (DeepLIIF's percent_pos rule). */
    public static final String PERCENT_POSITIVE = PREFIX + "Percent positive";
    /** 1 when the server ran DeepLIIF, 0 when it ran the classical stain engine. */
    public static final String ENGINE = PREFIX + "Engine (1 DeepLIIF, 0 stain)";
    /** Magnification scored at (40, 20 or 10). */
    public static final String MAGNIFICATION = PREFIX + "Magnification";
    /** Downsample the pixels were read at. */
    public static final String DOWNSAMPLE = PREFIX + "Downsample";
    /** Tiles sent. */
    public static final String TILES = PREFIX + "Tiles";
    /** Segmentation threshold, when every tile used the same. */
    public static final String SEG_THRESH = PREFIX + "Seg threshold";
    /** Size threshold in pixels, when every tile used the same. */
    public static final String SIZE_THRESH = PREFIX + "Size threshold";
    /** Upper size threshold in pixels, when every tile used the same. */
    public static final String SIZE_THRESH_UPPER = PREFIX + "Size threshold upper";
    /** Marker threshold, when every tile used the same. */
    public static final String MARKER_THRESH = PREFIX + "Marker threshold";

    /** Every name {@link #of} may write, to clear an earlier run's values. */
    public static final List<String> NAMES = List.of(NUM_TOTAL, NUM_POSITIVE, NUM_NEGATIVE, PERCENT_POSITIVE, ENGINE,
            MAGNIFICATION, DOWNSAMPLE, TILES, SEG_THRESH, SIZE_THRESH, SIZE_THRESH_UPPER, MARKER_THRESH);

    private static final Map<String, String> THRESHOLDS = Map.of(
            "seg_thresh", SEG_THRESH, "size_thresh", SIZE_THRESH,
            "size_thresh_upper", SIZE_THRESH_UPPER, "marker_thresh", MARKER_THRESH);

    private ScoreMeasurements() {
    }

    /**
     * @param result a scored region
     * @return measurement name -> value, in display order
     */
    public static Map<String, Double> of(RegionResult result) {
        Map<String, Double> m = new LinkedHashMap<>();
        m.put(NUM_TOTAL, (double) result.numTotal());
        m.put(NUM_POSITIVE, (double) result.numPositive());
        m.put(NUM_NEGATIVE, (double) result.numNegative());
        m.put(PERCENT_POSITIVE, result.percentPositive());
        m.put(ENGINE, "deepliif".equals(result.provenance().get("engine")) ? 1.0 : 0.0);
        m.put(MAGNIFICATION, Double.parseDouble(result.scale().magnification().label().replace("x", "")));
        m.put(DOWNSAMPLE, result.scale().downsample());
        m.put(TILES, (double) result.tiles().size());
        THRESHOLDS.forEach((key, name) -> {
            Double common = common(result, key);
            if (common != null)
                m.put(name, common);
        });
        return m;
    }

    /** The threshold every tile reported, null if they differ or none reported it. */
    private static Double common(RegionResult result, String key) {
        Double value = null;
        for (Map<String, Double> score : result.tileScores()) {
            Double v = score.get(key);
            if (v == null || (value != null && !value.equals(v)))
                return null;
            value = v;
        }
        return value;
    }

    /**
     * A one-line description of the engine that scored, for the annotation's description
     * (QuPath measurements are numbers only).
     *
     * @param result a scored region
     * @return e.g. "DeepLIIF: engine deepliif, model deepliif-latest (hash ...), napari-deepliif 0.1.0, 40x"
     */
    public static String provenanceText(RegionResult result) {
        Map<String, String> p = result.provenance();
        StringBuilder sb = new StringBuilder(PREFIX).append("engine ").append(p.getOrDefault("engine", "?"));
        if (p.get("model") != null)
            sb.append(", model ").append(p.get("model"));
        if (p.get("model_hash") != null)
            sb.append(" (hash ").append(p.get("model_hash")).append(")");
        sb.append(", napari-deepliif ").append(p.getOrDefault("version", "?"))
                .append(", ").append(result.scale().magnification().label());
        if (!"deepliif".equals(p.get("engine")))
            sb.append(" (classical stain engine, not DeepLIIF)");
        return sb.toString();
    }

    /**
     * A description with its {@code "DeepLIIF: "} line replaced by {@code provenance}; the user's
     * other lines are kept.
     *
     * @param description the current description, may be null
     * @param provenance  the new line (from {@link #provenanceText})
     * @return the new description
     */
    public static String withProvenance(String description, String provenance) {
        List<String> lines = new ArrayList<>();
        if (description != null && !description.isEmpty())
            for (String line : description.split("\\R", -1))
                if (!line.startsWith(PREFIX))
                    lines.add(line);
        while (!lines.isEmpty() && lines.get(lines.size() - 1).isBlank())
            lines.remove(lines.size() - 1);
        lines.add(provenance);
        return String.join("\n", lines);
    }
}
