package dev.optserve.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Struct;
import dev.optserve.client.ScriptedServer.Seen;
import dev.optserve.v1.CreateObservationRequest;
import dev.optserve.v1.CreateSuggestionsRequest;
import dev.optserve.v1.Experiment;
import dev.optserve.v1.Observation;
import dev.optserve.v1.OptimizationServiceGrpc;
import dev.optserve.v1.Project;
import dev.optserve.v1.RenewSuggestionLeaseRequest;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/** Retries and request ids, against a real gRPC server in the test process that fails on cue. */
@Timeout(60)
class RetryTest {
  private static final Pattern UUID4 =
      Pattern.compile("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  private static final RetryPolicy FAST =
      RetryPolicy.DEFAULT.withBackoff(Duration.ofMillis(10), Duration.ofMillis(50));

  private static ScriptedServer server;

  @BeforeAll
  static void start() throws Exception {
    server = new ScriptedServer();
  }

  @AfterAll
  static void stop() throws Exception {
    server.close();
  }

  private static OptserveClient client(RetryPolicy policy, Duration deadline) {
    return OptserveClient.builder()
        .target(server.target())
        .token("t0k")
        .deadline(deadline)
        .retryPolicy(policy)
        .environment(name -> null)
        .build();
  }

  private static OptserveClient client() {
    return client(FAST, Duration.ofSeconds(10));
  }

  /** One call of each write the client makes, by its RPC. */
  private static final Map<String, Consumer<OptserveClient>> WRITES =
      Map.ofEntries(
          Map.entry(
              "CreateExperiment", c -> c.createExperiment(Experiment.newBuilder().setName("x").build())),
          Map.entry("UpdateExperiment", c -> c.archive("7")),
          Map.entry("CreateSuggestions", c -> c.createSuggestions("7", 2, 60)),
          Map.entry("RenewSuggestionLease", c -> c.renewLease("7", "11", 60)),
          Map.entry(
              "UpdateSuggestion",
              c -> c.updateSuggestionMetadata("7", "11", Struct.getDefaultInstance())),
          Map.entry("CreateObservation", c -> c.observe("7", "1", "m", 1.5)),
          Map.entry(
              "BatchCreateObservations",
              c -> c.createObservations(
                  "7", List.of(Observation.newBuilder().setSuggestionId("1").build()))),
          Map.entry("CreateQueuedSuggestion", c -> c.createQueuedSuggestion("7", Map.of())),
          Map.entry("DeleteQueuedSuggestion", c -> c.deleteQueuedSuggestion("7", "41")),
          Map.entry("CreateProject", c -> c.createProject("p", "P")),
          Map.entry(
              "UpdateProject",
              c -> c.updateProject(Project.newBuilder().setId("p").setName("P").build(), "name")),
          Map.entry("CreateTrainingRun", c -> c.createProjectRun("p", "r")),
          Map.entry("UpdateTrainingRun", c -> c.logMetric("31", "m", 1.0)),
          Map.entry("DeleteTrainingRun", c -> c.deleteTrainingRun("31")),
          Map.entry("CreateCheckpoint", c -> c.createCheckpoint("31", Map.of("m", 1.0))));

  static Stream<Arguments> writes() {
    return WRITES.entrySet().stream().map(e -> Arguments.of(e.getKey(), e.getValue()));
  }

  @Test
  void everyWriteOfTheClientIsCovered() {
    // Every RPC but the reads is a write; the client offers all but these deletes and updates.
    Set<String> notOffered =
        Set.of("DeleteExperiment", "DeleteSuggestion", "UpdateObservation", "DeleteObservation");
    Set<String> writes =
        OptimizationServiceGrpc.getServiceDescriptor().getMethods().stream()
            .map(m -> m.getBareMethodName())
            .filter(name -> !name.startsWith("Get") && !name.startsWith("List"))
            .filter(name -> !notOffered.contains(name))
            .collect(Collectors.toSet());
    assertEquals(writes, WRITES.keySet());
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("writes")
  void aWriteKeepsItsRequestIdAcrossRetries(String method, Consumer<OptserveClient> write) {
    server.reset(Status.Code.UNAVAILABLE, Status.Code.UNAVAILABLE);
    try (OptserveClient c = client()) {
      write.accept(c);
      List<Seen> attempts = server.calls(method);
      assertEquals(3, attempts.size());
      Set<String> ids = attempts.stream().map(Seen::requestId).collect(Collectors.toSet());
      assertEquals(1, ids.size(), "ids " + ids);
      assertTrue(UUID4.matcher(ids.iterator().next()).matches(), "id " + ids);
      // The same request, token included, on every attempt.
      assertEquals(1, attempts.stream().map(s -> s.request().toByteString()).distinct().count());
      attempts.forEach(s -> assertEquals("Bearer t0k", s.authorization()));

      write.accept(c);
      List<Seen> again = server.calls(method);
      assertEquals(4, again.size());
      assertNotEquals(attempts.get(0).requestId(), again.get(3).requestId());
    }
  }

  @Test
  void readsAreRetried() {
    server.reset(Status.Code.UNAVAILABLE, Status.Code.DEADLINE_EXCEEDED);
    try (OptserveClient c = client()) {
      assertEquals("fake", c.getExperiment("7").getName());
    }
    assertEquals(3, server.calls("GetExperiment").size());
  }

  @Test
  void renewalsAreRetried() {
    server.reset(Status.Code.UNAVAILABLE);
    try (OptserveClient c = client()) {
      assertEquals(ScriptedServer.LEASE_SECONDS, c.renewLease("7", "11", 60).getLeaseSeconds());
    }
    List<Seen> attempts = server.calls("RenewSuggestionLease");
    assertEquals(2, attempts.size());
    assertEquals(1, attempts.stream().map(s -> s.request().toByteString()).distinct().count());
  }

  @Test
  void anAttemptPastItsDeadlineIsRetriedWithTheSameId() {
    server.reset(ScriptedServer.HANG);
    try (OptserveClient c = client(FAST, Duration.ofMillis(500))) {
      c.createSuggestion("7");
    }
    List<Seen> attempts = server.calls("CreateSuggestions");
    assertEquals(2, attempts.size());
    assertNotNull(attempts.get(0).requestId());
    assertEquals(attempts.get(0).requestId(), attempts.get(1).requestId());
  }

  @Test
  void retriesStopAfterMaxAttempts() {
    server.reset(
        Status.Code.UNAVAILABLE,
        Status.Code.UNAVAILABLE,
        Status.Code.UNAVAILABLE,
        Status.Code.UNAVAILABLE,
        Status.Code.UNAVAILABLE);
    try (OptserveClient c = client(FAST.withMaxAttempts(3), Duration.ofSeconds(10))) {
      OptserveException e =
          assertThrows(OptserveException.class, () -> c.observeFailure("7", "1"));
      assertEquals(Status.Code.UNAVAILABLE, e.getCode());
      assertEquals(3, e.getAttempts());
      assertTrue(e.getMessage().contains("after 3 attempts"), e.getMessage());
    }
    assertEquals(3, server.calls("CreateObservation").size());
  }

  @ParameterizedTest
  @EnumSource(
      value = Status.Code.class,
      mode = EnumSource.Mode.EXCLUDE,
      names = {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"})
  void otherCodesAreNotRetried(Status.Code code) {
    server.reset(code);
    try (OptserveClient c = client()) {
      OptserveException e = assertThrows(OptserveException.class, () -> c.createSuggestion("7"));
      assertEquals(code, e.getCode());
      assertEquals(1, e.getAttempts());
      assertEquals(1, server.calls("CreateSuggestions").size());
      server.reset(code);
      assertThrows(OptserveException.class, () -> c.getExperiment("7"));
      assertEquals(1, server.calls("GetExperiment").size());
    }
  }

  @Test
  void theOverallDeadlineBoundsAttemptsAndPauses() {
    server.reset(
        ScriptedServer.HANG, ScriptedServer.HANG, ScriptedServer.HANG, ScriptedServer.HANG);
    // Each attempt's 30 s deadline is cut to the call's 0.5 s: nothing is left to retry with.
    RetryPolicy policy = FAST.withDeadline(Duration.ofMillis(500));
    try (OptserveClient c = client(policy, Duration.ofSeconds(30))) {
      OptserveException e = assertThrows(OptserveException.class, () -> c.createSuggestion("7"));
      assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getCode());
      assertEquals(1, e.getAttempts());
    }
    assertEquals(1, server.calls("CreateSuggestions").size());
  }

  @Test
  void aPausePastTheOverallDeadlineIsNotTaken() {
    server.reset(Status.Code.UNAVAILABLE, Status.Code.UNAVAILABLE);
    RetryPolicy policy =
        RetryPolicy.DEFAULT
            .withBackoff(Duration.ofSeconds(100), Duration.ofSeconds(100))
            .withDeadline(Duration.ofSeconds(5));
    // Pauses are drawn from [0, 100] s; the seeded first draw is past the 5 s deadline.
    assertTrue(policy.backoff(0, new Random(1)).compareTo(Duration.ofSeconds(5)) > 0);
    try (OptserveClient c =
        OptserveClient.builder()
            .target(server.target())
            .retryPolicy(policy)
            .random(new Random(1))
            .environment(name -> null)
            .build()) {
      OptserveException e = assertThrows(OptserveException.class, () -> c.getExperiment("7"));
      assertEquals(Status.Code.UNAVAILABLE, e.getCode());
      assertEquals(1, e.getAttempts());
    }
  }

  @Test
  void backoffIsFullJitterUnderADoublingCap() {
    RetryPolicy p = RetryPolicy.DEFAULT;
    assertEquals(5, p.maxAttempts());
    List<Long> caps =
        Stream.iterate(0, n -> n + 1).limit(8).map(n -> p.backoffCap(n).toMillis()).toList();
    assertEquals(List.of(100L, 200L, 400L, 800L, 1600L, 3200L, 5000L, 5000L), caps);
    assertEquals(Duration.ofSeconds(5), p.backoffCap(100_000));
    Random random = new Random(0);
    List<Duration> draws = Stream.generate(() -> p.backoff(3, random)).limit(200).toList();
    assertTrue(draws.stream().allMatch(d -> !d.isNegative() && d.toMillis() <= 800), "" + draws);
    assertTrue(draws.stream().anyMatch(d -> d.toMillis() < 100), "spread low");
    assertTrue(draws.stream().anyMatch(d -> d.toMillis() > 700), "spread high");
    assertTrue(RetryPolicy.isRetryable(Status.Code.UNAVAILABLE));
    assertTrue(RetryPolicy.isRetryable(Status.Code.DEADLINE_EXCEEDED));
    assertEquals(1, RetryPolicy.never().maxAttempts());
    assertThrows(IllegalArgumentException.class, () -> p.withMaxAttempts(0));
    assertThrows(
        IllegalArgumentException.class,
        () -> p.withBackoff(Duration.ofSeconds(2), Duration.ofSeconds(1)));
    assertThrows(IllegalArgumentException.class, () -> p.withMultiplier(0.5));
    assertThrows(IllegalArgumentException.class, () -> p.withDeadline(Duration.ZERO));
  }

  @Test
  void theLoopRenewsLeasesWhileTheObjectiveRunsAndStopsBeforeObserving() {
    server.reset();
    server.budget(2);
    try (OptserveClient c = client()) {
      LoopOptions options = LoopOptions.defaults().leaseSeconds(90).heartbeat(Duration.ofMillis(50));
      int[] runs = {0};
      c.loop(
          "7",
          a -> {
            runs[0]++;
            server.awaitCalls("RenewSuggestionLease", 2 * runs[0], Duration.ofSeconds(30));
            return 1.0;
          },
          options);
      assertEquals(2, runs[0]);
    } finally {
      server.budget(100);
    }
    List<Seen> seen = server.seen();
    List<String> order =
        seen.stream()
            .filter(s -> !s.method().equals("GetExperiment"))
            .map(s -> s.method() + ":" + suggestionOf(s))
            .toList();
    // Every renewal of a suggestion comes after its creation and before its observation.
    for (String id : List.of("1", "2")) {
      int created = order.indexOf("CreateSuggestions:" + id);
      int observed = order.indexOf("CreateObservation:" + id);
      assertTrue(created >= 0 && observed > created, order.toString());
      for (int i = 0; i < order.size(); i++) {
        if (order.get(i).equals("RenewSuggestionLease:" + id)) {
          assertTrue(i > created && i < observed, order.toString());
        }
      }
    }
    seen.stream()
        .filter(s -> s.method().equals("RenewSuggestionLease"))
        .forEach(
            s -> {
              assertEquals(90, ((RenewSuggestionLeaseRequest) s.request()).getLeaseSeconds());
              assertEquals("Bearer t0k", s.authorization());
            });
    seen.stream()
        .filter(s -> s.method().equals("CreateSuggestions"))
        .forEach(
            s -> assertEquals(90, ((CreateSuggestionsRequest) s.request()).getLeaseSeconds()));
  }

  /** The suggestion a request is about; for a creation, the id the server gave it. */
  private static String suggestionOf(Seen s) {
    return switch (s.method()) {
      case "RenewSuggestionLease" ->
          ((RenewSuggestionLeaseRequest) s.request()).getId();
      case "CreateObservation" ->
          ((CreateObservationRequest) s.request()).getObservation().getSuggestionId();
      case "CreateSuggestions" -> String.valueOf(
          server.calls("CreateSuggestions").indexOf(s) + 1);
      default -> "";
    };
  }

  @Test
  void aFinalRenewalFailureStopsTheHeartbeat() throws Exception {
    server.reset();
    server.budget(1);
    try (OptserveClient c = client()) {
      c.loop(
          "7",
          a -> {
            server.reset(Status.Code.FAILED_PRECONDITION);
            server.awaitCalls("RenewSuggestionLease", 1, Duration.ofSeconds(30));
            // Ten more intervals: a heartbeat still running would renew again.
            Thread.sleep(500);
            return 1.0;
          },
          LoopOptions.defaults().heartbeat(Duration.ofMillis(50)));
    } finally {
      server.budget(100);
    }
    assertEquals(1, server.calls("RenewSuggestionLease").size());
  }

  @Test
  void heartbeatIntervals() {
    LoopOptions d = LoopOptions.defaults();
    assertEquals(Duration.ofSeconds(10), d.heartbeatInterval(30));
    assertEquals(Duration.ofSeconds(3), d.leaseSeconds(9).heartbeatInterval(30));
    assertEquals(Duration.ofMillis(250), d.heartbeat(Duration.ofMillis(250)).heartbeatInterval(30));
    assertEquals(null, d.noHeartbeat().heartbeatInterval(30));
    // A server without leases: no heartbeat.
    assertEquals(null, d.heartbeatInterval(0));
  }
}
