package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;

import com.google.gson.JsonObject;

import org.junit.jupiter.api.Test;

class ScoreSettingsTest {

    @Test
    void bodyCarriesEveryThresholdAsNumberDefaultOrNull() {
        JsonObject body = new JsonObject();
        new ScoreSettings(Magnification.X20, 100, Threshold.DEFAULT, Threshold.DEFAULT, Threshold.of(150)).addTo(body);
        assertEquals("{\"resolution\":\"20x\",\"seg_thresh\":100,\"size_thresh\":\"default\","
                + "\"size_thresh_upper\":\"default\",\"marker_thresh\":150}", body.toString());
        JsonObject auto = new JsonObject();
        ScoreSettings.defaults(null).addTo(auto);
        assertEquals("{\"resolution\":null,\"size_thresh\":\"default\",\"size_thresh_upper\":null,\"marker_thresh\":null}",
                auto.toString(), "no seg_thresh: the server's default; null: not applied");
    }

    @Test
    void queryCarriesSettingsOriginDownsampleAndRequestId() {
        ScoreSettings settings = new ScoreSettings(Magnification.X10, 100, Threshold.DEFAULT, Threshold.of(900), Threshold.NONE);
        Map<String, String> q = settings.queryParameters(Magnification.X10, 388, 0, 4, "id 1");
        assertEquals(Map.of("resolution", "10x", "seg_thresh", "100", "size_thresh", "default", "size_thresh_upper", "900",
                "origin_x", "388", "origin_y", "0", "downsample", "4", "request_id", "id 1"), q);
        assertEquals("resolution=10x&seg_thresh=100&size_thresh=default&size_thresh_upper=900&origin_x=388&origin_y=0"
                + "&downsample=4&request_id=id+1", ScoreSettings.encode(q));
        Map<String, String> defaults = new ScoreSettings(null, null, Threshold.of(5), Threshold.DEFAULT, Threshold.DEFAULT)
                .queryParameters(Magnification.X40, 0, 0, 1.978, null);
        assertEquals("40x", defaults.get("resolution"), "an upload names the magnification of its pixels");
        assertFalse(defaults.containsKey("seg_thresh"));
        assertEquals("5", defaults.get("size_thresh"));
        assertEquals("default", defaults.get("size_thresh_upper"));
        assertEquals("default", defaults.get("marker_thresh"));
        assertEquals("1.978", defaults.get("downsample"));
        assertFalse(ScoreSettings.defaults(null).queryParameters(Magnification.X20, 0, 0, 1, null).containsKey("marker_thresh"));
    }

    @Test
    void aDabThresholdIsSentOnlyWhenSetAndMustBeAnOpticalDensity() {
        ScoreSettings settings = ScoreSettings.defaults(Magnification.X40).withDabThreshold(0.4);
        JsonObject body = new JsonObject();
        settings.addTo(body);
        assertEquals(0.4, body.get("dab_threshold").getAsDouble());
        assertEquals("0.4", settings.queryParameters(Magnification.X40, 0, 0, 1, null).get("dab_threshold"));
        JsonObject none = new JsonObject();
        ScoreSettings.defaults(Magnification.X40).addTo(none);
        assertFalse(none.has("dab_threshold"), "left out: the server's default");
        assertFalse(ScoreSettings.defaults(null).queryParameters(Magnification.X40, 0, 0, 1, null).containsKey("dab_threshold"));
        assertEquals(0.25, ScoreSettings.dabThreshold(" 0.25 "));
        assertNull(ScoreSettings.dabThreshold(""));
        assertNull(ScoreSettings.dabThreshold(null));
        for (String bad : new String[] {"-0.1", "NaN", "Infinity", "high"})
            assertThrows(IllegalArgumentException.class, () -> ScoreSettings.dabThreshold(bad), bad);
        assertThrows(IllegalArgumentException.class, () -> settings.withDabThreshold(-1.0));
    }

    @Test
    void sizeThresholdMustBeAppliedAndMagnificationMayBeAuto() {
        assertThrows(IllegalArgumentException.class,
                () -> new ScoreSettings(null, null, Threshold.NONE, Threshold.NONE, Threshold.NONE));
        assertThrows(IllegalArgumentException.class,
                () -> new ScoreSettings(null, null, Threshold.DEFAULT, null, Threshold.NONE));
        assertNull(ScoreSettings.magnification("auto"));
        assertNull(ScoreSettings.magnification(null));
        assertEquals(Magnification.X20, ScoreSettings.magnification("20X"));
        assertThrows(IllegalArgumentException.class, () -> ScoreSettings.magnification("5x"));
        assertEquals("auto", ScoreSettings.defaults(null).magnificationLabel());
    }
}
