package dev.optserve.client;

import com.google.protobuf.FieldMask;
import dev.optserve.v1.CreateExperimentRequest;
import dev.optserve.v1.CreateObservationRequest;
import dev.optserve.v1.CreateSuggestionsRequest;
import dev.optserve.v1.Experiment;
import dev.optserve.v1.ExperimentState;
import dev.optserve.v1.GetBestAssignmentsRequest;
import dev.optserve.v1.GetBestAssignmentsResponse;
import dev.optserve.v1.GetExperimentRequest;
import dev.optserve.v1.Metric;
import dev.optserve.v1.MetricStrategy;
import dev.optserve.v1.MetricValue;
import dev.optserve.v1.Observation;
import dev.optserve.v1.OptimizationServiceGrpc;
import dev.optserve.v1.OptimizationServiceGrpc.OptimizationServiceBlockingStub;
import dev.optserve.v1.Suggestion;
import dev.optserve.v1.UpdateExperimentRequest;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A connection to an optserve server.
 *
 * <pre>{@code
 * try (OptserveClient client = OptserveClient.connect()) {   // OPTSERVE_TARGET, OPTSERVE_TOKEN
 *   Experiment experiment = client.createExperiment(Experiments.builder()...build());
 *   client.loop(experiment.getId(), a -> evaluate(a.getDouble("alpha"), a.getInt("gamma")));
 *   System.out.println(client.bestAssignments(experiment.getId()));
 * }
 * }</pre>
 *
 * <p>Every call has a deadline (30 s unless configured) and throws {@link OptserveException} on
 * failure. The channel is plaintext; put TLS in front of the server if it leaves the host. Safe
 * for use from several threads.
 */
public final class OptserveClient implements AutoCloseable {
  /** Used when neither an argument nor {@code OPTSERVE_TARGET} names the server. */
  public static final String DEFAULT_TARGET = "localhost:50051";

  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(30);

  private static final Logger LOG = Logger.getLogger(OptserveClient.class.getName());

  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  private final String target;
  private final Duration deadline;
  private final ManagedChannel channel;
  private final OptimizationServiceBlockingStub stub;

  private OptserveClient(String target, String token, Duration deadline) {
    this.target = target;
    this.deadline = deadline;
    this.channel = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    OptimizationServiceBlockingStub s = OptimizationServiceGrpc.newBlockingStub(channel);
    if (token != null && !token.isEmpty()) {
      Metadata headers = new Metadata();
      headers.put(AUTHORIZATION, "Bearer " + token);
      s = s.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    }
    this.stub = s;
  }

  /** Connects to {@code OPTSERVE_TARGET} (or localhost:50051) with {@code OPTSERVE_TOKEN}, if set. */
  public static OptserveClient connect() {
    return builder().build();
  }

  /** Connects to {@code target} (host:port) with {@code OPTSERVE_TOKEN}, if set. */
  public static OptserveClient connect(String target) {
    return builder().target(target).build();
  }

  public static Builder builder() {
    return new Builder();
  }

  /** Options of a connection; anything left unset comes from the environment or the defaults. */
  public static final class Builder {
    private String target;
    private String token;
    private Duration deadline = DEFAULT_DEADLINE;

    private Builder() {}

    /** host:port of the server; default {@code OPTSERVE_TARGET}, then localhost:50051. */
    public Builder target(String target) {
      this.target = target;
      return this;
    }

    /** Sent as {@code authorization: Bearer <token>}; default {@code OPTSERVE_TOKEN}. */
    public Builder token(String token) {
      this.token = token;
      return this;
    }

    /** Time allowed for each call, connecting included. */
    public Builder deadline(Duration deadline) {
      if (deadline.isNegative() || deadline.isZero()) {
        throw new IllegalArgumentException("deadline must be positive: " + deadline);
      }
      this.deadline = deadline;
      return this;
    }

    public OptserveClient build() {
      String t = firstNonEmpty(target, System.getenv("OPTSERVE_TARGET"), DEFAULT_TARGET);
      String k = firstNonEmpty(token, System.getenv("OPTSERVE_TOKEN"), null);
      return new OptserveClient(t, k, deadline);
    }

    private static String firstNonEmpty(String a, String b, String fallback) {
      if (a != null && !a.isEmpty()) {
        return a;
      }
      if (b != null && !b.isEmpty()) {
        return b;
      }
      return fallback;
    }
  }

  /** The host:port this client talks to. */
  public String target() {
    return target;
  }

  public Duration deadline() {
    return deadline;
  }

  /** Validates and stores a new experiment; returns it with its id. */
  public Experiment createExperiment(Experiment definition) {
    CreateExperimentRequest request =
        CreateExperimentRequest.newBuilder().setExperiment(definition).build();
    return call(() -> stub().createExperiment(request).getExperiment());
  }

  /** One experiment with its progress counters. */
  public Experiment getExperiment(String experimentId) {
    GetExperimentRequest request = GetExperimentRequest.newBuilder().setId(experimentId).build();
    return call(() -> stub().getExperiment(request).getExperiment());
  }

  /** A new open suggestion: the next point to evaluate. */
  public Suggestion createSuggestion(String experimentId) {
    return createSuggestions(experimentId, 1).get(0);
  }

  /** {@code count} new open suggestions, for evaluating in parallel. */
  public List<Suggestion> createSuggestions(String experimentId, int count) {
    CreateSuggestionsRequest request =
        CreateSuggestionsRequest.newBuilder().setExperimentId(experimentId).setCount(count).build();
    return call(() -> stub().createSuggestions(request).getSuggestionsList());
  }

  /** Reports any observation (values or failure, for a suggestion or explicit assignments). */
  public Observation createObservation(String experimentId, Observation observation) {
    CreateObservationRequest request =
        CreateObservationRequest.newBuilder()
            .setExperimentId(experimentId)
            .setObservation(observation)
            .build();
    return call(() -> stub().createObservation(request).getObservation());
  }

  /** Reports the value of one metric for a suggestion. */
  public Observation observe(String experimentId, String suggestionId, String metric, double value) {
    return observe(experimentId, suggestionId, Map.of(metric, value));
  }

  /** Reports metric values (name to value) for a suggestion. */
  public Observation observe(String experimentId, String suggestionId, Map<String, Double> values) {
    Observation.Builder observation = Observation.newBuilder().setSuggestionId(suggestionId);
    values.forEach(
        (name, value) -> observation.addValues(MetricValue.newBuilder().setName(name).setValue(value)));
    return createObservation(experimentId, observation.build());
  }

  /** Reports that evaluating a suggestion failed, so the optimizer avoids that region. */
  public Observation observeFailure(String experimentId, String suggestionId) {
    return createObservation(
        experimentId, Observation.newBuilder().setSuggestionId(suggestionId).setFailed(true).build());
  }

  /**
   * All the best observations so far: one for a single optimized metric, the whole Pareto front
   * for two, up to {@code num_solutions} separated solutions for a multisolution experiment. Only
   * successful observations satisfying every constraint metric count. Empty when none qualifies;
   * {@link #bestAssignmentsResponse} also gives the reason.
   */
  public List<Observation> bestAssignments(String experimentId) {
    return bestAssignmentsResponse(experimentId).getObservationsList();
  }

  /**
   * {@link #bestAssignments} with, when the list is empty, {@code getExplanation()}: why (no
   * successful observation yet, none satisfying the constraint metrics, none within the
   * thresholds of the optimized metrics).
   */
  public GetBestAssignmentsResponse bestAssignmentsResponse(String experimentId) {
    GetBestAssignmentsRequest request =
        GetBestAssignmentsRequest.newBuilder().setExperimentId(experimentId).build();
    return call(() -> stub().getBestAssignments(request));
  }

  /** Makes the experiment read-only: no new suggestions or observations. */
  public Experiment archive(String experimentId) {
    UpdateExperimentRequest request =
        UpdateExperimentRequest.newBuilder()
            .setExperiment(
                Experiment.newBuilder()
                    .setId(experimentId)
                    .setState(ExperimentState.EXPERIMENT_STATE_ARCHIVED))
            .setUpdateMask(FieldMask.newBuilder().addPaths("state"))
            .build();
    return call(() -> stub().updateExperiment(request).getExperiment());
  }

  /** The function a {@link #loop} optimizes: the value of the experiment's metric at a point. */
  @FunctionalInterface
  public interface Objective {
    double evaluate(Assignments assignments) throws Exception;
  }

  /** Like {@link Objective}, for experiments with several metrics: metric name to value. */
  @FunctionalInterface
  public interface MultiObjective {
    Map<String, Double> evaluate(Assignments assignments) throws Exception;
  }

  /**
   * Suggests, evaluates and observes until the experiment's observation budget is used (counting
   * observations from every worker, failures included). When {@code objective} throws or returns
   * a value that is not finite, a failed observation is reported and the loop goes on. The experiment needs a budget and exactly one
   * metric that needs a value (optimized or constraint); see {@link #loopMetrics} otherwise.
   *
   * @return the experiment as it stands after the last observation
   */
  public Experiment loop(String experimentId, Objective objective) {
    Objects.requireNonNull(objective, "objective");
    Experiment experiment = getExperiment(experimentId);
    List<String> required =
        experiment.getMetricsList().stream()
            .filter(m -> m.getStrategy() != MetricStrategy.METRIC_STRATEGY_STORE)
            .map(Metric::getName)
            .toList();
    if (required.size() != 1) {
      throw new IllegalArgumentException(
          "experiment "
              + experimentId
              + " needs values for metrics "
              + required
              + "; use loopMetrics");
    }
    String metric = required.get(0);
    return loopMetrics(experimentId, a -> Map.of(metric, objective.evaluate(a)));
  }

  /** {@link #loop} for experiments reporting several metrics. */
  public Experiment loopMetrics(String experimentId, MultiObjective objective) {
    Objects.requireNonNull(objective, "objective");
    Experiment experiment = getExperiment(experimentId);
    if (!experiment.hasObservationBudget()) {
      throw new IllegalArgumentException(
          "experiment " + experimentId + " has no observation budget to loop to");
    }
    int budget = experiment.getObservationBudget();
    while (experiment.getProgress().getObservationCount() < budget) {
      Suggestion suggestion = createSuggestion(experimentId);
      Map<String, Double> values;
      try {
        values = objective.evaluate(new Assignments(suggestion.getAssignmentsMap()));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        observeFailure(experimentId, suggestion.getId());
        throw new IllegalStateException("loop interrupted", e);
      } catch (Exception e) {
        LOG.log(Level.WARNING, "evaluation of suggestion {0} failed, reported as a failure: {1}",
            new Object[] {suggestion.getId(), e});
        values = null;
      }
      if (values == null || values.values().stream().anyMatch(v -> v == null || !Double.isFinite(v))) {
        observeFailure(experimentId, suggestion.getId());
      } else {
        observe(experimentId, suggestion.getId(), values);
      }
      experiment = getExperiment(experimentId);
    }
    return experiment;
  }

  /** Closes the channel, waiting briefly for calls in flight. */
  @Override
  public void close() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      channel.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private OptimizationServiceBlockingStub stub() {
    return stub.withDeadlineAfter(deadline.toNanos(), TimeUnit.NANOSECONDS);
  }

  private <T> T call(Supplier<T> rpc) {
    try {
      return rpc.get();
    } catch (StatusRuntimeException e) {
      throw OptserveException.from(e, target);
    }
  }
}
