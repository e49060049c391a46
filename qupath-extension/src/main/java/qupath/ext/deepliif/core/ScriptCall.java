package qupath.ext.deepliif.core;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The Groovy line that replays a run (QuPath's workflow history turns it into "Create script").
 * It calls the extension's scripting API; the server URL and token are not written into the
 * script (they come from the preferences or the token file when it runs).
 */
public final class ScriptCall {

    /** The scripting class the line calls. */
    public static final String SCRIPTING_CLASS = "qupath.ext.deepliif.DeepLIIFScripting";

    private ScriptCall() {
    }

    /**
     * @param settings     the settings of the run
     * @param selectedOnly whether only the selected annotations were scored
     * @return e.g. {@code qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations("40x", true, null, "default", null, 120)}:
     *         magnification ("auto" for the server's choice), selected only, then the segmentation,
     *         size, upper size and marker thresholds, each a number, {@code "default"} or
     *         {@code null} (segmentation: the server's default; upper size and marker: not applied),
     *         then, when set, the stain engine's DAB threshold (OD; {@code null}: the server's default)
     *         and the compartment settings as a map ({@link CompartmentSettings#toScript})
     */
    public static String scoreAnnotations(ScoreSettings settings, boolean selectedOnly) {
        boolean byClass = settings.compartment().equals(CompartmentSettings.CLASS);
        String dab = settings.dabThreshold() == null ? "null" : ScoreSettings.number(settings.dabThreshold());
        return SCRIPTING_CLASS + ".scoreAnnotations(\"" + settings.magnificationLabel() + "\", " + selectedOnly + ", "
                + settings.segThresh() + ", " + settings.sizeThresh().toScript() + ", "
                + settings.sizeThreshUpper().toScript() + ", " + settings.markerThresh().toScript()
                + (settings.dabThreshold() == null && byClass ? "" : ", " + dab)
                + (byClass ? "" : ", " + settings.compartment().toScript()) + ")";
    }

    /**
     * @param settings     the settings of the run
     * @param selectedOnly whether only the selected annotations were scored
     * @return the parameters shown in the workflow history
     */
    public static Map<String, Object> parameters(ScoreSettings settings, boolean selectedOnly) {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("magnification", settings.magnificationLabel());
        map.put("annotations", selectedOnly ? "selected" : "all");
        map.put("seg_thresh", settings.segThresh() == null ? Threshold.DEFAULT_TEXT : settings.segThresh());
        map.put("size_thresh", settings.sizeThresh().toString());
        map.put("size_thresh_upper", settings.sizeThreshUpper().toString());
        map.put("marker_thresh", settings.markerThresh().toString());
        map.put("dab_threshold", settings.dabThreshold() == null ? Threshold.DEFAULT_TEXT : settings.dabThreshold());
        map.putAll(settings.compartment().parameters());
        return map;
    }
}
