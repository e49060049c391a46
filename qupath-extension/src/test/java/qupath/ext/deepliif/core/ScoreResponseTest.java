package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

import org.junit.jupiter.api.Test;

class ScoreResponseTest {

    @Test
    void readsCellsAndTheScoreRecord() throws DeepLIIFException {
        JsonObject body = Answers.answer(2.0, Answers.cell(100, 80, 10, true), Answers.cell(200, 80, 12, false),
                Answers.cell(300, 80, 8, false));
        ScoreResponse response = ScoreResponse.fromJson(body);
        assertEquals(3, response.cells().size());
        assertEquals(100, response.cells().get(0).geometry().getEnvelopeInternal().getMinX(), "level-0 pixels, not mapped");
        ScoreRecord.Scoring s = response.score().scoring();
        assertEquals(new ScoreRecord.Scoring(3, 1, 2, 33.3, 120, 31, null, 90), s);
        ScoreRecord.Placement p = response.score().placement();
        assertEquals(new ScoreRecord.Placement(1, 2.0, 0.5, "20x", 50, 40, 400, 300), p, "shape is [h, w]");
        assertEquals(Map.of("engine", "stain", "version", "0.2.0"), response.score().provenance());
        assertFalse(response.score().isDeepLIIF());
    }

    @Test
    void rejectsACountThatDisagreesWithTheCells() {
        JsonObject body = Answers.answer(1.0, Answers.cell(0, 0, 4, true));
        body.getAsJsonObject("score").getAsJsonObject("scoring").addProperty("num_total", 2);
        DeepLIIFException e = assertThrows(DeepLIIFException.class, () -> ScoreResponse.fromJson(body));
        assertTrue(e.getMessage().contains("inconsistent"), e.getMessage());
    }

    @Test
    void rejectsTheOlderFlatScoreLayoutWithAClearReason() {
        JsonObject old = JsonParser.parseString("""
                {"type": "FeatureCollection", "features": [],
                 "score": {"num_total": 0, "num_pos": 0, "num_neg": 0, "percent_pos": 0.0, "seg_thresh": 120},
                 "provenance": {"engine": "stain"}}""").getAsJsonObject();
        DeepLIIFException e = assertThrows(DeepLIIFException.class, () -> ScoreResponse.fromJson(old));
        assertTrue(e.getMessage().contains("Update napari-deepliif"), e.getMessage());
        JsonObject none = JsonParser.parseString("{\"type\": \"FeatureCollection\", \"features\": []}").getAsJsonObject();
        assertThrows(DeepLIIFException.class, () -> ScoreResponse.fromJson(none));
    }

    @Test
    void unknownMppIsNaNAndRecountsUseDeepLIIFsPercentRule() throws DeepLIIFException {
        JsonObject body = Answers.answer(1.0);
        body.getAsJsonObject("score").getAsJsonObject("placement").add("mpp", com.google.gson.JsonNull.INSTANCE);
        ScoreRecord record = ScoreResponse.fromJson(body).score();
        assertTrue(Double.isNaN(record.placement().mpp()));
        assertNull(record.scoring().sizeThreshUpper());
        ScoreRecord.Scoring recount = record.scoring().withCounts(1, 16);
        assertEquals(6.2, recount.percentPos(), "round(6.25, 1) == 6.2 as in Python");
        assertEquals(15, recount.numNeg());
        assertEquals(120, recount.segThresh(), "thresholds are kept");
        assertEquals(66.7, ScoreRecord.Scoring.percent(2, 3));
        assertEquals(0.0, ScoreRecord.Scoring.percent(0, 0));
    }
}
