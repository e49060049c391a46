package qupath.ext.deepliif.core;

/**
 * A failed call to the DeepLIIF engine server, carrying the server's reason.
 * <p>
 * The server answers errors with RFC 9457 problem JSON ({@code type}, {@code title},
 * {@code status}, {@code detail}); {@link #getMessage()} is the {@code detail}, which says what
 * went wrong and what to do. A status of 0 means no HTTP answer (server not reachable, I/O error).
 */
public class DeepLIIFException extends Exception {

    private static final long serialVersionUID = 1L;

    private final int status;
    private final String title;
    private final String type;

    /**
     * @param status HTTP status, or 0 when the server gave no answer
     * @param type   the problem's {@code type} URI, null when there is none
     * @param title  short summary (the problem's {@code title})
     * @param detail the reason, with what to do (the problem's {@code detail})
     * @param cause  underlying exception, may be null
     */
    public DeepLIIFException(int status, String type, String title, String detail, Throwable cause) {
        super(detail, cause);
        this.status = status;
        this.type = type;
        this.title = title;
    }

    /**
     * @param status HTTP status, or 0 when the server gave no answer
     * @param title  short summary (the problem's {@code title})
     * @param detail the reason, with what to do (the problem's {@code detail})
     * @param cause  underlying exception, may be null
     */
    public DeepLIIFException(int status, String title, String detail, Throwable cause) {
        this(status, null, title, detail, cause);
    }

    /**
     * @param status HTTP status, or 0 when the server gave no answer
     * @param title  short summary
     * @param detail the reason, with what to do
     */
    public DeepLIIFException(int status, String title, String detail) {
        this(status, null, title, detail, null);
    }

    /** @return HTTP status of the answer, 0 when there was none */
    public int getStatus() {
        return status;
    }

    /** @return the problem's {@code type} URI, null when the answer had none */
    public String getType() {
        return type;
    }

    /**
     * @param name last path segment of a problem type, e.g. "image-not-readable"
     * @return whether this problem's {@code type} ends with {@code "/" + name}
     */
    public boolean isProblem(String name) {
        return type != null && type.endsWith("/" + name);
    }

    /** @return short summary of the problem */
    public String getTitle() {
        return title;
    }

    /** @return the server's reason (the problem's {@code detail}) */
    public String getDetail() {
        return getMessage();
    }
}
