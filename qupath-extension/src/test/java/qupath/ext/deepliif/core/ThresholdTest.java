package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonNull;

import org.junit.jupiter.api.Test;

class ThresholdTest {

    @Test
    void parsesNumbersDefaultNoneAndAbsentValues() {
        assertEquals(Threshold.of(30), Threshold.parse("30", Threshold.NONE));
        assertEquals(Threshold.of(30), Threshold.parse(" 30 ", Threshold.NONE));
        assertEquals(Threshold.of(30), Threshold.parse(30, Threshold.NONE));
        assertEquals(Threshold.of(30), Threshold.parse(30.0, Threshold.NONE), "Groovy may pass 30.0");
        assertEquals(Threshold.of(0), Threshold.parse(0L, Threshold.NONE));
        assertEquals(Threshold.DEFAULT, Threshold.parse("Default", Threshold.NONE));
        assertEquals(Threshold.NONE, Threshold.parse("none", Threshold.DEFAULT));
        assertEquals(Threshold.NONE, Threshold.parse(null, Threshold.NONE));
        assertEquals(Threshold.DEFAULT, Threshold.parse(null, Threshold.DEFAULT));
        assertEquals(Threshold.DEFAULT, Threshold.parse("  ", Threshold.DEFAULT));
        assertEquals(Threshold.of(7), Threshold.parse(Threshold.of(7), Threshold.NONE));
    }

    @Test
    void rejectsFractionsNegativesAndOtherText() {
        assertThrows(IllegalArgumentException.class, () -> Threshold.parse("1.5", Threshold.NONE));
        assertThrows(IllegalArgumentException.class, () -> Threshold.parse(1.5, Threshold.NONE));
        assertThrows(IllegalArgumentException.class, () -> Threshold.parse(-1, Threshold.NONE));
        assertThrows(IllegalArgumentException.class, () -> Threshold.parse("-1", Threshold.NONE));
        assertThrows(IllegalArgumentException.class, () -> Threshold.parse("auto", Threshold.NONE));
        assertThrows(IllegalArgumentException.class, () -> new Threshold(Threshold.Kind.DEFAULT, 3));
    }

    @Test
    void writesJsonQueryScriptAndPreferenceText() {
        assertEquals("30", Threshold.of(30).toJson().toString());
        assertEquals("\"default\"", Threshold.DEFAULT.toJson().toString());
        assertEquals(JsonNull.INSTANCE, Threshold.NONE.toJson());
        assertEquals("30", Threshold.of(30).toQuery());
        assertEquals("default", Threshold.DEFAULT.toQuery());
        assertNull(Threshold.NONE.toQuery());
        assertEquals("\"default\"", Threshold.DEFAULT.toScript());
        assertEquals("null", Threshold.NONE.toScript());
        for (Threshold t : new Threshold[] {Threshold.of(12), Threshold.DEFAULT, Threshold.NONE})
            assertEquals(t, Threshold.parse(t.toString(), Threshold.NONE), "preference text reads back");
        assertTrue(Threshold.DEFAULT.isApplied());
        assertFalse(Threshold.NONE.isApplied());
    }
}
