package qupath.ext.deepliif.core;

import org.locationtech.jts.geom.Geometry;
import org.locationtech.jts.geom.util.AffineTransformation;

/**
 * Maps pixels of an image read at a downsample back to full-resolution image pixels:
 * {@code full = offset + scale * read}.
 *
 * @param offsetX full-resolution x of the read image's left edge
 * @param offsetY full-resolution y of the read image's top edge
 * @param scale   the downsample the image was read at
 */
public record CoordinateMapping(double offsetX, double offsetY, double scale) {

    /** The identity mapping. */
    public static final CoordinateMapping IDENTITY = new CoordinateMapping(0, 0, 1);

    /** @return full-resolution x of read x {@code x} */
    public double x(double x) {
        return offsetX + scale * x;
    }

    /** @return full-resolution y of read y {@code y} */
    public double y(double y) {
        return offsetY + scale * y;
    }

    /**
     * @param geometry geometry in read pixels
     * @return a new geometry in full-resolution pixels
     */
    public Geometry apply(Geometry geometry) {
        if (equals(IDENTITY))
            return geometry.copy();
        AffineTransformation t = new AffineTransformation(scale, 0, offsetX, 0, scale, offsetY);
        return t.transform(geometry);
    }
}
