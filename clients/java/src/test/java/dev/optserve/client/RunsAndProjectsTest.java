package dev.optserve.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Struct;
import com.google.protobuf.Value;
import dev.optserve.v1.AssignmentValue;
import dev.optserve.v1.Checkpoint;
import dev.optserve.v1.CreateTrainingRunRequest;
import dev.optserve.v1.Experiment;
import dev.optserve.v1.ExperimentState;
import dev.optserve.v1.ExperimentType;
import dev.optserve.v1.Metric;
import dev.optserve.v1.MetricValue;
import dev.optserve.v1.Observation;
import dev.optserve.v1.Parameter;
import dev.optserve.v1.Progress;
import dev.optserve.v1.Project;
import dev.optserve.v1.QueuedSuggestion;
import dev.optserve.v1.RunState;
import dev.optserve.v1.Suggestion;
import dev.optserve.v1.TrainingRun;
import io.grpc.Status;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/** Projects, training runs, priors, queues, batches and soft delete against a real server. */
@Timeout(120)
class RunsAndProjectsTest {
  private static OptserveServer server;
  private static OptserveClient client;

  @BeforeAll
  static void startServer() throws Exception {
    server = OptserveServer.start();
    client =
        OptserveClient.builder().target(server.target()).deadline(Duration.ofSeconds(30)).build();
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

  private static String projectId() {
    return "p-" + UUID.randomUUID().toString().substring(0, 8);
  }

  private static AssignmentValue d(double v) {
    return AssignmentValue.newBuilder().setDoubleValue(v).build();
  }

  private static List<String> violations(OptserveException e) {
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getCode(), e.getMessage());
    return e.getFieldViolations().stream().map(OptserveException.FieldViolation::field).toList();
  }

  @Test
  void projects() {
    String id = projectId();
    Project made = client.createProject(id, "Vision");
    assertEquals(id, made.getId());
    assertEquals("Vision", made.getName());
    OptserveException dup =
        assertThrows(OptserveException.class, () -> client.createProject(id, null));
    assertEquals(Status.Code.ALREADY_EXISTS, dup.getCode());
    OptserveException bad =
        assertThrows(OptserveException.class, () -> client.createProject("Not Valid", null));
    assertEquals(List.of("id"), violations(bad));
    assertEquals(made, client.getProject(id));
    assertTrue(client.listProjects().stream().anyMatch(p -> p.getId().equals(id)));
    Project renamed =
        client.updateProject(Project.newBuilder().setId(id).setName("Vision 2").build(), "name");
    assertEquals("Vision 2", renamed.getName());
    assertEquals("Vision 2", client.getProject(id).getName());
  }

  @Test
  void priorsAndDefaultValues() {
    Parameter lr =
        Parameters.withDefault(
            Parameters.withPrior(Parameters.doubleParam("lr", 0, 1), Parameters.normalPrior(0.3, 0.1)),
            0.25);
    Parameter p = Parameters.withPrior(Parameters.doubleParam("p", 0, 1), Parameters.betaPrior(2, 5));
    Parameter k = Parameters.withDefault(Parameters.intParam("k", 1, 9), 4L);
    Parameter c = Parameters.withDefault(Parameters.categoricalParam("c", "u", "v"), "v");
    Experiment made =
        client.createExperiment(
            Experiments.builder()
                .name("priors")
                .parameter(lr)
                .parameter(p)
                .parameter(k)
                .parameter(c)
                .metric(Metrics.maximize("m"))
                .build());
    assertEquals(0.1, made.getParameters(0).getPrior().getNormal().getScale());
    assertEquals(0.25, made.getParameters(0).getDefaultValue().getDoubleValue());
    assertEquals(5, made.getParameters(1).getPrior().getBeta().getShapeB());
    assertEquals(4, made.getParameters(2).getDefaultValue().getIntValue());
    assertEquals("v", made.getParameters(3).getDefaultValue().getStringValue());
    assertEquals(made.getParametersList(), client.getExperiment(made.getId()).getParametersList());

    Parameter outside =
        Parameters.withPrior(Parameters.doubleParam("x", 0, 1), Parameters.normalPrior(5, 0.1));
    OptserveException e =
        assertThrows(
            OptserveException.class,
            () ->
                client.createExperiment(
                    Experiments.builder()
                        .name("bad")
                        .parameter(outside)
                        .metric(Metrics.maximize("m"))
                        .build()));
    assertEquals(List.of("experiment.parameters[0].prior.mean"), violations(e));
  }

  @Test
  void runsOnlyExperimentLoop() {
    String project = projectId();
    Experiment experiment =
        client.createExperiment(
            Experiments.builder()
                .name("ai")
                .project(project)
                .type(ExperimentType.EXPERIMENT_TYPE_RANDOM)
                .doubleParam("x", 0, 1)
                .metric(Metrics.maximize("score"))
                .budget(3)
                .runsOnly(true)
                .build());
    assertTrue(experiment.getRunsOnly());
    OptserveException refused =
        assertThrows(OptserveException.class, () -> client.createSuggestion(experiment.getId()));
    assertEquals(Status.Code.PERMISSION_DENIED, refused.getCode());

    Experiment done =
        client.loopRuns(
            experiment.getId(),
            a -> Map.of("score", a.getDouble("x")),
            LoopOptions.defaults().leaseSeconds(60));
    Progress progress = done.getProgress();
    assertEquals(3, progress.getObservationCount());
    assertEquals(3, progress.getTotalRunCount());
    assertEquals(3, progress.getFinishedRunCount());
    assertEquals(3, progress.getObservationBudgetConsumed());

    List<TrainingRun> runs = client.experimentRuns(experiment.getId());
    assertEquals(3, runs.size());
    for (TrainingRun run : runs) {
      assertEquals(RunState.RUN_STATE_COMPLETED, run.getState());
      assertEquals(project, run.getProject());
      assertFalse(run.getObservationId().isEmpty());
      assertEquals(run.getAssignmentsMap().get("x").getDoubleValue(), Runs.values(run).get("score"));
      assertTrue(Runs.isFinished(run));
    }
    List<TrainingRun> best = client.bestTrainingRuns(experiment.getId());
    assertEquals(1, best.size());
    double max = runs.stream().mapToDouble(r -> Runs.values(r).get("score")).max().orElseThrow();
    assertEquals(max, Runs.values(best.get(0)).get("score"));
  }

  @Test
  void experimentRunsFixedParametersCheckpointsAndFailures() {
    Experiment experiment =
        client.createExperiment(
            Experiments.builder()
                .name("ai runs")
                .doubleParam("x", 0, 1)
                .metric(Metrics.maximize("m"))
                .runsOnly(true)
                .build());
    TrainingRun run = client.createExperimentRun(experiment.getId(), "first");
    assertEquals("first", run.getName());
    assertFalse(run.getSuggestionId().isEmpty());
    OptserveException fixed =
        assertThrows(
            OptserveException.class,
            () ->
                client.updateTrainingRun(Runs.update(run.getId()).parameter("x", 2.0).build(), true));
    assertEquals(List.of("assignments[\"x\"]"), violations(fixed));
    client.updateTrainingRun(
        Runs.update(run.getId()).parameter("batch", 32L).metric("m", 0.5, 0.1).build(), true);
    Checkpoint checkpoint = client.createCheckpoint(run.getId(), Map.of("m", 0.2));
    assertEquals("1", checkpoint.getId());
    TrainingRun ended = client.endRun(run.getId(), false);
    assertEquals(RunState.RUN_STATE_COMPLETED, ended.getState());
    assertEquals(1, ended.getCheckpointsCount());
    assertEquals(32, ended.getAssignmentsMap().get("batch").getIntValue());
    assertEquals(0.1, ended.getValuesMap().get("m").getValueStddev());
    assertFalse(ended.getObservationId().isEmpty());
    TrainingRun again = client.endRun(run.getId(), false); // the same end again: a no-op
    assertEquals(ended.getObservationId(), again.getObservationId());
    assertEquals(ended.getCompleteTime(), again.getCompleteTime());

    TrainingRun failed = client.endRun(client.createExperimentRun(experiment.getId(), "").getId(), true);
    assertEquals(RunState.RUN_STATE_FAILED, failed.getState());
    OptserveException reopen =
        assertThrows(
            OptserveException.class,
            () ->
                client.updateTrainingRun(
                    Runs.update(failed.getId()).state(RunState.RUN_STATE_ACTIVE).build(), false));
    assertEquals(List.of("state"), violations(reopen));
    Progress progress = client.getExperiment(experiment.getId()).getProgress();
    assertEquals(2, progress.getObservationCount());
    assertEquals(1, progress.getFailedObservationCount());
  }

  @Test
  void projectRunsAndSoftDelete() {
    String project = projectId();
    client.createProject(project, null);
    TrainingRun run = client.createProjectRun(project, "baseline");
    assertEquals(RunState.RUN_STATE_ACTIVE, run.getState());
    Struct metadata =
        Struct.newBuilder().putFields("host", Value.newBuilder().setStringValue("a").build()).build();
    TrainingRun merged =
        client.updateTrainingRun(
            Runs.update(run.getId()).metric("acc", 0.9).parameter("lr", 0.01).metadata(metadata).build(),
            true);
    assertEquals(Map.of("acc", 0.9), Runs.values(merged));
    TrainingRun replaced =
        client.updateTrainingRun(Runs.update(run.getId()).metric("loss", 0.2).build(), false);
    assertEquals(Map.of("loss", 0.2), Runs.values(replaced));
    assertEquals("a", replaced.getMetadata().getFieldsOrThrow("host").getStringValue());
    TrainingRun other = client.createProjectRun(project, "other");
    assertEquals(List.of(run.getId(), other.getId()), ids(client.projectRuns(project)));

    client.deleteTrainingRun(other.getId());
    assertTrue(client.getTrainingRun(other.getId()).getDeleted());
    assertEquals(List.of(run.getId()), ids(client.projectRuns(project)));
    assertEquals(List.of(other.getId()), ids(client.deletedProjectRuns(project)));
    assertFalse(client.restoreTrainingRun(other.getId()).getDeleted());
    assertEquals(2, client.projectRuns(project).size());

    OptserveException missing =
        assertThrows(OptserveException.class, () -> client.getTrainingRun("99999999"));
    assertEquals(Status.Code.NOT_FOUND, missing.getCode());
  }

  @Test
  void queuedAndManualSuggestionsAndBatches() {
    Experiment experiment =
        client.createExperiment(
            Experiments.builder()
                .name("queues")
                .doubleParam("x", 0, 1)
                .doubleParam("y", 0, 1)
                .metric(Metrics.maximize("m"))
                .build());
    String id = experiment.getId();
    QueuedSuggestion queued = client.createQueuedSuggestion(id, Map.of("x", d(0.1), "y", d(0.2)));
    QueuedSuggestion dropped = client.createQueuedSuggestion(id, Map.of("x", d(0.3), "y", d(0.4)));
    assertEquals(
        List.of(queued.getId(), dropped.getId()),
        client.listQueuedSuggestions(id).stream().map(QueuedSuggestion::getId).toList());
    client.deleteQueuedSuggestion(id, dropped.getId());
    Suggestion served = client.createSuggestion(id);
    assertEquals(0.1, served.getAssignmentsMap().get("x").getDoubleValue());
    assertTrue(client.listQueuedSuggestions(id).isEmpty());
    OptserveException outside =
        assertThrows(
            OptserveException.class,
            () -> client.createQueuedSuggestion(id, Map.of("x", d(5), "y", d(0.2))));
    assertEquals(List.of("assignments[\"x\"]"), violations(outside));

    Suggestion manual = client.createSuggestion(id, Map.of("x", d(0.7), "y", d(0.8)));
    assertEquals(0.8, manual.getAssignmentsMap().get("y").getDoubleValue());
    Struct metadata =
        Struct.newBuilder().putFields("source", Value.newBuilder().setStringValue("hand").build()).build();
    assertEquals(metadata, client.updateSuggestionMetadata(id, manual.getId(), metadata).getMetadata());

    List<Observation> made =
        client.createObservations(
            id,
            List.of(
                Observation.newBuilder()
                    .setSuggestionId(served.getId())
                    .addValues(MetricValue.newBuilder().setName("m").setValue(1))
                    .build(),
                Observation.newBuilder()
                    .setSuggestionId(manual.getId())
                    .addValues(MetricValue.newBuilder().setName("m").setValue(2))
                    .build()));
    assertEquals(List.of(1.0, 2.0), made.stream().map(o -> Observations.value(o, "m")).toList());
    Progress progress = client.getExperiment(id).getProgress();
    assertEquals(made.get(0).getId(), progress.getFirstObservation().getId());
    assertEquals(made.get(1).getId(), progress.getLastObservation().getId());
    Observation closed =
        Observation.newBuilder()
            .setSuggestionId(served.getId())
            .addValues(MetricValue.newBuilder().setName("m").setValue(3))
            .build();
    OptserveException again =
        assertThrows(OptserveException.class, () -> client.createObservations(id, List.of(closed)));
    assertEquals(Status.Code.FAILED_PRECONDITION, again.getCode(), again.getMessage());
  }

  @Test
  void softDeleteArchiveAndUnarchive() {
    Experiment experiment =
        client.createExperiment(
            Experiments.builder().name("soft").doubleParam("x", 0, 1).metric(Metrics.maximize("m")).build());
    String id = experiment.getId();
    assertEquals(ExperimentState.EXPERIMENT_STATE_DELETED, client.softDelete(id).getState());
    assertEquals(ExperimentState.EXPERIMENT_STATE_DELETED, client.getExperiment(id).getState());
    assertTrue(
        client.listExperiments(ExperimentState.EXPERIMENT_STATE_DELETED).stream()
            .anyMatch(e -> e.getId().equals(id)));
    OptserveException refused =
        assertThrows(OptserveException.class, () -> client.createSuggestion(id));
    assertEquals(Status.Code.FAILED_PRECONDITION, refused.getCode());
    assertEquals(ExperimentState.EXPERIMENT_STATE_ACTIVE, client.unarchive(id).getState());
    client.createSuggestion(id);
    assertEquals(ExperimentState.EXPERIMENT_STATE_ARCHIVED, client.archive(id).getState());
    assertEquals(ExperimentState.EXPERIMENT_STATE_ACTIVE, client.unarchive(id).getState());
  }

  private static List<String> ids(List<TrainingRun> runs) {
    return runs.stream().map(TrainingRun::getId).toList();
  }

  @Test
  void aRunCreateRetriedWithItsRequestIdMakesOneRun() {
    String project = projectId();
    client.createProject(project, null);
    CreateTrainingRunRequest request =
        CreateTrainingRunRequest.newBuilder()
            .setProject(project)
            .setName("once")
            .setRequestId(OptserveClient.newRequestId())
            .build();
    TrainingRun first = client.createTrainingRun(request);
    assertEquals(first, client.createTrainingRun(request));
    List<String> runs = client.projectRuns(project).stream().map(TrainingRun::getId).toList();
    assertEquals(List.of(first.getId()), runs);
    OptserveException reused =
        assertThrows(
            OptserveException.class,
            () -> client.createTrainingRun(request.toBuilder().setName("other").build()));
    assertEquals(Status.Code.FAILED_PRECONDITION, reused.getCode());
  }

  @Test
  void stoppingCriteriaAndImportances() {
    Experiment exp =
        client.createExperiment(
            Experiment.newBuilder()
                .setName("analysis")
                .addParameters(Parameters.doubleParam("x", 0, 1))
                .addParameters(Parameters.doubleParam("y", 0, 1))
                .addMetrics(Metric.newBuilder().setName("f"))
                .setObservationBudget(6)
                .build());
    assertFalse(client.stoppingCriteria(exp.getId()).getShouldStop());
    assertTrue(client.parameterImportances(exp.getId()).get(0).getImportancesMap().isEmpty());
    double[][] points = {{0.1, 0.9}, {0.3, 0.2}, {0.5, 0.6}, {0.7, 0.1}, {0.9, 0.4}, {0.2, 0.5}};
    for (double[] p : points) {
      client.createObservation(
          exp.getId(),
          Observation.newBuilder()
              .putAssignments("x", d(p[0]))
              .putAssignments("y", d(p[1]))
              .addValues(MetricValue.newBuilder().setName("f").setValue(5 * p[0]))
              .build());
    }
    assertEquals(
        List.of("observation_budget_reached"),
        client.stoppingCriteria(exp.getId()).getReasonsList());
    Map<String, Double> f = client.parameterImportances(exp.getId()).get(0).getImportancesMap();
    assertTrue(f.get("x") > f.get("y"), f.toString());
  }
}
