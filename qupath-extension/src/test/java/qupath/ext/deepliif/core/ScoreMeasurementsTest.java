package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.locationtech.jts.geom.Envelope;
import org.locationtech.jts.geom.GeometryFactory;

class ScoreMeasurementsTest {

    private static final GeometryFactory GF = new GeometryFactory();

    private static RegionResult result(int positive, int negative, List<Map<String, Double>> tileScores, String engine) {
        List<Cell> cells = new ArrayList<>();
        for (int i = 0; i < positive + negative; i++)
            cells.add(new Cell(GF.toGeometry(new Envelope(i, i + 1, 0, 1)), i < positive ? Cell.POSITIVE : Cell.NEGATIVE, Map.of()));
        List<Tile> tiles = Tiling.tiles(900, 700, 512, 64).subList(0, tileScores.size());
        return new RegionResult(cells, tiles, tileScores, Map.of("engine", engine, "version", "0.1.0", "resolution", "20x"),
                ScoreSettings.defaults(Magnification.X20), new ScalePlan(2.0, Magnification.X20, null));
    }

    @Test
    void percentPositiveRoundsHalfEvenLikePythonsRound() {
        assertEquals(6.2, result(1, 15, List.of(Map.of()), "stain").percentPositive(), "round(6.25, 1) == 6.2");
        assertEquals(66.7, result(2, 1, List.of(Map.of()), "stain").percentPositive());
        assertEquals(0.0, result(0, 4, List.of(Map.of()), "stain").percentPositive());
        assertEquals(0.0, result(0, 0, List.of(Map.of()), "stain").percentPositive());
    }

    @Test
    void measurementsArePrefixedAndThresholdsKeptOnlyWhenAllTilesAgree() {
        Map<String, Double> a = Map.of("seg_thresh", 120.0, "size_thresh", 49.0);
        Map<String, Double> b = Map.of("seg_thresh", 120.0, "size_thresh", 52.0);
        Map<String, Double> m = ScoreMeasurements.of(result(3, 1, List.of(a, b), "deepliif"));
        m.keySet().forEach(name -> assertTrue(name.startsWith("DeepLIIF: "), name));
        assertEquals(4.0, m.get(ScoreMeasurements.NUM_TOTAL));
        assertEquals(3.0, m.get(ScoreMeasurements.NUM_POSITIVE));
        assertEquals(1.0, m.get(ScoreMeasurements.NUM_NEGATIVE));
        assertEquals(75.0, m.get(ScoreMeasurements.PERCENT_POSITIVE));
        assertEquals(1.0, m.get(ScoreMeasurements.ENGINE));
        assertEquals(20.0, m.get(ScoreMeasurements.MAGNIFICATION));
        assertEquals(2.0, m.get(ScoreMeasurements.DOWNSAMPLE));
        assertEquals(2.0, m.get(ScoreMeasurements.TILES));
        assertEquals(120.0, m.get(ScoreMeasurements.SEG_THRESH));
        assertFalse(m.containsKey(ScoreMeasurements.SIZE_THRESH), "tiles disagree on the size threshold");
        assertFalse(m.containsKey(ScoreMeasurements.MARKER_THRESH));
    }

    @Test
    void provenanceTextNamesTheClassicalEngine() {
        String text = ScoreMeasurements.provenanceText(result(1, 1, List.of(Map.of()), "stain"));
        assertTrue(text.startsWith("DeepLIIF: engine stain"), text);
        assertTrue(text.contains("not DeepLIIF"), text);
        assertEquals(0.0, ScoreMeasurements.of(result(1, 1, List.of(Map.of()), "stain")).get(ScoreMeasurements.ENGINE));
    }

    @Test
    void queryCarriesSettingsOriginAndRequestId() {
        ScoreSettings settings = new ScoreSettings(Magnification.X10, 100, null, 900, null);
        Map<String, String> q = settings.queryParameters(388, 0, "id 1");
        assertEquals(Map.of("resolution", "10x", "seg_thresh", "100", "size_thresh", "default", "size_thresh_upper", "900",
                "origin_x", "388", "origin_y", "0", "request_id", "id 1"), q);
        assertEquals("resolution=10x&seg_thresh=100&size_thresh=default&size_thresh_upper=900&origin_x=388&origin_y=0&request_id=id+1",
                ScoreSettings.encode(q));
        assertFalse(ScoreSettings.defaults(Magnification.X40).queryParameters(0, 0, null).containsKey("seg_thresh"));
    }

    @Test
    void provenanceLineReplacesOnlyTheEarlierDeepLIIFLine() {
        assertEquals("DeepLIIF: engine stain", ScoreMeasurements.withProvenance(null, "DeepLIIF: engine stain"));
        String first = ScoreMeasurements.withProvenance("Tumour core\nreviewed by AB\n", "DeepLIIF: engine stain");
        assertEquals("Tumour core\nreviewed by AB\nDeepLIIF: engine stain", first);
        assertEquals("Tumour core\nreviewed by AB\nDeepLIIF: engine deepliif",
                ScoreMeasurements.withProvenance(first, "DeepLIIF: engine deepliif"));
        assertTrue(ScoreMeasurements.NAMES.containsAll(ScoreMeasurements.of(result(1, 1, List.of(Map.of("seg_thresh", 1.0,
                "size_thresh", 2.0, "size_thresh_upper", 3.0, "marker_thresh", 4.0)), "stain")).keySet()));
    }
}
