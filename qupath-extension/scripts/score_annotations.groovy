/**
 * Score annotations of the current image with DeepLIIF through the local napari-deepliif server
 * (the same code path as Extensions > DeepLIIF > Score ... annotations).
 *
 * Needs: the DeepLIIF extension jar installed in QuPath 0.6, and the server running
 * ('napari-deepliif serve'). Run it from Automate > Script editor, or with 'Run for project'.
 *
 * Each annotation is one request: the server reads the annotation's region from the image file
 * itself (when it cannot open the file, the annotation's pixels are read once and uploaded).
 * Each scored annotation gets its cells as Positive/Negative detections (its earlier DeepLIIF
 * detections are replaced) and "DeepLIIF: ..." measurements from the server's score record; the
 * engine used is written into the annotation's description.
 */
import qupath.ext.deepliif.DeepLIIFScripting
import qupath.ext.deepliif.core.CompartmentSettings
import qupath.ext.deepliif.core.DeepLIIFClient
import qupath.ext.deepliif.core.ScoreSettings
import qupath.ext.deepliif.core.ServerConfig
import qupath.ext.deepliif.core.Threshold

// ---- settings -------------------------------------------------------------------------------
def serverUrl = 'http://127.0.0.1:8642'
String token = null               // null: read the server's token file ('napari-deepliif token' prints it)
def magnification = '40x'         // '40x', '20x', '10x', or 'auto': the server picks it from the pixel size
def selectedOnly = false          // true: only the selected annotations
Integer segThresh = null          // null: the server's default
def sizeThresh = 'default'        // a number of pixels, or 'default': DeepLIIF's rule over the whole annotation
def sizeThreshUpper = null        // a number of pixels, 'default' (DeepLIIF's rule), or null: no upper size limit
def markerThresh = null           // a number (0-255), 'default' (DeepLIIF's rule), or null: no marker threshold
Double dabThreshold = null        // stain engine only: mean nuclear DAB OD above which a nucleus is positive (null: 0.2)
// What decides positive: [:] the engine's class; or a compartment's mean DAB OD, e.g.
// [compartment: 'membrane', positive_od: 0.2, bins_od: [0.4, 0.6], min_completeness: 0.5, expansion_um: 5]
// (compartment: 'nucleus', 'cytoplasm', 'membrane' or 'cell'; leave a key out for the server's default)
def compartment = [:]
// ----------------------------------------------------------------------------------------------

def imageData = getCurrentImageData()
if (imageData == null) {
    println 'Open an image first'
    return
}
def candidates = selectedOnly ? getSelectedObjects() : getAnnotationObjects()
def annotations = candidates.findAll { it.isAnnotation() && it.hasROI() && it.getROI().isArea() }
if (annotations.isEmpty()) {
    println 'No area annotations to score'
    return
}

println "Token file: ${ServerConfig.tokenFile()}"
def client = new DeepLIIFClient(URI.create(serverUrl), ServerConfig.resolveToken(token))
def settings = new ScoreSettings(ScoreSettings.magnification(magnification), segThresh,
        Threshold.parse(sizeThresh, Threshold.DEFAULT), Threshold.parse(sizeThreshUpper, Threshold.NONE),
        Threshold.parse(markerThresh, Threshold.NONE), dabThreshold, CompartmentSettings.fromMap(compartment))
int cells = DeepLIIFScripting.scoreAnnotations(imageData, annotations, client, settings)
println "DeepLIIF: ${cells} cells in ${annotations.size()} annotation(s)"
