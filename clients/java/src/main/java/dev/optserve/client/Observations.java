package dev.optserve.client;

import dev.optserve.v1.MetricValue;
import dev.optserve.v1.Observation;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;

/** Reads the metric values of an {@link Observation} by name. */
public final class Observations {
  private Observations() {}

  /** Metric name to value, in the order reported (empty for a failed observation). */
  public static Map<String, Double> values(Observation observation) {
    Map<String, Double> out = new LinkedHashMap<>();
    for (MetricValue v : observation.getValuesList()) {
      out.put(v.getName(), v.getValue());
    }
    return Collections.unmodifiableMap(out);
  }

  /** The value of {@code metric}; throws when the observation does not report it. */
  public static double value(Observation observation, String metric) {
    for (MetricValue v : observation.getValuesList()) {
      if (v.getName().equals(metric)) {
        return v.getValue();
      }
    }
    throw new IllegalArgumentException(
        "observation " + observation.getId() + " has no value for " + metric
            + " (has " + values(observation).keySet() + ")");
  }
}
