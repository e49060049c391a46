package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;

import com.google.gson.JsonObject;

import org.junit.jupiter.api.Test;

class CompartmentSettingsTest {

    private static final CompartmentSettings MEMBRANE = new CompartmentSettings("membrane", 0.35, 0.4, 0.6, 0.5, 3.0);

    @Test
    void aCompartmentModeIsSentInTheServersNamesAndTheClassModeSendsNothing() {
        JsonObject body = new JsonObject();
        ScoreSettings.defaults(Magnification.X40).withCompartment(MEMBRANE).addTo(body);
        assertEquals("membrane", body.get("compartment").getAsString());
        assertEquals(0.35, body.get("positive_od").getAsDouble());
        assertEquals("[0.4,0.6]", body.get("bins_od").toString());
        assertEquals(0.5, body.get("min_completeness").getAsDouble());
        assertEquals(3.0, body.get("expansion_um").getAsDouble());
        JsonObject plain = new JsonObject();
        ScoreSettings.defaults(Magnification.X40).addTo(plain);
        for (String key : List.of("compartment", "positive_od", "bins_od", "min_completeness", "expansion_um"))
            assertFalse(plain.has(key), key + ": a server without compartments must still take the request");
    }

    @Test
    void anUploadRepeatsTheBinsAsTheServerReadsThem() {
        var query = ScoreSettings.defaults(Magnification.X40).withCompartment(MEMBRANE)
                .queryParameters(Magnification.X40, 0, 0, 1, null);
        assertEquals("0.4,0.6", query.get("bins_od"));
        String encoded = ScoreSettings.encode(query);
        assertTrue(encoded.contains("compartment=membrane&positive_od=0.35&bins_od=0.4&bins_od=0.6&min_completeness=0.5"
                + "&expansion_um=3"), encoded);
    }

    @Test
    void scriptsAndPreferencesReadTheSameSettings() {
        assertEquals(MEMBRANE, CompartmentSettings.fromMap(Map.of("compartment", "membrane", "positive_od", 0.35,
                "bins_od", List.of(0.4, 0.6), "min_completeness", 0.5, "expansion_um", 3)));
        assertEquals(MEMBRANE, CompartmentSettings.fromText("membrane", "0.35", "0.4, 0.6", "50", "3"));
        assertEquals(CompartmentSettings.CLASS, CompartmentSettings.fromText("", "", "", "", ""));
        assertEquals(CompartmentSettings.CLASS, CompartmentSettings.fromMap(null));
        assertEquals("[compartment: \"membrane\", positive_od: 0.35, bins_od: [0.4, 0.6], min_completeness: 0.5, "
                + "expansion_um: 3]", MEMBRANE.toScript());
        var line = ScriptCall.scoreAnnotations(ScoreSettings.defaults(Magnification.X40).withCompartment(MEMBRANE), true);
        assertEquals("qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations(\"40x\", true, null, \"default\", null, null, "
                + "null, " + MEMBRANE.toScript() + ")", line);
        assertEquals("membrane", ScriptCall.parameters(ScoreSettings.defaults(null).withCompartment(MEMBRANE), false)
                .get("compartment"));
    }

    @Test
    void badSettingsSayWhatIsWrong() {
        var unknown = assertThrows(IllegalArgumentException.class, () -> CompartmentSettings.fromText("stroma", "", "", "", ""));
        assertTrue(unknown.getMessage().contains("membrane"), unknown.getMessage());
        assertThrows(IllegalArgumentException.class, () -> CompartmentSettings.fromText("membrane", "", "0.4", "", ""));
        assertThrows(IllegalArgumentException.class, () -> CompartmentSettings.fromText("membrane", "", "", "150", ""));
        assertThrows(IllegalArgumentException.class, () -> CompartmentSettings.fromText("membrane", "high", "", "", ""));
        assertThrows(IllegalArgumentException.class, () -> CompartmentSettings.fromText("membrane", "", "", "", "-1"));
        assertThrows(IllegalArgumentException.class, () -> CompartmentSettings.fromMap(Map.of("expansion", 3)));
    }
}
