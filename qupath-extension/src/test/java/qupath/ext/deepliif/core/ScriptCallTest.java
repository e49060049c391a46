package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import org.junit.jupiter.api.Test;

class ScriptCallTest {

    @Test
    void replayLineCallsTheScriptingApiWithTheRunsSettingsAndNoSecrets() {
        var settings = new ScoreSettings(Magnification.X20, 100, null, 900, 150);
        String line = ScriptCall.scoreAnnotations(settings, true);
        assertEquals("qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations(\"20x\", true, 100, null, 900, 150)", line);
        assertFalse(line.toLowerCase().contains("token"));
        assertEquals("qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations(\"40x\", false, null, null, null, null)",
                ScriptCall.scoreAnnotations(ScoreSettings.defaults(Magnification.X40), false));
    }

    @Test
    void workflowParametersSayDefaultOrNone() {
        var params = ScriptCall.parameters(ScoreSettings.defaults(Magnification.X10), false);
        assertEquals("10x", params.get("magnification"));
        assertEquals("all", params.get("annotations"));
        assertEquals("default", params.get("size_thresh"));
        assertEquals("none", params.get("marker_thresh"));
    }
}
