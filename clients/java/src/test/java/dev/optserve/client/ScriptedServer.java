package dev.optserve.client;

import com.google.protobuf.Message;
import dev.optserve.v1.BatchCreateObservationsRequest;
import dev.optserve.v1.BatchCreateObservationsResponse;
import dev.optserve.v1.Checkpoint;
import dev.optserve.v1.CreateCheckpointRequest;
import dev.optserve.v1.CreateCheckpointResponse;
import dev.optserve.v1.CreateProjectRequest;
import dev.optserve.v1.CreateProjectResponse;
import dev.optserve.v1.CreateQueuedSuggestionRequest;
import dev.optserve.v1.CreateQueuedSuggestionResponse;
import dev.optserve.v1.CreateTrainingRunRequest;
import dev.optserve.v1.CreateTrainingRunResponse;
import dev.optserve.v1.DeleteQueuedSuggestionRequest;
import dev.optserve.v1.DeleteQueuedSuggestionResponse;
import dev.optserve.v1.QueuedSuggestion;
import dev.optserve.v1.TrainingRun;
import dev.optserve.v1.UpdateSuggestionRequest;
import dev.optserve.v1.UpdateSuggestionResponse;
import dev.optserve.v1.DeleteTrainingRunRequest;
import dev.optserve.v1.DeleteTrainingRunResponse;
import dev.optserve.v1.UpdateProjectRequest;
import dev.optserve.v1.UpdateProjectResponse;
import dev.optserve.v1.UpdateTrainingRunRequest;
import dev.optserve.v1.UpdateTrainingRunResponse;
import dev.optserve.v1.CreateExperimentRequest;
import dev.optserve.v1.CreateExperimentResponse;
import dev.optserve.v1.CreateObservationRequest;
import dev.optserve.v1.CreateObservationResponse;
import dev.optserve.v1.CreateSuggestionsRequest;
import dev.optserve.v1.CreateSuggestionsResponse;
import dev.optserve.v1.Experiment;
import dev.optserve.v1.GetExperimentRequest;
import dev.optserve.v1.GetExperimentResponse;
import dev.optserve.v1.Metric;
import dev.optserve.v1.Observation;
import dev.optserve.v1.OptimizationServiceGrpc;
import dev.optserve.v1.Progress;
import dev.optserve.v1.RenewSuggestionLeaseRequest;
import dev.optserve.v1.RenewSuggestionLeaseResponse;
import dev.optserve.v1.Suggestion;
import dev.optserve.v1.SuggestionState;
import dev.optserve.v1.UpdateExperimentRequest;
import dev.optserve.v1.UpdateExperimentResponse;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.ForwardingServerCallListener.SimpleForwardingServerCallListener;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.security.Principal;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * A real gRPC server on a loopback port, in the test process, that answers with canned messages,
 * records every request with its headers, and replaces the answers of the next attempts by a
 * script: a status code to fail with, or {@link #HANG} to wait until the client gives up.
 */
final class ScriptedServer implements AutoCloseable {
  /** Never answers: the client's deadline ends the attempt. */
  static final Object HANG = new Object();

  /** One request as the server saw it; {@code peer} is "plaintext", "tls" or "tls:CN=...". */
  record Seen(String method, Message request, Metadata headers, String peer) {
    String requestId() {
      var field = request.getDescriptorForType().findFieldByName("request_id");
      return field == null ? null : (String) request.getField(field);
    }

    String authorization() {
      return headers.get(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER));
    }
  }

  static final int LEASE_SECONDS = 30;

  private final Server server;
  private final List<Seen> seen = new ArrayList<>();
  private final Deque<Object> script = new ArrayDeque<>();
  private final AtomicInteger observations = new AtomicInteger();
  private volatile int budget = 100;

  ScriptedServer() throws IOException {
    this(InsecureServerCredentials.create());
  }

  ScriptedServer(ServerCredentials credentials) throws IOException {
    server =
        NettyServerBuilder.forAddress(
                new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), credentials)
            .addService(ServerInterceptors.intercept(new Canned(), new Scripting()))
            .build()
            .start();
  }

  String target() {
    return "127.0.0.1:" + server.getPort();
  }

  /** Forgets what was seen and scripts the next attempts' outcomes. */
  synchronized void reset(Object... outcomes) {
    seen.clear();
    script.clear();
    script.addAll(List.of(outcomes));
    observations.set(0);
  }

  void budget(int observationBudget) {
    budget = observationBudget;
  }

  synchronized List<Seen> seen() {
    return List.copyOf(seen);
  }

  synchronized List<Seen> calls(String method) {
    return seen.stream().filter(s -> s.method().equals(method)).toList();
  }

  /** Waits until {@code method} was called {@code count} times. */
  synchronized void awaitCalls(String method, int count, Duration timeout)
      throws InterruptedException {
    long end = System.nanoTime() + timeout.toNanos();
    while (calls(method).size() < count) {
      long left = end - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError(method + " was called fewer than " + count + " times");
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  private synchronized Object record(String method, Message request, Metadata headers, String peer) {
    seen.add(new Seen(method, request, headers, peer));
    notifyAll();
    return script.poll();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
  }

  private static String peer(ServerCall<?, ?> call) {
    SSLSession session = call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION);
    if (session == null) {
      return "plaintext";
    }
    try {
      Principal principal = session.getPeerPrincipal();
      return "tls:" + principal.getName();
    } catch (SSLPeerUnverifiedException e) {
      return "tls";
    }
  }

  private final class Scripting implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      String method = call.getMethodDescriptor().getBareMethodName();
      String peer = peer(call);
      return new SimpleForwardingServerCallListener<Q>(next.startCall(call, headers)) {
        private boolean scripted;

        @Override
        public void onMessage(Q message) {
          Object outcome = record(method, (Message) message, headers, peer);
          if (outcome == null) {
            super.onMessage(message);
            return;
          }
          scripted = true;
          if (outcome instanceof Status.Code code) {
            call.close(Status.fromCode(code).withDescription("scripted " + code), new Metadata());
          }
        }

        @Override
        public void onHalfClose() {
          if (!scripted) {
            super.onHalfClose();
          }
        }
      };
    }
  }

  private final class Canned extends OptimizationServiceGrpc.OptimizationServiceImplBase {
    private Experiment experiment() {
      return Experiment.newBuilder()
          .setId("7")
          .setName("fake")
          .addMetrics(Metric.newBuilder().setName("m"))
          .setObservationBudget(budget)
          .setProgress(Progress.newBuilder().setObservationCount(observations.get()))
          .build();
    }

    private static Suggestion suggestion(String id) {
      return Suggestion.newBuilder()
          .setId(id)
          .setExperimentId("7")
          .setState(SuggestionState.SUGGESTION_STATE_OPEN)
          .setLeaseSeconds(LEASE_SECONDS)
          .build();
    }

    @Override
    public void createExperiment(
        CreateExperimentRequest request, StreamObserver<CreateExperimentResponse> out) {
      out.onNext(CreateExperimentResponse.newBuilder().setExperiment(experiment()).build());
      out.onCompleted();
    }

    @Override
    public void getExperiment(
        GetExperimentRequest request, StreamObserver<GetExperimentResponse> out) {
      out.onNext(GetExperimentResponse.newBuilder().setExperiment(experiment()).build());
      out.onCompleted();
    }

    @Override
    public void updateExperiment(
        UpdateExperimentRequest request, StreamObserver<UpdateExperimentResponse> out) {
      out.onNext(UpdateExperimentResponse.newBuilder().setExperiment(experiment()).build());
      out.onCompleted();
    }

    @Override
    public void createSuggestions(
        CreateSuggestionsRequest request, StreamObserver<CreateSuggestionsResponse> out) {
      String id = String.valueOf(calls("CreateSuggestions").size());
      out.onNext(CreateSuggestionsResponse.newBuilder().addSuggestions(suggestion(id)).build());
      out.onCompleted();
    }

    @Override
    public void renewSuggestionLease(
        RenewSuggestionLeaseRequest request, StreamObserver<RenewSuggestionLeaseResponse> out) {
      out.onNext(
          RenewSuggestionLeaseResponse.newBuilder().setSuggestion(suggestion(request.getId())).build());
      out.onCompleted();
    }

    @Override
    public void createObservation(
        CreateObservationRequest request, StreamObserver<CreateObservationResponse> out) {
      observations.incrementAndGet();
      Observation observation =
          request.getObservation().toBuilder().setId("21").setExperimentId("7").build();
      out.onNext(CreateObservationResponse.newBuilder().setObservation(observation).build());
      out.onCompleted();
    }

    @Override
    public void batchCreateObservations(
        BatchCreateObservationsRequest request,
        StreamObserver<BatchCreateObservationsResponse> out) {
      out.onNext(
          BatchCreateObservationsResponse.newBuilder()
              .addAllObservations(request.getObservationsList())
              .build());
      out.onCompleted();
    }

    @Override
    public void updateTrainingRun(
        UpdateTrainingRunRequest request, StreamObserver<UpdateTrainingRunResponse> out) {
      out.onNext(
          UpdateTrainingRunResponse.newBuilder().setTrainingRun(request.getTrainingRun()).build());
      out.onCompleted();
    }

    @Override
    public void deleteTrainingRun(
        DeleteTrainingRunRequest request, StreamObserver<DeleteTrainingRunResponse> out) {
      out.onNext(DeleteTrainingRunResponse.getDefaultInstance());
      out.onCompleted();
    }

    @Override
    public void updateProject(
        UpdateProjectRequest request, StreamObserver<UpdateProjectResponse> out) {
      out.onNext(UpdateProjectResponse.newBuilder().setProject(request.getProject()).build());
      out.onCompleted();
    }

    @Override
    public void createProject(
        CreateProjectRequest request, StreamObserver<CreateProjectResponse> out) {
      out.onNext(CreateProjectResponse.newBuilder().setProject(request.getProject()).build());
      out.onCompleted();
    }

    @Override
    public void createTrainingRun(
        CreateTrainingRunRequest request, StreamObserver<CreateTrainingRunResponse> out) {
      TrainingRun run = TrainingRun.newBuilder().setId("31").setProject(request.getProject()).build();
      out.onNext(CreateTrainingRunResponse.newBuilder().setTrainingRun(run).build());
      out.onCompleted();
    }

    @Override
    public void createCheckpoint(
        CreateCheckpointRequest request, StreamObserver<CreateCheckpointResponse> out) {
      Checkpoint checkpoint = request.getCheckpoint().toBuilder().setId("1").build();
      out.onNext(CreateCheckpointResponse.newBuilder().setCheckpoint(checkpoint).build());
      out.onCompleted();
    }

    @Override
    public void createQueuedSuggestion(
        CreateQueuedSuggestionRequest request,
        StreamObserver<CreateQueuedSuggestionResponse> out) {
      QueuedSuggestion queued =
          QueuedSuggestion.newBuilder().setId("41").setExperimentId("7").build();
      out.onNext(CreateQueuedSuggestionResponse.newBuilder().setQueuedSuggestion(queued).build());
      out.onCompleted();
    }

    @Override
    public void deleteQueuedSuggestion(
        DeleteQueuedSuggestionRequest request,
        StreamObserver<DeleteQueuedSuggestionResponse> out) {
      out.onNext(DeleteQueuedSuggestionResponse.getDefaultInstance());
      out.onCompleted();
    }

    @Override
    public void updateSuggestion(
        UpdateSuggestionRequest request, StreamObserver<UpdateSuggestionResponse> out) {
      out.onNext(
          UpdateSuggestionResponse.newBuilder()
              .setSuggestion(suggestion(request.getSuggestion().getId()))
              .build());
      out.onCompleted();
    }
  }
}
