package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import org.junit.jupiter.api.Test;

class ScriptCallTest {

    @Test
    void replayLineCallsTheScriptingApiWithTheRunsSettingsAndNoSecrets() {
        var settings = new ScoreSettings(Magnification.X20, 100, Threshold.of(30), Threshold.of(900), Threshold.of(150));
        String line = ScriptCall.scoreAnnotations(settings, true);
        assertEquals("qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations(\"20x\", true, 100, 30, 900, 150)", line);
        assertFalse(line.toLowerCase().contains("token"));
        assertEquals("qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations(\"40x\", false, null, \"default\", null, null)",
                ScriptCall.scoreAnnotations(ScoreSettings.defaults(Magnification.X40), false));
    }

    @Test
    void replayLineSaysDefaultForEveryThresholdThatAsksForIt() {
        var settings = new ScoreSettings(null, null, Threshold.DEFAULT, Threshold.DEFAULT, Threshold.DEFAULT);
        assertEquals("qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations(\"auto\", false, null, \"default\", \"default\", \"default\")",
                ScriptCall.scoreAnnotations(settings, false));
    }

    @Test
    void replayLineCarriesADabThresholdOnlyWhenOneIsSet() {
        var settings = ScoreSettings.defaults(Magnification.X40).withDabThreshold(0.35);
        assertEquals("qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations(\"40x\", false, null, \"default\", null, null, 0.35)",
                ScriptCall.scoreAnnotations(settings, false));
        assertEquals(0.35, ScriptCall.parameters(settings, false).get("dab_threshold"));
        assertEquals("default", ScriptCall.parameters(ScoreSettings.defaults(null), false).get("dab_threshold"));
    }

    @Test
    void workflowParametersSayDefaultOrNone() {
        var params = ScriptCall.parameters(ScoreSettings.defaults(Magnification.X10), false);
        assertEquals("10x", params.get("magnification"));
        assertEquals("all", params.get("annotations"));
        assertEquals("default", params.get("size_thresh"));
        assertEquals("none", params.get("size_thresh_upper"));
        assertEquals("none", params.get("marker_thresh"));
        var auto = ScriptCall.parameters(new ScoreSettings(null, 120, Threshold.of(9), Threshold.DEFAULT, Threshold.of(0)), true);
        assertEquals("auto", auto.get("magnification"));
        assertEquals(120, auto.get("seg_thresh"));
        assertEquals("9", auto.get("size_thresh"));
        assertEquals("default", auto.get("size_thresh_upper"));
        assertEquals("0", auto.get("marker_thresh"));
    }
}
