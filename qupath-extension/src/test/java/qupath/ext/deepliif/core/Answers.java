package qupath.ext.deepliif.core;

import java.util.Locale;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;

/** Scoring answers in the server's layout (FeatureCollection + score record), for tests without a server. */
final class Answers {

    private Answers() {
    }

    /** A square cell at (x, y) of side {@code size}, level-0 pixels. */
    static String cell(double x, double y, double size, boolean positive) {
        return String.format(Locale.ROOT, """
                {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[%s, %s], [%s, %s], [%s, %s], [%s, %s], [%s, %s]]]},
                 "properties": {"objectType": "detection", "classification": {"name": "%s", "color": [0, 0, 0]},
                                "measurements": {"Area px": %s}}}""",
                x, y, x + size, y, x + size, y + size, x, y + size, x, y, positive ? "Positive" : "Negative", size * size);
    }

    /**
     * @param downsample the placement's downsample
     * @param cells      features (see {@link #cell})
     * @return an answer whose counts are those of the cells
     */
    static JsonObject answer(double downsample, String... cells) {
        int positive = 0;
        for (String c : cells)
            positive += c.contains("\"Positive\"") ? 1 : 0;
        int total = cells.length;
        double percent = ScoreRecord.Scoring.percent(positive, total);
        String text = String.format(Locale.ROOT, """
                {"type": "FeatureCollection", "features": [%s],
                 "score": {"format": "napari-deepliif/score", "format_version": 1,
                           "scoring": {"num_total": %d, "num_pos": %d, "num_neg": %d, "percent_pos": %s,
                                       "seg_thresh": 120, "size_thresh": 31, "size_thresh_upper": null, "marker_thresh": 90},
                           "provenance": {"engine": "stain", "model": null, "model_hash": null, "version": "0.2.0",
                                          "statistics": {"stain_threshold": 0.3}},
                           "placement": {"level": 1, "downsample": %s, "mpp": 0.5, "resolution": "20x",
                                         "origin": [50, 40], "shape": [300, 400], "region": null},
                           "regions": {}, "run": {}}}""",
                String.join(",", cells), total, positive, total - positive, percent, downsample);
        return JsonParser.parseString(text).getAsJsonObject();
    }
}
