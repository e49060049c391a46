package qupath.ext.deepliif.core;

import java.util.List;

/**
 * The scored cells of one region (an annotation) and their score record.
 *
 * @param cells        the counted cells, level-0 pixels
 * @param score        the score record; its counts are those of {@code cells}
 * @param uploadReason null when the server read the image file itself; else why the extension
 *                     uploaded the pixels instead (e.g. the server's reason it could not open the file)
 * @param scaleWarning what the user should know about the magnification of uploaded pixels
 *                     (see {@link ScalePlan#warning()}), null when there is nothing to say
 */
public record RegionResult(List<Cell> cells, ScoreRecord score, String uploadReason, String scaleWarning) {

    /** @return whether the pixels were uploaded rather than read by the server */
    public boolean uploaded() {
        return uploadReason != null;
    }

    /** @return number of cells */
    public int numTotal() {
        return score.scoring().numTotal();
    }

    /** @return number of marker-positive cells */
    public int numPositive() {
        return score.scoring().numPos();
    }
}
