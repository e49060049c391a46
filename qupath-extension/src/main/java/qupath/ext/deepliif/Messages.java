package qupath.ext.deepliif;

/** User-facing strings of the extension, in one place. */
final class Messages {

    static final String EXTENSION_NAME = "DeepLIIF";
    static final String EXTENSION_DESCRIPTION = "Score IHC annotations with DeepLIIF running locally "
            + "(napari-deepliif's engine server): cells as Positive/Negative detections, score as measurements.";
    static final String MENU = "Extensions>" + EXTENSION_NAME;

    static final String SCORE_SELECTED = "Score selected annotations";
    static final String SCORE_ALL = "Score all annotations";
    static final String PREFERENCES = "Preferences";

    static final String TITLE = "DeepLIIF";
    static final String TITLE_ERROR = "DeepLIIF: scoring failed";
    static final String TITLE_PREFERENCES = "DeepLIIF preferences";

    static final String NO_IMAGE = "Open an image first.";
    static final String NOT_RGB = "DeepLIIF scores brightfield IHC: the image must be 8-bit RGB.";
    static final String NO_SELECTED = "Select one or more area annotations first (or use '" + SCORE_ALL + "').";
    static final String NO_ANNOTATIONS = "The image has no area annotations: draw one around the tissue to score.";
    static final String STAIN_ENGINE = "The server runs the classical 'stain' engine (colour deconvolution), "
            + "not DeepLIIF: install a DeepLIIF model ('napari-deepliif models fetch deepliif-latest') and restart "
            + "the server for DeepLIIF results.";
    static final String DAB_NOT_FOR_DEEPLIIF = "A DAB threshold is set (Preferences or script), but the server runs "
            + "DeepLIIF, which classifies cells by its own Seg map: clear the DAB threshold, or serve the stain engine.";
    static final String CANCELLED = "Scoring was cancelled; annotations already finished keep their results.";
    static final String RUNNING = "Scoring %d annotation(s) on %s...";
    static final String PROGRESS = "Annotation %d of %d";
    static final String DONE = "Scored %d annotation(s): %d cells, %d positive.";
    static final String SKIPPED = "Skipped %d annotation(s) (outside the image, or refused by the server).";
    static final String REFUSED = "An annotation was skipped: %s";
    static final String UPLOADED = "The server did not read the image file (%s): the annotation's pixels were read once "
            + "and uploaded instead.";
    static final String CANCEL = "Cancel";

    static final String PREF_URL = "Server URL";
    static final String PREF_URL_HELP = "Where 'napari-deepliif serve' listens (default http://127.0.0.1:8642).";
    static final String PREF_TOKEN = "Token";
    static final String PREF_TOKEN_HELP = "Leave empty to read the token file %s (written by the server on its first start; "
            + "'napari-deepliif token' prints it).";
    static final String PREF_MAGNIFICATION = "Magnification";
    static final String PREF_MAGNIFICATION_HELP = "The magnification to score at; 'auto': the server picks it from the "
            + "image's pixel size. The server reads the pixels at the matching pyramid level and downsample.";
    static final String PREF_SEG = "Segmentation threshold";
    static final String PREF_SIZE = "Size threshold (px)";
    static final String PREF_SIZE_UPPER = "Upper size threshold (px)";
    static final String PREF_MARKER = "Marker threshold";
    static final String PREF_SEG_HELP = "A whole number, or empty for the server's default.";
    static final String PREF_SIZE_HELP = "A whole number of pixels, or 'default' (or empty) for DeepLIIF's rule, "
            + "computed by the server over the whole annotation.";
    static final String PREF_OPTIONAL_HELP = "A whole number, 'default' for DeepLIIF's rule (computed by the server over "
            + "the whole annotation), or 'none' (or empty) to not apply it.";
    static final String PREF_DAB = "DAB threshold (OD, stain engine)";
    static final String PREF_DAB_HELP = "For a server running the classical stain engine: a nucleus whose mean DAB optical "
            + "density is above this is positive (empty: the server's default, 0.2). Raise it where hematoxylin-only "
            + "nuclei come out positive. A DeepLIIF server refuses it (DeepLIIF classifies by its own Seg map).";
    static final String PREF_COMPARTMENT = "Positive by";
    static final String PREF_COMPARTMENT_HELP = "What decides that a cell is positive: 'class' the engine's class, or the "
            + "mean DAB optical density of the nucleus (Ki67, ER, PR), cytoplasm, membrane (PD-L1, HER2) or whole cell, "
            + "measured by the server on the IHC image. The proportion is over all cells the engine detects in the "
            + "annotation: there is no tumour / non-tumour classifier.";
    static final String PREF_POSITIVE_OD = "Positive above (DAB OD)";
    static final String PREF_POSITIVE_OD_HELP = "A compartment mode's cell is positive (1+) above this DAB OD (empty: 0.2).";
    static final String PREF_BINS = "2+,3+ above (DAB OD)";
    static final String PREF_BINS_HELP = "Two DAB ODs, e.g. 0.4,0.6 (QuPath's), for 1+/2+/3+ counts and the H-score; "
            + "empty: no bins.";
    static final String PREF_COMPLETENESS = "Min. membrane completeness (%)";
    static final String PREF_COMPLETENESS_HELP = "For membrane markers: a positive cell also needs this share of its "
            + "membrane ring above the positive OD; empty: not used.";
    static final String PREF_EXPANSION = "Cell expansion (µm)";
    static final String PREF_EXPANSION_HELP = "How far nuclei are grown into cells (stopped where neighbours meet) for the "
            + "cytoplasm, membrane and cell measurements; empty: the server's 5 µm.";
    static final String BAD_THRESHOLD = "'%s': %s";

    private Messages() {
    }
}
