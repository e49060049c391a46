package qupath.ext.deepliif.core;

import java.util.Locale;

/**
 * The magnifications DeepLIIF scores at, with their nominal pixel sizes (0.25/0.5/1.0 µm/px, as
 * the engine's {@code MICRONS_PER_PIXEL_BY_RESOLUTION}; the server checks the label it is sent).
 */
public enum Magnification {
    /** 40x, 0.25 µm/px. */
    X40("40x", 0.25),
    /** 20x, 0.5 µm/px. */
    X20("20x", 0.5),
    /** 10x, 1.0 µm/px. */
    X10("10x", 1.0);

    private final String label;
    private final double micronsPerPixel;

    Magnification(String label, double micronsPerPixel) {
        this.label = label;
        this.micronsPerPixel = micronsPerPixel;
    }

    /** @return "40x", "20x" or "10x": the server's {@code resolution} value */
    public String label() {
        return label;
    }

    /** @return nominal pixel size in µm/px */
    public double micronsPerPixel() {
        return micronsPerPixel;
    }

    @Override
    public String toString() {
        return label;
    }

    /**
     * @param label "40x", "20x" or "10x" (case-insensitive)
     * @return the magnification
     * @throws IllegalArgumentException for any other label
     */
    public static Magnification parse(String label) {
        String key = label == null ? "" : label.trim().toLowerCase(Locale.ROOT);
        for (Magnification m : values())
            if (m.label.equals(key))
                return m;
        throw new IllegalArgumentException("Unknown magnification '" + label + "': choose 40x, 20x or 10x");
    }

    /**
     * The magnification whose nominal pixel size is nearest {@code mpp} on a log scale (the
     * engine's {@code resolution_from_mpp} rule: 0.35 µm/px is nearer 40x than 20x).
     *
     * @param mpp pixel size in µm/px, positive
     * @return the nearest magnification
     */
    public static Magnification nearest(double mpp) {
        if (!(mpp > 0) || Double.isInfinite(mpp))
            throw new IllegalArgumentException("Pixel size must be a positive number of µm/px, got " + mpp);
        Magnification best = X40;
        for (Magnification m : values())
            if (Math.abs(Math.log(mpp / m.micronsPerPixel)) < Math.abs(Math.log(mpp / best.micronsPerPixel)))
                best = m;
        return best;
    }
}
