package qupath.ext.deepliif.core;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

import org.locationtech.jts.geom.Coordinate;
import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.GeometryFactory;
import org.locationtech.jts.geom.LinearRing;
import org.locationtech.jts.geom.Polygon;

/**
 * Reads the server's GeoJSON detections (a FeatureCollection of Polygon / MultiPolygon features,
 * QuPath's detection layout) into {@link Cell}s with JTS geometries.
 */
public final class GeoJsonCells {

    private static final GeometryFactory FACTORY = new GeometryFactory();

    private GeoJsonCells() {
    }

    /**
     * @param collection a GeoJSON FeatureCollection
     * @param mapping    applied to every coordinate (read pixels -> full-resolution pixels)
     * @return the cells, in the order of the features
     * @throws DeepLIIFException if the collection is not a FeatureCollection of polygons
     */
    public static List<Cell> read(JsonObject collection, CoordinateMapping mapping) throws DeepLIIFException {
        JsonElement features = collection.get("features");
        if (!"FeatureCollection".equals(ServerHealth.string(collection, "type")) || features == null || !features.isJsonArray())
            throw malformed("the answer is not a GeoJSON FeatureCollection");
        List<Cell> cells = new ArrayList<>(features.getAsJsonArray().size());
        for (JsonElement feature : features.getAsJsonArray())
            cells.add(cell(feature.getAsJsonObject(), mapping));
        return cells;
    }

    private static Cell cell(JsonObject feature, CoordinateMapping mapping) throws DeepLIIFException {
        if (!feature.has("geometry") || !feature.get("geometry").isJsonObject())
            throw malformed("a feature has no geometry");
        Geometry geometry = geometry(feature.getAsJsonObject("geometry"), mapping);
        JsonObject properties = feature.has("properties") && feature.get("properties").isJsonObject()
                ? feature.getAsJsonObject("properties") : new JsonObject();
        return new Cell(geometry, classification(properties.get("classification")), measurements(properties.get("measurements")));
    }

    /**
     * @param geometry a GeoJSON Polygon or MultiPolygon object
     * @param mapping  applied to every coordinate
     * @return the JTS geometry
     * @throws DeepLIIFException for another geometry type or malformed coordinates
     */
    public static Geometry geometry(JsonObject geometry, CoordinateMapping mapping) throws DeepLIIFException {
        String type = ServerHealth.string(geometry, "type");
        JsonArray coordinates = geometry.has("coordinates") && geometry.get("coordinates").isJsonArray()
                ? geometry.getAsJsonArray("coordinates") : null;
        if (coordinates == null)
            throw malformed("a geometry has no coordinates");
        if ("Polygon".equals(type))
            return polygon(coordinates, mapping);
        if ("MultiPolygon".equals(type)) {
            Polygon[] parts = new Polygon[coordinates.size()];
            for (int i = 0; i < parts.length; i++)
                parts[i] = polygon(coordinates.get(i).getAsJsonArray(), mapping);
            return FACTORY.createMultiPolygon(parts);
        }
        throw malformed("cells must be Polygon or MultiPolygon, got " + type);
    }

    private static Polygon polygon(JsonArray rings, CoordinateMapping mapping) throws DeepLIIFException {
        if (rings.size() == 0)
            throw malformed("a polygon has no rings");
        LinearRing shell = ring(rings.get(0).getAsJsonArray(), mapping);
        LinearRing[] holes = new LinearRing[rings.size() - 1];
        for (int i = 1; i < rings.size(); i++)
            holes[i - 1] = ring(rings.get(i).getAsJsonArray(), mapping);
        return FACTORY.createPolygon(shell, holes);
    }

    private static LinearRing ring(JsonArray points, CoordinateMapping mapping) throws DeepLIIFException {
        List<Coordinate> coords = new ArrayList<>(points.size() + 1);
        for (JsonElement point : points) {
            JsonArray xy = point.getAsJsonArray();
            if (xy.size() < 2)
                throw malformed("a coordinate has fewer than 2 numbers");
            coords.add(new Coordinate(mapping.x(xy.get(0).getAsDouble()), mapping.y(xy.get(1).getAsDouble())));
        }
        if (!coords.isEmpty() && !coords.get(0).equals2D(coords.get(coords.size() - 1)))
            coords.add(new Coordinate(coords.get(0)));
        if (coords.size() < 4)
            throw malformed("a ring has fewer than 3 distinct points");
        return FACTORY.createLinearRing(coords.toArray(new Coordinate[0]));
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

    private static DeepLIIFException malformed(String what) {
        return new DeepLIIFException(0, "Unexpected answer", "The server's cells could not be read: " + what
                + ". Are the extension and napari-deepliif versions compatible?");
    }
}
