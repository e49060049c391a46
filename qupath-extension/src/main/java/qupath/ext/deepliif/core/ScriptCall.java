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
     * @return e.g. {@code qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations("40x", true, null, null, null, null)}
     */
    public static String scoreAnnotations(ScoreSettings settings, boolean selectedOnly) {
        return SCRIPTING_CLASS + ".scoreAnnotations(\"" + settings.magnification().label() + "\", " + selectedOnly + ", "
                + settings.segThresh() + ", " + settings.sizeThresh() + ", " + settings.sizeThreshUpper() + ", "
                + settings.markerThresh() + ")";
    }

    /**
     * @param settings     the settings of the run
     * @param selectedOnly whether only the selected annotations were scored
     * @return the parameters shown in the workflow history
     */
    public static Map<String, Object> parameters(ScoreSettings settings, boolean selectedOnly) {
        Map<String, Object> map = new LinkedHashMap<>();
        map.put("magnification", settings.magnification().label());
        map.put("annotations", selectedOnly ? "selected" : "all");
        map.put("seg_thresh", settings.segThresh() == null ? "default" : settings.segThresh());
        map.put("size_thresh", settings.sizeThresh() == null ? "default" : settings.sizeThresh());
        map.put("size_thresh_upper", settings.sizeThreshUpper() == null ? "none" : settings.sizeThreshUpper());
        map.put("marker_thresh", settings.markerThresh() == null ? "none" : settings.markerThresh());
        return map;
    }
}
