package qupath.ext.deepliif;

import java.awt.image.BufferedImage;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import qupath.ext.deepliif.core.CancelledException;
import qupath.ext.deepliif.core.Cell;
import qupath.ext.deepliif.core.CoordinateMapping;
import qupath.ext.deepliif.core.DeepLIIFClient;
import qupath.ext.deepliif.core.DeepLIIFException;
import qupath.ext.deepliif.core.RegionResult;
import qupath.ext.deepliif.core.RegionScorer;
import qupath.ext.deepliif.core.ScalePlan;
import qupath.ext.deepliif.core.ScoreMeasurements;
import qupath.ext.deepliif.core.ScoreSettings;
import qupath.ext.deepliif.core.ServerHealth;
import qupath.ext.deepliif.core.Tiling;
import qupath.lib.images.ImageData;
import qupath.lib.images.servers.ImageServer;
import qupath.lib.objects.PathAnnotationObject;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.PathObjects;
import qupath.lib.objects.classes.PathClass;
import qupath.lib.regions.ImageRegion;
import qupath.lib.regions.RegionRequest;
import qupath.lib.roi.GeometryTools;
import qupath.lib.roi.interfaces.ROI;

/**
 * Scores annotations of one image through the server (the QuPath side of
 * {@link RegionScorer}): reads each annotation's bounds at the planned downsample, and replaces
 * the annotation's DeepLIIF detections and measurements with the new ones. No JavaFX: used by
 * the menu commands (on a background thread) and by scripts.
 */
final class AnnotationScorer {

    private static final Logger logger = LoggerFactory.getLogger(AnnotationScorer.class);

    /** Progress over all annotations. */
    @FunctionalInterface
    interface Progress {
        void update(int annotation, int annotations, int tile, int tiles);
    }

    /**
     * What a run did.
     *
     * @param scored    annotations scored
     * @param skipped   annotations skipped (not an area, or too small)
     * @param cells     cells added
     * @param positive  positive cells added
     * @param warnings  distinct warnings (uncalibrated image, ...)
     */
    record Outcome(int scored, int skipped, int cells, int positive, List<String> warnings) {
    }

    private final ImageData<BufferedImage> imageData;
    private final DeepLIIFClient client;
    private final ScoreSettings settings;
    private final ServerHealth health;
    private final int tileSize;
    private volatile RegionScorer current;
    private volatile boolean cancelled;

    private AnnotationScorer(ImageData<BufferedImage> imageData, DeepLIIFClient client, ScoreSettings settings,
                             ServerHealth health, int tileSize) {
        this.imageData = imageData;
        this.client = client;
        this.settings = settings;
        this.health = health;
        this.tileSize = tileSize;
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
        return new AnnotationScorer(imageData, client, settings, health, Tiling.tileSizeFor(health.limits(), Tiling.DEFAULT_OVERLAP));
    }

    /** @return what the server reported */
    ServerHealth health() {
        return health;
    }

    /** Stop after the tile in flight (also cancelled on the server). Any thread. */
    void cancel() throws DeepLIIFException {
        cancelled = true;
        RegionScorer scorer = current;
        if (scorer != null)
            scorer.cancel();
    }

    /**
     * Score annotations one by one; each finished annotation keeps its result even if a later
     * one fails or the run is cancelled.
     */
    Outcome run(Collection<PathObject> annotations, Progress progress) throws DeepLIIFException {
        ImageServer<BufferedImage> server = imageData.getServer();
        var calibration = server.getPixelCalibration();
        double mpp = calibration.hasPixelSizeMicrons() ? calibration.getAveragedPixelSizeMicrons() : Double.NaN;
        ScalePlan plan = ScalePlan.plan(settings.magnification(), mpp);
        Set<String> warnings = new LinkedHashSet<>();
        if (plan.warning() != null)
            warnings.add(plan.warning());
        List<PathObject> todo = new ArrayList<>(annotations);
        int scored = 0, skipped = 0, cells = 0, positive = 0;
        for (int i = 0; i < todo.size(); i++) {
            if (cancelled)
                throw new CancelledException(Messages.CANCELLED);
            PathObject annotation = todo.get(i);
            RegionResult result = scoreOne(server, annotation, plan, i, todo.size(), progress);
            if (result == null) {
                skipped++;
                continue;
            }
            apply(annotation, result);
            scored++;
            cells += result.numTotal();
            positive += result.numPositive();
        }
        return new Outcome(scored, skipped, cells, positive, List.copyOf(warnings));
    }

    /** Score one annotation; null when it is not an area or too small to score. */
    private RegionResult scoreOne(ImageServer<BufferedImage> server, PathObject annotation, ScalePlan plan,
                                  int index, int count, Progress progress) throws DeepLIIFException {
        ROI roi = annotation.getROI();
        if (roi == null || !roi.isArea())
            return null;
        double d = plan.downsample();
        int x0 = Math.max(0, (int) Math.floor(roi.getBoundsX()));
        int y0 = Math.max(0, (int) Math.floor(roi.getBoundsY()));
        int x1 = Math.min(server.getWidth(), (int) Math.ceil(roi.getBoundsX() + roi.getBoundsWidth()));
        int y1 = Math.min(server.getHeight(), (int) Math.ceil(roi.getBoundsY() + roi.getBoundsHeight()));
        int width = (int) Math.floor((x1 - x0) / d);
        int height = (int) Math.floor((y1 - y0) / d);
        if (width < Tiling.MIN_IMAGE_SIZE || height < Tiling.MIN_IMAGE_SIZE)
            return null;
        String path = server.getPath();
        int z = roi.getZ();
        int t = roi.getT();
        RegionScorer.TileReader reader = (x, y, w, h) -> {
            int fx = x0 + (int) Math.round(x * d);
            int fy = y0 + (int) Math.round(y * d);
            int fw = Math.min((int) Math.round(w * d), server.getWidth() - fx);
            int fh = Math.min((int) Math.round(h * d), server.getHeight() - fy);
            return server.readRegion(RegionRequest.createInstance(path, d, ImageRegion.createInstance(fx, fy, fw, fh, z, t)));
        };
        RegionScorer scorer = new RegionScorer(client, settings, tileSize, Tiling.DEFAULT_OVERLAP);
        current = scorer;
        try {
            if (cancelled)
                scorer.cancel();
            return scorer.score(reader, width, height, plan, new CoordinateMapping(x0, y0, d), roi.getGeometry(),
                    (done, total) -> {
                        if (progress != null)
                            progress.update(index + 1, count, done, total);
                    });
        } finally {
            current = null;
        }
    }

    /** Replace the annotation's detections and DeepLIIF measurements with the new result. */
    private void apply(PathObject annotation, RegionResult result) {
        var plane = annotation.getROI().getImagePlane();
        List<PathObject> detections = new ArrayList<>(result.numTotal());
        for (Cell cell : result.cells()) {
            PathObject detection = PathObjects.createDetectionObject(GeometryTools.geometryToROI(cell.geometry(), plane),
                    pathClass(cell));
            detection.getMeasurements().putAll(cell.measurements());
            detections.add(detection);
        }
        var hierarchy = imageData.getHierarchy();
        synchronized (hierarchy) {
            List<PathObject> previous = annotation.getChildObjects().stream().filter(PathObject::isDetection).toList();
            annotation.removeChildObjects(previous);
            annotation.addChildObjects(detections);
            Map<String, Number> measurements = annotation.getMeasurements();
            ScoreMeasurements.NAMES.forEach(measurements::remove);
            measurements.putAll(ScoreMeasurements.of(result));
            if (annotation instanceof PathAnnotationObject a)
                a.setDescription(ScoreMeasurements.withProvenance(a.getDescription(), ScoreMeasurements.provenanceText(result)));
        }
        hierarchy.fireHierarchyChangedEvent(this, annotation);
        logger.info("DeepLIIF: {} cells ({} positive) in {}", result.numTotal(), result.numPositive(), annotation);
    }

    /** QuPath's standard Positive/Negative classes, so its "Num Positive" and "Positive %" columns appear. */
    private static PathClass pathClass(Cell cell) {
        return cell.isPositive() ? PathClass.StandardPathClasses.POSITIVE : PathClass.StandardPathClasses.NEGATIVE;
    }
}
