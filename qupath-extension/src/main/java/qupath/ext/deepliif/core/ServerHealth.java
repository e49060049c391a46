package qupath.ext.deepliif.core;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;

/**
 * The answer of {@code GET /api/health}: which engine the server runs and its request limits.
 *
 * @param status    "ok" when the server can score
 * @param version   napari-deepliif version of the server
 * @param engine    "deepliif", "stain" (the classical colour-deconvolution engine) or "classmap"
 * @param model     model name, null for the stain engine
 * @param modelHash model hash, null for the stain engine
 * @param device    "cpu", "cuda", ...
 * @param limits    request limits
 * @param busy      whether a request is running now
 */
public record ServerHealth(String status, String version, String engine, String model, String modelHash,
                           String device, Limits limits, boolean busy) {

    /**
     * Request limits of the server.
     *
     * @param maxRequestBytes largest request body in bytes
     * @param maxPixels       largest image (width x height) in pixels
     * @param queueSize       requests that may wait before the server answers 429
     */
    public record Limits(long maxRequestBytes, long maxPixels, int queueSize) {
    }

    /** @return true when {@link #status()} is "ok" */
    public boolean isOk() {
        return "ok".equals(status);
    }

    /** @return true when the server runs DeepLIIF (not the classical stain engine) */
    public boolean isDeepLIIF() {
        return "deepliif".equals(engine);
    }

    /** @return true when the server runs the classical stain engine (no model at all) */
    public boolean isStain() {
        return "stain".equals(engine);
    }

    /**
     * Read the health JSON object.
     *
     * @param json the parsed body
     * @return the health record
     * @throws DeepLIIFException if a required field is missing
     */
    public static ServerHealth fromJson(JsonObject json) throws DeepLIIFException {
        JsonObject limits = json.has("limits") && json.get("limits").isJsonObject()
                ? json.getAsJsonObject("limits") : null;
        if (limits == null || !json.has("status") || !json.has("engine"))
            throw new DeepLIIFException(0, "Unexpected health answer",
                    "The server's /api/health answer lacks status, engine or limits: is this a napari-deepliif server? Got " + json);
        return new ServerHealth(
                string(json, "status"), string(json, "version"), string(json, "engine"),
                string(json, "model"), string(json, "model_hash"), string(json, "device"),
                new Limits(limits.get("max_request_bytes").getAsLong(), limits.get("max_pixels").getAsLong(),
                        limits.get("queue_size").getAsInt()),
                json.has("busy") && json.get("busy").getAsBoolean());
    }

    static String string(JsonObject json, String key) {
        JsonElement value = json.get(key);
        return value == null || value.isJsonNull() ? null : value.getAsString();
    }
}
