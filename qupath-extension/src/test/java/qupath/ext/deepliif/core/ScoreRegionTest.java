package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;

import org.junit.jupiter.api.Test;
import org.locationtech.jts.geom.Coordinate;
import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.GeometryFactory;
import org.locationtech.jts.geom.Polygon;
import org.locationtech.jts.io.ParseException;
import org.locationtech.jts.io.WKTReader;

class ScoreRegionTest {

    private static final GeometryFactory GF = new GeometryFactory();

    private static Geometry wkt(String text) throws ParseException {
        return new WKTReader(GF).read(text);
    }

    @Test
    void boundsAreRoundedOutAndClippedToTheImage() throws ParseException {
        Geometry roi = wkt("POLYGON ((-5.5 10.2, 120.4 10.2, 120.4 80.7, -5.5 80.7, -5.5 10.2))");
        ScoreRegion region = ScoreRegion.of("/data/a.svs", roi, 100, 1000, 0.25);
        assertEquals(new ScoreRegion("/data/a.svs", 0, 10, 100, 71, roi, 0.25), region);
        assertNull(ScoreRegion.of("/data/a.svs", wkt("POLYGON ((200 0, 210 0, 210 5, 200 0))"), 100, 100, 0.25),
                "outside the image");
        assertThrows(IllegalArgumentException.class, () -> new ScoreRegion(null, 0, 0, 0, 5, null, Double.NaN));
    }

    @Test
    void requestBodyHasTheFileRegionOutlineSettingsAndId() throws ParseException {
        Geometry roi = wkt("POLYGON ((10 20, 110 20, 110 70, 10 70, 10 20), (40 30, 50 30, 50 40, 40 30))");
        var region = ScoreRegion.of("/slides/case 1.svs", roi, 10000, 10000, 0.2527);
        JsonObject body = region.requestBody(new ScoreSettings(Magnification.X20, null, Threshold.DEFAULT, Threshold.DEFAULT,
                Threshold.NONE), "req-1");
        assertEquals("{\"image\":\"/slides/case 1.svs\",\"region\":[10,20,100,50],"
                + "\"roi\":{\"type\":\"Polygon\",\"coordinates\":[[[10.0,20.0],[110.0,20.0],[110.0,70.0],[10.0,70.0],[10.0,20.0]],"
                + "[[40.0,30.0],[50.0,30.0],[50.0,40.0],[40.0,30.0]]]},"
                + "\"resolution\":\"20x\",\"size_thresh\":\"default\",\"size_thresh_upper\":\"default\",\"marker_thresh\":null,"
                + "\"mpp\":0.2527,\"request_id\":\"req-1\"}", body.toString());
        JsonObject uncalibrated = new ScoreRegion("/a.png", 0, 0, 5, 5, null, Double.NaN)
                .requestBody(ScoreSettings.defaults(null), "r");
        assertTrue(uncalibrated.get("mpp").isJsonNull());
        assertTrue(uncalibrated.get("roi").isJsonNull());
        assertTrue(uncalibrated.get("resolution").isJsonNull());
        var noFile = new ScoreRegion(null, 0, 0, 5, 5, null, 1);
        assertThrows(IllegalStateException.class, () -> noFile.requestBody(ScoreSettings.defaults(null), "r"));
    }

    @Test
    void outlinesOfSeveralPartsBecomeMultiPolygonsAndReadBack() throws ParseException, DeepLIIFException {
        Geometry two = wkt("GEOMETRYCOLLECTION (POLYGON ((0 0, 4 0, 4 4, 0 0)), POLYGON ((10 10, 14 10, 14 14, 10 10)), "
                + "LINESTRING (0 0, 9 9))");
        JsonObject json = GeoJsonGeometry.write(two);
        assertEquals("MultiPolygon", json.get("type").getAsString());
        Geometry back = GeoJsonGeometry.read(json);
        assertEquals(16.0, back.getArea(), 1e-12);
        assertTrue(back.equalsTopo(GeoJsonGeometry.polygonal(two)));
        Polygon square = GF.createPolygon(new Coordinate[] {new Coordinate(0, 0), new Coordinate(1, 0), new Coordinate(1, 1),
                new Coordinate(0, 0)});
        assertEquals("Polygon", GeoJsonGeometry.write(square).get("type").getAsString());
        assertThrows(IllegalArgumentException.class, () -> GeoJsonGeometry.write(wkt("LINESTRING (0 0, 1 1)")));
    }
}
