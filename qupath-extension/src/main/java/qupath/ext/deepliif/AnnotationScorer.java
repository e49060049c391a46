package qupath.ext.deepliif;

import java.awt.image.BufferedImage;
import java.net.URI;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import qupath.ext.deepliif.core.CancelledException;
import qupath.ext.deepliif.core.Cell;
import qupath.ext.deepliif.core.DeepLIIFClient;
import qupath.ext.deepliif.core.DeepLIIFException;
import qupath.ext.deepliif.core.RegionResult;
import qupath.ext.deepliif.core.RegionScorer;
import qupath.ext.deepliif.core.ScoreMeasurements;
import qupath.ext.deepliif.core.ScoreRecord;
import qupath.ext.deepliif.core.ScoreRegion;
import qupath.ext.deepliif.core.ScoreSettings;
import qupath.ext.deepliif.core.ServerHealth;
import qupath.lib.images.ImageData;
import qupath.lib.images.servers.ImageServer;
import qupath.lib.images.servers.ImageServerBuilder;
import qupath.lib.objects.PathAnnotationObject;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.PathObjects;
import qupath.lib.objects.classes.PathClass;
import qupath.lib.regions.RegionRequest;
import qupath.lib.roi.GeometryTools;
import qupath.lib.roi.interfaces.ROI;

/**
 * Scores annotations of one image through the server, one request per annotation (the QuPath
 * side of {@link RegionScorer}): sends the image file, the annotation's bounds and outline, and
 * replaces the annotation's detections and DeepLIIF measurements with the answer. No JavaFX:
 * used by the menu commands (on a background thread) and by scripts.
 */
final class AnnotationScorer {

    private static final Logger logger = LoggerFactory.getLogger(AnnotationScorer.class);

    /** Progress over all annotations. */
    @FunctionalInterface
    interface Progress {
        void update(int annotation, int annotations);
    }

    /**
     * What a run did.
     *
     * @param scored    annotations scored
     * @param skipped   annotations skipped (outside the image, or refused by the server: see warnings)
     * @param cells     cells added
     * @param positive  positive cells added
     * @param warnings  distinct warnings (uploaded pixels, skipped annotations, ...)
     */
    record Outcome(int scored, int skipped, int cells, int positive, List<String> warnings) {
    }

    private final ImageData<BufferedImage> imageData;
    private final DeepLIIFClient client;
    private final ScoreSettings settings;
    private final ServerHealth health;
    private volatile RegionScorer current;
    private volatile boolean cancelled;

    private AnnotationScorer(ImageData<BufferedImage> imageData, DeepLIIFClient client, ScoreSettings settings,
                             ServerHealth health) {
        this.imageData = imageData;
        this.client = client;
        this.settings = settings;
        this.health = health;
    }

    /**
     * Check the server (health, limits) and prepare a run.
     *
     * @throws DeepLIIFException if the server is unreachable, unhealthy, or the image is not RGB
     */
    static AnnotationScorer connect(ImageData<BufferedImage> imageData, DeepLIIFClient client, ScoreSettings settings)
            throws DeepLIIFException {
        if (!imageData.getServer().isRGB())
            throw new DeepLIIFException(0, Messages.TITLE, Messages.NOT_RGB);
        ServerHealth health = client.health();
        if (!health.isOk())
            throw new DeepLIIFException(0, Messages.TITLE, "The DeepLIIF server at " + client.getBaseUrl()
                    + " reports status '" + health.status() + "'.");
        if (settings.dabThreshold() != null && health.isDeepLIIF())
            throw new DeepLIIFException(0, Messages.TITLE, Messages.DAB_NOT_FOR_DEEPLIIF);
        return new AnnotationScorer(imageData, client, settings, health);
    }

    /** @return what the server reported */
    ServerHealth health() {
        return health;
    }

    /** Stop after the annotation in flight, whose request is cancelled on the server. Any thread. */
    void cancel() throws DeepLIIFException {
        cancelled = true;
        RegionScorer scorer = current;
        if (scorer != null)
            scorer.cancel();
    }

    /**
     * Score annotations one by one; each finished annotation keeps its result even if a later
     * one fails or the run is cancelled. An annotation the server refuses (422, e.g. too small)
     * is skipped with the server's reason as a warning.
     */
    Outcome run(Collection<PathObject> annotations, Progress progress) throws DeepLIIFException {
        ImageServer<BufferedImage> server = imageData.getServer();
        var calibration = server.getPixelCalibration();
        double mpp = calibration.hasPixelSizeMicrons() ? calibration.getAveragedPixelSizeMicrons() : Double.NaN;
        String file = localFile(server);
        Set<String> warnings = new LinkedHashSet<>();
        List<PathObject> todo = new ArrayList<>(annotations);
        int scored = 0, skipped = 0, cells = 0, positive = 0;
        for (int i = 0; i < todo.size(); i++) {
            if (cancelled)
                throw new CancelledException(Messages.CANCELLED);
            if (progress != null)
                progress.update(i + 1, todo.size());
            PathObject annotation = todo.get(i);
            ROI roi = annotation.getROI();
            ScoreRegion region = roi == null || !roi.isArea() ? null
                    : ScoreRegion.of(roi.getZ() == 0 && roi.getT() == 0 ? file : null, roi.getGeometry(),
                    server.getWidth(), server.getHeight(), mpp);
            if (region == null) {
                skipped++;
                continue;
            }
            RegionResult result;
            try {
                result = score(server, region, roi);
            } catch (CancelledException e) {
                throw e;
            } catch (DeepLIIFException e) {
                if (e.getStatus() != 422)
                    throw e;
                warnings.add(String.format(Messages.REFUSED, e.getMessage()));
                skipped++;
                continue;
            }
            if (result.uploaded())
                warnings.add(String.format(Messages.UPLOADED, result.uploadReason()));
            if (result.scaleWarning() != null)
                warnings.add(result.scaleWarning());
            apply(annotation, result);
            scored++;
            cells += result.numTotal();
            positive += result.numPositive();
        }
        return new Outcome(scored, skipped, cells, positive, List.copyOf(warnings));
    }

    private RegionResult score(ImageServer<BufferedImage> server, ScoreRegion region, ROI roi) throws DeepLIIFException {
        String path = server.getPath();
        RegionScorer.PixelReader reader = (x, y, w, h, downsample) -> server.readRegion(
                RegionRequest.createInstance(path, downsample, x, y, w, h, roi.getZ(), roi.getT()));
        RegionScorer scorer = new RegionScorer(client, settings, health.limits());
        current = scorer;
        try {
            if (cancelled)
                scorer.cancel();
            return scorer.score(region, reader);
        } finally {
            current = null;
        }
    }

    /**
     * The file the server can read the same pixels from: the one local file of a plain image
     * server (no transforms, no series other than the first), else null (the pixels are uploaded).
     */
    static String localFile(ImageServer<BufferedImage> server) {
        if (!(server.getBuilder() instanceof ImageServerBuilder.DefaultImageServerBuilder<BufferedImage> builder))
            return null;
        URI uri = builder.getURI();
        if (uri == null || !"file".equalsIgnoreCase(uri.getScheme()) || uri.getQuery() != null || uri.getFragment() != null)
            return null;
        String[] args = builder.getArgs();
        if (args != null) {
            List<String> list = Arrays.asList(args);
            int series = list.indexOf("--series");
            if (list.contains("--name") || (series >= 0 && (series + 1 >= list.size() || !"0".equals(list.get(series + 1)))))
                return null;
        }
        return Path.of(uri).toAbsolutePath().toString();
    }

    /** Replace the annotation's detections and DeepLIIF measurements with the new result. */
    private void apply(PathObject annotation, RegionResult result) {
        var plane = annotation.getROI().getImagePlane();
        List<PathObject> detections = new ArrayList<>(result.cells().size());
        for (Cell cell : result.cells()) {
            PathObject detection = PathObjects.createDetectionObject(GeometryTools.geometryToROI(cell.geometry(), plane),
                    pathClass(cell, result.score()));
            detection.getMeasurements().putAll(cell.measurements());
            detections.add(detection);
        }
        var hierarchy = imageData.getHierarchy();
        synchronized (hierarchy) {
            List<PathObject> previous = annotation.getChildObjects().stream().filter(PathObject::isDetection).toList();
            annotation.removeChildObjects(previous);
            annotation.addChildObjects(detections);
            Map<String, Number> measurements = annotation.getMeasurements();
            measurements.keySet().removeIf(ScoreMeasurements::isOwn);
            measurements.putAll(ScoreMeasurements.of(result));
            if (annotation instanceof PathAnnotationObject a)
                a.setDescription(ScoreMeasurements.withProvenance(a.getDescription(), ScoreMeasurements.provenanceText(result)));
        }
        hierarchy.fireHierarchyChangedEvent(this, annotation);
        logger.info("DeepLIIF: {} cells ({} positive) in {}{}", result.numTotal(), result.numPositive(), annotation,
                result.uploaded() ? " (pixels uploaded: " + result.uploadReason() + ")" : "");
    }

    /** QuPath's standard Positive/Negative classes, so its "Num Positive" and "Positive %" columns appear
     *  (a points model's point: positive when of one of the record's positive classes). */
    private static PathClass pathClass(Cell cell, ScoreRecord score) {
        return score.isPositive(cell) ? PathClass.StandardPathClasses.POSITIVE : PathClass.StandardPathClasses.NEGATIVE;
    }
}
