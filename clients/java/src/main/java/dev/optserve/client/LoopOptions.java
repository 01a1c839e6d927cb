package dev.optserve.client;

import java.time.Duration;
import java.util.Objects;

/**
 * Options of {@link OptserveClient#loop(String, OptserveClient.Objective, LoopOptions)}: the lease
 * of each suggestion and the heartbeat that renews it while the objective runs.
 *
 * <pre>{@code
 * client.loop(id, objective, LoopOptions.defaults().leaseSeconds(300));   // renewed every 100 s
 * }</pre>
 *
 * <p>A suggestion neither observed nor renewed for its lease expires and stops counting as pending,
 * so the work of a worker that died is handed out again. While the objective runs, a heartbeat
 * renews the lease: by default every third of the lease, or at the interval given to {@link
 * #heartbeat}; {@link #noHeartbeat} turns it off. It stops when the evaluation ends.
 */
public final class LoopOptions {
  private static final LoopOptions DEFAULTS = new LoopOptions(0, null, true);

  private final int leaseSeconds;
  private final Duration heartbeat;
  private final boolean heartbeatOn;

  private LoopOptions(int leaseSeconds, Duration heartbeat, boolean heartbeatOn) {
    this.leaseSeconds = leaseSeconds;
    this.heartbeat = heartbeat;
    this.heartbeatOn = heartbeatOn;
  }

  /** The experiment's lease, renewed every third of it. */
  public static LoopOptions defaults() {
    return DEFAULTS;
  }

  /** The lease of each suggestion, in seconds (the experiment's when 0, the default). */
  public LoopOptions leaseSeconds(int seconds) {
    if (seconds < 0) {
      throw new IllegalArgumentException("leaseSeconds must be >= 0: " + seconds);
    }
    return new LoopOptions(seconds, heartbeat, heartbeatOn);
  }

  /** Renews the lease every {@code interval} while the objective runs. */
  public LoopOptions heartbeat(Duration interval) {
    Objects.requireNonNull(interval, "interval");
    if (interval.isNegative() || interval.isZero()) {
      throw new IllegalArgumentException("heartbeat interval must be positive: " + interval);
    }
    return new LoopOptions(leaseSeconds, interval, true);
  }

  /** Never renews the lease: an evaluation longer than it lets the suggestion expire. */
  public LoopOptions noHeartbeat() {
    return new LoopOptions(leaseSeconds, null, false);
  }

  /** The lease asked for, in seconds; 0 for the experiment's. */
  public int leaseSeconds() {
    return leaseSeconds;
  }

  /**
   * The interval between renewals of a suggestion whose lease is {@code leaseSeconds} long; null
   * without a heartbeat (off, or a lease of 0: a server without leases).
   */
  public Duration heartbeatInterval(int suggestionLeaseSeconds) {
    if (!heartbeatOn) {
      return null;
    }
    if (heartbeat != null) {
      return heartbeat;
    }
    int lease = leaseSeconds > 0 ? leaseSeconds : suggestionLeaseSeconds;
    return lease > 0 ? Duration.ofMillis(lease * 1000L / 3) : null;
  }
}
