package dev.optserve.client;

import dev.optserve.v1.Experiment;
import dev.optserve.v1.ExperimentType;
import dev.optserve.v1.LinearConstraint;
import dev.optserve.v1.Metric;
import dev.optserve.v1.Parameter;

/**
 * Builds the definition of a new experiment, to pass to {@link OptserveClient#createExperiment}.
 *
 * <pre>{@code
 * Experiment definition = Experiments.builder()
 *     .name("Experiment with constraints")
 *     .parameter(Parameters.doubleParam("alpha", 0, 1))
 *     .doubleParam("beta", 0, 1)
 *     .intParam("gamma", 0, 10)
 *     .linearConstraint(Constraints.sum().term("alpha", 1).term("beta", 1).lessThan(1))
 *     .metric(Metrics.maximize("metric_value"))
 *     .budget(80)
 *     .build();
 * }</pre>
 */
public final class Experiments {
  private Experiments() {}

  public static Builder builder() {
    return new Builder();
  }

  /** A fluent wrapper over the {@link Experiment} protobuf builder. */
  public static final class Builder {
    private final Experiment.Builder proto = Experiment.newBuilder();

    private Builder() {}

    public Builder name(String name) {
      proto.setName(name);
      return this;
    }

    public Builder project(String project) {
      proto.setProject(project);
      return this;
    }

    /** How suggestions are produced; Bayesian optimization when unset. */
    public Builder type(ExperimentType type) {
      proto.setType(type);
      return this;
    }

    public Builder parameter(Parameter parameter) {
      proto.addParameters(parameter);
      return this;
    }

    public Builder doubleParam(String name, double min, double max) {
      return parameter(Parameters.doubleParam(name, min, max));
    }

    public Builder intParam(String name, long min, long max) {
      return parameter(Parameters.intParam(name, min, max));
    }

    public Builder categoricalParam(String name, String... values) {
      return parameter(Parameters.categoricalParam(name, values));
    }

    public Builder linearConstraint(LinearConstraint constraint) {
      proto.addLinearConstraints(constraint);
      return this;
    }

    public Builder metric(Metric metric) {
      proto.addMetrics(metric);
      return this;
    }

    /** The number of observations planned (SigOpt's observation_budget). */
    public Builder budget(int observations) {
      proto.setObservationBudget(observations);
      return this;
    }

    /** The number of suggestions evaluated at once. */
    public Builder parallelBandwidth(int bandwidth) {
      proto.setParallelBandwidth(bandwidth);
      return this;
    }

    /**
     * The number of diverse solutions sought (1 when unset): best assignments then return up to
     * that many solutions, each the best in its own region. Needs a budget, a single optimized
     * metric and no categorical parameters.
     */
    public Builder numSolutions(int solutions) {
      proto.setNumSolutions(solutions);
      return this;
    }

    /** Fixes the optimizer's randomness, for reproducible runs. */
    public Builder seed(long seed) {
      proto.setSeed(seed);
      return this;
    }

    /**
     * How long, in seconds, a suggestion stays open without an observation or a lease renewal
     * before it expires and stops counting as pending (the server's default, a day, when unset).
     */
    public Builder suggestionLeaseSeconds(int seconds) {
      proto.setSuggestionLeaseSeconds(seconds);
      return this;
    }

    /**
     * Driven by training runs only (SigOpt's AI experiment): suggestions and observations are made
     * through {@link OptserveClient#createExperimentRun} and the runs' ends, and the budget counts
     * runs. Fixed at create.
     */
    public Builder runsOnly(boolean runsOnly) {
      proto.setRunsOnly(runsOnly);
      return this;
    }

    /** Escape hatch for fields without a shortcut (conditionals, metadata). */
    public Experiment.Builder proto() {
      return proto;
    }

    public Experiment build() {
      return proto.build();
    }
  }
}
