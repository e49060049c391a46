package qupath.ext.deepliif;

import java.awt.image.BufferedImage;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import javafx.application.Platform;
import javafx.beans.property.BooleanProperty;
import javafx.beans.property.SimpleBooleanProperty;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import qupath.ext.deepliif.core.CancelledException;
import qupath.ext.deepliif.core.DeepLIIFClient;
import qupath.ext.deepliif.core.DeepLIIFException;
import qupath.ext.deepliif.core.ScoreSettings;
import qupath.ext.deepliif.core.ScriptCall;
import qupath.fx.dialogs.Dialogs;
import qupath.lib.gui.QuPathGUI;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;
import qupath.lib.plugins.workflow.DefaultScriptableWorkflowStep;

/**
 * The "Score selected/all annotations" menu commands: checks on the JavaFX thread, then the
 * health check and scoring on a background thread with a progress window; errors in a dialog
 * with the server's reason; a successful run is recorded in the workflow history.
 */
final class ScoreCommand {

    private static final Logger logger = LoggerFactory.getLogger(ScoreCommand.class);

    /** True while a run is going: the menu items are disabled. */
    static final BooleanProperty RUNNING = new SimpleBooleanProperty(false);

    private final QuPathGUI qupath;
    private final boolean selectedOnly;

    ScoreCommand(QuPathGUI qupath, boolean selectedOnly) {
        this.qupath = qupath;
        this.selectedOnly = selectedOnly;
    }

    /** Start a run (JavaFX thread). */
    void run() {
        ImageData<BufferedImage> imageData = qupath.getImageData();
        if (imageData == null) {
            Dialogs.showErrorMessage(Messages.TITLE, Messages.NO_IMAGE);
            return;
        }
        List<PathObject> annotations = DeepLIIFScripting.annotations(imageData, selectedOnly);
        if (annotations.isEmpty()) {
            Dialogs.showErrorMessage(Messages.TITLE, selectedOnly ? Messages.NO_SELECTED : Messages.NO_ANNOTATIONS);
            return;
        }
        DeepLIIFClient client;
        ScoreSettings settings;
        try {
            client = DeepLIIFPreferences.client();
            settings = DeepLIIFPreferences.settings();
        } catch (DeepLIIFException e) {
            Dialogs.showErrorMessage(e.getTitle(), e.getMessage());
            return;
        }
        AtomicReference<AnnotationScorer> scorer = new AtomicReference<>();
        AtomicBoolean cancelled = new AtomicBoolean();
        var window = new ProgressWindow(qupath.getStage(), () -> {
            cancelled.set(true);
            cancelInBackground(scorer.get());
        });
        window.show(String.format(Messages.RUNNING, annotations.size(), client.getBaseUrl()));
        RUNNING.set(true);
        var worker = new Thread(() -> work(imageData, annotations, client, settings, scorer, cancelled, window), "deepliif-score");
        worker.setDaemon(true);
        worker.start();
    }

    private void work(ImageData<BufferedImage> imageData, List<PathObject> annotations, DeepLIIFClient client,
                      ScoreSettings settings, AtomicReference<AnnotationScorer> scorer, AtomicBoolean cancelled,
                      ProgressWindow window) {
        try {
            scorer.set(AnnotationScorer.connect(imageData, client, settings));
            if (cancelled.get())
                throw new CancelledException(Messages.CANCELLED);
            if (scorer.get().health().isStain())
                Platform.runLater(() -> Dialogs.showWarningNotification(Messages.TITLE, Messages.STAIN_ENGINE));
            var outcome = scorer.get().run(annotations, (a, n) -> window.update(
                    String.format(Messages.PROGRESS, a, n), (a - 1) / (double) n));
            imageData.getHistoryWorkflow().addStep(new DefaultScriptableWorkflowStep(
                    selectedOnly ? "DeepLIIF: " + Messages.SCORE_SELECTED : "DeepLIIF: " + Messages.SCORE_ALL,
                    ScriptCall.parameters(settings, selectedOnly), ScriptCall.scoreAnnotations(settings, selectedOnly)));
            StringBuilder message = new StringBuilder(String.format(Messages.DONE, outcome.scored(), outcome.cells(), outcome.positive()));
            if (outcome.skipped() > 0)
                message.append('\n').append(String.format(Messages.SKIPPED, outcome.skipped()));
            outcome.warnings().forEach(w -> message.append('\n').append(w));
            Platform.runLater(() -> Dialogs.showInfoNotification(Messages.TITLE, message.toString()));
        } catch (CancelledException e) {
            Platform.runLater(() -> Dialogs.showInfoNotification(Messages.TITLE, Messages.CANCELLED));
        } catch (DeepLIIFException e) {
            logger.error("DeepLIIF scoring failed: {}", e.getMessage(), e);
            Platform.runLater(() -> Dialogs.showErrorMessage(Messages.TITLE_ERROR, e.getTitle() + "\n\n" + e.getMessage()));
        } catch (RuntimeException e) {
            logger.error("DeepLIIF scoring failed", e);
            Platform.runLater(() -> Dialogs.showErrorMessage(Messages.TITLE_ERROR, e.toString()));
        } finally {
            window.close();
            Platform.runLater(() -> RUNNING.set(false));
        }
    }

    /** Cancel off the JavaFX thread: it may call the server. */
    private static void cancelInBackground(AnnotationScorer scorer) {
        if (scorer == null)
            return;
        var thread = new Thread(() -> {
            try {
                scorer.cancel();
            } catch (DeepLIIFException e) {
                logger.warn("Cancel request failed: {}", e.getMessage());
            }
        }, "deepliif-cancel");
        thread.setDaemon(true);
        thread.start();
    }
}
