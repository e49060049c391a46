package qupath.ext.deepliif;

import javafx.scene.control.MenuItem;
import qupath.lib.common.Version;
import qupath.lib.gui.QuPathGUI;
import qupath.lib.gui.extensions.QuPathExtension;

/**
 * QuPath extension that scores IHC annotations with DeepLIIF running locally
 * ({@code napari-deepliif serve}). Adds Extensions &gt; DeepLIIF with "Score selected
 * annotations", "Score all annotations" and "Preferences".
 */
public class DeepLIIFExtension implements QuPathExtension {

    private boolean installed;

    @Override
    public void installExtension(QuPathGUI qupath) {
        if (installed)
            return;
        installed = true;
        var menu = qupath.getMenu(Messages.MENU, true);
        var selected = new MenuItem(Messages.SCORE_SELECTED);
        selected.setOnAction(e -> new ScoreCommand(qupath, true).run());
        var all = new MenuItem(Messages.SCORE_ALL);
        all.setOnAction(e -> new ScoreCommand(qupath, false).run());
        selected.disableProperty().bind(ScoreCommand.RUNNING);
        all.disableProperty().bind(ScoreCommand.RUNNING);
        var preferences = new MenuItem(Messages.PREFERENCES);
        preferences.setOnAction(e -> DeepLIIFPreferences.showDialog());
        menu.getItems().addAll(selected, all, preferences);
    }

    @Override
    public String getName() {
        return Messages.EXTENSION_NAME;
    }

    @Override
    public String getDescription() {
        return Messages.EXTENSION_DESCRIPTION;
    }

    @Override
    public Version getQuPathVersion() {
        return Version.parse("0.6.0");
    }
}
