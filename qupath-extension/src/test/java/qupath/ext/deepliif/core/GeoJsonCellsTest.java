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
        List<Cell> cells = GeoJsonCells.read(json(TWO_CELLS), CoordinateMapping.IDENTITY);
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
    void mapsCoordinatesByDownsampleThenOffset() throws DeepLIIFException {
        CoordinateMapping mapping = new CoordinateMapping(1000, 2000, 4.0);
        List<Cell> cells = GeoJsonCells.read(json(TWO_CELLS), mapping);
        var envelope = cells.get(0).geometry().getEnvelopeInternal();
        assertEquals(1000, envelope.getMinX());
        assertEquals(1040, envelope.getMaxX());
        assertEquals(2000, envelope.getMinY());
        assertEquals(2040, envelope.getMaxY());
        assertEquals(96.0 * 16, cells.get(0).geometry().getArea());
        assertEquals(1000 + 4 * 5.0, cells.get(0).centroid().x, 0.5);
    }

    @Test
    void rejectsAnswersThatAreNotPolygonCollections() {
        assertThrows(DeepLIIFException.class, () -> GeoJsonCells.read(json("{\"type\": \"Feature\"}"), CoordinateMapping.IDENTITY));
        assertThrows(DeepLIIFException.class, () -> GeoJsonCells.read(json(
                "{\"type\": \"FeatureCollection\", \"features\": [{\"geometry\": {\"type\": \"Point\", \"coordinates\": [1, 2]}}]}"),
                CoordinateMapping.IDENTITY));
        DeepLIIFException e = assertThrows(DeepLIIFException.class, () -> GeoJsonCells.read(json(
                "{\"type\": \"FeatureCollection\", \"features\": [{\"geometry\": {\"type\": \"Polygon\", \"coordinates\": [[[0, 0], [1, 1]]]}}]}"),
                CoordinateMapping.IDENTITY));
        assertTrue(e.getMessage().contains("fewer than 3"));
    }

    @Test
    void scoreResponseChecksTheCellCountAgainstNumTotal() throws DeepLIIFException {
        JsonObject body = json(TWO_CELLS);
        body.add("score", json("{\"num_total\": 2, \"num_pos\": 1, \"num_neg\": 1, \"percent_pos\": 50.0, \"size_thresh_upper\": null}"));
        body.add("provenance", json("{\"engine\": \"stain\", \"model\": null, \"version\": \"0.1\", \"resolution\": \"40x\"}"));
        ScoreResponse response = ScoreResponse.fromJson(body, CoordinateMapping.IDENTITY);
        assertEquals(2, response.cells().size());
        assertEquals(50.0, response.score().get("percent_pos"));
        assertFalse(response.score().containsKey("size_thresh_upper"));
        assertEquals(Map.of("engine", "stain", "version", "0.1", "resolution", "40x"), response.provenance());
        body.add("score", json("{\"num_total\": 3}"));
        assertThrows(DeepLIIFException.class, () -> ScoreResponse.fromJson(body, CoordinateMapping.IDENTITY));
    }
}
