package qupath.ext.deepliif.core;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/**
 * The server's score record of one region (the {@code "score"} object of a scoring answer):
 * the counts and the thresholds used, which engine scored, and where the pixels came from.
 *
 * @param scoring    counts and thresholds used
 * @param provenance engine, model, model_hash, version (as strings; null values are left out)
 * @param parameters the engine's numeric parameters (e.g. the stain engine's {@code dab_threshold});
 *                   empty when it has none or the server does not report them
 * @param placement  where the scored pixels lie in the image
 * @param compartment what decided positive: "class" (the engine's class) or the compartment
 *                    whose DAB OD did
 * @param compartmentScoring a compartment mode's numeric settings and results, in the server's
 *                    names ({@code positive_od}, {@code min_completeness}, {@code expansion_um},
 *                    {@code membrane_um}, and with bins {@code num_1plus}, {@code num_2plus},
 *                    {@code num_3plus}, {@code h_score}); empty for the class
 * @param positiveClasses a points model's class names counted in {@code num_pos}
 *                    ({@code scoring.positive_classes}); null for cells (positive: {@link Cell#POSITIVE})
 */
public record ScoreRecord(Scoring scoring, Map<String, String> provenance, Map<String, Double> parameters,
                          Placement placement, String compartment, Map<String, Double> compartmentScoring,
                          List<String> positiveClasses) {

    /** The keys of {@link #compartmentScoring} that count cells, and go stale when cells are dropped. */
    public static final List<String> BIN_KEYS = java.util.List.of("num_1plus", "num_2plus", "num_3plus", "h_score");

    /** The version of the server's score record this extension reads (docs/score-format.md). */
    public static final int FORMAT_VERSION = 1;

    /**
     * Counts and the thresholds the server used.
     *
     * @param numTotal        cells counted
     * @param numPos          marker-positive cells
     * @param numNeg          marker-negative cells
     * @param percentPos      positive in percent of all cells, rounded to 0.1
     * @param segThresh       segmentation threshold used
     * @param sizeThresh      size threshold used (pixels), null if none
     * @param sizeThreshUpper upper size threshold used (pixels), null if none
     * @param markerThresh    marker threshold used, null if none
     */
    public record Scoring(int numTotal, int numPos, int numNeg, double percentPos, Integer segThresh,
                          Integer sizeThresh, Integer sizeThreshUpper, Integer markerThresh) {

        /**
         * The same thresholds with other counts (cells dropped outside an annotation after an
         * upload).
         *
         * @param positive marker-positive cells
         * @param total    cells
         * @return the counts with DeepLIIF's percent rule ({@link #percent})
         */
        public Scoring withCounts(int positive, int total) {
            return new Scoring(total, positive, total - positive, percent(positive, total), segThresh, sizeThresh,
                    sizeThreshUpper, markerThresh);
        }

        /**
         * DeepLIIF's {@code percent_pos}: the double {@code positive / total * 100} rounded
         * half-even to 0.1 (Python's {@code round(x, 1)}), 0 when no cell is positive.
         *
         * @param positive marker-positive cells
         * @param total    cells
         * @return the percentage
         */
        public static double percent(int positive, int total) {
            if (positive == 0)
                return 0;
            return new BigDecimal(positive / (double) total * 100).setScale(1, RoundingMode.HALF_EVEN).doubleValue();
        }
    }

    /**
     * Where the scored pixels lie, as the server reports it: {@code width x height} pixels read
     * at {@code downsample} from pyramid level {@code level}. The extension only reports these
     * (as measurements) and checks the downsample of an upload; it computes nothing from them.
     *
     * @param level      pyramid level read (0 for an upload)
     * @param downsample level-0 pixels per scored pixel
     * @param mpp        µm per pixel as the server reports it, NaN when unknown
     * @param resolution magnification scored at ("40x", "20x", "10x")
     * @param originX    the region's left edge as the server reports it ({@code origin[0]})
     * @param originY    the region's top edge as the server reports it ({@code origin[1]})
     * @param width      width in scored pixels ({@code shape[1]})
     * @param height     height in scored pixels ({@code shape[0]})
     */
    public record Placement(int level, double downsample, double mpp, String resolution, double originX, double originY,
                            int width, int height) {
    }

    /**
     * Read the {@code "score"} object of an answer.
     *
     * @param score the object
     * @return the record
     * @throws DeepLIIFException if {@code scoring}, {@code provenance} or {@code placement} is
     *                           missing or malformed (an older server sends another layout)
     */
    public static ScoreRecord fromJson(JsonObject score) throws DeepLIIFException {
        if (!score.has("format_version") || score.get("format_version").getAsInt() != FORMAT_VERSION)
            throw new DeepLIIFException(0, "Unexpected answer", "The server's score record is not of format version "
                    + FORMAT_VERSION + ". Update napari-deepliif (or this extension) so that both speak the same format.");
        try {
            JsonObject s = object(score, "scoring");
            JsonObject p = object(score, "placement");
            var scoring = new Scoring(s.get("num_total").getAsInt(), s.get("num_pos").getAsInt(), s.get("num_neg").getAsInt(),
                    s.get("percent_pos").getAsDouble(), integer(s, "seg_thresh"), integer(s, "size_thresh"),
                    integer(s, "size_thresh_upper"), integer(s, "marker_thresh"));
            var origin = p.getAsJsonArray("origin");
            var shape = p.getAsJsonArray("shape");
            var placement = new Placement(p.get("level").getAsInt(), p.get("downsample").getAsDouble(),
                    p.has("mpp") && !p.get("mpp").isJsonNull() ? p.get("mpp").getAsDouble() : Double.NaN,
                    ServerHealth.string(p, "resolution"), origin.get(0).getAsDouble(), origin.get(1).getAsDouble(),
                    shape.get(1).getAsInt(), shape.get(0).getAsInt());
            Map<String, String> provenance = new LinkedHashMap<>();
            // names and numbers only: the engine's whole-image statistics are an object
            JsonObject source = object(score, "provenance");
            for (Map.Entry<String, JsonElement> e : source.entrySet())
                if (e.getValue().isJsonPrimitive())
                    provenance.put(e.getKey(), e.getValue().getAsString());
            Map<String, Double> parameters = new LinkedHashMap<>();
            if (source.has("parameters") && source.get("parameters").isJsonObject())
                for (Map.Entry<String, JsonElement> e : source.getAsJsonObject("parameters").entrySet())
                    if (e.getValue().isJsonPrimitive() && e.getValue().getAsJsonPrimitive().isNumber())
                        parameters.put(e.getKey(), e.getValue().getAsDouble());
            String compartment = s.has("compartment") ? s.get("compartment").getAsString() : "class";
            Map<String, Double> compartmentScoring = new LinkedHashMap<>();
            for (String key : new String[] {"positive_od", "min_completeness", "expansion_um", "membrane_um",
                                            "num_1plus", "num_2plus", "num_3plus", "h_score"})
                if (s.has(key) && !s.get(key).isJsonNull())
                    compartmentScoring.put(key, s.get(key).getAsDouble());
            List<String> positiveClasses = null;
            if (s.has("positive_classes") && s.get("positive_classes").isJsonArray()) {
                positiveClasses = new ArrayList<>();
                for (JsonElement name : s.getAsJsonArray("positive_classes"))
                    positiveClasses.add(name.getAsString());
                positiveClasses = List.copyOf(positiveClasses);
            }
            return new ScoreRecord(scoring, Collections.unmodifiableMap(provenance),
                    Collections.unmodifiableMap(parameters), placement, compartment,
                    Collections.unmodifiableMap(compartmentScoring), positiveClasses);
        } catch (NullPointerException | IllegalStateException | UnsupportedOperationException | ClassCastException
                 | IndexOutOfBoundsException | NumberFormatException e) {
            // What Gson's accessors throw for a field that is missing or of another type.
            throw new DeepLIIFException(0, "Unexpected answer", "The server's score record could not be read (" + e
                    + "): it needs 'scoring', 'provenance' and 'placement'. Update napari-deepliif to the version "
                    + "this extension was built for.", e);
        }
    }

    /**
     * @return the same record with other counts (see {@link Scoring#withCounts}); the 1+/2+/3+
     *         counts and H-score, which counted other cells, are left out
     */
    public ScoreRecord withCounts(int positive, int total) {
        Map<String, Double> settings = new LinkedHashMap<>(compartmentScoring);
        settings.keySet().removeAll(BIN_KEYS);
        return new ScoreRecord(scoring.withCounts(positive, total), provenance, parameters, placement, compartment,
                Collections.unmodifiableMap(settings), positiveClasses);
    }

    /**
     * @param cell one of this answer's cells (or points)
     * @return whether it counts in {@code num_pos}: a points model's point of one of its
     *         {@link #positiveClasses}, else a cell classified {@link Cell#POSITIVE}
     */
    public boolean isPositive(Cell cell) {
        return positiveClasses != null ? positiveClasses.contains(cell.classification()) : cell.isPositive();
    }

    /** @return whether DeepLIIF scored (not the classical stain engine) */
    public boolean isDeepLIIF() {
        return "deepliif".equals(provenance.get("engine"));
    }

    private static JsonObject object(JsonObject json, String key) {
        JsonElement value = json.get(key);
        if (value == null || !value.isJsonObject())
            throw new IllegalStateException("no '" + key + "' object");
        return value.getAsJsonObject();
    }

    private static Integer integer(JsonObject json, String key) {
        JsonElement value = json.get(key);
        return value == null || value.isJsonNull() ? null : value.getAsInt();
    }
}
