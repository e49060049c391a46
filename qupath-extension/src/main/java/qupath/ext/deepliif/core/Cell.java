package qupath.ext.deepliif.core;

import java.util.Map;

import org.locationtech.jts.geom.Coordinate;
import org.locationtech.jts.geom.Geometry;

/**
 * One cell the server found (or one point of a points model).
 *
 * @param geometry       outline (a JTS Polygon or MultiPolygon), or a points model's JTS Point, in level-0 image pixels
 * @param classification "Positive" or "Negative" (a points model: its class name)
 * @param measurements   the server's numeric per-cell measurements (name -> value)
 */
public record Cell(Geometry geometry, String classification, Map<String, Double> measurements) {

    /** Class name of marker-positive cells. */
    public static final String POSITIVE = "Positive";
    /** Class name of marker-negative cells. */
    public static final String NEGATIVE = "Negative";

    /** @return whether the cell is marker-positive */
    public boolean isPositive() {
        return POSITIVE.equals(classification);
    }

    /** @return area-weighted centroid of the outline */
    public Coordinate centroid() {
        return geometry.getCentroid().getCoordinate();
    }
}
