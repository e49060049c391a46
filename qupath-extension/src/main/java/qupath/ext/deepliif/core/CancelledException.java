package qupath.ext.deepliif.core;

/**
 * A run stopped because the user cancelled it (between tiles, or on the server, which then
 * answers 409 "cancelled"). No partial result is kept.
 */
public class CancelledException extends DeepLIIFException {

    private static final long serialVersionUID = 1L;

    /** @param detail what was cancelled */
    public CancelledException(String detail) {
        super(409, "Cancelled", detail);
    }
}
