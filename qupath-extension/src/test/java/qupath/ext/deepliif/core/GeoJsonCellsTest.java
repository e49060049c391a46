package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;
import org.locationtech.jts.geom.MultiPolygon;
import org.locationtech.jts.geom.Point;
import org.locationtech.jts.geom.Polygon;

class GeoJsonCellsTest {

    private static JsonObject json(String text) {
        return JsonParser.parseString(text).getAsJsonObject();
    }

    private static final String TWO_CELLS = """
            {"type": "FeatureCollection", "features": [
              {"type": "Feature",
               "geometry": {"type": "Polygon", "coordinates": [
                 [[0, 0], [10, 0], [10, 10], [0, 10], [0, 0]],
                 [[2, 2], [4, 2], [4, 4], [2, 4], [2, 2]]]},
               "properties": {"objectType": "detection", "classification": {"name": "Positive", "color": [255, 0, 0]},
                              "measurements": {"Area px": 96, "Note": "text is skipped"}}},
              {"type": "Feature",
               "geometry": {"type": "MultiPolygon", "coordinates": [
                 [[[20, 20], [22, 20], [22, 22], [20, 22]]],
                 [[[30, 30], [32, 30], [32, 32], [30, 32], [30, 30]]]]},
               "properties": {"classification": "Negative",
                              "measurements": [{"name": "Area px", "value": 8}]}}]}
            """;

    @Test
    void readsPolygonsWithHolesMultiPolygonsClassesAndMeasurements() throws DeepLIIFException {
        List<Cell> cells = GeoJsonCells.read(json(TWO_CELLS));
        assertEquals(2, cells.size());
        Cell first = cells.get(0);
        assertTrue(first.geometry() instanceof Polygon);
        assertEquals(1, ((Polygon) first.geometry()).getNumInteriorRing());
        assertEquals(96.0, first.geometry().getArea());
        assertTrue(first.isPositive());
        assertEquals(Map.of("Area px", 96.0), first.measurements());
        Cell second = cells.get(1);
        assertTrue(second.geometry() instanceof MultiPolygon);
        assertEquals(8.0, second.geometry().getArea(), "an open ring is closed");
        assertFalse(second.isPositive());
        assertEquals(Cell.NEGATIVE, second.classification());
        assertEquals(Map.of("Area px", 8.0), second.measurements());
    }

    @Test
    void readsAPointsModelsPointDetections() throws DeepLIIFException {
        List<Cell> points = GeoJsonCells.read(json("""
                {"type": "FeatureCollection", "features": [
                  {"type": "Feature", "id": "a", "geometry": {"type": "Point", "coordinates": [12.5, 40.5]},
                   "properties": {"objectType": "detection", "classification": "positive",
                                  "measurements": {"Confidence": 0.75}}}]}
                """));
        assertEquals(1, points.size());
        Point point = (Point) points.get(0).geometry();
        assertEquals(12.5, point.getX());
        assertEquals(40.5, point.getY());
        assertEquals("positive", points.get(0).classification());
        assertEquals(Map.of("Confidence", 0.75), points.get(0).measurements());
        DeepLIIFException e = assertThrows(DeepLIIFException.class, () -> GeoJsonCells.read(json(
                "{\"type\": \"FeatureCollection\", \"features\": [{\"geometry\": {\"type\": \"Point\", \"coordinates\": [1]}}]}")));
        assertTrue(e.getMessage().contains("fewer than 2"));
    }

    @Test
    void rejectsAnswersThatAreNotPolygonCollections() {
        assertThrows(DeepLIIFException.class, () -> GeoJsonCells.read(json("{\"type\": \"Feature\"}")));
        assertThrows(DeepLIIFException.class, () -> GeoJsonCells.read(json(
                "{\"type\": \"FeatureCollection\", \"features\": [{\"geometry\": {\"type\": \"LineString\", \"coordinates\": [[1, 2], [3, 4]]}}]}")));
        DeepLIIFException e = assertThrows(DeepLIIFException.class, () -> GeoJsonCells.read(json(
                "{\"type\": \"FeatureCollection\", \"features\": [{\"geometry\": {\"type\": \"Polygon\", \"coordinates\": [[[0, 0], [1, 1]]]}}]}")));
        assertTrue(e.getMessage().contains("fewer than 3"));
    }
}
