package dev.optserve.client;

import dev.optserve.v1.AssignmentValue;
import dev.optserve.v1.RunState;
import dev.optserve.v1.RunValue;
import dev.optserve.v1.TrainingRun;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Builds the changes of a training run, to pass to {@link OptserveClient#updateTrainingRun}:
 * each setter names its field in the update mask.
 *
 * <pre>{@code
 * client.updateTrainingRun(
 *     Runs.update(runId).metric("accuracy", 0.91, 0.01).parameter("batch_size", 64).build(),
 *     true);   // merge into the stored maps (SigOpt's MERGE)
 * }</pre>
 */
public final class Runs {
  private Runs() {}

  /** The changes of run {@code runId}. */
  public static Update update(String runId) {
    return new Update(runId);
  }

  /** A run's logged metric values, by name. */
  public static Map<String, Double> values(TrainingRun run) {
    Map<String, Double> out = new LinkedHashMap<>();
    run.getValuesMap().forEach((name, v) -> out.put(name, v.getValue()));
    return Collections.unmodifiableMap(out);
  }

  /** Whether the run ended (completed or failed). */
  public static boolean isFinished(TrainingRun run) {
    return run.getState() == RunState.RUN_STATE_COMPLETED
        || run.getState() == RunState.RUN_STATE_FAILED;
  }

  /** A run's id with the fields to change and their names. */
  public record Change(TrainingRun run, List<String> paths) {}

  /** Fluent changes of one run. */
  public static final class Update {
    private final TrainingRun.Builder proto;
    private final List<String> paths = new ArrayList<>();

    private Update(String runId) {
      proto = TrainingRun.newBuilder().setId(runId);
    }

    private void path(String name) {
      if (!paths.contains(name)) {
        paths.add(name);
      }
    }

    public Update name(String name) {
      proto.setName(name);
      path("name");
      return this;
    }

    /** {@code RUN_STATE_COMPLETED} or {@code RUN_STATE_FAILED} end it (not again active). */
    public Update state(RunState state) {
      proto.setState(state);
      path("state");
      return this;
    }

    /** Soft-deletes ({@code true}) or restores ({@code false}) the run. */
    public Update deleted(boolean deleted) {
      proto.setDeleted(deleted);
      path("deleted");
      return this;
    }

    public Update metric(String name, double value) {
      proto.putValues(name, RunValue.newBuilder().setValue(value).build());
      path("values");
      return this;
    }

    public Update metric(String name, double value, double stddev) {
      proto.putValues(name, RunValue.newBuilder().setValue(value).setValueStddev(stddev).build());
      path("values");
      return this;
    }

    public Update parameter(String name, double value) {
      return parameter(name, AssignmentValue.newBuilder().setDoubleValue(value).build());
    }

    public Update parameter(String name, long value) {
      return parameter(name, AssignmentValue.newBuilder().setIntValue(value).build());
    }

    public Update parameter(String name, String value) {
      return parameter(name, AssignmentValue.newBuilder().setStringValue(value).build());
    }

    /** A parameter value (those set by the run's suggestion cannot change). */
    public Update parameter(String name, AssignmentValue value) {
      proto.putAssignments(name, value);
      path("assignments");
      return this;
    }

    /** Metadata (strings, numbers, null). */
    public Update metadata(com.google.protobuf.Struct metadata) {
      proto.setMetadata(metadata);
      path("metadata");
      return this;
    }

    /** Logged documents: logs, datasets, model, source_code, sys_metadata, dev_metadata, tags. */
    public Update extras(com.google.protobuf.Struct extras) {
      proto.setExtras(extras);
      path("extras");
      return this;
    }

    public Change build() {
      if (paths.isEmpty()) {
        throw new IllegalStateException("name at least one field to change");
      }
      return new Change(proto.build(), List.copyOf(paths));
    }
  }
}
