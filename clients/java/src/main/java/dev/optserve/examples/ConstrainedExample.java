package dev.optserve.examples;

import dev.optserve.client.Assignments;
import dev.optserve.client.Constraints;
import dev.optserve.client.Experiments;
import dev.optserve.client.Metrics;
import dev.optserve.client.OptserveClient;
import dev.optserve.client.Parameters;
import dev.optserve.v1.Experiment;
import dev.optserve.v1.GetBestAssignmentsResponse;
import dev.optserve.v1.Observation;

/**
 * Optimizes a made-up function over SigOpt's "Experiment with constraints" search space:
 * alpha, beta in [0, 1] with alpha + beta <= 1, and integers gamma, theta in [0, 10] with
 * 3 gamma - 5 theta >= 0.
 *
 * <p>Run against a server at {@code OPTSERVE_TARGET} (default localhost:50051):
 *
 * <pre>
 * ./mvnw -q compile exec:java
 * </pre>
 */
public final class ConstrainedExample {
  private ConstrainedExample() {}

  /** A smooth bump peaking at alpha = 0.6, beta = 0.3, gamma = 8, theta = 4 (feasible). */
  static double metricValue(double alpha, double beta, long gamma, long theta) {
    return 2.0
        - (alpha - 0.6) * (alpha - 0.6)
        - (beta - 0.3) * (beta - 0.3)
        - 0.01 * (gamma - 8) * (gamma - 8)
        - 0.01 * (theta - 4) * (theta - 4);
  }

  public static void main(String[] args) {
    int budget = args.length > 0 ? Integer.parseInt(args[0]) : 30;
    try (OptserveClient client = OptserveClient.connect()) {
      Experiment experiment =
          client.createExperiment(
              Experiments.builder()
                  .name("Experiment with constraints")
                  .project("optserve-examples")
                  .parameter(Parameters.doubleParam("alpha", 0, 1))
                  .parameter(Parameters.doubleParam("beta", 0, 1))
                  .intParam("gamma", 0, 10)
                  .intParam("theta", 0, 10)
                  // alpha + beta <= 1
                  .linearConstraint(Constraints.sum().term("alpha", 1).term("beta", 1).lessThan(1))
                  // 3 gamma - 5 theta >= 0
                  .linearConstraint(
                      Constraints.sum().term("gamma", 3).term("theta", -5).greaterThan(0))
                  .metric(Metrics.maximize("metric_value"))
                  .budget(budget)
                  .build());
      System.out.printf("Created experiment %s on %s%n", experiment.getId(), client.target());

      experiment =
          client.loop(
              experiment.getId(),
              a ->
                  metricValue(
                      a.getDouble("alpha"), a.getDouble("beta"), a.getInt("gamma"), a.getInt("theta")));
      System.out.printf(
          "Observations: %d (%d failed)%n",
          experiment.getProgress().getObservationCount(),
          experiment.getProgress().getFailedObservationCount());

      GetBestAssignmentsResponse best = client.bestAssignmentsResponse(experiment.getId());
      if (best.getObservationsCount() == 0) {
        System.out.println("No best assignments: " + best.getExplanation());
      }
      for (Observation o : best.getObservationsList()) {
        System.out.printf(
            "Best: %s -> metric_value = %.4f%n",
            new Assignments(o.getAssignmentsMap()), o.getValues(0).getValue());
      }
    }
  }
}
