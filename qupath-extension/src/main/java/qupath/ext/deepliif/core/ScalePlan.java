package qupath.ext.deepliif.core;

/**
 * How the extension reads an annotation for the upload fallback (when the server cannot open the
 * image file itself): the downsample to read the pixels at and the magnification to tell the
 * server. When the server reads the file, it plans this itself and reports it in the score
 * record's {@code placement}.
 *
 * @param downsample    full-resolution pixels per pixel read (>= 1)
 * @param magnification magnification of the pixels read (sent as {@code resolution})
 * @param warning       what the user should know (uncalibrated image, image coarser than asked),
 *                      null when the plan is exactly what was asked
 */
public record ScalePlan(double downsample, Magnification magnification, String warning) {

    /**
     * Plan reading an image at the {@code target} magnification.
     * <p>
     * downsample = target µm/px / image µm/px. An uncalibrated image (pixel size NaN or not
     * positive) is read at full resolution and assumed to be at {@code target}. An image coarser
     * than {@code target} (downsample below 1) is read at full resolution and sent with the
     * magnification nearest its own pixel size, rather than upsampled. With no target (the
     * server's choice), the image is read at full resolution at the magnification nearest its
     * pixel size, or assumed 40x when it has none.
     *
     * @param target   magnification asked for, null for "auto"
     * @param imageMpp the image's (averaged) pixel size in µm/px; NaN when uncalibrated
     * @return the plan
     */
    public static ScalePlan plan(Magnification target, double imageMpp) {
        boolean calibrated = imageMpp > 0 && !Double.isInfinite(imageMpp);
        if (target == null && calibrated)
            return new ScalePlan(1.0, Magnification.nearest(imageMpp), null);
        if (target == null)
            return new ScalePlan(1.0, Magnification.X40, "The image has no pixel size in µm: it is read at full resolution "
                    + "and assumed to be at 40x. Set the pixel size (Image tab) or choose a magnification.");
        if (!calibrated)
            return new ScalePlan(1.0, target, "The image has no pixel size in µm: it is read at full resolution and "
                    + "assumed to be at " + target + ". Set the pixel size (Image tab) to score at the right scale.");
        double downsample = target.micronsPerPixel() / imageMpp;
        if (downsample >= 1.0)
            return new ScalePlan(downsample, target, null);
        Magnification own = Magnification.nearest(imageMpp);
        String warning = own == target ? null : String.format(java.util.Locale.ROOT,
                "The image (%.3f µm/px) is coarser than %s: it is scored at full resolution as %s.", imageMpp, target, own);
        return new ScalePlan(1.0, own, warning);
    }
}
