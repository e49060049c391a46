package qupath.ext.deepliif.core;

import java.util.List;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/**
 * The answer of {@code POST /api/regions/score} or {@code POST /api/score}: the counted cells
 * (a GeoJSON FeatureCollection in level-0 image pixels) and the score record.
 *
 * @param cells the counted cells, in level-0 pixels
 * @param score the server's score record
 */
public record ScoreResponse(List<Cell> cells, ScoreRecord score) {

    /**
     * @param body the parsed answer
     * @return the response
     * @throws DeepLIIFException if the answer is not a FeatureCollection with a score record, or
     *                           its cell count disagrees with {@code scoring.num_total}
     */
    public static ScoreResponse fromJson(JsonObject body) throws DeepLIIFException {
        List<Cell> cells = List.copyOf(GeoJsonCells.read(body));
        JsonElement score = body.get("score");
        if (score == null || !score.isJsonObject())
            throw new DeepLIIFException(0, "Unexpected answer", "The server's answer has no score record: is it a "
                    + "napari-deepliif server of the version this extension was built for?");
        ScoreRecord record = ScoreRecord.fromJson(score.getAsJsonObject());
        if (record.scoring().numTotal() != cells.size())
            throw new DeepLIIFException(0, "Unexpected answer", "The server sent " + cells.size()
                    + " cells but scoring.num_total = " + record.scoring().numTotal() + ": the answer is inconsistent.");
        return new ScoreResponse(cells, record);
    }
}
