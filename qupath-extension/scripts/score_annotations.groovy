/**
 * Score annotations of the current image with DeepLIIF through the local napari-deepliif server
 * (the same code path as Extensions > DeepLIIF > Score ... annotations).
 *
 * Needs: the DeepLIIF extension jar installed in QuPath 0.6, and the server running
 * ('napari-deepliif serve'). Run it from Automate > Script editor, or with 'Run for project'.
 *
 * Each scored annotation gets its cells as Positive/Negative detections (its earlier DeepLIIF
 * detections are replaced) and "DeepLIIF: ..." measurements; the engine used is written into
 * the annotation's description.
 */
import qupath.ext.deepliif.DeepLIIFScripting
import qupath.ext.deepliif.core.DeepLIIFClient
import qupath.ext.deepliif.core.Magnification
import qupath.ext.deepliif.core.ScoreSettings
import qupath.ext.deepliif.core.ServerConfig

// ---- settings -------------------------------------------------------------------------------
def serverUrl = 'http://127.0.0.1:8642'
String token = null               // null: read the server's token file ('napari-deepliif token' prints it)
def magnification = '40x'         // '40x', '20x' or '10x' (pixels are read at the matching downsample)
def selectedOnly = false          // true: only the selected annotations
Integer segThresh = null          // null: the server's default
Integer sizeThresh = null         // null: DeepLIIF's default rule
Integer sizeThreshUpper = null    // null: no upper size limit
Integer markerThresh = null       // null: no marker threshold
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
def settings = new ScoreSettings(Magnification.parse(magnification), segThresh, sizeThresh, sizeThreshUpper, markerThresh)
int cells = DeepLIIFScripting.scoreAnnotations(imageData, annotations, client, settings)
println "DeepLIIF: ${cells} cells in ${annotations.size()} annotation(s)"
