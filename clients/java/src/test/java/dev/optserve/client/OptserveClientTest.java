package dev.optserve.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.optserve.v1.AssignmentValue;
import dev.optserve.v1.Experiment;
import dev.optserve.v1.ExperimentState;
import dev.optserve.v1.ExperimentType;
import dev.optserve.v1.Observation;
import dev.optserve.v1.Suggestion;
import dev.optserve.v1.SuggestionState;
import io.grpc.Status;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The client against a real optserve server on a loopback port. */
@Timeout(120)
class OptserveClientTest {
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

  /** SigOpt's "Experiment with constraints" search space. */
  private static Experiments.Builder constrained(int budget) {
    return Experiments.builder()
        .name("Experiment with constraints")
        .doubleParam("alpha", 0, 1)
        .doubleParam("beta", 0, 1)
        .intParam("gamma", 0, 10)
        .intParam("theta", 0, 10)
        .linearConstraint(Constraints.sum().term("alpha", 1).term("beta", 1).lessThan(1))
        .linearConstraint(Constraints.sum().term("gamma", 3).term("theta", -5).greaterThan(0))
        .metric(Metrics.maximize("metric_value"))
        .budget(budget);
  }

  private static void assertFeasible(Map<String, AssignmentValue> a) {
    assertEquals(Set.of("alpha", "beta", "gamma", "theta"), a.keySet(), "assigned names");
    for (String name : List.of("alpha", "beta")) {
      assertEquals(AssignmentValue.KindCase.DOUBLE_VALUE, a.get(name).getKindCase(), name);
      double v = a.get(name).getDoubleValue();
      assertTrue(v >= 0 && v <= 1, name + " = " + v + " outside [0, 1]");
    }
    for (String name : List.of("gamma", "theta")) {
      assertEquals(AssignmentValue.KindCase.INT_VALUE, a.get(name).getKindCase(), name);
      long v = a.get(name).getIntValue();
      assertTrue(v >= 0 && v <= 10, name + " = " + v + " outside [0, 10]");
    }
    double alpha = a.get("alpha").getDoubleValue();
    double beta = a.get("beta").getDoubleValue();
    // Exactly, as a client sums it: the server guarantees it.
    assertTrue(alpha + beta <= 1.0, "alpha + beta = " + (alpha + beta) + " > 1 in " + a);
    long gamma = a.get("gamma").getIntValue();
    long theta = a.get("theta").getIntValue();
    assertTrue(3 * gamma - 5 * theta >= 0, "3 gamma - 5 theta < 0 in " + a);
  }

  @ParameterizedTest
  @EnumSource(
      value = ExperimentType.class,
      names = {"EXPERIMENT_TYPE_OFFLINE", "EXPERIMENT_TYPE_RANDOM"})
  void loopRunsToBudgetAndEverySuggestionIsFeasible(ExperimentType type) {
    int budget = 20;
    Experiment created = client.createExperiment(constrained(budget).type(type).seed(11).build());
    assertFalse(created.getId().isEmpty());

    List<Map<String, AssignmentValue>> seen = new ArrayList<>();
    Experiment done =
        client.loop(
            created.getId(),
            a -> {
              seen.add(a.asProto());
              if (seen.size() == 3) {
                throw new IllegalStateException("simulated evaluation failure");
              }
              return ConstrainedObjective.value(a);
            });

    assertEquals(budget, done.getProgress().getObservationCount());
    assertEquals(1, done.getProgress().getFailedObservationCount());
    assertEquals(0, done.getProgress().getOpenSuggestionCount());
    assertEquals(budget, seen.size());
    seen.forEach(OptserveClientTest::assertFeasible);

    // The best observation is feasible and holds the largest value the loop reported.
    List<Observation> best = client.bestAssignments(created.getId());
    assertEquals(1, best.size());
    Observation top = best.get(0);
    assertFalse(top.getFailed());
    assertFeasible(top.getAssignmentsMap());
    double max =
        seen.stream()
            .filter(a -> seen.indexOf(a) != 2)
            .mapToDouble(a -> ConstrainedObjective.value(new Assignments(a)))
            .max()
            .orElseThrow();
    assertEquals("metric_value", top.getValues(0).getName());
    assertEquals(max, top.getValues(0).getValue(), 1e-12);
    assertEquals(max, ConstrainedObjective.value(new Assignments(top.getAssignmentsMap())), 1e-12);
  }

  @Test
  void loopReportsFailuresAndStopsAtBudget() {
    Experiment created =
        client.createExperiment(
            Experiments.builder()
                .name("unconstrained loop")
                .doubleParam("x", -1, 1)
                .metric(Metrics.minimize("loss"))
                .type(ExperimentType.EXPERIMENT_TYPE_RANDOM)
                .budget(6)
                .build());
    int[] calls = {0};
    Experiment done =
        client.loop(
            created.getId(),
            a -> {
              calls[0]++;
              if (calls[0] == 2) {
                throw new IllegalStateException("simulated evaluation failure");
              }
              return calls[0] == 4 ? Double.NaN : a.getDouble("x") * a.getDouble("x");
            });
    assertEquals(6, calls[0]);
    assertEquals(6, done.getProgress().getObservationCount());
    assertEquals(2, done.getProgress().getFailedObservationCount());
    assertEquals(1, client.bestAssignments(created.getId()).size());
    // A finished loop does nothing more.
    client.loop(created.getId(), a -> { throw new AssertionError("called after budget"); });
  }

  @Test
  void badBoundsNameTheField() {
    OptserveException e =
        assertThrows(
            OptserveException.class,
            () ->
                client.createExperiment(
                    Experiments.builder()
                        .name("bad bounds")
                        .parameter(Parameters.doubleParam("alpha", 1, 0))
                        .metric(Metrics.maximize("v"))
                        .build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
    assertTrue(
        e.getFieldViolations().stream().anyMatch(v -> v.field().contains("parameters[0].bounds")),
        "field violations: " + e.getFieldViolations());
    assertTrue(e.getMessage().contains("parameters[0].bounds"), e.getMessage());
  }

  @Test
  void constraintWithOneTermNamesTheField() {
    OptserveException e =
        assertThrows(
            OptserveException.class,
            () ->
                client.createExperiment(
                    Experiments.builder()
                        .name("one-term constraint")
                        .doubleParam("alpha", 0, 1)
                        .doubleParam("beta", 0, 1)
                        .linearConstraint(Constraints.sum().term("alpha", 1).lessThan(0.5))
                        .metric(Metrics.maximize("v"))
                        .build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode());
    assertTrue(
        e.getFieldViolations().stream()
            .anyMatch(v -> v.field().contains("linear_constraints[0].terms")),
        "field violations: " + e.getFieldViolations());
  }

  @Test
  void unknownExperimentIsNotFound() {
    OptserveException get =
        assertThrows(OptserveException.class, () -> client.getExperiment("999999999"));
    assertEquals(Status.Code.NOT_FOUND, get.getCode());
    OptserveException suggest =
        assertThrows(OptserveException.class, () -> client.createSuggestion("999999999"));
    assertEquals(Status.Code.NOT_FOUND, suggest.getCode());
  }

  @Test
  void archivedExperimentRefusesSuggestions() {
    Experiment created =
        client.createExperiment(constrained(5).type(ExperimentType.EXPERIMENT_TYPE_RANDOM).build());
    Experiment archived = client.archive(created.getId());
    assertEquals(ExperimentState.EXPERIMENT_STATE_ARCHIVED, archived.getState());
    OptserveException e =
        assertThrows(OptserveException.class, () -> client.createSuggestion(created.getId()));
    assertEquals(Status.Code.FAILED_PRECONDITION, e.getCode());
  }

  @Test
  void observationsAndFailuresAreCounted() {
    Experiment created =
        client.createExperiment(
            Experiments.builder()
                .name("unconstrained")
                .doubleParam("alpha", 0, 1)
                .intParam("gamma", 0, 10)
                .categoricalParam("kind", "a", "b")
                .metric(Metrics.maximize("metric_value"))
                .type(ExperimentType.EXPERIMENT_TYPE_RANDOM)
                .budget(10)
                .build());
    var s1 = client.createSuggestion(created.getId());
    var s2 = client.createSuggestion(created.getId());
    Observation ok = client.observe(created.getId(), s1.getId(), "metric_value", 1.5);
    assertEquals(s1.getId(), ok.getSuggestionId());
    assertEquals(s1.getAssignmentsMap(), ok.getAssignmentsMap());
    Assignments a = new Assignments(s1.getAssignmentsMap());
    assertTrue(a.getDouble("alpha") >= 0 && a.getDouble("alpha") <= 1, a.toString());
    assertTrue(a.getInt("gamma") >= 0 && a.getInt("gamma") <= 10, a.toString());
    assertTrue(Set.of("a", "b").contains(a.getString("kind")), a.toString());
    Observation failed = client.observeFailure(created.getId(), s2.getId());
    assertTrue(failed.getFailed());
    Experiment now = client.getExperiment(created.getId());
    assertEquals(2, now.getProgress().getObservationCount());
    assertEquals(1, now.getProgress().getFailedObservationCount());
    // A suggestion is closed once observed.
    OptserveException again =
        assertThrows(
            OptserveException.class,
            () -> client.observe(created.getId(), s1.getId(), "metric_value", 2.0));
    assertEquals(Status.Code.FAILED_PRECONDITION, again.getCode());
  }

  /** Waits until {@code check} holds; fails after 30 s. */
  private static void eventually(java.util.function.BooleanSupplier check) throws InterruptedException {
    long end = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (!check.getAsBoolean()) {
      assertTrue(System.nanoTime() < end, "condition never held");
      Thread.sleep(100);
    }
  }

  private static Experiment randomExperiment(int budget, int leaseSeconds) {
    Experiments.Builder b =
        Experiments.builder()
            .name("leases")
            .doubleParam("x", 0, 1)
            .metric(Metrics.maximize("m"))
            .type(ExperimentType.EXPERIMENT_TYPE_RANDOM)
            .budget(budget);
    if (leaseSeconds > 0) {
      b.suggestionLeaseSeconds(leaseSeconds);
    }
    return client.createExperiment(b.build());
  }

  @Test
  void leasesAreReadAndRenewed() {
    Experiment created = randomExperiment(10, 600);
    assertEquals(600, created.getSuggestionLeaseSeconds());
    Suggestion s = client.createSuggestion(created.getId());
    assertEquals(600, s.getLeaseSeconds());
    assertEquals(SuggestionState.SUGGESTION_STATE_OPEN, s.getState());
    Duration lease = Duration.between(Suggestions.createTime(s), Suggestions.expireTime(s));
    assertTrue(lease.minusSeconds(600).abs().compareTo(Duration.ofSeconds(1)) <= 0, "lease " + lease);

    Suggestion shortLease = client.createSuggestion(created.getId(), 30);
    assertEquals(30, shortLease.getLeaseSeconds());
    Suggestion renewed = client.renewLease(created.getId(), shortLease.getId(), 3600);
    assertEquals(3600, renewed.getLeaseSeconds());
    assertTrue(Suggestions.expireTime(renewed).isAfter(Suggestions.expireTime(shortLease)));
    Suggestion again = client.renewLease(created.getId(), shortLease.getId());
    assertEquals(3600, again.getLeaseSeconds());
    assertEquals(again, client.getSuggestion(created.getId(), shortLease.getId()));
  }

  @Test
  void anExpiredSuggestionStillTakesItsObservation() throws InterruptedException {
    Experiment created = randomExperiment(10, 0);
    Suggestion s = client.createSuggestion(created.getId(), 1);
    eventually(() -> Suggestions.isExpired(client.getSuggestion(created.getId(), s.getId())));
    assertEquals(0, client.getExperiment(created.getId()).getProgress().getOpenSuggestionCount());
    OptserveException e =
        assertThrows(
            OptserveException.class, () -> client.renewLease(created.getId(), s.getId()));
    assertEquals(Status.Code.FAILED_PRECONDITION, e.getCode());
    client.observe(created.getId(), s.getId(), "m", 0.5);
    assertEquals(
        SuggestionState.SUGGESTION_STATE_CLOSED,
        client.getSuggestion(created.getId(), s.getId()).getState());
  }

  /**
   * An evaluation more than twice as long as its 2 s lease: the suggestion is still pending at its
   * end with the heartbeat, and expired without it (its observation is recorded either way).
   */
  @ParameterizedTest
  @org.junit.jupiter.params.provider.ValueSource(booleans = {true, false})
  void theLoopHeartbeatKeepsALongEvaluationPending(boolean heartbeat) {
    Experiment created = randomExperiment(1, 0);
    // renewals every 250 ms: a stall of the loaded machine must exceed 1.75 s to lose the lease
    LoopOptions options = LoopOptions.defaults().leaseSeconds(2).heartbeat(Duration.ofMillis(250));
    if (!heartbeat) {
      options = options.noHeartbeat();
    }
    int[] pending = {-1};
    Experiment done =
        client.loop(
            created.getId(),
            a -> {
              Thread.sleep(4500);
              pending[0] =
                  client.getExperiment(created.getId()).getProgress().getOpenSuggestionCount();
              return a.getDouble("x");
            },
            options);
    assertEquals(heartbeat ? 1 : 0, pending[0]);
    assertEquals(1, done.getProgress().getObservationCount());
    assertEquals(0, done.getProgress().getFailedObservationCount());
  }
}
