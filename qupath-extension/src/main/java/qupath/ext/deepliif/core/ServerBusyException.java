package qupath.ext.deepliif.core;

/**
 * The server's queue is full (HTTP 429); try again after {@link #getRetryAfterSeconds()}.
 */
public class ServerBusyException extends DeepLIIFException {

    private static final long serialVersionUID = 1L;

    private final int retryAfterSeconds;

    /**
     * @param detail            the server's reason
     * @param retryAfterSeconds the {@code Retry-After} header, or 1 if absent
     */
    public ServerBusyException(String detail, int retryAfterSeconds) {
        super(429, "Server busy", detail);
        this.retryAfterSeconds = retryAfterSeconds;
    }

    /** @return seconds to wait before trying again (>= 1) */
    public int getRetryAfterSeconds() {
        return retryAfterSeconds;
    }
}
