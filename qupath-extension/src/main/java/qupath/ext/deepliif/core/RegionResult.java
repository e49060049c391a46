package qupath.ext.deepliif.core;

import java.math.BigDecimal;
import java.math.RoundingMode;
import java.util.List;
import java.util.Map;

/**
 * The cells of one region (an annotation's bounds), after duplicate removal and masking.
 *
 * @param cells      cells in full-resolution image pixels, each kept once
 * @param tiles      the tiles sent
 * @param tileScores the server's {@code score} of each tile (thresholds used per tile)
 * @param provenance engine, model, model_hash, version, resolution of the server's last answer
 * @param settings   settings sent
 * @param scale      how the region was read
 */
public record RegionResult(List<Cell> cells, List<Tile> tiles, List<Map<String, Double>> tileScores,
                           Map<String, String> provenance, ScoreSettings settings, ScalePlan scale) {

    /** @return number of cells */
    public int numTotal() {
        return cells.size();
    }

    /** @return number of marker-positive cells */
    public int numPositive() {
        return (int) cells.stream().filter(Cell::isPositive).count();
    }

    /** @return number of marker-negative cells */
    public int numNegative() {
        return numTotal() - numPositive();
    }

    /**
     * @return positive cells in percent of all cells, as DeepLIIF's {@code percent_pos}: the
     *         double {@code num_pos / num_total * 100} rounded half-even to 0.1 (Python's
     *         {@code round(x, 1)}), 0 when no cell is positive
     */
    public double percentPositive() {
        int positive = numPositive();
        if (positive == 0)
            return 0;
        return new BigDecimal(positive / (double) numTotal() * 100).setScale(1, RoundingMode.HALF_EVEN).doubleValue();
    }
}
