package qupath.ext.deepliif;

import java.awt.image.BufferedImage;
import java.util.Collection;
import java.util.List;
import java.util.Map;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import qupath.ext.deepliif.core.CompartmentSettings;
import qupath.ext.deepliif.core.DeepLIIFClient;
import qupath.ext.deepliif.core.DeepLIIFException;
import qupath.ext.deepliif.core.ScoreSettings;
import qupath.ext.deepliif.core.Threshold;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;
import qupath.lib.scripting.QP;

/**
 * Scripting API of the extension: what the workflow history's "Create script" replays, and what
 * Groovy users call, e.g.
 * <pre>
 * qupath.ext.deepliif.DeepLIIFScripting.scoreAnnotations("40x", false, null, "default", null, null, 0.3)
 * </pre>
 * Each annotation is one request: the server reads the annotation's region from the image file
 * (or, when it cannot open the file, the extension uploads the pixels once).
 * The server URL and token come from the extension's preferences (or the token file).
 */
public final class DeepLIIFScripting {

    private static final Logger logger = LoggerFactory.getLogger(DeepLIIFScripting.class);

    private DeepLIIFScripting() {
    }

    /**
     * Score the current image's annotations.
     *
     * @param magnification   "40x", "20x", "10x", or "auto" (or null): the server picks it from
     *                        the image's pixel size
     * @param selectedOnly    only the selected annotations (else all area annotations)
     * @param segThresh       segmentation threshold, null for the server's default
     * @param sizeThresh      smallest cell size in pixels, "default" (or null) for DeepLIIF's rule
     * @param sizeThreshUpper largest cell size in pixels, "default" for DeepLIIF's rule, null for none
     * @param markerThresh    marker threshold, "default" for DeepLIIF's rule, null for none
     * @param dabThreshold    the stain engine's DAB threshold (OD), null for the server's default
     * @return number of cells added
     * @throws DeepLIIFException with the server's reason
     * @throws IllegalArgumentException for a magnification or threshold it cannot read
     */
    public static int scoreAnnotations(String magnification, boolean selectedOnly, Integer segThresh, Object sizeThresh,
                                       Object sizeThreshUpper, Object markerThresh, Number dabThreshold)
            throws DeepLIIFException {
        return scoreAnnotations(magnification, selectedOnly, segThresh, sizeThresh, sizeThreshUpper, markerThresh,
                dabThreshold, null);
    }

    /**
     * Score the current image's annotations, positive by a compartment's DAB OD, e.g.
     * {@code scoreAnnotations("40x", false, null, "default", null, null, null, [compartment: "membrane",
     * positive_od: 0.35, bins_od: [0.4, 0.6], min_completeness: 0.5, expansion_um: 5])}.
     *
     * @param compartment the compartment settings in the server's names (see
     *                    {@link CompartmentSettings#fromMap}); null or empty: the engine's class
     * @return number of cells added
     * @throws DeepLIIFException with the server's reason
     * @see #scoreAnnotations(String, boolean, Integer, Object, Object, Object, Number)
     */
    public static int scoreAnnotations(String magnification, boolean selectedOnly, Integer segThresh, Object sizeThresh,
                                       Object sizeThreshUpper, Object markerThresh, Number dabThreshold,
                                       Map<String, ?> compartment) throws DeepLIIFException {
        ImageData<BufferedImage> imageData = currentImage();
        var settings = new ScoreSettings(ScoreSettings.magnification(magnification), segThresh,
                Threshold.parse(sizeThresh, Threshold.DEFAULT), Threshold.parse(sizeThreshUpper, Threshold.NONE),
                Threshold.parse(markerThresh, Threshold.NONE), dabThreshold == null ? null : dabThreshold.doubleValue(),
                CompartmentSettings.fromMap(compartment));
        return scoreAnnotations(imageData, annotations(imageData, selectedOnly), DeepLIIFPreferences.client(), settings);
    }

    /**
     * Score the current image's annotations with the server's DAB threshold (the scripts
     * written before the DAB threshold was an option).
     *
     * @return number of cells added
     * @throws DeepLIIFException with the server's reason
     * @see #scoreAnnotations(String, boolean, Integer, Object, Object, Object, Number)
     */
    public static int scoreAnnotations(String magnification, boolean selectedOnly, Integer segThresh, Object sizeThresh,
                                       Object sizeThreshUpper, Object markerThresh) throws DeepLIIFException {
        return scoreAnnotations(magnification, selectedOnly, segThresh, sizeThresh, sizeThreshUpper, markerThresh, null);
    }

    /**
     * Score the current image's annotations with the preferred thresholds.
     *
     * @param magnification "40x", "20x", "10x" or "auto"
     * @param selectedOnly  only the selected annotations
     * @return number of cells added
     * @throws DeepLIIFException with the server's reason
     */
    public static int scoreAnnotations(String magnification, boolean selectedOnly) throws DeepLIIFException {
        ScoreSettings preferred = DeepLIIFPreferences.settings();
        ImageData<BufferedImage> imageData = currentImage();
        return scoreAnnotations(imageData, annotations(imageData, selectedOnly), DeepLIIFPreferences.client(),
                new ScoreSettings(ScoreSettings.magnification(magnification), preferred.segThresh(), preferred.sizeThresh(),
                        preferred.sizeThreshUpper(), preferred.markerThresh(), preferred.dabThreshold(),
                        preferred.compartment()));
    }

    /**
     * Score given annotations of an image with a given client.
     *
     * @param imageData   the image
     * @param annotations area annotations of that image
     * @param client      server client
     * @param settings    magnification and thresholds
     * @return number of cells added
     * @throws DeepLIIFException with the server's reason
     */
    public static int scoreAnnotations(ImageData<BufferedImage> imageData, Collection<PathObject> annotations,
                                       DeepLIIFClient client, ScoreSettings settings) throws DeepLIIFException {
        var scorer = AnnotationScorer.connect(imageData, client, settings);
        if (scorer.health().isStain())
            logger.warn(Messages.STAIN_ENGINE);
        var outcome = scorer.run(annotations, (a, n) -> logger.info(String.format(Messages.PROGRESS, a, n)));
        outcome.warnings().forEach(logger::warn);
        logger.info(String.format(Messages.DONE, outcome.scored(), outcome.cells(), outcome.positive()));
        return outcome.cells();
    }

    private static ImageData<BufferedImage> currentImage() throws DeepLIIFException {
        ImageData<BufferedImage> imageData = QP.getCurrentImageData();
        if (imageData == null)
            throw new DeepLIIFException(0, Messages.TITLE, Messages.NO_IMAGE);
        return imageData;
    }

    /** The area annotations to score: the selected ones or all. */
    static List<PathObject> annotations(ImageData<BufferedImage> imageData, boolean selectedOnly) {
        var hierarchy = imageData.getHierarchy();
        Collection<PathObject> candidates = selectedOnly ? hierarchy.getSelectionModel().getSelectedObjects()
                : hierarchy.getAnnotationObjects();
        return candidates.stream().filter(p -> p.isAnnotation() && p.hasROI() && p.getROI().isArea()).toList();
    }
}
