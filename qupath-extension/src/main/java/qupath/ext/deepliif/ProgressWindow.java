package qupath.ext.deepliif;

import javafx.application.Platform;
import javafx.geometry.Insets;
import javafx.scene.Scene;
import javafx.scene.control.Button;
import javafx.scene.control.Label;
import javafx.scene.control.ProgressBar;
import javafx.scene.layout.VBox;
import javafx.stage.Modality;
import javafx.stage.Stage;
import javafx.stage.Window;

/**
 * A small non-modal window with a message, a progress bar and a Cancel button. Its methods may
 * be called from any thread.
 */
final class ProgressWindow {

    private final Stage stage = new Stage();
    private final Label label = new Label();
    private final ProgressBar bar = new ProgressBar(ProgressBar.INDETERMINATE_PROGRESS);
    private final Button cancel = new Button(Messages.CANCEL);

    /**
     * Build the window (JavaFX thread).
     *
     * @param owner    owner window, may be null
     * @param onCancel run once, on the JavaFX thread, when Cancel is pressed or the window closed
     */
    ProgressWindow(Window owner, Runnable onCancel) {
        if (owner != null)
            stage.initOwner(owner);
        stage.initModality(Modality.NONE);
        stage.setTitle(Messages.TITLE);
        bar.setMaxWidth(Double.MAX_VALUE);
        label.setWrapText(true);
        cancel.setOnAction(e -> {
            cancel.setDisable(true);
            onCancel.run();
        });
        stage.setOnCloseRequest(e -> {
            e.consume();
            if (!cancel.isDisable()) {
                cancel.setDisable(true);
                onCancel.run();
            }
        });
        var box = new VBox(10, label, bar, cancel);
        box.setPadding(new Insets(12));
        box.setPrefWidth(380);
        stage.setScene(new Scene(box));
    }

    void show(String message) {
        Platform.runLater(() -> {
            label.setText(message);
            stage.show();
        });
    }

    void update(String message, double fraction) {
        Platform.runLater(() -> {
            label.setText(message);
            bar.setProgress(fraction);
        });
    }

    void close() {
        Platform.runLater(stage::close);
    }
}
