package qupath.ext.deepliif;

import java.net.URI;
import java.util.List;

import javafx.beans.property.StringProperty;
import qupath.ext.deepliif.core.DeepLIIFClient;
import qupath.ext.deepliif.core.DeepLIIFException;
import qupath.ext.deepliif.core.Magnification;
import qupath.ext.deepliif.core.ScoreSettings;
import qupath.ext.deepliif.core.ServerConfig;
import qupath.fx.dialogs.Dialogs;
import qupath.lib.gui.prefs.PathPrefs;
import qupath.lib.gui.tools.GuiTools;
import qupath.lib.plugins.parameters.ParameterList;

/**
 * The extension's persistent preferences (QuPath's {@link PathPrefs}), and their dialog.
 * Thresholds are kept as text: empty means "the server's default".
 */
final class DeepLIIFPreferences {

    private static final StringProperty URL = PathPrefs.createPersistentPreference("deepliif.url", DeepLIIFClient.DEFAULT_URL.toString());
    private static final StringProperty TOKEN = PathPrefs.createPersistentPreference("deepliif.token", "");
    private static final StringProperty MAGNIFICATION = PathPrefs.createPersistentPreference("deepliif.magnification", Magnification.X40.label());
    private static final StringProperty SEG_THRESH = PathPrefs.createPersistentPreference("deepliif.segThresh", "");
    private static final StringProperty SIZE_THRESH = PathPrefs.createPersistentPreference("deepliif.sizeThresh", "");
    private static final StringProperty SIZE_THRESH_UPPER = PathPrefs.createPersistentPreference("deepliif.sizeThreshUpper", "");
    private static final StringProperty MARKER_THRESH = PathPrefs.createPersistentPreference("deepliif.markerThresh", "");

    private DeepLIIFPreferences() {
    }

    /** @return a client for the preferred URL, with the preferred token or the token file's */
    static DeepLIIFClient client() throws DeepLIIFException {
        return new DeepLIIFClient(URI.create(URL.get().strip()), ServerConfig.resolveToken(TOKEN.get()));
    }

    /** @return the preferred magnification and thresholds */
    static ScoreSettings settings() throws DeepLIIFException {
        return new ScoreSettings(Magnification.parse(MAGNIFICATION.get()),
                threshold(Messages.PREF_SEG, SEG_THRESH.get()), threshold(Messages.PREF_SIZE, SIZE_THRESH.get()),
                threshold(Messages.PREF_SIZE_UPPER, SIZE_THRESH_UPPER.get()), threshold(Messages.PREF_MARKER, MARKER_THRESH.get()));
    }

    /** Show the preferences dialog (JavaFX thread) and store what the user accepts. */
    static void showDialog() {
        List<String> magnifications = List.of(Magnification.X40.label(), Magnification.X20.label(), Magnification.X10.label());
        String thresholdHelp = Messages.PREF_THRESHOLD_HELP;
        var params = new ParameterList()
                .addStringParameter("url", Messages.PREF_URL, URL.get(), Messages.PREF_URL_HELP)
                .addStringParameter("token", Messages.PREF_TOKEN, TOKEN.get(), String.format(Messages.PREF_TOKEN_HELP, ServerConfig.tokenFile()))
                .addChoiceParameter("magnification", Messages.PREF_MAGNIFICATION, MAGNIFICATION.get(), magnifications, Messages.PREF_MAGNIFICATION_HELP)
                .addStringParameter("seg", Messages.PREF_SEG, SEG_THRESH.get(), thresholdHelp)
                .addStringParameter("size", Messages.PREF_SIZE, SIZE_THRESH.get(), thresholdHelp)
                .addStringParameter("sizeUpper", Messages.PREF_SIZE_UPPER, SIZE_THRESH_UPPER.get(), thresholdHelp)
                .addStringParameter("marker", Messages.PREF_MARKER, MARKER_THRESH.get(), thresholdHelp);
        if (!GuiTools.showParameterDialog(Messages.TITLE_PREFERENCES, params))
            return;
        try {
            URI.create(params.getStringParameterValue("url").strip());
            threshold(Messages.PREF_SEG, params.getStringParameterValue("seg"));
            threshold(Messages.PREF_SIZE, params.getStringParameterValue("size"));
            threshold(Messages.PREF_SIZE_UPPER, params.getStringParameterValue("sizeUpper"));
            threshold(Messages.PREF_MARKER, params.getStringParameterValue("marker"));
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
    }

    /** Empty -> null (server default); otherwise a whole number. */
    static Integer threshold(String name, String text) throws DeepLIIFException {
        if (text == null || text.isBlank())
            return null;
        try {
            return Integer.valueOf(text.strip());
        } catch (NumberFormatException e) {
            throw new DeepLIIFException(0, Messages.TITLE_PREFERENCES, String.format(Messages.BAD_THRESHOLD, name, text), e);
        }
    }
}
