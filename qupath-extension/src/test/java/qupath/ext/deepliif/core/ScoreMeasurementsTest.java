package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import org.junit.jupiter.api.Test;

class ScoreMeasurementsTest {

    private static RegionResult result(String engine, String uploadReason) throws DeepLIIFException {
        var body = Answers.answer(2.0, Answers.cell(0, 0, 4, true), Answers.cell(10, 0, 4, true), Answers.cell(20, 0, 4, true),
                Answers.cell(30, 0, 4, false));
        body.getAsJsonObject("score").getAsJsonObject("provenance").addProperty("engine", engine);
        ScoreResponse response = ScoreResponse.fromJson(body);
        return new RegionResult(response.cells(), response.score(), uploadReason, null);
    }

    @Test
    void theStainEnginesDabThresholdIsAMeasurement() throws DeepLIIFException {
        var body = Answers.answer(1.0, Answers.cell(0, 0, 4, true));
        var parameters = new com.google.gson.JsonObject();
        parameters.addProperty("dab_threshold", 0.35);
        body.getAsJsonObject("score").getAsJsonObject("provenance").add("parameters", parameters);
        ScoreResponse response = ScoreResponse.fromJson(body);
        assertEquals(Map.of("dab_threshold", 0.35), response.score().parameters());
        var m = ScoreMeasurements.of(new RegionResult(response.cells(), response.score(), null, null));
        assertEquals(0.35, m.get(ScoreMeasurements.DAB_THRESHOLD));
    }

    @Test
    void aCompartmentScoreGivesItsSettingsBinsAndHScoreUntilCellsAreDropped() throws DeepLIIFException {
        var body = Answers.answer(1.0, Answers.cell(0, 0, 4, true), Answers.cell(10, 0, 4, false));
        var scoring = body.getAsJsonObject("score").getAsJsonObject("scoring");
        scoring.addProperty("compartment", "membrane");
        scoring.addProperty("positive_od", 0.35);
        scoring.addProperty("expansion_um", 5);
        scoring.add("min_completeness", com.google.gson.JsonNull.INSTANCE);
        scoring.addProperty("num_1plus", 0);
        scoring.addProperty("num_2plus", 1);
        scoring.addProperty("num_3plus", 0);
        scoring.addProperty("h_score", 100.0);
        ScoreResponse response = ScoreResponse.fromJson(body);
        var m = ScoreMeasurements.of(new RegionResult(response.cells(), response.score(), null, null));
        assertEquals(3.0, m.get(ScoreMeasurements.POSITIVE_BY));
        assertEquals(0.35, m.get(ScoreMeasurements.POSITIVE_OD));
        assertEquals(5.0, m.get(ScoreMeasurements.EXPANSION));
        assertFalse(m.containsKey(ScoreMeasurements.MIN_COMPLETENESS), "not applied: no measurement");
        assertEquals(1.0, m.get(ScoreMeasurements.NUM_2PLUS));
        assertEquals(100.0, m.get(ScoreMeasurements.H_SCORE));
        assertTrue(ScoreMeasurements.provenanceText(new RegionResult(response.cells(), response.score(), null, null))
                .endsWith("positive by membrane DAB OD > 0.35"));
        var recounted = ScoreMeasurements.of(new RegionResult(response.cells(), response.score().withCounts(1, 1), null, null));
        assertFalse(recounted.containsKey(ScoreMeasurements.H_SCORE), "bins of other cells are not reported");
        assertEquals(0.35, recounted.get(ScoreMeasurements.POSITIVE_OD));
        assertEquals(0.0, ScoreMeasurements.of(result("stain", null)).get(ScoreMeasurements.POSITIVE_BY));
    }

    @Test
    void measurementsComeFromTheScoreRecord() throws DeepLIIFException {
        Map<String, Double> m = ScoreMeasurements.of(result("deepliif", null));
        m.keySet().forEach(name -> assertTrue(ScoreMeasurements.isOwn(name), name));
        assertEquals(4.0, m.get(ScoreMeasurements.NUM_TOTAL));
        assertEquals(3.0, m.get(ScoreMeasurements.NUM_POSITIVE));
        assertEquals(1.0, m.get(ScoreMeasurements.NUM_NEGATIVE));
        assertEquals(75.0, m.get(ScoreMeasurements.PERCENT_POSITIVE));
        assertEquals(1.0, m.get(ScoreMeasurements.ENGINE));
        assertEquals(20.0, m.get(ScoreMeasurements.MAGNIFICATION));
        assertEquals(2.0, m.get(ScoreMeasurements.DOWNSAMPLE));
        assertEquals(1.0, m.get(ScoreMeasurements.LEVEL));
        assertEquals(0.0, m.get(ScoreMeasurements.UPLOADED));
        assertEquals(120.0, m.get(ScoreMeasurements.SEG_THRESH));
        assertEquals(31.0, m.get(ScoreMeasurements.SIZE_THRESH));
        assertFalse(m.containsKey(ScoreMeasurements.SIZE_THRESH_UPPER), "not applied: no measurement");
        assertEquals(90.0, m.get(ScoreMeasurements.MARKER_THRESH));
        assertEquals(1.0, ScoreMeasurements.of(result("stain", "no reader")).get(ScoreMeasurements.UPLOADED));
        assertFalse(ScoreMeasurements.isOwn("Num Positive"), "QuPath's own columns are left alone");
        assertTrue(ScoreMeasurements.isOwn("DeepLIIF: Tiles"), "an earlier version's measurement is cleared too");
        assertFalse(m.containsKey(ScoreMeasurements.DAB_THRESHOLD), "no parameters: no DAB measurement");
    }

    @Test
    void provenanceTextNamesTheClassicalEngine() throws DeepLIIFException {
        String text = ScoreMeasurements.provenanceText(result("stain", null));
        assertEquals("DeepLIIF: engine stain, napari-deepliif 0.2.0, 20x (classical stain engine, not DeepLIIF)", text);
        assertEquals(0.0, ScoreMeasurements.of(result("stain", null)).get(ScoreMeasurements.ENGINE));
    }

    @Test
    void provenanceLineReplacesOnlyTheEarlierDeepLIIFLine() {
        assertEquals("DeepLIIF: engine stain", ScoreMeasurements.withProvenance(null, "DeepLIIF: engine stain"));
        String first = ScoreMeasurements.withProvenance("Tumour core\nreviewed by AB\n", "DeepLIIF: engine stain");
        assertEquals("Tumour core\nreviewed by AB\nDeepLIIF: engine stain", first);
        assertEquals("Tumour core\nreviewed by AB\nDeepLIIF: engine deepliif",
                ScoreMeasurements.withProvenance(first, "DeepLIIF: engine deepliif"));
    }
}
