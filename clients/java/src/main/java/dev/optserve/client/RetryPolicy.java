package dev.optserve.client;

import io.grpc.Status;
import java.time.Duration;
import java.util.EnumSet;
import java.util.Objects;
import java.util.Random;
import java.util.Set;

/**
 * How an {@link OptserveClient} retries a failed call.
 *
 * <p>A call failing with {@code UNAVAILABLE} or {@code DEADLINE_EXCEEDED} is made again, up to
 * {@code maxAttempts} attempts in all, after a pause drawn uniformly from {@code [0,
 * min(maxBackoff, initialBackoff * multiplier^n)]} before retry {@code n + 1} ("full jitter", so
 * that many clients do not retry in step). Every other code is thrown at once. A write carries the
 * same request id on each of its attempts, so the server applies it once and a retry of a write
 * already applied returns the first response.
 *
 * <p>{@code deadline}, when not null, bounds the whole call, attempts and pauses included: an
 * attempt's own deadline ({@link OptserveClient.Builder#deadline}) is cut to what is left of it,
 * and no pause runs past it.
 *
 * @param maxAttempts attempts in all, the first included (1: never retry)
 * @param initialBackoff upper bound of the first pause
 * @param maxBackoff cap of the pause's upper bound
 * @param multiplier growth of the upper bound from one retry to the next
 * @param deadline time allowed for the whole call, or null for no bound but {@code maxAttempts}
 */
public record RetryPolicy(
    int maxAttempts,
    Duration initialBackoff,
    Duration maxBackoff,
    double multiplier,
    Duration deadline) {

  private static final Set<Status.Code> RETRYABLE =
      EnumSet.of(Status.Code.UNAVAILABLE, Status.Code.DEADLINE_EXCEEDED);

  /** 5 attempts, pauses of up to 0.1 s doubling to at most 5 s, no overall deadline. */
  public static final RetryPolicy DEFAULT =
      new RetryPolicy(5, Duration.ofMillis(100), Duration.ofSeconds(5), 2.0, null);

  public RetryPolicy {
    Objects.requireNonNull(initialBackoff, "initialBackoff");
    Objects.requireNonNull(maxBackoff, "maxBackoff");
    if (maxAttempts < 1) {
      throw new IllegalArgumentException("maxAttempts must be >= 1: " + maxAttempts);
    }
    if (initialBackoff.isNegative() || initialBackoff.compareTo(maxBackoff) > 0) {
      throw new IllegalArgumentException("need 0 <= initialBackoff <= maxBackoff");
    }
    if (!(multiplier >= 1)) {
      throw new IllegalArgumentException("multiplier must be >= 1: " + multiplier);
    }
    if (deadline != null && (deadline.isNegative() || deadline.isZero())) {
      throw new IllegalArgumentException("deadline must be positive: " + deadline);
    }
  }

  /** A policy that makes every call once. */
  public static RetryPolicy never() {
    return DEFAULT.withMaxAttempts(1);
  }

  public RetryPolicy withMaxAttempts(int attempts) {
    return new RetryPolicy(attempts, initialBackoff, maxBackoff, multiplier, deadline);
  }

  public RetryPolicy withBackoff(Duration initial, Duration max) {
    return new RetryPolicy(maxAttempts, initial, max, multiplier, deadline);
  }

  public RetryPolicy withMultiplier(double factor) {
    return new RetryPolicy(maxAttempts, initialBackoff, maxBackoff, factor, deadline);
  }

  /** The bound of the whole call; null for none. */
  public RetryPolicy withDeadline(Duration overall) {
    return new RetryPolicy(maxAttempts, initialBackoff, maxBackoff, multiplier, overall);
  }

  /** Whether a call failing with {@code code} is retried. */
  public static boolean isRetryable(Status.Code code) {
    return RETRYABLE.contains(code);
  }

  /** Upper bound of the pause before retry {@code retry + 1} ({@code retry} from 0). */
  public Duration backoffCap(int retry) {
    double nanos = initialBackoff.toNanos();
    double max = maxBackoff.toNanos();
    for (int i = 0; i < retry && nanos < max; i++) {
      nanos *= multiplier;
    }
    return Duration.ofNanos((long) Math.min(nanos, max));
  }

  /** A pause before retry {@code retry + 1}: uniform in {@code [0, backoffCap(retry)]}. */
  public Duration backoff(int retry, Random random) {
    return Duration.ofNanos((long) (random.nextDouble() * backoffCap(retry).toNanos()));
  }
}
