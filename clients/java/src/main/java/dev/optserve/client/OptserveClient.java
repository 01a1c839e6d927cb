package dev.optserve.client;

import com.google.protobuf.FieldMask;
import com.google.protobuf.Struct;
import dev.optserve.v1.AssignmentValue;
import dev.optserve.v1.BatchCreateObservationsRequest;
import dev.optserve.v1.Checkpoint;
import dev.optserve.v1.CreateCheckpointRequest;
import dev.optserve.v1.CreateExperimentRequest;
import dev.optserve.v1.CreateProjectRequest;
import dev.optserve.v1.CreateQueuedSuggestionRequest;
import dev.optserve.v1.CreateTrainingRunRequest;
import dev.optserve.v1.DeleteQueuedSuggestionRequest;
import dev.optserve.v1.DeleteTrainingRunRequest;
import dev.optserve.v1.GetBestTrainingRunsRequest;
import dev.optserve.v1.GetParameterImportancesRequest;
import dev.optserve.v1.GetStoppingCriteriaRequest;
import dev.optserve.v1.GetStoppingCriteriaResponse;
import dev.optserve.v1.MetricImportances;
import dev.optserve.v1.GetProjectRequest;
import dev.optserve.v1.GetTrainingRunRequest;
import dev.optserve.v1.ListExperimentsRequest;
import dev.optserve.v1.ListExperimentsResponse;
import dev.optserve.v1.ListProjectsRequest;
import dev.optserve.v1.ListQueuedSuggestionsRequest;
import dev.optserve.v1.ListTrainingRunsRequest;
import dev.optserve.v1.ListTrainingRunsResponse;
import dev.optserve.v1.Project;
import dev.optserve.v1.QueuedSuggestion;
import dev.optserve.v1.RunState;
import dev.optserve.v1.RunValue;
import dev.optserve.v1.TrainingRun;
import dev.optserve.v1.UpdateProjectRequest;
import dev.optserve.v1.UpdateSuggestionRequest;
import dev.optserve.v1.UpdateTrainingRunRequest;
import dev.optserve.v1.CreateObservationRequest;
import dev.optserve.v1.CreateSuggestionsRequest;
import dev.optserve.v1.Experiment;
import dev.optserve.v1.ExperimentState;
import dev.optserve.v1.GetBestAssignmentsRequest;
import dev.optserve.v1.GetBestAssignmentsResponse;
import dev.optserve.v1.GetExperimentRequest;
import dev.optserve.v1.GetSuggestionRequest;
import dev.optserve.v1.Metric;
import dev.optserve.v1.MetricStrategy;
import dev.optserve.v1.MetricValue;
import dev.optserve.v1.Observation;
import dev.optserve.v1.OptimizationServiceGrpc;
import dev.optserve.v1.OptimizationServiceGrpc.OptimizationServiceBlockingStub;
import dev.optserve.v1.RenewSuggestionLeaseRequest;
import dev.optserve.v1.Suggestion;
import dev.optserve.v1.UpdateExperimentRequest;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import io.grpc.stub.MetadataUtils;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.UnaryOperator;
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
 * <p>Every attempt of a call has a deadline (30 s unless configured) and a call that fails throws
 * {@link OptserveException}. Safe for use from several threads.
 *
 * <p><b>Retries.</b> A call failing with {@code UNAVAILABLE} or {@code DEADLINE_EXCEEDED} is
 * retried with exponential backoff and full jitter ({@link RetryPolicy}: by default 5 attempts,
 * pauses of up to 0.1 s doubling to at most 5 s; {@link Builder#retryPolicy}); every other code is
 * thrown at once. Each write (of experiments, suggestions and their leases, observations and
 * their batches, queued suggestions, projects, training runs and checkpoints) carries a request
 * id, a fresh UUID for each call and the same on all of its attempts, so that a retry of a write
 * the server already applied returns the first response instead of applying it again.
 *
 * <p><b>Several replicas.</b> The target may list several servers, comma-separated ({@code
 * 10.0.0.5:50051,10.0.0.6:50051}), or be a {@code dns:///name:port} whose name has an address per
 * replica: calls are spread over them round-robin, a replica that is down is skipped, and a call
 * failing with {@code UNAVAILABLE} is retried, on another replica, with the same request id.
 *
 * <p><b>TLS.</b> Plaintext unless {@link Builder#tls}, a CA ({@link Builder#tlsCa}) or a client
 * certificate ({@link Builder#tlsClientCertificate}, for servers that verify clients) is given,
 * or the environment sets {@code OPTSERVE_TLS=1}, {@code OPTSERVE_TLS_CA}, {@code
 * OPTSERVE_TLS_CERT} and {@code OPTSERVE_TLS_KEY} (PEM files; without a CA the JVM's trusted roots
 * verify the server). {@code OPTSERVE_TLS_SERVER_NAME} ({@link Builder#tlsServerName}) names the
 * server when its certificate does not name the target's host.
 *
 * <p><b>Leases.</b> A suggestion neither observed nor renewed for its lease expires ({@code
 * SUGGESTION_STATE_EXPIRED}) and stops counting as pending; an observation of it is still
 * accepted. {@link #renewLease} extends it; {@link #loop} renews it in the background while the
 * objective runs (see {@link LoopOptions}).
 */
public final class OptserveClient implements AutoCloseable {
  /** Used when neither an argument nor {@code OPTSERVE_TARGET} names the server. */
  public static final String DEFAULT_TARGET = "localhost:50051";

  public static final Duration DEFAULT_DEADLINE = Duration.ofSeconds(30);

  private static final Logger LOG = Logger.getLogger(OptserveClient.class.getName());

  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);

  // Renewal failures that another attempt will not fix: the suggestion was observed, deleted or
  // expired, or the server has no leases.
  private static final Set<Status.Code> FINAL_RENEWAL_CODES =
      EnumSet.of(
          Status.Code.FAILED_PRECONDITION,
          Status.Code.NOT_FOUND,
          Status.Code.INVALID_ARGUMENT,
          Status.Code.PERMISSION_DENIED,
          Status.Code.UNAUTHENTICATED,
          Status.Code.UNIMPLEMENTED);

  private final String target;
  private final Duration deadline;
  private final RetryPolicy retry;
  private final Random random;
  private final boolean tls;
  private final ManagedChannel channel;
  private final OptimizationServiceBlockingStub stub;
  private ScheduledExecutorService heartbeats;

  private OptserveClient(
      String target,
      String token,
      Duration deadline,
      RetryPolicy retry,
      Random random,
      ChannelCredentials credentials,
      String serverName) {
    this.target = target;
    this.deadline = deadline;
    this.retry = retry;
    this.random = random;
    this.tls = !(credentials instanceof InsecureChannelCredentials);
    // Several targets (a comma-separated list, or a dns:/// name with an address per replica):
    // calls go round-robin over them, and a replica that is down is skipped.
    ManagedChannelBuilder<?> builder =
        Grpc.newChannelBuilder(Targets.channelTarget(target), credentials)
            .defaultLoadBalancingPolicy("round_robin");
    if (tls && serverName != null) {
      builder.overrideAuthority(serverName);
    }
    this.channel = builder.build();
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

  /** Connects to {@code target} (host:port, or several comma-separated) with {@code OPTSERVE_TOKEN}. */
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
    private RetryPolicy retry = RetryPolicy.DEFAULT;
    private Random random = new Random();
    private Boolean tls;
    private Path tlsCa;
    private Path tlsCert;
    private Path tlsKey;
    private String tlsServerName;
    private UnaryOperator<String> env = System::getenv;

    private Builder() {}

    /**
     * host:port of the server, several of them comma-separated, or a gRPC target such as {@code
     * dns:///name:port}; default {@code OPTSERVE_TARGET}, then localhost:50051.
     */
    public Builder target(String target) {
      this.target = target;
      return this;
    }

    /** Sent as {@code authorization: Bearer <token>}; default {@code OPTSERVE_TOKEN}. */
    public Builder token(String token) {
      this.token = token;
      return this;
    }

    /** Time allowed for each attempt of a call, connecting included. */
    public Builder deadline(Duration deadline) {
      if (deadline.isNegative() || deadline.isZero()) {
        throw new IllegalArgumentException("deadline must be positive: " + deadline);
      }
      this.deadline = deadline;
      return this;
    }

    /** How failed calls are retried; {@link RetryPolicy#DEFAULT} unless set. */
    public Builder retryPolicy(RetryPolicy policy) {
      this.retry = Objects.requireNonNull(policy, "policy");
      return this;
    }

    /**
     * Connects over TLS ({@code true}) or plaintext ({@code false}). Unset: TLS when {@code
     * OPTSERVE_TLS} is true or a CA or client certificate is given, by argument or environment.
     */
    public Builder tls(boolean on) {
      this.tls = on;
      return this;
    }

    /** PEM file of the root certificates that verify the server; default {@code OPTSERVE_TLS_CA}. */
    public Builder tlsCa(Path pem) {
      this.tlsCa = Objects.requireNonNull(pem, "pem");
      return this;
    }

    /**
     * PEM files of a client certificate chain and its private key (PKCS#8), for servers that
     * verify clients; default {@code OPTSERVE_TLS_CERT} and {@code OPTSERVE_TLS_KEY}.
     */
    public Builder tlsClientCertificate(Path certificateChain, Path privateKey) {
      this.tlsCert = Objects.requireNonNull(certificateChain, "certificateChain");
      this.tlsKey = Objects.requireNonNull(privateKey, "privateKey");
      return this;
    }

    /**
     * The name to verify in the server's certificate when it is not the target's host; default
     * {@code OPTSERVE_TLS_SERVER_NAME}.
     */
    public Builder tlsServerName(String name) {
      this.tlsServerName = name;
      return this;
    }

    /** The source of environment variables (tests). */
    Builder environment(UnaryOperator<String> lookup) {
      this.env = Objects.requireNonNull(lookup, "lookup");
      return this;
    }

    /** The source of the retry pauses' jitter (tests). */
    Builder random(Random source) {
      this.random = Objects.requireNonNull(source, "source");
      return this;
    }

    public OptserveClient build() {
      String t = firstNonEmpty(target, env.apply("OPTSERVE_TARGET"), DEFAULT_TARGET);
      String k = firstNonEmpty(token, env.apply("OPTSERVE_TOKEN"), null);
      String name = firstNonEmpty(tlsServerName, env.apply("OPTSERVE_TLS_SERVER_NAME"), null);
      return new OptserveClient(t, k, deadline, retry, random, credentials(), name);
    }

    private ChannelCredentials credentials() {
      boolean explicit = tlsCa != null || tlsCert != null;
      if (Boolean.FALSE.equals(tls)) {
        if (explicit) {
          throw new IllegalArgumentException("tls(false) with TLS certificates given");
        }
        return InsecureChannelCredentials.create();
      }
      Path ca = tlsCa != null ? tlsCa : envPath("OPTSERVE_TLS_CA");
      Path cert = tlsCert != null ? tlsCert : envPath("OPTSERVE_TLS_CERT");
      Path key = tlsKey != null ? tlsKey : envPath("OPTSERVE_TLS_KEY");
      boolean on;
      if (tls != null || explicit) {
        on = true;
      } else {
        Boolean flag = envFlag("OPTSERVE_TLS");
        on = flag != null ? flag : ca != null || cert != null || key != null;
      }
      if (!on) {
        return InsecureChannelCredentials.create();
      }
      if ((cert == null) != (key == null)) {
        throw new IllegalArgumentException(
            "a client certificate needs its private key and the other way round"
                + " (OPTSERVE_TLS_CERT and OPTSERVE_TLS_KEY)");
      }
      TlsChannelCredentials.Builder creds = TlsChannelCredentials.newBuilder();
      try {
        if (ca != null) {
          creds.trustManager(readable(ca).toFile());
        }
        if (cert != null) {
          creds.keyManager(readable(cert).toFile(), readable(key).toFile());
        }
      } catch (IOException | IllegalArgumentException e) {
        throw new IllegalArgumentException("cannot use the TLS files: " + e.getMessage(), e);
      }
      return creds.build();
    }

    private Path envPath(String name) {
      String value = env.apply(name);
      return value == null || value.isEmpty() ? null : Paths.get(value);
    }

    private Boolean envFlag(String name) {
      String raw = env.apply(name);
      if (raw == null) {
        return null;
      }
      switch (raw.trim().toLowerCase(Locale.ROOT)) {
        case "1", "true", "yes", "on":
          return true;
        case "", "0", "false", "no", "off":
          return false;
        default:
          throw new IllegalArgumentException(
              name + "=" + raw + " is not one of 1, true, yes, on, 0, false, no, off");
      }
    }

    private static Path readable(Path path) {
      if (!Files.isReadable(path)) {
        throw new IllegalArgumentException("cannot read " + path);
      }
      return path;
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

  /** Time allowed for each attempt of a call. */
  public Duration deadline() {
    return deadline;
  }

  /** How failed calls are retried. */
  public RetryPolicy retryPolicy() {
    return retry;
  }

  /** Whether the channel is TLS. */
  public boolean isTls() {
    return tls;
  }

  /** A fresh request id: a UUID, 36 characters of {@code [0-9a-f-]}. */
  public static String newRequestId() {
    return UUID.randomUUID().toString();
  }

  /** Validates and stores a new experiment; returns it with its id. */
  public Experiment createExperiment(Experiment definition) {
    CreateExperimentRequest request =
        CreateExperimentRequest.newBuilder()
            .setExperiment(definition)
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.createExperiment(request).getExperiment());
  }

  /** One experiment with its progress counters. */
  public Experiment getExperiment(String experimentId) {
    GetExperimentRequest request = GetExperimentRequest.newBuilder().setId(experimentId).build();
    return call(s -> s.getExperiment(request).getExperiment());
  }

  /** A new open suggestion: the next point to evaluate. */
  public Suggestion createSuggestion(String experimentId) {
    return createSuggestions(experimentId, 1).get(0);
  }

  /**
   * A new open suggestion whose lease is {@code leaseSeconds}: unless observed or renewed within
   * it, it expires.
   */
  public Suggestion createSuggestion(String experimentId, int leaseSeconds) {
    return createSuggestions(experimentId, 1, leaseSeconds).get(0);
  }

  /** {@code count} new open suggestions, for evaluating in parallel, on the experiment's lease. */
  public List<Suggestion> createSuggestions(String experimentId, int count) {
    return createSuggestions(experimentId, count, 0);
  }

  /**
   * {@code count} new open suggestions with a lease of {@code leaseSeconds} each (the experiment's
   * {@code suggestion_lease_seconds} when 0).
   */
  public List<Suggestion> createSuggestions(String experimentId, int count, int leaseSeconds) {
    CreateSuggestionsRequest.Builder request =
        CreateSuggestionsRequest.newBuilder()
            .setExperimentId(experimentId)
            .setCount(count)
            .setRequestId(newRequestId());
    if (leaseSeconds != 0) {
      request.setLeaseSeconds(leaseSeconds);
    }
    CreateSuggestionsRequest built = request.build();
    return call(s -> s.createSuggestions(built).getSuggestionsList());
  }

  /**
   * One suggestion, with its state ({@code SUGGESTION_STATE_EXPIRED} once its lease ran out) and
   * {@code expire_time}; see {@link Suggestions}.
   */
  public Suggestion getSuggestion(String experimentId, String suggestionId) {
    GetSuggestionRequest request =
        GetSuggestionRequest.newBuilder().setExperimentId(experimentId).setId(suggestionId).build();
    return call(s -> s.getSuggestion(request).getSuggestion());
  }

  /**
   * Extends an open suggestion's lease by its current length from now (a worker's heartbeat);
   * returns it with its new {@code expire_time}.
   */
  public Suggestion renewLease(String experimentId, String suggestionId) {
    return renewLease(experimentId, suggestionId, 0);
  }

  /** Sets an open suggestion's lease to {@code leaseSeconds} from now (its current length if 0). */
  public Suggestion renewLease(String experimentId, String suggestionId, int leaseSeconds) {
    RenewSuggestionLeaseRequest.Builder request =
        RenewSuggestionLeaseRequest.newBuilder()
            .setExperimentId(experimentId)
            .setId(suggestionId)
            .setRequestId(newRequestId());
    if (leaseSeconds != 0) {
      request.setLeaseSeconds(leaseSeconds);
    }
    RenewSuggestionLeaseRequest built = request.build();
    return call(s -> s.renewSuggestionLease(built).getSuggestion());
  }

  /** Reports any observation (values or failure, for a suggestion or explicit assignments). */
  public Observation createObservation(String experimentId, Observation observation) {
    return createObservation(experimentId, observation, newRequestId());
  }

  /**
   * {@link #createObservation(String, Observation)} with a request id of your choosing (at most 64
   * characters of {@code [A-Za-z0-9._:-]}): calling again with the same id and observation, e.g.
   * after a failure once every attempt was used, records it at most once.
   */
  public Observation createObservation(
      String experimentId, Observation observation, String requestId) {
    CreateObservationRequest request =
        CreateObservationRequest.newBuilder()
            .setExperimentId(experimentId)
            .setObservation(observation)
            .setRequestId(requestId)
            .build();
    return call(s -> s.createObservation(request).getObservation());
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
    return call(s -> s.getBestAssignments(request));
  }

  /** Makes the experiment read-only: no new suggestions or observations. */
  public Experiment archive(String experimentId) {
    return setState(experimentId, ExperimentState.EXPERIMENT_STATE_ARCHIVED);
  }

  /** Makes an archived or soft-deleted experiment active again. */
  public Experiment unarchive(String experimentId) {
    return setState(experimentId, ExperimentState.EXPERIMENT_STATE_ACTIVE);
  }

  /**
   * Soft-deletes the experiment (SigOpt's DELETE): still readable and listed with {@code
   * EXPERIMENT_STATE_DELETED}, accepts no new data; {@link #unarchive} restores it.
   */
  public Experiment softDelete(String experimentId) {
    return setState(experimentId, ExperimentState.EXPERIMENT_STATE_DELETED);
  }

  private Experiment setState(String experimentId, ExperimentState state) {
    UpdateExperimentRequest request =
        UpdateExperimentRequest.newBuilder()
            .setExperiment(Experiment.newBuilder().setId(experimentId).setState(state))
            .setUpdateMask(FieldMask.newBuilder().addPaths("state"))
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.updateExperiment(request).getExperiment());
  }

  /** Every experiment in {@code state} (every state when UNSPECIFIED), newest first; all pages. */
  public List<Experiment> listExperiments(ExperimentState state) {
    List<Experiment> out = new ArrayList<>();
    String token = "";
    do {
      ListExperimentsRequest request =
          ListExperimentsRequest.newBuilder()
              .setState(state)
              .setPageSize(1000)
              .setPageToken(token)
              .build();
      ListExperimentsResponse page = call(s -> s.listExperiments(request));
      out.addAll(page.getExperimentsList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return out;
  }

  // ------------------------------------------------------------ manual and queued suggestions

  /**
   * A suggestion of your own assignments (SigOpt's manual suggestion), checked as an observation's
   * assignments are.
   */
  public Suggestion createSuggestion(String experimentId, Map<String, AssignmentValue> assignments) {
    CreateSuggestionsRequest request =
        CreateSuggestionsRequest.newBuilder()
            .setExperimentId(experimentId)
            .setCount(1)
            .putAllAssignments(assignments)
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.createSuggestions(request).getSuggestions(0));
  }

  /** Replaces a suggestion's metadata. */
  public Suggestion updateSuggestionMetadata(
      String experimentId, String suggestionId, Struct metadata) {
    UpdateSuggestionRequest request =
        UpdateSuggestionRequest.newBuilder()
            .setExperimentId(experimentId)
            .setSuggestion(Suggestion.newBuilder().setId(suggestionId).setMetadata(metadata))
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.updateSuggestion(request).getSuggestion());
  }

  /**
   * Queues assignments (every parameter): the experiment's next suggestion or run serves them before
   * the optimizer's points (at most 1,000 wait).
   */
  public QueuedSuggestion createQueuedSuggestion(
      String experimentId, Map<String, AssignmentValue> assignments) {
    CreateQueuedSuggestionRequest request =
        CreateQueuedSuggestionRequest.newBuilder()
            .setExperimentId(experimentId)
            .putAllAssignments(assignments)
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.createQueuedSuggestion(request).getQueuedSuggestion());
  }

  /** The queue, oldest first. */
  public List<QueuedSuggestion> listQueuedSuggestions(String experimentId) {
    ListQueuedSuggestionsRequest request =
        ListQueuedSuggestionsRequest.newBuilder().setExperimentId(experimentId).build();
    return call(s -> s.listQueuedSuggestions(request).getQueuedSuggestionsList());
  }

  public void deleteQueuedSuggestion(String experimentId, String queuedSuggestionId) {
    DeleteQueuedSuggestionRequest request =
        DeleteQueuedSuggestionRequest.newBuilder()
            .setExperimentId(experimentId)
            .setId(queuedSuggestionId)
            .setRequestId(newRequestId())
            .build();
    call(s -> s.deleteQueuedSuggestion(request));
  }

  // ------------------------------------------------------------ batches

  /** Reports up to 2,500 observations at once: all are stored, in order, or none. */
  public List<Observation> createObservations(String experimentId, List<Observation> observations) {
    return createObservations(experimentId, observations, newRequestId());
  }

  /** {@link #createObservations(String, List)} with a request id of your choosing. */
  public List<Observation> createObservations(
      String experimentId, List<Observation> observations, String requestId) {
    BatchCreateObservationsRequest request =
        BatchCreateObservationsRequest.newBuilder()
            .setExperimentId(experimentId)
            .addAllObservations(observations)
            .setRequestId(requestId)
            .build();
    return call(s -> s.batchCreateObservations(request).getObservationsList());
  }

  // ------------------------------------------------------------ projects

  /**
   * Creates a project ({@code id}: 1 to 100 of {@code [a-z0-9._-]}; {@code ALREADY_EXISTS} when it
   * exists, though not for a retry of this call).
   */
  public Project createProject(String id, String name) {
    CreateProjectRequest request =
        CreateProjectRequest.newBuilder()
            .setProject(Project.newBuilder().setId(id).setName(name == null ? "" : name))
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.createProject(request).getProject());
  }

  public Project getProject(String id) {
    GetProjectRequest request = GetProjectRequest.newBuilder().setId(id).build();
    return call(s -> s.getProject(request).getProject());
  }

  /** Every project the token reaches, by id. */
  public List<Project> listProjects() {
    return call(s -> s.listProjects(ListProjectsRequest.getDefaultInstance()).getProjectsList());
  }

  /** Changes the named fields ({@code "name"}, {@code "metadata"}) of {@code project}. */
  public Project updateProject(Project project, String... paths) {
    UpdateProjectRequest request =
        UpdateProjectRequest.newBuilder()
            .setProject(project)
            .setUpdateMask(FieldMask.newBuilder().addAllPaths(List.of(paths)))
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.updateProject(request).getProject());
  }

  // ------------------------------------------------------------ training runs

  /** A new active run in a project, without experiment. */
  public TrainingRun createProjectRun(String project, String name) {
    return createTrainingRun(
        CreateTrainingRunRequest.newBuilder().setProject(project).setName(name).build());
  }

  /**
   * A new active run of a runs-only experiment, carrying the assignments of the suggestion made for
   * it (queued ones first).
   */
  public TrainingRun createExperimentRun(String experimentId, String name) {
    return createTrainingRun(
        CreateTrainingRunRequest.newBuilder().setExperimentId(experimentId).setName(name).build());
  }

  /** Any CreateTrainingRun request (metadata included); a fresh request id unless it has one. */
  public TrainingRun createTrainingRun(CreateTrainingRunRequest request) {
    CreateTrainingRunRequest sent =
        request.getRequestId().isEmpty()
            ? request.toBuilder().setRequestId(newRequestId()).build()
            : request;
    return call(s -> s.createTrainingRun(sent).getTrainingRun());
  }

  public TrainingRun getTrainingRun(String runId) {
    GetTrainingRunRequest request = GetTrainingRunRequest.newBuilder().setId(runId).build();
    return call(s -> s.getTrainingRun(request).getTrainingRun());
  }

  /** One page of runs (of a project, or of an experiment), oldest first. */
  public ListTrainingRunsResponse listTrainingRuns(ListTrainingRunsRequest request) {
    return call(s -> s.listTrainingRuns(request));
  }

  /** Every live run of a project, oldest first; all pages. */
  public List<TrainingRun> projectRuns(String project) {
    return allRuns(ListTrainingRunsRequest.newBuilder().setProject(project));
  }

  /** Every soft-deleted run of a project, oldest first; all pages. */
  public List<TrainingRun> deletedProjectRuns(String project) {
    return allRuns(ListTrainingRunsRequest.newBuilder().setProject(project).setDeleted(true));
  }

  /** Every live run of an experiment, oldest first; all pages. */
  public List<TrainingRun> experimentRuns(String experimentId) {
    return allRuns(ListTrainingRunsRequest.newBuilder().setExperimentId(experimentId));
  }

  private List<TrainingRun> allRuns(ListTrainingRunsRequest.Builder request) {
    List<TrainingRun> out = new ArrayList<>();
    String token = "";
    do {
      ListTrainingRunsResponse page =
          listTrainingRuns(request.setPageSize(1000).setPageToken(token).build());
      out.addAll(page.getTrainingRunsList());
      token = page.getNextPageToken();
    } while (!token.isEmpty());
    return out;
  }

  /**
   * Applies {@link Runs#update} changes: the named maps replaced, or with {@code merge} merged
   * recursively into the stored ones (SigOpt's MERGE). A run of an experiment that ends (completed
   * or failed) reports its observation.
   */
  public TrainingRun updateTrainingRun(Runs.Change change, boolean merge) {
    UpdateTrainingRunRequest request =
        UpdateTrainingRunRequest.newBuilder()
            .setTrainingRun(change.run())
            .setUpdateMask(FieldMask.newBuilder().addAllPaths(change.paths()))
            .setMerge(merge)
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.updateTrainingRun(request).getTrainingRun());
  }

  /** Logs one metric value on a run (merged). */
  public TrainingRun logMetric(String runId, String metric, double value) {
    return updateTrainingRun(Runs.update(runId).metric(metric, value).build(), true);
  }

  /** Ends a run as completed (failed when {@code failed}); see {@link #updateTrainingRun}. */
  public TrainingRun endRun(String runId, boolean failed) {
    RunState state = failed ? RunState.RUN_STATE_FAILED : RunState.RUN_STATE_COMPLETED;
    return updateTrainingRun(Runs.update(runId).state(state).build(), true);
  }

  /** Soft-deletes a run: still readable, listed by {@link #deletedProjectRuns}. */
  public void deleteTrainingRun(String runId) {
    DeleteTrainingRunRequest request =
        DeleteTrainingRunRequest.newBuilder().setId(runId).setRequestId(newRequestId()).build();
    call(s -> s.deleteTrainingRun(request));
  }

  /** Restores a soft-deleted run. */
  public TrainingRun restoreTrainingRun(String runId) {
    return updateTrainingRun(Runs.update(runId).deleted(false).build(), true);
  }

  /** Appends a checkpoint of metric values to a run (at most 200). */
  public Checkpoint createCheckpoint(String runId, Map<String, Double> values) {
    Checkpoint.Builder checkpoint = Checkpoint.newBuilder();
    values.forEach((k, v) -> checkpoint.putValues(k, RunValue.newBuilder().setValue(v).build()));
    CreateCheckpointRequest request =
        CreateCheckpointRequest.newBuilder()
            .setTrainingRunId(runId)
            .setCheckpoint(checkpoint)
            .setRequestId(newRequestId())
            .build();
    return call(s -> s.createCheckpoint(request).getCheckpoint());
  }

  /** The runs of a runs-only experiment's best assignments, in their order. */
  public List<TrainingRun> bestTrainingRuns(String experimentId) {
    GetBestTrainingRunsRequest request =
        GetBestTrainingRunsRequest.newBuilder().setExperimentId(experimentId).build();
    return call(s -> s.getBestTrainingRuns(request).getTrainingRunsList());
  }

  /**
   * Whether the experiment may stop, and why: {@code observation_budget_reached}, {@code
   * possible_stagnation}.
   */
  public GetStoppingCriteriaResponse stoppingCriteria(String experimentId) {
    GetStoppingCriteriaRequest request =
        GetStoppingCriteriaRequest.newBuilder().setExperimentId(experimentId).build();
    return call(s -> s.getStoppingCriteria(request));
  }

  /**
   * Each metric's parameter importances (summing to 1), by metric name; empty until the metric has
   * three successful values.
   */
  public List<MetricImportances> parameterImportances(String experimentId) {
    GetParameterImportancesRequest request =
        GetParameterImportancesRequest.newBuilder().setExperimentId(experimentId).build();
    return call(s -> s.getParameterImportances(request).getMetricsList());
  }

  /**
   * {@link #loopMetrics} for a runs-only experiment: until the budget is used, creates a run,
   * evaluates its assignments while a heartbeat renews its suggestion's lease, and ends it with
   * the values (completed) or as failed when {@code objective} throws or returns a value that is
   * not finite; the server reports each run's observation.
   *
   * @return the experiment as it stands after the last run
   */
  public Experiment loopRuns(String experimentId, MultiObjective objective, LoopOptions options) {
    Objects.requireNonNull(objective, "objective");
    Objects.requireNonNull(options, "options");
    Experiment experiment = getExperiment(experimentId);
    if (!experiment.getRunsOnly() || !experiment.hasObservationBudget()) {
      throw new IllegalArgumentException(
          "experiment " + experimentId + " is not runs-only with a budget; use loopMetrics");
    }
    while (experiment.getProgress().getObservationCount() < experiment.getObservationBudget()) {
      TrainingRun run = createExperimentRun(experimentId, "");
      Suggestion suggestion;
      if (options.leaseSeconds() > 0) {
        suggestion = renewLease(experimentId, run.getSuggestionId(), options.leaseSeconds());
      } else {
        int lease =
            experiment.hasSuggestionLeaseSeconds() ? experiment.getSuggestionLeaseSeconds() : 86400;
        suggestion =
            Suggestion.newBuilder().setId(run.getSuggestionId()).setLeaseSeconds(lease).build();
      }
      Map<String, Double> values;
      Heartbeat heartbeat = startHeartbeat(experimentId, suggestion, options);
      try {
        values = objective.evaluate(new Assignments(run.getAssignmentsMap()));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        heartbeat.stop();
        endRun(run.getId(), true);
        throw new IllegalStateException("loop interrupted", e);
      } catch (Exception e) {
        LOG.log(Level.WARNING, "evaluation of run {0} failed, reported as a failure: {1}",
            new Object[] {run.getId(), e});
        values = null;
      } finally {
        heartbeat.stop();
      }
      Runs.Update end = Runs.update(run.getId());
      if (values == null || values.values().stream().anyMatch(v -> v == null || !Double.isFinite(v))) {
        end.state(RunState.RUN_STATE_FAILED);
      } else {
        values.forEach(end::metric);
        end.state(RunState.RUN_STATE_COMPLETED);
      }
      updateTrainingRun(end.build(), true);
      experiment = getExperiment(experimentId);
    }
    return experiment;
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
   * a value that is not finite, a failed observation is reported and the loop goes on. The
   * experiment needs a budget and exactly one metric that needs a value (optimized or
   * constraint); see {@link #loopMetrics} otherwise. Each suggestion's lease is renewed while
   * {@code objective} runs ({@link LoopOptions#defaults()}).
   *
   * @return the experiment as it stands after the last observation
   */
  public Experiment loop(String experimentId, Objective objective) {
    return loop(experimentId, objective, LoopOptions.defaults());
  }

  /** {@link #loop(String, Objective)} with a lease and heartbeat of your choosing. */
  public Experiment loop(String experimentId, Objective objective, LoopOptions options) {
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
    return loopMetrics(experimentId, a -> Map.of(metric, objective.evaluate(a)), options);
  }

  /** {@link #loop} for experiments reporting several metrics. */
  public Experiment loopMetrics(String experimentId, MultiObjective objective) {
    return loopMetrics(experimentId, objective, LoopOptions.defaults());
  }

  /** {@link #loopMetrics(String, MultiObjective)} with a lease and heartbeat of your choosing. */
  public Experiment loopMetrics(String experimentId, MultiObjective objective, LoopOptions options) {
    Objects.requireNonNull(objective, "objective");
    Objects.requireNonNull(options, "options");
    Experiment experiment = getExperiment(experimentId);
    if (!experiment.hasObservationBudget()) {
      throw new IllegalArgumentException(
          "experiment " + experimentId + " has no observation budget to loop to");
    }
    int budget = experiment.getObservationBudget();
    while (experiment.getProgress().getObservationCount() < budget) {
      Suggestion suggestion =
          createSuggestions(experimentId, 1, options.leaseSeconds()).get(0);
      Observation.Builder observation = Observation.newBuilder().setSuggestionId(suggestion.getId());
      Map<String, Double> values;
      Heartbeat heartbeat = startHeartbeat(experimentId, suggestion, options);
      try {
        values = objective.evaluate(new Assignments(suggestion.getAssignmentsMap()));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        heartbeat.stop();
        createObservation(experimentId, observation.setFailed(true).build());
        throw new IllegalStateException("loop interrupted", e);
      } catch (Exception e) {
        LOG.log(Level.WARNING, "evaluation of suggestion {0} failed, reported as a failure: {1}",
            new Object[] {suggestion.getId(), e});
        values = null;
      } finally {
        heartbeat.stop();
      }
      if (values == null || values.values().stream().anyMatch(v -> v == null || !Double.isFinite(v))) {
        observation.setFailed(true);
      } else {
        values.forEach(
            (name, value) ->
                observation.addValues(MetricValue.newBuilder().setName(name).setValue(value)));
      }
      createObservation(experimentId, observation.build());
      experiment = getExperiment(experimentId);
    }
    return experiment;
  }

  /** Renews a suggestion's lease on the client's heartbeat thread until stopped. */
  private final class Heartbeat implements Runnable {
    private final String experimentId;
    private final String suggestionId;
    private final int leaseSeconds;
    private final Object lock = new Object();
    private volatile boolean stopped;
    private ScheduledFuture<?> future;

    Heartbeat(String experimentId, String suggestionId, int leaseSeconds) {
      this.experimentId = experimentId;
      this.suggestionId = suggestionId;
      this.leaseSeconds = leaseSeconds;
    }

    @Override
    public void run() {
      synchronized (lock) {
        if (stopped) {
          return;
        }
        try {
          renewLease(experimentId, suggestionId, leaseSeconds);
        } catch (OptserveException e) {
          if (FINAL_RENEWAL_CODES.contains(e.getCode())) {
            LOG.log(Level.WARNING, "stopped renewing the lease of suggestion {0}: {1}",
                new Object[] {suggestionId, e.getMessage()});
            throw new StopHeartbeat();
          }
          LOG.log(Level.WARNING, "could not renew the lease of suggestion {0}: {1}",
              new Object[] {suggestionId, e.getMessage()});
        }
      }
    }

    /** Stops renewing, waiting for a renewal in flight. */
    void stop() {
      stopped = true;
      if (future != null) {
        future.cancel(false);
      }
      synchronized (lock) {
        // a renewal in flight has finished
      }
    }
  }

  /** Ends a heartbeat's repetitions (a periodic task that throws is not run again). */
  private static final class StopHeartbeat extends RuntimeException {
    private static final long serialVersionUID = 1L;

    StopHeartbeat() {
      super("heartbeat stopped", null, false, false);
    }
  }

  private Heartbeat startHeartbeat(String experimentId, Suggestion suggestion, LoopOptions options) {
    Heartbeat heartbeat = new Heartbeat(experimentId, suggestion.getId(), options.leaseSeconds());
    Duration interval = options.heartbeatInterval(suggestion.getLeaseSeconds());
    if (interval != null) {
      long nanos = Math.max(1, interval.toNanos());
      heartbeat.future =
          heartbeatExecutor()
              .scheduleWithFixedDelay(heartbeat, nanos, nanos, TimeUnit.NANOSECONDS);
    }
    return heartbeat;
  }

  private synchronized ScheduledExecutorService heartbeatExecutor() {
    if (heartbeats == null) {
      heartbeats =
          Executors.newSingleThreadScheduledExecutor(
              r -> {
                Thread t = new Thread(r, "optserve-heartbeat");
                t.setDaemon(true);
                return t;
              });
    }
    return heartbeats;
  }

  /** Closes the channel, waiting briefly for calls in flight. */
  @Override
  public void close() {
    synchronized (this) {
      if (heartbeats != null) {
        heartbeats.shutdownNow();
      }
    }
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

  /**
   * Makes a call, retrying as {@link #retry} says. {@code rpc} sends the same request on every
   * attempt (a write's request id included); each attempt gets its own deadline.
   */
  private <T> T call(Function<OptimizationServiceBlockingStub, T> rpc) {
    return call(rpc, retry.maxAttempts());
  }

  private <T> T call(Function<OptimizationServiceBlockingStub, T> rpc, int maxAttempts) {
    long start = System.nanoTime();
    for (int attempt = 1; ; attempt++) {
      long attemptNanos = deadline.toNanos();
      if (retry.deadline() != null) {
        attemptNanos = Math.min(attemptNanos, retry.deadline().toNanos() - (System.nanoTime() - start));
      }
      try {
        return rpc.apply(stub.withDeadlineAfter(attemptNanos, TimeUnit.NANOSECONDS));
      } catch (StatusRuntimeException e) {
        Status.Code code = e.getStatus().getCode();
        if (!RetryPolicy.isRetryable(code) || attempt >= maxAttempts) {
          throw OptserveException.from(e, target, attempt);
        }
        Duration pause = retry.backoff(attempt - 1, random);
        if (retry.deadline() != null
            && pause.toNanos() >= retry.deadline().toNanos() - (System.nanoTime() - start)) {
          throw OptserveException.from(e, target, attempt);
        }
        LOG.log(Level.INFO, "call failed with {0} (attempt {1} of {2}), retrying in {3} ms",
            new Object[] {code, attempt, retry.maxAttempts(), pause.toMillis()});
        try {
          TimeUnit.NANOSECONDS.sleep(pause.toNanos());
        } catch (InterruptedException interrupted) {
          Thread.currentThread().interrupt();
          throw OptserveException.from(e, target, attempt);
        }
        // The channel may be waiting out its own reconnect backoff (up to 2 minutes): reconnect
        // now, or the retry fails at once on a server that is back.
        channel.resetConnectBackoff();
      }
    }
  }
}
