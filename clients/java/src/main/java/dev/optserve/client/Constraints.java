package dev.optserve.client;

import dev.optserve.v1.ConstraintTerm;
import dev.optserve.v1.LinearConstraint;
import dev.optserve.v1.LinearConstraintType;

/**
 * Linear inequality constraints, written as a weighted sum and a bound:
 *
 * <pre>{@code
 * Constraints.sum().term("alpha", 1).term("beta", 1).lessThan(1)     // alpha + beta <= 1
 * Constraints.sum().term("gamma", 3).term("theta", -5).greaterThan(0) // 3 gamma - 5 theta >= 0
 * }</pre>
 *
 * <p>As in SigOpt, both directions are non-strict (equality is allowed).
 */
public final class Constraints {
  private Constraints() {}

  /** Starts a weighted sum of parameters. */
  public static Sum sum() {
    return new Sum();
  }

  /** A weighted sum of parameters, not yet bounded. */
  public static final class Sum {
    private final LinearConstraint.Builder proto = LinearConstraint.newBuilder();

    private Sum() {}

    /** Adds {@code weight * name} to the sum. */
    public Sum term(String name, double weight) {
      proto.addTerms(ConstraintTerm.newBuilder().setName(name).setWeight(weight));
      return this;
    }

    /** sum <= threshold. */
    public LinearConstraint lessThan(double threshold) {
      return bound(LinearConstraintType.LINEAR_CONSTRAINT_TYPE_LESS_THAN, threshold);
    }

    /** sum >= threshold. */
    public LinearConstraint greaterThan(double threshold) {
      return bound(LinearConstraintType.LINEAR_CONSTRAINT_TYPE_GREATER_THAN, threshold);
    }

    private LinearConstraint bound(LinearConstraintType type, double threshold) {
      return proto.clone().setType(type).setThreshold(threshold).build();
    }
  }
}
