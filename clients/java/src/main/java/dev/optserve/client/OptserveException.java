package dev.optserve.client;

import com.google.protobuf.Any;
import com.google.protobuf.InvalidProtocolBufferException;
import com.google.rpc.BadRequest;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.protobuf.StatusProto;
import java.util.ArrayList;
import java.util.List;

/**
 * A failed call to the optserve service.
 *
 * <p>Carries the gRPC status code, the server's message and, for {@code INVALID_ARGUMENT}, the
 * field violations the server attached as {@code google.rpc.BadRequest} details (for example field
 * {@code experiment.parameters[0].bounds}).
 */
public final class OptserveException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** One invalid field of a request: its path (e.g. {@code experiment.metrics[1].name}) and the rule. */
  public record FieldViolation(String field, String description) {
    @Override
    public String toString() {
      return field + ": " + description;
    }
  }

  private final Status.Code code;
  private final String description;
  private final List<FieldViolation> fieldViolations;
  private final int attempts;

  OptserveException(
      Status.Code code,
      String description,
      List<FieldViolation> fieldViolations,
      int attempts,
      Throwable cause) {
    super(format(code, description, fieldViolations, attempts), cause);
    this.code = code;
    this.description = description;
    this.fieldViolations = List.copyOf(fieldViolations);
    this.attempts = attempts;
  }

  /** Converts a gRPC failure, reading {@code google.rpc.BadRequest} details when present. */
  static OptserveException from(StatusRuntimeException e, String target) {
    return from(e, target, 1);
  }

  /** {@link #from(StatusRuntimeException, String)} of the last of {@code attempts} attempts. */
  static OptserveException from(StatusRuntimeException e, String target, int attempts) {
    Status status = e.getStatus();
    String description = status.getDescription() == null ? "" : status.getDescription();
    List<FieldViolation> violations = new ArrayList<>();
    com.google.rpc.Status rich = StatusProto.fromThrowable(e);
    if (rich != null) {
      if (!rich.getMessage().isEmpty()) {
        description = rich.getMessage();
      }
      for (Any detail : rich.getDetailsList()) {
        if (detail.is(BadRequest.class)) {
          try {
            for (BadRequest.FieldViolation v : detail.unpack(BadRequest.class).getFieldViolationsList()) {
              violations.add(new FieldViolation(v.getField(), v.getDescription()));
            }
          } catch (InvalidProtocolBufferException ignored) {
            // A malformed detail is no reason to hide the status itself.
          }
        }
      }
    }
    if (status.getCode() == Status.Code.UNAVAILABLE
        || status.getCode() == Status.Code.DEADLINE_EXCEEDED) {
      Throwable cause = status.getCause();
      while (cause != null && cause.getCause() != null) {
        cause = cause.getCause();
      }
      String why = cause == null || cause.getMessage() == null ? "" : " (" + cause.getMessage() + ")";
      description = "cannot reach optserve at " + target + ": " + description + why;
    }
    return new OptserveException(status.getCode(), description, violations, attempts, e);
  }

  /** The gRPC status code, e.g. {@code INVALID_ARGUMENT}, {@code NOT_FOUND}, {@code UNAVAILABLE}. */
  public Status.Code getCode() {
    return code;
  }

  /** The server's message (or the transport's, for connection failures). */
  public String getDescription() {
    return description;
  }

  /** Invalid fields named by the server; empty unless the code is {@code INVALID_ARGUMENT}. */
  public List<FieldViolation> getFieldViolations() {
    return fieldViolations;
  }

  /** How many times the call was made (retries included) before it failed with this error. */
  public int getAttempts() {
    return attempts;
  }

  private static String format(
      Status.Code code, String description, List<FieldViolation> violations, int attempts) {
    StringBuilder sb = new StringBuilder(code.name());
    if (!description.isEmpty()) {
      sb.append(": ").append(description);
    }
    if (attempts > 1) {
      sb.append(" (after ").append(attempts).append(" attempts)");
    }
    for (FieldViolation v : violations) {
      if (!description.contains(v.toString())) {
        sb.append("\n  ").append(v);
      }
    }
    return sb.toString();
  }
}
