package qupath.ext.deepliif.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import org.locationtech.jts.geom.Geometry;

/**
 * Reads the server's GeoJSON detections (a FeatureCollection of Polygon / MultiPolygon features,
 * or Point features from a points model; QuPath's detection layout, in level-0 image pixels)
 * into {@link Cell}s with JTS geometries.
 */
public final class GeoJsonCells {

    private GeoJsonCells() {
    }

    /**
     * @param collection a GeoJSON FeatureCollection
     * @return the cells, in the order of the features
     * @throws DeepLIIFException if the collection is not a FeatureCollection of polygons or points
     */
    public static List<Cell> read(JsonObject collection) throws DeepLIIFException {
        JsonElement features = collection.get("features");
        if (!"FeatureCollection".equals(ServerHealth.string(collection, "type")) || features == null || !features.isJsonArray())
            throw malformed("the answer is not a GeoJSON FeatureCollection");
        List<Cell> cells = new ArrayList<>(features.getAsJsonArray().size());
        for (JsonElement feature : features.getAsJsonArray())
            cells.add(cell(feature.getAsJsonObject()));
        return cells;
    }

    private static Cell cell(JsonObject feature) throws DeepLIIFException {
        if (!feature.has("geometry") || !feature.get("geometry").isJsonObject())
            throw malformed("a feature has no geometry");
        Geometry geometry = GeoJsonGeometry.read(feature.getAsJsonObject("geometry"));
        JsonObject properties = feature.has("properties") && feature.get("properties").isJsonObject()
                ? feature.getAsJsonObject("properties") : new JsonObject();
        return new Cell(geometry, classification(properties.get("classification")), measurements(properties.get("measurements")));
    }

    /** QuPath writes classification as {"name": ...}; a plain string is accepted too. */
    private static String classification(JsonElement value) {
        if (value == null || value.isJsonNull())
            return null;
        if (value.isJsonObject())
            return ServerHealth.string(value.getAsJsonObject(), "name");
        return value.getAsString();
    }

    /** Numeric measurements from {name: value} or QuPath's older [{name, value}] layout. */
    private static Map<String, Double> measurements(JsonElement value) {
        if (value == null || value.isJsonNull())
            return Collections.emptyMap();
        Map<String, Double> map = new LinkedHashMap<>();
        if (value.isJsonObject()) {
            for (Map.Entry<String, JsonElement> entry : value.getAsJsonObject().entrySet())
                putNumber(map, entry.getKey(), entry.getValue());
        } else if (value.isJsonArray()) {
            for (JsonElement item : value.getAsJsonArray())
                if (item.isJsonObject())
                    putNumber(map, ServerHealth.string(item.getAsJsonObject(), "name"), item.getAsJsonObject().get("value"));
        }
        return map;
    }

    private static void putNumber(Map<String, Double> map, String name, JsonElement value) {
        if (name != null && value != null && value.isJsonPrimitive() && value.getAsJsonPrimitive().isNumber())
            map.put(name, value.getAsDouble());
    }

    static DeepLIIFException malformed(String what) {
        return new DeepLIIFException(0, "Unexpected answer", "The server's cells could not be read: " + what
                + ". Are the extension and napari-deepliif versions compatible?");
    }
}
