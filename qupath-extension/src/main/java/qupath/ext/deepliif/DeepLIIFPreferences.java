package qupath.ext.deepliif;

import java.net.URI;
import java.util.List;

import javafx.beans.property.StringProperty;
import qupath.ext.deepliif.core.CompartmentSettings;
import qupath.ext.deepliif.core.DeepLIIFClient;
import qupath.ext.deepliif.core.DeepLIIFException;
import qupath.ext.deepliif.core.Magnification;
import qupath.ext.deepliif.core.ScoreSettings;
import qupath.ext.deepliif.core.ServerConfig;
import qupath.ext.deepliif.core.Threshold;
import qupath.fx.dialogs.Dialogs;
import qupath.lib.gui.prefs.PathPrefs;
import qupath.lib.gui.tools.GuiTools;
import qupath.lib.plugins.parameters.ParameterList;

/**
 * The extension's persistent preferences (QuPath's {@link PathPrefs}), and their dialog.
 * Thresholds are kept as text: a whole number, "default" (the server applies DeepLIIF's rule)
 * or "none"; empty means "default" for the size threshold and the segmentation threshold, and
 * "none" for the upper size and marker thresholds.
 */
final class DeepLIIFPreferences {

    private static final StringProperty URL = PathPrefs.createPersistentPreference("deepliif.url", DeepLIIFClient.DEFAULT_URL.toString());
    private static final StringProperty TOKEN = PathPrefs.createPersistentPreference("deepliif.token", "");
    private static final StringProperty MAGNIFICATION = PathPrefs.createPersistentPreference("deepliif.magnification", Magnification.X40.label());
    private static final StringProperty SEG_THRESH = PathPrefs.createPersistentPreference("deepliif.segThresh", "");
    private static final StringProperty SIZE_THRESH = PathPrefs.createPersistentPreference("deepliif.sizeThresh", "");
    private static final StringProperty SIZE_THRESH_UPPER = PathPrefs.createPersistentPreference("deepliif.sizeThreshUpper", "");
    private static final StringProperty MARKER_THRESH = PathPrefs.createPersistentPreference("deepliif.markerThresh", "");
    private static final StringProperty DAB_THRESHOLD = PathPrefs.createPersistentPreference("deepliif.dabThreshold", "");
    private static final StringProperty COMPARTMENT = PathPrefs.createPersistentPreference("deepliif.compartment", "class");
    private static final StringProperty POSITIVE_OD = PathPrefs.createPersistentPreference("deepliif.positiveOd", "");
    private static final StringProperty BINS_OD = PathPrefs.createPersistentPreference("deepliif.binsOd", "");
    private static final StringProperty MIN_COMPLETENESS = PathPrefs.createPersistentPreference("deepliif.minCompleteness", "");
    private static final StringProperty EXPANSION_UM = PathPrefs.createPersistentPreference("deepliif.expansionUm", "");

    private DeepLIIFPreferences() {
    }

    /** @return a client for the preferred URL, with the preferred token or the token file's */
    static DeepLIIFClient client() throws DeepLIIFException {
        return new DeepLIIFClient(URI.create(URL.get().strip()), ServerConfig.resolveToken(TOKEN.get()));
    }

    /** @return the preferred magnification and thresholds */
    static ScoreSettings settings() throws DeepLIIFException {
        return new ScoreSettings(ScoreSettings.magnification(MAGNIFICATION.get()),
                segThreshold(SEG_THRESH.get()), threshold(Messages.PREF_SIZE, SIZE_THRESH.get(), Threshold.DEFAULT),
                threshold(Messages.PREF_SIZE_UPPER, SIZE_THRESH_UPPER.get(), Threshold.NONE),
                threshold(Messages.PREF_MARKER, MARKER_THRESH.get(), Threshold.NONE),
                dabThreshold(DAB_THRESHOLD.get()), compartment(COMPARTMENT.get(), POSITIVE_OD.get(), BINS_OD.get(),
                        MIN_COMPLETENESS.get(), EXPANSION_UM.get()));
    }

    /** Show the preferences dialog (JavaFX thread) and store what the user accepts. */
    static void showDialog() {
        List<String> magnifications = List.of(ScoreSettings.AUTO, Magnification.X40.label(), Magnification.X20.label(),
                Magnification.X10.label());
        var params = new ParameterList()
                .addStringParameter("url", Messages.PREF_URL, URL.get(), Messages.PREF_URL_HELP)
                .addStringParameter("token", Messages.PREF_TOKEN, TOKEN.get(), String.format(Messages.PREF_TOKEN_HELP, ServerConfig.tokenFile()))
                .addChoiceParameter("magnification", Messages.PREF_MAGNIFICATION, MAGNIFICATION.get(), magnifications, Messages.PREF_MAGNIFICATION_HELP)
                .addStringParameter("seg", Messages.PREF_SEG, SEG_THRESH.get(), Messages.PREF_SEG_HELP)
                .addStringParameter("size", Messages.PREF_SIZE, SIZE_THRESH.get(), Messages.PREF_SIZE_HELP)
                .addStringParameter("sizeUpper", Messages.PREF_SIZE_UPPER, SIZE_THRESH_UPPER.get(), Messages.PREF_OPTIONAL_HELP)
                .addStringParameter("marker", Messages.PREF_MARKER, MARKER_THRESH.get(), Messages.PREF_OPTIONAL_HELP)
                .addStringParameter("dab", Messages.PREF_DAB, DAB_THRESHOLD.get(), Messages.PREF_DAB_HELP)
                .addChoiceParameter("compartment", Messages.PREF_COMPARTMENT, COMPARTMENT.get(),
                        CompartmentSettings.COMPARTMENTS, Messages.PREF_COMPARTMENT_HELP)
                .addStringParameter("positiveOd", Messages.PREF_POSITIVE_OD, POSITIVE_OD.get(), Messages.PREF_POSITIVE_OD_HELP)
                .addStringParameter("bins", Messages.PREF_BINS, BINS_OD.get(), Messages.PREF_BINS_HELP)
                .addStringParameter("completeness", Messages.PREF_COMPLETENESS, MIN_COMPLETENESS.get(), Messages.PREF_COMPLETENESS_HELP)
                .addStringParameter("expansion", Messages.PREF_EXPANSION, EXPANSION_UM.get(), Messages.PREF_EXPANSION_HELP);
        if (!GuiTools.showParameterDialog(Messages.TITLE_PREFERENCES, params))
            return;
        try {
            URI.create(params.getStringParameterValue("url").strip());
            segThreshold(params.getStringParameterValue("seg"));
            threshold(Messages.PREF_SIZE, params.getStringParameterValue("size"), Threshold.DEFAULT);
            threshold(Messages.PREF_SIZE_UPPER, params.getStringParameterValue("sizeUpper"), Threshold.NONE);
            threshold(Messages.PREF_MARKER, params.getStringParameterValue("marker"), Threshold.NONE);
            dabThreshold(params.getStringParameterValue("dab"));
            compartment((String) params.getChoiceParameterValue("compartment"), params.getStringParameterValue("positiveOd"),
                    params.getStringParameterValue("bins"), params.getStringParameterValue("completeness"),
                    params.getStringParameterValue("expansion"));
        } catch (IllegalArgumentException | DeepLIIFException e) {
            Dialogs.showErrorMessage(Messages.TITLE_PREFERENCES, e.getMessage());
            return;
        }
        URL.set(params.getStringParameterValue("url").strip());
        TOKEN.set(params.getStringParameterValue("token").strip());
        MAGNIFICATION.set((String) params.getChoiceParameterValue("magnification"));
        SEG_THRESH.set(params.getStringParameterValue("seg").strip());
        SIZE_THRESH.set(params.getStringParameterValue("size").strip());
        SIZE_THRESH_UPPER.set(params.getStringParameterValue("sizeUpper").strip());
        MARKER_THRESH.set(params.getStringParameterValue("marker").strip());
        DAB_THRESHOLD.set(params.getStringParameterValue("dab").strip());
        COMPARTMENT.set((String) params.getChoiceParameterValue("compartment"));
        POSITIVE_OD.set(params.getStringParameterValue("positiveOd").strip());
        BINS_OD.set(params.getStringParameterValue("bins").strip());
        MIN_COMPLETENESS.set(params.getStringParameterValue("completeness").strip());
        EXPANSION_UM.set(params.getStringParameterValue("expansion").strip());
    }

    /** The compartment preferences as settings (see {@link CompartmentSettings#fromText}). */
    static CompartmentSettings compartment(String compartment, String positiveOd, String bins, String minCompleteness,
                                           String expansionUm) throws DeepLIIFException {
        try {
            return CompartmentSettings.fromText(compartment, positiveOd, bins, minCompleteness, expansionUm);
        } catch (IllegalArgumentException e) {
            throw new DeepLIIFException(0, Messages.TITLE_PREFERENCES, String.format(Messages.BAD_THRESHOLD,
                    Messages.PREF_COMPARTMENT, e.getMessage()), e);
        }
    }

    /** Empty -> null (the server's default); otherwise an optical density. */
    static Double dabThreshold(String text) throws DeepLIIFException {
        try {
            return ScoreSettings.dabThreshold(text);
        } catch (IllegalArgumentException e) {
            throw new DeepLIIFException(0, Messages.TITLE_PREFERENCES, String.format(Messages.BAD_THRESHOLD, Messages.PREF_DAB,
                    e.getMessage()), e);
        }
    }

    /** Empty -> null (the server's default); otherwise a whole number. */
    static Integer segThreshold(String text) throws DeepLIIFException {
        if (text == null || text.isBlank())
            return null;
        try {
            return Integer.valueOf(text.strip());
        } catch (NumberFormatException e) {
            throw new DeepLIIFException(0, Messages.TITLE_PREFERENCES,
                    String.format(Messages.BAD_THRESHOLD, Messages.PREF_SEG, Messages.PREF_SEG_HELP), e);
        }
    }

    /** A whole number, "default" or "none"; empty -> {@code whenEmpty}. */
    static Threshold threshold(String name, String text, Threshold whenEmpty) throws DeepLIIFException {
        try {
            Threshold threshold = Threshold.parse(text, whenEmpty);
            if (whenEmpty == Threshold.DEFAULT && !threshold.isApplied())
                throw new IllegalArgumentException(Messages.PREF_SIZE_HELP);
            return threshold;
        } catch (IllegalArgumentException e) {
            throw new DeepLIIFException(0, Messages.TITLE_PREFERENCES, String.format(Messages.BAD_THRESHOLD, name, e.getMessage()), e);
        }
    }
}
