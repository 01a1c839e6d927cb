package dev.optserve.client;

import dev.optserve.v1.Metric;
import dev.optserve.v1.MetricObjective;
import dev.optserve.v1.MetricStrategy;

/** Factories for experiment metrics. */
public final class Metrics {
  private Metrics() {}

  /** An optimized metric to make as large as possible. */
  public static Metric maximize(String name) {
    return optimized(name, MetricObjective.METRIC_OBJECTIVE_MAXIMIZE);
  }

  /** An optimized metric to make as small as possible. */
  public static Metric minimize(String name) {
    return optimized(name, MetricObjective.METRIC_OBJECTIVE_MINIMIZE);
  }

  /** A metric that is recorded but not optimized. */
  public static Metric stored(String name) {
    return Metric.newBuilder()
        .setName(name)
        .setStrategy(MetricStrategy.METRIC_STRATEGY_STORE)
        .build();
  }

  private static Metric optimized(String name, MetricObjective objective) {
    return Metric.newBuilder()
        .setName(name)
        .setObjective(objective)
        .setStrategy(MetricStrategy.METRIC_STRATEGY_OPTIMIZE)
        .build();
  }
}
