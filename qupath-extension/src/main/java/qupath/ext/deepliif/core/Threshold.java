package qupath.ext.deepliif.core;

import java.util.Locale;

import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonPrimitive;

/**
 * A size or marker threshold as the server takes it: a whole number, {@code "default"} (the
 * reference DeepLIIF rule, computed by the server from the region it scores), or not applied.
 * What "default" means is the server's business; nothing of the rule is copied here.
 *
 * @param kind  a number, the server's default rule, or not applied
 * @param value the number when {@code kind} is {@link Kind#VALUE}, else 0
 */
public record Threshold(Kind kind, int value) {

    /** What a threshold says. */
    public enum Kind {
        /** A whole number. */
        VALUE,
        /** {@code "default"}: the server applies DeepLIIF's rule. */
        DEFAULT,
        /** Not applied (sent as JSON null, or left out of a query). */
        NONE
    }

    /** The server's default rule. */
    public static final Threshold DEFAULT = new Threshold(Kind.DEFAULT, 0);
    /** Not applied. */
    public static final Threshold NONE = new Threshold(Kind.NONE, 0);

    /** The text that asks for the server's default. */
    public static final String DEFAULT_TEXT = "default";
    /** The text that asks for no threshold. */
    public static final String NONE_TEXT = "none";

    public Threshold {
        if (kind == null)
            throw new IllegalArgumentException("A threshold needs a kind");
        if (kind == Kind.VALUE && value < 0)
            throw new IllegalArgumentException("A threshold must be a whole number >= 0, got " + value);
        if (kind != Kind.VALUE && value != 0)
            throw new IllegalArgumentException(kind + " thresholds carry no number");
    }

    /**
     * @param value a whole number >= 0
     * @return that threshold
     */
    public static Threshold of(int value) {
        return new Threshold(Kind.VALUE, value);
    }

    /**
     * Read a threshold from text (preferences) or a script argument.
     *
     * @param value      a whole number (Integer, Long, or an integral Double), "default", "none",
     *                   blank text or null
     * @param whenAbsent what null or blank text means
     * @return the threshold
     * @throws IllegalArgumentException for anything else (a fraction, a negative number, other text)
     */
    public static Threshold parse(Object value, Threshold whenAbsent) {
        if (value == null)
            return whenAbsent;
        if (value instanceof Threshold t)
            return t;
        if (value instanceof Number n) {
            double d = n.doubleValue();
            if (d != Math.rint(d) || d < 0 || d > Integer.MAX_VALUE)
                throw new IllegalArgumentException("A threshold must be a whole number >= 0, \"default\" or \"none\", got " + value);
            return of((int) d);
        }
        String text = value.toString().strip().toLowerCase(Locale.ROOT);
        if (text.isEmpty())
            return whenAbsent;
        if (text.equals(DEFAULT_TEXT))
            return DEFAULT;
        if (text.equals(NONE_TEXT))
            return NONE;
        try {
            return of(Integer.parseInt(text));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("A threshold must be a whole number >= 0, \"default\" or \"none\", got '" + value + "'", e);
        }
    }

    /** @return whether the server applies a threshold (a number or its default) */
    public boolean isApplied() {
        return kind != Kind.NONE;
    }

    /** @return the JSON value of a request body: the number, "default", or null */
    public JsonElement toJson() {
        return switch (kind) {
            case VALUE -> new JsonPrimitive(value);
            case DEFAULT -> new JsonPrimitive(DEFAULT_TEXT);
            case NONE -> JsonNull.INSTANCE;
        };
    }

    /** @return the query value: the number or "default"; null when not applied (the parameter is left out) */
    public String toQuery() {
        return switch (kind) {
            case VALUE -> Integer.toString(value);
            case DEFAULT -> DEFAULT_TEXT;
            case NONE -> null;
        };
    }

    /** @return a Groovy literal that {@link #parse} reads back: {@code 30}, {@code "default"} or {@code null} */
    public String toScript() {
        return switch (kind) {
            case VALUE -> Integer.toString(value);
            case DEFAULT -> "\"" + DEFAULT_TEXT + "\"";
            case NONE -> "null";
        };
    }

    /** @return the preference text: the number, "default" or "none" */
    @Override
    public String toString() {
        return switch (kind) {
            case VALUE -> Integer.toString(value);
            case DEFAULT -> DEFAULT_TEXT;
            case NONE -> NONE_TEXT;
        };
    }
}
