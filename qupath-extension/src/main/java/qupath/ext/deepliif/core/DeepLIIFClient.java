package qupath.ext.deepliif.core;

import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

/**
 * Client of the local napari-deepliif engine server ({@code napari-deepliif serve}), on the
 * JDK's {@link HttpClient}.
 * <p>
 * Every call but {@link #health()} sends {@code Authorization: Bearer <token>}. Error answers
 * (problem JSON) become {@link DeepLIIFException}s whose message is the server's {@code detail};
 * 409 becomes {@link CancelledException}, 429 {@link ServerBusyException}.
 */
public final class DeepLIIFClient {

    /** Where {@code napari-deepliif serve} listens by default. */
    public static final URI DEFAULT_URL = URI.create("http://127.0.0.1:8642");

    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(10);
    private static final Duration HEALTH_TIMEOUT = Duration.ofSeconds(30);
    private static final Duration SCORE_TIMEOUT = Duration.ofMinutes(30);
    private static final int DETAIL_SNIPPET = 500;

    private final URI base;
    private final String token;
    private final HttpClient http;

    /**
     * @param base  server URL, e.g. {@code http://127.0.0.1:8642}
     * @param token the server's token ({@code napari-deepliif token}), may be null for health only
     */
    public DeepLIIFClient(URI base, String token) {
        String text = base.toString();
        this.base = URI.create(text.endsWith("/") ? text.substring(0, text.length() - 1) : text);
        this.token = token;
        this.http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1) // no h2c upgrade attempts on plain-HTTP loopback
                .connectTimeout(CONNECT_TIMEOUT).build();
    }

    /** @return the server URL, without a trailing '/' */
    public URI getBaseUrl() {
        return base;
    }

    /**
     * {@code GET /api/health} (no token needed).
     *
     * @return what the server runs and its limits
     * @throws DeepLIIFException if the server cannot be reached or answers an error
     */
    public ServerHealth health() throws DeepLIIFException {
        HttpRequest request = HttpRequest.newBuilder(endpoint("/api/health", null)).timeout(HEALTH_TIMEOUT).GET().build();
        return ServerHealth.fromJson(send(request));
    }

    /**
     * {@code POST /api/regions/score}: the server reads a region of an image file itself and
     * scores it.
     *
     * @param body the JSON body (see {@link ScoreRegion#requestBody})
     * @return the counted cells (level-0 pixels) and the score record
     * @throws DeepLIIFException with the server's reason on any error; 422 with a problem type
     *                           ending in {@code /image-not-readable} when the server cannot
     *                           open the file, 404 from a server without the route
     */
    public ScoreResponse scoreRegion(JsonObject body) throws DeepLIIFException {
        HttpRequest request = authorized(endpoint("/api/regions/score", null))
                .timeout(SCORE_TIMEOUT)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body.toString(), StandardCharsets.UTF_8))
                .build();
        return ScoreResponse.fromJson(send(request));
    }

    /**
     * {@code POST /api/score}: score one uploaded image.
     *
     * @param image       the bytes of one 8-bit RGB(A) PNG or TIFF
     * @param contentType "image/png" or "image/tiff"
     * @param query       query parameters (see {@link ScoreSettings#queryParameters})
     * @return the counted cells (at {@code (x + origin) * downsample}) and the score record
     * @throws DeepLIIFException with the server's reason on any error
     */
    public ScoreResponse score(byte[] image, String contentType, Map<String, String> query) throws DeepLIIFException {
        HttpRequest request = authorized(endpoint("/api/score", ScoreSettings.encode(query)))
                .timeout(SCORE_TIMEOUT)
                .header("Content-Type", contentType)
                .POST(HttpRequest.BodyPublishers.ofByteArray(image))
                .build();
        return ScoreResponse.fromJson(send(request));
    }

    /**
     * {@code POST /api/cancel}: cancel a queued or running request.
     *
     * @param requestId the {@code request_id} it was sent with; null cancels the running one
     * @return whether the server had something to cancel
     * @throws DeepLIIFException on any error
     */
    public boolean cancel(String requestId) throws DeepLIIFException {
        String query = requestId == null ? null : ScoreSettings.encode(Map.of("request_id", requestId));
        HttpRequest request = authorized(endpoint("/api/cancel", query))
                .timeout(HEALTH_TIMEOUT).POST(HttpRequest.BodyPublishers.noBody()).build();
        JsonElement cancelled = send(request).get("cancelled");
        return cancelled != null && cancelled.getAsBoolean();
    }

    private URI endpoint(String path, String query) {
        return URI.create(base + path + (query == null || query.isEmpty() ? "" : "?" + query));
    }

    private HttpRequest.Builder authorized(URI uri) {
        HttpRequest.Builder builder = HttpRequest.newBuilder(uri);
        if (token != null && !token.isBlank())
            builder.header("Authorization", "Bearer " + token.strip());
        return builder;
    }

    private JsonObject send(HttpRequest request) throws DeepLIIFException {
        HttpResponse<String> response;
        try {
            response = http.send(request, HttpResponse.BodyHandlers.ofString());
        } catch (ConnectException | HttpConnectTimeoutException e) {
            throw new DeepLIIFException(0, "Server not reachable", "Cannot reach the DeepLIIF server at " + base
                    + ". Start it with 'napari-deepliif serve' (or check the URL in Extensions > DeepLIIF > Preferences).", e);
        } catch (IOException e) {
            throw new DeepLIIFException(0, "Connection failed", "The connection to the DeepLIIF server at " + base
                    + " failed: " + e + ". Is the server still running?", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new CancelledException("Interrupted while waiting for the DeepLIIF server.");
        }
        if (response.statusCode() / 100 != 2)
            throw problem(response);
        try {
            JsonElement body = JsonParser.parseString(response.body());
            if (!body.isJsonObject())
                throw new JsonParseException("not a JSON object");
            return body.getAsJsonObject();
        } catch (JsonParseException e) {
            throw new DeepLIIFException(response.statusCode(), "Unexpected answer", "The server at " + base
                    + " did not answer JSON (" + snippet(response.body()) + "): is it a napari-deepliif server?", e);
        }
    }

    /** The exception for an error answer, from its problem JSON when there is one. */
    static DeepLIIFException problem(HttpResponse<String> response) {
        int status = response.statusCode();
        String title = "HTTP " + status;
        String type = null;
        String detail = snippet(response.body());
        try {
            JsonElement body = JsonParser.parseString(response.body());
            if (body.isJsonObject()) {
                JsonObject problem = body.getAsJsonObject();
                title = problem.has("title") ? ServerHealth.string(problem, "title") : title;
                type = ServerHealth.string(problem, "type");
                detail = problem.has("detail") ? ServerHealth.string(problem, "detail") : detail;
            }
        } catch (JsonParseException | IllegalStateException | UnsupportedOperationException e) {
            // Not problem JSON (e.g. a proxy's HTML page): the body snippet is the reason.
        }
        if (status == 409)
            return new CancelledException(detail);
        if (status == 429) {
            int retry = response.headers().firstValue("Retry-After").map(DeepLIIFClient::seconds).orElse(1);
            return new ServerBusyException(detail, retry);
        }
        if (status == 401)
            detail = detail + " (Check the token in Extensions > DeepLIIF > Preferences; 'napari-deepliif token' prints it.)";
        return new DeepLIIFException(status, type, title, detail, null);
    }

    private static int seconds(String header) {
        try {
            return Math.max(1, Integer.parseInt(header.trim()));
        } catch (NumberFormatException e) {
            return 1;
        }
    }

    private static String snippet(String body) {
        if (body == null || body.isBlank())
            return "empty answer";
        String text = body.strip();
        return text.length() <= DETAIL_SNIPPET ? text : text.substring(0, DETAIL_SNIPPET) + "...";
    }
}
