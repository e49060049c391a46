package qupath.ext.deepliif.core;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.StringJoiner;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

/**
 * What decides that a cell is positive: the engine's class, or the mean DAB optical density of
 * one compartment the server measures on the IHC image (docs/measurements.md). Values left
 * null are the server's defaults and are not sent; the server judges the combination (e.g.
 * bins only with a compartment) and says what is wrong.
 *
 * @param compartment     "class", "nucleus", "cytoplasm", "membrane" or "cell"
 * @param positiveOd      DAB OD above which a cell is positive (1+), null for the server's 0.2
 * @param bin2Od          DAB OD above which a positive cell is 2+, null for no bins (then also {@code bin3Od})
 * @param bin3Od          DAB OD above which a positive cell is 3+
 * @param minCompleteness fraction (0-1) of the membrane ring above {@code positiveOd} a positive
 *                        cell needs, null for none
 * @param expansionUm     cell expansion beyond the nucleus in µm, null for the server's 5
 */
public record CompartmentSettings(String compartment, Double positiveOd, Double bin2Od, Double bin3Od,
                                  Double minCompleteness, Double expansionUm) {

    /** The compartments, in the server's names. */
    public static final List<String> COMPARTMENTS = List.of("class", "nucleus", "cytoplasm", "membrane", "cell");
    /** Positive by the engine's class, every other setting the server's. */
    public static final CompartmentSettings CLASS = new CompartmentSettings("class", null, null, null, null, null);

    public CompartmentSettings {
        compartment = compartment == null ? "class" : compartment.strip().toLowerCase(Locale.ROOT);
        if (!COMPARTMENTS.contains(compartment))
            throw new IllegalArgumentException("Positive by one of " + COMPARTMENTS + ", got '" + compartment + "'");
        if ((bin2Od == null) != (bin3Od == null))
            throw new IllegalArgumentException("Give both the 2+ and the 3+ DAB OD, or neither");
        for (Double od : new Double[] {positiveOd, bin2Od, bin3Od, expansionUm})
            if (od != null && !(Double.isFinite(od) && od >= 0))
                throw new IllegalArgumentException("ODs and the expansion are finite numbers, 0 or more, got " + od);
        if (minCompleteness != null && !(minCompleteness >= 0 && minCompleteness <= 1))
            throw new IllegalArgumentException("The membrane completeness is a fraction from 0 to 1, got " + minCompleteness);
    }

    /** @return whether a compartment's DAB OD decides (not the engine's class) */
    public boolean byCompartment() {
        return !"class".equals(compartment);
    }

    /**
     * Read the settings a script passes, e.g. {@code [compartment: "membrane", positive_od: 0.35,
     * bins_od: [0.4, 0.6], min_completeness: 0.5, expansion_um: 5]} (the server's names).
     *
     * @param options name -> value; null or empty for {@link #CLASS}
     * @return the settings
     * @throws IllegalArgumentException for an unknown name or a value that is not a number
     */
    public static CompartmentSettings fromMap(Map<String, ?> options) {
        if (options == null || options.isEmpty())
            return CLASS;
        for (String key : options.keySet())
            if (!List.of("compartment", "positive_od", "bins_od", "min_completeness", "expansion_um").contains(key))
                throw new IllegalArgumentException("Unknown compartment setting '" + key + "'");
        Double[] bins = {null, null};
        Object given = options.get("bins_od");
        if (given != null) {
            if (!(given instanceof List<?> list) || list.size() != 2)
                throw new IllegalArgumentException("bins_od is two DAB ODs, e.g. [0.4, 0.6]");
            bins = new Double[] {number("bins_od", list.get(0)), number("bins_od", list.get(1))};
        }
        Object name = options.get("compartment");
        return new CompartmentSettings(name == null ? null : name.toString(), number("positive_od", options.get("positive_od")),
                bins[0], bins[1], number("min_completeness", options.get("min_completeness")),
                number("expansion_um", options.get("expansion_um")));
    }

    /**
     * Read the settings as the preferences keep them (text; blank: the server's default).
     *
     * @param compartment     "class", "nucleus", "cytoplasm", "membrane" or "cell" (blank: class)
     * @param positiveOd      DAB OD of 1+
     * @param bins            "2+,3+" DAB ODs, e.g. "0.4,0.6" (blank: no bins)
     * @param minCompleteness membrane completeness in percent (0-100; blank: none)
     * @param expansionUm     cell expansion in µm
     * @return the settings
     * @throws IllegalArgumentException naming what is wrong
     */
    public static CompartmentSettings fromText(String compartment, String positiveOd, String bins, String minCompleteness,
                                               String expansionUm) {
        Double[] pair = bins(bins);
        Double percent = number("membrane completeness (%)", minCompleteness);
        if (percent != null && !(percent >= 0 && percent <= 100))
            throw new IllegalArgumentException("The membrane completeness is a percentage from 0 to 100, got " + minCompleteness);
        return new CompartmentSettings(compartment == null || compartment.isBlank() ? null : compartment,
                number("positive OD", positiveOd), pair[0], pair[1], percent == null ? null : percent / 100,
                number("cell expansion (µm)", expansionUm));
    }

    /**
     * @param bins "0.4,0.6", or blank / null for no bins
     * @return the two ODs, or {null, null}
     * @throws IllegalArgumentException unless two numbers
     */
    public static Double[] bins(String bins) {
        if (bins == null || bins.isBlank())
            return new Double[] {null, null};
        String[] parts = bins.split(",");
        if (parts.length != 2)
            throw new IllegalArgumentException("Two DAB ODs separated by a comma (2+, 3+), e.g. 0.4,0.6; got '" + bins + "'");
        return new Double[] {number("bins", parts[0].strip()), number("bins", parts[1].strip())};
    }

    /**
     * @param name  what the value is, for the message
     * @param value a number, its text, or null / blank
     * @return the value, null when absent
     */
    public static Double number(String name, Object value) {
        if (value == null || value.toString().isBlank())
            return null;
        if (value instanceof Number n)
            return n.doubleValue();
        try {
            return Double.valueOf(value.toString().strip());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(name + ": a number is needed, got '" + value + "'", e);
        }
    }

    /**
     * Add the settings given to a {@code /api/regions/score} body: {@code compartment} in a
     * compartment mode (left out for the class, so servers without compartments take it), and
     * each value given.
     */
    void addTo(JsonObject body) {
        if (byCompartment())
            body.addProperty("compartment", compartment);
        forEach((key, value) -> {
            if (value instanceof Double[] pair) {
                JsonArray array = new JsonArray(2);
                array.add(pair[0]);
                array.add(pair[1]);
                body.add(key, array);
            } else {
                body.addProperty(key, (Double) value);
            }
        });
    }

    /**
     * Add the settings given to {@code /api/score}'s query, as {@link #addTo(JsonObject)};
     * {@code bins_od} as "2+,3+", which {@link ScoreSettings#encode} repeats as the server reads it.
     */
    void addTo(Map<String, String> query) {
        if (byCompartment())
            query.put("compartment", compartment);
        forEach((key, value) -> query.put(key, value instanceof Double[] pair
                ? ScoreSettings.number(pair[0]) + "," + ScoreSettings.number(pair[1])
                : ScoreSettings.number((Double) value)));
    }

    private void forEach(java.util.function.BiConsumer<String, Object> action) {
        Map<String, Object> given = new LinkedHashMap<>();
        given.put("positive_od", positiveOd);
        given.put("bins_od", bin2Od == null ? null : new Double[] {bin2Od, bin3Od});
        given.put("min_completeness", minCompleteness);
        given.put("expansion_um", expansionUm);
        given.forEach((k, v) -> {
            if (v != null)
                action.accept(k, v);
        });
    }

    /**
     * @return a Groovy map literal of the settings given, e.g.
     *         {@code [compartment: "membrane", positive_od: 0.35, bins_od: [0.4, 0.6]]}
     */
    public String toScript() {
        StringJoiner joiner = new StringJoiner(", ", "[", "]");
        joiner.add("compartment: \"" + compartment + "\"");
        forEach((key, value) -> joiner.add(key + ": " + (value instanceof Double[] pair
                ? "[" + ScoreSettings.number(pair[0]) + ", " + ScoreSettings.number(pair[1]) + "]"
                : ScoreSettings.number((Double) value))));
        return joiner.toString();
    }

    /** @return the settings given, for the workflow step's parameters */
    public Map<String, Object> parameters() {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("compartment", compartment);
        forEach((key, value) -> map.put(key, value instanceof Double[] pair ? new ArrayList<>(List.of(pair)) : value));
        return map;
    }
}
