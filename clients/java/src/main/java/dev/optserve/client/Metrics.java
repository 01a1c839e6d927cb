package dev.optserve.client;

import dev.optserve.v1.Metric;
import dev.optserve.v1.MetricObjective;
import dev.optserve.v1.MetricStrategy;

/**
 * Factories for experiment metrics.
 *
 * <pre>{@code
 * Experiments.builder()
 *     .metric(Metrics.maximize("accuracy", 0.8))      // optimized; threshold: region of interest
 *     .metric(Metrics.minimize("cost"))               // second optimized metric: a Pareto front
 *     .metric(Metrics.atMost("latency_ms", 50))       // constraint: latency_ms <= 50
 *     .metric(Metrics.stored("epochs"))               // recorded, never optimized
 * }</pre>
 *
 * <p>A threshold holds when the value is at least it (maximized metrics) or at most it
 * (minimized metrics). Thresholds on optimized metrics are only accepted with two optimized
 * metrics; constraint metrics always need one (at most four per experiment).
 */
public final class Metrics {
  private Metrics() {}

  /** An optimized metric to make as large as possible. */
  public static Metric maximize(String name) {
    return optimized(name, MetricObjective.METRIC_OBJECTIVE_MAXIMIZE).build();
  }

  /**
   * An optimized metric to make as large as possible, of interest only at or above {@code
   * threshold} (two-metric experiments).
   */
  public static Metric maximize(String name, double threshold) {
    return optimized(name, MetricObjective.METRIC_OBJECTIVE_MAXIMIZE)
        .setThreshold(threshold)
        .build();
  }

  /** An optimized metric to make as small as possible. */
  public static Metric minimize(String name) {
    return optimized(name, MetricObjective.METRIC_OBJECTIVE_MINIMIZE).build();
  }

  /**
   * An optimized metric to make as small as possible, of interest only at or below {@code
   * threshold} (two-metric experiments).
   */
  public static Metric minimize(String name, double threshold) {
    return optimized(name, MetricObjective.METRIC_OBJECTIVE_MINIMIZE)
        .setThreshold(threshold)
        .build();
  }

  /**
   * A constraint metric: every observation reports it, and only observations where it is at least
   * {@code threshold} (MAXIMIZE) or at most {@code threshold} (MINIMIZE) can be best.
   */
  public static Metric constraint(String name, MetricObjective objective, double threshold) {
    return Metric.newBuilder()
        .setName(name)
        .setObjective(objective)
        .setStrategy(MetricStrategy.METRIC_STRATEGY_CONSTRAINT)
        .setThreshold(threshold)
        .build();
  }

  /** A constraint metric that must be at most {@code threshold}. */
  public static Metric atMost(String name, double threshold) {
    return constraint(name, MetricObjective.METRIC_OBJECTIVE_MINIMIZE, threshold);
  }

  /** A constraint metric that must be at least {@code threshold}. */
  public static Metric atLeast(String name, double threshold) {
    return constraint(name, MetricObjective.METRIC_OBJECTIVE_MAXIMIZE, threshold);
  }

  /** A metric that is recorded but not optimized; observations may leave it out. */
  public static Metric stored(String name) {
    return Metric.newBuilder()
        .setName(name)
        .setStrategy(MetricStrategy.METRIC_STRATEGY_STORE)
        .build();
  }

  private static Metric.Builder optimized(String name, MetricObjective objective) {
    return Metric.newBuilder()
        .setName(name)
        .setObjective(objective)
        .setStrategy(MetricStrategy.METRIC_STRATEGY_OPTIMIZE);
  }
}
