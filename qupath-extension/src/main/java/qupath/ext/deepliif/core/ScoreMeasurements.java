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
    /** Level-0 pixels per pixel scored. */
    public static final String DOWNSAMPLE = PREFIX + "Downsample";
    /** Pyramid level the server read (0 for an upload). */
    public static final String LEVEL = PREFIX + "Pyramid level";
    /** 1 when the extension uploaded the pixels, 0 when the server read the image file. */
    public static final String UPLOADED = PREFIX + "Uploaded (1) or read by server (0)";
    /** Segmentation threshold used. */
    public static final String SEG_THRESH = PREFIX + "Seg threshold";
    /** Size threshold used, pixels. */
    public static final String SIZE_THRESH = PREFIX + "Size threshold";
    /** Upper size threshold used, pixels (absent when none was applied). */
    public static final String SIZE_THRESH_UPPER = PREFIX + "Size threshold upper";
    /** Marker threshold used (absent when none was applied). */
    public static final String MARKER_THRESH = PREFIX + "Marker threshold";
    /** The stain engine's DAB threshold used, OD (absent for DeepLIIF). */
    public static final String DAB_THRESHOLD = PREFIX + "DAB threshold (OD)";
    /** What decided positive, as its index in {@link CompartmentSettings#COMPARTMENTS}. */
    public static final String POSITIVE_BY = PREFIX + "Positive by (0 class, 1 nucleus, 2 cytoplasm, 3 membrane, 4 cell)";
    /** Compartment mode: DAB OD above which a cell is positive. */
    public static final String POSITIVE_OD = PREFIX + "Positive DAB OD";
    /** Compartment mode: cell expansion, µm. */
    public static final String EXPANSION = PREFIX + "Cell expansion µm";
    /** Compartment mode: the membrane completeness a positive cell needed (absent when none). */
    public static final String MIN_COMPLETENESS = PREFIX + "Min membrane completeness";
    /** Compartment mode with bins: positive cells in each bin, and the H-score (0-300). */
    public static final String NUM_1PLUS = PREFIX + "Num 1+";
    public static final String NUM_2PLUS = PREFIX + "Num 2+";
    public static final String NUM_3PLUS = PREFIX + "Num 3+";
    public static final String H_SCORE = PREFIX + "H-score";

    private ScoreMeasurements() {
    }

    /**
     * @param name a measurement name
     * @return whether the extension wrote it (any run, any version): a new run removes these first
     */
    public static boolean isOwn(String name) {
        return name.startsWith(PREFIX);
    }

    /**
     * @param result a scored region
     * @return measurement name -> value from its score record, in display order
     */
    public static Map<String, Double> of(RegionResult result) {
        ScoreRecord.Scoring s = result.score().scoring();
        ScoreRecord.Placement p = result.score().placement();
        Map<String, Double> m = new LinkedHashMap<>();
        m.put(NUM_TOTAL, (double) s.numTotal());
        m.put(NUM_POSITIVE, (double) s.numPos());
        m.put(NUM_NEGATIVE, (double) s.numNeg());
        m.put(PERCENT_POSITIVE, s.percentPos());
        m.put(ENGINE, result.score().isDeepLIIF() ? 1.0 : 0.0);
        if (p.resolution() != null)
            m.put(MAGNIFICATION, Double.parseDouble(p.resolution().replace("x", "")));
        m.put(DOWNSAMPLE, p.downsample());
        m.put(LEVEL, (double) p.level());
        m.put(UPLOADED, result.uploaded() ? 1.0 : 0.0);
        put(m, SEG_THRESH, s.segThresh());
        put(m, SIZE_THRESH, s.sizeThresh());
        put(m, SIZE_THRESH_UPPER, s.sizeThreshUpper());
        put(m, MARKER_THRESH, s.markerThresh());
        Double dab = result.score().parameters().get("dab_threshold");
        if (dab != null)
            m.put(DAB_THRESHOLD, dab);
        m.put(POSITIVE_BY, (double) CompartmentSettings.COMPARTMENTS.indexOf(result.score().compartment()));
        Map<String, Double> c = result.score().compartmentScoring();
        String[][] names = {{"positive_od", POSITIVE_OD}, {"expansion_um", EXPANSION}, {"min_completeness", MIN_COMPLETENESS},
                            {"num_1plus", NUM_1PLUS}, {"num_2plus", NUM_2PLUS}, {"num_3plus", NUM_3PLUS}, {"h_score", H_SCORE}};
        for (String[] name : names)
            if (c.containsKey(name[0]))
                m.put(name[1], c.get(name[0]));
        return m;
    }

    private static void put(Map<String, Double> m, String name, Integer value) {
        if (value != null)
            m.put(name, value.doubleValue());
    }

    /**
     * A one-line description of the engine that scored, for the annotation's description
     * (QuPath measurements are numbers only).
     *
     * @param result a scored region
     * @return e.g. "DeepLIIF: engine deepliif, model deepliif-latest (hash ...), napari-deepliif 0.1.0, 40x"
     */
    public static String provenanceText(RegionResult result) {
        Map<String, String> p = result.score().provenance();
        StringBuilder sb = new StringBuilder(PREFIX).append("engine ").append(p.getOrDefault("engine", "?"));
        if (p.get("model") != null)
            sb.append(", model ").append(p.get("model"));
        if (p.get("model_hash") != null)
            sb.append(" (hash ").append(p.get("model_hash")).append(")");
        sb.append(", napari-deepliif ").append(p.getOrDefault("version", "?"));
        String resolution = result.score().placement().resolution();
        if (resolution != null)
            sb.append(", ").append(resolution);
        if (!"deepliif".equals(p.get("engine")))
            sb.append(" (classical stain engine, not DeepLIIF)");
        if (!"class".equals(result.score().compartment()))
            sb.append(", positive by ").append(result.score().compartment()).append(" DAB OD > ")
                    .append(ScoreSettings.number(result.score().compartmentScoring().get("positive_od")));
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
