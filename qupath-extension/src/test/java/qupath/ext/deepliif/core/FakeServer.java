package qupath.ext.deepliif.core;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.Deque;
import java.util.List;
import java.util.Map;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

/**
 * A scripted HTTP server on loopback for the request/fallback logic of the client, where the
 * real server's behaviour (older server without a route, a file it cannot open, a full queue)
 * cannot be produced on demand. It answers each path from a queue of scripted answers and
 * records what it was sent.
 */
final class FakeServer implements AutoCloseable {

    /** One scripted answer. */
    record Answer(int status, String contentType, String body, Map<String, String> headers) {
        static Answer json(String body) {
            return new Answer(200, "application/json", body, Map.of());
        }

        static Answer problem(int status, String type, String detail) {
            return new Answer(status, "application/problem+json", "{\"type\": \"" + type + "\", \"title\": \"Problem\", "
                    + "\"status\": " + status + ", \"detail\": \"" + detail + "\"}", Map.of());
        }
    }

    /** One request received. */
    record Received(String method, String path, String query, String contentType, String authorization, byte[] body) {
        String text() {
            return new String(body, StandardCharsets.UTF_8);
        }
    }

    private final HttpServer server;
    private final Map<String, Deque<Answer>> answers = new java.util.concurrent.ConcurrentHashMap<>();
    private final List<Received> received = Collections.synchronizedList(new ArrayList<>());

    FakeServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/", this::handle);
        server.start();
    }

    /** Queue answers for a path (e.g. "/api/score"); an unscripted path answers 404. */
    FakeServer on(String path, Answer... scripted) {
        answers.computeIfAbsent(path, p -> new ArrayDeque<>()).addAll(List.of(scripted));
        return this;
    }

    URI url() {
        return URI.create("http://127.0.0.1:" + server.getAddress().getPort());
    }

    List<Received> received() {
        return List.copyOf(received);
    }

    List<String> paths() {
        return received().stream().map(Received::path).toList();
    }

    private void handle(HttpExchange exchange) throws IOException {
        String path = exchange.getRequestURI().getPath();
        byte[] body = exchange.getRequestBody().readAllBytes();
        received.add(new Received(exchange.getRequestMethod(), path, exchange.getRequestURI().getRawQuery(),
                exchange.getRequestHeaders().getFirst("Content-Type"), exchange.getRequestHeaders().getFirst("Authorization"), body));
        Deque<Answer> queue = answers.get(path);
        Answer answer = queue == null || queue.isEmpty()
                ? Answer.problem(404, "about:blank", "Not Found") : queue.poll();
        byte[] bytes = answer.body().getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", answer.contentType());
        answer.headers().forEach((k, v) -> exchange.getResponseHeaders().add(k, v));
        exchange.sendResponseHeaders(answer.status(), bytes.length);
        exchange.getResponseBody().write(bytes);
        exchange.close();
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
