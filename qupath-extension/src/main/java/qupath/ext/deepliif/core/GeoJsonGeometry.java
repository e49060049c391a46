package qupath.ext.deepliif.core;

import java.util.ArrayList;
import java.util.List;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;

import org.locationtech.jts.geom.Coordinate;
import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.GeometryFactory;
import org.locationtech.jts.geom.LineString;
import org.locationtech.jts.geom.LinearRing;
import org.locationtech.jts.geom.MultiPolygon;
import org.locationtech.jts.geom.Polygon;
import org.locationtech.jts.geom.util.PolygonExtracter;

/**
 * GeoJSON Polygon / MultiPolygon geometries to and from JTS, in image pixels (x right, y down),
 * with no change of coordinates: cell outlines the server sends, and the annotation outline
 * ({@code roi}) the extension sends; a points model's Point detections are read too.
 */
public final class GeoJsonGeometry {

    private static final GeometryFactory FACTORY = new GeometryFactory();

    private GeoJsonGeometry() {
    }

    /**
     * @param geometry a GeoJSON Polygon, MultiPolygon or Point object
     * @return the JTS geometry
     * @throws DeepLIIFException for another geometry type or malformed coordinates
     */
    public static Geometry read(JsonObject geometry) throws DeepLIIFException {
        String type = ServerHealth.string(geometry, "type");
        JsonArray coordinates = geometry.has("coordinates") && geometry.get("coordinates").isJsonArray()
                ? geometry.getAsJsonArray("coordinates") : null;
        if (coordinates == null)
            throw GeoJsonCells.malformed("a geometry has no coordinates");
        if ("Polygon".equals(type))
            return polygon(coordinates);
        if ("Point".equals(type))
            return FACTORY.createPoint(coordinate(coordinates));
        if ("MultiPolygon".equals(type)) {
            Polygon[] parts = new Polygon[coordinates.size()];
            for (int i = 0; i < parts.length; i++)
                parts[i] = polygon(coordinates.get(i).getAsJsonArray());
            return FACTORY.createMultiPolygon(parts);
        }
        throw GeoJsonCells.malformed("cells must be Polygon, MultiPolygon or Point, got " + type);
    }

    /**
     * The polygonal part of an area as a GeoJSON geometry (QuPath's area ROIs are polygons,
     * multipolygons, or collections of them).
     *
     * @param geometry an area in level-0 pixels
     * @return a GeoJSON Polygon (one part) or MultiPolygon, rings closed
     * @throws IllegalArgumentException if the geometry has no polygonal part
     */
    public static JsonObject write(Geometry geometry) {
        @SuppressWarnings("unchecked")
        List<Polygon> polygons = PolygonExtracter.getPolygons(geometry);
        polygons.removeIf(Polygon::isEmpty);
        if (polygons.isEmpty())
            throw new IllegalArgumentException("Not an area: " + geometry.getGeometryType());
        JsonObject json = new JsonObject();
        if (polygons.size() == 1) {
            json.addProperty("type", "Polygon");
            json.add("coordinates", rings(polygons.get(0)));
        } else {
            json.addProperty("type", "MultiPolygon");
            JsonArray parts = new JsonArray();
            polygons.forEach(p -> parts.add(rings(p)));
            json.add("coordinates", parts);
        }
        return json;
    }

    /** @return the geometry as a MultiPolygon of its polygonal parts */
    static MultiPolygon polygonal(Geometry geometry) {
        @SuppressWarnings("unchecked")
        List<Polygon> polygons = PolygonExtracter.getPolygons(geometry);
        return FACTORY.createMultiPolygon(polygons.toArray(new Polygon[0]));
    }

    private static JsonArray rings(Polygon polygon) {
        JsonArray rings = new JsonArray();
        rings.add(ring(polygon.getExteriorRing()));
        for (int i = 0; i < polygon.getNumInteriorRing(); i++)
            rings.add(ring(polygon.getInteriorRingN(i)));
        return rings;
    }

    private static JsonArray ring(LineString ring) {
        JsonArray points = new JsonArray();
        for (Coordinate c : ring.getCoordinates()) {
            JsonArray xy = new JsonArray(2);
            xy.add(c.x);
            xy.add(c.y);
            points.add(xy);
        }
        return points;
    }

    private static Polygon polygon(JsonArray rings) throws DeepLIIFException {
        if (rings.size() == 0)
            throw GeoJsonCells.malformed("a polygon has no rings");
        LinearRing shell = ring(rings.get(0).getAsJsonArray());
        LinearRing[] holes = new LinearRing[rings.size() - 1];
        for (int i = 1; i < rings.size(); i++)
            holes[i - 1] = ring(rings.get(i).getAsJsonArray());
        return FACTORY.createPolygon(shell, holes);
    }

    private static Coordinate coordinate(JsonArray xy) throws DeepLIIFException {
        if (xy.size() < 2)
            throw GeoJsonCells.malformed("a coordinate has fewer than 2 numbers");
        return new Coordinate(xy.get(0).getAsDouble(), xy.get(1).getAsDouble());
    }

    private static LinearRing ring(JsonArray points) throws DeepLIIFException {
        List<Coordinate> coords = new ArrayList<>(points.size() + 1);
        for (var point : points)
            coords.add(coordinate(point.getAsJsonArray()));
        if (!coords.isEmpty() && !coords.get(0).equals2D(coords.get(coords.size() - 1)))
            coords.add(new Coordinate(coords.get(0)));
        if (coords.size() < 4)
            throw GeoJsonCells.malformed("a ring has fewer than 3 distinct points");
        return FACTORY.createLinearRing(coords.toArray(new Coordinate[0]));
    }
}
