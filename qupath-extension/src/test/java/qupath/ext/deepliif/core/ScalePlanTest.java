package qupath.ext.deepliif.core;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class ScalePlanTest {

    @ParameterizedTest
    @CsvSource({"40x, 0.25, 1.0", "20x, 0.25, 2.0", "10x, 0.25, 4.0", "20x, 0.5, 1.0", "10x, 0.5, 2.0", "40x, 0.2, 1.25"})
    void downsampleIsTargetPixelSizeOverImagePixelSize(String target, double mpp, double downsample) {
        ScalePlan plan = ScalePlan.plan(Magnification.parse(target), mpp);
        assertEquals(downsample, plan.downsample(), 1e-12);
        assertEquals(Magnification.parse(target), plan.magnification());
        assertNull(plan.warning());
    }

    @Test
    void uncalibratedImagesAreReadAtFullResolutionWithAWarning() {
        ScalePlan plan = ScalePlan.plan(Magnification.X20, Double.NaN);
        assertEquals(1.0, plan.downsample());
        assertEquals(Magnification.X20, plan.magnification());
        assertNotNull(plan.warning());
        assertTrue(plan.warning().contains("no pixel size"));
        assertNotNull(ScalePlan.plan(Magnification.X40, 0).warning());
    }

    @Test
    void coarserImagesAreNotUpsampledButSentAtTheirOwnMagnification() {
        ScalePlan plan = ScalePlan.plan(Magnification.X40, 0.5);
        assertEquals(1.0, plan.downsample());
        assertEquals(Magnification.X20, plan.magnification());
        assertTrue(plan.warning().contains("20x"));
        ScalePlan close = ScalePlan.plan(Magnification.X40, 0.2631);
        assertEquals(Magnification.X40, close.magnification());
        assertNull(close.warning());
    }

    @Test
    void autoScoresAtTheImagesOwnMagnificationAtFullResolution() {
        ScalePlan plan = ScalePlan.plan(null, 0.5);
        assertEquals(new ScalePlan(1.0, Magnification.X20, null), plan);
        ScalePlan uncalibrated = ScalePlan.plan(null, Double.NaN);
        assertEquals(1.0, uncalibrated.downsample());
        assertEquals(Magnification.X40, uncalibrated.magnification());
        assertTrue(uncalibrated.warning().contains("no pixel size"));
    }

    @Test
    void nearestMagnificationComparesOnALogScale() {
        assertEquals(Magnification.X40, Magnification.nearest(0.35));
        assertEquals(Magnification.X20, Magnification.nearest(0.36));
        assertEquals(Magnification.X10, Magnification.nearest(3.0));
        assertThrows(IllegalArgumentException.class, () -> Magnification.nearest(-1));
        assertEquals(Magnification.X10, Magnification.parse(" 10X "));
        assertThrows(IllegalArgumentException.class, () -> Magnification.parse("5x"));
    }
}
