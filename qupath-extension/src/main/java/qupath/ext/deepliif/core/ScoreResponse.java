package qupath.ext.deepliif.core;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/**
 * The answer of {@code POST /api/score} for one image.
 *
 * @param cells      the cells, coordinates mapped as asked
 * @param score      the numeric entries of {@code score} (num_total, num_pos, num_neg,
 *                   percent_pos and the thresholds used; null thresholds are left out)
 * @param provenance {@code provenance} as strings (engine, model, model_hash, version, resolution;
 *                   null values are left out)
 */
public record ScoreResponse(List<Cell> cells, Map<String, Double> score, Map<String, String> provenance) {

    /**
     * @param body    the parsed answer
     * @param mapping applied to the cells' coordinates
     * @return the response
     * @throws DeepLIIFException if the answer is not a scored FeatureCollection, or its cell
     *                           count disagrees with {@code score.num_total}
     */
    public static ScoreResponse fromJson(JsonObject body, CoordinateMapping mapping) throws DeepLIIFException {
        List<Cell> cells = GeoJsonCells.read(body, mapping);
        Map<String, Double> score = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : object(body, "score").entrySet())
            if (e.getValue().isJsonPrimitive() && e.getValue().getAsJsonPrimitive().isNumber())
                score.put(e.getKey(), e.getValue().getAsDouble());
        Map<String, String> provenance = new LinkedHashMap<>();
        for (Map.Entry<String, JsonElement> e : object(body, "provenance").entrySet())
            if (!e.getValue().isJsonNull())
                provenance.put(e.getKey(), e.getValue().getAsString());
        Double total = score.get("num_total");
        if (total == null || total.intValue() != cells.size())
            throw new DeepLIIFException(0, "Unexpected answer", "The server sent " + cells.size()
                    + " cells but score.num_total = " + total + ": the answer is inconsistent.");
        return new ScoreResponse(cells, Collections.unmodifiableMap(score), Collections.unmodifiableMap(provenance));
    }

    private static JsonObject object(JsonObject body, String key) {
        JsonElement value = body.get(key);
        return value != null && value.isJsonObject() ? value.getAsJsonObject() : new JsonObject();
    }
}
