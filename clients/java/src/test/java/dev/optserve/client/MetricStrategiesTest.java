package dev.optserve.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.optserve.v1.Experiment;
import dev.optserve.v1.GetBestAssignmentsResponse;
import dev.optserve.v1.Observation;
import dev.optserve.v1.Suggestion;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Two optimized metrics, constraint and stored metrics and num_solutions on a real server. */
@Timeout(120)
class MetricStrategiesTest {
  private static OptserveServer server;
  private static OptserveClient client;

  @BeforeAll
  static void startServer() throws Exception {
    server = OptserveServer.start();
    client = OptserveClient.builder().target(server.target()).deadline(Duration.ofSeconds(30)).build();
  }

  @AfterAll
  static void stopServer() throws Exception {
    if (client != null) {
      client.close();
    }
    if (server != null) {
      server.close();
    }
  }

  /** (accuracy, -cost): both larger is better. */
  private static double[] signed(Observation o) {
    return new double[] {Observations.value(o, "accuracy"), -Observations.value(o, "cost")};
  }

  private static boolean dominates(double[] a, double[] b) {
    return a[0] >= b[0] && a[1] >= b[1] && (a[0] > b[0] || a[1] > b[1]);
  }

  @Test
  void twoMetricsBestAssignmentsAreTheParetoFront() {
    Experiment created =
        client.createExperiment(
            Experiments.builder()
                .name("two metrics")
                .doubleParam("x", 0, 1)
                .doubleParam("y", 0, 1)
                .metric(Metrics.maximize("accuracy"))
                .metric(Metrics.minimize("cost"))
                .metric(Metrics.stored("seconds"))
                .budget(16)
                .seed(4)
                .build());
    List<double[]> reported = new ArrayList<>();
    client.loopMetrics(
        created.getId(),
        a -> {
          double x = a.getDouble("x");
          double y = a.getDouble("y"); // y only hurts both metrics: most points are dominated
          double accuracy = 1 - (x - 0.2) * (x - 0.2) - y;
          double cost = (x - 0.8) * (x - 0.8) + y;
          reported.add(new double[] {accuracy, -cost});
          return Map.of("accuracy", accuracy, "cost", cost, "seconds", 10 * x);
        });
    assertEquals(16, reported.size());

    GetBestAssignmentsResponse response = client.bestAssignmentsResponse(created.getId());
    List<Observation> front = client.bestAssignments(created.getId());
    assertEquals(response.getObservationsList(), front);
    assertEquals("", response.getExplanation());
    assertTrue(front.size() >= 1 && front.size() < 16, "front of " + front.size());
    List<double[]> points = front.stream().map(MetricStrategiesTest::signed).toList();
    for (double[] r : reported) {
      // No reported point dominates a front point ...
      assertFalse(points.stream().anyMatch(p -> dominates(r, p)), "dominated front point");
      // ... and every reported point is on the front or dominated by it.
      boolean onFront = points.stream().anyMatch(p -> p[0] == r[0] && p[1] == r[1]);
      assertTrue(onFront || points.stream().anyMatch(p -> dominates(p, r)), "missing from front");
    }
    for (Observation o : front) {
      assertEquals(
          10 * new Assignments(o.getAssignmentsMap()).getDouble("x"),
          Observations.value(o, "seconds"),
          1e-9);
    }
  }

  @Test
  void twoMetricThresholdsBoundTheFront() {
    Experiment created =
        client.createExperiment(
            Experiments.builder()
                .name("two metrics with thresholds")
                .doubleParam("x", 0, 1)
                .metric(Metrics.maximize("f1", 0.3))
                .metric(Metrics.minimize("f2", 0.5))
                .budget(10)
                .build());
    assertEquals(0.3, created.getMetrics(0).getThreshold());
    assertEquals(0.5, created.getMetrics(1).getThreshold());
    for (double x : new double[] {0.1, 0.4, 0.6, 0.9}) {
      // Fixed metric values, whatever was suggested, so the front is known.
      Suggestion s = client.createSuggestion(created.getId());
      client.observe(created.getId(), s.getId(), Map.of("f1", x, "f2", x * x));
    }
    Set<Double> f1 = new HashSet<>();
    client.bestAssignments(created.getId()).forEach(o -> f1.add(Observations.value(o, "f1")));
    // 0.1 is below f1's threshold; 0.9 gives f2 = 0.81, above f2's.
    assertEquals(Set.of(0.4, 0.6), f1);
  }

  private static Experiment constrained(String name, double latencyThreshold) {
    return client.createExperiment(
        Experiments.builder()
            .name(name)
            .doubleParam("x", 0, 1)
            .metric(Metrics.maximize("score"))
            .metric(Metrics.atMost("latency", latencyThreshold))
            .metric(Metrics.stored("memory"))
            .budget(10)
            .seed(2)
            .build());
  }

  @Test
  void constraintMetricBestSatisfiesTheThreshold() {
    Experiment created = constrained("constraint metric", 0.5);
    List<Double> feasibleScores = new ArrayList<>();
    client.loopMetrics(
        created.getId(),
        a -> {
          double x = a.getDouble("x"); // score grows with x; latency = x must stay <= 0.5
          if (x <= 0.5) {
            feasibleScores.add(x);
          }
          return Map.of("score", x, "latency", x, "memory", 100 + x);
        });
    assertFalse(feasibleScores.isEmpty(), "no feasible run; the test needs one");
    List<Observation> best = client.bestAssignments(created.getId());
    assertEquals(1, best.size());
    Observation top = best.get(0);
    assertTrue(Observations.value(top, "latency") <= 0.5, top.toString());
    assertEquals(
        feasibleScores.stream().mapToDouble(Double::doubleValue).max().orElseThrow(),
        Observations.value(top, "score"));
    assertEquals(100 + Observations.value(top, "score"), Observations.value(top, "memory"), 1e-9);
  }

  @Test
  void constraintNeverSatisfiedGivesAnExplanation() {
    Experiment created = constrained("constraint never met", -1);
    for (int i = 0; i < 3; i++) {
      Suggestion s = client.createSuggestion(created.getId());
      client.observe(created.getId(), s.getId(), Map.of("score", 1.0, "latency", 0.5));
    }
    GetBestAssignmentsResponse response = client.bestAssignmentsResponse(created.getId());
    assertEquals(0, response.getObservationsCount());
    assertTrue(response.getExplanation().contains("constraint"), response.getExplanation());
    assertTrue(client.bestAssignments(created.getId()).isEmpty());
  }

  @Test
  void observationMissingAConstraintMetricNamesIt() {
    Experiment created = constrained("constraint metric missing", 0.5);
    Suggestion s = client.createSuggestion(created.getId());
    OptserveException e =
        assertThrows(
            OptserveException.class,
            () -> client.observe(created.getId(), s.getId(), Map.of("score", 1.0)));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
    assertTrue(
        e.getFieldViolations().stream().anyMatch(v -> v.description().contains("latency")),
        "field violations: " + e.getFieldViolations());
    // The stored metric may be left out.
    Observation ok = client.observe(created.getId(), s.getId(), Map.of("score", 1.0, "latency", 0.2));
    assertEquals(Map.of("score", 1.0, "latency", 0.2), Observations.values(ok));
    // loop() takes one objective value; two required metrics need loopMetrics.
    assertThrows(IllegalArgumentException.class, () -> client.loop(created.getId(), a -> 1.0));
  }

  @Test
  void numSolutionsReturnsDistinctSolutions() {
    Experiment created =
        client.createExperiment(
            Experiments.builder()
                .name("two solutions")
                .doubleParam("x", -2, 2)
                .metric(Metrics.maximize("f"))
                .numSolutions(2)
                .budget(16)
                .seed(5)
                .build());
    assertEquals(2, created.getNumSolutions());
    double[] bestValue = {Double.NEGATIVE_INFINITY};
    client.loop(
        created.getId(),
        a -> {
          double x = a.getDouble("x");
          double f = -(x * x - 1) * (x * x - 1); // maxima at -1 and 1
          bestValue[0] = Math.max(bestValue[0], f);
          return f;
        });
    List<Observation> best = client.bestAssignments(created.getId());
    assertEquals(2, best.size());
    assertNotEquals(best.get(0).getId(), best.get(1).getId());
    assertNotEquals(best.get(0).getAssignmentsMap(), best.get(1).getAssignmentsMap());
    assertEquals(bestValue[0], Observations.value(best.get(0), "f"));
  }
}
